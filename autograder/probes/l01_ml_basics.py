"""Lesson 01 probes: call the learner's functions on fresh inputs and record what they return."""

import numpy as np

from .common import callable_, helpers, holdout_predictions, model_summary, require

# Inputs the probes feed to the learner's functions (plain, reproducible; the expectations live in the rubric).
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


PROBES = {"test_split": probe_split, "test_metrics": probe_metrics, "test_cluster": probe_cluster,
          "test_network": probe_network}
