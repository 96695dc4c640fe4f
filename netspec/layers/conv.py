"""Convolution layers, over 1, 2 or 3 spatial axes: one class per kind serves [N, C, L],
[N, C, H, W] and [N, C, D, H, W] (and every other order of those axes), as PyTorch's
Conv1d/2d/3d and ConvTranspose1d/2d/3d do."""


from math import prod
from typing import Any, ClassVar

from netspec.layers.base import (Ctor, Foreign, Layer, NonNegativeN, PaddingN, PositiveInt, Refusal, SizeN, TorchForm,
                                 compact, explain_counts, explain_windows, fan_in_uniform, torch_dims)
from netspec.shapes import axis_name, expand, resolve_padding, transposed_windows, windows
from netspec.types import ShapeError, TensorType


def _per_axis(values: tuple) -> str:
    """`2` when every axis agrees, else `2x1x1`."""
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def describe_window(kind: str, kernel, stride, padding, dilation=1, extra: str = "", rank: int = 2) -> str:
    """`conv 11x11 /4 pad 2`, `conv 1x3x3 /1x2x2`: the kernel, then only what differs from the
    defaults (`rank`: the input's spatial axes)."""
    k = expand(kernel, rank)
    text = f"{kind} {'x'.join(map(str, k))}"
    s = expand(stride, rank)
    if set(s) != {1}:
        text += f" /{_per_axis(s)}"
    if isinstance(padding, str):
        text += f" pad {padding}"
    elif padding != 0 and set(expand(padding, rank)) != {0}:
        p = expand(padding, rank)
        text += f" pad {p[0]}" if len(set(p)) == 1 else f" pad {','.join(map(str, p))}"
    d = expand(dilation, rank)
    if set(d) != {1}:
        text += f" dil {_per_axis(d)}"
    return text + extra


def check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    if in_channels % groups:
        raise ShapeError(f"input channels {in_channels} are not divisible by groups={groups}",
                         rule="in_channels % groups == 0", attributes=("groups",))
    if out_channels % groups:
        raise ShapeError(f"out_channels {out_channels} is not divisible by groups={groups}",
                         rule="out_channels % groups == 0", attributes=("out_channels", "groups"))


def torch_padding(pads: list[tuple[int, int]], value: float | None = None) -> tuple[Any, str]:
    """PyTorch's `padding` for begins and ends per spatial axis, and the call that feeds the
    module (`{m}({0})`); padding that differs between an axis's two sides is an F.pad first
    (its sizes from the last axis back), `value` its fill (None: zeros)."""
    if all(b == e for b, e in pads):
        return compact(b for b, _ in pads), "{m}({0})"
    sizes = tuple(v for b, e in reversed(pads) for v in (b, e))
    fill = "" if value is None else f", value={value!r}"
    return 0, f"{{m}}(F.pad({{0}}, {sizes!r}{fill}))"


_FLAT_HINT = "a convolution slides over spatial axes: flatten only after the convolutions"


class ConvBase(Layer):
    """What convolution and transposed convolution share: PyTorch's attribute names and
    defaults (padding differs, so each declares its own), a weight and an optional bias, and
    the per-axis attributes read against the input's spatial axes."""

    channels_first = True  # ONNX's operator reads (N, C, spatial)

    family = "conv"
    positional = ("out_channels", "kernel")
    aliases = {"kernel_size": "kernel"}

    out_channels: PositiveInt
    kernel: SizeN
    stride: SizeN = 1
    dilation: SizeN = 1
    groups: PositiveInt = 1
    bias: bool = True

    def axes(self, t: TensorType) -> str:
        """The input's spatial letters (D, H, W or L), or a ShapeError for a rank conv cannot take."""
        return self.require_spatial(t, hint=_FLAT_HINT if t.rank == 2 else None)

    def per_axis(self, t: TensorType, *names: str) -> list[tuple]:
        """The attributes `names` as one value per spatial axis of `t`."""
        letters = self.axes(t)
        return [expand(getattr(self, name), len(letters), name, letters) for name in names]

    def kernel_of(self, t: TensorType) -> tuple[int, ...]:
        return expand(self.kernel, len(t.spatial))

    def weight_and_bias(self, shape: tuple[int, ...], fan_in: int) -> dict:
        params = {"weight": fan_in_uniform(shape, fan_in)}
        if self.bias:
            params["bias"] = fan_in_uniform((self.out_channels,), fan_in)
        return params

    def onnx_inputs(self, g, x: str) -> list[str]:
        return [x, g.param("weight")] + ([g.param("bias")] if self.bias else [])

    def explain_counts(self, inputs, output, weight_shape: tuple[int, ...], mac_terms: list[str]) -> list[str]:
        terms = [" * ".join(map(str, weight_shape))] + ([str(self.out_channels)] if self.bias else [])
        return explain_counts(self.parameters(inputs, output), terms, self.macs(inputs, output), mac_terms)


