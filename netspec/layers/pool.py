"""Pooling layers."""

from __future__ import annotations

from netspec.layers.base import Layer, Padding2, Size2
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


class GlobalAvgPool(Layer):
    """Average over all spatial positions: [N, C, H, W] -> [N, C, 1, 1]."""

    kind = "global_avgpool"
    family = "pool"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if not t.layout.spatial:
            raise ShapeError(f"expects an input with spatial axes, got {t}", rule="rank >= 3")
        return t.with_axes(spatial=(1,) * len(t.spatial))


class AdaptiveAvgPool(Layer):
    """Average pooling to a fixed output size, as PyTorch's `nn.AdaptiveAvgPool2d`."""

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
