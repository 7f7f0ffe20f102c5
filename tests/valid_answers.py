"""Correct answers in other styles than the obvious one, for every exercise of lessons 01-05 in both frameworks.

Written from the learner notebooks' instructions and the public ``tlkit`` API only. Each one must earn full marks:
``tests/test_valid_answers.py`` grades the released lessons with every answer cell replaced by these.

``VALID[(lesson, framework, answer_id)]`` is the whole source of the answer cell whose nbgrader ``grade_id`` is
``answer_id``. ``STYLES`` says, for the same keys, in a few words how each one differs from the obvious answer.

``EXTRA[(lesson, framework, answer_id, variant)]`` holds further alternatives, each graded on its own in a notebook
that takes every other answer from ``VALID`` (``EXTRA_STYLES`` describes them). Those that the grader wrongly
marks down are listed, with why, in ``tests/test_valid_answers.py``'s ``GRADER_BUGS``.
"""

from __future__ import annotations

from lesson_cases import valid_answers

VALID: dict[tuple[str, str, str], str] = {}
STYLES: dict[tuple[str, str, str], str] = {}
EXTRA: dict[tuple[str, str, str, str], str] = {}
EXTRA_STYLES: dict[tuple[str, str, str, str], str] = {}


def answer(lesson: str, framework: str, answer_id: str, style: str, source: str) -> None:
    key = (lesson, framework, answer_id)
    assert key not in VALID, key
    VALID[key] = source.strip("\n") + "\n"
    STYLES[key] = style


def extra(lesson: str, framework: str, answer_id: str, variant: str, style: str, source: str) -> None:
    key = (lesson, framework, answer_id, variant)
    assert key not in EXTRA, key
    EXTRA[key] = source.strip("\n") + "\n"
    EXTRA_STYLES[key] = style


# ------------------------------------------------------------------------------------------- 01 ml basics, PyTorch
answer("01_ml_basics", "pytorch", "split", "NumPy only: a per-class shuffled split by hand, no train_test_split", '''
from sklearn.model_selection import train_test_split  # (kept from the template; not used below)


def split_data(x, y, val_fraction=0.2, test_fraction=0.2, seed=0):
    """Shuffle and stratify; return x_train, y_train, x_val, y_val, x_test, y_test."""
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(test_fraction * len(rows)))
        n_val = int(round(val_fraction * len(rows)))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test:n_test + n_val])
        parts["train"].append(rows[n_test + n_val:])
    out = []
    for name in ("train", "val", "test"):
        rows = rng.permutation(np.concatenate(parts[name]))  # classes mixed again inside each split
        out += [x[rows], y[rows]]
    return tuple(out)
''')

answer("01_ml_basics", "pytorch", "metrics", "plain Python loops over the rows and the classes", '''
def classification_metrics(y_true, y_pred, n_classes):
    """Accuracy, macro precision / recall / F1 and the confusion matrix, from scratch."""
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    for t, p in zip(y_true, y_pred):
        confusion[int(t), int(p)] += 1
    precisions, recalls, f1s = [], [], []
    for c in range(n_classes):
        tp = confusion[c, c]
        predicted = sum(confusion[r, c] for r in range(n_classes))
        actual = sum(confusion[c, k] for k in range(n_classes))
        p = tp / predicted if predicted > 0 else 0.0
        r = tp / actual if actual > 0 else 0.0
        precisions.append(p)
        recalls.append(r)
        f1s.append(2 * p * r / (p + r) if p + r > 0 else 0.0)
    correct = sum(confusion[c, c] for c in range(n_classes))
    return {
        "accuracy": float(correct / len(y_true)),
        "precision": float(sum(precisions) / n_classes),
        "recall": float(sum(recalls) / n_classes),
        "f1": float(sum(f1s) / n_classes),
        "confusion": confusion,
    }
''')

answer("01_ml_basics", "pytorch", "cluster", "scikit-learn's contingency matrix instead of a loop over clusters", '''
from sklearn.metrics.cluster import contingency_matrix


def cluster_purity(y_true, clusters):
    """Fraction of examples whose label is the majority label of their cluster."""
    table = contingency_matrix(y_true, clusters)  # rows: true labels, columns: clusters
    return float(table.max(axis=0).sum() / table.sum())
''')

