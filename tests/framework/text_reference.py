"""What both text-encoder framework files share: the sentences, the parameter count, sentence-transformers' pooling."""

from __future__ import annotations

import numpy as np

# short and long sentences in one batch: the short ones are padded
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The flight was delayed for three hours and nobody told us why.",
    "Shares of the company fell sharply after the announcement.",
    "Hi!",
]
PARAMETERS = 22_565_376  # BertModel of all-MiniLM-L6-v2 without its pooler
TOP_LAYER_PARAMETERS = 1_774_464  # one transformer layer: attention, feed-forward, two LayerNorms
TOLERANCE = 1e-4


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling: the average over real tokens (mask 1) only."""
    mask = mask[..., None].astype(hidden.dtype)
    return (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
