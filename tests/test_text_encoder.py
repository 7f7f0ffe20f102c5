"""The offline text encoder all-MiniLM-L6-v2 (tlkit.text) and its twins, without any framework in this process.

The models run in tests/framework/test_text_encoder_{pytorch,keras}.py, in subprocesses, one framework each:
PyTorch's transformers BertModel writes its last hidden states, and the Keras encoder must match them on
both Keras backends. The measured differences are printed (``pytest -s``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_helper_api import imported_modules, run_framework_file

from tlkit import text
from tlkit.data import DataError, read_manifest

REPO = Path(__file__).resolve().parents[1]
NAME = "all-minilm-l6-v2"
FRAMEWORKS = {"torch", "tensorflow", "keras", "jax"}


def test_the_encoder_gives_the_same_outputs_in_both_frameworks(tmp_path):
    """Keras (both backends) matches transformers' last hidden states and mean-pooled embeddings within 1e-4."""
    outputs = tmp_path / "pytorch_text_outputs.npz"
    run_framework_file("test_text_encoder_pytorch.py", None, TLKIT_TEXT_OUT=str(outputs))
    with np.load(outputs) as saved:
        assert (saved["attention_mask"] == 0).any()  # the batch is padded
    for backend in ("tensorflow", "torch"):
        out = run_framework_file("test_text_encoder_keras.py", backend, TLKIT_TEXT_IN=str(outputs))
        measured = [line[line.index(backend + ":"):] for line in out.splitlines() if "max |last hidden diff|" in line]
        assert measured, out[-2000:]
        print(measured[0])


def test_weights_match_the_manifest():
    arrays = text.load_weights(NAME)  # raises DataError on any mismatch
    assert arrays["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert arrays["encoder.layer.5.output.dense.weight"].shape == (384, 1536)
    assert len(read_manifest()["weights"][NAME]) == len(arrays) == 104
    config = text.encoder_config(NAME)
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (384, 6, 12)


def test_a_changed_tensor_fails_the_checksum(monkeypatch):
    arrays = text.read_weights(NAME)
    arrays["pooler.dense.bias"] = arrays["pooler.dense.bias"] + np.float32(1e-3)
    monkeypatch.setattr(text, "read_weights", lambda name: arrays)
    with pytest.raises(DataError, match=r"does not match the manifest.*pooler\.dense\.bias"):
        text.load_weights(NAME)


def test_unknown_encoder_lists_the_known_ones():
    with pytest.raises(KeyError, match=NAME):
        text.load_tokenizer("bert-base-uncased")


def test_tokenizer_pads_truncates_and_masks_without_a_framework():
    script = (
        "import json, sys\n"
        "from tlkit import text\n"
        "tok = text.load_tokenizer()\n"
        "batch = tok(['Hello world!', 'A longer sentence about the Flight.', 'word ' * 400], padding=True,\n"
        "            truncation=True, max_length=16, return_tensors='np')\n"
        "loaded = sorted(m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules)\n"
        "print(json.dumps({'batch': {k: v.tolist() for k, v in batch.items()},\n"
        "                  'plain': tok('Hello world!')['input_ids'], 'frameworks': loaded}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["frameworks"] == []  # tokenising imports neither torch nor TensorFlow
    assert out["plain"] == [101, 7592, 2088, 999, 102]  # [CLS] hello world ! [SEP], lower-cased, no padding
    ids, mask = np.array(out["batch"]["input_ids"]), np.array(out["batch"]["attention_mask"])
    assert ids.shape == mask.shape == (3, 16)  # the longest is cut to max_length, the others padded to it
    assert list(ids[0, :6]) == [101, 7592, 2088, 999, 102, 0] and list(mask[0, :6]) == [1, 1, 1, 1, 1, 0]
    assert ids[2, -1] == 102 and mask[2].all()  # truncated texts still end with [SEP]
    assert np.array_equal(mask, ids != 0) and not np.array(out["batch"]["token_type_ids"]).any()


def test_shared_text_code_imports_no_framework_and_keras_code_only_keras():
    tree = ast.parse((REPO / "tlkit" / "text.py").read_text())
    assert not imported_modules(tree, top_level_only=False) & FRAMEWORKS
    keras_code = ast.parse((REPO / "tlkit" / "keras_minilm.py").read_text())
    assert imported_modules(keras_code, top_level_only=False) & (FRAMEWORKS | {"transformers"}) == {"keras"}