answer("01_ml_basics", "pytorch", "network",
       "Sequential of named layers (OrderedDict); tl.fit with an explicit Adam and CrossEntropyLoss", '''
import math
from collections import OrderedDict


def build_mlp(input_shape, n_hidden, n_classes):
    """Flatten -> Linear -> ReLU -> Linear (logits)."""
    n_inputs = math.prod(input_shape)
    return torch.nn.Sequential(OrderedDict([
        ("flatten", torch.nn.Flatten()),
        ("hidden", torch.nn.Linear(n_inputs, n_hidden)),
        ("relu", torch.nn.ReLU()),
        ("logits", torch.nn.Linear(n_hidden, n_classes)),
    ]))


model = build_mlp(input_shape, n_hidden=64, n_classes=len(ds.classes))
history = tl.fit(model, train_batches, val_batches, epochs=25,
                 optimizer=torch.optim.Adam(model.parameters(), lr=3e-3), loss=torch.nn.CrossEntropyLoss())
print(f"validation accuracy after {len(history['val_accuracy'])} epochs: {history['val_accuracy'][-1]:.3f}")
''')

# --------------------------------------------------------------------------------------------- 01 ml basics, Keras
answer("01_ml_basics", "keras", "split", "scikit-learn's StratifiedShuffleSplit twice, on row indices", '''
from sklearn.model_selection import StratifiedShuffleSplit, train_test_split  # noqa: F401


def split_data(x, y, val_fraction=0.2, test_fraction=0.2, seed=0):
    """Shuffle and stratify; return x_train, y_train, x_val, y_val, x_test, y_test."""
    x, y = np.asarray(x), np.asarray(y)
    everything = np.arange(len(y))
    first = StratifiedShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    rest, test = next(first.split(everything, y))
    second = StratifiedShuffleSplit(n_splits=1, test_size=val_fraction / (1 - test_fraction), random_state=seed)
    train, val = next(second.split(rest, y[rest]))
    train, val = rest[train], rest[val]
    return x[train], y[train], x[val], y[val], x[test], y[test]
''')

answer("01_ml_basics", "keras", "metrics", "np.bincount for the matrix, np.divide(where=...) for the ratios", '''
def classification_metrics(y_true, y_pred, n_classes):
    """Accuracy, macro precision / recall / F1 and the confusion matrix, from scratch."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    confusion = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes).astype(np.int64)
    tp = np.diag(confusion).astype(float)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(n_classes), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(n_classes), where=both > 0)
    return {"accuracy": float(tp.sum() / confusion.sum()), "precision": float(precision.mean()),
            "recall": float(recall.mean()), "f1": float(f1.mean()), "confusion": confusion}
''')

answer("01_ml_basics", "keras", "cluster", "a dictionary of collections.Counter per cluster", '''
from collections import Counter, defaultdict


def cluster_purity(y_true, clusters):
    """Fraction of examples whose label is the majority label of their cluster."""
    members = defaultdict(Counter)
    for label, cluster in zip(y_true, clusters):
        members[cluster][label] += 1
    majority = sum(counts.most_common(1)[0][1] for counts in members.values())
    return majority / len(y_true)
''')

answer("01_ml_basics", "keras", "network",
       "Sequential grown with .add(); tl.fit with an explicit Adam and a from-logits loss object", '''
def build_mlp(input_shape, n_hidden, n_classes):
    """Flatten -> Dense(relu) -> Dense (logits)."""
    mlp = keras.Sequential(name="mlp")
    mlp.add(keras.Input(shape=input_shape))
    mlp.add(keras.layers.Flatten())
    mlp.add(keras.layers.Dense(n_hidden, activation="relu"))
    mlp.add(keras.layers.Dense(n_classes))
    return mlp


model = build_mlp(input_shape, n_hidden=64, n_classes=len(ds.classes))
history = tl.fit(model, train_batches, val_batches, epochs=25, optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
''')

answer("01_ml_basics", "pytorch", "majority", "collections.Counter and a generator expression", '''
from collections import Counter


def majority_accuracy(y_train, y_test):
    """Test accuracy of always predicting the most common class of the training labels."""
    majority, _ = Counter(int(label) for label in y_train).most_common(1)[0]
    return sum(int(label) == majority for label in y_test) / len(y_test)
''')

answer("01_ml_basics", "keras", "majority", "scikit-learn's DummyClassifier, scored with its own .score", '''
from sklearn.dummy import DummyClassifier


def majority_accuracy(y_train, y_test):
    """Test accuracy of always predicting the most common class of the training labels."""
    dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(y_train), 1)), y_train)
    return dummy.score(np.zeros((len(y_test), 1)), y_test)
''')

