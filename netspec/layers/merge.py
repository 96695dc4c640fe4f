"""Layers that combine several tensors: element-wise `+` and `*`, and `concat`."""


from typing import ClassVar, Sequence

from netspec.layers.base import Axis, Foreign, Layer, Refusal, TorchForm, show_value
from netspec.shapes import broadcast
from netspec.types import ANY_DTYPE, AXIS_ROLES, FLOATS, NUMBERS, DTypeError, ShapeError, TensorType


def resolve_axis(t: TensorType, axis: int | str) -> int:
    """An axis given as a layout letter ("C") or an index (negative counts from the end), as
    an index into the declared layout."""
    if isinstance(axis, str):
        letter = axis if axis in t.layout.axes else axis.upper()
        if letter == "C" and not t.layout.has_channels:
            raise t.layout.no_channels()
        if letter not in t.layout.axes:
            raise ShapeError(f'axis "{axis}" is not in layout {t.layout} of {t}',
                             rule=f"axis is one of {', '.join(t.layout.axes)}")
        return t.layout.axes.index(letter)
    if not -t.rank <= axis < t.rank:
        raise ShapeError(f"axis {axis} is out of range for {t} ({t.rank}-D)",
                         rule=f"axis in [{-t.rank}, {t.rank - 1}]")
    return axis % t.rank


def _along(t: TensorType, axis: int) -> str:
    """`the tokens (L)`, `the channels (C)`, `axis 2 (a)`: a concat's axis, for its rule."""
    role = t.layout.role(axis)
    return f"axis {axis} ({t.layout.axes[axis]})" if role.startswith("axis") else f"the {role} ({t.layout.axes[axis]})"


def _roles(t: TensorType) -> str:
    """The layout with every axis without a role as `*`: such axes have no identity (a reshape
    names them with fresh letters, a transpose swaps two), so merges match them by position."""
    return "".join(a if a in AXIS_ROLES else "*" for a in t.layout.axes)


def _alike(inputs: list[TensorType], kind: str) -> None:
    """Merged tensors share one layout, axes without a role matched by position (their one
    dtype is the dtype rule's: `same_dtype`)."""
    first = inputs[0]
    for other in inputs[1:]:
        if _roles(other) != _roles(first) and other.rank == first.rank:
            raise ShapeError(f"{kind} of tensors in different layouts: {first} {first.layout} and "
                             f"{other} {other.layout}", rule="inputs share one layout")


def _disagreeing(inputs: list[TensorType], skip: int | None, broadcasts: bool) -> tuple[int, ...]:
    """The axes (of the widest input's layout) on which same-rank inputs disagree; sizes of 1
    agree with anything where the merge broadcasts, and where it broadcasts a tensor of the
    network's own (a param) counts too, aligned on the last axes."""
    rank = max(t.rank for t in inputs)
    same = [t for t in inputs if t.rank == rank or (broadcasts and t.layout.is_unlaid)]
    axes = []
    for axis in range(rank):
        sizes = {t.shape[axis - rank + t.rank] for t in same if axis >= rank - t.rank} - ({1} if broadcasts else set())
        if axis != skip and len(sizes) > 1:
            axes.append(axis)
    return tuple(axes)


def same_dtype(inputs: list[TensorType], names: Sequence[str]) -> str:
    """Merged tensors share one dtype: ONNX's Add, Mul and Concat do not promote (PyTorch does),
    so a mix is an error that says which operand to cast."""
    first = inputs[0]
    for i, other in enumerate(inputs[1:], start=1):
        if other.dtype != first.dtype:
            shown = [f"`{names[j]}` {t}" if j < len(names) else str(t) for j, t in ((0, first), (i, other))]
            # cast the one that is not floating point (a mask, an index) to the other's dtype
            cast, to = (i, first.dtype) if first.dtype in FLOATS and other.dtype not in FLOATS else (0, other.dtype) \
                if other.dtype in FLOATS and first.dtype not in FLOATS else (i, first.dtype)
            name = f"`{names[cast]}`" if cast < len(names) else "that operand"
            written = f"{names[cast]} -> cast({to})" if cast < len(names) else f"... -> cast({to})"
            raise DTypeError(f"inputs of different dtypes: {shown[0]} is {first.dtype}, "
                             f"{shown[1]} is {other.dtype}", rule="inputs share one dtype",
                             hint=f"cast {name} to {to} first: `({written})`")
    return first.dtype


