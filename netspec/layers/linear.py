"""Fully connected layers."""


from netspec.layers.base import Ctor, Foreign, Layer, PositiveInt, TorchForm, explain_counts, fan_in_uniform
from netspec.types import ShapeError, TensorType


class Linear(Layer):
    """Fully connected layer over the channel axis, as PyTorch's `nn.Linear` over the last axis:
    [N, features] (after `flatten`), or any rank whose last axis holds the channels ([N, H, W, C]
    in NHWC, [N, L, C] in NLC), applied at every position.

    `in_features` comes from the input. On a channels-first tensor (NCHW), whose last axis is a
    spatial one, netspec refuses rather than mix pixels: flatten first, or lay it out
    channels-last.
    """

    kind = "linear"
    family = "linear"
    positional = ("out_features",)
    foreign = Foreign(pytorch=("Linear", "LazyLinear"), pytorch_args=("in_features", "out_features", "bias"),
                      keras=("Dense",), keras_args=("units",),
                      keras_keywords={"units": "out_features", "use_bias": "bias"},
                      inherited={"in_features": "input features"})

    out_features: PositiveInt
    bias: bool = True

    # over the last axis of a tensor of the network's own too: Swin V2's continuous position
    # bias is an MLP over a constant table of coordinates
    unlaid_inputs = True

    @staticmethod
    def _in_features(t: TensorType) -> int:
        return t.shape[-1] if t.layout.is_unlaid else t.channels  # type: ignore[return-value]

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if t.layout.is_unlaid:
            return TensorType(t.dtype, (*t.shape[:-1], self.out_features), t.layout)
        if t.rank > 2 and t.layout.channel != t.rank - 1:
            last = t.layout.role(t.rank - 1)
            flat = all(isinstance(d, int) for i, d in enumerate(t.shape) if i != t.layout.batch)
            raise ShapeError(
                f"expects a 2-D [N, features] input or a channels-last one, got {t} ({t.rank}-D "
                f"{t.layout}: its last axis is the {last}, not the channels)",
                rule="linear applies to the channels, the input's last axis",
                hint=(f"add `-> flatten` before it (it would see {t.sample_elements():,} features)" if flat
                      else "add `-> flatten` before it") + ", or lay the input out channels-last")
        if t.rank < 2:
            raise ShapeError(f"expects an input with a batch and a feature axis, got {t}", rule="rank >= 2")
        return t.with_axes(channels=self.out_features)

    def parameters(self, inputs, output):
        (t,) = inputs
        n = self._in_features(t)
        params = {"weight": fan_in_uniform((self.out_features, n), n)}
        if self.bias:
            params["bias"] = fan_in_uniform((self.out_features,), n)
        return params

    def macs(self, inputs, output):
        # every output element is one dot product of in_features terms
        return output.sample_elements() * self._in_features(inputs[0])

    def explain(self, inputs, output):
        n = self._in_features(inputs[0])
        terms = [f"{self.out_features} * {n}"] + ([str(self.out_features)] if self.bias else [])
        positions = output.sample_elements() // self.out_features
        mac_terms = ([str(positions)] if positions != 1 else []) + [str(n), str(self.out_features)]
        return explain_counts(self.parameters(inputs, output), terms, self.macs(inputs, output), mac_terms), []

    def torch_form(self, inputs, output):
        values = {"in_features": self._in_features(inputs[0]), "out_features": self.out_features, "bias": self.bias}
        return TorchForm(Ctor("nn.Linear", values, 2, {"bias": True}))

    def lower(self, g, node, inputs, types, output):
        if types[0].rank == 2 and not types[0].layout.is_unlaid:
            weights = [inputs[0], g.param("weight")] + ([g.param("bias")] if self.bias else [])
            return g.op("Gemm", weights, transB=1)
        # the features last, as the graph keeps channels-last tensors ([N, L, C] tokens, [N, H, W,
        # C], Swin's windows) and a param's values: nn.Linear's MatMul (+ Add), which onnxruntime
        # fuses into a Gemm
        y = g.op("MatMul", [inputs[0], g.op("Transpose", [g.param("weight")], perm=[1, 0])])
        return g.op("Add", [y, g.param("bias")]) if self.bias else y
