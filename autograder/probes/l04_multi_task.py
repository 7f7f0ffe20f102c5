"""Lesson 04 probes: a shared trunk with two heads, a weighted sum of task losses, learned uncertainty
weights, PCGrad's projection, and the models the notebook trained with them.

Each probe imports only the notebook's own framework (PyTorch, or Keras on its backend) and returns
plain observations; the rubric holds every expected value and tolerance.
"""

import numpy as np

from .common import callable_, eval_mode, helpers, require

DATASET = "multimnist"
TASKS = ("left", "right")
PROBE_CLASSES = (10, 4)  # the probe builds a model with different class counts per task, to tell the heads apart
# Part B: logits and labels the loss is evaluated on, and the task weights tried
_rng = np.random.default_rng(4)
LOGITS = _rng.normal(0.0, 2.0, size=(2, 6, 10)).astype(np.float32)
LABELS = np.stack([_rng.integers(0, 10, 6), _rng.integers(0, 10, 6)], axis=1).astype(np.int64)
WEIGHTS = ((1.0, 0.0), (0.0, 1.0), (0.3, 2.0))
# Part C: task losses and log-variances the uncertainty weighting is evaluated at
TASK_LOSSES = (0.7, 2.0)
LOG_VARS = (0.5, -1.0)
# Part D: pairs (g, other) for PCGrad's projection: conflicting, aligned, orthogonal, conflicting in 5-D
GRADIENT_PAIRS = (((1.0, 1.0), (-1.0, 0.0)), ((1.0, 2.0), (2.0, 1.0)), ((1.0, 0.0), (0.0, 3.0)),
                  ((0.5, -1.0, 2.0, 0.0, 1.5), (-1.0, 0.5, -0.5, 2.0, 0.0)))


def _holdout_scores(model, framework):
    """Both outputs of a trained model on the grader's held-out pairs: [left scores, right scores]."""
    from tlkit.data import load_inputs

    tl = helpers(framework)
    x = tl.to_inputs(load_inputs(DATASET, "holdout"))
    if framework == "pytorch":
        import torch

        device = tl.model_device(model)
        with eval_mode(model), torch.no_grad():
            outputs = model(x.to(device))
    else:
        out = model(x, training=False)
        outputs = [out[t] for t in TASKS]
    return [tl.to_numpy(o) for o in outputs]


def _holdout_predictions(ns, name, framework):
    scores = _holdout_scores(require(ns, name), framework)
    return [np.asarray(s).argmax(axis=1).tolist() for s in scores]


# ----------------------------------------------------------------- Part A: shared trunk, two heads
def probe_multitask_model(ns, framework):
    build = callable_(ns, "build_multitask")
    tl = helpers(framework)
    x = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32), dtype=np.uint8)
    inputs = tl.to_inputs(x)
    model = build(tuple(inputs.shape[1:]), PROBE_CLASSES)
    labels = np.array([[9, 3], [0, 0], [5, 1]], dtype=np.int64)
    obs = {"type": type(model).__name__}
    if framework == "pytorch":
        import torch

        if not isinstance(model, torch.nn.Module):
            return obs
        model.eval()
        with torch.no_grad():
            out = model(inputs)
        obs["output_kind"] = type(out).__name__
        if not isinstance(out, (tuple, list)):
            return obs
        obs["shapes"] = [list(o.shape) for o in out]
        if obs["shapes"] != [[3, n] for n in PROBE_CLASSES]:
            return obs
        _, grads = tl.task_gradients(model, inputs, torch.from_numpy(labels))
    else:
        import keras

        if not isinstance(model, keras.Model):
            return obs
        obs["sequential"] = isinstance(model, keras.Sequential)
        out = model(inputs, training=False)
        obs["output_kind"] = type(out).__name__
        if not isinstance(out, dict):
            return obs
        obs["output_names"] = sorted(out)
        if sorted(out) != sorted(TASKS):
            return obs
        obs["shapes"] = [list(out[t].shape) for t in TASKS]
        if obs["shapes"] != [[3, n] for n in PROBE_CLASSES]:
            return obs
        _, grads = tl.task_gradients(model, inputs, {t: labels[:, i] for i, t in enumerate(TASKS)})
    reached = np.array([[bool(np.any(tl.to_numpy(g) != 0)) for g in task] for task in grads])  # (task, parameter)
    obs.update(n_tensors=int(reached.shape[1]), shared=int(np.sum(reached[0] & reached[1])),
               left_only=int(np.sum(reached[0] & ~reached[1])), right_only=int(np.sum(reached[1] & ~reached[0])))
    return obs


