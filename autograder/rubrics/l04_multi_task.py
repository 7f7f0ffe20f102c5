"""Lesson 04 rubric: a shared trunk with two heads, L = sum_i w_i L_i, learned uncertainty weights, PCGrad."""

import math

import numpy as np

from tlkit.data import load_dataset

from ..probes.l04_multi_task import DATASET, GRADIENT_PAIRS, LOG_VARS, PROBE_CLASSES, TASK_LOSSES, WEIGHTS

LOSS_TOLERANCE = 1e-4  # float32 cross-entropies of a few rows: CPU and GPU agree far closer than this
PROJECTION_TOLERANCE = 1e-4
MIN_TASK_ACCURACY = 0.55  # well below every method's held-out accuracy per digit (benchmarks/outcomes.json); chance 0.1
# Untrained log-variances stay exactly 0. The lesson trains them at their own rate (S_LR) and they end near log L_i;
# kept at the network's rate they rise while the losses exceed 1 and fall back as the losses drop, ending close to
# 0 on some seeds. Any movement proves they were trained.
MIN_LOG_VAR_CHANGE = 1e-4


def _holdout_accuracies(pred) -> list[float]:
    y = load_dataset(DATASET, "holdout").y
    return [float(np.mean(np.asarray(p) == y[:, i])) if len(p) == len(y) else 0.0 for i, p in enumerate(pred)]


def _accuracy_messages(obs, what) -> list[str]:
    if "holdout_pred" not in obs:
        return [f"`{what}` is not defined: run the training cell after your answer before this check."]
    acc = _holdout_accuracies(obs["holdout_pred"])
    swapped = _holdout_accuracies(obs["holdout_pred"][::-1])
    if min(swapped) >= MIN_TASK_ACCURACY > min(acc):
        return _on_reference(obs, [(f"The \"left\" output of `{what}` recognises the right digit of unseen pairs and "
                                    "vice versa: the heads are swapped between the outputs and the labels they are "
                                    "trained on.")])
    if min(acc) < MIN_TASK_ACCURACY:
        return _on_reference(obs, [(f"`{what}` recognises {acc[0]:.0%} of left and {acc[1]:.0%} of right digits of "
                                    f"unseen pairs; every method should reach at least {MIN_TASK_ACCURACY:.0%} on "
                                    "both tasks. Did the training cell run with your answer?")])
    return []


def _on_reference(obs, messages: list[str]) -> list[str]:
    """Messages about a training that the check ran on the lesson's own network (Part A's could not train)."""
    if "reference_network" in obs:
        messages.append(f"({obs['reference_network']}, so this check trained the lesson's own network with your "
                        "answer to this part; the result above is your answer's.)")
    return messages


def judge_multitask_model(obs):
    kind = obs.get("type")
    if "output_kind" not in obs:
        return [f"`build_multitask` should return a model, not a {kind}."]
    if obs.get("sequential"):
        return [("`build_multitask` returned a `keras.Sequential`: a stack has one output. Build a functional "
                "model, `keras.Model(inputs, {\"left\": ..., \"right\": ...})`, with one head per task.")]
    if "shapes" not in obs:
        if obs.get("output_names") is not None:
            return [(f"The model's outputs are named {obs['output_names']}; name them \"left\" and \"right\" "
                    "(the names of the task heads, which the losses and labels refer to).")]
        want = "a tuple (left_logits, right_logits)" if "sequential" not in obs else \
            "a dict of outputs named \"left\" and \"right\""
        return [f"The model should return {want}, one output per task; it returned a {obs['output_kind']}."]
    want = [[3, n] for n in PROBE_CLASSES]
    if obs["shapes"] == want[::-1]:
        return [(f"Built with n_classes={PROBE_CLASSES}, the \"left\" output has {obs['shapes'][0][1]} scores and the "
                 f"\"right\" output {obs['shapes'][1][1]}: the heads are swapped. The left head needs "
                 "n_classes[0] outputs and must be the first (PyTorch) or the one named \"left\" (Keras).")]
    if obs["shapes"] != want:
        return [(f"Built with n_classes={PROBE_CLASSES}, for 3 images the outputs have shapes "
                 f"{[tuple(s) for s in obs['shapes']]}; expected {[tuple(s) for s in want]}: one score per class "
                 "of each task.")]
    msgs = []
    if obs["shared"] == 0:
        msgs.append("No parameter is trained by both tasks: the two heads need one shared trunk (the same layers "
                    "compute the features both heads read), not two separate networks.")
    if obs["left_only"] == 0 or obs["right_only"] == 0:
        msgs.append("Each task needs its own head: some parameters that only that task's loss trains. Here one "
                    "task's loss reaches every parameter the other's does.")
    return msgs


