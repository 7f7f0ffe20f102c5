"""Lesson 05 probes: gradient reversal, the lambda schedule, the DANN loss and model, the CORAL loss.

Each probe imports only the notebook's own framework (PyTorch, or Keras on its backend) and returns plain
observations: values on fixed inputs and predictions on the grader's held-out images. The rubric holds every
expected value and tolerance.
"""

import numpy as np

from .common import callable_, eval_mode, helpers, require

SOURCE, TARGET = "mnist5k", "mnistm5k"  # the held-out images of both domains (labels stay outside the kernel)
GRL_SHAPE = (5, 4)
GRL_LAMBDAS = (0.5, 2.0)
PROGRESS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
N_CLASSES = 10
CORAL_DIM = 4


def grl_inputs():
    """x and the upstream gradient w the gradient reversal probe feeds in."""
    rng = np.random.default_rng(5)
    return (rng.normal(size=GRL_SHAPE).astype(np.float32), rng.normal(size=GRL_SHAPE).astype(np.float32))


def loss_inputs():
    """A mixed batch: labels of every row, domain (0 source, 1 target), class logits (N, 10), domain logits (N, 1).

    The rows alternate in no particular order; ``garbled`` are other labels for the target rows."""
    rng = np.random.default_rng(7)
    domain = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 0], dtype=np.float32)
    labels = rng.integers(0, N_CLASSES, size=len(domain)).astype(np.int64)
    garbled = np.where(domain == 1, (labels + 3) % N_CLASSES, labels)
    class_logits = rng.normal(0, 2, size=(len(domain), N_CLASSES)).astype(np.float32)
    domain_logits = rng.normal(0, 2, size=(len(domain), 1)).astype(np.float32)
    return labels, garbled, domain, class_logits, domain_logits


def sources_first(domain):
    """A domain column with as many source rows as ``domain``, all of them first (as the lesson's batches are)."""
    n_source = int(np.sum(domain == 0))
    return np.where(np.arange(len(domain)) < n_source, 0.0, 1.0).astype(np.float32)


def coral_inputs():
    """Pairs (source features, target features): target = shifted source (same covariance), then random pairs."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(32, CORAL_DIM)).astype(np.float32)
    b = (rng.normal(size=(24, CORAL_DIM)) @ rng.normal(size=(CORAL_DIM, CORAL_DIM)) + 3.0).astype(np.float32)
    c = (rng.normal(size=(32, CORAL_DIM)) * np.array([1.0, 2.0, 0.5, 1.5]) + 1.0).astype(np.float32)
    return [(a, a + 5.0), (a, b), (c, a)]


def _scalar(value, framework) -> float:
    return float(helpers(framework).to_numpy(value).reshape(-1)[0])


def _tensor(x, framework):
    if framework == "pytorch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(x))
    import keras

    return keras.ops.convert_to_tensor(x)


# ----------------------------------------------------------------- Part A: gradient reversal
def _grl_keras(layer, x, w):
    """Forward output and d(sum(w * layer(x)))/dx (None where no gradient reaches x) on the Keras backend in use."""
    import keras

    if keras.backend.backend() == "torch":
        import torch  # torch backend only: Keras has loaded it already

        xt = torch.tensor(x, requires_grad=True, device=keras.ops.convert_to_tensor(x).device)
        y = layer(xt)
        (y * torch.as_tensor(w, device=y.device)).sum().backward()
        return y, xt.grad
    import tensorflow as tf  # TensorFlow backend: Keras has loaded it already

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        total = tf.reduce_sum(y * w)
    return y, tape.gradient(total, xt)


def probe_grl(ns, framework):
    x, w = grl_inputs()
    to_numpy = helpers(framework).to_numpy
    runs = []
    if framework == "pytorch":
        import torch

        grad_reverse = callable_(ns, "grad_reverse")
        for lam in GRL_LAMBDAS:
            xt = torch.tensor(x, requires_grad=True)
            y = grad_reverse(xt, lam)
            (y * torch.from_numpy(w)).sum().backward()
            grad = xt.grad
            runs.append({"lam": lam, "out": to_numpy(y), "grad": None if grad is None else to_numpy(grad)})
    else:
        layer_class = callable_(ns, "GradientReversal")
        layer = layer_class(lam=1.0)
        for lam in GRL_LAMBDAS:
            layer.lam.assign(lam)  # as the schedule's callback does: the layer must read it at every call
            y, grad = _grl_keras(layer, x, w)
            runs.append({"lam": lam, "out": to_numpy(y), "grad": None if grad is None else to_numpy(grad)})
    return {"runs": runs}


# ----------------------------------------------------------------- Part B: the lambda schedule
def probe_lambda_schedule(ns, framework):
    dann_lambda = callable_(ns, "dann_lambda")
    return {"values": [float(dann_lambda(p)) for p in PROGRESS]}


# ----------------------------------------------------------------- Part C: the DANN loss and the trained model
def _losses(dann_loss, labels, domain, class_logits, domain_logits, framework):
    out = dann_loss(*(_tensor(a, framework) for a in (labels, domain, class_logits, domain_logits)))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return {"returned": type(out).__name__}
    return {"class": _scalar(out[0], framework), "domain": _scalar(out[1], framework)}


def _dann_outputs(model, images, framework):
    """Class logits and domain logits of the learner's trained DANN network for raw images."""
    from tlkit.common import to_rgb28

    tl = helpers(framework)
    x = to_rgb28(images)
    if framework == "pytorch":
        import torch

        with eval_mode(model), torch.no_grad():
            device = tl.model_device(model)
            class_logits, domain_logits = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device))[:2]
        return tl.to_numpy(class_logits), tl.to_numpy(domain_logits)
    chunks = [model(x[i:i + 250], training=False) for i in range(0, len(x), 250)]
    return (np.concatenate([tl.to_numpy(c[0]) for c in chunks]), np.concatenate([tl.to_numpy(c[1]) for c in chunks]))


