"""tlkit.keras.shared_init and tlkit.keras_sgd.TorchSGD against what test_twin_start_pytorch.py wrote.

Run alone, once per backend: tests/test_helper_api.py starts it with ``TLKIT_TWIN_IN`` pointing at the file
the PyTorch run wrote. The Keras twin of its network, started with the same seed, must compute the same outputs,
and after the same annealed momentum-SGD steps with TorchSGD, the same outputs again; Keras' own SGD must not.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from keras import layers, ops

from tlkit import keras as tl
from tlkit.keras_sgd import TorchSGD

PYTORCH = os.environ.get("TLKIT_TWIN_IN")
pytestmark = pytest.mark.skipif(not PYTORCH, reason="needs TLKIT_TWIN_IN (run by tests/test_helper_api.py)")


class Identity(layers.Layer):
    """Keeps the shape, like lesson 05's gradient reversal: shared_init must look through it to the Flatten."""

    def call(self, x):
        return x


def two_heads() -> keras.Model:
    inputs = keras.Input((12, 12, 3))
    h = layers.ReLU()(layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(layers.Conv2D(4, 3, strides=2)(inputs)))
    features = layers.Flatten()(layers.ReLU()(layers.Conv2D(6, 3)(h)))
    first = layers.Dense(3)(layers.Dense(5, activation="relu")(features))
    wide = layers.Dense(54, activation="relu")(Identity()(features))  # keeps the width, but mixes the features
    second = layers.Dense(1)(layers.Dense(5, activation="relu")(wide))
    return keras.Model(inputs, [first, second])


class Annealing(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, lr: float, steps: int):
        self.lr, self.steps = lr, steps

    def __call__(self, step):
        return self.lr / (1.0 + 10.0 * ops.cast(step, "float32") / self.steps) ** 0.75


@pytest.fixture(scope="module")
def pytorch() -> dict[str, np.ndarray]:
    with np.load(PYTORCH) as f:
        return dict(f)


def outputs(net: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    return [ops.convert_to_numpy(o) for o in net(x, training=False)]


def trained(net: keras.Model, optimizer: keras.optimizers.Optimizer, ref: dict) -> keras.Model:
    net.compile(optimizer=optimizer, loss=["mse", "mse"])
    for _ in range(int(ref["steps"])):
        net.train_on_batch(ref["x"], [ref["y1"], ref["y2"]])
    return net


def test_the_keras_twin_starts_as_the_pytorch_network(pytorch):
    net = tl.shared_init(two_heads(), int(pytorch["seed"]))
    first, second = outputs(net, pytorch["x"])
    np.testing.assert_allclose(first, pytorch["before_first"], atol=1e-5)
    np.testing.assert_allclose(second, pytorch["before_second"], atol=1e-5)


def test_torch_sgd_takes_the_pytorch_steps_and_keras_sgd_does_not(pytorch):
    schedule = Annealing(float(pytorch["lr"]), int(pytorch["steps"]))
    ours = trained(tl.shared_init(two_heads(), int(pytorch["seed"])), TorchSGD(schedule, momentum=0.9), pytorch)
    first, second = outputs(ours, pytorch["x"])
    np.testing.assert_allclose(first, pytorch["after_first"], atol=1e-4)
    np.testing.assert_allclose(second, pytorch["after_second"], atol=1e-4)
    keras_sgd = keras.optimizers.SGD(schedule, momentum=0.9)
    theirs = trained(tl.shared_init(two_heads(), int(pytorch["seed"])), keras_sgd, pytorch)
    assert np.abs(outputs(theirs, pytorch["x"])[0] - pytorch["after_first"]).max() > 1e-3
