"""tlkit.keras.load_backbone: the Keras EfficientNet-Lite0 with the same offline ImageNet weights.

Run alone, once per backend (KERAS_BACKEND=tensorflow / torch): tests/test_helper_api.py starts
it in subprocesses, with ``TLKIT_LOGITS_IN`` pointing at the file test_pretrained_pytorch.py
wrote, so that the two frameworks are compared on the same input.
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import pytest
from skimage import data as sk

from tlkit import keras as tl
from tlkit import keras_efficientnet, pretrained

CATS = range(281, 286)  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
COFFEE = (967, 968)  # espresso, cup
BACKEND = keras.backend.backend()
TOLERANCE = 1e-4


def run(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return tl.preprocess_inputs([sk.chelsea(), sk.coffee()])


@pytest.fixture(scope="module")
def classifier() -> keras.Model:
    return tl.load_backbone(include_top=True)


@pytest.fixture(scope="module")
def extractor() -> keras.Model:
    return tl.load_backbone()


def test_one_framework_per_process():
    other = "torch" if BACKEND == "tensorflow" else "tensorflow"
    assert other not in sys.modules


def test_padding_is_the_package_s_static_same_padding():
    pad = keras_efficientnet.same_padding
    assert pad(224, 3, 2) == (0, 1) and pad(56, 5, 2) == (1, 2) and pad(14, 5, 1) == (2, 2) and pad(7, 1, 1) == (0, 0)


def test_preprocess_inputs_is_nhwc():
    x = tl.preprocess_inputs(np.zeros((1, 30, 40, 3), dtype=np.uint8))
    assert x.dtype == np.float32 and x.shape == (1, 224, 224, 3)


def test_photos_are_classified(classifier, photos):
    logits = run(classifier, photos)
    assert logits.shape == (2, 1000)
    top1 = logits.argmax(axis=1).tolist()
    names = pretrained.imagenet_classes()
    print(BACKEND, "top-1:", [names[i] for i in top1])
    assert top1[0] in CATS, names[top1[0]]
    assert top1[1] in COFFEE, names[top1[1]]


def test_architecture_is_readable(classifier, extractor):
    names = [layer.name for layer in classifier.layers]
    for name in ("stem_conv", "stem_bn", "block1a_dwconv", "block6d_project_bn", "block7a_project_conv",
                 "top_conv", "top_bn", "avg_pool", "predictions"):  # fmt: skip
        assert name in names
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in classifier.layers) == 49
    assert extractor.output_shape == (None, 1280)
    assert "predictions" not in [layer.name for layer in extractor.layers]


def test_features_and_classifier_agree(classifier, extractor, photos):
    features = run(extractor, photos)
    assert features.shape == (2, 1280)
    dense = classifier.get_layer("predictions")
    head = keras.ops.convert_to_numpy(dense(keras.ops.convert_to_tensor(features)))
    np.testing.assert_allclose(head, run(classifier, photos), atol=1e-4)


def test_trainable_flag(extractor):
    assert extractor.trainable is False
    assert len(extractor.trainable_weights) == 0 and tl.count_params(extractor, trainable_only=True) == 0
    trainable = tl.load_backbone(trainable=True)
    assert tl.count_params(trainable, trainable_only=True) == 3_371_008  # the PyTorch twin's parameter count


def test_same_outputs_as_pytorch(classifier, extractor):
    path = os.environ.get("TLKIT_LOGITS_IN")
    if not path:
        pytest.skip("TLKIT_LOGITS_IN is not set (tests/test_helper_api.py sets it)")
    with np.load(path) as saved:
        inputs, logits, features = saved["inputs"], saved["logits"], saved["features"]
    keras_logits, keras_features = run(classifier, inputs), run(extractor, inputs)
    logits_diff = float(np.abs(keras_logits - logits).max())
    features_diff = float(np.abs(keras_features - features).max())
    print(f"{BACKEND}: max |logits diff| {logits_diff:.2e}, max |features diff| {features_diff:.2e}")
    assert logits_diff <= TOLERANCE
    assert features_diff <= TOLERANCE
    assert np.array_equal(keras_logits.argmax(axis=1), logits.argmax(axis=1))
