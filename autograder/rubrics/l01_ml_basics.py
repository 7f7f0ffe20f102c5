"""Lesson 01 rubric: splits, metrics, clustering, a first neural network, a majority-class baseline."""

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from tlkit.data import load_dataset

from ..probes.l01_ml_basics import CLUSTER_IDS, CLUSTER_TRUE, MAJORITY_CASES, METRIC_PRED, METRIC_TRUE, SPLIT_LABELS
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
