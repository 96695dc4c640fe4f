"""Layers that change the spatial resolution by interpolation."""


import math
from typing import Literal

from netspec.layers.base import Foreign, Layer, PositiveNumber2, Size2
from netspec.shapes import expand
from netspec.types import ShapeError, TensorType


class Upsample(Layer):
    """Resize the spatial axes by `scale_factor` (output = floor(in * scale), as PyTorch) or
    to a fixed `size`; give exactly one. `mode` is "nearest" or "bilinear"; `align_corners`
    (bilinear only) aligns the corner pixels of input and output, as in PyTorch."""

    kind = "upsample"
    family = "resample"
    positional = ("scale_factor",)
    foreign = Foreign(pytorch=("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"),
                      pytorch_args=("size", "scale_factor", "mode", "align_corners"),
                      keras=("UpSampling2D",), keras_args=("size",),
                      keras_keywords={"size": "scale_factor", "interpolation": "mode"},
                      implies={"UpsamplingBilinear2d": {"mode": '"bilinear"', "align_corners": "true"}})

    scale_factor: PositiveNumber2 | None = None
    size: Size2 | None = None
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: bool = False

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 4, "[N, C, H, W]")
        if (self.scale_factor is None) == (self.size is None):
            raise ShapeError("give exactly one of `scale_factor` and `size`",
                             rule="upsample(2) scales; upsample(size=(h, w)) sets the size")
        if self.align_corners and self.mode == "nearest":
            raise ShapeError("align_corners applies to mode=\"bilinear\" only", rule="as in PyTorch")
        if self.size is not None:
            return t.with_axes(spatial=expand(self.size, 2))
        scales = expand(self.scale_factor, 2)
        return t.with_axes(spatial=tuple(math.floor(s * f) for s, f in zip(t.spatial, scales)))

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        scales = [float(f) for f in expand(self.scale_factor, 2)] if self.scale_factor is not None else None
        whole = all(out % size == 0 and (f is None or f == out // size)
                    for size, out, f in zip(t.spatial, output.spatial, scales or [None, None]))
        if self.mode == "nearest" and not whole:
            return self._nearest_by_gather(g, inputs[0], t, output, scales)
        # PyTorch's nearest picks input index floor(out_index / scale) ("asymmetric" + "floor",
        # exact for whole multiples); bilinear uses half-pixel centres (for an output of one
        # pixel too, which "pytorch_half_pixel" would read at 0), or aligned corners.
        if self.mode == "nearest":
            attributes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                          "nearest_mode": "floor"}
        else:
            attributes = {"mode": "linear", "coordinate_transformation_mode":
                          "align_corners" if self.align_corners else "half_pixel"}
        exact = scales is None or all(size * f == out for size, f, out in zip(t.spatial, scales, output.spatial))
        if exact:
            # Exact sizes: the same arithmetic as PyTorch's, and shape inference keeps the batch.
            shape = g.op("Shape", [inputs[0]])  # (Shape's start/end need opset 15)
            batch = g.op("Slice", [shape, g.const([0], name="start"), g.const([1], name="end")])
            rest = g.const([t.channels, *output.spatial], name="sizes")
            full = g.op("Concat", [batch, rest], axis=0)
            return g.op("Resize", [inputs[0], "", "", full], **attributes)
        # A scale that does not divide evenly: PyTorch maps coordinates by the scale itself, so
        # ONNX must be given the scale, not the rounded size.
        return g.op("Resize", [inputs[0], "", g.const([1.0, 1.0, *scales], "float32", "scales")], **attributes)

    @staticmethod
    def _nearest_by_gather(g, x: str, t: TensorType, output: TensorType, scales) -> str:
        """Nearest resampling to a size that is not a whole multiple, as a Gather per axis with
        the input rows PyTorch picks: its float32 arithmetic (index * in/out, or / scale) floors
        differently from Resize's (index / (out/in)) at exact boundaries, and it leaves an axis
        whose size does not change untouched."""
        import numpy as np

        axes = [(2 + i, size, out, f)  # canonical NCHW: H is axis 2, W axis 3
                for i, (size, out, f) in enumerate(zip(t.spatial, output.spatial, scales or [None, None]))]
        for axis, size, out, factor in axes:
            if size == out:
                continue
            step = np.float32(1.0 / factor) if factor else np.float32(size) / np.float32(out)
            rows = np.minimum(np.floor(np.arange(out, dtype=np.float32) * step).astype(np.int64), size - 1)
            x = g.op("Gather", [x, g.const(rows, name=f"rows{axis}")], axis=axis)
        return x

    def geometry(self, inputs):
        t = inputs[0]
        factors = ([float(f) for f in expand(self.scale_factor, 2)] if self.scale_factor is not None
                   else [o / s for o, s in zip(expand(self.size, 2), t.spatial)])
        return [("upsample", 2 if self.mode == "bilinear" else 1, f, 0) for f in factors]

    def describe(self, inputs):
        if self.size is not None:
            what = "to " + "x".join(map(str, expand(self.size, 2)))
        else:
            scales = expand(self.scale_factor, 2)
            what = f"x{scales[0]:g}" if scales[0] == scales[1] else "x" + ",".join(f"{s:g}" for s in scales)
        return f"upsample {what} {self.mode}"
