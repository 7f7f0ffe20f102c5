"""A BERT-style text encoder in Keras 3, layer for layer like ``transformers``' ``BertModel``.

It exists so that the Keras twin can use the same pretrained all-MiniLM-L6-v2 weights as the
PyTorch twin (:func:`tlkit.keras.load_text_encoder` builds it and calls :func:`load_bert_weights`
with :func:`tlkit.text.load_weights`). What it copies from ``BertModel`` (its ``config.json``):

* embeddings: word + position (0, 1, ...) + token type, then LayerNorm and dropout;
* ``num_hidden_layers`` post-LN transformer layers: ``x = LN(x + Dropout(Attention(x)))`` then
  ``x = LN(x + Dropout(Dense(GELU(Dense(x)))))``, with the exact (erf) GELU, LayerNorm epsilon
  ``layer_norm_eps``, dropout ``hidden_dropout_prob`` (``attention_probs_dropout_prob`` on the
  attention weights); self-attention of ``num_attention_heads`` heads where padded keys
  (``attention_mask`` 0) get no weight;
* no pooler: the output is the last hidden states, what ``BertModel(...).last_hidden_state`` is.

Sub-layers are named after ``BertModel``'s modules: ``embeddings``, then ``layer_0`` ...
``layer_5`` (``encoder.layer[i]``), each with ``attention`` (``keras.layers.MultiHeadAttention``),
``attention_norm``, ``intermediate``, ``output`` and ``output_norm``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


class BertEmbeddings(layers.Layer):
    """Word + position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, vocab_size: int, hidden: int, max_positions: int, type_vocab: int, epsilon: float,
                 dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.word = layers.Embedding(vocab_size, hidden, name="word_embeddings")
        self.position = layers.Embedding(max_positions, hidden, name="position_embeddings")
        self.token_type = layers.Embedding(type_vocab, hidden, name="token_type_embeddings")
        self.norm = layers.LayerNormalization(epsilon=epsilon, name="norm")
        self.dropout = layers.Dropout(dropout)

    def call(self, input_ids, token_type_ids, training=None):
        positions = ops.arange(ops.shape(input_ids)[1], dtype="int32")[None, :]
        x = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        return self.dropout(self.norm(x), training=training)


