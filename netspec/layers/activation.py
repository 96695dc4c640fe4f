"""Element-wise activations (and softmax): the output type is the input type."""

from __future__ import annotations

from netspec.layers.base import Axis, Layer
from netspec.layers.merge import resolve_axis
from netspec.types import TensorType


class Activation(Layer):
    """Base for layers whose output has the input's type."""

    family = "activation"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]


class ReLU(Activation):
    """max(x, 0)."""

    kind = "relu"


class LeakyReLU(Activation):
    """x if x > 0 else negative_slope * x."""

    kind = "leaky_relu"
    positional = ("negative_slope",)

    negative_slope: float = 0.01

    def describe(self, inputs):
        return f"leaky_relu {self.negative_slope:g}"


class Sigmoid(Activation):
    """1 / (1 + exp(-x))."""

    kind = "sigmoid"


class Tanh(Activation):
    """tanh(x)."""

    kind = "tanh"


class Softmax(Activation):
    """exp(x) / sum(exp(x)) along `axis` (default: the channel axis, i.e. the classes)."""

    kind = "softmax"
    positional = ("axis",)
    aliases = {"dim": "axis"}

    axis: Axis = "C"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        resolve_axis(inputs[0], self.axis)
        return inputs[0]
