"""Lesson 01: splits, metrics, clustering, a first neural network, a majority-class baseline.

Probes: call the learner's functions on fresh inputs and record what they return.
"""

import numpy as np

from ..probes.common import callable_, helpers, holdout_predictions, model_summary, require

# Inputs the probes feed to the learner's functions (plain, reproducible; the expectations live in the judges).
SPLIT_LABELS = np.repeat([0, 1, 2], [100, 60, 40])  # sorted by class on purpose, like many raw data sets
METRIC_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 0, 1])
METRIC_PRED = np.array([0, 0, 1, 0, 1, 2, 1, 2, 2, 0, 2, 1, 1, 3, 0, 1])
CLUSTER_TRUE = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2])
CLUSTER_IDS = np.array([5, 5, 3, 3, 3, 3, 5, 7, 7, 7, 5, 7])
# (training labels, test labels): the most common class differs between the two, and labels need not start at 0
MAJORITY_CASES = [(np.array([0, 0, 0, 1, 2]), np.array([1, 1, 0, 2])),
                  (np.array([7, 7, 7, 2, 9, 9]), np.array([2, 2, 7, 9, 2]))]


def probe_split(ns, framework):
    split_data = callable_(ns, "split_data")
    ids = np.arange(len(SPLIT_LABELS))
    x = np.stack([ids, ids], axis=1)  # each row carries its own id, so the probe can see where rows went
    parts = split_data(x, SPLIT_LABELS.copy(), val_fraction=0.2, test_fraction=0.2, seed=1)
    if not isinstance(parts, (tuple, list)) or len(parts) != 6:
        return {"n_parts": len(parts) if isinstance(parts, (tuple, list)) else None}
    xs, ys = parts[0::2], parts[1::2]
    return {"n_parts": 6,
            "ids": [np.asarray(p)[:, 0].astype(int).tolist() for p in xs],
            "labels": [np.asarray(p).astype(int).tolist() for p in ys]}


def probe_metrics(ns, framework):
    fn = callable_(ns, "classification_metrics")
    out = fn(METRIC_TRUE.copy(), METRIC_PRED.copy(), n_classes=4)
    return {k: out.get(k) for k in ("accuracy", "precision", "recall", "f1", "confusion")} if isinstance(out, dict) \
        else {"type": type(out).__name__}


def probe_cluster(ns, framework):
    fn = callable_(ns, "cluster_purity")
    return {"purity": fn(CLUSTER_TRUE.copy(), CLUSTER_IDS.copy())}


def probe_majority(ns, framework):
    fn = callable_(ns, "majority_accuracy")
    return {"accuracies": [fn(train.copy(), test.copy()) for train, test in MAJORITY_CASES]}


def probe_network(ns, framework):
    build_mlp = callable_(ns, "build_mlp")
    input_shape = tuple(helpers(framework).to_inputs(np.zeros((1, 8, 8), np.uint8)).shape[1:])
    fresh = {"fresh": build_mlp(input_shape, n_hidden=32, n_classes=10)}
    return {"fresh": model_summary(fresh, "fresh", framework),
            "trained": model_summary(ns, "model", framework),
            "holdout_pred": holdout_predictions(require(ns, "model"), framework, "digits")}


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from tlkit.data import load_dataset

from ..rubric import close

NETWORK_MIN_ACCURACY = 0.90  # clearly below what the lesson's trained one-hidden-layer MLP reaches


def judge_split(obs):
    if obs.get("n_parts") != 6:
        return ["`split_data` must return six arrays: x_train, y_train, x_val, y_val, x_test, y_test."]
    ids = [set(p) for p in obs["ids"]]
    n = len(SPLIT_LABELS)
    msgs = []
    sizes = [len(p) for p in obs["ids"]]
    if [abs(s - e) <= 1 for s, e in zip(sizes, (0.6 * n, 0.2 * n, 0.2 * n))] != [True] * 3:
        msgs.append(f"With 20% validation and 20% test, {n} rows should split about 60/20/20; "
                    f"you returned sizes {sizes}.")
    if ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]:
        msgs.append("Some rows appear in more than one split: training, validation and test must not overlap "
                    "(otherwise the test score is not honest).")
    if set().union(*ids) != set(range(n)):
        msgs.append("Some rows were lost: every row should land in exactly one split.")
    if any(list(SPLIT_LABELS[list(p)]) != list(lab) for p, lab in zip(obs["ids"], obs["labels"])):
        msgs.append("Images and labels got out of step: shuffle x and y with the same order.")
    elif not msgs:
        expected = np.bincount(SPLIT_LABELS) / n
        for name, lab in zip(("training", "validation", "test"), obs["labels"]):
            counts = np.bincount(lab, minlength=len(expected))
            if np.any(np.abs(counts - expected * len(lab)) > 1.0):
                msgs.append(f"The {name} split does not keep the class proportions of the data: shuffle and "
                            "stratify by the labels.")
                break
    return msgs


