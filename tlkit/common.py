"""Framework-free pieces shared by the twins ``tlkit.pytorch`` and ``tlkit.keras``.

Only numpy lives here (and :mod:`tlkit.data`, which is numpy too), so both twins
can import it without pulling in the other framework. Learners rarely need it
directly; it is where the two twins agree on scaling, splitting, device
requests and the names of history entries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from .data import load_dataset

DEVICE_ENV = "TLKIT_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda")

# Keras names some metrics differently depending on how they were asked for.
METRIC_ALIASES = {
    "acc": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
}


# ----------------------------------------------------------------- devices
def requested_device(prefer: str = "auto") -> tuple[str, str]:
    """Which device the caller asked for: ``("auto" | "cpu" | "cuda", why)``.

    The environment variable ``TLKIT_DEVICE`` (set by the autograder) wins over
    ``prefer``. ``"gpu"`` is accepted as another name for ``"cuda"``.
    """
    source = "requested"
    env = os.environ.get(DEVICE_ENV, "").strip().lower()
    if env:
        prefer, source = env, f"{DEVICE_ENV}={env}"
    choice = str(prefer).strip().lower()
    choice = "cuda" if choice == "gpu" else choice
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"Unknown device {prefer!r} ({source}); choose one of {', '.join(DEVICE_CHOICES)}.")
    return choice, source


def choose_device(prefer: str, gpu_name: str | None) -> tuple[bool, str]:
    """Decide between GPU and CPU: ``(use_gpu, reason)``.

    ``gpu_name`` is the name of the first usable GPU, or None when there is none.
    Raises RuntimeError when a GPU is demanded (``"cuda"``) but there is none.
    """
    choice, source = requested_device(prefer)
    if choice == "cpu":
        return False, source
    if gpu_name is None:
        if choice == "cuda":
            raise RuntimeError(
                f"A GPU was demanded ({source}: 'cuda') but none is usable on this machine. "
                f"Use 'auto' or 'cpu' instead (or unset {DEVICE_ENV})."
            )
        return False, "no GPU found"
    return True, gpu_name


# ----------------------------------------------------------------- inputs
def infer_scale(x: np.ndarray) -> float:
    """The number to divide images by to land in [0, 1].

    255 for ordinary 8-bit images, 16 for the UCI digits (values 0..16), and 1
    for float images that are already in [0, 1].
    """
    x = np.asarray(x)
    if x.size == 0:
        return 255.0
    top = float(x.max())
    if np.issubdtype(x.dtype, np.floating) and top <= 1.0:
        return 1.0
    return 16.0 if top <= 16 else 255.0


def scale_images(x: np.ndarray, scale: float | None = None, channels_last: bool = True) -> np.ndarray:
    """Images as stored -> float32 in [0, 1] with a channel axis.

    ``x`` is (N, H, W) grey or (N, H, W, C) as :func:`tlkit.data.load_dataset`
    gives them. The result is (N, H, W, C) when ``channels_last`` (Keras) and
    (N, C, H, W) otherwise (PyTorch); grey images get C = 1. Flat feature
    vectors (N, D) are only scaled. ``scale=None`` picks it with :func:`infer_scale`.
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"Expected images (N, H, W) or (N, H, W, C), got an array of shape {x.shape}.")
    scale = infer_scale(x) if scale is None else float(scale)
    out = x.astype(np.float32) / np.float32(scale)
    if out.ndim == 3:
        out = out[..., np.newaxis]
    if out.ndim == 4 and not channels_last:
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out)


def as_labels(y: np.ndarray) -> np.ndarray:
    """Integer class labels (N,) as int64, or multi-hot targets (N, L) of floats in [0, 1] as float32."""
    y = np.asarray(y)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64)
    if y.ndim == 2 and np.issubdtype(y.dtype, np.floating) and len(y) and 0 <= y.min() and y.max() <= 1:
        return y.astype(np.float32)
    hint = " (multi-hot targets: a float array, e.g. y.astype('float32'))" if y.ndim == 2 else ""
    raise ValueError(f"Labels must be a 1-D array of integers or a 2-D multi-hot float array in [0, 1], "
                     f"got shape {y.shape} and dtype {y.dtype}{hint}.")


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Class labels (N,): the fraction whose largest logit is the label. Multi-hot targets (N, L): the fraction of
    labels right when each is predicted present at a positive logit (probability above 0.5)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if labels.ndim == 2:
        return float(np.mean((logits > 0) == (labels > 0.5)))
    return float(np.mean(logits.argmax(axis=1) == labels))


