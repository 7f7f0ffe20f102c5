"""EfficientNet-Lite0 in Keras 3 (functional API), layer for layer like ``efficientnet_lite_pytorch``.

It exists so that the Keras twin can use the same ImageNet weights as the PyTorch
twin (:func:`tlkit.keras.load_backbone` builds it and calls :func:`load_torch_weights`).
What it copies from the PyTorch package (``efficientnet_lite_pytorch`` 0.1.0):

* stem: 3x3 conv, stride 2, 32 filters; head: 1x1 conv to 1280; no bias before batch norm;
* seven stages of MBConv blocks (expand 1x1 -> depthwise kxk -> project 1x1), no
  squeeze-excite (Lite models), ReLU6 everywhere, a residual add when the block keeps
  its shape, stochastic depth ("drop connect", rate 0.2 * block index / 16) on it while training;
* batch norm with epsilon 1e-3 and Keras momentum 0.99 (PyTorch's ``momentum=0.01``);
* padding: the package pads each strided or kxk conv with zeros computed once from the
  224-pixel input ("static same padding", the extra row/column going to the bottom/right),
  here explicit ``ZeroPadding2D`` layers with the same amounts, then ``padding="valid"``.

Layer names follow ``keras.applications.EfficientNetB0``: ``stem_*``, ``block{stage}{letter}_*``
(``block1a`` ... ``block7a``: 16 blocks), ``top_conv`` / ``top_bn`` / ``top_activation``,
``avg_pool``, and with the classifier ``top_dropout`` and ``predictions`` (logits).
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterator
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

IMAGE_SIZE = 224
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_CLASSES = 1000
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99  # Keras: moving = momentum * moving + (1 - momentum) * batch; PyTorch's momentum=0.01
DROP_CONNECT_RATE = 0.2
DROPOUT_RATE = 0.2

# (repeats, kernel size, stride of the first block, expand ratio, input filters, output filters),
# from efficientnet_lite_pytorch.utils.efficientnet_lite ('r1_k3_s11_e1_i32_o16', ...). Lite0 scales nothing.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class Block:
    index: int  # position in the PyTorch model's ``_blocks``
    name: str  # "block2b"
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int
    image_size: int  # input height/width the package computed its padding for

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def blocks(image_size: int = IMAGE_SIZE) -> Iterator[Block]:
    """The 16 MBConv blocks in order, with the input size each one's padding is computed for."""
    size = _out_size(image_size, 2)  # after the stem
    index = 0
    for stage, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(STAGES, start=1):
        for r in range(repeats):
            first = r == 0
            yield Block(
                index=index,
                name=f"block{stage}{string.ascii_lowercase[r]}",
                kernel=kernel,
                stride=stride if first else 1,
                expand=expand,
                filters_in=filters_in if first else filters_out,
                filters_out=filters_out,
                image_size=size,
            )
            if first:
                size = _out_size(size, stride)
            index += 1


