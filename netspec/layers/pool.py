"""Pooling layers, over 1, 2 or 3 spatial axes: one class per kind serves [N, C, L],
[N, C, H, W] and [N, C, D, H, W] (and every other order of those axes), as PyTorch's
MaxPool1d/2d/3d, AvgPool1d/2d/3d, LPPool1d/2d/3d and AdaptiveAvg/MaxPool1d/2d/3d do."""


from math import prod
from typing import Annotated, ClassVar, Literal

from netspec.layers.base import (Ctor, Expect, Foreign, Layer, PaddingN, PositiveFloat, Refusal, SizeN, TorchForm, compact,
                                 explain_windows, torch_dims)
from netspec.layers.conv import describe_window, torch_padding
from netspec.shapes import axis_name, expand, resolve_padding, windows
from netspec.types import ShapeError, TensorType


# PyTorch's pools' defaults (a stride of None is the kernel: netspec writes it out)
_POOL_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "count_include_pad": True}


class WindowPool(Layer):
    """Base of max, average and power-average pooling: a kernel sliding with a stride (default:
    the kernel), each one value for every spatial axis or one per axis."""

    channels_first = True  # ONNX's operator reads (N, C, spatial)

    family = "pool"
    positional = ("kernel", "stride")
    aliases = {"kernel_size": "kernel"}

    kernel: SizeN
    stride: SizeN | None = None
    padding: PaddingN = 0
    ceil_mode: bool = False

    def axes(self, t: TensorType) -> str:
        return self.require_spatial(t)

    def window_args(self, t: TensorType):
        """kernel, stride and dilation, one value per spatial axis of `t`."""
        letters = self.axes(t)
        rank = len(letters)
        kernel = expand(self.kernel, rank, "kernel", letters)
        stride = expand(self.stride, rank, "stride", letters) if self.stride is not None else kernel
        dilation = expand(getattr(self, "dilation", 1), rank, "dilation", letters)  # avgpool has no dilation
        return kernel, stride, dilation

    def _pads(self, t: TensorType):
        kernel, stride, dilation = self.window_args(t)
        return resolve_padding(self.padding, kernel, stride, dilation, t.spatial, self.axes(t))

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        letters = self.axes(t)
        kernel, stride, dilation = self.window_args(t)
        pads = self._pads(t)
        for axis, k, (begin, end) in zip(letters, kernel, pads):
            if isinstance(self.padding, str):
                break
            if max(begin, end) > k // 2:
                where = f"{axis_name(axis)}: " if len(set(kernel)) > 1 or len(set(pads)) > 1 else ""
                raise ShapeError(f"{where}padding {max(begin, end)} is more than half the kernel ({k})",
                                 rule="pooling padding <= kernel // 2 (as in PyTorch)",
                                 attributes=("padding", "kernel"))
        out = windows(t.spatial, kernel, stride, dilation, pads, self.ceil_mode, letters)
        if len(letters) == 3 and self.kind != "maxpool":
            # PyTorch's avg_pool3d (which LPPool3d uses too) checks the input against the kernel
            # before any padding (pool3d_shape_check's check_input_size), unlike its 1-D and 2-D
            # pools and max_pool3d
            for axis, size, k in zip(letters, t.spatial, kernel):
                if size < k:
                    torch_name = "AvgPool3d" if self.kind == "avgpool" else "LPPool3d"
                    raise ShapeError(f"the input's {axis_name(axis)} ({size}) is smaller than the kernel ({k}): "
                                     f"PyTorch's {torch_name} refuses a 3-D input smaller than its window, "
                                     "padded or not", rule=f"3-D {self.kind}: input size >= kernel on every axis "
                                     "(as in PyTorch)", hint="use a smaller kernel, or `pad` the input first",
                                     attributes=("kernel",))
        return t.with_axes(spatial=tuple(w.out for w in out))

    def _windows(self, t: TensorType):
        kernel, stride, dilation = self.window_args(t)
        return windows(t.spatial, kernel, stride, dilation, self._pads(t), self.ceil_mode, self.axes(t))

    def explain(self, inputs, output):
        return explain_windows(self._windows(inputs[0]), self.axes(inputs[0]))

    def geometry(self, inputs):
        return [("window", w.effective_kernel, w.stride, w.pad_begin) for w in self._windows(inputs[0])]

    def describe(self, inputs):
        t = inputs[0]
        kernel, stride, dilation = self.window_args(t)
        extra = " ceil" if self.ceil_mode else ""
        return describe_window(self.kind, kernel, stride, self.padding, dilation, extra, len(t.spatial))

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
        for axis, size, k, s, d, (begin, end), u in zip(self.axes(t), t.spatial, kernel, stride, dilation, pads, up):
            onnx_out = -(-(size + begin + end - d * (k - 1) - 1) // s) + 1  # no drop before 22
            if onnx_out != u.out:
                return Refusal(f"ceil_mode adds a window on one axis while PyTorch drops the last "
                               f"window of the {axis_name(axis)} (it would start in the padding); ONNX before "
                               f"opset 22 cannot pool the axes both ways", hint="export with --opset 22 or later")
        return None

    def _ceil_windows(self, t: TensorType):
        """The ceil-mode windows and, per axis, the output size floor mode would give (which
        may be 0 where ceil mode is what makes a window at all)."""
        kernel, stride, dilation = self.window_args(t)
        pads = self._pads(t)
        up = windows(t.spatial, kernel, stride, dilation, pads, True, self.axes(t))
        floor_outs = [(size + b + e - d * (k - 1) - 1) // s + 1
                      for size, k, s, d, (b, e) in zip(t.spatial, kernel, stride, dilation, pads)]
        return kernel, stride, dilation, pads, up, floor_outs

    def torch_window(self, t: TensorType, fill: float | None = None) -> tuple[dict, str]:
        """kernel_size, stride, padding and ceil_mode as PyTorch's pools take them, and the call
        (an F.pad with `fill` first where an axis's two sides are padded differently)."""
        kernel, stride, _ = self.window_args(t)
        padding, call = torch_padding(self._pads(t), fill)
        values = {"kernel_size": compact(kernel),
                  "stride": compact(stride) if tuple(stride) != tuple(kernel) else None, "padding": padding,
                  "ceil_mode": self.ceil_mode}
        return values, call

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
    """Max pooling over 1, 2 or 3 spatial axes, as PyTorch's `nn.MaxPool1d/2d/3d`."""

    kind = "maxpool"
    foreign = Foreign(pytorch=("MaxPool2d", "MaxPool1d", "MaxPool3d"),
                      pytorch_args=("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
                      keras=("MaxPooling2D", "MaxPool2D", "MaxPooling1D", "MaxPool1D", "MaxPooling3D", "MaxPool3D"),
                      keras_args=("pool_size", "strides", "padding"),
                      keras_keywords={"pool_size": "kernel", "strides": "stride"},
                      pytorch_traps={"return_indices": "netspec's maxpool gives the pooled values only, "
                                                       "not where they came from"})

    dilation: SizeN = 1

    def torch_form(self, inputs, output):
        t = inputs[0]
        values, call = self.torch_window(t, float("-inf"))
        _, _, dilation = self.window_args(t)
        values["dilation"] = compact(dilation)
        return TorchForm(Ctor(f"nn.MaxPool{torch_dims(t)}", values, 1, _POOL_DEFAULTS), call)

    def lower(self, g, node, inputs, types, output):
        _, _, dilation = self.window_args(types[0])
        return g.op("MaxPool", inputs, dilations=list(dilation), **self.window_attributes(types[0], g.opset))


class AvgPool(WindowPool):
    """Average pooling over 1, 2 or 3 spatial axes, as PyTorch's `nn.AvgPool1d/2d/3d`;
    `count_include_pad` counts padded zeros in the average."""

    kind = "avgpool"
    foreign = Foreign(pytorch=("AvgPool2d", "AvgPool1d", "AvgPool3d"),
                      pytorch_args=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
                      keras=("AveragePooling2D", "AvgPool2D", "AveragePooling1D", "AvgPool1D", "AveragePooling3D",
                             "AvgPool3D"),
                      keras_args=("pool_size", "strides", "padding"),
                      keras_keywords={"pool_size": "kernel", "strides": "stride"},
                      pytorch_traps={"divisor_override": "netspec's avgpool divides by the window's size "
                                                         "(without the padding when `count_include_pad=false`)"})

    count_include_pad: bool = True

    def torch_form(self, inputs, output):
        t = inputs[0]
        values, call = self.torch_window(t)
        if call != "{m}({0})" and not self.count_include_pad:
            # padded apart (an axis's two sides differ), then averaged with the pad as zeros:
            # divided by the same average of ones, the share of each window that is the input
            pads = tuple(v for b, e in reversed(self._pads(t)) for v in (b, e))
            pool = f"F.avg_pool{torch_dims(t)}"
            args = ", ".join(f"{k}={v!r}" for k, v in values.items() if k == "kernel_size" or v != _POOL_DEFAULTS[k])
            return TorchForm(function=f"{pool}(F.pad({{0}}, {pads!r}), {args}) / "
                                      f"{pool}(F.pad(torch.ones_like({{0}}), {pads!r}), {args})")
        values["count_include_pad"] = self.count_include_pad
        return TorchForm(Ctor(f"nn.AvgPool{torch_dims(t)}", values, 1, _POOL_DEFAULTS), call)

    def lower(self, g, node, inputs, types, output):
        return g.op("AveragePool", inputs, count_include_pad=int(self.count_include_pad),
                    **self.window_attributes(types[0], g.opset))


class LPPool(WindowPool):
    """Power-average pooling over 1, 2 or 3 spatial axes, as PyTorch's `nn.LPPool1d/2d/3d`:
    (sum of x^p over the window)^(1/p).
    p = 1 is sum pooling (average pooling times the window size); as p grows it tends to max
    pooling. No padding, as in PyTorch."""

    kind = "lppool"
    foreign = Foreign(pytorch=("LPPool2d", "LPPool1d", "LPPool3d"), pytorch_args=("norm_type", "kernel_size", "stride", "ceil_mode"))
    positional = ("norm_type", "kernel", "stride")

    norm_type: PositiveFloat
    padding: Annotated[Literal[0], Expect("0 (lppool has no padding, as in PyTorch)")] = 0

    def describe(self, inputs):
        return f"lppool p={self.norm_type:g} " + super().describe(inputs).split(" ", 1)[1]

    def torch_form(self, inputs, output):
        t = inputs[0]
        values, _ = self.torch_window(t)
        del values["padding"]  # PyTorch's LPPool has none (netspec's is 0)
        return TorchForm(Ctor(f"nn.LPPool{torch_dims(t)}", {"norm_type": self.norm_type, **values}, 2, _POOL_DEFAULTS))

    def lower(self, g, node, inputs, types, output):
        # As nn.LPPool1d/2d/3d compute it (not ONNX's LpPool, which sums |x|^p and treats partial
        # ceil-mode windows differently): (average of x^p over the window * kernel volume)^(1/p).
        kernel, _, _ = self.window_args(types[0])
        # the exponents stay f32 (Pow takes them in any float type): 1/p exactly as f32 has it
        powered = g.op("Pow", [inputs[0], g.const(self.norm_type, "float32", "p")])
        pooled = g.op("AveragePool", [powered], count_include_pad=0,
                      **self.window_attributes(types[0], g.opset))
        summed = g.op("Mul", [pooled, g.const(float(prod(kernel)), types[0].dtype, "window")])
        return g.op("Pow", [summed, g.const(1.0 / self.norm_type, "float32", "inverse_p")])


class GlobalPool(Layer):
    """Base of the global pools: [N, C, *spatial] -> [N, C, 1, ...] (in the declared layout),
    for any number of spatial axes."""

    channels_first = True  # ONNX's operator reads (N, C, spatial)

    family = "pool"

    def geometry(self, inputs):
        return "global"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if not t.layout.spatial:
            raise ShapeError(f"pools over the spatial axes, and {t} has none",
                             rule="an input with spatial axes (1-D [N, C, L], 2-D [N, C, H, W], 3-D [N, C, D, H, W])",
                             hint="a global pool comes before `flatten`, not after it" if t.rank == 2 else None)
        return t.with_axes(spatial=(1,) * len(t.spatial))

    def torch_form(self, inputs, output):
        t = inputs[0]
        dims = tuple(range(2, t.rank))
        function = f"{{0}}.mean(dim={dims!r}, keepdim=True)" if self.kind == "global_avgpool" else \
            f"torch.amax({{0}}, dim={dims!r}, keepdim=True)"
        pool = "Avg" if self.kind == "global_avgpool" else "Max"
        return TorchForm(Ctor(f"nn.Adaptive{pool}Pool{torch_dims(t)}", {"output_size": 1}, 1), function=function)


class GlobalAvgPool(GlobalPool):
    """Average over all spatial positions: [N, C, H, W] -> [N, C, 1, 1] (and [N, C, L] ->
    [N, C, 1], [N, C, D, H, W] -> [N, C, 1, 1, 1])."""

    kind = "global_avgpool"
    foreign = Foreign(keras=("GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalAveragePooling1D",
                             "GlobalAvgPool1D", "GlobalAveragePooling3D", "GlobalAvgPool3D"))

    def lower(self, g, node, inputs, types, output):
        return g.op("GlobalAveragePool", inputs)


class GlobalMaxPool(GlobalPool):
    """Maximum over all spatial positions: [N, C, H, W] -> [N, C, 1, 1] (and [N, C, L] ->
    [N, C, 1], [N, C, D, H, W] -> [N, C, 1, 1, 1])."""

    kind = "global_maxpool"
    foreign = Foreign(keras=("GlobalMaxPooling2D", "GlobalMaxPool2D", "GlobalMaxPooling1D", "GlobalMaxPool1D",
                             "GlobalMaxPooling3D", "GlobalMaxPool3D"))

    def lower(self, g, node, inputs, types, output):
        return g.op("GlobalMaxPool", inputs)


class AdaptivePool(Layer):
    """Base of the adaptive pools, as PyTorch's `nn.AdaptiveAvgPool1d/2d/3d` and
    `nn.AdaptiveMaxPool1d/2d/3d`: pooling to any output size, one per spatial axis; output cell i
    of an axis pools input positions floor(i*in/out) to ceil((i+1)*in/out) - 1. When the input
    size is a multiple of the output size, every window has the same size and stride, so it is
    an ordinary pool (and lowers to one); otherwise the windows differ and overlap."""

    channels_first = True  # ONNX's operator reads (N, C, spatial)

    family = "pool"
    positional = ("output_size",)

    output_size: SizeN

    # the ONNX operators: the windowed one, and the global one for an output of one cell
    onnx_ops: ClassVar[tuple[str, str]] = ("", "")

    def _sizes(self, t: TensorType) -> tuple[tuple[int, ...], tuple[int, ...]]:
        letters = self.require_spatial(t)
        return t.spatial, expand(self.output_size, len(letters), "output_size", letters)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        return t.with_axes(spatial=self._sizes(t)[1])

    def describe(self, inputs):
        return f"{self.kind} " + "x".join(map(str, self._sizes(inputs[0])[1]))

    def explain(self, inputs, output):
        lines, notes = [], []
        letters = self.require_spatial(inputs[0])
        for axis, size, out in zip(letters, *self._sizes(inputs[0])):
            if size % out == 0:
                lines.append(f"{axis}: {size} -> {out}: windows of {size // out}, stride {size // out}")
            else:
                lines.append(f"{axis}: {size} -> {out}: window i covers floor(i*{size}/{out}) .. "
                             f"ceil((i+1)*{size}/{out}) - 1")
                notes.append(f"{axis}: {size} is not a multiple of {out}: the windows differ in size "
                             "and overlap (no single ONNX pool expresses this)")
        return lines, notes

    def geometry(self, inputs):
        sizes, outs = self._sizes(inputs[0])
        if any(o == 1 for o in outs) or any(s % o for s, o in zip(sizes, outs)):
            return "global"  # unequal windows: bounded by the whole input
        return [("window", s // o, s // o, 0) for s, o in zip(sizes, outs)]

    def refusal(self, inputs, output, opset):
        sizes, outs = self._sizes(inputs[0])
        if not all(o == 1 for o in outs) and any(size % out for size, out in zip(sizes, outs)):
            return Refusal(
                f"adaptive pooling from {'x'.join(map(str, sizes))} to {'x'.join(map(str, outs))} has windows "
                "of different sizes, which no ONNX operator computes",
                hint="choose an input size whose spatial sizes are multiples of the output size")
        return None

    def lower(self, g, node, inputs, types, output):
        sizes, outs = self._sizes(types[0])
        windowed, whole = self.onnx_ops
        if all(o == 1 for o in outs):
            return g.op(whole, inputs)
        kernel = [size // out for size, out in zip(sizes, outs)]
        return g.op(windowed, inputs, kernel_shape=kernel, strides=kernel)

    def torch_form(self, inputs, output):
        t = inputs[0]
        pool = "Avg" if self.kind == "adaptive_avgpool" else "Max"
        size = compact(self._sizes(t)[1])
        return TorchForm(Ctor(f"nn.Adaptive{pool}Pool{torch_dims(t)}", {"output_size": size}, 1),
                         function=f"F.adaptive_{pool.lower()}_pool{torch_dims(t)}({{0}}, {size!r})")


class AdaptiveAvgPool(AdaptivePool):
    """Average pooling to any output size, as PyTorch's `nn.AdaptiveAvgPool1d/2d/3d`: output
    cell i averages input rows floor(i*in/out) to ceil((i+1)*in/out). When the input size is a
    multiple of the output size, every window has the same size and stride, so it is an
    ordinary average pool (and lowers to one); otherwise the windows differ and overlap."""

    kind = "adaptive_avgpool"
    foreign = Foreign(pytorch=("AdaptiveAvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool3d"),
                      pytorch_args=("output_size",))
    onnx_ops = ("AveragePool", "GlobalAveragePool")


class AdaptiveMaxPool(AdaptivePool):
    """Max pooling to any output size, as PyTorch's `nn.AdaptiveMaxPool1d/2d/3d`: output cell i
    takes the maximum of input rows floor(i*in/out) to ceil((i+1)*in/out). As for
    `adaptive_avgpool`, ONNX expresses it exactly when the input size is a multiple of the
    output size (an ordinary max pool) or the output is one cell (a global max pool)."""

    kind = "adaptive_maxpool"
    foreign = Foreign(pytorch=("AdaptiveMaxPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool3d"),
                      pytorch_args=("output_size", "return_indices"),
                      pytorch_traps={"return_indices": "netspec's adaptive_maxpool gives the pooled values only, "
                                                       "not where they came from"})
    onnx_ops = ("MaxPool", "GlobalMaxPool")