# ------------------------------------------------------------------------------- 02 feature extraction, PyTorch
answer("02_feature_extraction", "pytorch", "freeze", "a loop over the parameters and one over the modules", '''
def freeze(backbone):
    """Freeze every parameter and keep batch norm's running statistics; return the backbone."""
    for parameter in backbone.parameters():
        parameter.requires_grad = False
    for module in backbone.modules():
        module.train(False)  # batch norm (and dropout) in inference mode
    return backbone
''')

answer("02_feature_extraction", "pytorch", "features",
       "@torch.no_grad() decorator, a while loop, rows written into a preallocated array", '''
@torch.no_grad()
def extract_features(backbone, images, batch_size=64):
    """Pooled features (N, 1280) of uint8 images (N, H, W, 3), in inference mode, without gradients."""
    backbone.eval()
    where = next(backbone.parameters()).device
    features = np.empty((len(images), 1280), dtype=np.float32)
    start = 0
    while start < len(images):
        stop = min(start + batch_size, len(images))
        batch = tl.preprocess_inputs(images[start:stop], size=IMAGE_SIZE).to(where)
        features[start:stop] = backbone(batch).cpu().numpy()
        start = stop
    return features
''')

answer("02_feature_extraction", "pytorch", "head",
       "one tl.fit call per epoch with one Adam kept across calls, histories merged by hand", '''
head = torch.nn.Linear(1280, len(ds.classes))
head_optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
head_history = {}
for epoch in range(30):
    one_epoch = tl.fit(head, train_feature_batches, val_feature_batches, epochs=1, optimizer=head_optimizer,
                       verbose=False)
    for key, values in one_epoch.items():
        head_history.setdefault(key, []).extend(values)
print({key: round(values[-1], 3) for key, values in head_history.items()})
''')

answer("02_feature_extraction", "pytorch", "scratch",
       "an nn.Module subclass with a ModuleList of convolutions and functional ReLU / pooling in forward", '''
import torch.nn.functional as F


class SmallCNN(torch.nn.Module):
    """Three 3x3 conv blocks (16, 32, 64 filters), max pooling after the first two, global average, linear."""

    def __init__(self, in_channels, n_classes):
        super().__init__()
        widths = [in_channels, 16, 32, 64]
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(c_in, c_out, kernel_size=3, padding=1) for c_in, c_out in zip(widths, widths[1:]))
        self.classifier = torch.nn.Linear(64, n_classes)

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i < 2:
                x = F.max_pool2d(x, 2)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def build_small_cnn(input_shape, n_classes):
    """Three 3x3 conv blocks (16, 32, 64 filters), global average pooling, one linear layer (logits)."""
    return SmallCNN(input_shape[0], n_classes)


scratch_model = build_small_cnn(input_shape, len(ds.classes))
scratch_history = tl.fit(scratch_model, train_batches, val_batches, epochs=25, lr=3e-3)
''')

# --------------------------------------------------------------------------------- 02 feature extraction, Keras
answer("02_feature_extraction", "keras", "freeze", "every layer switched off one by one, then the model itself", '''
def freeze(backbone):
    """Freeze every weight (batch norm included, which then runs in inference mode); return the backbone."""
    for layer in backbone.layers:
        layer.trainable = False
    backbone.trainable = False
    return backbone
''')

answer("02_feature_extraction", "keras", "features",
       "backbone.predict per batch in a list comprehension, stacked with np.vstack", '''
def extract_features(backbone, images, batch_size=64):
    """Pooled features (N, 1280) of uint8 images (N, H, W, 3), in inference mode."""
    starts = range(0, len(images), batch_size)
    chunks = [backbone.predict(tl.preprocess_inputs(images[i:i + batch_size], size=IMAGE_SIZE), verbose=0)
              for i in starts]
    return np.vstack([np.asarray(chunk) for chunk in chunks])
''')

answer("02_feature_extraction", "keras", "head",
       "Sequential grown with .add(); an explicit Adam(3e-3) passed to tl.fit", '''
head = keras.Sequential(name="linear_head")
head.add(keras.Input((1280,)))
head.add(keras.layers.Dense(len(ds.classes)))
head_history = tl.fit(head, train_feature_batches, val_feature_batches, epochs=30,
                      optimizer=keras.optimizers.Adam(learning_rate=3e-3))
''')

