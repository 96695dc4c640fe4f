"""Pooling layers."""


from netspec.layers.base import Expect, Foreign, Layer, Padding2, PositiveFloat, Refusal, Size2, explain_windows
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

    def _windows(self, t: TensorType):
        kernel, stride, dilation = self.window_args()
        pads = resolve_padding(self.padding, kernel, stride, dilation, t.spatial)
        return windows(t.spatial, kernel, stride, dilation, pads, self.ceil_mode)

    def explain(self, inputs, output):
        return explain_windows(self._windows(inputs[0]))

    def geometry(self, inputs):
        return [("window", w.effective_kernel, w.stride, w.pad_begin) for w in self._windows(inputs[0])]

    def describe(self, inputs):
        kernel, stride, dilation = self.window_args()
        extra = " ceil" if self.ceil_mode else ""
        return describe_window(self.kind, kernel, stride, self.padding, dilation, extra)

    def refusal(self, inputs, output, opset):
        """PyTorch drops a last ceil-mode window that would start in the right padding; ONNX
        does so only from opset 22. Before that, a pool that needs an added window on one axis
        and PyTorch's drop on another cannot be written (see window_attributes)."""
        if not self.ceil_mode or opset >= 22:
            return None
        t = inputs[0]
        kernel, stride, dilation, pads, up, floor_outs = self._ceil_windows(t)
        if all(u.out == f for u, f in zip(up, floor_outs)):
            return None  # ceil_mode adds no window: none is emitted
        for axis, size, k, s, d, (begin, end), u in zip("HW", t.spatial, kernel, stride, dilation, pads, up):
            onnx_out = -(-(size + begin + end - d * (k - 1) - 1) // s) + 1  # no drop before 22
            if onnx_out != u.out:
                return Refusal(f"ceil_mode adds a window on one axis while PyTorch drops the last "
                               f"window of {axis} (it would start in the padding); ONNX before opset 22 "
                               f"cannot pool both axes that way", hint="export with --opset 22 or later")
        return None

    def _ceil_windows(self, t: TensorType):
        """The ceil-mode windows and, per axis, the output size floor mode would give (which
        may be 0 where ceil mode is what makes a window at all)."""
        kernel, stride, dilation = self.window_args()
        pads = resolve_padding(self.padding, kernel, stride, dilation, t.spatial)
        up = windows(t.spatial, kernel, stride, dilation, pads, True)
        floor_outs = [(size + b + e - d * (k - 1) - 1) // s + 1
                      for size, k, s, d, (b, e) in zip(t.spatial, kernel, stride, dilation, pads)]
        return kernel, stride, dilation, pads, up, floor_outs

    def window_attributes(self, t: TensorType, opset: int) -> dict:
        """kernel_shape, strides, pads and ceil_mode as ONNX names them.

        PyTorch drops a last ceil-mode window that would start in the right padding; ONNX does
        so only from opset 22. Before that, ceil_mode is emitted only where it adds a window,
        which gives the same windows as long as no other axis needs PyTorch's drop; a pool
        whose axes need both cannot be written before opset 22 and is refused (`refusal`)."""
        kernel, stride, dilation, pads, up, floor_outs = self._ceil_windows(t)
        ceil = self.ceil_mode and (opset >= 22 or any(u.out != f for u, f in zip(up, floor_outs)))
        return {"kernel_shape": list(kernel), "strides": list(stride),
                "pads": [b for b, _ in pads] + [e for _, e in pads], "ceil_mode": int(ceil)}


class MaxPool(WindowPool):
    """Max pooling, as PyTorch's `nn.MaxPool2d`."""

    kind = "maxpool"
    foreign = Foreign(pytorch=("MaxPool2d",),
                      pytorch_args=("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
                      keras=("MaxPooling2D", "MaxPool2D"), keras_args=("pool_size", "strides", "padding"),
                      keras_keywords={"pool_size": "kernel", "strides": "stride"},
                      pytorch_traps={"return_indices": "netspec's maxpool gives the pooled values only, "
                                                       "not where they came from"})

    dilation: Size2 = 1

    def lower(self, g, node, inputs, types, output):
        return g.op("MaxPool", inputs, dilations=list(expand(self.dilation, 2)),
                    **self.window_attributes(types[0], g.opset))


class AvgPool(WindowPool):
    """Average pooling, as PyTorch's `nn.AvgPool2d`; `count_include_pad` counts padded zeros in
    the average."""

    kind = "avgpool"
    foreign = Foreign(pytorch=("AvgPool2d",),
                      pytorch_args=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
                      keras=("AveragePooling2D", "AvgPool2D"), keras_args=("pool_size", "strides", "padding"),
                      keras_keywords={"pool_size": "kernel", "strides": "stride"},
                      pytorch_traps={"divisor_override": "netspec's avgpool divides by the window's size "
                                                         "(without the padding when `count_include_pad=false`)"})

    count_include_pad: bool = True

    def lower(self, g, node, inputs, types, output):
        return g.op("AveragePool", inputs, count_include_pad=int(self.count_include_pad),
                    **self.window_attributes(types[0], g.opset))


class LPPool(WindowPool):
    """Power-average pooling, as PyTorch's `nn.LPPool2d`: (sum of x^p over the window)^(1/p).
    p = 1 is sum pooling (average pooling times the window size); as p grows it tends to max
    pooling. No padding, as in PyTorch."""

    kind = "lppool"
    foreign = Foreign(pytorch=("LPPool2d",), pytorch_args=("norm_type", "kernel_size", "stride", "ceil_mode"))
    positional = ("norm_type", "kernel", "stride")

    norm_type: PositiveFloat
    padding: Annotated[Literal[0], Expect("0 (lppool has no padding, as in PyTorch)")] = 0

    def describe(self, inputs):
        return f"lppool p={self.norm_type:g} " + super().describe(inputs).split(" ", 1)[1]

    def lower(self, g, node, inputs, types, output):
        # As nn.LPPool2d computes it (not ONNX's LpPool, which sums |x|^p and treats partial
        # ceil-mode windows differently): (average of x^p over the window * kh*kw)^(1/p).
        kernel, _, _ = self.window_args()
        # the exponents stay f32 (Pow takes them in any float type): 1/p exactly as f32 has it
        powered = g.op("Pow", [inputs[0], g.const(self.norm_type, "float32", "p")])
        pooled = g.op("AveragePool", [powered], count_include_pad=0,
                      **self.window_attributes(types[0], g.opset))
        summed = g.op("Mul", [pooled, g.const(float(kernel[0] * kernel[1]), types[0].dtype, "window")])
        return g.op("Pow", [summed, g.const(1.0 / self.norm_type, "float32", "inverse_p")])


class GlobalPool(Layer):
    """Base of the global pools: [N, C, H, W] -> [N, C, 1, 1] (in the declared layout)."""

    family = "pool"

    def geometry(self, inputs):
        return "global"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if not t.layout.spatial:
            raise ShapeError(f"expects an input with spatial axes, got {t}", rule="rank >= 3")
        return t.with_axes(spatial=(1,) * len(t.spatial))


class GlobalAvgPool(GlobalPool):
    """Average over all spatial positions: [N, C, H, W] -> [N, C, 1, 1]."""

    kind = "global_avgpool"
    foreign = Foreign(keras=("GlobalAveragePooling2D", "GlobalAvgPool2D"))

    def lower(self, g, node, inputs, types, output):
        return g.op("GlobalAveragePool", inputs)


class GlobalMaxPool(GlobalPool):
    """Maximum over all spatial positions: [N, C, H, W] -> [N, C, 1, 1]."""

    kind = "global_maxpool"
    foreign = Foreign(keras=("GlobalMaxPooling2D", "GlobalMaxPool2D"))

    def lower(self, g, node, inputs, types, output):
        return g.op("GlobalMaxPool", inputs)


class AdaptiveAvgPool(Layer):
    """Average pooling to any output size, as PyTorch's `nn.AdaptiveAvgPool2d`: output cell i
    averages input rows floor(i*in/out) to ceil((i+1)*in/out). When the input size is a multiple
    of the output size, every window has the same size and stride, so it is an ordinary average
    pool (and lowers to one); otherwise the windows differ and overlap."""

    kind = "adaptive_avgpool"
    foreign = Foreign(pytorch=("AdaptiveAvgPool2d",), pytorch_args=("output_size",))
    family = "pool"
    positional = ("output_size",)

    output_size: Size2

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 4, "[N, C, H, W]")
        return t.with_axes(spatial=expand(self.output_size, 2))

    def describe(self, inputs):
        return "adaptive_avgpool " + "x".join(map(str, expand(self.output_size, 2)))

    def explain(self, inputs, output):
        lines, notes = [], []
        for axis, size, out in zip("HW", inputs[0].spatial, expand(self.output_size, 2)):
            if size % out == 0:
                lines.append(f"{axis}: {size} -> {out}: windows of {size // out}, stride {size // out}")
            else:
                lines.append(f"{axis}: {size} -> {out}: window i covers floor(i*{size}/{out}) .. "
                             f"ceil((i+1)*{size}/{out}) - 1")
                notes.append(f"{axis}: {size} is not a multiple of {out}: the windows differ in size "
                             "and overlap (no single ONNX pool expresses this)")
        return lines, notes

    def geometry(self, inputs):
        sizes, outs = inputs[0].spatial, expand(self.output_size, 2)
        if any(o == 1 for o in outs) or any(s % o for s, o in zip(sizes, outs)):
            return "global"  # unequal windows: bounded by the whole input
        return [("window", s // o, s // o, 0) for s, o in zip(sizes, outs)]

    def refusal(self, inputs, output, opset):
        sizes, outs = inputs[0].spatial, expand(self.output_size, 2)
        if not all(o == 1 for o in outs) and any(size % out for size, out in zip(sizes, outs)):
            return Refusal(
                f"adaptive pooling from {'x'.join(map(str, sizes))} to {'x'.join(map(str, outs))} has windows "
                "of different sizes, which no ONNX operator computes",
                hint="choose an input size whose spatial sizes are multiples of the output size")
        return None

    def lower(self, g, node, inputs, types, output):
        sizes, outs = types[0].spatial, expand(self.output_size, 2)
        if all(o == 1 for o in outs):
            return g.op("GlobalAveragePool", inputs)
        kernel = [size // out for size, out in zip(sizes, outs)]
        return g.op("AveragePool", inputs, kernel_shape=kernel, strides=kernel)