def probe_dann(ns, framework):
    from tlkit.data import load_inputs

    dann_loss = callable_(ns, "dann_loss")
    labels, garbled, domain, class_logits, domain_logits = loss_inputs()
    obs = {"losses": _losses(dann_loss, labels, domain, class_logits, domain_logits, framework)}
    if "class" not in obs["losses"]:
        return obs
    obs["garbled"] = _losses(dann_loss, garbled, domain, class_logits, domain_logits, framework)
    half = domain.copy()
    half[:4] = 0.0  # another mix of source and target rows
    obs["other_mix"] = _losses(dann_loss, labels, half, class_logits, domain_logits, framework)
    # The lesson's training batches put the source rows first: a loss that picks its rows by position is right there
    # and wrong on the batches above, which tells that mistake from one that lets target labels in.
    obs["sources_first"] = _losses(dann_loss, labels, sources_first(domain), class_logits, domain_logits, framework)

    model = require(ns, "dann_model")
    scores, domain_src = _dann_outputs(model, load_inputs(SOURCE, "holdout"), framework)
    target_scores, domain_tgt = _dann_outputs(model, load_inputs(TARGET, "holdout"), framework)
    obs["source_pred"] = scores.argmax(axis=1).tolist()
    obs["target_pred"] = target_scores.argmax(axis=1).tolist()
    obs["domain_says_target"] = {"source": (domain_src.reshape(-1) > 0).tolist(),
                                 "target": (domain_tgt.reshape(-1) > 0).tolist()}
    history = require(ns, "dann_history")
    obs["domain_accuracy_history"] = [float(v) for v in history.get("domain_accuracy", [])]
    return obs


# ----------------------------------------------------------------- Part D: CORAL
def _torch_input_gradients(fn, arrays, framework, device=None):
    """Norms of the gradient of fn(*arrays) for each input (0.0 where none reaches it)."""
    import torch

    inputs = [torch.tensor(x, requires_grad=True, device=device) for x in arrays]
    out = fn(*inputs)
    if not torch.is_tensor(out) or not out.requires_grad:  # e.g. a number computed outside torch, wrapped back
        return [0.0] * len(inputs)
    grads = torch.autograd.grad(out.sum(), inputs, allow_unused=True)
    return [0.0 if g is None else float(helpers(framework).to_numpy(g.norm())) for g in grads]


def _input_gradients(fn, arrays, framework):
    if framework == "pytorch":
        return _torch_input_gradients(fn, arrays, framework)
    import keras

    if keras.backend.backend() == "torch":
        return _torch_input_gradients(fn, arrays, framework, device=keras.ops.convert_to_tensor(arrays[0]).device)
    import tensorflow as tf  # TensorFlow backend: Keras has loaded it already

    inputs = [tf.constant(x) for x in arrays]
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        total = tf.reduce_sum(tf.cast(tf.convert_to_tensor(fn(*inputs)), tf.float32))
    return [0.0 if g is None else float(helpers(framework).to_numpy(tf.norm(g))) for g in tape.gradient(total, inputs)]


def probe_coral(ns, framework):
    coral_loss = callable_(ns, "coral_loss")
    obs = {"values": [_scalar(coral_loss(_tensor(a, framework), _tensor(b, framework)), framework)
                      for a, b in coral_inputs()]}
    # Training needs the loss's gradient w.r.t. both batches of features (a pair with different covariances).
    try:
        obs["gradient_norms"] = _input_gradients(coral_loss, coral_inputs()[1], framework)
    except Exception as err:  # noqa: BLE001  (the learner's code raised on features that carry gradients)
        obs["gradient_error"] = f"{type(err).__name__}: {err}"[:300]
    return obs


PROBES = {"test_grl": probe_grl, "test_lambda_schedule": probe_lambda_schedule, "test_dann": probe_dann,
          "test_coral": probe_coral}
