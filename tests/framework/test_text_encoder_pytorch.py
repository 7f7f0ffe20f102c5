"""tlkit.pytorch.load_text_encoder / load_tokenizer: transformers' BertModel from the offline MiniLM package.

Run alone: tests/test_text_encoder.py starts it in a subprocess with ``TLKIT_TEXT_OUT`` set, and this
file writes the tokenised sentences, the last hidden states and the mean-pooled sentence embeddings
there, for test_text_encoder_keras.py to compare on both Keras backends.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from text_reference import PARAMETERS, SENTENCES, TOP_LAYER_PARAMETERS, mean_pool

from tlkit import pytorch as tl


@pytest.fixture(scope="module")
def tokenizer():
    return tl.load_tokenizer()


@pytest.fixture(scope="module")
def encoder():
    return tl.load_text_encoder()


def encode(encoder, batch) -> np.ndarray:
    with torch.no_grad():
        return encoder(**{k: torch.as_tensor(v) for k, v in batch.items()})["last_hidden_state"].numpy()


def test_one_framework_per_process(encoder, tokenizer):
    assert "tensorflow" not in sys.modules


def test_encoder_is_the_transformers_bert_model_frozen_in_eval_mode(encoder):
    assert type(encoder).__name__ == "BertModel" and not encoder.training
    assert encoder.config.hidden_size == 384 and len(encoder.encoder.layer) == 6
    assert tl.count_params(encoder) == PARAMETERS and tl.count_params(encoder, trainable_only=True) == 0
    assert tl.count_params(tl.load_text_encoder(trainable=True), trainable_only=True) == PARAMETERS
    encoder.encoder.layer[-1].requires_grad_(True)  # fine-tune the top layer only
    try:
        assert tl.count_params(encoder, trainable_only=True) == TOP_LAYER_PARAMETERS
    finally:
        encoder.requires_grad_(False)


def test_padding_does_not_change_a_sentence_s_embedding(encoder, tokenizer):
    batch = tokenizer(SENTENCES, padding=True, return_tensors="np")
    assert batch["attention_mask"][-1].sum() < batch["attention_mask"].shape[1]  # "Hi!" is padded
    pooled = mean_pool(encode(encoder, batch), batch["attention_mask"])
    alone = tokenizer(SENTENCES[-1:], return_tensors="np")
    np.testing.assert_allclose(pooled[-1], mean_pool(encode(encoder, alone), alone["attention_mask"])[0], atol=1e-5)


def test_paraphrases_are_closer_than_other_topics(encoder, tokenizer):
    batch = tokenizer(SENTENCES, padding=True, return_tensors="np")
    pooled = mean_pool(encode(encoder, batch), batch["attention_mask"])
    unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    similar = unit @ unit.T
    assert similar[0, 1] > 0.6 > max(similar[0, 2], similar[0, 3])


def test_write_outputs_for_keras(encoder, tokenizer):
    path = os.environ.get("TLKIT_TEXT_OUT")
    if not path:
        pytest.skip("TLKIT_TEXT_OUT is not set (tests/test_text_encoder.py sets it)")
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=32, return_tensors="np")
    hidden = encode(encoder, batch)
    assert hidden.shape == (*batch["input_ids"].shape, 384)
    np.savez(path, hidden=hidden, pooled=mean_pool(hidden, batch["attention_mask"]), **batch)
