"""Attention and products of activations: `multihead_attention` (PyTorch's
nn.MultiheadAttention, self-attention over tokens) and `matmul` (`torch.matmul` of two tensors).

Tokens are a 3-D tensor with a batch, a channel axis (the embedding, E) and one more axis (the
tokens, L): [N, L, E] declared NLC, as `batch_first=True` reads it (an NCL tensor is read by
role just the same). Every product is counted in the MACs: the projections, QK^T and AV.
"""


from netspec.layers.base import Ctor, Foreign, Layer, ParamSpec, PositiveInt, Probability, TorchForm, explain_counts
from netspec.layers.rearrange import from_canonical, to_canonical
from netspec.types import ShapeError, TensorType


def _tokens(t: TensorType, kind: str) -> tuple[int, int]:
    """The token count L and the embedding width E of a token tensor, or the error."""
    others = [i for i in range(t.rank) if i != t.layout.batch and i != t.layout.channel] \
        if t.layout.has_channels else []
    if t.rank != 3 or not t.layout.has_channels or len(others) != 1:
        raise ShapeError(f"takes tokens [N, L, E] (a batch, the tokens and the embedding as the channels, "
                         f"layout NLC), got {t} {t.layout}",
                         rule=f"{kind} works on a 3-D tensor of tokens",
                         hint="patch embeddings: `conv(d, p, stride=p) -> flatten(2) -> permute(0, 2, 1)` "
                              "gives [N, L, D] NLC")
    return t.shape[others[0]], t.channels  # type: ignore[return-value]


class MultiheadAttention(Layer):
    """Self-attention over tokens as `nn.MultiheadAttention(E, num_heads, batch_first=True)(x, x, x,
    need_weights=False)` at inference: E is the input's embedding width."""

    kind = "multihead_attention"
    family = "attention"
    positional = ("num_heads", "dropout")
    foreign = Foreign(pytorch=("MultiheadAttention",), pytorch_args=("embed_dim", "num_heads", "dropout", "bias"),
                      inherited={"embed_dim": "embedding width"},
                      pytorch_traps={
                          "add_bias_kv": "netspec's attention has no extra key and value biases",
                          "add_zero_attn": "netspec's attention adds no zero batch to the keys",
                          "kdim": "netspec's attention is self-attention: keys have the embedding width",
                          "vdim": "netspec's attention is self-attention: values have the embedding width",
                          "batch_first": "netspec reads the axes by role: tokens are [N, L, E] (NLC)"})

    num_heads: PositiveInt
    dropout: Probability = 0.0
    bias: bool = True

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        _, e = _tokens(t, self.kind)
        if e % self.num_heads:
            raise ShapeError(f"the embedding width {e} does not divide into {self.num_heads} heads",
                             rule="embedding width % num_heads == 0 (each head sees E / num_heads channels)",
                             hint=f"heads that divide {e}: "
                                  + ", ".join(str(h) for h in range(1, min(e, 64) + 1) if e % h == 0),
                             attributes=("num_heads",))
        return t

    def parameters(self, inputs, output):
        e = inputs[0].channels
        # PyTorch: xavier_uniform_ for in_proj_weight, zeros for the biases; out_proj as a Linear
        params = {"in_proj_weight": ParamSpec((3 * e, e), init="uniform", scale=(6 / (4 * e)) ** 0.5)}
        if self.bias:
            params["in_proj_bias"] = ParamSpec((3 * e,), init="zeros")
        params["out_proj.weight"] = ParamSpec((e, e), init="uniform", scale=e ** -0.5)
        if self.bias:
            params["out_proj.bias"] = ParamSpec((e,), init="zeros")
        return params

    def macs(self, inputs, output):
        length, e = _tokens(inputs[0], self.kind)
        # in_proj, QK^T, AV, out_proj
        return length * e * 3 * e + 2 * length * length * e + length * e * e

    def explain(self, inputs, output):
        length, e = _tokens(inputs[0], self.kind)
        d = e // self.num_heads
        terms = [f"3 * {e} * {e}", f"{e} * {e}"] + ([f"3 * {e}", str(e)] if self.bias else [])
        lines = explain_counts(self.parameters(inputs, output), terms, None, [])
        lines.append(f"MACs: in_proj {length} * {e} * {3 * e} + QK^T {length} * {length} * {e} + "
                     f"AV {length} * {length} * {e} + out_proj {length} * {e} * {e} = "
                     f"{self.macs(inputs, output):,}")
        return lines, [f"{self.num_heads} heads of {d} channels, scaled by 1/sqrt({d})"]

    def describe(self, inputs):
        return f"attention {self.num_heads} heads"

    def torch_form(self, inputs, output):
        t = inputs[0]
        values = {"embed_dim": t.channels, "num_heads": self.num_heads}
        if self.dropout:
            values["dropout"] = self.dropout
        if not self.bias:
            values["bias"] = False
        values["batch_first"] = True
        order = [t.layout.batch, next(i for i in range(3) if i not in (t.layout.batch, t.layout.channel)),
                 t.layout.channel]
        if order == [0, 1, 2]:
            call = "{m}({0}, {0}, {0}, need_weights=False)[0]"
        else:  # [N, L, E] for batch_first, and back
            back = tuple(order.index(i) for i in range(3))
            call = (f"{{m}}(*[{{0}}.permute{tuple(order)!r}] * 3, need_weights=False)[0]"
                    f".permute{back!r}")
        return TorchForm(Ctor("nn.MultiheadAttention", values, 2), call)

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        e, h = t.channels, self.num_heads
        d = e // h
        dtype = t.dtype
        # tokens as nn.MultiheadAttention(batch_first=True) reads them, (N, L, E): NLC as declared
        order = [t.layout.batch, next(i for i in range(3) if i not in (t.layout.batch, t.layout.channel)),
                 t.layout.channel]
        x = from_canonical(g, inputs[0], t, order)
        w_in = g.op("Transpose", [g.param("in_proj_weight")], perm=[1, 0])
        qkv = g.op("MatMul", [x, w_in])
        if self.bias:
            qkv = g.op("Add", [qkv, g.param("in_proj_bias")])
        # (N, L, 3E) -> (N, L, 3, H, d) -> (3, N, H, L, d)
        qkv = g.op("Reshape", [qkv, g.const([0, 0, 3, h, d], "i64", "shape")])
        qkv = g.op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])
        q, k, v = (g.op("Gather", [qkv, g.const(i, "i64", "index")], axis=0) for i in range(3))
        kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
        scores = g.op("MatMul", [q, kt])
        scores = g.op("Mul", [scores, g.const(d ** -0.5, dtype, "scale")])
        weights = g.op("Softmax", [scores], axis=-1)
        heads = g.op("MatMul", [weights, v])                          # (N, H, L, d)
        merged = g.op("Transpose", [heads], perm=[0, 2, 1, 3])        # (N, L, H, d)
        merged = g.op("Reshape", [merged, g.const([0, 0, e], "i64", "shape")])
        w_out = g.op("Transpose", [g.param("out_proj.weight")], perm=[1, 0])
        y = g.op("MatMul", [merged, w_out])
        if self.bias:
            y = g.op("Add", [y, g.param("out_proj.bias")])
        return to_canonical(g, y, output, order)