answer("02_feature_extraction", "keras", "scratch", "functional API built in a loop over the filter counts", '''
def build_small_cnn(input_shape, n_classes):
    """Three 3x3 conv blocks (16, 32, 64 filters), global average pooling, one dense layer (logits)."""
    inputs = keras.Input(input_shape)
    h = inputs
    for i, filters in enumerate((16, 32, 64)):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        if i < 2:
            h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(n_classes)(h), name="small_cnn")


scratch_model = build_small_cnn(input_shape, len(ds.classes))
scratch_history = tl.fit(scratch_model, train_batches, val_batches, epochs=25, lr=3e-3)
''')

# ----------------------------------------------------------------------------------------- 03 fine-tuning, PyTorch
answer("03_fine_tuning", "pytorch", "head_first",
       "Sequential from a list of pairs; freezing by a loop over the backbone's parameters and train(False)", '''
def build_classifier(backbone, n_classes):
    """Frozen pretrained backbone + new trainable linear head, as Sequential(backbone=..., head=...)."""
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    backbone.train(False)  # batch norm keeps its ImageNet statistics
    head = torch.nn.Linear(1280, n_classes)
    for parameter in head.parameters():
        parameter.requires_grad_(True)
    return torch.nn.Sequential(OrderedDict([("backbone", backbone), ("head", head)]))


model = build_classifier(backbone, N_CLASSES)
''')

answer("03_fine_tuning", "pytorch", "unfreeze",
       "by module type (every Conv2d of the chosen blocks), not by parameter names", '''
def unfreeze_last_blocks(backbone, n_blocks):
    """Only the conv weights of the last n_blocks blocks and of _conv_head trainable; eval mode."""
    backbone.requires_grad_(False)
    chosen = list(backbone._blocks[-n_blocks:]) + [backbone._conv_head]
    for part in chosen:
        for module in part.modules():
            if isinstance(module, torch.nn.Conv2d):
                for parameter in module.parameters():
                    parameter.requires_grad_(True)
    backbone.eval()
    return backbone
''')

answer("03_fine_tuning", "pytorch", "param_groups",
       "head group first, the backbone's trainable parameters added with add_param_group", '''
def make_optimizer(model, lr_head, lr_backbone):
    """Adam: trainable backbone parameters at lr_backbone, head parameters at lr_head."""
    optimizer = torch.optim.Adam(model.head.parameters(), lr=lr_head)
    backbone_params = [p for name, p in model.named_parameters() if name.startswith("backbone.") and p.requires_grad]
    optimizer.add_param_group({"params": backbone_params, "lr": lr_backbone})
    return optimizer
''')

answer("03_fine_tuning", "pytorch", "fine_tune",
       "a while loop with a patience counter, a LambdaLR schedule; the history assembled from rows at the end", '''
import math

model.head.requires_grad_(True)
unfreeze_last_blocks(model.backbone, N_TOP)
epochs, warm = 15, 2
optimizer = make_optimizer(model, lr_head=3e-3, lr_backbone=1e-3)


def factor(e):
    """Warm-up, then cosine decay."""
    return (e + 1) / (warm + 1) if e < warm else 0.5 * (1 + math.cos(math.pi * (e - warm) / (epochs - warm)))


scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def forward(a):
    return top(model, a)


rows, epoch, waited = [], 0, 0
best_acc, best_state = run_epoch(forward, acts, "val")[1], copy.deepcopy(model.state_dict())
while epoch < epochs and waited < 5:
    train_loss, train_acc = run_epoch(forward, acts, "train", optimizer, seed=epoch)
    val_loss, val_acc = run_epoch(forward, acts, "val")
    scheduler.step()
    rows.append((train_loss, train_acc, val_loss, val_acc))
    if val_acc > best_acc:
        best_acc, best_state, waited = val_acc, copy.deepcopy(model.state_dict()), 0
    else:
        waited += 1
    epoch += 1
model.load_state_dict(best_state)
history_ft = {key: [row[i] for row in rows] for i, key in enumerate(("loss", "accuracy", "val_loss", "val_accuracy"))}
print(f"stopped after {epoch} epochs; best validation accuracy {best_acc:.3f}")
''')

