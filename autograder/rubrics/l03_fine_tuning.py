"""Lesson 03: two-stage fine-tuning (head first, last blocks unfrozen, two learning rates, stage 2).

Probes: what the learner's fine-tuning code trains, how it updates, and how well it predicts.

Every probe builds what it needs on a small fresh backbone (32-pixel inputs, cheap), so one exercise's
observation does not depend on another exercise's answer. Stage 2 (Part D) is the exception the lesson announces:
it trains Part A's model with Parts B and C; its probe judges what stage 2 changed against what the learner's own
Part B opens and the rates the learner's own Part C gives, so that no mistake is charged twice. Expectations live
in the judges.
"""

import weakref

import numpy as np

from ..probe_runtime import ProbeError
from ..probes.common import callable_, eval_mode, helpers, require

PROBE_SIZE = 32  # pixels; the backbone works at any size, the probes only look at weights and flags
UNFREEZE_BLOCKS = (1, 2)  # n_blocks the probe asks unfreeze_last_blocks for
LR_HEAD, LR_BACKBONE = 1e-3, 1e-4  # what the probe passes to make_optimizer (Part C)
STAGE_2_LR_HEAD, STAGE_2_LR_BACKBONE = 3e-3, 1e-3  # the rates the lesson's stage 2 (Part D) is instructed to use
N_CLASSES = 10
HOLDOUT = "mnistm5k"  # the lesson's data set: its held-out images (labels stay outside the kernel)

# What the model looked like when stage 1 ended (taken by Part A's probe, which runs right after stage 1), so that
# Part D's probe can tell what stage 2 changed: the head's values, and the optimizers that stage 1 used.
_AFTER_STAGE_1 = {}


def _block_of(name: str, framework: str) -> str:
    """'stem', 'block <i>' (0..15) or 'head' for a PyTorch parameter name or a Keras layer name."""
    if framework == "pytorch":
        if name.startswith("_blocks."):
            return f"block {int(name.split('.')[1])}"
        return "stem" if name.startswith(("_conv_stem", "_bn0")) else "head"
    from tlkit.keras_efficientnet import blocks

    index = {b.name: b.index for b in blocks()}
    if name.startswith("block"):
        return f"block {index[name[:7]]}"
    return "stem" if name.startswith("stem") else "head"


def _fresh_backbone(framework):
    return helpers(framework).load_backbone("efficientnet_lite0", input_size=PROBE_SIZE)


def probe_head_first(ns, framework):
    model = require(ns, "model")
    if framework == "pytorch":
        if not all(hasattr(model, part) for part in ("backbone", "head")):
            raise ProbeError("`model` should be Sequential(OrderedDict(backbone=..., head=...)) from build_classifier.")
        head = sum(p.numel() for p in model.head.parameters() if p.requires_grad)
        backbone = sum(p.numel() for p in model.backbone.parameters() if p.requires_grad)
    else:
        head = helpers(framework).count_params(model.get_layer("head"), trainable_only=True)
        backbone = helpers(framework).count_params(model, trainable_only=True) - head
    obs = {"head_trainable": int(head), "backbone_trainable": int(backbone), "n_classes": N_CLASSES,
           "frozen_val": float(require(ns, "frozen_val"))}
    _AFTER_STAGE_1.clear()
    _AFTER_STAGE_1.update(holdout_pred=_frozen_holdout_predictions(ns, model, framework),
                          head=_head_values(model.head if framework == "pytorch" else model.get_layer("head"),
                                            framework),
                          optimizers=[weakref.ref(o) for o in _optimizers(ns, framework)])
    if framework == "keras":
        obs["backbone_training_mode"] = _backbone_runs_in_training_mode(ns)
    return obs


def _frozen_holdout_predictions(ns, model, framework):
    """The frozen model's labels for the held-out images, right after stage 1: the baseline stage 2 must beat.
    None when the model cannot predict (Part A's own checks say why)."""
    from tlkit.data import load_inputs

    try:
        size = int(ns.get("IMAGE_SIZE", PROBE_SIZE))
        return _predict_full(model, framework, load_inputs(HOLDOUT, "holdout"), size).argmax(axis=1).tolist()
    except Exception:  # noqa: BLE001
        return None


