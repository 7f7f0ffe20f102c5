"""PyTorch's momentum SGD as a Keras 3 optimizer, so that the Keras twin of a lesson takes PyTorch's steps.

Keras' own SGD keeps ``m = momentum * m - lr * g`` and adds ``m``; PyTorch keeps ``b = momentum * b + g`` and
subtracts ``lr * b``. The two agree while the learning rate is constant, but not under a schedule: Keras scales
each gradient by the rate of its own step, PyTorch scales the whole buffer by the current one. With an annealed
rate (lesson 05, as in the DANN paper) that alone moves a run's final accuracy by a few points.
"""

from __future__ import annotations

import keras
from keras import ops


class TorchSGD(keras.optimizers.Optimizer):
    """``b = momentum * b + g``; ``w -= learning_rate * b`` (``torch.optim.SGD`` with momentum, no dampening)."""

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, name: str = "torch_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = float(momentum)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.buffers = [self.add_variable_from_reference(v, name="momentum") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        buffer = self.buffers[self._get_variable_index(variable)]
        gradient = ops.cast(gradient, variable.dtype)
        self.assign(buffer, ops.add(ops.multiply(buffer, self.momentum), gradient))
        self.assign_sub(variable, ops.multiply(buffer, ops.cast(learning_rate, variable.dtype)))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}
