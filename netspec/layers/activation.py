"""Element-wise activations (and softmax): the output type is the input type."""


from typing import ClassVar, Literal

from netspec.layers.base import Axis, Ctor, Foreign, Layer, ParamSpec, PositiveInt, TorchForm
from netspec.layers.merge import resolve_axis
from netspec.types import ShapeError, TensorType


class Activation(Layer):
    """Base for layers whose output has the input's type; `onnx_op` lowers those that are one
    ONNX operator without attributes."""

    family = "activation"
    onnx_op: ClassVar[str] = ""
    # PyTorch's module and function, for those without attributes (nn.ReLU, torch.relu)
    torch_module: ClassVar[str] = ""
    torch_function: ClassVar[str] = ""
    unlaid_inputs = True  # element by element: a param's value passes through too

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def lower(self, g, node, inputs, types, output):
        if not self.onnx_op:
            return super().lower(g, node, inputs, types, output)
        return g.op(self.onnx_op, inputs)

    def torch_form(self, inputs, output):
        if not self.torch_function:
            return super().torch_form(inputs, output)
        module = Ctor(self.torch_module) if self.torch_module else None
        return TorchForm(module, function=f"{self.torch_function}({{0}})")


class ReLU(Activation):
    """max(x, 0)."""

    kind = "relu"
    torch_module, torch_function = "nn.ReLU", "torch.relu"
    foreign = Foreign(pytorch=("ReLU",), pytorch_args=("inplace",), keras=("ReLU",))
    onnx_op = "Relu"


class LeakyReLU(Activation):
    """x if x > 0 else negative_slope * x."""

    kind = "leaky_relu"
    foreign = Foreign(pytorch=("LeakyReLU",), pytorch_args=("negative_slope", "inplace"), keras=("LeakyReLU",),
                      keras_args=("negative_slope",), keras_keywords={"alpha": "negative_slope"})
    positional = ("negative_slope",)

    negative_slope: float = 0.01

    def describe(self, inputs):
        return f"leaky_relu {self.negative_slope:g}"

    def torch_form(self, inputs, output):
        return TorchForm(Ctor("nn.LeakyReLU", {"negative_slope": self.negative_slope}, 1),
                         function=f"F.leaky_relu({{0}}, {self.negative_slope!r})")

    def lower(self, g, node, inputs, types, output):
        return g.op("LeakyRelu", inputs, alpha=self.negative_slope)


class Sigmoid(Activation):
    """1 / (1 + exp(-x))."""

    kind = "sigmoid"
    torch_module, torch_function = "nn.Sigmoid", "torch.sigmoid"
    foreign = Foreign(pytorch=("Sigmoid",))
    onnx_op = "Sigmoid"


class Tanh(Activation):
    """tanh(x)."""

    kind = "tanh"
    torch_module, torch_function = "nn.Tanh", "torch.tanh"
    foreign = Foreign(pytorch=("Tanh",))
    onnx_op = "Tanh"


class Softmax(Activation):
    """exp(x) / sum(exp(x)) along `axis` (default: the channel axis, i.e. the classes)."""

    kind = "softmax"
    unlaid_inputs = False  # reads the channel axis
    foreign = Foreign(pytorch=("Softmax",), pytorch_args=("dim",), keras=("Softmax",), keras_args=("axis",))
    positional = ("axis",)
    aliases = {"dim": "axis"}
    onnx_op = "Softmax"

    axis: Axis = "C"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        resolve_axis(inputs[0], self.axis)
        return inputs[0]

    def torch_form(self, inputs, output):
        dim = resolve_axis(inputs[0], self.axis)
        name = "Softmax" if self.kind == "softmax" else "LogSoftmax"
        return TorchForm(Ctor(f"nn.{name}", {"dim": dim}), function=f"torch.{self.kind}({{0}}, dim={dim})")

    def lower(self, g, node, inputs, types, output):
        from netspec.lower import canonical_axis

        return g.op(self.onnx_op, inputs, axis=canonical_axis(types[0], resolve_axis(types[0], self.axis)))


class LogSoftmax(Softmax):
    """log(softmax(x)) along `axis`, computed stably (`nn.LogSoftmax`): what a classifier
    trained with NLL loss outputs."""

    kind = "log_softmax"
    foreign = Foreign(pytorch=("LogSoftmax",), pytorch_args=("dim",))
    onnx_op = "LogSoftmax"