class Elementwise(Layer):
    """Base of `+` and `*`: equal shapes, or shapes that broadcast by NumPy's rules; or one
    tensor and a number, `scalar` (`q * d ** -0.5`, `16 * x`, `x - 1`)."""

    family = "merge"
    arity = None
    dtypes = NUMBERS  # ONNX's Add and Mul take no bool
    symbol: ClassVar[str] = "?"
    onnx_op: ClassVar[str] = ""
    unlaid_inputs = True  # a param (layer scale) or a buffer broadcasts against the activation

    scalar: float | None = None

    def infer_dtype(self, inputs, names=()):
        super().infer_dtype(inputs, names)
        if self.scalar is not None:
            (t,) = inputs
            if t.dtype not in FLOATS and not float(self.scalar).is_integer():
                raise DTypeError(f"`{self.symbol} {show_value(self.scalar)}` on {t}: a fraction is not a "
                                 f"value of {t.dtype}", rule="a tensor and a number share the tensor's dtype",
                                 hint=f"cast it first: `x -> cast(f32) {self.symbol} ...`")
            return t.dtype
        return same_dtype(inputs, names)

    def describe(self, inputs):
        if self.scalar is None:
            return self.kind
        return f"{self.kind} {self.scalar:.6g}"

    def attributes(self):
        return {} if self.scalar is None else {"scalar": self.scalar}

    def infer(self, inputs: list[TensorType]) -> TensorType:
        if self.scalar is not None:
            (t,) = inputs
            return t
        laid = [t for t in inputs if not t.layout.is_unlaid] or inputs
        _alike(laid, self.kind)
        widest = max(laid, key=lambda t: t.rank)
        for t in inputs:
            if t.rank > widest.rank:  # only a param or a buffer can be wider than the activations
                raise ShapeError(f"the tensor of the network's own {t} has more axes than the activation "
                                 f"{widest} it meets", rule="a param or a buffer broadcasts against an "
                                 "activation: it has at most the activation's axes, aligned on the last ones",
                                 hint="leave out its leading sizes of 1")
        shape = broadcast([t.shape for t in inputs])
        if shape is None:
            shapes = f" {self.symbol} ".join(str(t) for t in inputs)
            raise ShapeError(f"shapes do not match: {shapes}",
                             rule=f"`{self.symbol}` needs equal shapes, or sizes of 1 that broadcast",
                             axes=_disagreeing(inputs, skip=None, broadcasts=True))
        return TensorType(widest.dtype, shape, widest.layout)

    def refusal(self, inputs, output, opset):
        if len({t.rank for t in inputs if not t.layout.is_unlaid}) > 1:
            return Refusal("broadcasting between tensors of different ranks is not lowered yet",
                           hint="give both operands the same rank")
        return None

    def torch_form(self, inputs, output):
        if self.scalar is None:
            return TorchForm(function=f" {self.symbol} ".join(f"{{{i}}}" for i in range(len(inputs))))
        value = self.scalar if inputs[0].dtype in FLOATS or not float(self.scalar).is_integer() else int(self.scalar)
        if self.symbol == "+" and value < 0:  # `x - 1`, as it was written
            return TorchForm(function=f"{{0}} - {-value!r}")
        return TorchForm(function=f"{{0}} {self.symbol} {value!r}")

    def lower(self, g, node, inputs, types, output):
        if self.scalar is not None:
            return g.op(self.onnx_op, [inputs[0], g.const(self.scalar, types[0].dtype, name="scalar")])
        # a param aligns on the activation's last axes, in the declared layout the graph keeps:
        # ONNX's own broadcasting
        value = inputs[0]
        for other in inputs[1:]:
            value = g.op(self.onnx_op, [value, other])
        return value


class Add(Elementwise):
    """Element-wise sum (`a + b`): residual connections, feature-pyramid merges."""

    kind = "add"
    foreign = Foreign(keras=("Add",))
    symbol = "+"
    onnx_op = "Add"


class Mul(Elementwise):
    """Element-wise product (`a * b`) with broadcasting: attention and squeeze-and-excitation gates."""

    kind = "mul"
    foreign = Foreign(keras=("Multiply",))
    symbol = "*"
    onnx_op = "Mul"


