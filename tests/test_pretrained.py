"""Offline pretrained weights (tlkit.pretrained), without any framework in this process.

The models themselves are tested in tests/framework/test_pretrained_{pytorch,keras}.py,
which tests/test_helper_api.py runs in subprocesses (and compares across frameworks).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_helper_api import imported_modules

import tlkit.data
from tlkit import build_data, pretrained
from tlkit.data import DATASETS, DataError, read_manifest

REPO = Path(__file__).resolve().parents[1]
NAME = "efficientnet_lite0"
FRAMEWORKS = {"torch", "tensorflow", "keras", "jax"}


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """An empty data folder (TLKIT_DATA) with a copy of the converted weights."""
    src = pretrained.weights_path(NAME)
    monkeypatch.setenv("TLKIT_DATA", str(tmp_path / "data"))
    dst = pretrained.weights_path(NAME)
    dst.parent.mkdir(parents=True)
    shutil.copyfile(src, dst)
    return dst


def test_converted_weights_match_the_manifest():
    arrays = pretrained.load_weights(NAME)  # raises DataError on any mismatch
    assert len(arrays) == 296
    assert arrays["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert arrays["_fc.weight"].shape == (1000, 1280) and arrays["_fc.weight"].dtype == np.float32
    spec = pretrained.backbone(NAME)
    assert (spec.input_size, spec.feature_dim, spec.num_classes) == (224, 1280, 1000)


def test_manifest_has_the_weights_entry_next_to_the_datasets():
    manifest = read_manifest()
    assert set(manifest) == set(DATASETS) | {"weights"}
    entry = manifest["weights"][NAME]
    assert len(entry) == 296 and "_fc.weight" in entry and "_bn0.running_var" in entry
    assert all(len(digest) == 64 for digest in entry.values())


def test_missing_weights_name_the_file_and_the_fix(data_copy):
    data_copy.unlink()
    with pytest.raises(DataError, match=r"efficientnet_lite0\.npz is missing.*make data"):
        pretrained.load_weights(NAME)


def test_corrupt_weights_name_the_file_and_the_fix(data_copy):
    data_copy.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"efficientnet_lite0\.npz is unreadable.*make data"):
        pretrained.load_weights(NAME)


def test_tampered_tensor_fails_the_checksum(data_copy):
    arrays = pretrained.load_weights(NAME)
    arrays["_fc.bias"] = arrays["_fc.bias"] + np.float32(1e-3)
    np.savez(data_copy, **arrays)
    with pytest.raises(DataError, match=r"efficientnet_lite0\.npz does not match the manifest.*_fc\.bias.*make data"):
        pretrained.load_weights(NAME)


def test_missing_tensor_fails_the_checksum(data_copy):
    arrays = pretrained.load_weights(NAME)
    del arrays["_bn1.running_var"]
    np.savez(data_copy, **arrays)
    with pytest.raises(DataError, match=r"1 missing.*_bn1\.running_var.*make data"):
        pretrained.load_weights(NAME)


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(KeyError, match=NAME):
        pretrained.load_weights("resnet50")


def test_imagenet_classes():
    names = pretrained.imagenet_classes()
    assert len(names) == 1000 and names[134] == names[517] == "crane"  # a bird and a machine: ImageNet's own names
    assert all("cat" in names[i] for i in range(281, 286))
    assert names[285] == "Egyptian cat" and names[967] == "espresso" and names[0].startswith("tench")


def test_preprocess_resizes_and_normalises():
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)]
    x = pretrained.preprocess(photos)
    assert x.dtype == np.float32 and x.shape == (2, 224, 224, 3)
    spec = pretrained.backbone(NAME)
    expected = (photos[1] / np.float32(255) - np.float32(spec.mean[0])) / np.float32(spec.std[0])
    np.testing.assert_allclose(x[1], expected, atol=1e-6)  # already 224: not resampled
    flat = pretrained.preprocess(np.full((2, 28, 28), 127, dtype=np.uint8))  # grey: channels repeated
    assert flat.shape == (2, 224, 224, 3)
    np.testing.assert_allclose(flat, 0.0, atol=1e-6)  # 127 is the training mean
    np.testing.assert_allclose(pretrained.preprocess(np.full((1, 5, 5, 1), 255, dtype=np.uint8)), 1.0, atol=1e-6)


def test_preprocess_rejects_what_it_cannot_read():
    with pytest.raises(ValueError, match="uint8"):
        pretrained.preprocess(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"images\[None\]"):
        pretrained.preprocess(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="shape"):
        pretrained.preprocess(np.zeros((1, 8, 8, 4), dtype=np.uint8))


def _imports(path: Path, top_level_only: bool) -> set[str]:
    return imported_modules(ast.parse(path.read_text()), top_level_only)


def test_only_the_converter_imports_torch():
    source = REPO / "tlkit" / "pretrained.py"
    assert not _imports(source, top_level_only=True) & FRAMEWORKS
    assert _imports(source, top_level_only=False) & FRAMEWORKS == {"torch"}  # inside read_source only
    assert _imports(REPO / "tlkit" / "keras_efficientnet.py", top_level_only=False) & FRAMEWORKS == {"keras"}


def test_the_two_manifest_writers_keep_each_other_s_keys(tmp_path, monkeypatch):
    weights = pretrained.weights_path(NAME)
    manifest = tmp_path / "manifest.json"
    shutil.copyfile(tlkit.data.MANIFEST, manifest)
    before = json.loads(manifest.read_text())
    for module in (tlkit.data, build_data, pretrained):
        monkeypatch.setattr(module, "MANIFEST", manifest)
    monkeypatch.setenv("TLKIT_DATA", str(tmp_path / "data"))
    assert build_data.main(["digits", "--write-manifest"]) == 0  # rewrites the file
    assert json.loads(manifest.read_text()) == before
    pretrained.weights_path(NAME).parent.mkdir(parents=True)
    shutil.copyfile(weights, pretrained.weights_path(NAME))
    pretrained.write_manifest([NAME])
    assert json.loads(manifest.read_text()) == before


def test_build_command_converts_then_verifies(tmp_path):
    env = dict(os.environ, TLKIT_DATA=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "tlkit.pretrained", "build"]
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    assert "converted" in first.stdout
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0 and "ok (matches manifest)" in second.stdout