def _out_size(size: int, stride: int) -> int:
    return math.ceil(size / stride)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zeros for one axis, as ``Conv2dStaticSamePadding`` computes them."""
    total = max((_out_size(size, stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad(x, size: int, kernel: int, stride: int, name: str):
    before, after = same_padding(size, kernel, stride)
    if before == after == 0:
        return x
    return layers.ZeroPadding2D(((before, after), (before, after)), name=name)(x)


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(axis=-1, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def _relu6(name: str) -> layers.ReLU:
    return layers.ReLU(max_value=6.0, name=name)


def _mbconv(x, block: Block, num_blocks: int):
    p = block.name + "_"
    inputs = x
    filters = block.filters_in * block.expand
    if block.expand != 1:
        x = layers.Conv2D(filters, 1, use_bias=False, name=p + "expand_conv")(x)
        x = _bn(p + "expand_bn")(x)
        x = _relu6(p + "expand_activation")(x)
    x = _pad(x, block.image_size, block.kernel, block.stride, p + "dwconv_pad")
    x = layers.DepthwiseConv2D(block.kernel, strides=block.stride, use_bias=False, name=p + "dwconv")(x)
    x = _bn(p + "bn")(x)
    x = _relu6(p + "activation")(x)
    x = layers.Conv2D(block.filters_out, 1, use_bias=False, name=p + "project_conv")(x)
    x = _bn(p + "project_bn")(x)
    if block.residual:
        rate = DROP_CONNECT_RATE * block.index / num_blocks
        if rate > 0:  # stochastic depth: drops the whole residual branch of a sample while training
            x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=p + "drop")(x)
        x = layers.Add(name=p + "add")([x, inputs])
    return x


def build_efficientnet_lite0(
    include_top: bool = True,
    input_shape: tuple[int | None, int | None, int] = (IMAGE_SIZE, IMAGE_SIZE, 3),
    name: str = "efficientnet_lite0",
) -> keras.Model:
    """EfficientNet-Lite0 with fresh weights: NHWC float inputs -> 1000 logits, or (include_top=False) 1280 pooled
    features.

    Padding is computed for 224-pixel inputs, as in the PyTorch package, whatever ``input_shape`` says.
    """
    all_blocks = list(blocks(IMAGE_SIZE))
    inputs = keras.Input(shape=input_shape, name="image")
    x = _pad(inputs, IMAGE_SIZE, 3, 2, "stem_conv_pad")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_activation")(x)
    for block in all_blocks:
        x = _mbconv(x, block, len(all_blocks))
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = _relu6("top_activation")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dropout(DROPOUT_RATE, name="top_dropout")(x)
        x = layers.Dense(NUM_CLASSES, name="predictions")(x)
    return keras.Model(inputs, x, name=name)


# ----------------------------------------------------------------- weights from the PyTorch state dict
def torch_names(include_top: bool = True) -> dict[str, tuple[str, str]]:
    """``{Keras layer name: (PyTorch module prefix, kind)}``; kind is conv, dwconv, bn or dense."""
    names = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn")}
    for block in blocks(IMAGE_SIZE):
        t, k = f"_blocks.{block.index}.", block.name + "_"
        if block.expand != 1:
            names[k + "expand_conv"] = (t + "_expand_conv", "conv")
            names[k + "expand_bn"] = (t + "_bn0", "bn")
        names[k + "dwconv"] = (t + "_depthwise_conv", "dwconv")
        names[k + "bn"] = (t + "_bn1", "bn")
        names[k + "project_conv"] = (t + "_project_conv", "conv")
        names[k + "project_bn"] = (t + "_bn2", "bn")
    names["top_conv"] = ("_conv_head", "conv")
    names["top_bn"] = ("_bn1", "bn")
    if include_top:
        names["predictions"] = ("_fc", "dense")
    return names


def _keras_arrays(state: dict[str, np.ndarray], prefix: str, kind: str) -> list[np.ndarray]:
    if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [state[prefix + ".weight"].transpose(2, 3, 1, 0)]
    if kind == "dwconv":  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        return [state[prefix + ".weight"].transpose(2, 3, 0, 1)]
    if kind == "bn":  # gamma, beta, moving mean, moving variance
        return [state[prefix + suffix] for suffix in (".weight", ".bias", ".running_mean", ".running_var")]
    if kind == "dense":  # (out, in) -> (in, out)
        return [state[prefix + ".weight"].T, state[prefix + ".bias"]]
    raise ValueError(kind)


def load_torch_weights(model: keras.Model, state: dict[str, np.ndarray]) -> None:
    """Copy a PyTorch EfficientNet-Lite0 state dict (numpy arrays) into a model of :func:`build_efficientnet_lite0`.

    Every weight of the model is set; every tensor of ``state`` is used except batch-norm
    ``num_batches_tracked`` counters and, for a model without the classifier, ``_fc.*``.
    """
    include_top = any(layer.name == "predictions" for layer in model.layers)
    mapping = torch_names(include_top)
    used = set()
    for layer_name, (prefix, kind) in mapping.items():
        layer = model.get_layer(layer_name)
        arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in _keras_arrays(state, prefix, kind)]
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [a.shape for a in arrays]:
            raise ValueError(f"{layer_name}: Keras weights {shapes} do not fit {prefix} {[a.shape for a in arrays]}")
        layer.set_weights(arrays)
        used |= {key for key in state if key.startswith(prefix + ".")}
    with_weights = {layer.name for layer in model.layers if layer.weights}
    if with_weights - set(mapping):
        raise ValueError(f"No PyTorch weights for the layers {sorted(with_weights - set(mapping))}")
    left = {k for k in state if k not in used and not k.endswith("num_batches_tracked")}
    if include_top is False:
        left -= {"_fc.weight", "_fc.bias"}
    if left:
        raise ValueError(f"PyTorch tensors not copied: {sorted(left)[:5]} ...")
