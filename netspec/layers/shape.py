"""Layers that reshape or pass tensors through."""


from typing import Annotated, Literal

from pydantic import Field

from netspec.layers.base import Ctor, Expect, Foreign, Layer, Probability, Refusal, TorchForm
from netspec.shapes import axis_name, resolve_padding
from netspec.types import ANY_DTYPE, DTYPES, DTypeError, ShapeError, TensorType, representable

_NonNegative = Annotated[int, Field(ge=0)]
# one size, one per spatial axis, or begins then ends (six for a 3-D input); the shape rule
# checks the count against the input's spatial axes
PadSpec = Annotated[
    _NonNegative | Annotated[tuple[_NonNegative, ...], Field(min_length=1, max_length=6)],
    Field(), Expect("a non-negative integer, a pair (h, w), or four values (top, left, bottom, right) "
                    "(a 1-D input: one value or (left, right); a 3-D input: (d, h, w) or six values "
                    "(front, top, left, back, bottom, right))")]


# netspec's dtypes as torch names them
TORCH_DTYPES = {"f16": "torch.float16", "bf16": "torch.bfloat16", "f32": "torch.float32", "f64": "torch.float64",
                "i8": "torch.int8", "u8": "torch.uint8", "i16": "torch.int16", "i32": "torch.int32",
                "i64": "torch.int64", "bool": "torch.bool"}

# torchvision.ops.StochasticDepth, which torch itself does not have, as the generated file holds it
STOCHASTIC_DEPTH = '''class StochasticDepth(nn.Module):
    """Drops the whole input with probability p while training, per sample ("row") or for
    the whole batch ("batch"), scaling what is kept by 1 / (1 - p): torchvision's
    ops.StochasticDepth. The identity in eval mode."""

    def __init__(self, p, mode):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise
'''


class Dropout(Layer):
    """Zeroes elements with probability `p` while training; the identity at inference."""

    kind = "dropout"
    foreign = Foreign(pytorch=("Dropout", "Dropout2d"), pytorch_args=("p", "inplace"), keras=("Dropout",),
                      keras_args=("rate",), keras_keywords={"rate": "p"})
    family = "shape"
    dtypes = ANY_DTYPE
    positional = ("p",)

    p: Probability = 0.5

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def describe(self, inputs):
        return f"dropout p={self.p:g}"

    def torch_form(self, inputs, output):
        return TorchForm(Ctor("nn.Dropout", {"p": self.p}, 1, {"p": 0.5}))

    def lower(self, g, node, inputs, types, output):
        return g.op("Identity", inputs)  # inference: dropout does nothing


class StochasticDepth(Layer):
    """Drops whole residual branches with probability `p` while training (torchvision's
    `ops.StochasticDepth`, in EfficientNet and ConvNeXt: `mode` "row" drops per sample,
    "batch" the whole batch); the identity at inference."""

    kind = "stochastic_depth"
    family = "shape"
    positional = ("p", "mode")
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch=("StochasticDepth",), pytorch_args=("p", "mode"))

    p: Probability = 0.0
    mode: Literal["row", "batch"] = "row"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def describe(self, inputs):
        return f"stochastic_depth p={self.p:g}"

    def torch_form(self, inputs, output):
        return TorchForm(Ctor("StochasticDepth", {"p": self.p, "mode": self.mode}, 2),
                         helpers={"StochasticDepth": STOCHASTIC_DEPTH})

    def lower(self, g, node, inputs, types, output):
        return g.op("Identity", inputs)  # inference: nothing is dropped


class Identity(Layer):
    """Passes its input through unchanged (a placeholder, as PyTorch's `nn.Identity`)."""

    kind = "identity"
    unlaid_inputs = True
    foreign = Foreign(pytorch=("Identity",))
    family = "shape"
    dtypes = ANY_DTYPE

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def torch_form(self, inputs, output):
        return TorchForm(Ctor("nn.Identity"), function="{0}")

    def lower(self, g, node, inputs, types, output):
        return g.op("Identity", inputs)


