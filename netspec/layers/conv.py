"""Convolution layers."""

from __future__ import annotations

from netspec.layers.base import Layer, Padding2, ParamSpec, PositiveInt, Size2
from netspec.shapes import expand, resolve_padding, windows
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


class Conv(Layer):
    """2-D convolution over [N, C, H, W] (or NHWC), as PyTorch's `nn.Conv2d`.

    `in_channels` comes from the input; `groups` splits channels into independent groups
    (`groups = in_channels` is a depthwise convolution).
    """

    kind = "conv"
    family = "conv"
    positional = ("out_channels", "kernel")
    aliases = {"kernel_size": "kernel"}

    out_channels: PositiveInt
    kernel: Size2
    stride: Size2 = 1
    padding: Padding2 = 0
    dilation: Size2 = 1
    groups: PositiveInt = 1
    bias: bool = True

    def _windows(self, t: TensorType):
        kernel, stride, dilation = expand(self.kernel, 2), expand(self.stride, 2), expand(self.dilation, 2)
        pads = resolve_padding(self.padding, kernel, stride, dilation, t.spatial)
        return windows(t.spatial, kernel, stride, dilation, pads)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 4, "[N, C, H, W]",
                          hint="conv is 2-D; flatten only after the convolutions" if t.rank == 2 else None)
        if t.channels % self.groups:
            raise ShapeError(f"input channels {t.channels} are not divisible by groups={self.groups}",
                             rule="in_channels % groups == 0")
        if self.out_channels % self.groups:
            raise ShapeError(f"out_channels {self.out_channels} is not divisible by groups={self.groups}",
                             rule="out_channels % groups == 0")
        sizes = tuple(w.out for w in self._windows(t))
        return t.with_axes(channels=self.out_channels, spatial=sizes)

    def parameters(self, inputs, output):
        (t,) = inputs
        k = expand(self.kernel, 2)
        params = {"weight": ParamSpec((self.out_channels, t.channels // self.groups, *k))}
        if self.bias:
            params["bias"] = ParamSpec((self.out_channels,))
        return params

    def macs(self, inputs, output):
        (t,) = inputs
        kh, kw = expand(self.kernel, 2)
        return output.sample_elements() * (t.channels // self.groups) * kh * kw

    def describe(self, inputs):
        extra = f" g{self.groups}" if self.groups != 1 else ""
        return describe_window("conv", self.kernel, self.stride, self.padding, self.dilation, extra)