def num_batches(n: int, batch_size: int) -> int:
    """How many batches ``n`` samples make (the last one may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return -(-n // batch_size)


def epoch_order(n: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` samples in one epoch: 0..n-1, or a permutation fixed by (seed, epoch)."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


# ----------------------------------------------------------------- splitting
def stratified_split(y: np.ndarray, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` such that every class keeps its share in both parts.

    Each class gives ``round(count * val_fraction)`` samples to validation, picked
    at random with ``seed``. Both index arrays are sorted and never overlap.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    y = as_labels(y)
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n_val = round(len(members) * val_fraction)
        val_parts.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.array([], dtype=np.int64)
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


def split_dataset(name: str, val_fraction: float = 0.2, seed: int = 0) -> tuple[tuple, tuple, tuple[str, ...]]:
    """Load a course data set and split it: ``((x_train, y_train), (x_val, y_val), classes)``."""
    ds = load_dataset(name)
    train, val = stratified_split(ds.y, val_fraction, seed)
    return (ds.x[train], ds.y[train]), (ds.x[val], ds.y[val]), ds.classes


# ----------------------------------------------------------------- history and progress
def load_batches(make_batches, name: str, batch_size: int, val_fraction: float, seed: int):
    """Both twins' ``load_batches``: the stratified split of a course data set, batched by the twin's
    ``make_batches`` (training batches shuffled by ``seed``; no validation batches when ``val_fraction=0``)."""
    (x_train, y_train), (x_val, y_val), classes = split_dataset(name, val_fraction, seed)
    train = make_batches(x_train, y_train, batch_size, shuffle=True, seed=seed)
    val = make_batches(x_val, y_val, batch_size) if len(y_val) else None
    return train, val, classes


def metric_name(key: str) -> str:
    """The course's name for a history key: ``"val_sparse_categorical_accuracy"`` -> ``"val_accuracy"``."""
    prefix = "val_" if key.startswith("val_") else ""
    base = key[len(prefix) :]
    return prefix + METRIC_ALIASES.get(base, base)


def normalize_history(raw: Mapping[str, Sequence]) -> dict[str, list[float]]:
    """A history dict with the course's key names and plain python floats."""
    history: dict[str, list[float]] = {}
    for key, values in raw.items():
        name = metric_name(key)
        if name not in history:
            history[name] = [float(v) for v in values]
    return history


def progress_postfix(metrics: Mapping[str, float]) -> dict[str, str]:
    """The short text shown after the progress bar, e.g. ``{"loss": "0.312", "accuracy": "0.904"}``."""
    order = ("loss", "accuracy", "val_loss", "val_accuracy")
    keys = [k for k in order if k in metrics] + [k for k in metrics if k not in order]
    return {metric_name(k): f"{float(metrics[k]):.4g}" for k in keys}


# ----------------------------------------------------------------- the same starting weights in both twins
INIT_SCHEMES = ("pytorch", "glorot")


def initial_weights(seed: int, shapes: Sequence[tuple[int, ...]], scheme: str = "pytorch",
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) for each dense or convolutional layer, drawn by numpy so that both twins can start alike.

    ``shapes`` are the layers' weight shapes in PyTorch's layout, (out, in) or (out, in, kh, kw). ``scheme``
    ``"pytorch"`` (PyTorch's default): weights and biases uniform in ±1/sqrt(fan in); ``"glorot"`` (Keras'
    default): weights uniform in ±sqrt(6 / (fan in + fan out)), biases zero. A layer's draw depends only on
    ``seed``, its shape and its rank among the layers of that shape, so frameworks that list a model's branches
    in different orders still agree.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {INIT_SCHEMES}, not {scheme!r}")
    seen: dict[tuple[int, ...], int] = {}
    draws = []
    for shape in shapes:
        shape = tuple(int(n) for n in shape)
        seen[shape] = seen.get(shape, -1) + 1
        rng = np.random.default_rng([seed, seen[shape], *shape])
        receptive = int(np.prod(shape[2:]))
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
        bound = fan_in**-0.5 if scheme == "pytorch" else (6.0 / (fan_in + fan_out)) ** 0.5
        weight = rng.uniform(-bound, bound, shape).astype(np.float32)
        bias = rng.uniform(-bound, bound, shape[0]) if scheme == "pytorch" else np.zeros(shape[0])
        draws.append((weight, bias.astype(np.float32)))
    return draws


# ----------------------------------------------------------------- digits from several domains
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights, pixel centres aligned."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = np.zeros((n_out, n_in), np.float32)
    np.add.at(w, (np.arange(n_out), lo), 1 - (pos - lo))
    np.add.at(w, (np.arange(n_out), hi), pos - lo)
    return w


def to_rgb28(x: np.ndarray) -> np.ndarray:
    """Digit images of any course domain -> float32 (N, 28, 28, 3) in [0, 1].

    MNIST (N, 28, 28) grey is repeated to 3 channels; MNIST-M (N, 28, 28, 3) is only scaled; UCI digits
    (N, 8, 8) with values 0..16 are upscaled (bilinear) to 20x20 and padded to 28x28, as MNIST centres its
    digits in a 20x20 box.
    """
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[1:] == (8, 8):
        r = _resize_matrix(8, 20)
        big = np.einsum("ij,njk,lk->nil", r, x.astype(np.float32) / 16.0, r)
        x = np.pad(big, ((0, 0), (4, 4), (4, 4)))
    elif x.shape[1:3] == (28, 28):
        x = x.astype(np.float32) / 255.0
    else:
        raise ValueError(f"Expected MNIST-like (N, 28, 28[, 3]) or UCI digits (N, 8, 8), got shape {x.shape}.")
    if x.ndim == 3:
        x = np.repeat(x[..., np.newaxis], 3, axis=-1)
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32)