class BertLayer(layers.Layer):
    """One post-LN transformer layer: self-attention, add & norm, GELU feed-forward, add & norm."""

    def __init__(self, hidden: int, heads: int, intermediate: int, epsilon: float, dropout: float,
                 attention_dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.attention = layers.MultiHeadAttention(heads, hidden // heads, dropout=attention_dropout,
                                                   name="attention")
        self.attention_dropout = layers.Dropout(dropout)
        self.attention_norm = layers.LayerNormalization(epsilon=epsilon, name="attention_norm")
        self.intermediate = layers.Dense(intermediate, name="intermediate")
        self.output_dense = layers.Dense(hidden, name="output")
        self.output_dropout = layers.Dropout(dropout)
        self.output_norm = layers.LayerNormalization(epsilon=epsilon, name="output_norm")

    def call(self, x, attention_mask, training=None):
        # attention_mask (batch, 1, keys): every query position may look at the real tokens only
        attended = self.attention(x, x, attention_mask=attention_mask, training=training)
        x = self.attention_norm(x + self.attention_dropout(attended, training=training))
        h = ops.gelu(self.intermediate(x), approximate=False)
        return self.output_norm(x + self.output_dropout(self.output_dense(h), training=training))


class BertEncoder(keras.Model):
    """BERT-style encoder: ``encoder(input_ids=, attention_mask=, token_type_ids=)`` ->
    ``{"last_hidden_state": (batch, seq, hidden)}``, the convention of ``transformers``' ``BertModel``.

    ``input_ids`` (batch, seq) integer token ids; ``attention_mask`` (batch, seq), 1 for real tokens and 0
    for padding (default: all 1); ``token_type_ids`` (batch, seq) (default: all 0). ``encoder.encoder_layers``
    lists the transformer layers bottom to top (``encoder.encoder_layers[-1]`` is the top one).
    """

    def __init__(self, config: dict, **kwargs):
        kwargs.setdefault("name", "bert_encoder")
        super().__init__(**kwargs)
        self.config = dict(config)
        hidden, eps, drop = config["hidden_size"], config["layer_norm_eps"], config["hidden_dropout_prob"]
        self.embeddings = BertEmbeddings(config["vocab_size"], hidden, config["max_position_embeddings"],
                                         config["type_vocab_size"], eps, drop, name="embeddings")
        self.encoder_layers = [BertLayer(hidden, config["num_attention_heads"], config["intermediate_size"], eps, drop,
                                  config["attention_probs_dropout_prob"], name=f"layer_{i}")
                        for i in range(config["num_hidden_layers"])]

    def call(self, input_ids, attention_mask=None, token_type_ids=None, training=None):
        input_ids = ops.cast(input_ids, "int32")
        if attention_mask is None:
            attention_mask = ops.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = ops.zeros_like(input_ids)
        keys = ops.cast(attention_mask, "bool")[:, None, :]
        x = self.embeddings(input_ids, ops.cast(token_type_ids, "int32"), training=training)
        for layer in self.encoder_layers:
            x = layer(x, keys, training=training)
        return {"last_hidden_state": x}

    def get_config(self) -> dict:
        return {"config": self.config, "name": self.name}


def build_bert_encoder(config: dict) -> BertEncoder:
    """The encoder of ``config`` (a ``BertModel`` ``config.json``), built on a dummy batch, random weights."""
    encoder = BertEncoder(config)
    ids = np.zeros((1, 4), dtype="int32")
    encoder(input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=ids)
    return encoder


def load_bert_weights(encoder: BertEncoder, state: dict[str, np.ndarray]) -> BertEncoder:
    """Copy ``BertModel`` state-dict arrays into ``encoder``; every tensor but the pooler is used once."""
    heads = encoder.config["num_attention_heads"]
    hidden = encoder.config["hidden_size"]
    size = hidden // heads
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        used.add(key)
        return state[key]

    emb = encoder.embeddings
    emb.word.set_weights([take("embeddings.word_embeddings.weight")])
    emb.position.set_weights([take("embeddings.position_embeddings.weight")])
    emb.token_type.set_weights([take("embeddings.token_type_embeddings.weight")])
    emb.norm.set_weights([take("embeddings.LayerNorm.weight"), take("embeddings.LayerNorm.bias")])
    for i, layer in enumerate(encoder.encoder_layers):
        p = f"encoder.layer.{i}"
        qkv = []
        for part in ("query", "key", "value"):  # (out, in) -> kernel (in, heads, size), bias (heads, size)
            qkv += [take(f"{p}.attention.self.{part}.weight").T.reshape(hidden, heads, size),
                    take(f"{p}.attention.self.{part}.bias").reshape(heads, size)]
        out_w, out_b = take(f"{p}.attention.output.dense.weight"), take(f"{p}.attention.output.dense.bias")
        layer.attention.set_weights([*qkv, out_w.T.reshape(heads, size, hidden), out_b])
        layer.attention_norm.set_weights([take(f"{p}.attention.output.LayerNorm.weight"),
                                          take(f"{p}.attention.output.LayerNorm.bias")])
        layer.intermediate.set_weights([take(f"{p}.intermediate.dense.weight").T, take(f"{p}.intermediate.dense.bias")])
        layer.output_dense.set_weights([take(f"{p}.output.dense.weight").T, take(f"{p}.output.dense.bias")])
        layer.output_norm.set_weights([take(f"{p}.output.LayerNorm.weight"), take(f"{p}.output.LayerNorm.bias")])
    left = sorted(k for k in state if k not in used and not k.startswith("pooler.") and k != "embeddings.position_ids")
    if left:
        raise ValueError(f"{len(left)} tensors of the state dict have no place in the encoder (first: {left[0]!r})")
    return encoder
