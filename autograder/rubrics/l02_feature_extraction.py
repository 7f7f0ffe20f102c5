"""Lesson 02 rubric: freeze a backbone, extract features, a linear head on them, a small CNN from scratch."""

import math

import numpy as np

from tlkit.data import load_dataset

from ..probes.l02_feature_extraction import DATASET, N_CLASSES, N_FEATURE_IMAGES, loss_probe_inputs

FEATURE_TOLERANCE = 0.02  # max |difference| to the grader's inference-mode features (they span about -0.4..30;
#                           CPU vs GPU differ by < 1e-3; batch-norm in train mode or [0, 1] pixels differ by > 1)
HEAD_MIN_VAL_ACCURACY = 0.6  # the visible check of the test cell (last epoch of `head_history`)
HEAD_MIN_ACCURACY = 0.75  # well below a linear head on frozen features (benchmarks/outcomes.json)
PROBABILITY_TOLERANCE = 1e-4  # float32 softmax rows: every score in [0, 1] and each row summing to 1 within this
LOSS_TOLERANCE = 1e-3  # relative: float32 loss vs the two readings of its inputs (they differ by > 50 %)
LOSS_FLOOR_MARGIN = 0.01  # cross-entropy on logits of probabilities never falls below log(1 + (K - 1) / e)
SCRATCH_PARAMS = (3 * 9 * 16 + 16) + (16 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * N_CLASSES + N_CLASSES)  # 24,104
SCRATCH_MIN_ACCURACY = 0.3  # above chance (0.125), below what scratch training reaches (benchmarks/outcomes.json)


def _holdout_accuracy(pred) -> float:
    y = load_dataset(DATASET, "holdout").y
    pred = np.asarray(pred)
    return float(np.mean(pred == y)) if pred.shape == y.shape else 0.0


def judge_freeze(obs):
    if "n_bn" not in obs:
        return [f"`freeze` should freeze the model it is given and return it, not a {obs.get('returned')}."]
    msgs = []
    if obs["trainable_params"]:
        msgs.append(f"After `freeze`, {obs['trainable_params']} parameters are still trainable: every parameter of "
                    "the backbone, batch-norm scale and shift included, must stop learning.")
    if obs["training"]:
        msgs.append("`freeze` turned off gradients but left the model in training mode: batch norm keeps updating its "
                    "running mean and variance on every forward pass. Put the backbone in evaluation mode too "
                    "(`.eval()`).")
    if obs["bn_stats_changed"] and not msgs:
        # Keras: judged on what batch norm does, not on the flag. Every layer set to trainable = False one by one
        # freezes as well as backbone.trainable = False; only its batch-norm layers running in training mode is wrong.
        flag = (" The backbone itself still says `trainable = True`: set `backbone.trainable = False`, which also "
                "makes its batch-norm layers run in inference mode.") if obs.get("trainable_flag") else ""
        msgs.append("A forward pass in training mode (as `fit` makes one) still changed the batch-norm running "
                    f"statistics of the frozen model: they must stay as they were learned on ImageNet.{flag}")
    return msgs


def judge_features(obs):
    if obs.get("type") != "ndarray":
        return [(f"`extract_features` should return a NumPy array, not a {obs.get('type')} "
                "(PyTorch: `.cpu().numpy()`; Keras: `keras.ops.convert_to_numpy` or `predict`).")]
    shape = obs["shape"]
    if shape[1:] == [1000]:
        return [("Your features have 1000 columns: those are the ImageNet class scores of the classification top. "
                "Use the backbone without its top (`include_top=False`): 1280 pooled features per image.")]
    if shape != [N_FEATURE_IMAGES, 1280]:
        return [(f"For {N_FEATURE_IMAGES} images `extract_features` returned shape {tuple(shape)}; expected "
                f"({N_FEATURE_IMAGES}, 1280), one row of 1280 features per image, in order (the last batch may be "
                "smaller than `batch_size`).")]
    if not obs["finite"]:
        return ["Your features contain NaN or infinite values."]
    if obs["diff_inference"] <= FEATURE_TOLERANCE:
        return []
    if obs.get("bn_stats_changed"):
        return [("`extract_features` ran the backbone in training mode: given a backbone that is not frozen yet (as "
                "one comes from a model zoo), its batch norm normalised each batch with that batch's own statistics "
                "and overwrote the running mean and variance learned on ImageNet. Run the backbone in inference mode "
                "inside `extract_features` (PyTorch: call `backbone.eval()` there, and use `torch.no_grad()`; Keras: "
                "`training=False` or `predict`).")]
    if obs.get("diff_unnormalised", np.inf) <= FEATURE_TOLERANCE:
        return [("Your features come from pixels scaled to [0, 1]: the backbone expects its own preprocessing, "
                "`tl.preprocess_inputs(images, size=IMAGE_SIZE)` (ImageNet normalisation).")]
    return [("Your features differ from the frozen backbone's features for the same images. Preprocess each batch with "
            "`tl.preprocess_inputs(batch, size=IMAGE_SIZE)`, run the backbone in inference mode without gradients, "
            "and keep the rows in the order of the images.")]


