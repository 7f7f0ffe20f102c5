"""Lesson 04: a shared trunk with two heads, L = sum_i w_i L_i, learned uncertainty weights, PCGrad.

Probes: a shared trunk with two heads, a weighted sum of task losses, learned uncertainty
weights, PCGrad's projection, and the models the notebook trained with them.

Each probe imports only the notebook's own framework (PyTorch, or Keras on its backend) and returns
plain observations; the judges hold every expected value and tolerance.

Parts B-D train networks from Part A's ``build_multitask``. When those cannot be trained (no pair of outputs,
no outputs named "left" and "right"), their probes train the lesson's own network with the learner's answer to
their part, through the lesson's own training code, so that each part is graded on its own.
"""

import numpy as np

from ..probes.common import callable_, eval_mode, helpers

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


def _task_outputs(model, x, framework):
    """The model's [left, right] outputs for inputs ``x`` (eval mode), or None when it does not give one output
    per task in the lesson's form (PyTorch: a pair; Keras: a dict with "left" and "right")."""
    if framework == "pytorch":
        import torch

        device = helpers(framework).model_device(model)
        with eval_mode(model), torch.no_grad():
            out = model(x.to(device))
        return list(out) if isinstance(out, (tuple, list)) and len(out) == len(TASKS) else None
    out = model(x, training=False)
    return [out[t] for t in TASKS] if isinstance(out, dict) and set(TASKS) <= set(out) else None


def _holdout_inputs(framework):
    from tlkit.data import load_inputs

    return helpers(framework).to_inputs(load_inputs(DATASET, "holdout"))


def _holdout_predictions(model, framework):
    """Each task's predicted digits on the grader's held-out pairs: [left, right]."""
    outputs = _task_outputs(model, _holdout_inputs(framework), framework)
    if outputs is None:
        raise TypeError(f"the trained model returned no (left, right) outputs: {type(model).__name__}")
    return [np.asarray(helpers(framework).to_numpy(o)).argmax(axis=1).tolist() for o in outputs]


def _part_a_unusable(ns, framework) -> str | None:
    """Why the networks ``build_multitask`` (Part A) builds cannot be trained by the lesson's code, or None."""
    build = ns.get("build_multitask")
    if not callable(build):
        return "`build_multitask` is not defined"
    x = _holdout_inputs(framework)[:2]
    try:
        outputs = _task_outputs(build(tuple(x.shape[1:]), (10, 10)), x, framework)
    except Exception as err:  # noqa: BLE001  (Part A's own check reports it)
        return f"`build_multitask` raised {type(err).__name__}"
    if outputs is None or any(tuple(o.shape) != (2, 10) for o in outputs):
        return "`build_multitask` does not give one output of 10 scores per task"
    return None


