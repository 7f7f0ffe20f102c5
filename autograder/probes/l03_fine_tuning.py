"""Lesson 03 probes: what the learner's fine-tuning code trains, how it updates, and how well it predicts.

Every probe builds what it needs on a small fresh backbone (32-pixel inputs, cheap), so one exercise's
observation does not depend on another exercise's answer. Expectations live in the rubric.
"""

import numpy as np

from ..probe_runtime import ProbeError
from .common import callable_, eval_mode, helpers, require

PROBE_SIZE = 32  # pixels; the backbone works at any size, the probes only look at weights and flags
UNFREEZE_BLOCKS = (1, 2)  # n_blocks the probe asks unfreeze_last_blocks for
LR_HEAD, LR_BACKBONE = 1e-3, 1e-4  # what the probe passes to make_optimizer
N_CLASSES = 8


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
    return {"head_trainable": int(head), "backbone_trainable": int(backbone), "n_classes": N_CLASSES,
            "frozen_val": float(require(ns, "frozen_val"))}


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

    bns = [layer for layer in bb.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before = [keras.ops.convert_to_numpy(layer.moving_mean) for layer in bns]
    x = np.random.default_rng(0).normal(size=(4, PROBE_SIZE, PROBE_SIZE, 3)).astype("float32")
    bb(x, training=True)  # a training-mode forward pass: only trainable BN layers update their statistics
    changed = sum(not np.array_equal(b, keras.ops.convert_to_numpy(layer.moving_mean)) for b, layer in zip(before, bns))
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
    fn = callable_(ns, "make_optimizer")
    if framework == "pytorch":
        import torch

        model = _fresh_model_pytorch()
        opt = fn(model, lr_head=LR_HEAD, lr_backbone=LR_BACKBONE)
        if not isinstance(opt, torch.optim.Optimizer):
            return {"type": type(opt).__name__}
        named = [(("head" if n.startswith("head.") else "backbone"), p) for n, p in model.named_parameters()]
        before = [p.detach().clone() for _, p in named]
        for _, p in named:
            p.grad = torch.ones_like(p)  # also on frozen parameters: an optimizer that holds them moves them
        opt.step()
        steps = [float((p.detach() - b).abs().max()) for (_, p), b in zip(named, before)]
        base_lr = None
        group_lrs = sorted(float(g["lr"]) for g in opt.param_groups)
    else:
        import keras

        model = _fresh_model_keras()
        opt = fn(model, lr_head=LR_HEAD, lr_backbone=LR_BACKBONE)
        if not isinstance(opt, keras.optimizers.Optimizer):
            return {"type": type(opt).__name__}
        head_ids = {id(v) for v in model.get_layer("head").weights}
        variables = list(model.trainable_variables)
        named = [("head" if id(v) in head_ids else "backbone", v) for v in model.weights]
        trainable_ids = {id(v) for v in variables}
        before = [keras.ops.convert_to_numpy(v) for _, v in named]
        opt.apply([keras.ops.ones_like(v) for v in variables], variables)  # what fit does, once
        steps = [float(np.abs(keras.ops.convert_to_numpy(v) - b).max()) for (_, v), b in zip(named, before)]
        base_lr = float(keras.ops.convert_to_numpy(opt.learning_rate))
        group_lrs = None
        trainable = [id(v) in trainable_ids for _, v in named]
    if framework == "pytorch":
        trainable = [p.requires_grad for _, p in named]
    rows = [(part, bool(t), s) for (part, _), t, s in zip(named, trainable, steps)]
    return {"head": [s for part, _, s in rows if part == "head"],
            "backbone_trainable": [s for part, t, s in rows if part == "backbone" and t],
            "backbone_frozen_moved": sum(s > 0 for part, t, s in rows if part == "backbone" and not t),
            "base_lr": base_lr, "group_lrs": group_lrs}


def _predict_full(model, framework, images, size):
    tl = helpers(framework)
    x = tl.preprocess_inputs(images, size=size)
    if framework == "pytorch":
        import torch

        with eval_mode(model), torch.no_grad():
            return torch.cat([model(x[i:i + 100]) for i in range(0, len(x), 100)]).numpy()
    return np.asarray(model.predict(x, batch_size=100, verbose=0))


def probe_fine_tune(ns, framework):
    from tlkit.data import load_inputs

    model = require(ns, "model")
    size = int(require(ns, "IMAGE_SIZE"))
    history = require(ns, "history_ft")
    accuracy = callable_(ns, "accuracy")
    val = accuracy(model, "val") if framework == "pytorch" else accuracy("val")
    pred = _predict_full(model, framework, load_inputs("textures", "holdout"), size).argmax(axis=1)
    return {"holdout_pred": pred.tolist(), "val": float(val), "frozen_val": float(require(ns, "frozen_val")),
            "history_len": len(history.get("val_loss", [])) if isinstance(history, dict) else 0}


PROBES = {"test_head_first": probe_head_first, "test_unfreeze": probe_unfreeze,
          "test_param_groups": probe_param_groups, "test_fine_tune": probe_fine_tune}
