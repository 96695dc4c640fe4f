"""Normalisation layers."""


from netspec.layers.base import (Axis, Ctor, Foreign, Layer, ParamSpec, PositiveFloat, PositiveInt, Refusal, TorchForm,
                                 torch_dims)
from netspec.layers.merge import resolve_axis
from netspec.types import ShapeError, TensorType


class ChannelNorm(Layer):
    """Base of the normalisations: they need a channel axis and keep the input's type."""

    family = "norm"

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if t.rank < 2:
            raise ShapeError(f"expects an input with a channel axis, got {t}", rule="rank >= 2")
        t.layout.channel  # noqa: B018 - a tensor whose reshape left no channel axis is refused here
        self.check_channels(t)
        return t

    def check_channels(self, t: TensorType) -> None:
        """A norm's own condition on the channels (groupnorm: they divide into groups)."""

    def explain(self, inputs, output):
        return explain_affine(self, inputs, output)


def explain_affine(layer: "ChannelNorm", inputs, output) -> tuple[list[str], list[str]]:
    """`params: 2 * 64 = 128` for a scale and a shift per channel; buffers alongside."""
    params = layer.parameters(inputs, output)
    trainable = [p for p in params.values() if p.trainable]
    lines = [f"params: {len(trainable)} * {inputs[0].channels} = {sum(p.elements for p in trainable):,}"] \
        if trainable else []
    buffers = sum(p.elements for p in params.values() if not p.trainable)
    if buffers:
        lines.append(f"buffers: 2 * {inputs[0].channels} + 1 = {buffers:,} (running mean and variance, "
                     "num_batches_tracked)")
    return lines, []


class BatchNorm(ChannelNorm):
    """Batch normalisation over the channel axis, as PyTorch's `nn.BatchNorm1d` ([N, C] or
    [N, C, L]), `nn.BatchNorm2d` ([N, C, H, W]) and `nn.BatchNorm3d` ([N, C, D, H, W]).

    Parameters `weight` and `bias` (when `affine`); buffers `running_mean`, `running_var` and
    `num_batches_tracked` (when `track_running_stats`), named as in a PyTorch state_dict.
    """

    channels_first = True  # ONNX's operator reads (N, C, spatial)

    kind = "batchnorm"
    foreign = Foreign(pytorch=("BatchNorm2d", "BatchNorm1d", "BatchNorm3d", "LazyBatchNorm2d",
                               "LazyBatchNorm1d", "LazyBatchNorm3d"),
                      pytorch_args=("num_features", "eps", "momentum", "affine", "track_running_stats"),
                      keras=("BatchNormalization",), keras_keywords={"epsilon": "eps"},
                      keras_traps={"momentum": "`momentum` is left out: Keras's momentum m is PyTorch's "
                                               "and netspec's 1 - m (Keras's 0.99 is momentum=0.01)"},
                      inherited={"num_features": "number of channels"})

    eps: PositiveFloat = 1e-5
    momentum: float = 0.1
    affine: bool = True
    track_running_stats: bool = True


    def parameters(self, inputs, output):
        c = inputs[0].channels
        params = {}
        if self.affine:
            params["weight"] = ParamSpec((c,), init="fill", scale=1.0)
            params["bias"] = ParamSpec((c,))
        if self.track_running_stats:
            params["running_mean"] = ParamSpec((c,), trainable=False)
            params["running_var"] = ParamSpec((c,), trainable=False, init="fill", scale=1.0)
            params["num_batches_tracked"] = ParamSpec((), trainable=False, dtype="i64")
        return params

    def refusal(self, inputs, output, opset):
        if not self.track_running_stats:
            return Refusal("batchnorm without running statistics normalises with each batch's "
                           "own statistics, which inference graphs do not do",
                           hint="set track_running_stats=true")
        return None

    def torch_form(self, inputs, output):
        t = inputs[0]
        values = {"num_features": t.channels}
        extra = {"eps": self.eps, "momentum": self.momentum, "affine": self.affine,
                 "track_running_stats": self.track_running_stats}
        defaults = {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}
        return TorchForm(Ctor(f"nn.BatchNorm{torch_dims(t) if t.rank > 2 else '1d'}", {**values, **extra}, 1,
                              defaults))

    def lower(self, g, node, inputs, types, output):
        c, dtype = types[0].channels, types[0].dtype
        scale = g.param("weight") if self.affine else g.const([1.0] * c, dtype, "scale")
        shift = g.param("bias") if self.affine else g.const([0.0] * c, dtype, "shift")
        return g.op("BatchNormalization", [inputs[0], scale, shift, g.param("running_mean"),
                                           g.param("running_var")], epsilon=self.eps)