# ------------------------------------------------------------------------------------------- 03 fine-tuning, Keras
answer("03_fine_tuning", "keras", "head_first",
       "frozen before it is wired; the input shape read from the backbone; keyword arguments to keras.Model", '''
def build_classifier(backbone, n_classes):
    """Frozen pretrained backbone (called with training=False) + new trainable Dense head named "head"."""
    backbone.trainable = False
    images = keras.Input(shape=tuple(backbone.input_shape[1:]), name="images")
    features = backbone(images, training=False)
    logits = keras.layers.Dense(n_classes, name="head")(features)
    return keras.Model(inputs=images, outputs=logits, name="classifier")


model = build_classifier(backbone, N_CLASSES)
''')

answer("03_fine_tuning", "keras", "unfreeze",
       "one boolean expression per layer, block prefixes looked up in a set", '''
def unfreeze_last_blocks(backbone, n_blocks):
    """Only the last n_blocks blocks and top_conv trainable, BatchNormalization layers excepted."""
    backbone.trainable = True
    prefixes = sorted({layer.name[:7] for layer in backbone.layers if layer.name.startswith("block")})
    wanted = set(prefixes[-n_blocks:])
    for layer in backbone.layers:
        in_top = layer.name[:7] in wanted or layer.name.startswith("top_conv")
        layer.trainable = in_top and not isinstance(layer, keras.layers.BatchNormalization)
    return backbone
''')

answer("03_fine_tuning", "keras", "param_groups", "the head's variables excluded by identity (a set of ids)", '''
def make_optimizer(model, lr_head, lr_backbone):
    """TwoRateAdam: trainable backbone variables at lr_backbone, the "head" layer's at lr_head."""
    head_ids = {id(v) for v in model.get_layer("head").trainable_variables}
    slow = [v for v in model.trainable_variables if id(v) not in head_ids]
    return TwoRateAdam(learning_rate=lr_head, slow_variables=slow, factor=lr_backbone / lr_head)
''')

answer("03_fine_tuning", "keras", "fine_tune",
       "a callback that keeps the best weights itself (the start included); a two-argument schedule function", '''
epochs = 15
model.trainable = True
unfreeze_last_blocks(model.get_layer(backbone.name), N_TOP)
optimizer = make_optimizer(model, lr_head=3e-3, lr_backbone=1e-3)


def warm_then_cosine(epoch, lr):
    """The head's rate for this epoch (TwoRateAdam scales the backbone's)."""
    if epoch < 2:
        return 3e-3 * (epoch + 1) / 3
    return float(3e-3 * 0.5 * (1 + np.cos(np.pi * (epoch - 2) / (epochs - 2))))


class KeepBest(keras.callbacks.Callback):
    """Early stopping on validation accuracy that counts the starting weights as the first best."""

    def on_train_begin(self, logs=None):
        self.best, self.weights, self.waited = accuracy("val"), self.model.get_weights(), 0

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_accuracy"] > self.best:
            self.best, self.weights, self.waited = logs["val_accuracy"], self.model.get_weights(), 0
        else:
            self.waited += 1
            self.model.stop_training = self.waited >= 5

    def on_train_end(self, logs=None):
        self.model.set_weights(self.weights)


stage2_callbacks = [keras.callbacks.LearningRateScheduler(warm_then_cosine), KeepBest()]
history_ft = train_top(top_model, acts, optimizer, epochs, "stage 2", callbacks=stage2_callbacks)
''')

# ------------------------------------------------------------------------------------------ 04 multi-task, PyTorch
answer("04_multi_task", "pytorch", "multitask_model",
       "the trunk's flattened size measured by a dry run instead of computed; heads applied in a generator", '''
class MultiTaskNet(torch.nn.Module):
    """A shared convolutional trunk and two linear heads: forward(x) -> (left_logits, right_logits)."""

    def __init__(self, input_shape, n_classes):
        super().__init__()
        channels = input_shape[0]
        convolutions = [
            torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
        ]
        with torch.no_grad():  # how many numbers the convolutions leave, measured on one blank image
            n_flat = torch.nn.Sequential(*convolutions)(torch.zeros(1, *input_shape)).shape[1]
        self.trunk = torch.nn.Sequential(*convolutions, torch.nn.Linear(n_flat, 64), torch.nn.ReLU())
        self.left = torch.nn.Linear(64, n_classes[0])
        self.right = torch.nn.Linear(64, n_classes[1])

    def forward(self, x):
        shared = self.trunk(x)
        return tuple(head(shared) for head in (self.left, self.right))


def build_multitask(input_shape, n_classes):
    return MultiTaskNet(input_shape, n_classes)
''')

