"""Normalisation layers."""

from __future__ import annotations

from netspec.layers.base import Layer, ParamSpec, PositiveFloat
from netspec.types import ShapeError, TensorType


class BatchNorm(Layer):
    """Batch normalisation over the channel axis, as PyTorch's `nn.BatchNorm1d/2d`.

    Parameters `weight` and `bias` (when `affine`); buffers `running_mean`, `running_var` and
    `num_batches_tracked` (when `track_running_stats`), named as in a PyTorch state_dict.
    """

    kind = "batchnorm"
    family = "norm"

    eps: PositiveFloat = 1e-5
    momentum: float = 0.1
    affine: bool = True
    track_running_stats: bool = True

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if t.rank < 2:
            raise ShapeError(f"expects an input with a channel axis, got {t}", rule="rank >= 2")
        return t

    def parameters(self, inputs, output):
        c = inputs[0].channels
        params = {}
        if self.affine:
            params["weight"] = ParamSpec((c,))
            params["bias"] = ParamSpec((c,))
        if self.track_running_stats:
            params["running_mean"] = ParamSpec((c,), trainable=False)
            params["running_var"] = ParamSpec((c,), trainable=False)
            params["num_batches_tracked"] = ParamSpec((), trainable=False, dtype="i64")
        return params
