"""Layers that reshape or pass tensors through."""

from __future__ import annotations

from netspec.layers.base import Layer, Probability
from netspec.types import Layout, ShapeError, TensorType


class Flatten(Layer):
    """Flatten every axis but the batch, in the declared layout's order: [N, C, H, W] ->
    [N, C*H*W]. (For NHWC input the features come out in H, W, C order, which decides the
    weights a following `linear` needs.)"""

    kind = "flatten"
    family = "shape"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        symbolic = [d for i, d in enumerate(t.shape) if i != t.layout.batch and not isinstance(d, int)]
        if symbolic:
            raise ShapeError(f"cannot flatten {t}: axis {symbolic[0]} has no fixed size",
                             rule="only the batch axis may be symbolic")
        return TensorType(t.dtype, (t.batch, t.sample_elements()), Layout("NC"))


class Dropout(Layer):
    """Zeroes elements with probability `p` while training; the identity at inference."""

    kind = "dropout"
    family = "shape"
    positional = ("p",)

    p: Probability = 0.5

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return inputs[0]

    def describe(self, inputs):
        return f"dropout p={self.p:g}"