answer("04_multi_task", "pytorch", "weighted_loss",
       "cross-entropy written out with log_softmax and gather, summed over the tasks in a loop", '''
def weighted_loss(outputs, labels, weights):
    """sum_i weights[i] * cross_entropy(outputs[i], labels[:, i])."""
    total = 0.0
    for i, (logits, weight) in enumerate(zip(outputs, weights)):
        target = labels[:, i].long().unsqueeze(1)
        nll = -torch.log_softmax(logits, dim=1).gather(1, target).squeeze(1)
        total = total + weight * nll.mean()
    return total
''')

answer("04_multi_task", "pytorch", "uncertainty", "vectorised: the losses stacked into one tensor", '''
class UncertaintyWeighting(torch.nn.Module):
    """L = sum_i exp(-s_i) * L_i + s_i with learned log-variances s_i (Kendall et al. 2018)."""

    def __init__(self, n_tasks):
        super().__init__()
        self.log_vars = torch.nn.Parameter(torch.zeros(n_tasks))

    def forward(self, losses):
        stacked = torch.stack([torch.as_tensor(loss, dtype=self.log_vars.dtype) for loss in losses])
        return (torch.exp(-self.log_vars) * stacked + self.log_vars).sum()
''')

answer("04_multi_task", "pytorch", "pcgrad", "branch-free: the dot product clamped at 0 instead of an if", '''
def pcgrad_project(g, other):
    """g without its component along `other` when they conflict (g . other < 0); else g unchanged."""
    conflict = torch.clamp(torch.dot(g, other), max=0.0)  # 0 when aligned or orthogonal
    return g - conflict / torch.dot(other, other).clamp_min(1e-20) * other
''')

# -------------------------------------------------------------------------------------------- 04 multi-task, Keras
answer("04_multi_task", "keras", "multitask_model",
       "the shared trunk as a nested keras.Sequential model called inside the functional one", '''
def build_multitask(input_shape, n_classes):
    """A functional model: a shared convolutional trunk and two heads, outputs named "left" and "right"."""
    layers = keras.layers
    trunk = keras.Sequential([
        keras.Input(input_shape),
        layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
    ], name="trunk")
    inputs = keras.Input(input_shape)
    shared = trunk(inputs)
    heads = {"left": layers.Dense(n_classes[0], name="left"), "right": layers.Dense(n_classes[1], name="right")}
    return keras.Model(inputs, {name: head(shared) for name, head in heads.items()}, name="multitask")
''')

answer("04_multi_task", "keras", "weighted_loss", "losses and weights as dict comprehensions over TASKS", '''
def compile_weighted(model, weights, lr=LR):
    """Compile `model` with one cross-entropy per named output, weighted by `weights` (left, right)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss={task: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for task in TASKS},
        loss_weights={task: float(w) for task, w in zip(TASKS, weights)},
    )
    return model
''')

answer("04_multi_task", "keras", "uncertainty",
       "the losses stacked into one tensor; the weight made with an initializer object and a name", '''
class UncertaintyWeighting(keras.layers.Layer):
    """L = sum_i exp(-s_i) * L_i + s_i with learned log-variances s_i (Kendall et al. 2018)."""

    def __init__(self, n_tasks, **kwargs):
        super().__init__(**kwargs)
        self.log_vars = self.add_weight(shape=(n_tasks,), initializer=keras.initializers.Zeros(), trainable=True,
                                        name="log_vars")

    def call(self, losses):
        stacked = keras.ops.stack([keras.ops.cast(loss, self.log_vars.dtype) for loss in losses])
        return keras.ops.sum(keras.ops.exp(-self.log_vars) * stacked + self.log_vars)
''')

answer("04_multi_task", "keras", "pcgrad", "branch-free: keras.ops.minimum(dot, 0) instead of keras.ops.where", '''
def pcgrad_project(g, other):
    """g without its component along `other` when they conflict (g . other < 0); else g unchanged."""
    ops = keras.ops
    conflict = ops.minimum(ops.sum(g * other), 0.0)  # 0 when aligned or orthogonal
    return g - conflict / ops.maximum(ops.sum(other * other), 1e-20) * other
''')