class ReLU6(Activation):
    """min(max(x, 0), 6): MobileNet's bounded ReLU."""

    kind = "relu6"
    torch_module, torch_function = "nn.ReLU6", "F.relu6"
    foreign = Foreign(pytorch=("ReLU6",), pytorch_args=("inplace",))

    def lower(self, g, node, inputs, types, output):
        dtype = types[0].dtype
        low, high = g.const(0.0, dtype, "min"), g.const(6.0, dtype, "max")
        return g.op("Clip", [inputs[0], low, high])


class Hardtanh(Activation):
    """min(max(x, min_val), max_val), as `nn.Hardtanh` (relu6 is hardtanh(0, 6))."""

    kind = "hardtanh"
    foreign = Foreign(pytorch=("Hardtanh",), pytorch_args=("min_val", "max_val", "inplace"))
    positional = ("min_val", "max_val")

    min_val: float = -1.0
    max_val: float = 1.0

    def infer(self, inputs: list[TensorType]) -> TensorType:
        if self.min_val > self.max_val:
            raise ShapeError(f"min_val {self.min_val:g} is larger than max_val {self.max_val:g}",
                             rule="hardtanh(min_val, max_val) with min_val <= max_val",
                             attributes=("min_val", "max_val"))
        return inputs[0]

    def describe(self, inputs):
        return f"hardtanh {self.min_val:g}..{self.max_val:g}"

    def torch_form(self, inputs, output):
        return TorchForm(Ctor("nn.Hardtanh", {"min_val": self.min_val, "max_val": self.max_val}, 2),
                         function=f"F.hardtanh({{0}}, {self.min_val!r}, {self.max_val!r})")

    def lower(self, g, node, inputs, types, output):
        dtype = types[0].dtype
        low, high = g.const(self.min_val, dtype, "min"), g.const(self.max_val, dtype, "max")
        return g.op("Clip", [inputs[0], low, high])


class Clamp(Activation):
    """min(max(x, min), max), as `torch.clamp`: either bound may be left out (Swin V2's logit
    scale, `clamp(max=log(100))`)."""

    kind = "clamp"
    foreign = Foreign(pytorch_args=("min", "max"))
    positional = ("min", "max")
    aliases = {"min_val": "min", "max_val": "max"}

    min: float | None = None
    max: float | None = None

    def infer(self, inputs: list[TensorType]) -> TensorType:
        if self.min is None and self.max is None:
            raise ShapeError("clamp needs a bound: `min`, `max` or both", rule="clamp(min, max)",
                             attributes=("min", "max"))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ShapeError(f"min {self.min:g} is larger than max {self.max:g}",
                             rule="clamp(min, max) with min <= max", attributes=("min", "max"))
        return inputs[0]

    def describe(self, inputs):
        low = "" if self.min is None else f"{self.min:.6g}"
        high = "" if self.max is None else f"{self.max:.6g}"
        return f"clamp {low}..{high}"

    def torch_form(self, inputs, output):
        bounds = ", ".join(f"{name}={value!r}" for name, value in (("min", self.min), ("max", self.max))
                           if value is not None)
        return TorchForm(function=f"{{0}}.clamp({bounds})")

    def lower(self, g, node, inputs, types, output):
        dtype = types[0].dtype
        low = "" if self.min is None else g.const(self.min, dtype, "min")
        high = "" if self.max is None else g.const(self.max, dtype, "max")
        return g.op("Clip", [inputs[0], low, high] if high else [inputs[0], low])


class Exp(Activation):
    """e to the power x (Swin V2's learned logit scale is a logarithm)."""

    kind = "exp"
    torch_module, torch_function = "", "torch.exp"
    foreign = Foreign(pytorch=("exp",))
    onnx_op = "Exp"


class HardSigmoid(Activation):
    """relu6(x + 3) / 6: a piecewise-linear sigmoid (MobileNetV3's gates)."""

    kind = "hardsigmoid"
    torch_module, torch_function = "nn.Hardsigmoid", "F.hardsigmoid"
    foreign = Foreign(pytorch=("Hardsigmoid",), pytorch_args=("inplace",))

    def lower(self, g, node, inputs, types, output):
        return g.op("HardSigmoid", inputs, alpha=1.0 / 6.0, beta=0.5)