def judge_weighted_loss(obs):
    values, ce = obs["values"], obs["ce"]  # ce[i][j]: output i scored against the labels of task j
    expected = [w[0] * ce[0][0] + w[1] * ce[1][1] for w in WEIGHTS]
    if all(math.isclose(v, e, abs_tol=LOSS_TOLERANCE) for v, e in zip(values, expected)):
        return _accuracy_messages(obs, "equal_model")
    unweighted = ce[0][0] + ce[1][1]
    if all(math.isclose(v, unweighted, abs_tol=LOSS_TOLERANCE) for v in values):
        return [("Your loss is the same whatever the task weights: the weights are ignored. The total must be "
                "L = w_left * L_left + w_right * L_right (Keras: `loss_weights` per output).")]
    if all(math.isclose(v, w[1] * ce[0][0] + w[0] * ce[1][1], abs_tol=LOSS_TOLERANCE) for v, w in zip(values, WEIGHTS)):
        return [("Each task weight multiplies the other task's loss: with weights (1, 0) only the right task "
                "counts. weights[0] belongs to the left output, weights[1] to the right one.")]
    if all(math.isclose(v, w[0] * ce[0][1] + w[1] * ce[1][0], abs_tol=LOSS_TOLERANCE) for v, w in zip(values, WEIGHTS)):
        return [("The left output is scored against the right labels and vice versa: the heads are swapped "
                "between outputs and labels (left labels are column 0 of `labels`).")]
    return [(f"With weights {WEIGHTS[0]} your loss is {values[0]:.4f}, but the cross-entropy of the left output "
             f"alone is {ce[0][0]:.4f}; with {WEIGHTS[2]} it is {values[2]:.4f}. The total must be the weighted sum "
             "of the per-task cross-entropies on logits (each a mean over the batch).")]


def _uncertainty_total(half: bool, a: float = 1.0) -> float:
    """sum_i a * exp(-s_i) * L_i + s_i (or + s_i / 2: Kendall et al.'s 1/sigma^2 * L_i + log sigma)."""
    return sum(a * math.exp(-s) * loss + (0.5 if half else 1.0) * s for s, loss in zip(LOG_VARS, TASK_LOSSES))


def _uncertainty_grad(half: bool) -> list[float]:
    return [(0.5 if half else 1.0) - math.exp(-s) * loss for s, loss in zip(LOG_VARS, TASK_LOSSES)]