# ----------------------------------------------------------------------------------- 05 domain adaptation, PyTorch
answer("05_domain_adaptation", "pytorch", "grl", "lam kept as a float; the gradient negated with neg() then scaled", '''
class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by -lam."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        grad_x = grad_output.neg().mul(ctx.lam)
        return grad_x, None  # no gradient for lam


def grad_reverse(x, lam=1.0):
    return GradientReversal.apply(x, lam)
''')

answer("05_domain_adaptation", "pytorch", "lambda_schedule", "the same curve written as tanh(5 p)", '''
import math


def dann_lambda(p):
    """The DANN weight of the reversed gradient at training progress p in [0, 1]."""
    return math.tanh(5.0 * float(p))  # 2 / (1 + exp(-10 p)) - 1 == tanh(5 p)
''')

answer("05_domain_adaptation", "pytorch", "dann",
       "per-row losses weighted by a source mask (no boolean indexing); BCE from logits written with softplus", '''
def dann_loss(labels, domain, class_logits, domain_logits):
    """(class loss on the source rows, domain loss on all rows) for a mixed batch."""
    is_source = (domain == 0).to(class_logits.dtype)
    per_row = F.cross_entropy(class_logits, labels.long(), reduction="none")
    class_loss = (per_row * is_source).sum() / is_source.sum()
    z, d = domain_logits.reshape(-1), domain.to(domain_logits.dtype).reshape(-1)
    domain_loss = (F.softplus(z) - z * d).mean()  # = binary cross-entropy of sigmoid(z) with d
    return class_loss, domain_loss
''')

answer("05_domain_adaptation", "pytorch", "coral",
       "torch.cov and torch.linalg.matrix_norm instead of matrix products", '''
def coral_loss(source_features, target_features):
    """Deep CORAL: squared Frobenius distance of the two covariances / (4 d^2)."""
    d = source_features.shape[1]
    c_s = torch.cov(source_features.T)  # rows of .T are the features; correction=1 divides by n - 1
    c_t = torch.cov(target_features.T)
    return torch.linalg.matrix_norm(c_s - c_t, ord="fro") ** 2 / (4 * d * d)
''')

# ------------------------------------------------------------------------------------- 05 domain adaptation, Keras
answer("05_domain_adaptation", "keras", "grl",
       "the reversal as a named inner function; the upstream gradient taken from args or the keyword", '''
class GradientReversal(keras.layers.Layer):
    """Identity forward; backward multiplies the incoming gradient by -lam (a variable: training sets it)."""

    def __init__(self, lam=1.0, **kwargs):
        super().__init__(**kwargs)
        self.lam = self.add_weight(shape=(), initializer=keras.initializers.Constant(lam), trainable=False,
                                   name="lam")

    def call(self, x):
        lam = ops.convert_to_tensor(self.lam)  # read here, each call: the schedule changes it

        @ops.custom_gradient
        def reverse(t):
            def grad(*args, upstream=None):
                incoming = args[0] if upstream is None else upstream
                return ops.multiply(ops.negative(ops.cast(lam, incoming.dtype)), incoming)

            return ops.copy(t), grad

        return reverse(x)
''')

answer("05_domain_adaptation", "keras", "lambda_schedule", "rewritten as (1 - e) / (1 + e) with e = exp(-10 p)", '''
import math


def dann_lambda(p):
    """The DANN weight of the reversed gradient at training progress p in [0, 1]."""
    e = math.exp(-10.0 * float(p))
    return (1.0 - e) / (1.0 + e)
''')

answer("05_domain_adaptation", "keras", "dann",
       "the source mask as 1 - domain; BCE from logits written with ops.log_sigmoid", '''
def dann_loss(labels, domain, class_logits, domain_logits):
    """(class loss on the source rows, domain loss on all rows) for a mixed batch."""
    d = ops.cast(ops.reshape(domain, (-1,)), "float32")
    source_weight = 1.0 - d  # 1 on source rows, 0 on target rows
    per_row = ops.sparse_categorical_crossentropy(labels, class_logits, from_logits=True)
    class_loss = ops.sum(per_row * source_weight) / ops.sum(source_weight)
    z = ops.cast(ops.reshape(domain_logits, (-1,)), "float32")
    domain_loss = -ops.mean(d * ops.log_sigmoid(z) + (1.0 - d) * ops.log_sigmoid(-z))
    return class_loss, domain_loss
''')