class LayerNorm(ChannelNorm):
    """Layer normalisation over the channel axis at each position: nn.LayerNorm(C) on [N, C]
    or channels-last input, ConvNeXt's LayerNorm2d on NCHW. Parameters `weight` and `bias`
    of C elements (when `elementwise_affine`; `bias=false` drops the shift)."""

    kind = "layernorm"
    foreign = Foreign(pytorch=("LayerNorm",), pytorch_args=("normalized_shape", "eps", "elementwise_affine", "bias"),
                      keras=("LayerNormalization",), keras_keywords={"epsilon": "eps"},
                      inherited={"normalized_shape": "number of channels"})

    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True


    def parameters(self, inputs, output):
        c = inputs[0].channels
        if not self.elementwise_affine:
            return {}
        params = {"weight": ParamSpec((c,), init="fill", scale=1.0)}
        if self.bias:
            params["bias"] = ParamSpec((c,))
        return params

    def refusal(self, inputs, output, opset):
        if opset < 17:
            return Refusal("ONNX has LayerNormalization from opset 17", hint="export with --opset 17 or later")
        return None

    def torch_form(self, inputs, output):
        t = inputs[0]
        values = {"normalized_shape": t.channels}
        extra = {"eps": self.eps, "elementwise_affine": self.elementwise_affine, "bias": self.bias}
        defaults = {"eps": 1e-5, "elementwise_affine": True, "bias": True}
        values.update(extra)
        channel = t.layout.channel
        # over the channels at each position: moved last and back where they are not last
        call = "{m}({0})" if channel == t.rank - 1 else f"{{m}}({{0}}.movedim({channel}, -1)).movedim(-1, {channel})"
        return TorchForm(Ctor("nn.LayerNorm", values, 1, defaults), call)

    def lower(self, g, node, inputs, types, output):
        c, rank = types[0].channels, types[0].rank
        scale = g.param("weight") if self.elementwise_affine else g.const([1.0] * c, types[0].dtype, "scale")
        inputs_ = [scale] + ([g.param("bias")] if self.elementwise_affine and self.bias else [])
        channel = types[0].layout.channel
        if channel == rank - 1:  # [N, C], tokens [N, L, C], channels-last maps: ONNX's own axis
            return g.op("LayerNormalization", [inputs[0], *inputs_], axis=-1, epsilon=self.eps)
        # normalise over C at each position (ConvNeXt's LayerNorm2d on NCHW): move C last,
        # normalise, move it back
        to_last = [i for i in range(rank) if i != channel] + [channel]
        moved = g.op("Transpose", [inputs[0]], perm=to_last)
        normed = g.op("LayerNormalization", [moved, *inputs_], axis=-1, epsilon=self.eps)
        return g.op("Transpose", [normed], perm=[to_last.index(i) for i in range(rank)])


