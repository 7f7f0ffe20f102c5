"""Lesson 06's correct answers in other styles (registered into valid_answers.VALID / EXTRA).

Written from the learner notebook alone, by a reviewer who had not read the solution: loops, scikit-learn, closures,
a custom module, a Keras layer whose weights are made in build().
"""

from valid_answers import answer, extra
from wrong_answers_06 import TRAIN_HEAD

L06 = "06_multi_label"


FRAMEWORK_FREE = {  # answer_id -> (style, source): the same in both frameworks
    "multi_hot": ("a loop over the set of each row's classes", '''
def multi_hot(tile_labels, n_classes):
    """(N, k) class ids -> (N, n_classes) float32, 1.0 for every class present in the row."""
    tile_labels = np.asarray(tile_labels)
    out = np.zeros((len(tile_labels), n_classes), dtype=np.float32)
    for i, row in enumerate(tile_labels):
        for c in set(int(v) for v in row):
            out[i, c] = 1.0
    return out
'''),
    "thresholds": ("F1 of every grid value at once, vectorised over (grid, examples, labels)", '''
from sklearn.metrics import f1_score


def predict_labels(probabilities, thresholds):
    """(N, L) probabilities, (L,) thresholds -> (N, L) 0/1 predictions."""
    return np.where(np.asarray(probabilities) >= np.reshape(thresholds, (1, -1)), 1.0, 0.0)


def tune_thresholds(probabilities, targets, grid):
    """For each label, the grid value with the best F1 of that label on these examples."""
    p, y, grid = np.asarray(probabilities), np.asarray(targets).astype(bool), np.asarray(grid)
    pred = p[None, :, :] >= grid[:, None, None]          # (G, N, L)
    tp = (pred & y[None]).sum(axis=1)
    fp = (pred & ~y[None]).sum(axis=1)
    fn = (~pred & y[None]).sum(axis=1)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(denom.shape, dtype=float), where=denom > 0)  # (G, L)
    return grid[np.argmax(f1, axis=0)]


thresholds = tune_thresholds(val_probs, y_val, GRID)
'''),
    "metrics": ("a Python loop over labels and examples", '''
def multilabel_metrics(targets, predictions):
    """Per-label precision, recall and F1; macro and micro F1; subset accuracy; Hamming loss."""
    y = np.asarray(targets).astype(int)
    p = np.asarray(predictions).astype(int)
    n, n_lab = y.shape
    precision, recall, f1 = np.zeros(n_lab), np.zeros(n_lab), np.zeros(n_lab)
    TP = FP = FN = 0
    for j in range(n_lab):
        tp = int(np.sum((y[:, j] == 1) & (p[:, j] == 1)))
        fp = int(np.sum((y[:, j] == 0) & (p[:, j] == 1)))
        fn = int(np.sum((y[:, j] == 1) & (p[:, j] == 0)))
        TP, FP, FN = TP + tp, FP + fp, FN + fn
        precision[j] = tp / (tp + fp) if tp + fp else 0.0
        recall[j] = tp / (tp + fn) if tp + fn else 0.0
        f1[j] = 2 * precision[j] * recall[j] / (precision[j] + recall[j]) if precision[j] + recall[j] else 0.0
    micro = 2 * TP / (2 * TP + FP + FN) if (2 * TP + FP + FN) else 0.0
    exact = sum(1 for i in range(n) if all(y[i] == p[i]))
    wrong = sum(int(y[i, j] != p[i, j]) for i in range(n) for j in range(n_lab))
    return {"precision": precision, "recall": recall, "f1": f1, "macro_f1": float(np.mean(f1)),
            "micro_f1": float(micro), "subset_accuracy": exact / n, "hamming_loss": wrong / (n * n_lab)}
'''),
    "map": ("precision at a positive counted as the share of examples scored at least as high", '''
def mean_average_precision(targets, scores):
    """The mean over labels of each label's average precision."""
    y, s = np.asarray(targets), np.asarray(scores, dtype=float)
    aps = []
    for j in range(y.shape[1]):
        pos = s[y[:, j] == 1, j]
        # precision at a positive = positives scored at least as high / everything scored at least as high
        precisions = [np.sum(pos >= v) / np.sum(s[:, j] >= v) for v in pos]
        aps.append(np.mean(precisions))
    return float(np.mean(aps))
'''),
}

