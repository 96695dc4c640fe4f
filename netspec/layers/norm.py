"""Normalisation layers."""

from __future__ import annotations

from netspec.layers.base import Layer, ParamSpec, PositiveFloat, PositiveInt
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


class LayerNorm(Layer):
    """Layer normalisation over the channel axis at each position: nn.LayerNorm(C) on [N, C]
    or channels-last input, ConvNeXt's LayerNorm2d on NCHW. Parameters `weight` and `bias`
    of C elements (when `elementwise_affine`; `bias=false` drops the shift)."""

    kind = "layernorm"
    family = "norm"

    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if t.rank < 2:
            raise ShapeError(f"expects an input with a channel axis, got {t}", rule="rank >= 2")
        return t

    def parameters(self, inputs, output):
        c = inputs[0].channels
        if not self.elementwise_affine:
            return {}
        params = {"weight": ParamSpec((c,))}
        if self.bias:
            params["bias"] = ParamSpec((c,))
        return params


class GroupNorm(Layer):
    """Group normalisation, as PyTorch's `nn.GroupNorm`: channels in `num_groups` groups, each
    normalised over its channels and all positions. Parameters `weight`, `bias` of C elements."""

    kind = "groupnorm"
    family = "norm"
    positional = ("num_groups",)

    num_groups: PositiveInt
    eps: PositiveFloat = 1e-5
    affine: bool = True

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if t.rank < 2:
            raise ShapeError(f"expects an input with a channel axis, got {t}", rule="rank >= 2")
        if t.channels % self.num_groups:
            raise ShapeError(f"{t.channels} channels do not divide into {self.num_groups} groups",
                             rule="channels % num_groups == 0")
        return t

    def parameters(self, inputs, output):
        c = inputs[0].channels
        return {"weight": ParamSpec((c,)), "bias": ParamSpec((c,))} if self.affine else {}

    def describe(self, inputs):
        return f"groupnorm {self.num_groups}"