def judge_metrics(obs):
    if "type" in obs:
        return [f"`classification_metrics` should return a dict, not a {obs['type']}."]
    acc = accuracy_score(METRIC_TRUE, METRIC_PRED)
    p, r, f, _ = precision_recall_fscore_support(METRIC_TRUE, METRIC_PRED, average="macro", zero_division=0)
    msgs = []
    for key, want, hint in (("accuracy", acc, "the fraction of predictions that are right"),
                            ("precision", p, "the macro average: per class, then the mean over classes"),
                            ("recall", r, "the macro average: per class, then the mean over classes"),
                            ("f1", f, "per class 2PR/(P+R), then the mean over classes (not 2PR/(P+R) of the means)")):
        if not close(obs.get(key), want, 1e-6):
            msgs.append(f"`{key}` is wrong: it should be {hint}.")
    cm = obs.get("confusion")
    if np.asarray(cm).tolist() != confusion_matrix(METRIC_TRUE, METRIC_PRED, labels=range(4)).tolist():
        hint = " (rows are the true class, columns the predicted class)" \
            if np.asarray(cm).T.tolist() == confusion_matrix(METRIC_TRUE, METRIC_PRED).tolist() else ""
        msgs.append(f"`confusion` is not the confusion matrix{hint}.")
    return msgs


def judge_cluster(obs):
    clusters = {c: np.bincount(CLUSTER_TRUE[CLUSTER_IDS == c]).max() for c in np.unique(CLUSTER_IDS)}
    want = sum(clusters.values()) / len(CLUSTER_TRUE)
    if close(obs.get("purity"), want, 1e-6):
        return []
    return [("`cluster_purity` is wrong: give each cluster its most common true label, then count how many points "
            "carry that label. Cluster ids are arbitrary numbers, not labels.")]


def judge_network(obs):
    msgs = []
    want = 64 * 32 + 32 + 32 * 10 + 10
    if obs["fresh"]["params"] != want:
        msgs.append(f"`build_mlp(64, 32, 10)` has {obs['fresh']['params']} parameters; a network with one hidden "
                    f"layer of 32 units has {want}.")
    y = load_dataset("digits", "holdout").y
    acc = float(np.mean(np.asarray(obs["holdout_pred"]) == y))
    if acc < NETWORK_MIN_ACCURACY:
        msgs.append(f"Your trained `model` classifies {acc:.0%} of unseen digits correctly; a trained MLP should "
                    f"reach at least {NETWORK_MIN_ACCURACY:.0%}. Did the training cell run, for enough epochs?")
    return msgs


def judge_majority(obs):
    got = obs["accuracies"]

    def scores(pick):  # the accuracy of always predicting the class ``pick(train, test)``
        return [float(np.mean(test == pick(train, test))) for train, test in MAJORITY_CASES]

    if all(close(g, w, 1e-9) for g, w in zip(got, scores(lambda train, _: np.bincount(train).argmax()))):
        return []
    if all(close(g, w, 1e-9) for g, w in zip(got, scores(lambda _, test: np.bincount(test).argmax()))):
        return [("`majority_accuracy` takes the most common class of the test labels: that peeks at the test set. "
                "Take the class from `y_train`; `y_test` is only for scoring.")]
    return [("`majority_accuracy` should return the fraction of `y_test` equal to the most common class of `y_train` "
            "(a number between 0 and 1).")]


# ===== test cases: read by tests/ only =====

# Part E's other cases are in tests/wrong_answers.py and tests/valid_answers.py, written before this section existed.
TEST_CASES = {
    "majority": {"extra": {("keras", "unique-counts"): ("np.unique with return_counts, argmax of the counts", '''
def majority_accuracy(y_train, y_test):
    """Test accuracy of always predicting the most common class of the training labels."""
    classes, counts = np.unique(y_train, return_counts=True)
    return float((np.asarray(y_test) == classes[counts.argmax()]).mean())
''')}},
}
