"""Lesson 02 probes: freeze a small batch-norm network, extract features, score the head and the small CNN.

Each probe imports only the notebook's own framework (PyTorch, or Keras on its backend) and returns
plain observations; the rubric holds every expected value and tolerance.
"""

import numpy as np

from .common import callable_, helpers, holdout_predictions, require

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


PROBES = {"test_freeze": probe_freeze, "test_features": probe_features, "test_head": probe_head,
          "test_scratch": probe_scratch}