class Pad(Layer):
    """Pads the spatial axes, of a 1-D, 2-D or 3-D input: `padding` is one size for all sides,
    one per axis for both its sides (a pair (h, w); (d, h, w)), or begins then ends ((top, left,
    bottom, right); (left, right) for 1-D; (front, top, left, back, bottom, right) for 3-D), as
    ONNX's `pads` order them. `mode` "constant" fills with `value`;
    "reflect" mirrors without repeating the edge (needs padding < size); "replicate" repeats the
    edge; "circular" wraps around (needs padding <= size)."""

    channels_first = True  # its pads are of (N, C, spatial)

    kind = "pad"
    # (the 3-D modules are not listed: their six sizes, last axis first, would need reordering
    # by rank, which the translation of a PyTorch call does not know; the 1-D ones' (left,
    # right) are netspec's order already)
    foreign = Foreign(pytorch=("ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d",
                               "CircularPad2d", "ZeroPad1d", "ConstantPad1d", "ReflectionPad1d",
                               "ReplicationPad1d", "CircularPad1d"),
                      pytorch_args=("padding", "value"),
                      keras=("ZeroPadding2D", "ZeroPadding1D", "ZeroPadding3D"), keras_args=("padding",),
                      implies={"ReflectionPad2d": {"mode": '"reflect"'},
                               "ReplicationPad2d": {"mode": '"replicate"'},
                               "CircularPad2d": {"mode": '"circular"'},
                               "ReflectionPad1d": {"mode": '"reflect"'},
                               "ReplicationPad1d": {"mode": '"replicate"'},
                               "CircularPad1d": {"mode": '"circular"'}},
                      # F.pad(x, pad): its sizes from the last axis back, (left, right, top, bottom)
                      pytorch_traps={"pad": "PyTorch's `pad` lists the sizes from the last axis "
                                            "back, (left, right, top, bottom); netspec's `padding` "
                                            "is (top, left, bottom, right)"})
    family = "shape"
    positional = ("padding",)
    dtypes = ANY_DTYPE

    padding: PadSpec
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: float = 0.0

    def infer_dtype(self, inputs, names=()):
        dtype = super().infer_dtype(inputs, names)
        if self.mode == "constant" and not representable(self.value, dtype):
            what = "0 or 1" if dtype == "bool" else "an integer in its range" if dtype[0] in "iu" \
                else "a number in its range"
            raise DTypeError(f"value={self.value:g} is not a value of the input's dtype {dtype}",
                             rule=f"a constant pad fills with a value of the input's dtype ({what})",
                             hint="choose a value the dtype holds, or cast the input first")
        return dtype

    def _pads(self, t: TensorType) -> list[tuple[int, int]]:
        letters = self.require_spatial(t)
        rank = len(letters)
        return resolve_padding(self.padding, (1,) * rank, (1,) * rank, (1,) * rank, t.spatial, letters)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        pads = self._pads(t)
        for axis, size, (begin, end) in zip(self.require_spatial(t), t.spatial, pads):
            widest = max(begin, end)
            where = f"{axis_name(axis)}: " if len(t.spatial) > 1 else ""
            if self.mode == "reflect" and widest >= size:
                raise ShapeError(f"{where}reflect padding {widest} needs an input larger than it (size {size})",
                                 rule="reflect: padding < size", attributes=("padding",))
            if self.mode == "circular" and widest > size:
                raise ShapeError(f"{where}circular padding {widest} is larger than the input (size {size})",
                                 rule="circular: padding <= size", attributes=("padding",))
        return t.with_axes(spatial=tuple(size + b + e for size, (b, e) in zip(t.spatial, pads)))

    def describe(self, inputs):
        shown = self.padding if isinstance(self.padding, int) else ",".join(map(str, self.padding))
        return f"pad {shown} {self.mode}"

    def geometry(self, inputs):
        return [("window", 1, 1, begin) for begin, _ in self._pads(inputs[0])]

    def torch_form(self, inputs, output):
        sizes = tuple(v for b, e in reversed(self._pads(inputs[0])) for v in (b, e))
        mode = "" if self.mode == "constant" else f', mode="{self.mode}"'
        value = f", value={self.value!r}" if self.mode == "constant" and self.value != 0 else ""
        return TorchForm(function=f"F.pad({{0}}, {sizes!r}{mode}{value})")

    _ONNX_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

    def refusal(self, inputs, output, opset):
        if self.mode == "circular" and opset < 19:
            return Refusal("circular padding (ONNX Pad mode 'wrap') needs opset 19",
                           hint="export with --opset 19 or later")
        return None

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        pads = self._pads(t)  # ONNX's pads: begins then ends of every axis, canonical (N, C, spatial...)
        onnx_pads = [0, 0] + [b for b, _ in pads] + [0, 0] + [e for _, e in pads]
        args = [inputs[0], g.const(onnx_pads, name="pads")]
        if self.mode == "constant":
            args.append(g.const(self.value, t.dtype, "value"))
        return g.op("Pad", args, mode=self._ONNX_MODES[self.mode])


DType = Annotated[Literal[tuple(DTYPES)], Field(),
                  Expect("a dtype: " + ", ".join(DTYPES) + ' (written `f16` or `"f16"`)')]


class Cast(Layer):
    """Converts the values to another dtype, as PyTorch's `x.to(dtype)`: floats to integers
    round toward zero, anything to bool is `x != 0`, bool to numbers is 0 or 1; a value the
    target cannot hold (a float past its range into an integer) is undefined, as in ONNX. The
    dtype is written bare or quoted: `x -> cast(f16)`, `cast(x, "i64")`."""

    kind = "cast"
    unlaid_inputs = True
    family = "shape"
    positional = ("to",)
    aliases = {"dtype": "to"}
    dtypes = ANY_DTYPE

    to: DType

    def infer_dtype(self, inputs, names=()):
        return self.to

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def describe(self, inputs):
        return f"cast {inputs[0].dtype} -> {self.to}" if inputs else f"cast {self.to}"

    def torch_form(self, inputs, output):
        if inputs[0].dtype == self.to:
            return TorchForm(function="{0}")
        return TorchForm(function=f"{{0}}.to({TORCH_DTYPES[self.to]})")

    def lower(self, g, node, inputs, types, output):
        from netspec.lower import ONNX_DTYPES

        if types[0].dtype == self.to:  # nothing to convert: the layer's value is its input
            return inputs[0]
        return g.op("Cast", inputs, to=ONNX_DTYPES[self.to])
