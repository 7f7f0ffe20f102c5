"""Lesson 02: freeze a backbone, extract features, a linear head on them, a small CNN from scratch.

Probes: freeze a small batch-norm network, extract features, score the head and the small CNN.

Each probe imports only the notebook's own framework (PyTorch, or Keras on its backend) and returns
plain observations; the judges hold every expected value and tolerance.
"""

import numpy as np

from ..probes.common import callable_, helpers, holdout_predictions, require

DATASET = "textures"
INPUT_SIZE = 64  # the lesson feeds the backbone the textures at their own size (IMAGE_SIZE in the notebook)
N_FEATURE_IMAGES = 40  # held-out images the feature probe extracts (batches of 16: the last one is partial)
FEATURE_BATCH = 16
N_CLASSES = 8


def _no_grad(framework):
    """Keras on the torch backend records autograd graphs on every call: turn that off while probing."""
    import contextlib

    if framework == "keras":
        import keras

        if keras.backend.backend() == "torch":
            import torch  # torch backend only: Keras has loaded it already

            return torch.no_grad()
    return contextlib.nullcontext()


def _holdout_images(n=None):
    from tlkit.data import load_inputs

    images = load_inputs(DATASET, "holdout")
    return images if n is None else images[:n]


# ----------------------------------------------------------------- Part A: freeze
def _tiny_bn_net(framework):
    """conv -> batch norm -> relu -> pooled, ready to train (train mode, everything trainable)."""
    if framework == "pytorch":
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                  torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        return net.train()
    import keras

    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                             keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D()])


def _bn_stats(net, framework):
    if framework == "pytorch":
        import torch

        bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        stats = [(m.running_mean, m.running_var) for m in bns]
    else:
        import keras

        bns = [layer for layer in net._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
        stats = [(layer.moving_mean, layer.moving_variance) for layer in bns]
    to_numpy = helpers(framework).to_numpy
    return [np.concatenate([to_numpy(mean), to_numpy(var)]) for mean, var in stats]


def _stats_changed(before, after) -> bool:
    return len(before) != len(after) or any(not np.allclose(a, b, atol=1e-7) for a, b in zip(before, after))


def probe_freeze(ns, framework):
    freeze = callable_(ns, "freeze")
    tl = helpers(framework)
    net = _tiny_bn_net(framework)
    returned = freeze(net)
    frozen = net if returned is None else returned
    if not hasattr(frozen, "parameters" if framework == "pytorch" else "trainable_weights"):
        return {"returned": type(returned).__name__}
    before = _bn_stats(frozen, framework)
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(8, 8, 8, 3)).astype(np.float32)
    if framework == "pytorch":
        import torch

        device = tl.model_device(frozen)
        frozen(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device))  # in the mode freeze left it
        training = any(m.training for m in frozen.modules())
        flag = None
    else:
        frozen(x, training=True)  # as fit() calls a model that contains the frozen one
        training = None
        flag = bool(frozen.trainable)
    changed = _stats_changed(before, _bn_stats(frozen, framework))
    return {"returned": type(returned).__name__, "n_bn": len(before),
            "trainable_params": tl.count_params(frozen, trainable_only=True), "training": training,
            "trainable_flag": flag, "bn_stats_changed": bool(changed)}


# ----------------------------------------------------------------- Part B: features
def _reference_features(backbone, images, framework, mode):
    """Features of the grader's backbone in inference mode: mode "inference" (the backbone's preprocessing) or
    "unnormalised" ([0, 1] pixels)."""
    tl = helpers(framework)
    chunks = []
    for start in range(0, len(images), FEATURE_BATCH):
        batch = images[start:start + FEATURE_BATCH]
        x = tl.to_inputs(batch) if mode == "unnormalised" else tl.preprocess_inputs(batch, size=INPUT_SIZE)
        if framework == "pytorch":
            import torch

            backbone.eval()
            with torch.no_grad():
                out = backbone(x)
        else:
            out = backbone(x, training=False)
        chunks.append(tl.to_numpy(out))
    return np.concatenate(chunks)


