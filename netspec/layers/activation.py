"""Element-wise activations (and softmax): the output type is the input type."""

from __future__ import annotations

from typing import Literal

from netspec.layers.base import Axis, Layer, ParamSpec, PositiveInt
from netspec.layers.merge import resolve_axis
from netspec.types import ShapeError, TensorType


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


class ReLU6(Activation):
    """min(max(x, 0), 6): MobileNet's bounded ReLU."""

    kind = "relu6"


class HardSigmoid(Activation):
    """relu6(x + 3) / 6: a piecewise-linear sigmoid (MobileNetV3's gates)."""

    kind = "hardsigmoid"


class HardSwish(Activation):
    """x * relu6(x + 3) / 6 (MobileNetV3)."""

    kind = "hardswish"


class GELU(Activation):
    """x * Phi(x), Phi the standard normal CDF; `approximate="tanh"` uses the tanh formula."""

    kind = "gelu"

    approximate: Literal["none", "tanh"] = "none"


class SiLU(Activation):
    """x * sigmoid(x), also called swish (EfficientNet)."""

    kind = "silu"


class ELU(Activation):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    kind = "elu"
    positional = ("alpha",)

    alpha: float = 1.0


class PReLU(Activation):
    """x if x > 0 else a * x, with a learned slope `a`: one shared (`num_parameters=1`) or one
    per channel (`num_parameters` = the channels). Its parameter is `weight`, as in PyTorch."""

    kind = "prelu"
    positional = ("num_parameters",)

    num_parameters: PositiveInt = 1
    init: float = 0.25

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if self.num_parameters not in (1, t.channels):
            raise ShapeError(f"num_parameters={self.num_parameters} must be 1 or the channel count "
                             f"{t.channels}", rule="one slope, or one per channel")
        return t

    def parameters(self, inputs, output):
        return {"weight": ParamSpec((self.num_parameters,))}