def _head_values(head, framework) -> list:
    """The values of the classifier head's tensors, in order (copies)."""
    tensors = [*head.parameters(), *head.buffers()] if framework == "pytorch" else head.weights
    return [helpers(framework).to_numpy(t).copy() for t in tensors]


def _optimizers(ns, framework) -> list:
    """Every optimizer the notebook's variables hold: directly, in a learning-rate scheduler, or in a compiled model."""
    found = []
    for value in list(ns.values()):
        if framework == "pytorch":
            import torch

            if isinstance(value, torch.optim.lr_scheduler.LRScheduler):
                value = value.optimizer
            candidate = value if isinstance(value, torch.optim.Optimizer) else None
        else:
            import keras

            if isinstance(value, keras.Model):
                value = getattr(value, "optimizer", None)
            candidate = value if isinstance(value, keras.optimizers.Optimizer) else None
        if candidate is not None and not any(candidate is o for o in found):
            found.append(candidate)
    return found


def _backbone_runs_in_training_mode(ns):
    """Does a model from build_classifier run its backbone in training mode when it is called as ``model(x)``?

    (An outer ``training=True/False`` overrides what build_classifier passed to the backbone; a plain call, as a
    learner predicts with, keeps it.) Checked on a fresh backbone made fully trainable after the model is built, as
    when layers are unfrozen later: batch norm then updates its moving statistics only in training mode. None when
    build_classifier fails here."""
    import keras

    build_classifier = ns.get("build_classifier")
    if not callable(build_classifier):
        return None
    size = int(ns.get("IMAGE_SIZE", PROBE_SIZE))
    tl = helpers("keras")
    to_numpy = tl.to_numpy
    bb = tl.load_backbone("efficientnet_lite0", input_size=size)
    try:
        model = build_classifier(bb, N_CLASSES)
        bb.trainable = True
        bns = [layer for layer in bb.layers if isinstance(layer, keras.layers.BatchNormalization)]
        before = [to_numpy(layer.moving_mean).copy() for layer in bns]
        x = np.random.default_rng(0).normal(size=(4, size, size, 3)).astype("float32")
        model(x)
    except Exception:  # noqa: BLE001  (Part A's own checks report a build_classifier that does not work)
        return None
    return any(not np.array_equal(b, to_numpy(layer.moving_mean)) for b, layer in zip(before, bns))