class MatMul(Layer):
    """`matmul(a, b)`: torch.matmul of two tensors of at least 2 axes, [..., M, K] @ [..., K, P] ->
    [..., M, P], the leading axes broadcast; the result is laid out as `a`."""

    kind = "matmul"
    family = "attention"
    arity = None
    unlaid_inputs = True  # a param as either operand (a weight, a bias table)
    foreign = Foreign(pytorch=("matmul",))

    def infer(self, inputs: list[TensorType]) -> TensorType:
        from netspec.shapes import broadcast

        if len(inputs) != 2:
            raise ShapeError(f"takes two tensors, got {len(inputs)}", rule="matmul(a, b) is a @ b")
        a, b = inputs
        laid = a if not a.layout.is_unlaid else b
        for name, t in (("a", a), ("b", b)):
            if t.rank < 2:
                raise ShapeError(f"operand {name} {t} has {t.rank} axis; matmul needs at least 2",
                                 rule="matmul multiplies the last two axes")
            if not t.layout.is_unlaid and t.layout.batch >= t.rank - 2:
                raise ShapeError(f"operand {name} {t} {t.layout} has the batch among its last two axes",
                                 rule="matmul multiplies the last two axes; the batch is a leading one")
        if a.shape[-1] != b.shape[-2]:
            ra = a.layout.role(a.rank - 1) if not a.layout.is_unlaid else "its own"
            rb = b.layout.role(b.rank - 2) if not b.layout.is_unlaid else "its own"
            raise ShapeError(f"inner sizes differ: {a} @ {b}: a's last axis ({ra}) is {a.shape[-1]}, b's "
                             f"second-to-last ({rb}) is {b.shape[-2]}",
                             rule="a @ b needs a's last axis equal to b's second-to-last")
        lead = broadcast([a.shape[:-2], b.shape[:-2]])
        if lead is None:
            raise ShapeError(f"leading axes do not broadcast: {a} @ {b}",
                             rule="matmul's leading axes are equal, or 1, or missing (NumPy's rule)")
        if a.layout.is_unlaid and b.layout.is_unlaid:
            raise ShapeError("matmul of tensors of the network's own alone", rule="matmul takes an activation")
        shape = tuple(lead) + (a.shape[-2], b.shape[-1])
        if len(shape) != laid.rank:
            raise ShapeError(f"the result {list(shape)} has more axes than the activation {laid}",
                             rule="a param in a matmul has at most the activation's axes")
        return TensorType(laid.dtype, shape, laid.layout)

    def infer_dtype(self, inputs, names=()):
        from netspec.layers.merge import same_dtype

        super().infer_dtype(inputs, names)
        return same_dtype(inputs, names)

    def macs(self, inputs, output):
        return output.sample_elements() * inputs[0].shape[-1]

    def torch_form(self, inputs, output):
        return TorchForm(function="{0} @ {1}")

    def lower(self, g, node, inputs, types, output):
        return g.op("MatMul", inputs)  # the last two axes as declared, as the graph keeps them
