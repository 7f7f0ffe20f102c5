"""Lesson 06: multi-hot targets, a sigmoid head and its weighted loss, per-label thresholds, metrics, mAP.

Probes: call the learner's multi-label functions on fixed inputs and record what they return.
"""

import numpy as np

from ..probe_runtime import ProbeError
from ..probes.common import callable_, helpers, require

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


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

from sklearn.metrics import average_precision_score, f1_score, hamming_loss, precision_recall_fscore_support

from tlkit.data import load_dataset

from ..rubric import close

HEAD_MIN_MAP = 0.85  # held-out mAP of the trained head: clearly below what the lesson's head reaches
LOSS_TOLERANCE = 1e-4


def _multi_hot(tiles: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(tiles), n))
    for row, labels in enumerate(tiles):
        out[row, labels] = 1
    return out


def judge_multi_hot(obs):
    got = obs["outputs"]
    if all(np.shape(g) == (len(t), n) and np.array_equal(g, _multi_hot(t, n))
           for g, (t, n) in zip(got, MULTI_HOT_CASES)):
        return []
    counts = [np.array([np.bincount(row, minlength=n) for row in t]) for t, n in MULTI_HOT_CASES]
    if all(np.shape(g) == c.shape and np.array_equal(g, c) for g, c in zip(got, counts)):
        return [("`multi_hot` counts the tiles of each class: a class on two tiles is still one label, so its entry "
                "is 1, not 2.")]
    firsts = [_multi_hot(t[:, :1], n) for t, n in MULTI_HOT_CASES]
    if all(np.shape(g) == f.shape and np.array_equal(g, f) for g, f in zip(got, firsts)):
        return [("`multi_hot` marks only the first tile's class (a one-hot vector): mark every class that appears "
                "in the row.")]
    return [("`multi_hot` should return an (N, n_classes) array with 1.0 for every class present in a row and 0.0 "
            "elsewhere.")]


def _weighted_bce(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float(np.mean(w * y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)))


def _loss_mistake(value: float) -> str | None:
    """The classic wrong loss whose value this is, if any."""
    y, z = LOSS_TARGETS.astype(float), LOSS_LOGITS.astype(float)
    positives = y.sum(axis=0)
    w = (len(y) - positives) / positives
    sigmoid = 1 / (1 + np.exp(-z))
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    candidates = {
        "softmax": float(np.mean(-(y * np.log(softmax)).sum(axis=1))),
        "unweighted": _weighted_bce(z, y, np.ones_like(w)),
        "inverted": _weighted_bce(z, y, 1 / w),
        "sigmoid twice": _weighted_bce(sigmoid, y, w),
        "sigmoid twice, unweighted": _weighted_bce(sigmoid, y, np.ones_like(w)),
        "probabilities": float(np.mean(-(w * y * np.log(np.clip(z, 1e-7, 1)) +
                                         (1 - y) * np.log(np.clip(1 - z, 1e-7, 1))))),
        "sum": float(np.sum(w * y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))),
    }
    messages = {
        "softmax": ("`multilabel_loss` is a softmax cross-entropy: a softmax makes the labels compete for one unit of "
                    "probability, so an image cannot have several. Use binary cross-entropy, one sigmoid per label."),
        "unweighted": ("`multilabel_loss` does not weight the positives: set each label's positive weight to its "
                       "negatives / positives in `y_train` (`pos_weight`), so rare labels are not learned as never."),
        "inverted": ("`multilabel_loss` weights each label's positives by positives / negatives, the inverse: rare "
                     "labels should weigh more, negatives / positives."),
        "sigmoid twice": ("`multilabel_loss` applies a sigmoid to the logits and then a loss that applies one again: "
                          "give the logits to the from-logits loss as they are."),
        "sigmoid twice, unweighted": ("`multilabel_loss` applies a sigmoid to the logits and then a loss that applies "
                                      "one again, and does not weight the positives (negatives / positives)."),
        "probabilities": ("`multilabel_loss` treats the logits as probabilities: use binary cross-entropy *from "
                          "logits*."),
        "sum": "`multilabel_loss` sums over the entries: average the binary cross-entropy over every entry.",
    }
    for name, reference in candidates.items():
        if close(value, reference, LOSS_TOLERANCE):
            return messages[name]
    return None


