"""The course files a submission's sandbox sees, read-only: the data sets, the held-out images without their
labels, the pretrained weights and the manifest. The sandbox mounts what this lists and knows no data format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlkit.data import DATASETS, dataset_path, write_npz
from tlkit.paths import MANIFEST, data_dir

SANDBOX_DATA = "/course-data"  # TLKIT_DATA inside the sandbox


def holdout_inputs_dir() -> Path:
    """Held-out images without their labels (what a probe may see), written once next to the data."""
    folder = data_dir() / "cache" / "holdout_inputs"
    for name in DATASETS:
        target = folder / f"{name}.npz"
        if not target.exists():
            with np.load(dataset_path(name, "holdout"), allow_pickle=False) as npz:
                write_npz(target, {"x": npz["x"]}, compressed=False)
    return folder


def sandbox_mounts() -> list[tuple[Path, str, bool]]:
    """(host path, path in the sandbox, required) for every course file a submission may read."""
    mounts = [(MANIFEST, str(MANIFEST), True)]
    mounts += [(dataset_path(name), f"{SANDBOX_DATA}/{name}.npz", True) for name in DATASETS]
    mounts.append((holdout_inputs_dir(), f"{SANDBOX_DATA}/holdout", True))
    mounts.append((data_dir() / "weights", f"{SANDBOX_DATA}/weights", False))  # pretrained backbones, if built
    return mounts
