"""Lesson 05: gradient reversal, the DANN lambda schedule, the DANN loss and model, the CORAL loss.

Probes: gradient reversal, the lambda schedule, the DANN loss and model, the CORAL loss.

Each probe imports only the notebook's own framework (PyTorch, or Keras on its backend) and returns plain
observations: values on fixed inputs and predictions on the grader's held-out images. The judges hold every
expected value and tolerance.
"""

import numpy as np

from ..probes.common import callable_, eval_mode, helpers, require

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


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

import math

from tlkit.data import load_dataset

GRL_TOLERANCE = 1e-5
LAMBDA_TOLERANCE = 1e-4
LOSS_TOLERANCE = 1e-4  # relative, float32 maths on CPU or GPU
# The bars sit well below what the lesson's solution reaches over many seeds (benchmarks/outcomes_20_seeds.json).
# How much DANN gains in one run is partly luck (the adversarial game swings), so the bar only asks that adaptation
# did not wreck the target classifier; the domain checks below are what prove that DANN happened.
DANN_MIN_TARGET_ACCURACY = 0.4
DANN_MIN_SOURCE_ACCURACY = 0.85  # and stays a digit classifier on the source domain
DOMAIN_MAX_ACCURACY = 0.85  # a domain classifier on DANN features is confused; on source-only ones it is not
DOMAIN_MIN_LEARNED = 0.6  # ...but it did learn: its best epoch on the training batches beats chance clearly


def _rel_close(a, b, tol=LOSS_TOLERANCE) -> bool:
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


# ----------------------------------------------------------------- Part A
def judge_grl(obs):
    x, w = grl_inputs()
    msgs = []
    for run in obs["runs"]:
        lam = run["lam"]
        out = np.asarray(run["out"], dtype=float)
        if out.shape != x.shape or np.abs(out - x).max() > GRL_TOLERANCE:
            msgs.append("The forward pass of the gradient reversal must return its input unchanged (the identity); "
                        f"with λ = {lam:g} it changed the values.")
            break
        if run["grad"] is None or np.shape(run["grad"]) != x.shape:
            msgs.append("No gradient flowed back through your gradient reversal: the backward pass must return a "
                        "gradient for its input.")
            break
        grad = np.asarray(run["grad"], dtype=float)
        if np.abs(grad - (-lam * w)).max() <= GRL_TOLERANCE:
            continue
        if np.abs(grad - lam * w).max() <= GRL_TOLERANCE or np.abs(grad - w).max() <= GRL_TOLERANCE:
            msgs.append("The sign is not reversed: your backward pass passes the gradient on with a plus sign, so "
                        "the features learn to HELP the domain classifier. It must return −λ × the incoming "
                        "gradient.")
        elif np.abs(grad + w).max() <= GRL_TOLERANCE:
            msgs.append(f"Your backward pass returns −1 × the gradient whatever λ is (λ = {lam:g} here): multiply by "
                        "−λ, so the schedule can ramp the reversal up.")
        else:
            msgs.append(f"With λ = {lam:g} the gradient your layer passes back is not −λ × the incoming gradient.")
        break
    return msgs


# ----------------------------------------------------------------- Part B
def expected_lambda(p: float) -> float:
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def judge_lambda_schedule(obs):
    values = [float(v) for v in obs["values"]]
    expected = [expected_lambda(p) for p in PROGRESS]
    if all(abs(v - e) <= LAMBDA_TOLERANCE for v, e in zip(values, expected)):
        return []
    if all(abs(v) <= LAMBDA_TOLERANCE for v in values):
        return [("λ is fixed at 0: the domain classifier still trains, but no gradient of it ever reaches the feature "
                "extractor, so DANN silently becomes the source-only baseline. λ must grow from 0 towards 1 with "
                "the training progress p: λ_p = 2 / (1 + exp(−10 p)) − 1.")]
    if len({round(v, 6) for v in values}) == 1:
        return [(f"λ stays at {values[0]:g} whatever the progress: it must grow from 0 (start) towards 1 (end), "
                "λ_p = 2 / (1 + exp(−10 p)) − 1, so the noisy early domain gradients do not disturb the features.")]
    shown = ", ".join(f"p={p:g}: {v:.3f}" for p, v in zip(PROGRESS, values))
    return [(f"Your schedule gives {shown}; the paper's is λ_p = 2 / (1 + exp(−10 p)) − 1 (0 at p = 0, 0.987 at "
            "p = 0.5, → 1 at p = 1).")]