class Conv(ConvBase):
    """Convolution over 1, 2 or 3 spatial axes ([N, C, L], [N, C, H, W], [N, C, D, H, W], or
    any order of them), as PyTorch's `nn.Conv1d`, `nn.Conv2d` and `nn.Conv3d`.

    `in_channels` comes from the input; `groups` splits channels into independent groups
    (`groups = in_channels` is a depthwise convolution). Kernel, stride and dilation are one
    value for every axis or one per axis (`(1, 3, 3)` then `(3, 1, 1)`: R(2+1)D).
    """

    kind = "conv"
    foreign = Foreign(
        pytorch=("Conv2d", "Conv1d", "Conv3d", "LazyConv2d", "LazyConv1d", "LazyConv3d"),
        pytorch_args=("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                      "groups", "bias"),
        keras=("Conv2D", "Convolution2D", "Conv1D", "Convolution1D", "Conv3D", "Convolution3D"),
        keras_args=("filters", "kernel_size", "strides", "padding"),
        keras_keywords={"filters": "out_channels", "strides": "stride", "dilation_rate": "dilation",
                        "use_bias": "bias"},
        inherited={"in_channels": "input channels"},
        pytorch_traps={"padding_mode": "netspec's conv pads with zeros"})

    padding: PaddingN = 0

    def _windows(self, t: TensorType):
        letters = self.axes(t)
        kernel, stride, dilation = self.per_axis(t, "kernel", "stride", "dilation")
        return windows(t.spatial, kernel, stride, dilation, self._pads(t), letters=letters)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.axes(t)
        check_groups(t.channels, self.out_channels, self.groups)
        sizes = tuple(w.out for w in self._windows(t))
        return t.with_axes(channels=self.out_channels, spatial=sizes)

    def parameters(self, inputs, output):
        (t,) = inputs
        k = self.kernel_of(t)
        fan_in = t.channels // self.groups * prod(k)
        return self.weight_and_bias((self.out_channels, t.channels // self.groups, *k), fan_in)

    def macs(self, inputs, output):
        (t,) = inputs
        return output.sample_elements() * (t.channels // self.groups) * prod(self.kernel_of(t))

    def describe(self, inputs):
        extra = f" g{self.groups}" if self.groups != 1 else ""
        return describe_window("conv", self.kernel, self.stride, self.padding, self.dilation, extra,
                               len(inputs[0].spatial))

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        kernel, stride, dilation = self.per_axis(t, "kernel", "stride", "dilation")
        pads = self._pads(t)
        return g.op("Conv", self.onnx_inputs(g, inputs[0]), kernel_shape=list(kernel), strides=list(stride),
                    dilations=list(dilation), pads=[b for b, _ in pads] + [e for _, e in pads],
                    group=self.groups)

    def torch_form(self, inputs, output):
        t = inputs[0]
        kernel, stride, dilation = self.per_axis(t, "kernel", "stride", "dilation")
        padding, call = torch_padding(self._pads(t))
        values = {"in_channels": t.channels, "out_channels": self.out_channels, "kernel_size": compact(kernel)}
        extra = {"stride": compact(stride), "padding": padding, "dilation": compact(dilation),
                 "groups": self.groups, "bias": self.bias}
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}
        return TorchForm(Ctor(f"nn.Conv{torch_dims(t)}", {**values, **extra}, 3, defaults), call)

    def explain(self, inputs, output):
        (t,) = inputs
        lines, notes = explain_windows(self._windows(t), self.axes(t))
        k, cin = self.kernel_of(t), t.channels // self.groups
        macs = [*map(str, output.spatial), str(self.out_channels), f"({' * '.join(map(str, (cin, *k)))})"]
        return lines + self.explain_counts(inputs, output, (self.out_channels, cin, *k), macs), notes

    def geometry(self, inputs):
        t = inputs[0]
        kernel, stride, dilation = self.per_axis(t, "kernel", "stride", "dilation")
        return [("window", d * (k - 1) + 1, s, begin)
                for k, s, d, (begin, _) in zip(kernel, stride, dilation, self._pads(t))]

    def _pads(self, t: TensorType) -> list[tuple[int, int]]:
        letters = self.axes(t)
        kernel, stride, dilation = self.per_axis(t, "kernel", "stride", "dilation")
        return resolve_padding(self.padding, kernel, stride, dilation, t.spatial, letters)


class ConvTranspose(ConvBase):
    """Transposed convolution over 1, 2 or 3 spatial axes (the up-sampling of decoders), as
    PyTorch's `nn.ConvTranspose1d/2d/3d`: `out = (in-1)*stride - 2*padding + dilation*(kernel-1)
    + output_padding + 1` on each spatial axis."""

    kind = "conv_transpose"
    foreign = Foreign(
        pytorch=("ConvTranspose2d", "ConvTranspose1d", "ConvTranspose3d", "LazyConvTranspose2d",
                 "LazyConvTranspose1d", "LazyConvTranspose3d"),
        pytorch_args=("in_channels", "out_channels", "kernel_size", "stride", "padding",
                      "output_padding", "groups", "bias", "dilation"),
        keras=("Conv2DTranspose", "Convolution2DTranspose", "Conv1DTranspose", "Convolution1DTranspose",
               "Conv3DTranspose", "Convolution3DTranspose"),
        keras_args=("filters", "kernel_size", "strides", "padding", "output_padding"),
        keras_keywords={"filters": "out_channels", "strides": "stride", "dilation_rate": "dilation",
                        "use_bias": "bias"},
        inherited={"in_channels": "input channels"},
        pytorch_traps={"padding_mode": "netspec's conv_transpose pads with zeros, the one mode "
                                       "PyTorch's ConvTranspose2d takes too"})

    padding: NonNegativeN = 0
    output_padding: NonNegativeN = 0

    # the per-axis attributes, in the order transposed_windows takes them
    per_axis_attributes: ClassVar[tuple[str, ...]] = ("kernel", "stride", "dilation", "padding", "output_padding")

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        letters = self.axes(t)
        check_groups(t.channels, self.out_channels, self.groups)
        sizes = transposed_windows(t.spatial, *self.per_axis(t, *self.per_axis_attributes), letters=letters)
        return t.with_axes(channels=self.out_channels, spatial=tuple(sizes))

    def explain(self, inputs, output):
        (t,) = inputs
        lines = []
        parts = zip(self.axes(t), t.spatial, output.spatial, *self.per_axis(t, *self.per_axis_attributes))
        for axis, size, out, k, s, d, p, op in parts:
            lines.append(f"{axis}: ({size} - 1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {out}")
        k, cout = self.kernel_of(t), self.out_channels // self.groups
        macs = [*map(str, t.spatial), str(t.channels), f"({' * '.join(map(str, (cout, *k)))})"]
        return lines + self.explain_counts(inputs, output, (t.channels, cout, *k), macs), []

    def geometry(self, inputs):
        kernel, stride, dilation, padding = self.per_axis(inputs[0], "kernel", "stride", "dilation", "padding")
        return [("transposed", d * (k - 1) + 1, s, p) for k, s, d, p in zip(kernel, stride, dilation, padding)]

    def parameters(self, inputs, output):
        (t,) = inputs
        k = self.kernel_of(t)
        fan_in = self.out_channels // self.groups * prod(k)  # PyTorch: weight.size(1) * prod(kernel)
        return self.weight_and_bias((t.channels, self.out_channels // self.groups, *k), fan_in)

    def macs(self, inputs, output):
        # every input element is multiplied into a kernel-sized patch of out_channels/groups outputs
        t = inputs[0]
        return t.sample_elements() * (self.out_channels // self.groups) * prod(self.kernel_of(t))

    def describe(self, inputs):
        rank = len(inputs[0].spatial)
        text = describe_window("conv_transpose", self.kernel, self.stride, self.padding, self.dilation,
                               rank=rank)
        op = expand(self.output_padding, rank)
        if set(op) != {0}:
            text += f" out_pad {op[0]}" if len(set(op)) == 1 else f" out_pad {','.join(map(str, op))}"
        return text + (f" g{self.groups}" if self.groups != 1 else "")

    def refusal(self, inputs, output, opset):
        # PyTorch allows output_padding < max(stride, dilation); ONNX's ConvTranspose
        # (onnxruntime at run time) only output_padding < stride
        t = inputs[0]
        letters = self.axes(t)
        output_padding, stride = self.per_axis(t, "output_padding", "stride")
        for axis, p, s in zip(letters, output_padding, stride):
            if p >= s:
                where = f" (the {axis_name(axis)}'s is {p}, its stride {s})" if len(letters) > 1 else ""
                return Refusal("output_padding must be smaller than the stride for ONNX's "
                               f"ConvTranspose{where} (PyTorch also allows it below the dilation)",
                               hint="lower output_padding, or pad the result with `pad`")
        return None

    def torch_form(self, inputs, output):
        t = inputs[0]
        kernel, stride, dilation, padding, output_padding = self.per_axis(t, *self.per_axis_attributes)
        values = {"in_channels": t.channels, "out_channels": self.out_channels, "kernel_size": compact(kernel)}
        extra = {"stride": compact(stride), "padding": compact(padding), "output_padding": compact(output_padding),
                 "groups": self.groups, "bias": self.bias, "dilation": compact(dilation)}
        defaults = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True, "dilation": 1}
        return TorchForm(Ctor(f"nn.ConvTranspose{torch_dims(t)}", {**values, **extra}, 3, defaults))

    def lower(self, g, node, inputs, types, output):
        kernel, stride, dilation, padding, output_padding = self.per_axis(types[0], *self.per_axis_attributes)
        return g.op("ConvTranspose", self.onnx_inputs(g, inputs[0]), kernel_shape=list(kernel),
                    strides=list(stride), dilations=list(dilation), pads=list(padding) + list(padding),
                    output_padding=list(output_padding), group=self.groups)