def judge_head(obs):
    msgs = []
    out = np.asarray(obs["fresh_outputs"], dtype=float)
    if out.shape != (5, 5):
        msgs.append(f"`build_head(16, 5)` returned outputs of shape {out.shape} for 5 examples; expected (5, 5): "
                    "one logit per label.")
    elif np.allclose(out.sum(axis=1), 1, atol=1e-4) and (out >= 0).all():
        msgs.append("Your head ends with a softmax: the labels then compete, and an image cannot have several. End "
                    "with a linear layer (logits); the loss applies a sigmoid per label.")
    elif (out > 0).all() and (out < 1).all():
        msgs.append("Your head ends with a sigmoid, and the from-logits loss applies another one (sigmoid twice): "
                    "end with a linear layer that outputs logits.")
    y, z = LOSS_TARGETS.astype(float), LOSS_LOGITS.astype(float)
    positives = y.sum(axis=0)
    weights = (len(y) - positives) / positives
    if obs["loss"] is None:
        msgs.append("No gradient reaches the logits through `multilabel_loss` (computed outside the framework, e.g. "
                    f"in NumPy?), so nothing would train: {obs['loss_error']}")
    elif not close(obs["loss"], _weighted_bce(z, y, weights), LOSS_TOLERANCE):
        msgs.append(_loss_mistake(obs["loss"]) or (
            "`multilabel_loss(y_train)` should give the binary cross-entropy from logits, each label's positives "
            "weighted by its negatives / positives, averaged over every entry."))
    else:
        sigmoid = 1 / (1 + np.exp(-z))
        expected_grad = (weights * y * (sigmoid - 1) + (1 - y) * sigmoid) / y.size
        if not np.allclose(np.asarray(obs["loss_gradient"], dtype=float), expected_grad, atol=1e-5):
            msgs.append("`multilabel_loss` gives the right value, but its gradient with respect to the logits is "
                        "wrong (is part of it computed outside the framework, or detached?): nothing would train.")
    held_out = load_dataset("texture_mosaics", "holdout")
    holdout = _multi_hot(held_out.y, len(held_out.classes))
    probs = np.asarray(obs["holdout_probs"], dtype=float)
    if probs.shape != holdout.shape:
        msgs.append(f"Your trained `head` gives outputs of shape {probs.shape[1:]} per image; expected one per "
                    f"label ({holdout.shape[1]}).")
    elif not np.isfinite(probs).all():
        msgs.append("Your trained `head` gives NaN on unseen mosaics: training diverged. A loss that takes the log "
                    "of a sigmoid overflows once a logit is large (the sigmoid rounds to 0 or 1, its log is -inf): "
                    "compute the binary cross-entropy from the logits with a numerically stable form.")
    elif not msgs:  # a head or loss already named wrong explains a poor ranking too
        score = average_precision_score(holdout, probs, average="macro")
        if score < HEAD_MIN_MAP:
            msgs.append(f"Your trained `head` ranks unseen mosaics poorly (mean average precision {score:.3f}, "
                        f"below the {HEAD_MIN_MAP:.2f} a trained head reaches). Did the training cell run, with your "
                        "loss?")
    return msgs