class GroupNorm(ChannelNorm):
    """Group normalisation, as PyTorch's `nn.GroupNorm`: channels in `num_groups` groups, each
    normalised over its channels and all positions. Parameters `weight`, `bias` of C elements."""

    channels_first = True  # ONNX's operator reads (N, C, spatial)

    kind = "groupnorm"
    positional = ("num_groups",)
    foreign = Foreign(pytorch=("GroupNorm",), pytorch_args=("num_groups", "num_channels", "eps", "affine"),
                      keras=("GroupNormalization",), keras_args=("groups",),
                      keras_keywords={"groups": "num_groups", "epsilon": "eps"},
                      inherited={"num_channels": "number of channels"})

    num_groups: PositiveInt
    eps: PositiveFloat = 1e-5
    affine: bool = True

    def check_channels(self, t: TensorType) -> None:
        if t.channels % self.num_groups:
            raise ShapeError(f"{t.channels} channels do not divide into {self.num_groups} groups",
                             rule="channels % num_groups == 0")

    def parameters(self, inputs, output):
        c = inputs[0].channels
        return {"weight": ParamSpec((c,), init="fill", scale=1.0), "bias": ParamSpec((c,))} if self.affine else {}

    def torch_form(self, inputs, output):
        values = {"num_groups": self.num_groups, "num_channels": inputs[0].channels, "eps": self.eps,
                  "affine": self.affine}
        return TorchForm(Ctor("nn.GroupNorm", values, 2, {"eps": 1e-5, "affine": True}))

    def lower(self, g, node, inputs, types, output):
        # ONNX's GroupNormalization changed meaning in opset 21; InstanceNormalization over
        # [N, groups, rest] is the same arithmetic in every opset.
        t = types[0]
        grouped = g.op("Reshape", [inputs[0], g.const([0, self.num_groups, -1], name="groups")])
        ones = g.const([1.0] * self.num_groups, t.dtype, "ones")
        zeros = g.const([0.0] * self.num_groups, t.dtype, "zeros")
        normed = g.op("InstanceNormalization", [grouped, ones, zeros], epsilon=self.eps)
        shape = g.op("Shape", [inputs[0]])
        restored = g.op("Reshape", [normed, shape])
        if not self.affine:
            return restored
        per_channel = [t.channels] + [1] * (t.rank - 2)
        weight = g.op("Reshape", [g.param("weight"), g.const(per_channel, name="per_channel")])
        bias = g.op("Reshape", [g.param("bias"), g.const(per_channel, name="per_channel")])
        scaled = g.op("Mul", [restored, weight])
        return g.op("Add", [scaled, bias])

    def describe(self, inputs):
        return f"groupnorm {self.num_groups}"


class Normalize(Layer):
    """Each vector along `axis` divided by its Euclidean length (at least `eps`), as PyTorch's
    `F.normalize(x, dim=axis)`: Swin V2's cosine attention normalises queries and keys over
    the last axis. No parameters."""

    kind = "normalize"
    family = "norm"
    foreign = Foreign(pytorch=("normalize",), pytorch_args=("p", "dim", "eps"))
    positional = ("axis",)
    aliases = {"dim": "axis"}

    axis: Axis = "C"
    eps: PositiveFloat = 1e-12

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        resolve_axis(t, self.axis)
        return t

    def describe(self, inputs):
        t = inputs[0]
        return f"normalize {t.layout.axes[resolve_axis(t, self.axis)]}"

    def torch_form(self, inputs, output):
        dim = resolve_axis(inputs[0], self.axis)
        eps = "" if self.eps == 1e-12 else f", eps={self.eps!r}"
        return TorchForm(function=f"F.normalize({{0}}, dim={dim}{eps})")

    def lower(self, g, node, inputs, types, output):
        from netspec.lower import canonical_axis

        t, x = types[0], inputs[0]
        axis = canonical_axis(t, resolve_axis(t, self.axis))
        squares = g.op("ReduceSum", [g.op("Mul", [x, x]), g.const([axis], name="axes")], keepdims=1)
        length = g.op("Max", [g.op("Sqrt", [squares]), g.const(self.eps, t.dtype, "eps")])
        return g.op("Div", [x, length])
