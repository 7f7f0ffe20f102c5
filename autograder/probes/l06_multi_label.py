"""Lesson 06 probes: call the learner's multi-label functions on fixed inputs and record what they return."""

import numpy as np

from ..probe_runtime import ProbeError
from .common import callable_, helpers, require

DATASET, INPUT_SIZE = "texture_mosaics", 64  # as the lesson feeds the backbone (IMAGE_SIZE in the notebook)
# (tile labels, n_classes): classes on several tiles, a class on every tile, classes that appear nowhere
MULTI_HOT_CASES = [(np.array([[0, 0, 3, 3], [1, 2, 3, 4], [5, 5, 5, 5]]), 6), (np.array([[2, 0], [1, 1]]), 3)]
HEAD_INPUT = np.linspace(-2, 2, 5 * 16, dtype=np.float32).reshape(5, 16)
_rng = np.random.default_rng(6)
# multi-hot targets whose labels have 6, 3, 2 and 1 positives of 8: pos_weight differs per label
LOSS_TARGETS = np.zeros((8, 4), dtype=np.float32)
for _label, _n in enumerate((6, 3, 2, 1)):
    LOSS_TARGETS[_rng.permutation(8)[:_n], _label] = 1
LOSS_LOGITS = np.round(_rng.normal(0, 2, (8, 4)), 3).astype(np.float32)
# probabilities whose best per-label cut differs from label to label and from 0.5
THRESHOLD_TARGETS = (_rng.random((60, 4)) < np.array([0.6, 0.4, 0.2, 0.1])).astype(np.float32)
THRESHOLD_PROBS = np.clip(0.35 * THRESHOLD_TARGETS + _rng.random((60, 4)) * np.array([0.6, 0.7, 0.9, 1.0]), 0, 1)
GRID = np.round(np.linspace(0.05, 0.95, 19), 2)
# predictions: rows with no, one and several labels, a probability equal to its threshold; thresholds per label
PREDICT_PROBS = np.array([[0.9, 0.8, 0.1, 0.3], [0.2, 0.3, 0.35, 0.1], [0.6, 0.1, 0.7, 0.72], [0.1, 0.25, 0.2, 0.1],
                          [0.1, 0.1, 0.1, 0.1]])
PREDICT_THRESHOLDS = np.array([0.5, 0.25, 0.3, 0.8])
METRIC_TARGETS = (_rng.random((20, 5)) < np.array([0.7, 0.5, 0.3, 0.2, 0.1])).astype(int)
METRIC_PREDICTIONS = np.where(_rng.random((20, 5)) < 0.25, 1 - METRIC_TARGETS, METRIC_TARGETS)
METRIC_PREDICTIONS[:, 4] = 0  # a label never predicted: its precision and F1 are 0
MAP_TARGETS = (_rng.random((40, 4)) < np.array([0.5, 0.3, 0.2, 0.1])).astype(int)
MAP_TARGETS[0] = 1  # every label has a positive
MAP_SCORES = _rng.random((40, 4)) + 0.6 * MAP_TARGETS


def probe_multi_hot(ns, framework):
    fn = callable_(ns, "multi_hot")
    outputs = [np.asarray(fn(labels.copy(), n), dtype=float) for labels, n in MULTI_HOT_CASES]
    return {"outputs": [o.tolist() for o in outputs]}


def _loss_value_and_gradient(loss, framework):
    """The learner's loss on the fixed logits and targets, and its gradient with respect to the logits."""
    tl = helpers(framework)
    if framework == "pytorch":
        import torch

        logits = torch.tensor(LOSS_LOGITS, requires_grad=True)
        value, (grad,) = tl.loss_gradients(lambda: loss(logits, torch.from_numpy(LOSS_TARGETS)), [logits])
    else:
        import keras

        logits = keras.Variable(LOSS_LOGITS)
        value, (grad,) = tl.loss_gradients(lambda: loss(LOSS_TARGETS, logits), [logits])
    return float(tl.to_numpy(value)), tl.to_numpy(grad)


