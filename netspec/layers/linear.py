"""Fully connected layers."""


from netspec.layers.base import Foreign, Layer, PositiveInt, explain_counts, fan_in_uniform
from netspec.types import TensorType


class Linear(Layer):
    """Fully connected layer over [N, features], as PyTorch's `nn.Linear`.

    `in_features` comes from the input, which must be flat: put `flatten` (or a global pool
    and `flatten`) before it.
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

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self.require_rank(t, 2, "[N, features]",
                          hint=f"add `-> flatten` before it (it would see {t.sample_elements():,} features)"
                          if t.rank > 2 and all(isinstance(d, int) for i, d in enumerate(t.shape)
                                                if i != t.layout.batch) else None)
        return t.with_axes(channels=self.out_features)

    def parameters(self, inputs, output):
        (t,) = inputs
        params = {"weight": fan_in_uniform((self.out_features, t.channels), t.channels)}
        if self.bias:
            params["bias"] = fan_in_uniform((self.out_features,), t.channels)
        return params

    def macs(self, inputs, output):
        return inputs[0].channels * self.out_features

    def explain(self, inputs, output):
        n = inputs[0].channels
        terms = [f"{self.out_features} * {n}"] + ([str(self.out_features)] if self.bias else [])
        return explain_counts(self.parameters(inputs, output), terms, self.macs(inputs, output),
                              [str(n), str(self.out_features)]), []

    def lower(self, g, node, inputs, types, output):
        weights = [inputs[0], g.param("weight")] + ([g.param("bias")] if self.bias else [])
        return g.op("Gemm", weights, transB=1)