# ----------------------------------------------------------------- Part B: L = sum_i w_i L_i
def _cross_entropy(logits, labels):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def probe_weighted_loss(ns, framework):
    values = []
    if framework == "pytorch":
        import torch

        weighted_loss = callable_(ns, "weighted_loss")
        outputs = tuple(torch.from_numpy(o) for o in LOGITS)
        for w in WEIGHTS:
            values.append(float(weighted_loss(outputs, torch.from_numpy(LABELS), w)))
    else:
        import keras

        compile_weighted = callable_(ns, "compile_weighted")
        for w in WEIGHTS:
            inputs = keras.Input((10,))
            model = keras.Model(inputs, {t: keras.layers.Dense(10, name=t)(inputs) for t in TASKS})
            returned = compile_weighted(model, w, 1e-3)
            model = model if returned is None else returned
            y_pred = {t: keras.ops.convert_to_tensor(LOGITS[i]) for i, t in enumerate(TASKS)}
            y = {t: keras.ops.convert_to_tensor(LABELS[:, i]) for i, t in enumerate(TASKS)}
            value = model.compute_loss(x=None, y=y, y_pred=y_pred, training=False)
            values.append(float(helpers(framework).to_numpy(value)))
    ce = [[_cross_entropy(LOGITS[i], LABELS[:, j]) for j in range(2)] for i in range(2)]  # output i vs labels j
    obs = {"values": values, "ce": ce}
    if "equal_model" in ns:
        obs["holdout_pred"] = _holdout_predictions(ns, "equal_model", framework)
    return obs


# ----------------------------------------------------------------- Part C: learned uncertainty weights
def _log_vars(weighting, framework):
    value = getattr(weighting, "log_vars", None)
    if value is None:
        return None
    return np.asarray(helpers(framework).to_numpy(value), dtype=float)


def probe_uncertainty(ns, framework):
    cls = callable_(ns, "UncertaintyWeighting")
    tl = helpers(framework)
    weighting = cls(2)
    obs = {"has_log_vars": hasattr(weighting, "log_vars")}
    if framework == "pytorch":
        import torch

        obs["trainable"] = sum(p.numel() for p in weighting.parameters() if p.requires_grad)
        if not obs["has_log_vars"]:
            return obs
        with torch.no_grad():
            weighting.log_vars.copy_(torch.tensor(LOG_VARS))
        total = weighting([torch.tensor(v, requires_grad=True) for v in TASK_LOSSES])
        obs["value"] = float(total)
        log_vars = weighting.log_vars
        if isinstance(log_vars, torch.Tensor) and log_vars.requires_grad and total.requires_grad:
            (grad,) = torch.autograd.grad(total, log_vars)
            obs["grad"] = tl.to_numpy(grad).tolist()
    else:
        import keras

        weighting([keras.ops.convert_to_tensor(np.float32(0.0))] * 2)  # builds it, where weights come in build()
        obs["trainable"] = int(sum(np.prod(w.shape) for w in weighting.trainable_weights))
        if not obs["has_log_vars"]:
            return obs
        if not hasattr(weighting.log_vars, "assign"):
            obs["constant"] = True
            return obs
        weighting.log_vars.assign(np.asarray(LOG_VARS, np.float32))
        total = weighting([keras.ops.convert_to_tensor(np.float32(v)) for v in TASK_LOSSES])
        obs["value"] = float(tl.to_numpy(total))
    trained = ns.get("uncertainty_weighting")
    if trained is not None:
        learned = _log_vars(trained, framework)
        obs["trained_log_vars"] = None if learned is None else learned.tolist()
    if "uncertainty_model" in ns:
        obs["holdout_pred"] = _holdout_predictions(ns, "uncertainty_model", framework)
    return obs


# ----------------------------------------------------------------- Part D: PCGrad
def probe_pcgrad(ns, framework):
    project = callable_(ns, "pcgrad_project")
    to_numpy = helpers(framework).to_numpy
    results = []
    for g, other in GRADIENT_PAIRS:
        if framework == "pytorch":
            import torch

            out = project(torch.tensor(g, dtype=torch.float32), torch.tensor(other, dtype=torch.float32))
        else:
            import keras

            out = project(keras.ops.convert_to_tensor(np.float32(g)), keras.ops.convert_to_tensor(np.float32(other)))
        results.append(np.asarray(to_numpy(out), dtype=float).tolist())
    obs = {"projected": results}
    if "pcgrad_model" in ns:
        obs["holdout_pred"] = _holdout_predictions(ns, "pcgrad_model", framework)
    return obs


PROBES = {"test_multitask_model": probe_multitask_model, "test_weighted_loss": probe_weighted_loss,
          "test_uncertainty": probe_uncertainty, "test_pcgrad": probe_pcgrad}
