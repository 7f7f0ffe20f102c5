"""Lesson 06's realistic wrong answers (merged into wrong_answers.WRONG / GROUPS): the classic multi-label mistakes.

MISTAKES_06 lists more of them, each with a phrase its message must contain; test_grouped_mistakes.py grades them
several to a submission (one per exercise), since each exercise of this lesson is judged on its own.
"""

L06 = "06_multi_label"

# The end of the `head` answer cell, the same in both frameworks: it trains the learner's head with their loss.
TRAIN_HEAD = '''

tl.seed_everything(SEED)
head = build_head(train_features.shape[1], n_labels)
train_batches = tl.make_batches(train_features, y_train, batch_size=32, shuffle=True, seed=SEED, scale=1)
val_batches = tl.make_batches(val_features, y_val, batch_size=256, scale=1)
history = tl.fit(head, train_batches, val_batches, epochs=40, lr=1e-3, loss=multilabel_loss(y_train))
'''

COUNTS_TILES = '''def multi_hot(tile_labels, n_classes):
    out = np.zeros((len(tile_labels), n_classes), dtype=np.float32)
    for row, labels in enumerate(tile_labels):
        for label in labels:
            out[row, label] += 1  # one per tile
    return out
'''

FIRST_TILE_ONLY = '''def multi_hot(tile_labels, n_classes):
    return np.eye(n_classes, dtype=np.float32)[np.asarray(tile_labels)[:, 0]]
'''

SOFTMAX_AND_CROSS_ENTROPY = {
    "pytorch": '''def build_head(n_features, n_labels):
    return torch.nn.Sequential(torch.nn.Linear(n_features, n_labels), torch.nn.Softmax(dim=1))


def multilabel_loss(y_train):
    return torch.nn.CrossEntropyLoss()
''' + TRAIN_HEAD,
    "keras": '''def build_head(n_features, n_labels):
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_labels, activation="softmax")])


def multilabel_loss(y_train):
    return keras.losses.CategoricalCrossentropy()
''' + TRAIN_HEAD,
}

SIGMOID_TWICE = {
    "pytorch": '''def build_head(n_features, n_labels):
    return torch.nn.Sequential(torch.nn.Linear(n_features, n_labels), torch.nn.Sigmoid())


def multilabel_loss(y_train):
    positives = np.asarray(y_train).sum(axis=0)
    weights = torch.tensor((len(y_train) - positives) / positives, dtype=torch.float32)
    return torch.nn.BCEWithLogitsLoss(pos_weight=weights)
''' + TRAIN_HEAD,
    "keras": '''def build_head(n_features, n_labels):
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_labels, activation="sigmoid")])


def multilabel_loss(y_train):
    positives = np.asarray(y_train).sum(axis=0)
    weights = keras.ops.convert_to_tensor((len(y_train) - positives) / positives, dtype="float32")

    def loss(y_true, logits):
        y_true = keras.ops.cast(y_true, "float32")
        return keras.ops.mean(weights * y_true * keras.ops.softplus(-logits)
                              + (1 - y_true) * keras.ops.softplus(logits))
    return loss
''' + TRAIN_HEAD,
}

NO_POS_WEIGHT = {
    "pytorch": '''def build_head(n_features, n_labels):
    return torch.nn.Linear(n_features, n_labels)


def multilabel_loss(y_train):
    return torch.nn.BCEWithLogitsLoss()
''' + TRAIN_HEAD,
    "keras": '''def build_head(n_features, n_labels):
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_labels)])


def multilabel_loss(y_train):
    return keras.losses.BinaryCrossentropy(from_logits=True)
''' + TRAIN_HEAD,
}

# The loss written out as -log(sigmoid): right on small logits, so the visible check passes, but training pushes
# some logits far enough that the sigmoid rounds to 0 or 1 and the head's weights become NaN.
LOG_OF_SIGMOID = {
    "pytorch": '''def build_head(n_features, n_labels):
    return torch.nn.Linear(n_features, n_labels)


def multilabel_loss(y_train):
    positives = np.asarray(y_train).sum(axis=0)
    weights = torch.tensor((len(y_train) - positives) / positives, dtype=torch.float32)

    def loss(logits, targets):
        p = torch.sigmoid(logits)
        return torch.mean(-weights * targets * torch.log(p) - (1 - targets) * torch.log(1 - p))

    return loss
''' + TRAIN_HEAD,
    "keras": '''def build_head(n_features, n_labels):
    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_labels)])


def multilabel_loss(y_train):
    positives = np.asarray(y_train).sum(axis=0)
    weights = keras.ops.convert_to_tensor((len(y_train) - positives) / positives, dtype="float32")

    def loss(targets, logits):
        targets = keras.ops.cast(targets, "float32")
        p = keras.ops.sigmoid(logits)
        return keras.ops.mean(-weights * targets * keras.ops.log(p) - (1 - targets) * keras.ops.log(1 - p))

    return loss
''' + TRAIN_HEAD,
}

_TUNE = '''from sklearn.metrics import f1_score


def tune_thresholds(probabilities, targets, grid):
    best = []
    for label in range(targets.shape[1]):
        scores = [f1_score(targets[:, label], probabilities[:, label] >= t, zero_division=0) for t in grid]
        best.append(grid[int(np.argmax(scores))])
    return np.array(best)
'''