class HardSwish(Activation):
    """x * relu6(x + 3) / 6 (MobileNetV3)."""

    kind = "hardswish"
    torch_module, torch_function = "nn.Hardswish", "F.hardswish"
    foreign = Foreign(pytorch=("Hardswish",), pytorch_args=("inplace",))

    def lower(self, g, node, inputs, types, output):
        if g.opset >= 14:
            return g.op("HardSwish", inputs)
        gate = g.op("HardSigmoid", inputs, alpha=1.0 / 6.0, beta=0.5)  # HardSwish: opset 14
        return g.op("Mul", [inputs[0], gate])


class GELU(Activation):
    """x * Phi(x), Phi the standard normal CDF; `approximate="tanh"` uses the tanh formula."""

    kind = "gelu"
    foreign = Foreign(pytorch=("GELU",), pytorch_args=("approximate",))

    approximate: Literal["none", "tanh"] = "none"

    def torch_form(self, inputs, output):
        if self.approximate == "tanh":
            return TorchForm(Ctor("nn.GELU", {"approximate": "tanh"}), function='F.gelu({0}, approximate="tanh")')
        return TorchForm(Ctor("nn.GELU"), function="F.gelu({0})")

    def lower(self, g, node, inputs, types, output):
        if g.opset >= 20:
            return g.op("Gelu", inputs, approximate=self.approximate)
        x, dtype = inputs[0], types[0].dtype
        if self.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            cube = g.op("Mul", [g.op("Mul", [x, x]), x])
            inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, dtype, "c")])])
            core = g.op("Tanh", [g.op("Mul", [inner, g.const(0.7978845608028654, dtype, "k")])])
        else:  # 0.5 x (1 + erf(x / sqrt(2)))
            core = g.op("Erf", [g.op("Div", [x, g.const(1.4142135623730951, dtype, "sqrt2")])])
        one_plus = g.op("Add", [core, g.const(1.0, dtype, "one")])
        half_x = g.op("Mul", [x, g.const(0.5, dtype, "half")])
        return g.op("Mul", [half_x, one_plus])


class SiLU(Activation):
    """x * sigmoid(x), also called swish (EfficientNet)."""

    kind = "silu"
    torch_module, torch_function = "nn.SiLU", "F.silu"
    foreign = Foreign(pytorch=("SiLU",), pytorch_args=("inplace",))

    def lower(self, g, node, inputs, types, output):
        return g.op("Mul", [inputs[0], g.op("Sigmoid", inputs)])


class ELU(Activation):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    kind = "elu"
    foreign = Foreign(pytorch=("ELU",), pytorch_args=("alpha", "inplace"), keras=("ELU",), keras_args=("alpha",))
    positional = ("alpha",)

    alpha: float = 1.0

    def torch_form(self, inputs, output):
        values = {"alpha": self.alpha} if self.alpha != 1.0 else {}
        return TorchForm(Ctor("nn.ELU", values, 1), function=f"F.elu({{0}}, {self.alpha!r})")

    def lower(self, g, node, inputs, types, output):
        return g.op("Elu", inputs, alpha=self.alpha)


class PReLU(Activation):
    """x if x > 0 else a * x, with a learned slope `a`: one shared (`num_parameters=1`) or one
    per channel (`num_parameters` = the channels). Its parameter is `weight`, as in PyTorch."""

    channels_first = True  # its slope broadcasts as [C, 1, 1]

    kind = "prelu"
    unlaid_inputs = False  # reads the channel axis
    foreign = Foreign(pytorch=("PReLU",), pytorch_args=("num_parameters", "init"), keras=("PReLU",))
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
        return {"weight": ParamSpec((self.num_parameters,), init="fill", scale=self.init)}

    def torch_form(self, inputs, output):
        values = {"num_parameters": self.num_parameters}
        if self.init != 0.25:
            values["init"] = self.init
        return TorchForm(Ctor("nn.PReLU", values))

    def lower(self, g, node, inputs, types, output):
        # the slope broadcasts over (N, C, spatial): shape it [C, 1, 1]
        t = types[0]
        shape = [self.num_parameters] + [1] * (t.rank - 2)
        slope = g.op("Reshape", [g.param("weight"), g.const(shape, name="slope_shape")])
        return g.op("PRelu", [inputs[0], slope])