def _holdout_probabilities(head, ns, framework):
    """The trained head's probabilities on the grader's held-out mosaics (their labels never enter the kernel)."""
    from tlkit.data import load_inputs

    tl = helpers(framework)
    images = load_inputs(DATASET, "holdout")
    backbone = tl.load_backbone("efficientnet_lite0", include_top=False, input_size=INPUT_SIZE)
    chunks = []
    for start in range(0, len(images), 100):
        x = tl.preprocess_inputs(images[start:start + 100], size=INPUT_SIZE)
        if framework == "pytorch":
            import torch

            with torch.no_grad():
                out = backbone.eval()(x)
        else:
            out = backbone(x, training=False)
        chunks.append(tl.to_numpy(out))
    features = (np.concatenate(chunks) - np.asarray(require(ns, "mean"))) / np.asarray(require(ns, "spread"))
    logits = tl.predict(head, features.astype(np.float32), scale=1)
    return np.round(1 / (1 + np.exp(-logits)), 5)


def probe_head(ns, framework):
    tl = helpers(framework)
    fresh = callable_(ns, "build_head")(16, 5)
    outputs = tl.predict(fresh, HEAD_INPUT.copy(), scale=1)
    loss = callable_(ns, "multilabel_loss")(LOSS_TARGETS.copy())
    try:
        value, grad = _loss_value_and_gradient(loss, framework)
    except Exception as err:  # noqa: BLE001  (a loss computed outside the framework has no gradient)
        value, grad = None, None
        loss_error = f"{type(err).__name__}: {err}"[:300]
    else:
        loss_error = None
    return {"fresh_outputs": np.round(outputs, 6).tolist(), "loss": value,
            "loss_gradient": None if grad is None else np.round(grad, 7).tolist(), "loss_error": loss_error,
            "holdout_probs": _holdout_probabilities(require(ns, "head"), ns, framework).tolist()}


def probe_thresholds(ns, framework):
    predict_labels = callable_(ns, "predict_labels")
    tune = callable_(ns, "tune_thresholds")
    predicted = np.asarray(predict_labels(PREDICT_PROBS.copy(), PREDICT_THRESHOLDS.copy()), dtype=float)
    tuned = np.asarray(tune(THRESHOLD_PROBS.copy(), THRESHOLD_TARGETS.copy(), GRID.copy()), dtype=float)
    val_probs, test_probs = np.asarray(require(ns, "val_probs")), np.asarray(require(ns, "test_probs"))
    y_val, y_test = np.asarray(require(ns, "y_val")), np.asarray(require(ns, "y_test"))
    thresholds = require(ns, "thresholds")
    if np.ndim(thresholds) > 1:
        raise ProbeError("`thresholds` should hold one threshold per label.")
    return {"predicted": predicted.tolist(), "tuned": tuned.tolist(),
            "thresholds": np.asarray(thresholds, dtype=float).tolist(),
            "on_val": np.asarray(tune(val_probs.copy(), y_val.copy(), GRID.copy()), dtype=float).tolist(),
            "on_test": np.asarray(tune(test_probs.copy(), y_test.copy(), GRID.copy()), dtype=float).tolist()}


def probe_metrics(ns, framework):
    out = callable_(ns, "multilabel_metrics")(METRIC_TARGETS.copy(), METRIC_PREDICTIONS.copy())
    if not isinstance(out, dict):
        return {"type": type(out).__name__}
    keys = ("precision", "recall", "f1", "macro_f1", "micro_f1", "subset_accuracy", "hamming_loss")
    return {k: np.asarray(out[k], dtype=float).tolist() if k in out else None for k in keys}


def probe_map(ns, framework):
    fn = callable_(ns, "mean_average_precision")
    return {"map": float(fn(MAP_TARGETS.copy(), MAP_SCORES.copy()))}
