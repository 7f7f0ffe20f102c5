"""Plots used in every lesson: training curves, image grids, confusion matrices.

Framework-neutral (numpy + matplotlib), re-exported by both ``tlkit.pytorch``
and ``tlkit.keras``. Each function draws with pyplot and returns the
:class:`matplotlib.figure.Figure`; in a notebook it appears when the cell ends
(end the line with ``;`` when it is the cell's last line, or the figure is
shown twice); in a script call ``plt.show()`` yourself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import infer_scale

__all__ = ["confusion_matrix", "plot_confusion_matrix", "plot_history", "show_images"]


def plot_history(
    history: Mapping[str, Sequence[float]],
    metrics: Sequence[str] = ("loss", "accuracy"),
    title: str | None = None,
) -> Figure:
    """Training and validation curves, one panel per metric, side by side.

    ``history`` is what ``fit`` returns, e.g. ``{"loss": [...], "val_loss": [...],
    "accuracy": [...], "val_accuracy": [...]}``; a ``val_`` curve is drawn when present.
    """
    missing = [m for m in metrics if m not in history]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(history)}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        train = list(history[metric])
        epochs = np.arange(1, len(train) + 1)
        ax.plot(epochs, train, marker="o", label="train")
        if f"val_{metric}" in history:
            val = list(history[f"val_{metric}"])
            ax.plot(np.arange(1, len(val) + 1), val, marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _display_image(img: np.ndarray) -> np.ndarray:
    """One image as (H, W) or (H, W, 3) floats in [0, 1], ready for ``imshow``."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)  # channels first -> channels last
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    img = img.astype(np.float32)
    if img.size and img.min() < 0:  # normalised inputs: stretch back to [0, 1]
        return (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
    return np.clip(img / infer_scale(img), 0.0, 1.0)


def _label_text(label: int, classes: Sequence[str] | None) -> str:
    return str(classes[label]) if classes is not None else str(label)


def show_images(
    x: np.ndarray,
    y: Sequence[int] | np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    n: int = 16,
    pred: Sequence[int] | np.ndarray | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of the first ``n`` images, titled with their labels.

    ``x`` may be uint8 or float, grey (N, H, W), (N, H, W, 1), (N, 1, H, W) or
    colour (N, H, W, 3), (N, 3, H, W). With ``pred`` (labels, or scores (N, C)),
    each title reads "pred/true", green when right and red when wrong.
    """
    x = np.asarray(x)
    if pred is not None:
        pred = np.asarray(pred)
        pred = pred.argmax(axis=1) if pred.ndim == 2 else pred
    y = None if y is None else np.asarray(y)
    n = min(n, len(x))
    cols = min(n, 8)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, max(cols, 1), figsize=(1.6 * max(cols, 1), 1.8 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = _display_image(x[i])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0)
        if pred is not None and y is not None:
            right = int(pred[i]) == int(y[i])
            text = f"{_label_text(int(pred[i]), classes)}/{_label_text(int(y[i]), classes)}"
            ax.set_title(text, fontsize=9, color="green" if right else "red")
        elif pred is not None:
            ax.set_title(_label_text(int(pred[i]), classes), fontsize=9)
        elif y is not None:
            ax.set_title(_label_text(int(y[i]), classes), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    num_classes: int | None = None,
    normalize: bool = False,
) -> np.ndarray:
    """Counts ``m[true, predicted]``; with ``normalize`` each row sums to 1 (empty rows stay 0).

    ``y_pred`` may be labels or scores (N, C), whose argmax is taken.
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred)
    y_pred = (y_pred.argmax(axis=1) if y_pred.ndim == 2 else y_pred).astype(np.int64).ravel()
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}.")
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    if not normalize:
        return counts
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def plot_confusion_matrix(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    classes: Sequence[str] | None = None,
    normalize: bool = False,
    title: str | None = None,
) -> Figure:
    """The confusion matrix as an annotated heat map (rows: true class, columns: predicted).

    With ``normalize`` each row shows fractions of that true class.
    """
    num_classes = len(classes) if classes is not None else None
    matrix = confusion_matrix(y_true, y_pred, num_classes, normalize)
    k = matrix.shape[0]
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(k)]
    size = max(3.5, 0.55 * k + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{matrix[i, j]:.2f}" if normalize else str(matrix[i, j])
            colour = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    long_names = max(map(len, names), default=0) > 2
    ax.set_xticks(range(k), names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalize else "confusion matrix"))
    fig.tight_layout()
    return fig