ARGMAX_PREDICTIONS = _TUNE + '''

def predict_labels(probabilities, thresholds):
    out = np.zeros_like(probabilities, dtype=np.float32)
    out[np.arange(len(out)), np.argmax(probabilities, axis=1)] = 1.0  # the most likely label
    return out


thresholds = tune_thresholds(val_probs, y_val, GRID)
'''

_PREDICT = '''

def predict_labels(probabilities, thresholds):
    return (probabilities >= thresholds).astype(np.float32)
'''

TUNED_ON_TEST = _TUNE + _PREDICT + '''

thresholds = tune_thresholds(test_probs, y_test, GRID)
'''

ONE_HALF_FOR_EVERY_LABEL = '''def tune_thresholds(probabilities, targets, grid):
    return np.full(targets.shape[1], 0.5)
''' + _PREDICT + '''

thresholds = tune_thresholds(val_probs, y_val, GRID)
'''

_COUNTS = '''def multilabel_metrics(targets, predictions):
    y, p = np.asarray(targets).astype(bool), np.asarray(predictions).astype(bool)
    tp, fp, fn = (y & p).sum(0), (~y & p).sum(0), (y & ~p).sum(0)
    precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=tp + fp > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(len(tp)), where=tp + fn > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(tp)), where=2 * tp + fp + fn > 0)
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())
'''

MACRO_MICRO_SWAPPED = _COUNTS + '''    return {"precision": precision, "recall": recall, "f1": f1,
            "macro_f1": micro, "micro_f1": f1.mean(),
            "subset_accuracy": np.mean((y == p).all(1)), "hamming_loss": np.mean(y != p)}
'''

SUBSET_PER_LABEL = _COUNTS + '''    return {"precision": precision, "recall": recall, "f1": f1,
            "macro_f1": f1.mean(), "micro_f1": micro,
            "subset_accuracy": np.mean(y == p), "hamming_loss": 1 - np.mean((y == p).all(1))}
'''

AP_OVER_EVERY_RANK = '''def mean_average_precision(targets, scores):
    per_label = []
    for label in range(targets.shape[1]):
        ranked = targets[np.argsort(-scores[:, label]), label]
        precision_at_k = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
        per_label.append(precision_at_k.mean())  # every rank, not only the positives'
    return float(np.mean(per_label))
'''

STRICTLY_ABOVE = _TUNE + '''

def predict_labels(probabilities, thresholds):
    return (probabilities > thresholds).astype(np.float32)


thresholds = tune_thresholds(val_probs, y_val, GRID)
'''

AP_LOWEST_FIRST = '''def mean_average_precision(targets, scores):
    per_label = []
    for label in range(targets.shape[1]):
        ranked = targets[np.argsort(scores[:, label]), label]
        hits = np.flatnonzero(ranked)
        per_label.append(np.mean(np.cumsum(ranked)[hits] / (hits + 1)))
    return float(np.mean(per_label))
'''

WRONG = {
    (L06, "multi_hot"): COUNTS_TILES,
    (L06, "head"): SOFTMAX_AND_CROSS_ENTROPY,
    (L06, "thresholds"): ARGMAX_PREDICTIONS,
    (L06, "metrics"): MACRO_MICRO_SWAPPED,
    (L06, "map"): AP_OVER_EVERY_RANK,
}

# The lesson's later parts take their targets from scikit-learn and their probabilities from whatever head was
# trained, so every exercise is graded on its own: all five mistakes in one submission.
GROUPS = {L06: [["multi_hot", "head", "thresholds", "metrics", "map"]]}

# Submissions of several classic mistakes each, at most one per exercise: {answer_id: (source, phrase)}
MISTAKES_06 = {
    "sigmoid-twice+first-tile+tuned-on-test+subset-per-label": {
        "head": (SIGMOID_TWICE, "sigmoid twice"),
        "multi_hot": (FIRST_TILE_ONLY, "only the first tile"),
        "thresholds": (TUNED_ON_TEST, "tuned on the test set"),
        "metrics": (SUBSET_PER_LABEL, "1 - Hamming loss"),
    },
    "strictly-above+lowest-first+log-of-sigmoid": {
        "head": (LOG_OF_SIGMOID, "training diverged"),
        "thresholds": (STRICTLY_ABOVE, "at or above"),
        "map": (AP_LOWEST_FIRST, "highest first"),
    },
    "no-pos-weight+one-half": {
        "head": (NO_POS_WEIGHT, "does not weight the positives"),
        "thresholds": (ONE_HALF_FOR_EVERY_LABEL, "same threshold"),
    },
    "softmax+counts+argmax+swapped": {
        "head": (SOFTMAX_AND_CROSS_ENTROPY, "softmax"),
        "multi_hot": (COUNTS_TILES, "not 2"),
        "thresholds": (ARGMAX_PREDICTIONS, "argmax"),
        "metrics": (MACRO_MICRO_SWAPPED, "swapped"),
        "map": (AP_OVER_EVERY_RANK, "over every rank"),
    },  # = the WRONG group of test_grading.py: graded once for both tests
}