EXTRA_FREE = {  # (answer_id, variant) -> (style, source)
    ("multi_hot", "sklearn"): ("scikit-learn's MultiLabelBinarizer", '''
from sklearn.preprocessing import MultiLabelBinarizer


def multi_hot(tile_labels, n_classes):
    """(N, k) class ids -> (N, n_classes) float32, 1.0 for every class present in the row."""
    return MultiLabelBinarizer(classes=list(range(n_classes))).fit_transform(tile_labels).astype("float32")
'''),
    ("metrics", "sklearn"): ("scikit-learn's precision_recall_fscore_support", '''
from sklearn.metrics import precision_recall_fscore_support


def multilabel_metrics(targets, predictions):
    """Per-label precision, recall and F1; macro and micro F1; subset accuracy; Hamming loss."""
    y, p = np.asarray(targets).astype(int), np.asarray(predictions).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(y, p, average=None, zero_division=0)
    _, _, micro, _ = precision_recall_fscore_support(y, p, average="micro", zero_division=0)
    return {"precision": precision, "recall": recall, "f1": f1, "macro_f1": f1.mean(), "micro_f1": micro,
            "subset_accuracy": (y == p).all(axis=1).mean(), "hamming_loss": (y != p).mean()}
'''),
    ("map", "cumsum"): ("vectorised cumulative precision over all labels at once", '''
def mean_average_precision(targets, scores):
    """The mean over labels of each label's average precision."""
    y, s = np.asarray(targets, dtype=float), np.asarray(scores, dtype=float)
    order = np.argsort(-s, axis=0, kind="stable")
    ranked = np.take_along_axis(y, order, axis=0)                      # targets in rank order, per label
    precision_at_k = np.cumsum(ranked, axis=0) / np.arange(1, len(y) + 1)[:, None]
    ap = (precision_at_k * ranked).sum(axis=0) / ranked.sum(axis=0)
    return float(ap.mean())
'''),
}

answer(L06, "pytorch", "head", "a custom nn.Module head; the loss a closure over F.binary_cross_entropy_with_logits",
       '''
import torch.nn.functional as F


class LogitHead(torch.nn.Module):
    def __init__(self, n_features, n_labels):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_labels)

    def forward(self, x):
        return self.linear(x)


def build_head(n_features, n_labels):
    """A linear layer: (N, n_features) features -> (N, n_labels) logits, no activation."""
    return LogitHead(n_features, n_labels)


def multilabel_loss(y_train):
    """Binary cross-entropy on logits, each label's positives weighted by its negatives / positives."""
    y = torch.as_tensor(np.asarray(y_train), dtype=torch.float32)
    positives = y.sum(dim=0)
    negatives = y.shape[0] - positives
    pos_weight = negatives / positives

    def loss(logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets.float(),
                                                  pos_weight=pos_weight.to(logits.device))
    return loss
''' + TRAIN_HEAD)

extra(L06, "pytorch", "head", "loop", "Sequential head; pos_weight counted label by label in a loop",
      '''
def build_head(n_features, n_labels):
    """A linear layer: (N, n_features) features -> (N, n_labels) logits, no activation."""
    return torch.nn.Sequential(torch.nn.Linear(n_features, n_labels))


def multilabel_loss(y_train):
    """Binary cross-entropy on logits, each label's positives weighted by its negatives / positives."""
    y_train = np.asarray(y_train)
    weights = []
    for j in range(y_train.shape[1]):
        pos = float((y_train[:, j] == 1).sum())
        neg = float((y_train[:, j] == 0).sum())
        weights.append(neg / pos)
    return torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weights, dtype=torch.float32))
''' + TRAIN_HEAD)
answer(L06, "keras", "head", "a layer whose kernel and bias are made in build(); the loss a closure over keras.ops", '''
class LogitHead(keras.layers.Layer):
    def __init__(self, n_labels, **kwargs):
        super().__init__(**kwargs)
        self.n_labels = n_labels

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.n_labels), initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(self.n_labels,), initializer="zeros")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) + self.bias


def build_head(n_features, n_labels):
    """A linear layer: (N, n_features) features -> (N, n_labels) logits, no activation."""
    inputs = keras.Input((n_features,))
    return keras.Model(inputs, LogitHead(n_labels)(inputs))


def multilabel_loss(y_train):
    """Binary cross-entropy on logits, each label's positives weighted by its negatives / positives."""
    y_train = np.asarray(y_train, dtype="float32")
    weight = (len(y_train) - y_train.sum(axis=0)) / y_train.sum(axis=0)

    def weighted_bce(y_true, logits):
        y_true = keras.ops.cast(y_true, logits.dtype)
        log_p, log_not_p = keras.ops.log_sigmoid(logits), keras.ops.log_sigmoid(-logits)
        return -keras.ops.mean(weight * y_true * log_p + (1.0 - y_true) * log_not_p)
    return weighted_bce''' + TRAIN_HEAD)

for _framework in ("pytorch", "keras"):
    for _answer_id, (_style, _source) in FRAMEWORK_FREE.items():
        answer(L06, _framework, _answer_id, _style, _source)
for (_answer_id, _variant), (_style, _source) in EXTRA_FREE.items():  # NumPy only: one framework is enough
    extra(L06, "pytorch", _answer_id, _variant, _style, _source)