# ----------------------------------------------------------------- Part C
def _softplus(z):
    return np.logaddexp(0.0, z)


def reference_losses(labels, domain, class_logits, domain_logits):
    """Class cross-entropy of the source rows (mean over them, or their sum over all rows) and the domain BCE."""
    z = class_logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    ce = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]
    src = domain == 0
    d = domain_logits.reshape(-1).astype(np.float64)
    bce = np.mean(domain * _softplus(-d) + (1 - domain) * _softplus(d))
    return {"source_mean": ce[src].mean(), "source_over_all": ce[src].sum() / len(ce), "all": ce.mean(),
            "domain": bce, "domain_source_only": np.mean(_softplus(d[src])),
            "domain_target_only": np.mean(_softplus(-d[~src]))}


def _accuracy(pred, name) -> float:
    y = load_dataset(name, "holdout").y
    pred = np.asarray(pred)
    return float(np.mean(pred == y)) if pred.shape == y.shape else 0.0


def _picks_rows_by_position(obs, labels, domain, class_logits, domain_logits) -> bool:
    """Wrong on the probe's interleaved batch, right on the same rows with the source rows first."""
    first = obs.get("sources_first", {})
    if "class" not in first:
        return False
    ref = reference_losses(labels, domain, class_logits, domain_logits)
    right_here = _rel_close(obs["losses"]["class"], obs["garbled"]["class"]) and \
        any(_rel_close(obs["losses"]["class"], ref[k]) for k in ("source_mean", "source_over_all"))
    ordered = reference_losses(labels, sources_first(domain), class_logits, domain_logits)
    return not right_here and any(_rel_close(first["class"], ordered[k]) for k in ("source_mean", "source_over_all"))


def judge_dann(obs):
    losses = obs["losses"]
    if "class" not in losses:
        return [(f"`dann_loss` should return two scalars, (class_loss, domain_loss), not a {losses.get('returned')}.")]
    labels, _, domain, class_logits, domain_logits = loss_inputs()
    ref = reference_losses(labels, domain, class_logits, domain_logits)
    msgs = []
    if _picks_rows_by_position(obs, labels, domain, class_logits, domain_logits):
        msgs.append("Your class loss takes the source rows by their position in the batch (right only when the "
                    "source rows come first, as in the lesson's batches): select them with `domain == 0`, not by "
                    "position, so that no target row, and no target label, can reach the loss whatever the order.")
    elif not _rel_close(losses["class"], obs["garbled"]["class"]):
        msgs.append("Target labels reach your loss: when only the labels of the target rows change, your class loss "
                    "changes too. Unsupervised domain adaptation has no target labels; the class loss must use the "
                    "source rows (domain == 0) only.")
    elif not any(_rel_close(losses["class"], ref[k]) for k in ("source_mean", "source_over_all")):
        msgs.append("Your class loss is not the cross-entropy of the source rows (domain == 0) with their labels, "
                    "computed from the class logits.")
    else:  # the same mix must be handled for any arrangement of source and target rows
        other = reference_losses(labels, np.where(np.arange(len(domain)) < 4, 0.0, domain), class_logits,
                                 domain_logits)
        if not any(_rel_close(obs["other_mix"]["class"], other[k]) for k in ("source_mean", "source_over_all")):
            msgs.append("Your class loss depends on where the source rows sit in the batch: select them with "
                        "`domain == 0`, not by position.")
    if _rel_close(losses["domain"], -ref["domain"]):
        msgs.append("Your domain loss is negated: the reversal belongs in the gradient reversal layer only. The domain "
                    "classifier itself must MINIMISE its binary cross-entropy.")
    elif _rel_close(losses["domain"], ref["domain_source_only"]) or _rel_close(losses["domain"],
                                                                               ref["domain_target_only"]):
        msgs.append("Your domain loss uses only one domain: the domain classifier must see source (label 0) and "
                    "target (label 1) rows.")
    elif not _rel_close(losses["domain"], ref["domain"]):
        msgs.append("Your domain loss is not the binary cross-entropy of the domain logits (from logits) with the "
                    "domain labels (0 = source, 1 = target), averaged over all rows.")
    if msgs:
        return msgs
    target_acc = _accuracy(obs["target_pred"], TARGET)
    source_acc = _accuracy(obs["source_pred"], SOURCE)
    says = obs["domain_says_target"]
    domain_acc = (np.mean(np.logical_not(says["source"])) + np.mean(says["target"])) / 2
    learned = max(obs["domain_accuracy_history"], default=0.0)
    if learned < DOMAIN_MIN_LEARNED:
        msgs.append(f"Your domain classifier never learned to tell the domains apart (best epoch {learned:.0%}): "
                    "did `dann_history` record its accuracy, and does the domain loss reach it?")
    if domain_acc > DOMAIN_MAX_ACCURACY:
        msgs.append(f"The features of your `dann_model` are not domain-confused: its domain classifier still tells "
                    f"held-out source from target images apart {domain_acc:.0%} of the time. The reversed gradient "
                    "(−λ) has to reach the feature extractor.")
    if target_acc < DANN_MIN_TARGET_ACCURACY or source_acc < DANN_MIN_SOURCE_ACCURACY:
        msgs.append(f"Your `dann_model` classifies {target_acc:.0%} of unseen MNIST-M-style images "
                    f"(and {source_acc:.0%} of unseen MNIST digits) correctly; adapted, it should reach at least "
                    f"{DANN_MIN_TARGET_ACCURACY:.0%} (and {DANN_MIN_SOURCE_ACCURACY:.0%}).")
    return msgs