def _bn_step_pytorch(bb):
    import torch

    bns = [m for m in bb.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in bns]
    params = [p for p in bb.parameters() if p.requires_grad]
    x = torch.randn(4, 3, PROBE_SIZE, PROBE_SIZE, generator=torch.Generator().manual_seed(0))
    out = bb(x)  # in whatever mode unfreeze_last_blocks left it
    if params:
        out.square().mean().backward()
        torch.optim.SGD(params, lr=0.01).step()
    changed = sum(not torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    return {"bn_in_train_mode": sum(m.training for m in bns), "bn_stats_changed": int(changed),
            "bn_trainable": [n for n, p in bb.named_parameters() if p.requires_grad and "_bn" in n.split(".")[-2]]}


def _bn_step_keras(bb):
    import keras

    to_numpy = helpers("keras").to_numpy
    bns = [layer for layer in bb.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before = [to_numpy(layer.moving_mean) for layer in bns]
    x = np.random.default_rng(0).normal(size=(4, PROBE_SIZE, PROBE_SIZE, 3)).astype("float32")
    bb(x, training=True)  # a training-mode forward pass: only trainable BN layers update their statistics
    changed = sum(not np.array_equal(b, to_numpy(layer.moving_mean)) for b, layer in zip(before, bns))
    return {"bn_in_train_mode": 0, "bn_stats_changed": int(changed),
            "bn_trainable": [layer.name for layer in bns if layer.trainable_weights]}


def probe_unfreeze(ns, framework):
    fn = callable_(ns, "unfreeze_last_blocks")
    out = {}
    for n in UNFREEZE_BLOCKS:
        bb = _fresh_backbone(framework)
        result = fn(bb, n)
        bb = result if result is not None else bb
        if framework == "pytorch":
            names = [name for name, p in bb.named_parameters() if p.requires_grad]
        else:
            names = [layer.name for layer in bb.layers if layer.trainable_weights]
        parts = sorted({_block_of(name, framework) for name in names})
        step = _bn_step_pytorch(bb) if framework == "pytorch" else _bn_step_keras(bb)
        out[str(n)] = {"trainable_parts": parts, "n_trainable_tensors": len(names), **step}
    return out


def _fresh_model_pytorch():
    from collections import OrderedDict

    import torch

    bb = _fresh_backbone("pytorch")
    bb.requires_grad_(False)
    for module in [*bb._blocks[-2:], bb._conv_head]:
        for name, p in module.named_parameters():
            p.requires_grad_(not name.startswith("_bn"))
    torch.manual_seed(0)
    return torch.nn.Sequential(OrderedDict(backbone=bb.eval(), head=torch.nn.Linear(1280, N_CLASSES)))


def _fresh_model_keras():
    import keras

    bb = _fresh_backbone("keras")
    bb.trainable = True
    for layer in bb.layers:
        layer.trainable = layer.name.startswith(("block6d_", "block7a_", "top_conv")) and \
            not isinstance(layer, keras.layers.BatchNormalization)
    inputs = keras.Input(shape=(PROBE_SIZE, PROBE_SIZE, 3))
    return keras.Model(inputs, keras.layers.Dense(N_CLASSES, name="head")(bb(inputs, training=False)))


def probe_param_groups(ns, framework):
    """Every parameter gets a gradient of ones and the optimizer takes one step; record how far each moved.

    Adam's (and SGD's) first step with a gradient of ones moves a weight by its learning rate.
    """
    return _one_step(ns, framework, LR_HEAD, LR_BACKBONE)


def _one_step(ns, framework, lr_head, lr_backbone):
    """probe_param_groups for make_optimizer(model, lr_head=lr_head, lr_backbone=lr_backbone)."""
    fn = callable_(ns, "make_optimizer")
    tl = helpers(framework)
    if framework == "pytorch":
        import torch

        model = _fresh_model_pytorch()
        opt = fn(model, lr_head=lr_head, lr_backbone=lr_backbone)
        if not isinstance(opt, torch.optim.Optimizer):
            return {"type": type(opt).__name__}
        named = [(("head" if n.startswith("head.") else "backbone"), p) for n, p in model.named_parameters()]
        before = [tl.to_numpy(p).copy() for _, p in named]
        for _, p in named:
            p.grad = torch.ones_like(p)  # also on frozen parameters: an optimizer that holds them moves them
        opt.step()
        trainable = [p.requires_grad for _, p in named]
        base_lr = None  # (the rates are judged per parameter: any grouping that gives each its rate will do)
    else:
        import keras

        model = _fresh_model_keras()
        opt = fn(model, lr_head=lr_head, lr_backbone=lr_backbone)
        if not isinstance(opt, keras.optimizers.Optimizer):
            return {"type": type(opt).__name__}
        head_ids = {id(v) for v in model.get_layer("head").weights}
        variables = list(model.trainable_variables)
        named = [("head" if id(v) in head_ids else "backbone", v) for v in model.weights]
        trainable_ids = {id(v) for v in variables}
        before = [tl.to_numpy(v).copy() for _, v in named]
        opt.apply([keras.ops.ones_like(v) for v in variables], variables)  # what fit does, once
        trainable = [id(v) in trainable_ids for _, v in named]
        base_lr = float(tl.to_numpy(opt.learning_rate))
    steps = [float(np.abs(tl.to_numpy(v) - b).max()) for (_, v), b in zip(named, before)]
    rows = [(part, bool(t), s) for (part, _), t, s in zip(named, trainable, steps)]
    return {"head": [s for part, _, s in rows if part == "head"],
            "backbone_trainable": [s for part, t, s in rows if part == "backbone" and t],
            "backbone_frozen_moved": sum(s > 0 for part, t, s in rows if part == "backbone" and not t),
            "base_lr": base_lr}


def _predict_full(model, framework, images, size):
    tl = helpers(framework)
    x = tl.preprocess_inputs(images, size=size)
    if framework == "pytorch":
        import torch

        with eval_mode(model), torch.no_grad():
            return tl.to_numpy(torch.cat([model(x[i:i + 100]) for i in range(0, len(x), 100)]))
    return tl.to_numpy(model.predict(x, batch_size=100, verbose=0))


def probe_fine_tune(ns, framework):
    from tlkit.data import load_inputs

    model = require(ns, "model")
    size = int(require(ns, "IMAGE_SIZE"))
    history = require(ns, "history_ft")
    accuracy = callable_(ns, "accuracy")
    val = accuracy(model, "val") if framework == "pytorch" else accuracy("val")
    pred = _predict_full(model, framework, load_inputs(HOLDOUT, "holdout"), size).argmax(axis=1)
    obs = {"holdout_pred": pred.tolist(), "val": float(val), "frozen_val": float(require(ns, "frozen_val")),
           "frozen_holdout_pred": _AFTER_STAGE_1.get("holdout_pred"),
           "history_len": len(history.get("val_loss", [])) if isinstance(history, dict) else 0}
    parts = _model_parts(ns, model, framework)
    if parts is not None:
        obs.update(_stage_2_changes(ns, framework, *parts))
        obs["lr"] = _stage_2_rates(ns, framework, *parts)
        obs["lr_for_instructed_arguments"] = _rates_for_instructed_arguments(ns, framework)
    return obs


# What stage 2 changed, and at which learning rates. The backbone is compared with the pretrained weights (stage 1
# trains the head alone, on pooled features, so it never moves the backbone), the head with its values after stage
# 1. What stage 2 should move is what the learner's own unfreeze_last_blocks opens (Part B grades that function), so
# a mistake of Part B's is not charged to Part D again.
BN_STATISTICS = "batch-norm statistics"


def _model_parts(ns, model, framework):
    """(backbone, head) of the fine-tuned model, or None when the model does not have the lesson's shape."""
    if framework == "pytorch":
        if not all(hasattr(model, part) for part in ("backbone", "head")):
            return None
        return model.backbone, model.head
    backbone = ns.get("backbone")
    try:
        return model.get_layer(backbone.name), model.get_layer("head")
    except (AttributeError, ValueError):
        return None


def _part_name(name, framework):
    part = _block_of(name, framework)
    return "the final 1x1 conv" if part == "head" else part


def _backbone_tensors(bb, framework) -> dict:
    """{key: (part, is batch-norm statistics, values)} for every tensor of a backbone, by a key both twins share."""
    to_numpy = helpers(framework).to_numpy
    if framework == "pytorch":
        buffers = {name for name, _ in bb.named_buffers()}
        return {name: (_part_name(name, framework), name in buffers, to_numpy(t))
                for name, t in bb.state_dict().items()}
    import keras

    out = {}
    for layer in bb.layers:
        stats = [layer.moving_mean, layer.moving_variance] \
            if isinstance(layer, keras.layers.BatchNormalization) else []
        for i, w in enumerate(layer.weights):
            out[f"{layer.name}/{i}"] = (_part_name(layer.name, framework), any(w is t for t in stats), to_numpy(w))
    return out


def _opened_by_unfreeze(ns, framework):
    """(keys of the tensors the learner's unfreeze_last_blocks makes trainable, whether batch-norm statistics may
    move after it) on a fresh backbone; (set(), False) when it cannot be run."""
    fn = ns.get("unfreeze_last_blocks")
    n_top = ns.get("N_TOP", 1)
    if not callable(fn):
        return set(), False
    bb = _fresh_backbone(framework)
    try:
        result = fn(bb, int(n_top))
        bb = result if result is not None else bb
        if framework == "pytorch":
            import torch

            opened = {name for name, p in bb.named_parameters() if p.requires_grad}
            return opened, any(m.training for m in bb.modules() if isinstance(m, torch.nn.BatchNorm2d))
        import keras

        opened = {f"{layer.name}/{i}" for layer in bb.layers for i, w in enumerate(layer.weights)
                  if any(w is t for t in layer.trainable_weights)}
        bn_free = any(layer.trainable_weights for layer in bb.layers
                      if isinstance(layer, keras.layers.BatchNormalization))
        return opened, bn_free
    except Exception:  # noqa: BLE001  (Part B's probe reports an unfreeze_last_blocks that does not work)
        return set(), False


def _stage_2_changes(ns, framework, backbone, head) -> dict:
    pretrained = _backbone_tensors(_fresh_backbone(framework), framework)
    now = _backbone_tensors(backbone, framework)
    opened, bn_free = _opened_by_unfreeze(ns, framework)
    opened_change, frozen_changes = None, {}
    for key, (part, is_stat, value) in now.items():
        ref = pretrained.get(key)
        if ref is None or np.shape(ref[2]) != np.shape(value):
            continue
        change = float(np.abs(np.asarray(value, np.float64) - np.asarray(ref[2], np.float64)).max(initial=0.0))
        if key in opened or (is_stat and bn_free):
            if key in opened:
                opened_change = max(opened_change or 0.0, change)
        else:
            where = BN_STATISTICS if is_stat else part
            frozen_changes[where] = max(frozen_changes.get(where, 0.0), change)
    obs = {"opened_tensors": len(opened), "opened_max_change": opened_change, "frozen_max_change": frozen_changes}
    before = _AFTER_STAGE_1.get("head")
    if before is not None:
        after = _head_values(head, framework)
        if len(after) != len(before) or any(a.shape != b.shape for a, b in zip(after, before)):
            obs["head_replaced"] = True
        else:
            obs["head_max_change"] = max((float(np.abs(a.astype(np.float64) - b).max(initial=0.0))
                                          for a, b in zip(after, before)), default=0.0)
    return obs


def _stage_2_optimizers(ns, framework) -> list:
    """The optimizers that stage 2 made and stepped (not stage 1's)."""
    stage_1 = [ref() for ref in _AFTER_STAGE_1.get("optimizers", [])]
    found = [o for o in _optimizers(ns, framework) if not any(o is s for s in stage_1 if s is not None)]
    if framework == "pytorch":
        return found  # (one that holds none of the model's parameters reports no rate)
    return [o for o in found if int(helpers(framework).to_numpy(o.iterations)) > 0]


def _stage_2_rates(ns, framework, backbone, head) -> dict:
    """The highest initial learning rate at which stage 2's optimizer trains the head, and the backbone's trainable
    parameters ({part: None} where it trains none of them)."""
    rates = {"head": None, "backbone": None}
    for opt in _stage_2_optimizers(ns, framework):
        found = _torch_rates(opt, backbone, head) if framework == "pytorch" else _keras_rates(ns, opt, backbone, head)
        for part, lr in found.items():
            if lr is not None:
                rates[part] = lr if rates[part] is None else max(rates[part], lr)
    return rates


def _torch_rates(opt, backbone, head) -> dict:
    lr_of = {}
    for group in opt.param_groups:
        lr = float(group.get("initial_lr", group["lr"]))  # a scheduler keeps the starting rate as initial_lr
        for p in group["params"]:
            lr_of[id(p)] = max(lr_of.get(id(p), 0.0), lr)
    head_lrs = [lr_of[id(p)] for p in head.parameters() if id(p) in lr_of]
    backbone_lrs = [lr_of[id(p)] for p in backbone.parameters() if p.requires_grad and id(p) in lr_of]
    return {"head": max(head_lrs, default=None), "backbone": max(backbone_lrs, default=None)}


def _keras_rates(ns, opt, backbone, head) -> dict:
    """Per part, how far one step of ``opt`` moves a weight whose gradient is 1, from a fresh optimizer state at the
    peak rate of stage 2 (Adam's and SGD's first step then moves it by its learning rate). The model and the
    optimizer are restored afterwards."""
    import keras

    to_numpy = helpers("keras").to_numpy
    head_ids = {id(v) for v in head.weights}
    variables = [*backbone.trainable_weights, *head.trainable_weights]
    state = [to_numpy(v).copy() for v in opt.variables]
    values = [to_numpy(v).copy() for v in variables]
    rate = opt.learning_rate  # the optimizer's own variable when the rate is a number (a callback may set it)
    rate_variable = rate if any(rate is v for v in opt.variables) else None
    steps = {}
    try:
        for v in opt.variables:
            if v is not rate_variable:
                v.assign(keras.ops.zeros_like(v))  # the iteration count and the moments, as before the first step
        peak = _peak_rate(ns, opt)
        if rate_variable is not None and peak is not None:
            rate_variable.assign(peak)  # the highest rate a callback set (for a warm-up, not the first epoch's)
        opt.apply([keras.ops.ones_like(v) for v in variables], variables)
        for v, before in zip(variables, values):
            part = "head" if id(v) in head_ids else "backbone"
            moved = float(np.abs(to_numpy(v) - before).max(initial=0.0))
            steps[part] = max(steps.get(part, 0.0), moved)
    except Exception:  # noqa: BLE001  (an optimizer that does not hold these variables: not stage 2's)
        return {}
    finally:
        for v, value in zip(opt.variables, state):
            v.assign(value)
        for v, value in zip(variables, values):
            v.assign(value)
    return {part: step if step > 0 else None for part, step in steps.items()}


def _peak_rate(ns, opt):
    """The highest learning rate of any epoch, as a callback (e.g. LearningRateScheduler) logged it, else None.
    (A warm-up starts lower: the rate the instructions name is the peak.)"""
    import keras

    for value in list(ns.values()):
        if isinstance(value, keras.Model) and getattr(value, "optimizer", None) is opt:
            logged = getattr(getattr(value, "history", None), "history", {}).get("learning_rate")
            if logged:
                return float(max(logged))
    return None


def _rates_for_instructed_arguments(ns, framework):
    """The rates at which the learner's make_optimizer trains the head and the backbone for stage 2's instructed
    arguments, on a model of the probe's; None when it cannot be run."""
    if not callable(ns.get("make_optimizer")):
        return None
    try:
        steps = _one_step(ns, framework, STAGE_2_LR_HEAD, STAGE_2_LR_BACKBONE)
    except Exception:  # noqa: BLE001  (Part C's probe reports a make_optimizer that does not work)
        return None
    if "type" in steps:
        return None
    return {"head": max(steps["head"], default=None), "backbone": max(steps["backbone_trainable"], default=None)}


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

from tlkit.data import load_dataset

FINE_TUNE_GAIN = 0.10  # held-out accuracy stage 2 must add to the learner's own frozen model (the solution's gain is
#                        in benchmarks/outcomes.json, far above this)
FINE_TUNE_FLOOR = 0.60  # and at least this, so that a broken stage 1 does not lower the bar (Part A grades that)
FROZEN_SANE = 0.20  # a frozen model below this after stage 1 had no trained head (Part A's mistake): stage 2's
#                     accuracy then says nothing about Part D
N_BLOCKS = 16
CHANGE_TOLERANCE = 1e-6  # max |change| of a tensor below which stage 2 left it as it was (Adam moves tuned
#                          weights by about its learning rate a step; frozen ones stay bit for bit on CPU and GPU)
LR_TOO_HIGH = 3.0  # a stage-2 rate over this many times the instructed one (10x is the classic slip) is too high,
#                    unless make_optimizer itself gives that rate for the instructed arguments (Part C's business)


def judge_head_first(obs):
    msgs = []
    want = 1280 * obs["n_classes"] + obs["n_classes"]
    if obs["head_trainable"] == 0:
        msgs.append("The new head is frozen too: nothing can learn in stage 1. Freeze only the backbone and leave "
                    "the head trainable.")
    elif obs["head_trainable"] != want:
        msgs.append(f"The head has {obs['head_trainable']} trainable parameters; a linear layer from the 1280 "
                    f"features to {obs['n_classes']} classes has {want}.")
    if obs["backbone_trainable"]:
        msgs.append(f"The backbone still has {obs['backbone_trainable']} trainable parameters in stage 1: freeze it "
                    "so that the random head cannot wreck the pretrained weights.")
    if obs.get("backbone_training_mode"):
        msgs.append("Your model runs the backbone in training mode when it is called as `model(images)`: did "
                    "`build_classifier` call the backbone with `training=True`? Its dropout is then on when you "
                    "predict, and once layers are unfrozen its batch-norm layers normalise with each batch's "
                    "statistics and overwrite their ImageNet averages. Call the backbone with `training=False`.")
    return msgs


def judge_unfreeze(obs):
    msgs = []
    for n in UNFREEZE_BLOCKS:
        o = obs[str(n)]
        want = {f"block {i}" for i in range(N_BLOCKS - n, N_BLOCKS)} | {"head"}
        got = set(o["trainable_parts"])
        if not got:
            msgs.append(f"`unfreeze_last_blocks(backbone, {n})` left nothing trainable.")
        elif "stem" in got or len(got - want) > 0:
            extra = len(got - want)
            msgs.append(f"`unfreeze_last_blocks(backbone, {n})` made {extra} earlier part(s) trainable too: only the "
                        f"last {n} block(s) and the final 1x1 conv should train, not the whole network.")
        elif got != want:
            msgs.append(f"`unfreeze_last_blocks(backbone, {n})` should make the last {n} block(s) and the final 1x1 "
                        "conv trainable; some of them stay frozen.")
        if o["bn_stats_changed"] or o["bn_in_train_mode"] or o["bn_trainable"]:
            msgs.append("Batch normalisation is not frozen: a training step changed its running statistics (or its "
                        "layers are trainable / in train mode). Keep every batch-norm layer in inference mode.")
        if msgs:
            break
    return msgs


def _near(step, lr):
    return 0.5 * lr <= step <= 2.0 * lr


def judge_param_groups(obs):
    if "type" in obs:
        return [f"`make_optimizer` should return an optimizer, not a {obs['type']}."]
    msgs = []
    head, backbone = obs["head"], obs["backbone_trainable"]
    if not head or not all(s > 0 for s in head):
        msgs.append("The head's parameters are missing from the optimizer: it would never update the new layer.")
    elif not all(_near(s, LR_HEAD) for s in head):
        msgs.append("The head does not learn at `lr_head`.")
    if not all(s > 0 for s in backbone):
        msgs.append("Some trainable backbone parameters are missing from the optimizer.")
    elif not all(_near(s, LR_BACKBONE) for s in backbone):
        msgs.append("The backbone's trainable parameters do not learn at `lr_backbone`: the pretrained layers need "
                    "a lower learning rate than the head (one learning rate for all is the mistake).")
    if obs["backbone_frozen_moved"]:
        msgs.append("The optimizer also holds frozen backbone parameters: give it only those with requires_grad.")
    if obs.get("base_lr") is not None and abs(obs["base_lr"] - LR_HEAD) > 1e-9:
        msgs.append("The optimizer's own learning rate should be `lr_head` (the backbone's is a fraction of it).")
    return msgs


def _changed(value) -> bool:
    return value is not None and float(value) > CHANGE_TOLERANCE


def _rate(lr) -> str:
    """1e-3 as the lesson writes it (not 0.001 or 1e-03)."""
    mantissa, exponent = f"{float(lr):.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _stage_2_messages(obs):
    msgs = []
    if obs.get("head_replaced") is None and "head_max_change" in obs and not _changed(obs["head_max_change"]):
        msgs.append("Your head did not change during stage 2: it was frozen (or left out of the optimizer) while the "
                    "backbone was fine-tuned. The head must keep learning with the unfrozen block(s), which change "
                    "its input features: make it trainable (`model.head.requires_grad_(True)` / `model.trainable = "
                    "True` before `unfreeze_last_blocks`) and give it to the optimizer at `lr_head`.")
    if obs.get("opened_tensors") and not _changed(obs.get("opened_max_change")):
        msgs.append("Stage 2 did not fine-tune the backbone: the block(s) that `unfreeze_last_blocks` opens still "
                    "hold their pretrained weights, so only the head was retrained. Unfreeze the last block(s) with "
                    "`unfreeze_last_blocks(...)` and train them with the head, through `make_optimizer`.")
    moved = sorted(part for part, change in obs.get("frozen_max_change", {}).items() if _changed(change))
    if moved:
        msgs.append(f"Stage 2 changed parts of the backbone that must stay frozen ({', '.join(moved)}): only what "
                    "`unfreeze_last_blocks` opens may learn, and batch norm must stay in inference mode (PyTorch: "
                    "never call `model.train()`; Keras: keep the batch-norm layers non-trainable).")
    rates, calibration = obs.get("lr") or {}, obs.get("lr_for_instructed_arguments") or {}
    high = {}
    for part, instructed in (("head", STAGE_2_LR_HEAD), ("backbone", STAGE_2_LR_BACKBONE)):
        actual = rates.get(part)
        allowed = max(instructed, calibration.get(part) or 0.0)
        if actual is not None and actual > LR_TOO_HIGH * allowed:
            high[part] = actual
    if high:
        shown = " and ".join(f"the {part} at {_rate(lr)}" for part, lr in high.items())
        msgs.append(f"Stage 2's learning rates are higher than the instructed ones: your optimizer starts {shown}, "
                    f"where the lesson fine-tunes with `lr_head={_rate(STAGE_2_LR_HEAD)}` and "
                    f"`lr_backbone={_rate(STAGE_2_LR_BACKBONE)}`. "
                    "Rates that high throw away what the pretrained blocks learned instead of adapting it.")
    return msgs


def _accuracy(pred, y):
    return float(np.mean(np.asarray(pred) == y)) if pred is not None and len(pred) == len(y) else None


def _stage_2_could_reach_the_bar(obs, frozen) -> bool:
    """Stage 2 trains Part A's model with Part C's optimizer: when either is wrong (no trained head after stage 1,
    or make_optimizer not giving the instructed rates), how well stage 2 does is their mistake, already charged to
    those parts, so the accuracy bar is not applied (what stage 2 changed and its rates still are)."""
    given = obs.get("lr_for_instructed_arguments") or {}
    rates_right = all(given.get(part) is not None and _near(given[part], lr)
                      for part, lr in (("head", STAGE_2_LR_HEAD), ("backbone", STAGE_2_LR_BACKBONE)))
    return rates_right and frozen is not None and frozen >= FROZEN_SANE


def judge_fine_tune(obs):
    msgs = _stage_2_messages(obs)
    if obs["history_len"] < 1:
        msgs.append("`history_ft` records no epoch of stage 2: keep the history of the fine-tuning run.")
    y = load_dataset(HOLDOUT, "holdout").y
    acc, frozen = _accuracy(obs["holdout_pred"], y), _accuracy(obs.get("frozen_holdout_pred"), y)
    bar = max(FINE_TUNE_FLOOR, (frozen or 0.0) + FINE_TUNE_GAIN)
    if acc >= bar or not _stage_2_could_reach_the_bar(obs, frozen):
        return msgs
    shown = f" (the frozen model after stage 1: {frozen:.0%})" if frozen is not None else ""
    if frozen is not None and acc < frozen:
        msgs.append(f"Your fine-tuned `model` recognises {acc:.0%} of unseen digits, fewer than before stage 2"
                    f"{shown}: the fine-tuning unlearned more than it learned, and early stopping did not bring back "
                    "the best weights on validation accuracy (the weights stage 2 starts from count as the first "
                    "best).")
    else:
        msgs.append(f"Your fine-tuned `model` recognises {acc:.0%} of unseen digits{shown}: fine-tuning should "
                    "add clearly more than that. Train the unfrozen blocks with the head at the instructed rates "
                    f"(`lr_head={_rate(STAGE_2_LR_HEAD)}`, `lr_backbone={_rate(STAGE_2_LR_BACKBONE)}`: a nudge such "
                    "as 1e-4 leaves blocks this far from ImageNet almost where they were), with the warm-up and up "
                    "to 15 epochs, and keep the best epoch on validation accuracy.")
    return msgs
