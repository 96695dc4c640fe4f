"""Convolution layers."""


from netspec.layers.base import (Foreign, Layer, NonNegative2, Padding2, PositiveInt, Refusal, Size2, explain_counts,
                                 explain_windows, fan_in_uniform)
from netspec.shapes import AXIS_NAMES, expand, resolve_padding, transposed_window, windows
from netspec.types import ShapeError, TensorType


def describe_window(kind: str, kernel, stride, padding, dilation=1, extra: str = "") -> str:
    """`conv 11x11 /4 pad 2`: the kernel, then only what differs from the defaults."""
    k = expand(kernel, 2)
    text = f"{kind} {'x'.join(map(str, k))}"
    s = expand(stride, 2)
    if s != (1, 1):
        text += f" /{s[0]}" if s[0] == s[1] else f" /{s[0]}x{s[1]}"
    if isinstance(padding, str):
        text += f" pad {padding}"
    elif padding != 0 and set(expand(padding, 2)) != {0}:
        p = expand(padding, 2)
        text += f" pad {p[0]}" if len(set(p)) == 1 else f" pad {','.join(map(str, p))}"
    d = expand(dilation, 2)
    if d != (1, 1):
        text += f" dil {d[0]}" if d[0] == d[1] else f" dil {d[0]}x{d[1]}"
    return text + extra


def check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    if in_channels % groups:
        raise ShapeError(f"input channels {in_channels} are not divisible by groups={groups}",
                         rule="in_channels % groups == 0", attributes=("groups",))
    if out_channels % groups:
        raise ShapeError(f"out_channels {out_channels} is not divisible by groups={groups}",
                         rule="out_channels % groups == 0", attributes=("out_channels", "groups"))