# ----------------------------------------------------------------- Part D
def _cov(x, ddof=1):
    xc = x - x.mean(axis=0)
    return xc.T @ xc / (len(x) - ddof)


def coral_reference(a, b, centre=True, ddof=1, scale=4):
    a, b = a.astype(np.float64), b.astype(np.float64)
    d = a.shape[1]
    if centre:
        ca, cb = _cov(a, ddof), _cov(b, ddof)
    else:
        ca, cb = a.T @ a / (len(a) - ddof), b.T @ b / (len(b) - ddof)
    return float(((ca - cb) ** 2).sum() / (scale * d * d))


CORAL_MIN_GRADIENT = 1e-6  # norm of the loss's gradient w.r.t. each batch of features (about 0.1-1 on the probe's pair)


def judge_coral(obs):
    return _coral_value_messages(obs) + _coral_gradient_messages(obs)


def _coral_gradient_messages(obs):
    why = ("computed outside the framework, e.g. with NumPy (`np.cov`, `.numpy()`, `.detach()`) and wrapped back into "
           "a tensor")
    if "gradient_error" in obs:
        return [(f"No gradient flows through your CORAL loss ({why}?): called on features that carry gradients, it "
                f"raised {obs['gradient_error']}. Compute it with the framework's own operations.")]
    norms = obs.get("gradient_norms")
    if norms is None:
        return []
    dead = [side for side, n in zip(("source", "target"), norms) if not float(n) > CORAL_MIN_GRADIENT]
    if not dead:
        return []
    where = "either batch of features" if len(dead) == 2 else f"the {dead[0]} features"
    return [(f"No gradient flows through your CORAL loss to {where}: its value may be right, but it was {why}, so "
            "training cannot use it to align the features. Compute the covariances with the framework's own "
            "operations (`torch` / `keras.ops`), without detaching.")]


def _coral_value_messages(obs):
    values = [float(v) for v in obs["values"]]
    pairs = coral_inputs()

    def matches(**kw):
        return all(_rel_close(v, coral_reference(a, b, **kw), 1e-3) for v, (a, b) in zip(values, pairs))

    if matches() or matches(ddof=0):
        return []
    if matches(centre=False) or matches(centre=False, ddof=0):
        return [("Your covariances are not centred: subtract each feature's mean (over the batch) before X^T X. As "
                "it is, a mere shift of the target features (same covariance) gives a large CORAL loss.")]
    if any(matches(scale=s, ddof=k) for s in (1, 0.25, 2) for k in (0, 1)) or \
            any(all(_rel_close(v, coral_reference(a, b, ddof=k) * f, 1e-3) for v, (a, b) in zip(values, pairs))
                for f in (4.0, 4.0 * pairs[0][0].shape[1], 4.0 * pairs[0][0].shape[1] ** 2) for k in (0, 1)):
        return [("Your CORAL loss has the wrong normaliser: it is ‖C_s − C_t‖²_F / (4 d²) with d the feature "
                "dimension (the squared Frobenius norm: the sum of the squared differences).")]
    if abs(values[0]) > 1e-4:
        return [("Two batches with the same covariance (the target is the source shifted by a constant) must give a "
                f"CORAL loss of 0; yours gives {values[0]:.4g}.")]
    return [("Your CORAL loss differs from ‖C_s − C_t‖²_F / (4 d²), with C the covariance of each batch of features "
            "(centred, divided by n − 1) and d the feature dimension.")]