def _best_f1_per_label(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.array([max(f1_score(targets[:, k], probs[:, k] >= t, zero_division=0) for t in GRID)
                     for k in range(targets.shape[1])])


def judge_thresholds(obs):
    msgs = []
    predicted = np.asarray(obs["predicted"], dtype=float)
    if predicted.shape != PREDICT_PROBS.shape or not np.array_equal(predicted, PREDICT_PROBS >= PREDICT_THRESHOLDS):
        if predicted.shape == PREDICT_PROBS.shape and (predicted.sum(axis=1) == 1).all():
            msgs.append("`predict_labels` gives exactly one label per image, as an argmax does. In multi-label "
                        "classification each label is its own decision: present when its probability reaches its "
                        "threshold, so an image can have none, one or several.")
        elif predicted.shape == PREDICT_PROBS.shape and np.array_equal(predicted, PREDICT_PROBS >= 0.5):
            msgs.append("`predict_labels` uses 0.5 for every label: use each label's own threshold.")
        elif predicted.shape == PREDICT_PROBS.shape and np.array_equal(predicted, PREDICT_PROBS > PREDICT_THRESHOLDS):
            msgs.append("`predict_labels` leaves out a probability equal to its threshold: a label is present at or "
                        "above its threshold (>=).")
        else:
            msgs.append("`predict_labels` should give 1.0 where a probability is at or above its label's threshold, "
                        "else 0.0.")
    tuned = np.asarray(obs["tuned"], dtype=float)
    n_labels = THRESHOLD_TARGETS.shape[1]
    if tuned.shape != (n_labels,):
        msgs.append(f"`tune_thresholds` returned {tuned.shape or 'one number'}; it should return one threshold per "
                    f"label, {n_labels} here.")
    else:
        reached = np.array([f1_score(THRESHOLD_TARGETS[:, k], THRESHOLD_PROBS[:, k] >= tuned[k], zero_division=0)
                            for k in range(n_labels)])
        if (reached < _best_f1_per_label(THRESHOLD_PROBS, THRESHOLD_TARGETS) - 1e-9).any():
            if np.allclose(tuned, tuned[0]):
                msgs.append("`tune_thresholds` gives every label the same threshold: choose each label's own, the "
                            "one with the best F1 of that label.")
            else:
                msgs.append("`tune_thresholds` does not pick, for each label, the grid value with that label's best "
                            "F1.")
    thresholds, on_val, on_test = (np.asarray(obs[k], dtype=float) for k in ("thresholds", "on_val", "on_test"))
    if thresholds.shape != on_val.shape or not np.allclose(thresholds, on_val):
        if thresholds.shape == on_test.shape and np.allclose(thresholds, on_test) and not np.allclose(on_val, on_test):
            msgs.append("`thresholds` were tuned on the test set: the test score then measures your choice of "
                        "thresholds, not the model. Tune them on the validation probabilities (`val_probs`, `y_val`).")
        elif thresholds.ndim == 0 or len(set(thresholds.tolist())) == 1:
            msgs.append("`thresholds` is one threshold for every label: set it to `tune_thresholds(val_probs, y_val, "
                        "GRID)`, one per label.")
        else:
            msgs.append("`thresholds` should be `tune_thresholds(val_probs, y_val, GRID)`: tuned on the validation "
                        "data.")
    return msgs


def judge_metrics(obs):
    if "type" in obs:
        return [f"`multilabel_metrics` should return a dict, not a {obs['type']}."]
    y, p = METRIC_TARGETS, METRIC_PREDICTIONS
    precision, recall, f1, _ = precision_recall_fscore_support(y, p, average=None, zero_division=0)
    macro, micro = f1_score(y, p, average="macro", zero_division=0), f1_score(y, p, average="micro", zero_division=0)
    subset, hamming = float(np.mean((y == p).all(axis=1))), hamming_loss(y, p)
    msgs = []
    for key, want in (("precision", precision), ("recall", recall), ("f1", f1)):
        got = obs.get(key)
        if got is None or np.shape(got) != want.shape or not np.allclose(got, want, atol=1e-6):
            msgs.append(f"`{key}` should hold one value per label (0 where it is undefined, as zero_division=0).")
    if close(obs.get("macro_f1"), micro, 1e-6) and close(obs.get("micro_f1"), macro, 1e-6):
        msgs.append("Macro and micro F1 are swapped: macro is the mean of the per-label F1s; micro pools the true "
                    "positives, false positives and false negatives of all labels first.")
    else:
        if not close(obs.get("macro_f1"), macro, 1e-6):
            msgs.append("`macro_f1` should be the mean of the per-label F1s (every label counts the same).")
        if not close(obs.get("micro_f1"), micro, 1e-6):
            msgs.append("`micro_f1` should be the F1 of the true positives, false positives and false negatives "
                        "pooled over all labels.")
    if not close(obs.get("subset_accuracy"), subset, 1e-6):
        hint = (" (you computed the fraction of right (example, label) entries, i.e. 1 - Hamming loss)"
                if close(obs.get("subset_accuracy"), 1 - hamming, 1e-6) else "")
        msgs.append(f"`subset_accuracy` should be the fraction of examples whose whole label set is right{hint}.")
    if not close(obs.get("hamming_loss"), hamming, 1e-6):
        hint = (" (you computed 1 - subset accuracy)" if close(obs.get("hamming_loss"), 1 - subset, 1e-6) else "")
        msgs.append(f"`hamming_loss` should be the fraction of (example, label) entries that are wrong{hint}.")
    return msgs


def _ap_over_every_rank(targets: np.ndarray, scores: np.ndarray) -> float:
    ranked = [targets[np.argsort(-scores[:, k]), k] for k in range(targets.shape[1])]
    return float(np.mean([np.mean(np.cumsum(r) / np.arange(1, len(r) + 1)) for r in ranked]))


def judge_map(obs):
    want = average_precision_score(MAP_TARGETS, MAP_SCORES, average="macro")
    if close(obs.get("map"), want, 1e-6):
        return []
    if close(obs.get("map"), _ap_over_every_rank(MAP_TARGETS, MAP_SCORES), 1e-6):
        return [("`mean_average_precision` averages the precision over every rank: average it only at the ranks of "
                 "the label's positives.")]
    if close(obs.get("map"), average_precision_score(MAP_TARGETS, -MAP_SCORES, average="macro"), 1e-6):
        return ["`mean_average_precision` ranks the lowest scores first: sort each label's scores highest first."]
    if close(obs.get("map"), average_precision_score(MAP_TARGETS, MAP_SCORES, average="micro"), 1e-6):
        return [("`mean_average_precision` pools every (example, label) pair into one ranking: rank each label's "
                 "examples on their own, then take the mean of the labels' average precisions.")]
    return [("`mean_average_precision` should average, for each label, the precision at the rank of each of its "
            "positives (examples sorted by that label's score, highest first), then take the mean over labels.")]
