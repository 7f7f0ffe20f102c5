"""Lesson 05 rubric: gradient reversal, the DANN lambda schedule, the DANN loss and model, the CORAL loss."""

import math

import numpy as np

from tlkit.data import load_dataset

from ..probes.l05_domain_adaptation import (
    PROGRESS,
    SOURCE,
    TARGET,
    coral_inputs,
    grl_inputs,
    loss_inputs,
    sources_first,
)

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