def probe_features(ns, framework):
    extract_features = callable_(ns, "extract_features")
    tl = helpers(framework)
    images = _holdout_images(N_FEATURE_IMAGES)
    fresh = tl.load_backbone("efficientnet_lite0", include_top=False, trainable=True, input_size=INPUT_SIZE)
    if framework == "pytorch":
        fresh.train()  # as a backbone comes before anyone froze it
    stats = _bn_stats(fresh, framework)
    with _no_grad(framework):
        out = extract_features(fresh, images.copy(), FEATURE_BATCH)
    # Training mode, told by what it does: batch norm (trainable, as the probe's backbone is) normalises with each
    # batch's statistics and overwrites its running ones. (Comparing with training-mode features cannot tell it:
    # stochastic depth drops a random set of residual branches at every training-mode pass.)
    obs = {"type": type(out).__name__, "bn_stats_changed": _stats_changed(stats, _bn_stats(fresh, framework))}
    if not isinstance(out, np.ndarray):
        return obs
    obs["shape"] = list(out.shape)
    if out.shape != (len(images), 1280) or not np.issubdtype(out.dtype, np.number):
        return obs
    out = out.astype(np.float64)
    obs["finite"] = bool(np.isfinite(out).all())
    reference = tl.load_backbone("efficientnet_lite0", include_top=False, input_size=INPUT_SIZE)
    for mode in ("inference", "unnormalised"):  # the second only to name a mistake
        with _no_grad(framework):
            ref = _reference_features(reference, images, framework, mode)
        obs[f"diff_{mode}"] = float(np.abs(out - ref).max())
        if obs["diff_inference"] <= 1e-3:
            break
    return obs


# ----------------------------------------------------------------- Part C: the head
def _head_predictions(head, features, framework):
    if framework == "pytorch":
        import torch

        tl = helpers(framework)
        device = tl.model_device(head)
        head.eval()
        with torch.no_grad():
            return tl.to_numpy(head(torch.from_numpy(np.asarray(features, dtype=np.float32)).to(device)))
    return _keras_scores(head, np.asarray(features, dtype=np.float32))


def _keras_scores(model, x, batch_size=100):
    """Model outputs by direct calls in inference mode (``predict`` makes TensorFlow log to stderr)."""
    to_numpy = helpers("keras").to_numpy
    return np.concatenate([to_numpy(model(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)])


def probe_head(ns, framework):
    head = require(ns, "head")
    extract_features = callable_(ns, "extract_features")
    history = require(ns, "head_history")
    with _no_grad(framework):
        features = extract_features(require(ns, "backbone"), _holdout_images(), 64)
        scores = _head_predictions(head, features, framework)
    obs = {"val_accuracy": float(history["val_accuracy"][-1]), "scores_shape": list(np.shape(scores)),
           "holdout_pred": np.asarray(scores).argmax(axis=1).tolist()}
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2 and scores.size and np.isfinite(scores).all():
        # Probabilities or logits? (A softmax in the head makes every row non-negative and sum to 1.)
        obs["score_range"] = [float(scores.min()), float(scores.max())]
        obs["row_sum_error"] = float(np.abs(scores.sum(axis=1) - 1.0).max())
    losses = history.get("loss", []) if isinstance(history, dict) else []
    if len(losses):
        obs["min_train_loss"] = float(np.min(np.asarray(losses, dtype=np.float64)))
    if framework == "keras":
        obs["loss_on_probabilities"] = _keras_loss_on_probabilities(head)
    return obs


def loss_probe_inputs():
    """Labels and rows of class probabilities on which the probe evaluates the loss a Keras head was compiled with."""
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, size=(16, N_CLASSES))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return rng.integers(0, N_CLASSES, size=16), (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _keras_loss_on_probabilities(model):
    """The mean loss ``model`` was compiled with, on loss_probe_inputs() (None: no loss, or one of another form).

    It tells whether that loss reads the outputs as logits or as probabilities. (TensorFlow's cross-entropy quietly
    trains a softmax output on the logits inside it, with a warning; the torch backend applies the softmax twice.)"""
    import keras

    loss = getattr(model, "loss", None)
    try:
        loss = keras.losses.get(loss) if isinstance(loss, str) else loss
        if not callable(loss):
            return None
        y, p = loss_probe_inputs()
        value = loss(keras.ops.convert_to_tensor(y), keras.ops.convert_to_tensor(p))  # plain tensors: no softmax
        return float(np.mean(helpers("keras").to_numpy(value)))
    except Exception:  # noqa: BLE001  (a loss of another form: unknown)
        return None


# ----------------------------------------------------------------- Part D: a small CNN from scratch
def probe_scratch(ns, framework):
    build_small_cnn = callable_(ns, "build_small_cnn")
    tl = helpers(framework)
    x = np.zeros((2, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    inputs = tl.to_inputs(x)
    fresh = build_small_cnn(tuple(inputs.shape[1:]), N_CLASSES)
    if framework == "pytorch":
        import torch

        with torch.no_grad():
            out_shape = list(fresh.eval()(inputs).shape)
    else:
        out_shape = list(np.shape(fresh(inputs, training=False)))
    trained = require(ns, "scratch_model")
    if framework == "pytorch":
        pred = holdout_predictions(trained, framework, DATASET)
    else:
        pred = _keras_scores(trained, tl.to_inputs(_holdout_images())).argmax(axis=1).tolist()
    return {"params": tl.count_params(fresh), "out_shape": out_shape, "holdout_pred": pred}


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

import math

from tlkit.data import load_dataset

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
