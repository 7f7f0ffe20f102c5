"""tlkit.pytorch.shared_init: a small two-headed network started from the weights numpy draws for a seed.

Run alone: tests/test_helper_api.py starts it in a subprocess. With ``TLKIT_TWIN_OUT=<file>`` it writes the
input, the targets, the training settings and the network's outputs before and after a few steps of momentum
SGD under an annealed learning rate; test_twin_start_keras.py builds the Keras twin and must match them.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from tlkit import pytorch as tl

SEED, STEPS, LR = 3, 12, 0.05


class TwoHeads(torch.nn.Module):
    """conv-BN-ReLU-conv-ReLU-flatten, then two branches with same-shaped hidden layers, as in lesson 05; the
    second starts with a layer that keeps the width, so the layer after it must not be read as after the flatten."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
            torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(), torch.nn.Flatten())  # fmt: skip
        self.first = torch.nn.Sequential(torch.nn.Linear(54, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
        self.second = torch.nn.Sequential(torch.nn.Linear(54, 54), torch.nn.ReLU(), torch.nn.Linear(54, 5),
                                          torch.nn.ReLU(), torch.nn.Linear(5, 1))

    def forward(self, x):
        f = self.features(x)
        return self.first(f), self.second(f)


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(0)
    x = g.random((8, 12, 12, 3), dtype=np.float32)  # NHWC, as Keras takes it
    return x, g.normal(size=(8, 3)).astype(np.float32), g.normal(size=(8, 1)).astype(np.float32)


def outputs(net: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [o.numpy() for o in net.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2)))]


def trained(net: torch.nn.Module, x: np.ndarray, y1: np.ndarray, y2: np.ndarray) -> torch.nn.Module:
    """STEPS steps of momentum SGD on the sum of both heads' mean squared errors, rate LR / (1 + 10 p) ** 0.75."""
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
    inputs, t1, t2 = torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(y1), torch.from_numpy(y2)
    net.train()
    for step in range(STEPS):
        optimizer.param_groups[0]["lr"] = LR / (1 + 10 * step / STEPS) ** 0.75
        o1, o2 = net(inputs)
        optimizer.zero_grad()
        (F.mse_loss(o1, t1) + F.mse_loss(o2, t2)).backward()
        optimizer.step()
    return net


def test_the_same_seed_gives_the_same_network_and_another_seed_another():
    a, b, c = (tl.shared_init(TwoHeads(), seed) for seed in (SEED, SEED, SEED + 1))
    x = data()[0]
    assert all(np.array_equal(p, q) for p, q in zip(outputs(a, x), outputs(b, x)))
    assert not np.allclose(outputs(a, x)[0], outputs(c, x)[0])


def test_same_shaped_layers_get_different_weights_within_the_default_bound():
    net = tl.shared_init(TwoHeads(), SEED)
    assert not torch.equal(net.first[0].weight, net.second[0].weight)
    for layer in (net.features[0], net.first[0], net.second[4]):
        bound = (layer.weight[0].numel()) ** -0.5
        assert 0.5 * bound < layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound


def test_writes_what_the_keras_twin_must_match():
    path = os.environ.get("TLKIT_TWIN_OUT")
    if not path:
        return
    x, y1, y2 = data()
    net = tl.shared_init(TwoHeads(), SEED)
    before = outputs(net, x)
    after = outputs(trained(net, x, y1, y2), x)
    np.savez(path, x=x, y1=y1, y2=y2, seed=SEED, steps=STEPS, lr=LR,
             before_first=before[0], before_second=before[1], after_first=after[0], after_second=after[1])  # fmt: skip