def _reference_network(framework):
    """The lesson's network (Part A's instructions), for the checks of later parts when Part A's is unusable."""
    if framework == "pytorch":
        import torch

        class Reference(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.trunk = torch.nn.Sequential(
                    torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                    torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                    torch.nn.Flatten(), torch.nn.Linear(16 * 8 * 8, 64), torch.nn.ReLU())
                self.left, self.right = torch.nn.Linear(64, 10), torch.nn.Linear(64, 10)

            def forward(self, x):
                features = self.trunk(x)
                return self.left(features), self.right(features)

        return Reference()
    import keras

    inputs = keras.Input((32, 32, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    features = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(h))
    return keras.Model(inputs, {t: keras.layers.Dense(10, name=t)(features) for t in TASKS})


def _trained(ns, name, framework, train_reference):
    """Held-out predictions of the model the notebook trained as ``name``; when Part A's networks cannot be
    trained, of the lesson's own network trained here by ``train_reference(network)`` (the lesson's training
    code with the learner's answer to this part), so that a mistake in Part A costs Part A only."""
    why = _part_a_unusable(ns, framework)
    if why is None:
        return {"holdout_pred": _holdout_predictions(ns[name], framework)} if name in ns else {}
    network = _reference_network(framework)
    extra = train_reference(network) or {}
    return {"holdout_pred": _holdout_predictions(network, framework), "reference_network": why, **extra}


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

    def train_equal(network):  # the lesson's training cell, equal weights
        if framework == "pytorch":
            ns["train"](network, lambda out, lab: ns["weighted_loss"](out, lab, (1, 1)))
        else:
            ns["fit_tasks"](ns["compile_weighted"](network, (1, 1), ns["LR"]))

    obs.update(_trained(ns, "equal_model", framework, train_equal))
    return obs


# ----------------------------------------------------------------- Part C: learned uncertainty weights
def _weights(weighting, framework, trainable=True) -> list:
    """The weighting's trainable (or frozen) tensors, whatever they are called; a Keras layer built first."""
    if framework == "pytorch":
        return [t for t in (*weighting.parameters(), *weighting.buffers()) if t.requires_grad == trainable]
    return list(weighting.trainable_weights if trainable else weighting.non_trainable_weights)


def _values(tensors, framework) -> list[float]:
    to_numpy = helpers(framework).to_numpy
    return [float(v) for t in tensors for v in np.ravel(to_numpy(t))]


def probe_uncertainty(ns, framework):
    cls = callable_(ns, "UncertaintyWeighting")
    tl = helpers(framework)
    weighting = cls(2)
    if framework == "pytorch":
        import torch

        def call(losses):
            return weighting([torch.tensor(v) for v in losses])
    else:
        import keras

        def call(losses):
            return weighting([keras.ops.convert_to_tensor(np.float32(v)) for v in losses])

        call((0.0, 0.0))  # builds the layer, for weights made in build()
    variables = _weights(weighting, framework)
    obs = {"trainable": len(_values(variables, framework)),
           "frozen": len(_values(_weights(weighting, framework, trainable=False), framework))}
    if obs["trainable"] == len(LOG_VARS):
        start = 0
        for v in variables:  # the log-variances, in the order the weights were made
            n = int(np.prod(tuple(v.shape)))
            value = np.reshape(np.asarray(LOG_VARS[start:start + n], np.float32), tuple(v.shape))
            start += n
            if framework == "pytorch":
                with torch.no_grad():
                    v.copy_(torch.from_numpy(value))
            else:
                v.assign(value)
        if framework == "pytorch":
            total = call(TASK_LOSSES)
            grads = (torch.autograd.grad(total, variables, allow_unused=True)
                     if getattr(total, "requires_grad", False) else [None] * len(variables))
            grads = [torch.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        else:
            total, grads = tl.loss_gradients(lambda: call(TASK_LOSSES), variables)
        obs["value"] = float(np.asarray(tl.to_numpy(total)))
        obs["grad"] = _values(grads, framework)
    trained = ns.get("uncertainty_weighting")
    if trained is not None:
        obs["trained_log_vars"] = _values(_weights(trained, framework), framework)

    def train_uncertainty(network):  # the lesson's training cell
        fresh = cls(len(TASKS))
        if framework == "pytorch":
            fresh = fresh.to(ns["device"])
            ns["train"](network, lambda out, lab: fresh(ns["task_losses"](out, lab)), extra_params=fresh.parameters(),
                        extra_lr=ns["S_LR"])
        else:
            trainer = ns["UncertaintyModel"](network, fresh, s_lr=ns["S_LR"])
            trainer.compile(optimizer=keras.optimizers.Adam(ns["LR"]))
            ns["fit_tasks"](trainer)
        return {"trained_log_vars": _values(_weights(fresh, framework), framework)}

    obs.update(_trained(ns, "uncertainty_model", framework, train_uncertainty))
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

    def train_pcgrad(network):  # the lesson's training cell
        if framework == "pytorch":
            ns["train"](network, step=ns["pcgrad_step"])
        else:
            import keras

            trainer = ns["PCGradModel"](network)
            trainer.compile(optimizer=keras.optimizers.Adam(ns["LR"]))
            ns["fit_tasks"](trainer)

    obs.update(_trained(ns, "pcgrad_model", framework, train_pcgrad))
    return obs


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

import math

from tlkit.data import load_dataset

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