class ConvBase(Layer):
    """What convolution and transposed convolution share: PyTorch's attribute names and
    defaults (padding differs, so each declares its own), a weight and an optional bias."""

    family = "conv"
    positional = ("out_channels", "kernel")
    aliases = {"kernel_size": "kernel"}

    out_channels: PositiveInt
    kernel: Size2
    stride: Size2 = 1
    dilation: Size2 = 1
    groups: PositiveInt = 1
    bias: bool = True

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
    """2-D convolution over [N, C, H, W] (or NHWC), as PyTorch's `nn.Conv2d`.

    `in_channels` comes from the input; `groups` splits channels into independent groups
    (`groups = in_channels` is a depthwise convolution).
    """

    kind = "conv"
    foreign = Foreign(
        pytorch=("Conv2d", "LazyConv2d"),
        pytorch_args=("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                      "groups", "bias"),
        keras=("Conv2D", "Convolution2D"), keras_args=("filters", "kernel_size", "strides", "padding"),
        keras_keywords={"filters": "out_channels", "strides": "stride", "dilation_rate": "dilation",
                        "use_bias": "bias"},
        inherited={"in_channels": "input channels"},
        pytorch_traps={"padding_mode": "netspec's conv pads with zeros"})

    padding: Padding2 = 0

    def _windows(self, t: TensorType):
        kernel, stride, dilation = expand(self.kernel, 2), expand(self.stride, 2), expand(self.dilation, 2)
        return windows(t.spatial, kernel, stride, dilation, self._pads(t))

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 4, "[N, C, H, W]",
                          hint="conv is 2-D; flatten only after the convolutions" if t.rank == 2 else None)
        check_groups(t.channels, self.out_channels, self.groups)
        sizes = tuple(w.out for w in self._windows(t))
        return t.with_axes(channels=self.out_channels, spatial=sizes)

    def parameters(self, inputs, output):
        (t,) = inputs
        k = expand(self.kernel, 2)
        fan_in = t.channels // self.groups * k[0] * k[1]
        return self.weight_and_bias((self.out_channels, t.channels // self.groups, *k), fan_in)

    def macs(self, inputs, output):
        (t,) = inputs
        kh, kw = expand(self.kernel, 2)
        return output.sample_elements() * (t.channels // self.groups) * kh * kw

    def describe(self, inputs):
        extra = f" g{self.groups}" if self.groups != 1 else ""
        return describe_window("conv", self.kernel, self.stride, self.padding, self.dilation, extra)

    def lower(self, g, node, inputs, types, output):
        pads = [p for p in zip(*self._pads(types[0]))]
        return g.op("Conv", self.onnx_inputs(g, inputs[0]), kernel_shape=list(expand(self.kernel, 2)),
                    strides=list(expand(self.stride, 2)), dilations=list(expand(self.dilation, 2)),
                    pads=[v for side in pads for v in side], group=self.groups)

    def explain(self, inputs, output):
        (t,) = inputs
        lines, notes = explain_windows(self._windows(t))
        k, cin = expand(self.kernel, 2), t.channels // self.groups
        macs = [*map(str, output.spatial), str(self.out_channels), f"({cin} * {k[0]} * {k[1]})"]
        return lines + self.explain_counts(inputs, output, (self.out_channels, cin, *k), macs), notes

    def geometry(self, inputs):
        kernel, stride, dilation = expand(self.kernel, 2), expand(self.stride, 2), expand(self.dilation, 2)
        return [("window", d * (k - 1) + 1, s, begin)
                for k, s, d, (begin, _) in zip(kernel, stride, dilation, self._pads(inputs[0]))]

    def _pads(self, t: TensorType) -> list[tuple[int, int]]:
        kernel, stride, dilation = expand(self.kernel, 2), expand(self.stride, 2), expand(self.dilation, 2)
        return resolve_padding(self.padding, kernel, stride, dilation, t.spatial)


class ConvTranspose(ConvBase):
    """2-D transposed convolution (the up-sampling of decoders), as PyTorch's
    `nn.ConvTranspose2d`: `out = (in-1)*stride - 2*padding + dilation*(kernel-1) +
    output_padding + 1` on each spatial axis."""

    kind = "conv_transpose"
    foreign = Foreign(
        pytorch=("ConvTranspose2d", "LazyConvTranspose2d"),
        pytorch_args=("in_channels", "out_channels", "kernel_size", "stride", "padding",
                      "output_padding", "groups", "bias", "dilation"),
        keras=("Conv2DTranspose", "Convolution2DTranspose"),
        keras_args=("filters", "kernel_size", "strides", "padding", "output_padding"),
        keras_keywords={"filters": "out_channels", "strides": "stride", "dilation_rate": "dilation",
                        "use_bias": "bias"},
        inherited={"in_channels": "input channels"},
        pytorch_traps={"padding_mode": "netspec's conv_transpose pads with zeros, the one mode "
                                       "PyTorch's ConvTranspose2d takes too"})

    padding: NonNegative2 = 0
    output_padding: NonNegative2 = 0

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 4, "[N, C, H, W]")
        check_groups(t.channels, self.out_channels, self.groups)
        sizes = []
        parts = zip(t.spatial, expand(self.kernel, 2), expand(self.stride, 2), expand(self.dilation, 2),
                    expand(self.padding, 2), expand(self.output_padding, 2))
        for axis, (size, k, s, d, p, op) in enumerate(parts):
            try:
                sizes.append(transposed_window(size, k, s, d, p, op))
            except ShapeError as exc:
                raise ShapeError(f"{AXIS_NAMES[2][axis]}: {exc.message}", exc.rule, exc.hint) from None
        return t.with_axes(channels=self.out_channels, spatial=tuple(sizes))

    def explain(self, inputs, output):
        (t,) = inputs
        lines = []
        parts = zip("HW", t.spatial, output.spatial, expand(self.kernel, 2), expand(self.stride, 2),
                    expand(self.dilation, 2), expand(self.padding, 2), expand(self.output_padding, 2))
        for axis, size, out, k, s, d, p, op in parts:
            lines.append(f"{axis}: ({size} - 1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {out}")
        k, cout = expand(self.kernel, 2), self.out_channels // self.groups
        macs = [*map(str, t.spatial), str(t.channels), f"({cout} * {k[0]} * {k[1]})"]
        return lines + self.explain_counts(inputs, output, (t.channels, cout, *k), macs), []

    def geometry(self, inputs):
        kernel, stride, dilation = expand(self.kernel, 2), expand(self.stride, 2), expand(self.dilation, 2)
        return [("transposed", d * (k - 1) + 1, s, p)
                for k, s, d, p in zip(kernel, stride, dilation, expand(self.padding, 2))]

    def parameters(self, inputs, output):
        (t,) = inputs
        k = expand(self.kernel, 2)
        fan_in = self.out_channels // self.groups * k[0] * k[1]  # PyTorch: weight.size(1) * kh * kw
        return self.weight_and_bias((t.channels, self.out_channels // self.groups, *k), fan_in)

    def macs(self, inputs, output):
        # every input element is multiplied into a kh x kw patch of out_channels/groups outputs
        kh, kw = expand(self.kernel, 2)
        return inputs[0].sample_elements() * (self.out_channels // self.groups) * kh * kw

    def describe(self, inputs):
        text = describe_window("conv_transpose", self.kernel, self.stride, self.padding, self.dilation)
        op = expand(self.output_padding, 2)
        if set(op) != {0}:
            text += f" out_pad {op[0]}" if op[0] == op[1] else f" out_pad {op[0]},{op[1]}"
        return text + (f" g{self.groups}" if self.groups != 1 else "")

    def refusal(self, inputs, output, opset):
        # PyTorch allows output_padding < max(stride, dilation); ONNX's ConvTranspose
        # (onnxruntime at run time) only output_padding < stride
        if any(p >= s for p, s in zip(expand(self.output_padding, 2), expand(self.stride, 2))):
            return Refusal("output_padding must be smaller than the stride for ONNX's "
                           "ConvTranspose (PyTorch also allows it below the dilation)",
                           hint="lower output_padding, or pad the result with `pad`")
        return None

    def lower(self, g, node, inputs, types, output):
        pads = list(expand(self.padding, 2))
        return g.op("ConvTranspose", self.onnx_inputs(g, inputs[0]), kernel_shape=list(expand(self.kernel, 2)),
                    strides=list(expand(self.stride, 2)), dilations=list(expand(self.dilation, 2)),
                    pads=pads + pads, output_padding=list(expand(self.output_padding, 2)),
                    group=self.groups)
