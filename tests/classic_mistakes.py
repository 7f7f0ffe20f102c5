"""Classic mistakes that an instructor found scoring full marks: each must now lose exactly its exercise's points.

Written as a learner would write them. MISTAKES in test_classic_mistakes.py pairs each with the lesson, the answer
cell it replaces and a phrase of the message that must name it.
"""

# ----------------------------------------------------------------- lesson 02, Part C: a softmax in the head
SOFTMAX_HEAD = {
    "pytorch": '''tl.seed_everything(SEED)
head = torch.nn.Sequential(torch.nn.Linear(1280, len(ds.classes)), torch.nn.Softmax(dim=1))  # class probabilities
head_history = tl.fit(head, train_feature_batches, val_feature_batches, epochs=30, lr=3e-3)
''',
    "keras": '''tl.seed_everything(SEED)
head = keras.Sequential([keras.Input((1280,)), keras.layers.Dense(len(ds.classes), activation="softmax")])
head_history = tl.fit(head, train_feature_batches, val_feature_batches, epochs=30, lr=3e-3)
''',
}

# ----------------------------------------------------------------- lesson 02, Part B: features in training mode
# Right in the learner's own run, where Part A's check has frozen the backbone first; wrong for a backbone handed
# over in training mode, which the instructions say extract_features must switch to inference mode itself.
FEATURES_WITHOUT_EVAL = {
    "pytorch": '''def extract_features(backbone, images, batch_size=64):
    """Pooled features (N, 1280) of uint8 images (N, H, W, 3), without gradients."""
    where = next(backbone.parameters()).device
    rows = []
    for start in range(0, len(images), batch_size):
        with torch.no_grad():  # no gradients, so "inference"; but the backbone stays in the mode it came in
            x = tl.preprocess_inputs(images[start:start + batch_size], size=IMAGE_SIZE).to(where)
            rows.append(backbone(x).cpu().numpy())
    return np.concatenate(rows)
''',
    "keras": '''def extract_features(backbone, images, batch_size=64):
    """Pooled features (N, 1280) of uint8 images (N, H, W, 3)."""
    rows = []
    for start in range(0, len(images), batch_size):
        x = tl.preprocess_inputs(images[start:start + batch_size], size=IMAGE_SIZE)
        rows.append(keras.ops.convert_to_numpy(backbone(x, training=True)))  # "the backbone is frozen anyway"
    return np.concatenate(rows)
''',
}

# ----------------------------------------------------------------- lesson 03, Part D: stage 2 done wrong
# Lesson 03's stage-2 loop (PyTorch), as the lesson writes it; the mistakes differ in the lines before it.
STAGE_2_LOOP = '''scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [
    torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / 3, total_iters=2),
    torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs - 2)], milestones=[2])
history_ft = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
forward = lambda a: top(model, a)  # noqa: E731
best_accuracy, best_state, waited = run_epoch(forward, acts, "val")[1], copy.deepcopy(model.state_dict()), 0
for epoch in tqdm(range(epochs), desc="stage 2 (fine-tune)"):
    scores = (*run_epoch(forward, acts, "train", optimizer, seed=epoch), *run_epoch(forward, acts, "val"))
    scheduler.step()
    for key, value in zip(history_ft, scores):
        history_ft[key].append(value)
    if scores[3] > best_accuracy:
        best_accuracy, best_state, waited = scores[3], copy.deepcopy(model.state_dict()), 0
    else:
        waited += 1
        if waited >= patience:
            break
model.load_state_dict(best_state)
'''

KERAS_STAGE_2 = '''
def warm_cosine(epoch, peak):
    return peak * (epoch + 1) / 3 if epoch < 2 else peak * 0.5 * (1 + np.cos(np.pi * (epoch - 2) / (epochs - 2)))


schedule = keras.callbacks.LearningRateScheduler(lambda epoch: warm_cosine(epoch, PEAK))
stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=5, restore_best_weights=True)
history_ft = train_top(top_model, acts, optimizer, epochs, "stage 2 (fine-tune)", callbacks=[schedule, stop])
'''

HEAD_FROZEN_IN_STAGE_2 = {
    "pytorch": '''model.head.requires_grad_(False)  # the head was trained in stage 1: keep it, tune the backbone
unfreeze_last_blocks(model.backbone, N_TOP)
epochs, patience = 15, 5
optimizer = make_optimizer(model, lr_head=3e-3, lr_backbone=1e-3)
''' + STAGE_2_LOOP,
    "keras": '''model.trainable = True
unfreeze_last_blocks(model.get_layer(backbone.name), N_TOP)
model.get_layer("head").trainable = False  # the head was trained in stage 1: keep it, tune the backbone
epochs, PEAK = 15, 3e-3
optimizer = make_optimizer(model, lr_head=3e-3, lr_backbone=1e-3)
''' + KERAS_STAGE_2,
}