answer("05_domain_adaptation", "keras", "coral", "covariances with ops.einsum; the norm as a sum of squares", '''
def coral_loss(source_features, target_features):
    """Deep CORAL: squared Frobenius distance of the two covariances / (4 d^2)."""
    def covariance(x):
        n = ops.cast(ops.shape(x)[0], x.dtype)
        centred = x - ops.mean(x, axis=0, keepdims=True)
        return ops.einsum("ni,nj->ij", centred, centred) / (n - 1.0)

    d = source_features.shape[-1]
    return ops.sum(ops.square(covariance(source_features) - covariance(target_features))) / (4.0 * d * d)
''')


# ------------------------------------------------------------------------------------------------ further variants
extra("01_ml_basics", "pytorch", "split", "val_first", "train_test_split twice, the validation set taken off first", '''
from sklearn.model_selection import train_test_split


def split_data(x, y, val_fraction=0.2, test_fraction=0.2, seed=0):
    """Shuffle and stratify; return x_train, y_train, x_val, y_val, x_test, y_test."""
    x_rest, x_val, y_rest, y_val = train_test_split(x, y, test_size=val_fraction, stratify=y, random_state=seed)
    x_train, x_test, y_train, y_test = train_test_split(
        x_rest, y_rest, test_size=test_fraction / (1 - val_fraction), stratify=y_rest, random_state=seed)
    return x_train, y_train, x_val, y_val, x_test, y_test
''')

extra("04_multi_task", "keras", "uncertainty", "weights_in_build",
      "the log-variances made in build(), as Keras layers usually make their weights, under another name", '''
class UncertaintyWeighting(keras.layers.Layer):
    """L = sum_i exp(-s_i) * L_i + s_i with learned log-variances s_i (Kendall et al. 2018)."""

    def __init__(self, n_tasks, **kwargs):
        super().__init__(**kwargs)
        self.n_tasks = n_tasks

    def build(self, input_shape):
        self.s = self.add_weight(shape=(self.n_tasks,), initializer="zeros")

    def call(self, losses):
        total = 0.0
        for i, loss in enumerate(losses):
            total = total + keras.ops.exp(-self.s[i]) * loss + self.s[i]
        return total
''')

extra("04_multi_task", "pytorch", "uncertainty", "kendall_half",
      "Kendall et al.'s own 1/sigma^2 * L + log sigma: exp(-s) * L + s / 2, one Parameter per task", '''
class UncertaintyWeighting(torch.nn.Module):
    """1/sigma_i^2 * L_i + log sigma_i with s_i = log sigma_i^2 learned (Kendall et al. 2018)."""

    def __init__(self, n_tasks):
        super().__init__()
        self.s = torch.nn.ParameterList(torch.nn.Parameter(torch.zeros(())) for _ in range(n_tasks))

    def forward(self, losses):
        return sum(torch.exp(-s) * loss + 0.5 * s for s, loss in zip(self.s, losses))
''')

extra("02_feature_extraction", "keras", "freeze", "every_layer",
      "trainable = False on every layer, one by one, and never on the model itself", '''
def freeze(backbone):
    """Freeze every weight (batch norm included, which then runs in inference mode); return the backbone."""
    for layer in backbone.layers:
        layer.trainable = False
    return backbone
''')

extra("03_fine_tuning", "pytorch", "param_groups", "group_per_module",
      "one parameter group per module that holds trainable parameters, each at its part's rate", '''
def make_optimizer(model, lr_head, lr_backbone):
    """Adam: trainable backbone parameters at lr_backbone, head parameters at lr_head."""
    groups = []
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr_head if name.startswith("head") else lr_backbone})
    return torch.optim.Adam(groups)
''')

extra("05_domain_adaptation", "pytorch", "dann", "ignore_index",
      "target rows' labels replaced by cross_entropy's ignore_index (-100) with torch.where", '''
def dann_loss(labels, domain, class_logits, domain_logits):
    """(class loss on the source rows, domain loss on all rows) for a mixed batch."""
    hidden = torch.full_like(labels, -100)  # cross_entropy's ignore_index: these rows count for nothing
    class_loss = F.cross_entropy(class_logits, torch.where(domain == 0, labels, hidden))
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits.squeeze(1), domain.float())
    return class_loss, domain_loss
''')


# Answers a lesson declares in its own module, beside the exercise's probe and judge (lesson_cases.py).
_valid, _extra = valid_answers()
for _key, (_style, _source) in _valid.items():
    answer(*_key, _style, _source)
for _key, (_style, _source) in _extra.items():
    extra(*_key, _style, _source)
