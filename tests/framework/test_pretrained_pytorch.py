"""tlkit.pytorch.load_backbone: EfficientNet-Lite0 with the offline ImageNet weights (CPU).

Run alone: tests/test_helper_api.py starts it in a subprocess. With ``TLKIT_LOGITS_OUT=<file>``
it also writes the outputs of a fixed input there, which test_pretrained_keras.py compares
with the Keras model's (``TLKIT_LOGITS_IN``).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from skimage import data as sk

from tlkit import pretrained
from tlkit import pytorch as tl

CATS = range(281, 286)  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
COFFEE = (967, 968)  # espresso, cup


def fixed_images() -> np.ndarray:
    """Two deterministic 224x224 RGB noise images (uint8): the cross-framework input."""
    return np.random.default_rng(0).integers(0, 256, size=(2, 224, 224, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return tl.preprocess_inputs([sk.chelsea(), sk.coffee()])


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    return tl.load_backbone(include_top=True)


@pytest.fixture(scope="module")
def extractor() -> torch.nn.Module:
    return tl.load_backbone()


def test_one_framework_per_process():
    assert "tensorflow" not in sys.modules


def test_preprocess_inputs_is_nchw_and_agrees_with_numpy():
    x = tl.preprocess_inputs(fixed_images())
    assert x.dtype == torch.float32 and tuple(x.shape) == (2, 3, 224, 224)
    assert np.array_equal(x.numpy().transpose(0, 2, 3, 1), pretrained.preprocess(fixed_images()))
    grey = tl.preprocess_inputs(np.full((1, 28, 28), 200, dtype=np.uint8))
    assert tuple(grey.shape) == (1, 3, 224, 224) and torch.equal(grey[:, 0], grey[:, 2])


def test_photos_are_classified(classifier, photos):
    with torch.no_grad():
        logits = classifier(photos)
    assert tuple(logits.shape) == (2, 1000)
    top1 = logits.argmax(dim=1).tolist()
    names = pretrained.imagenet_classes()
    print("top-1:", [names[i] for i in top1])
    assert top1[0] in CATS, names[top1[0]]
    assert top1[1] in COFFEE, names[top1[1]]


def test_same_logits_as_the_package_s_own_loader(classifier, photos):
    from efficientnet_lite_pytorch import EfficientNet

    original = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(pretrained.source_path(
        "efficientnet_lite0"))).eval()  # fmt: skip
    with torch.no_grad():
        assert torch.equal(original(photos), classifier(photos))


def test_features_without_a_classifier(extractor, classifier, photos):
    with torch.no_grad():
        features = extractor(photos)
        assert tuple(features.shape) == (2, 1280)
        assert torch.allclose(features, extractor.extract_features(photos).mean(dim=(2, 3)), atol=1e-5)
        assert torch.allclose(classifier._fc(features), classifier(photos), atol=1e-4)
    assert not any(isinstance(m, torch.nn.Linear) for m in extractor.modules())
    assert not any(key.startswith("_fc.") for key in extractor.state_dict())


def test_trainable_flag(extractor):
    assert extractor.training is False
    assert not any(p.requires_grad for p in extractor.parameters())
    assert tl.count_params(extractor, trainable_only=True) == 0
    trainable = tl.load_backbone(trainable=True)
    assert all(p.requires_grad for p in trainable.parameters())
    assert tl.count_params(trainable) == 3_371_008  # 4,652,008 with the 1000-class classifier


def test_fixed_input_outputs(classifier, extractor):
    """Deterministic outputs for a fixed input; written to $TLKIT_LOGITS_OUT for the Keras twin."""
    inputs = pretrained.preprocess(fixed_images())
    x = torch.from_numpy(inputs.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        logits, features = classifier(x).numpy(), extractor(x).numpy()
        assert np.array_equal(logits, classifier(x).numpy())
    assert np.isfinite(logits).all() and logits.shape == (2, 1000) and features.shape == (2, 1280)
    out = os.environ.get("TLKIT_LOGITS_OUT")
    if out:
        with open(out, "wb") as f:
            np.savez(f, inputs=inputs, logits=logits, features=features)