TEN_TIMES_THE_RATES = {
    "pytorch": '''model.head.requires_grad_(True)
unfreeze_last_blocks(model.backbone, N_TOP)
epochs, patience = 15, 5
optimizer = make_optimizer(model, lr_head=3e-2, lr_backbone=1e-2)  # "1e-2 is what stage 1 used", 10x too high
''' + STAGE_2_LOOP,
    "keras": '''model.trainable = True
unfreeze_last_blocks(model.get_layer(backbone.name), N_TOP)
epochs, PEAK = 15, 3e-2
optimizer = make_optimizer(model, lr_head=3e-2, lr_backbone=1e-2)  # "1e-2 is what stage 1 used", 10x too high
''' + KERAS_STAGE_2,
}

ONLY_THE_HEAD_RETRAINED = '''model.head.requires_grad_(True)
epochs, patience = 15, 5
optimizer = torch.optim.Adam(model.head.parameters(), lr=3e-3)  # "fine-tune" the head a little more
''' + STAGE_2_LOOP

NUDGE_RATES = {  # the textbook's nudge: right for a target close to ImageNet, too small for digits on photos
    "pytorch": '''model.head.requires_grad_(True)
unfreeze_last_blocks(model.backbone, N_TOP)
epochs, patience = 15, 5
optimizer = make_optimizer(model, lr_head=1e-4, lr_backbone=1e-5)
''' + STAGE_2_LOOP,
    "keras": '''model.trainable = True
unfreeze_last_blocks(model.get_layer(backbone.name), N_TOP)
epochs, PEAK = 15, 1e-4
optimizer = make_optimizer(model, lr_head=1e-4, lr_backbone=1e-5)
''' + KERAS_STAGE_2,
}

# ----------------------------------------------------------------- lesson 03 Keras, Part A: backbone in training mode
BACKBONE_CALLED_IN_TRAINING_MODE = '''def build_classifier(backbone, n_classes):
    backbone.trainable = False
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    features = backbone(inputs, training=True)  # "we are building a model to train"
    outputs = keras.layers.Dense(n_classes, name="head")(features)
    return keras.Model(inputs, outputs)


model = build_classifier(backbone, N_CLASSES)
'''

# ----------------------------------------------------------------- lesson 05, Part D: CORAL computed in NumPy
CORAL_IN_NUMPY = {
    "pytorch": '''def coral_loss(source_features, target_features):
    """Deep CORAL: squared Frobenius distance of the two covariances / (4 d^2)."""
    cs = np.cov(source_features.detach().cpu().numpy(), rowvar=False)  # np.cov centres and divides by n - 1
    ct = np.cov(target_features.detach().cpu().numpy(), rowvar=False)
    d = cs.shape[0]
    return torch.tensor(((cs - ct) ** 2).sum() / (4 * d * d), dtype=torch.float32)
''',
    "keras": '''def coral_loss(source_features, target_features):
    """Deep CORAL: squared Frobenius distance of the two covariances / (4 d^2)."""
    cs = np.cov(ops.convert_to_numpy(source_features), rowvar=False)  # np.cov centres and divides by n - 1
    ct = np.cov(ops.convert_to_numpy(target_features), rowvar=False)
    d = cs.shape[0]
    return ops.convert_to_tensor(((cs - ct) ** 2).sum() / (4 * d * d), dtype="float32")
''',
}


# ----------------------------------------------------------------- lesson 04, Part A: heads the training cannot use
# Wrong in Part A only: the checks of Parts B-D must still grade the learner's answers to them.
HEADS_STACKED_IN_A_SEQUENTIAL = '''def build_multitask(input_shape, n_classes):
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(n_classes[0], name="left"),  # the heads stacked: "right" reads "left"'s scores
        keras.layers.Dense(n_classes[1], name="right"),
    ])
'''

OUTPUTS_AS_A_LIST = '''def build_multitask(input_shape, n_classes):
    inputs = keras.Input(shape=input_shape)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    features = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(h))
    left = keras.layers.Dense(n_classes[0], name="left")(features)
    right = keras.layers.Dense(n_classes[1], name="right")(features)
    return keras.Model(inputs, [left, right])  # a list, where the lesson asks for a dict by task name
'''

OUTPUTS_CONCATENATED = '''class MultiTaskNet(torch.nn.Module):
    def __init__(self, input_shape, n_classes):
        super().__init__()
        channels, height, width = input_shape
        self.trunk = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(16 * (height // 4) * (width // 4), 64), torch.nn.ReLU())
        self.left = torch.nn.Linear(64, n_classes[0])
        self.right = torch.nn.Linear(64, n_classes[1])

    def forward(self, x):
        features = self.trunk(x)
        return torch.cat([self.left(features), self.right(features)], dim=1)  # one tensor, not a pair


def build_multitask(input_shape, n_classes):
    return MultiTaskNet(input_shape, n_classes)
'''

