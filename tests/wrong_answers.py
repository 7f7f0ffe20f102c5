"""Realistic wrong answers, one per graded exercise: what learners really get wrong.

WRONG[(lesson, answer_id)] is either one source for both frameworks or a dict per framework.
Each is graded in the test suite and must lose exactly its exercise's points.
"""

import importlib
from pathlib import Path

from lesson_cases import wrong_answers

SEQUENTIAL_SPLIT = '''from sklearn.model_selection import train_test_split


def split_data(x, y, val_fraction=0.2, test_fraction=0.2, seed=0):
    """No shuffle, no stratification: the first rows train, the last rows test."""
    n_test, n_val = round(len(x) * test_fraction), round(len(x) * val_fraction)
    n_train = len(x) - n_val - n_test
    return (x[:n_train], y[:n_train], x[n_train:n_train + n_val], y[n_train:n_train + n_val],
            x[n_train + n_val:], y[n_train + n_val:])
'''

F1_OF_MEANS = '''def classification_metrics(y_true, y_pred, n_classes):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    precision = np.mean(tp / np.maximum(confusion.sum(axis=0), 1))
    recall = np.mean(tp / np.maximum(confusion.sum(axis=1), 1))
    f1 = 2 * precision * recall / (precision + recall)  # F1 of the means, not the mean of per-class F1
    return {"accuracy": float(tp.sum() / len(y_true)), "precision": float(precision),
            "recall": float(recall), "f1": float(f1), "confusion": confusion}
'''

IDS_AS_LABELS = '''def cluster_purity(y_true, clusters):
    return float(np.mean(np.asarray(y_true) == np.asarray(clusters)))  # treats cluster ids as labels
'''

MAJORITY_OF_TEST = '''def majority_accuracy(y_train, y_test):
    majority = np.bincount(y_test).argmax()  # the most common class of the test labels: peeks at the test set
    return float(np.mean(y_test == majority))
'''

UNTRAINED = {
    "pytorch": '''import math


def build_mlp(input_shape, n_hidden, n_classes):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(input_shape), n_hidden),
                               torch.nn.ReLU(), torch.nn.Linear(n_hidden, n_classes))


model = build_mlp(input_shape, n_hidden=64, n_classes=10)
history = tl.fit(model, train_batches, val_batches, epochs=1, lr=1e-6)  # a learning rate far too small
''',
    "keras": '''def build_mlp(input_shape, n_hidden, n_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(n_hidden, activation="relu"), keras.layers.Dense(n_classes)])


model = build_mlp(input_shape, n_hidden=64, n_classes=10)
history = tl.fit(model, train_batches, val_batches, epochs=1, lr=1e-6)  # a learning rate far too small
''',
}

WRONG = {
    ("00_setup", "load_data"): '''ds = load_dataset("digits")
n_images = len(ds.x)
image_shape = ds.x.shape  # the shape of the whole array, not of one image
n_classes = len(ds.classes)
''',
    ("00_setup", "first_model"): {
        "pytorch": '''model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).to(device)
scores = model(tl.to_inputs(ds.x).to(device))  # every image, not the first 5
''',
        "keras": '''model = keras.Sequential([keras.Input(shape=(8, 8, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(10)])
scores = model(tl.to_inputs(ds.x))  # every image, not the first 5
'''},
    ("01_ml_basics", "split"): SEQUENTIAL_SPLIT,
    ("01_ml_basics", "metrics"): F1_OF_MEANS,
    ("01_ml_basics", "cluster"): IDS_AS_LABELS,
    ("01_ml_basics", "network"): UNTRAINED,
    ("01_ml_basics", "majority"): MAJORITY_OF_TEST,
}

# Wrong answers graded together in one submission (each group's other exercises stay right).
GROUPS = {
    "00_setup": [["load_data"], ["first_model"]],
    "01_ml_basics": [["split", "cluster", "majority"], ["metrics", "network"]],
}


def wrong_source(lesson: str, answer_id: str, framework: str) -> str:
    src = WRONG[(lesson, answer_id)]
    return src[framework] if isinstance(src, dict) else src

# Later lessons keep their wrong answers in wrong_answers_<NN>.py (dicts WRONG and GROUPS of the same form).
for _path in sorted(Path(__file__).parent.glob("wrong_answers_[0-9][0-9].py")):
    _module = importlib.import_module(_path.stem)
    WRONG.update(_module.WRONG)
    GROUPS.update(_module.GROUPS)

# ... and any lesson may declare them in its own module, beside the exercise's probe and judge (lesson_cases.py).
_wrong, _groups = wrong_answers()
WRONG.update(_wrong)
for _lesson, _lesson_groups in _groups.items():
    GROUPS[_lesson] = [*GROUPS.get(_lesson, []), *_lesson_groups]
