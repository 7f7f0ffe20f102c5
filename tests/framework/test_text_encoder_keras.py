"""tlkit.keras.load_text_encoder: the Keras MiniLM encoder with the PyTorch twin's weights and outputs.

Run alone, once per backend (KERAS_BACKEND=tensorflow / torch): tests/test_text_encoder.py starts it in
subprocesses, with ``TLKIT_TEXT_IN`` pointing at the file test_text_encoder_pytorch.py wrote.
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import pytest
from text_reference import PARAMETERS, TOLERANCE, TOP_LAYER_PARAMETERS, mean_pool

from tlkit import keras as tl

BACKEND = keras.backend.backend()


@pytest.fixture(scope="module")
def encoder():
    return tl.load_text_encoder()


@pytest.fixture(scope="module")
def tokenizer():
    return tl.load_tokenizer()


def encode(encoder, batch) -> np.ndarray:
    return keras.ops.convert_to_numpy(encoder(**batch)["last_hidden_state"])


def test_one_framework_per_process(encoder, tokenizer):
    other = "torch" if BACKEND == "tensorflow" else "tensorflow"
    assert other not in sys.modules


def test_architecture_and_trainable_flag(encoder):
    assert [layer.name for layer in encoder.encoder_layers] == [f"layer_{i}" for i in range(6)]
    assert tl.count_params(encoder) == PARAMETERS and tl.count_params(encoder, trainable_only=True) == 0
    trainable = tl.load_text_encoder(trainable=True)
    assert tl.count_params(trainable, trainable_only=True) == PARAMETERS
    trainable.embeddings.trainable = False  # fine-tune the top layer only
    for layer in trainable.encoder_layers[:-1]:
        layer.trainable = False
    assert tl.count_params(trainable, trainable_only=True) == TOP_LAYER_PARAMETERS


def test_padding_does_not_change_a_sentence_s_embedding(encoder, tokenizer):
    texts = ["A much longer sentence, whose length the short one is padded to.", "Hi!"]
    batch = tokenizer(texts, padding=True, return_tensors="np")
    alone = tokenizer(texts[-1:], return_tensors="np")
    padded = mean_pool(encode(encoder, batch), batch["attention_mask"])[-1]
    np.testing.assert_allclose(padded, mean_pool(encode(encoder, alone), alone["attention_mask"])[0], atol=1e-5)


def test_a_functional_classifier_fine_tunes_the_top_layer_only(tokenizer):
    encoder = tl.load_text_encoder(trainable=True)
    encoder.embeddings.trainable = False
    for layer in encoder.encoder_layers[:-1]:
        layer.trainable = False
    ids = keras.Input((None,), dtype="int32", name="input_ids")
    mask = keras.Input((None,), dtype="int32", name="attention_mask")
    hidden = encoder(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    logits = keras.layers.Dense(3)(hidden[:, 0, :])  # the [CLS] token's state
    model = keras.Model({"input_ids": ids, "attention_mask": mask}, logits)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch = tokenizer(["good", "bad news today", "a flight"], padding=True, return_tensors="np")
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def kernels():
        return [keras.ops.convert_to_numpy(layer.intermediate.kernel).copy() for layer in encoder.encoder_layers]

    before = kernels()
    model.fit(inputs, np.array([2, 0, 1]), epochs=1, verbose=0)
    after = kernels()
    assert not np.allclose(after[-1], before[-1])  # the top layer learned
    assert all(np.array_equal(a, b) for a, b in zip(after[:-1], before[:-1]))  # the others stayed
    assert model.predict(inputs, verbose=0).shape == (3, 3)


def test_same_outputs_as_pytorch(encoder):
    path = os.environ.get("TLKIT_TEXT_IN")
    if not path:
        pytest.skip("TLKIT_TEXT_IN is not set (tests/test_text_encoder.py sets it)")
    with np.load(path) as saved:
        batch = {k: saved[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
        hidden, pooled = saved["hidden"], saved["pooled"]
    keras_hidden = encode(encoder, batch)
    real = batch["attention_mask"].astype(bool)
    hidden_diff = float(np.abs(keras_hidden - hidden).max())
    real_diff = float(np.abs(keras_hidden - hidden)[real].max())
    pooled_diff = float(np.abs(mean_pool(keras_hidden, batch["attention_mask"]) - pooled).max())
    print(f"{BACKEND}: max |last hidden diff| {hidden_diff:.2e} (real tokens {real_diff:.2e}), "
          f"max |mean-pooled diff| {pooled_diff:.2e}")
    assert hidden_diff <= TOLERANCE and pooled_diff <= TOLERANCE
