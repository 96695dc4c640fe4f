"""Pooling layers."""

from __future__ import annotations

from netspec.layers.base import Expect, Layer, Padding2, PositiveFloat, Size2
from typing import Annotated, Literal

from netspec.layers.conv import describe_window
from netspec.shapes import expand, resolve_padding, windows
from netspec.types import ShapeError, TensorType


class WindowPool(Layer):
    """Base of max and average pooling: a kernel sliding with a stride (default: the kernel)."""

    family = "pool"
    positional = ("kernel", "stride")
    aliases = {"kernel_size": "kernel"}

    kernel: Size2
    stride: Size2 | None = None
    padding: Padding2 = 0
    ceil_mode: bool = False

    def window_args(self):
        kernel = expand(self.kernel, 2)
        stride = expand(self.stride, 2) if self.stride is not None else kernel
        return kernel, stride, expand(getattr(self, "dilation", 1), 2)  # avgpool has no dilation

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 4, "[N, C, H, W]")
        kernel, stride, dilation = self.window_args()
        pads = resolve_padding(self.padding, kernel, stride, dilation, t.spatial)
        for k, (begin, end) in zip(kernel, pads):
            if isinstance(self.padding, str):
                break
            if max(begin, end) > k // 2:
                raise ShapeError(f"padding {max(begin, end)} is more than half the kernel ({k})",
                                 rule="pooling padding <= kernel // 2 (as in PyTorch)")
        out = windows(t.spatial, kernel, stride, dilation, pads, self.ceil_mode)
        return t.with_axes(spatial=tuple(w.out for w in out))

    def describe(self, inputs):
        kernel, stride, dilation = self.window_args()
        extra = " ceil" if self.ceil_mode else ""
        return describe_window(self.kind, kernel, stride, self.padding, dilation, extra)


class MaxPool(WindowPool):
    """Max pooling, as PyTorch's `nn.MaxPool2d`."""

    kind = "maxpool"

    dilation: Size2 = 1


class AvgPool(WindowPool):
    """Average pooling, as PyTorch's `nn.AvgPool2d`; `count_include_pad` counts padded zeros in
    the average."""

    kind = "avgpool"

    count_include_pad: bool = True


class LPPool(WindowPool):
    """Power-average pooling, as PyTorch's `nn.LPPool2d`: (sum of x^p over the window)^(1/p).
    p = 1 is sum pooling (average pooling times the window size); as p grows it tends to max
    pooling. No padding, as in PyTorch."""

    kind = "lppool"
    positional = ("norm_type", "kernel", "stride")

    norm_type: PositiveFloat
    padding: Annotated[Literal[0], Expect("0 (lppool has no padding, as in PyTorch)")] = 0

    def describe(self, inputs):
        return f"lppool p={self.norm_type:g} " + super().describe(inputs).split(" ", 1)[1]


class GlobalPool(Layer):
    """Base of the global pools: [N, C, H, W] -> [N, C, 1, 1] (in the declared layout)."""

    family = "pool"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if not t.layout.spatial:
            raise ShapeError(f"expects an input with spatial axes, got {t}", rule="rank >= 3")
        return t.with_axes(spatial=(1,) * len(t.spatial))


class GlobalAvgPool(GlobalPool):
    """Average over all spatial positions: [N, C, H, W] -> [N, C, 1, 1]."""

    kind = "global_avgpool"


class GlobalMaxPool(GlobalPool):
    """Maximum over all spatial positions: [N, C, H, W] -> [N, C, 1, 1]."""

    kind = "global_maxpool"


class AdaptiveAvgPool(Layer):
    """Average pooling to any output size, as PyTorch's `nn.AdaptiveAvgPool2d`: output cell i
    averages input rows floor(i*in/out) to ceil((i+1)*in/out). When the input size is a multiple
    of the output size, every window has the same size and stride, so it is an ordinary average
    pool (and lowers to one); otherwise the windows differ and overlap."""

    kind = "adaptive_avgpool"
    family = "pool"
    positional = ("output_size",)

    output_size: Size2

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 4, "[N, C, H, W]")
        return t.with_axes(spatial=expand(self.output_size, 2))

    def describe(self, inputs):
        return "adaptive_avgpool " + "x".join(map(str, expand(self.output_size, 2)))