def _loss_reads_logits(value) -> bool | None:
    """Whether the loss whose value on loss_probe_inputs() is ``value`` read them as logits (None: neither way)."""
    y, p = loss_probe_inputs()
    p = p.astype(np.float64)
    rows = np.arange(len(y))
    as_probabilities = np.mean(-np.log(p[rows, y]))
    as_logits = np.mean(np.log(np.exp(p).sum(axis=1)) - p[rows, y])
    for reading, expected in ((True, as_logits), (False, as_probabilities)):
        if abs(value - expected) <= LOSS_TOLERANCE * max(1.0, abs(expected)):
            return reading
    return None


def _trained_a_softmax_on_logits(obs) -> bool:
    """The head outputs probabilities AND was trained with a loss that takes them for logits.

    On Keras the probe evaluates the loss the head was compiled with. Otherwise, from the history: cross-entropy on
    logits of scores in [0, 1] cannot fall below log(1 + (K - 1) / e) (the right class at 1, the others at 0), so a
    training loss below that bound means the loss read the scores as probabilities, which is consistent."""
    if "score_range" not in obs:
        return False
    low, high = obs["score_range"]
    probabilities = low >= -PROBABILITY_TOLERANCE and high <= 1 + PROBABILITY_TOLERANCE and \
        obs["row_sum_error"] <= PROBABILITY_TOLERANCE
    if not probabilities:
        return False
    reads_logits = _loss_reads_logits(obs["loss_on_probabilities"]) \
        if obs.get("loss_on_probabilities") is not None else None
    if reads_logits is not None:
        return reads_logits
    floor = math.log(1 + (N_CLASSES - 1) / math.e)
    return obs.get("min_train_loss", floor) >= floor - LOSS_FLOOR_MARGIN


def judge_head(obs):
    msgs = []
    if obs["scores_shape"][1:] != [N_CLASSES]:
        return [(f"`head` should output {N_CLASSES} class scores per feature vector; it outputs shape "
                f"{tuple(obs['scores_shape'])} for the held-out features.")]
    if _trained_a_softmax_on_logits(obs):
        msgs.append("Your head ends in a softmax, but the loss expects logits (raw scores): `tl.fit`'s cross-entropy "
                    "applies the softmax itself. A second softmax squashes the scores and weakens the gradients "
                    "(Keras on TensorFlow quietly undoes it, with a warning; PyTorch and the torch backend do not). "
                    "Remove the softmax: the head is a single linear layer, and the `argmax` of its logits gives the "
                    "same class.")
    acc = _holdout_accuracy(obs["holdout_pred"])
    if obs["val_accuracy"] < HEAD_MIN_VAL_ACCURACY or acc < HEAD_MIN_ACCURACY:
        msgs.append(f"Your `head` classifies {obs['val_accuracy']:.0%} of the validation features and {acc:.0%} of "
                    f"unseen texture patches correctly; a linear head trained on the frozen features should reach at "
                    f"least {HEAD_MIN_VAL_ACCURACY:.0%} and {HEAD_MIN_ACCURACY:.0%}. Did it train, on the cached "
                    "features (`scale=1`), with a sensible learning rate and enough epochs?")
    return msgs


def judge_scratch(obs):
    msgs = []
    if obs["params"] != SCRATCH_PARAMS:
        hint = " Did you flatten the last feature map instead of averaging it (global average pooling)?" \
            if obs["params"] > SCRATCH_PARAMS else ""
        msgs.append(f"`build_small_cnn` has {obs['params']:,} parameters; the network described (three 3x3 "
                    f"convolutions with 16, 32 and 64 filters, global average pooling, one linear layer) has "
                    f"{SCRATCH_PARAMS:,}.{hint}")
    if obs["out_shape"] != [2, N_CLASSES]:
        msgs.append(f"For 2 images and {N_CLASSES} classes `build_small_cnn` outputs shape {tuple(obs['out_shape'])}; "
                    f"expected (2, {N_CLASSES}): one score per class.")
    acc = _holdout_accuracy(obs["holdout_pred"])
    if acc < SCRATCH_MIN_ACCURACY:
        msgs.append(f"Your trained `scratch_model` classifies {acc:.0%} of unseen patches correctly; trained on the "
                    f"few labels it should still reach {SCRATCH_MIN_ACCURACY:.0%} (chance is {1 / N_CLASSES:.0%}). "
                    "Did the training cell run?")
    return msgs

