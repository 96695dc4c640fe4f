"""Layers that change the spatial resolution by interpolation, over 1, 2 or 3 spatial axes."""


import math
from typing import Literal

from netspec.layers.base import Ctor, Foreign, Layer, PositiveNumberN, SizeN, TorchForm, compact
from netspec.shapes import axis_name, expand
from netspec.types import ShapeError, TensorType

# The linear modes by the number of spatial axes they interpolate, as F.interpolate names them.
LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class Upsample(Layer):
    """Resize the spatial axes by `scale_factor` (output = floor(in * scale), as PyTorch) or
    to a fixed `size`; give exactly one, each one value for every spatial axis or one per axis.
    `mode` is "nearest", or the linear interpolation of the input's rank, as F.interpolate names
    it: "linear" for a 1-D input, "bilinear" for 2-D, "trilinear" for 3-D; `align_corners`
    (the linear modes only) aligns the corner pixels of input and output, as in PyTorch."""

    channels_first = True  # ONNX's operator reads (N, C, spatial)

    kind = "upsample"
    family = "resample"
    positional = ("scale_factor",)
    foreign = Foreign(pytorch=("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"),
                      pytorch_args=("size", "scale_factor", "mode", "align_corners"),
                      keras=("UpSampling2D", "UpSampling1D", "UpSampling3D"), keras_args=("size",),
                      keras_keywords={"size": "scale_factor", "interpolation": "mode"},
                      implies={"UpsamplingBilinear2d": {"mode": '"bilinear"', "align_corners": "true"}},
                      pytorch_traps={
                          "recompute_scale_factor": "netspec's upsample maps the pixels by the scale "
                                                    "given, as PyTorch's default does; `size=(h, w)` "
                                                    "maps them by the sizes",
                          "antialias": "netspec's upsample does not antialias, as PyTorch's default"})

    scale_factor: PositiveNumberN | None = None
    size: SizeN | None = None
    mode: Literal["nearest", "linear", "bilinear", "trilinear"] = "nearest"
    align_corners: bool = False

    @property
    def linear(self) -> bool:
        return self.mode != "nearest"

    def _axes(self, t: TensorType) -> str:
        """The input's spatial letters, after the checks that do not depend on the sizes."""
        letters = self.require_spatial(t)
        if (self.scale_factor is None) == (self.size is None):
            raise ShapeError("give exactly one of `scale_factor` and `size`",
                             rule="upsample(2) scales; upsample(size=(h, w)) sets the size")
        if self.align_corners and not self.linear:
            raise ShapeError('align_corners applies to the linear modes only ("linear", "bilinear", '
                             '"trilinear")', rule="as in PyTorch", attributes=("align_corners", "mode"))
        fits = LINEAR_MODES[len(letters)]
        if self.linear and self.mode != fits:
            count = {"linear": 1, "bilinear": 2, "trilinear": 3}[self.mode]
            names = ", ".join(axis_name(a) for a in letters)
            raise ShapeError(f'mode="{self.mode}" interpolates {count} spatial ax{"is" if count == 1 else "es"}, '
                             f"but this is a {len(letters)}-D input ({names})",
                             rule='the linear mode fits the input: "linear" for 1-D, "bilinear" for 2-D, '
                                  '"trilinear" for 3-D (as F.interpolate)',
                             hint=f'write mode="{fits}"', attributes=("mode",))
        return letters

    def _scales(self, t: TensorType) -> list[float | None]:
        """The scale factor per axis, or None per axis where the size is given."""
        letters = self._axes(t)
        if self.scale_factor is None:
            return [None] * len(letters)
        return [float(f) for f in expand(self.scale_factor, len(letters), "scale_factor", letters)]

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        letters = self._axes(t)
        if self.size is not None:
            return t.with_axes(spatial=expand(self.size, len(letters), "size", letters))
        scales = expand(self.scale_factor, len(letters), "scale_factor", letters)
        return t.with_axes(spatial=tuple(math.floor(s * f) for s, f in zip(t.spatial, scales)))

    def torch_form(self, inputs, output):
        t = inputs[0]
        letters = self._axes(t)
        if self.size is not None:
            values = {"size": compact(expand(self.size, len(letters)))}
        else:
            values = {"scale_factor": compact(float(f) for f in expand(self.scale_factor, len(letters)))}
        if self.mode != "nearest":
            values["mode"] = self.mode
        if self.align_corners:
            values["align_corners"] = True
        args = ", ".join(f"{k}={v!r}".replace("'", '"') for k, v in values.items())
        return TorchForm(Ctor("nn.Upsample", values), function=f"F.interpolate({{0}}, {args})")

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        scales = self._scales(t)
        axes = list(zip(t.spatial, output.spatial, scales))
        # Resize is told sizes only, and is used only where PyTorch's mapping depends on the
        # sizes alone. Given a scale (recompute_scale_factor=None), PyTorch maps output index i
        # by ratio = 1/scale, not in/out: to input coordinate (i + 0.5) * ratio - 0.5 (bilinear;
        # aligned corners use (in-1)/(out-1), sizes only) or row floor(i * ratio) (nearest),
        # and bilinear copies an axis whose size does not change, whatever the scale (see
        # _nearest_by_gather for nearest's special cases). Where Resize cannot say that, the
        # rows PyTorch reads, and its weights, are computed here and gathered. (Resize given
        # the scale instead would rescale an axis PyTorch leaves alone, scale 1.25 on 3 pixels,
        # and derives the output size from the scale in float32: floor(10 * 2.1f) = 20 where
        # PyTorch and netspec have 21, which onnx.checker refuses.)
        if self.mode == "nearest":
            if not all(out % size == 0 and (f is None or f == out // size) for size, out, f in axes):
                return self._nearest_by_gather(g, inputs[0], t, output, scales)
            # PyTorch's nearest picks input index floor(out_index / scale) ("asymmetric" +
            # "floor", exact for whole multiples)
            attributes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                          "nearest_mode": "floor"}
        else:
            if not all(out == size or self.align_corners or f is None or size * f == out
                       for size, out, f in axes):
                return self._linear_by_gather(g, inputs[0], t, output, scales, self.align_corners)
            # (bi/tri)linear uses half-pixel centres (for an output of one pixel too, which
            # "pytorch_half_pixel" would read at 0), or aligned corners
            attributes = {"mode": "linear", "coordinate_transformation_mode":
                          "align_corners" if self.align_corners else "half_pixel"}
        # Sizes: the same arithmetic as PyTorch's, and shape inference keeps the batch.
        shape = g.op("Shape", [inputs[0]])  # (Shape's start/end need opset 15)
        batch = g.op("Slice", [shape, g.const([0], name="start"), g.const([1], name="end")])
        rest = g.const([t.channels, *output.spatial], name="sizes")  # canonical (N, C, spatial...)
        full = g.op("Concat", [batch, rest], axis=0)
        return g.op("Resize", [inputs[0], "", "", full], **attributes)

    @staticmethod
    def _nearest_by_gather(g, x: str, t: TensorType, output: TensorType, scales) -> str:
        """Nearest resampling to a size that is not a whole multiple, as a Gather per axis with
        the input rows PyTorch picks: floor(index * ratio) in its float32 arithmetic (ratio
        1/scale, or in/out), which floors differently from Resize's index / (out/in) at exact
        boundaries. PyTorch's CPU kernel for small outputs (out_h + out_w <= 128 on an NCHW
        tensor: _use_vectorized_kernel_cond_2d in aten/src/ATen/native/cpu/UpSampleKernel.cpp)
        reads rows through nearest_idx, which also copies an axis whose size does not change and
        takes index >> 1 for an output twice the input, whatever the scale; its kernel for larger
        outputs does neither. The two differ only for a scale that keeps a size (1.05 on 5 rows)
        or doubles it without being 2 (2.1 on 10 rows); netspec follows whichever PyTorch runs."""
        import numpy as np

        # the vectorised kernel runs for 2-D inputs only (1-D and 3-D contiguous inputs take the
        # generic one, which has no special cases: measured on torch 2.13)
        small = len(output.spatial) == 2 and sum(output.spatial) <= 128
        axes = []
        for i, (size, out, factor) in enumerate(zip(t.spatial, output.spatial, scales)):
            if small and out == size:
                rows = np.arange(out, dtype=np.int64)
            elif small and out == 2 * size:
                rows = np.arange(out, dtype=np.int64) >> 1
            else:
                step = np.float32(1.0 / factor) if factor else np.float32(size) / np.float32(out)
                rows = np.minimum(np.floor(np.arange(out, dtype=np.float32) * step).astype(np.int64), size - 1)
            if out != size or not np.array_equal(rows, np.arange(size)):
                axes.append((2 + i, rows))  # canonical (N, C, spatial...): spatial axis i is 2 + i
        if not axes:  # a scale that keeps every size, in the kernel that copies them
            return g.op("Identity", [x])
        for axis, rows in axes:
            x = g.op("Gather", [x, g.const(rows, name=f"rows{axis}")], axis=axis)
        return x

    @staticmethod
    def _linear_by_gather(g, x: str, t: TensorType, output: TensorType, scales, aligned: bool) -> str:
        """Linear, bilinear or trilinear resampling as PyTorch computes it
        (compute_source_index_and_lambda in aten/src/ATen/native/UpSample.h, in both of its CPU
        kernels, for every rank), one axis at a time: the two input rows each output row reads
        and their weights, in float32, then x[rows0] * w0 + x[rows1] * w1. An axis whose size
        does not change is left untouched."""
        import numpy as np

        axes = [(2 + i, size, out, f) for i, (size, out, f) in enumerate(zip(t.spatial, output.spatial, scales))
                if size != out]  # canonical (N, C, spatial...): spatial axis i is 2 + i
        ndim = 2 + len(t.spatial)
        for axis, size, out, factor in axes:
            index = np.arange(out, dtype=np.float32)
            if aligned:
                ratio = np.float32(size - 1) / np.float32(out - 1) if out > 1 else np.float32(0)
                real = ratio * index
            else:
                ratio = np.float32(1.0 / factor) if factor else np.float32(size) / np.float32(out)
                real = np.maximum(ratio * (index + np.float32(0.5)) - np.float32(0.5), np.float32(0))
            rows0 = np.minimum(np.floor(real).astype(np.int64), size - 1)
            rows1 = rows0 + (rows0 < size - 1)
            weight1 = np.clip(real - rows0.astype(np.float32), 0, 1).astype(np.float32)
            weight0 = np.float32(1) - weight1
            shape = (out,) + (1,) * (ndim - 1 - axis)  # broadcast along the axis being resampled
            a = g.op("Gather", [x, g.const(rows0, name=f"rows{axis}")], axis=axis)
            b = g.op("Gather", [x, g.const(rows1, name=f"next_rows{axis}")], axis=axis)
            a = g.op("Mul", [a, g.const(weight0.reshape(shape), t.dtype, f"weights{axis}")])
            b = g.op("Mul", [b, g.const(weight1.reshape(shape), t.dtype, f"next_weights{axis}")])
            x = g.op("Add", [a, b])
        return x

    def geometry(self, inputs):
        t = inputs[0]
        letters = self._axes(t)
        factors = ([float(f) for f in expand(self.scale_factor, len(letters))] if self.scale_factor is not None
                   else [o / s for o, s in zip(expand(self.size, len(letters)), t.spatial)])
        return [("upsample", 2 if self.linear else 1, f, 0) for f in factors]

    def describe(self, inputs):
        rank = len(inputs[0].spatial)
        if self.size is not None:
            what = "to " + "x".join(map(str, expand(self.size, rank)))
        else:
            scales = expand(self.scale_factor, rank)
            what = f"x{scales[0]:g}" if len(set(scales)) == 1 else "x" + ",".join(f"{s:g}" for s in scales)
        return f"upsample {what} {self.mode}"