class Concat(Layer):
    """Join tensors along an axis (default: the channel axis of the layout); every other axis
    must match."""

    kind = "concat"
    foreign = Foreign(keras=("Concatenate",), keras_args=("axis",))
    family = "merge"
    arity = None
    dtypes = ANY_DTYPE
    aliases = {"dim": "axis"}

    def infer_dtype(self, inputs, names=()):
        return same_dtype(inputs, names)

    axis: Axis = "C"

    unlaid_inputs = True  # a class token: a param with a batch axis of 1, expanded over the batch

    def infer(self, inputs: list[TensorType]) -> TensorType:
        laid = [t for t in inputs if not t.layout.is_unlaid]
        if not laid:
            raise ShapeError("concat of tensors of the network's own alone (params, buffers)",
                             rule="concat joins activations; a param in it is expanded over their batch",
                             hint="concatenate it with an activation")
        _alike(laid, "concat")
        first = laid[0]
        axis = resolve_axis(first, self.axis)
        if axis == first.layout.batch:
            raise ShapeError("concat along the batch axis is not supported",
                             rule="concat joins channels or spatial axes")
        inputs = [self._expanded(t, first) for t in inputs]
        for other in inputs:
            if other.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(first.shape, other.shape))
                                               if i != axis):
                raise ShapeError(f"shapes do not match along the other axes: {first} and {other}",
                                 rule=f"concat along {_along(first, axis)} needs every other axis equal",
                                 axes=_disagreeing(inputs, skip=axis, broadcasts=False))
        total = sum(t.shape[axis] for t in inputs)
        shape = first.shape[:axis] + (total,) + first.shape[axis + 1:]
        return TensorType(first.dtype, shape, first.layout)

    @staticmethod
    def _expanded(t: TensorType, activation: TensorType) -> TensorType:
        """A param (ViT's class token, [1, 1, D]) as the activation's type: its axes are the
        activation's, in its declared layout, and its size 1 on the batch axis is expanded
        over the batch (`class_token.expand(n, -1, -1)`)."""
        if not t.layout.is_unlaid:
            return t
        batch = activation.layout.batch
        if t.rank != activation.rank:
            raise ShapeError(f"the tensor of the network's own {t} has {t.rank} axes, the activation {activation} "
                             f"{activation.rank}", rule="a param in a concat has the activation's axes, its "
                             "batch axis of size 1 (expanded over the batch)",
                             hint=f"declare it with {activation.rank} sizes, 1 on the batch axis")
        if t.shape[batch] != 1:
            raise ShapeError(f"the tensor of the network's own {t} has size {t.shape[batch]} on the batch axis "
                             f"(axis {batch} of {activation.layout})", rule="a param in a concat has size 1 on "
                             "the batch axis: it is expanded over the batch",
                             hint="make its first size 1, as ViT's class token `param(1, 1, d)`")
        shape = t.shape[:batch] + (activation.shape[batch],) + t.shape[batch + 1:]
        return TensorType(t.dtype, shape, activation.layout)

    def lower(self, g, node, inputs, types, output):
        from netspec.lower import canonical_axis

        values = []
        reference = next(v for v, t in zip(inputs, types) if not t.layout.is_unlaid)
        b = output.layout.batch  # the batch axis, declared as inside the graph
        for value, t in zip(inputs, types):
            if t.layout.is_unlaid:  # expanded over the batch: 1s elsewhere keep the param's sizes
                batch = g.op("Slice", [g.op("Shape", [reference]), g.const([b], "i64", "start"),
                                       g.const([b + 1], "i64", "end")])
                parts = ([g.const([1] * b, "i64", "ones")] if b else []) + [batch] + \
                    ([g.const([1] * (t.rank - b - 1), "i64", "ones")] if b < t.rank - 1 else [])
                value = g.op("Expand", [value, g.op("Concat", parts, axis=0)])
            values.append(value)
        return g.op("Concat", values, axis=canonical_axis(output, resolve_axis(output, self.axis)))

    def torch_form(self, inputs, output):
        reference = next(i for i, t in enumerate(inputs) if not t.layout.is_unlaid)
        b = output.layout.batch
        parts = []
        for i, t in enumerate(inputs):
            if t.layout.is_unlaid:  # a param expanded over the batch (`class_token.expand(n, -1, -1)`)
                sizes = ["-1"] * t.rank
                sizes[b] = f"{{{reference}}}.shape[{b}]"
                parts.append(f"{{{i}}}.expand({', '.join(sizes)})")
            else:
                parts.append(f"{{{i}}}")
        return TorchForm(function=f"torch.cat([{', '.join(parts)}], dim={resolve_axis(output, self.axis)})")

    def describe(self, inputs):
        laid = [t for t in inputs if not t.layout.is_unlaid]
        if not laid:
            return "concat"
        return f"concat {laid[0].layout.axes[resolve_axis(laid[0], self.axis)]}"
