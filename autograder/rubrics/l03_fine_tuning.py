"""Lesson 03 rubric: two-stage fine-tuning (head first, last blocks unfrozen, two learning rates, stage 2)."""

import numpy as np

from tlkit.data import load_dataset

from ..probes.l03_fine_tuning import LR_BACKBONE, LR_HEAD, UNFREEZE_BLOCKS

FINE_TUNE_MIN_ACCURACY = 0.85  # on the held-out textures (benchmarks/outcomes.json has what the solution reaches)
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
    for part, instructed in (("head", LR_HEAD), ("backbone", LR_BACKBONE)):
        actual = rates.get(part)
        allowed = max(instructed, calibration.get(part) or 0.0)
        if actual is not None and actual > LR_TOO_HIGH * allowed:
            high[part] = actual
    if high:
        shown = " and ".join(f"the {part} at {_rate(lr)}" for part, lr in high.items())
        msgs.append(f"Stage 2's learning rates are higher than the instructed ones: your optimizer starts {shown}, "
                    f"where the lesson fine-tunes with `lr_head={_rate(LR_HEAD)}` and "
                    f"`lr_backbone={_rate(LR_BACKBONE)}`. "
                    "Rates that high drag the pretrained weights away from what they learned on ImageNet; "
                    "fine-tuning only nudges them.")
    return msgs


def judge_fine_tune(obs):
    msgs = _stage_2_messages(obs)
    if obs["history_len"] < 1:
        msgs.append("`history_ft` records no epoch of stage 2: keep the history of the fine-tuning run.")
    y = load_dataset("textures", "holdout").y
    acc = float(np.mean(np.asarray(obs["holdout_pred"]) == y))
    if acc < FINE_TUNE_MIN_ACCURACY or obs["val"] < obs["frozen_val"] - 0.05:
        msgs.append(f"Your fine-tuned `model` classifies {acc:.0%} of unseen textures correctly (validation "
                    f"{obs['val']:.0%}, frozen model {obs['frozen_val']:.0%}); a careful fine-tune reaches at least "
                    f"{FINE_TUNE_MIN_ACCURACY:.0%}. A learning rate too high destroys the pretrained weights; early "
                    "stopping should bring back the best epoch on validation.")
    return msgs