# ----------------------------------------------------------------- lesson 04 Keras, Part D: a Python if on a tensor
# Right on eager tensors, so the projection itself checks out; fit traces the training step into a graph, where the
# if raises inside the lesson's training cell.
PCGRAD_WITH_A_PYTHON_IF = '''def pcgrad_project(g, other):
    """g without its component along `other` when they conflict (g . other < 0); else g unchanged."""
    dot = keras.ops.sum(g * other)
    if dot < 0:
        return g - dot / keras.ops.sum(other * other) * other
    return g
'''


# ----------------------------------------------------------------- lesson 05, Part C: source rows taken by position
# Right on the lesson's batches (source rows first, then as many target rows), wrong on any other arrangement.
DANN_ROWS_BY_POSITION = {
    "pytorch": '''def dann_loss(labels, domain, class_logits, domain_logits):
    """(class loss on the source rows, domain loss on all rows) for a mixed batch."""
    n = len(labels) // 2  # the batch is the source half, then the target half
    class_loss = F.cross_entropy(class_logits[:n], labels[:n])
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits.reshape(-1), domain.float())
    return class_loss, domain_loss
''',
    "keras": '''def dann_loss(labels, domain, class_logits, domain_logits):
    """(class loss on the source rows, domain loss on all rows) for a mixed batch."""
    n = ops.shape(labels)[0] // 2  # the batch is the source half, then the target half
    class_loss = ops.mean(ops.sparse_categorical_crossentropy(labels[:n], class_logits[:n], from_logits=True))
    domain_loss = ops.mean(ops.binary_crossentropy(ops.reshape(ops.cast(domain, "float32"), (-1, 1)), domain_logits,
                                                   from_logits=True))
    return class_loss, domain_loss
''',
}


# ----------------------------------------------------------------- right answers in another style: full marks
CUSTOM_MODULE_HEAD = '''class Head(torch.nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_classes)

    def forward(self, features):
        return self.linear(features)


tl.seed_everything(SEED)
head = Head(1280, len(ds.classes))
head_history = tl.fit(head, train_feature_batches, val_feature_batches, epochs=30, lr=3e-3)
'''

SOFTMAX_HEAD_WITH_A_LOSS_FOR_PROBABILITIES = '''tl.seed_everything(SEED)
head = keras.Sequential([keras.Input((1280,)), keras.layers.Dense(len(ds.classes), activation="softmax")])
head_history = tl.fit(head, train_feature_batches, val_feature_batches, epochs=30, lr=3e-3,
                      loss=keras.losses.SparseCategoricalCrossentropy())  # the head outputs probabilities
'''

OWN_PARAMETER_GROUPS = '''model.head.requires_grad_(True)
unfreeze_last_blocks(model.backbone, N_TOP)
tuned = [p for p in model.backbone.parameters() if p.requires_grad]
opt2 = torch.optim.Adam([{"params": tuned, "lr": 1e-3}, {"params": model.head.parameters(), "lr": 3e-3}])
history_ft = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
forward = lambda a: top(model, a)  # noqa: E731
best_acc, best_state, waited = run_epoch(forward, acts, "val")[1], copy.deepcopy(model.state_dict()), 0
for epoch in range(15):
    # warm-up then cosine, by hand
    factor = (epoch + 1) / 3 if epoch < 2 else 0.5 * (1 + np.cos(np.pi * (epoch - 2) / 13))
    for group, peak in zip(opt2.param_groups, (1e-3, 3e-3)):
        group["lr"] = peak * factor
    scores = (*run_epoch(forward, acts, "train", opt2, seed=epoch), *run_epoch(forward, acts, "val"))
    for key, value in zip(history_ft, scores):
        history_ft[key].append(value)
    if scores[3] > best_acc:
        best_acc, best_state, waited = scores[3], copy.deepcopy(model.state_dict()), 0
    elif (waited := waited + 1) >= 5:
        break
model.load_state_dict(best_state)
'''

SEQUENTIAL_CLASSIFIER = '''def build_classifier(backbone, n_classes):
    backbone.trainable = False  # a Sequential model calls it with the model's own training flag
    return keras.Sequential([keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)), backbone,
                             keras.layers.Dense(n_classes, name="head")])


model = build_classifier(backbone, N_CLASSES)
'''

CORAL_WITH_TORCH_COV = '''def coral_loss(source_features, target_features):
    d = source_features.shape[1]
    gap = torch.cov(source_features.T) - torch.cov(target_features.T)  # rows are observations: transpose
    return gap.pow(2).sum() / (4 * d ** 2)
'''

CORAL_WITH_EINSUM = '''def coral_loss(source_features, target_features):
    def covariance(x):
        n = ops.cast(ops.shape(x)[0], "float32")
        xc = x - ops.mean(x, axis=0)
        return ops.einsum("ni,nj->ij", xc, xc) / (n - 1.0)

    d = ops.cast(ops.shape(source_features)[-1], "float32")
    return ops.sum((covariance(source_features) - covariance(target_features)) ** 2) / (4.0 * d ** 2)
'''