def judge_uncertainty(obs):
    if obs["trainable"] != len(LOG_VARS):
        frozen = (f" ({obs['frozen']} values that never train, like a buffer or a weight with trainable=False)"
                  if obs.get("frozen") else "")
        return [(f"`UncertaintyWeighting(2)` has {obs['trainable']} trainable values{frozen}: the log-variances "
                 "must be learnable parameters, one per task (PyTorch: a `torch.nn.Parameter`; Keras: "
                 "`self.add_weight(..., trainable=True)`, in `__init__` or in `build()`), or the optimizer never "
                 "changes them and the weights stay fixed.")]
    value = obs["value"]
    half = next((h for h in (False, True) if math.isclose(value, _uncertainty_total(h), abs_tol=1e-4)), None)
    if half is None:
        if math.isclose(value, _uncertainty_total(False, a=1.0) - sum(LOG_VARS), abs_tol=1e-4):
            return [("Your total has no + s_i term: without that regulariser the cheapest way to lower the loss is "
                    "s_i -> infinity, which weighs every task down to 0. Use sum_i exp(-s_i) * L_i + s_i.")]
        if math.isclose(value, 0.5 * _uncertainty_total(False), abs_tol=1e-4):
            return [("Your total is half of sum_i exp(-s_i) * L_i + s_i: that is Kendall et al.'s form for "
                    "regression, 1/(2 sigma^2) * L_i + log sigma. For these classification tasks use "
                    "exp(-s_i) * L_i + s_i (the paper's 1/sigma^2 * L_i + log sigma, exp(-s_i) * L_i + s_i / 2, "
                    "is accepted too).")]
        return [(f"With log-variances s = {LOG_VARS} and task losses {TASK_LOSSES} your total is {value:.4f}, but "
                 f"sum_i exp(-s_i) * L_i + s_i is {_uncertainty_total(False):.4f} (Kendall et al.'s own "
                 "1/sigma^2 * L_i + log sigma, exp(-s_i) * L_i + s_i / 2 with its 1/2, would be "
                 f"{_uncertainty_total(True):.4f}). Check the sign of the exponent and that s_i is a log-variance "
                 "(not a variance or a weight).")]
    grad = obs.get("grad") or []
    if not any(abs(g) > 1e-6 for g in grad):
        return [("Your total has the right value but no gradient reaches the log-variances: it is computed outside "
                "the framework's autograd (a Python float, `.item()`, numpy, or a detached copy), so training "
                "could never change them.")]
    if not np.allclose(grad, _uncertainty_grad(half), atol=1e-4):
        return [(f"Your total has the right value, but its gradient with respect to s is {np.round(grad, 4).tolist()}"
                 f" instead of {np.round(_uncertainty_grad(half), 4).tolist()}: part of it is cut off from autograd "
                 "(a detached or converted value).")]
    learned = obs.get("trained_log_vars")
    if learned is None:
        return ["`uncertainty_weighting` is not defined: run the training cell after your answer before this check."]
    if not learned or max(abs(v) for v in learned) < MIN_LOG_VAR_CHANGE:
        return _on_reference(obs, [(f"After training, the log-variances of `uncertainty_weighting` are still "
                                    f"{np.round(learned, 3).tolist()}: they did not learn. Are they trainable weights "
                                    "of the layer (PyTorch: parameters of the module), so that they reach the "
                                    "optimizer?")])
    return _accuracy_messages(obs, "uncertainty_model")


def _project(g, other):
    g, other = np.asarray(g, float), np.asarray(other, float)
    dot = g @ other
    return g - dot / (other @ other) * other if dot < 0 else g


def judge_pcgrad(obs):
    got = obs["projected"]
    wrong = []
    for (g, other), out in zip(GRADIENT_PAIRS, got):
        if np.shape(out) != np.shape(g) or not np.allclose(out, _project(g, other), atol=PROJECTION_TOLERANCE):
            wrong.append((g, other, out))
    if not wrong:
        return _accuracy_messages(obs, "pcgrad_model")
    wrong_pairs = {(tuple(g), tuple(o)) for g, o, _ in wrong}
    bad = [(tuple(g), tuple(o)) in wrong_pairs for g, o in GRADIENT_PAIRS]
    conflicting = [float(np.dot(g, o)) < 0 for g, o in GRADIENT_PAIRS]
    changes_peaceful = any(b for b, c in zip(bad, conflicting) if not c)
    misses_conflicts = any(b for b, c in zip(bad, conflicting) if c)
    if changes_peaceful and misses_conflicts:
        return [("Your projection changes gradients that do not conflict (g . other > 0) and leaves conflicting "
                "ones as they are: the condition is the wrong way round. PCGrad projects only when g . other < 0.")]
    if changes_peaceful:
        return [("Your projection also changes gradients that do not conflict (aligned, g . other > 0): PCGrad "
                "leaves those unchanged and projects only when g . other < 0.")]
    g, other, out = wrong[0]
    return [(f"For g = {list(g)} and other = {list(other)} your projection gives {np.round(out, 4).tolist()}. A "
             "conflicting gradient (g . other < 0) loses its component along the other: "
             "g - (g . other) / |other|^2 * other; otherwise it stays as it is.")]

