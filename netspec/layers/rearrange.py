"""Layers that rearrange a tensor's elements without computing: reshape, flatten, unflatten,
squeeze, unsqueeze, permute, transpose, slice, narrow, select, split, chunk, roll, gather,
channel_shuffle.

How the layout follows (README, "Layouts through permute and reshape"): every axis is a letter
of the layout, and its letter is its role (N batch, C channels, D/H/W/L spatial; a lowercase
letter, or any other letter a spec names, is an axis without a role).
- permute and transpose move axes: each keeps its letter, so NCHW permuted by (0, 2, 3, 1) is
  NHWC and a later `layernorm` or `linear` finds the channels last.
- slice, narrow, split and chunk change one axis's size: it keeps its letter.
- select and squeeze remove axes: the others keep their letters.
- flatten merges a range of axes into one: it is the channels if the range holds them, the
  axis itself for a range of one, else an axis without a role.
- reshape keeps the letters of the axes it leaves unchanged at the front and at the back
  (same size, in order); of the axes between, one axis that merges several is the channels if
  they held the channels; the others get no role. unflatten and unsqueeze make axes without a role.
- reshape, flatten, unflatten and unsqueeze take `layout=`: the result's letters, for when the
  rule cannot know (ShuffleNet's reshape back to NCHW).
The batch is never merged, split, sliced, moved across by a reshape or removed: its size is
symbolic. A layer that needs the channels and finds none says which layer left the axes so.

Inside ONNX's graph every value has its declared layout (netspec.types.Layout.canonical, the
order PyTorch's export has too), so a permute is a Transpose and a reshape a Reshape of the
declared order (the batch moved first where it is not).
"""


from math import prod
from typing import Annotated, ClassVar

from pydantic import Field

from netspec.layers.base import ArgumentError, Axis, Ctor, Expect, Foreign, Layer, PositiveInt, TorchForm, show_value
from netspec.types import ANY_DTYPE, ROLELESS_LETTERS, DTypeError, Layout, ShapeError, TensorType

# The layer that made a layout, filled in by inference (netspec.infer.output_type) with the
# layer's kind, name and line: "the reshape `r` (line 7)".
HERE = "\0here"

_Size = Annotated[int, Field(ge=-1)]
Shape = Annotated[_Size | Annotated[tuple[_Size, ...], Field(min_length=1)], Field(),
                  Expect("the sizes of the axes after the batch: an integer or a tuple of them, "
                         "one of them -1 at most (inferred)")]
Sizes = Annotated[tuple[_Size, ...], Field(min_length=1),
                  Expect("a tuple of sizes, one of them -1 at most (inferred)")]
LayoutText = Annotated[str, Field(pattern=r"^[A-Za-z]+$"),
                       Expect('the letters of the result\'s axes, e.g. "NCHW" (N the batch, C the '
                              'channels, D/H/W/L spatial, any other letter an axis without a role)')]
Axes = Annotated[str | Annotated[tuple[int | str, ...], Field(min_length=1)], Field(),
                 Expect('the axes in their new order: letters such as "NHWC", or a tuple of letters '
                        'or indices such as (0, 2, 3, 1)')]
OptionalAxes = Annotated[int | str | Annotated[tuple[int | str, ...], Field(min_length=1)] | None, Field(),
                         Expect('an axis (a letter such as "H", or an index), a tuple of them, or none')]
Index = Annotated[int, Field(), Expect("an integer (negative counts from the end)")]
OptionalIndex = Annotated[int | None, Field(), Expect("an integer (negative counts from the end), or none")]
Piece = Annotated[int | None, Field(), Expect("the index of one piece (negative counts from the end)")]
SplitSizes = Annotated[Annotated[int, Field(ge=1)] | Annotated[tuple[Annotated[int, Field(ge=1)], ...],
                                                                Field(min_length=1)],
                       Field(), Expect("a positive integer (the size of each piece) or a tuple of sizes")]


# ---------------------------------------------------------------- axes and layouts


def axis_of(t: TensorType, axis: int | str, attribute: str = "axis", batch_ok: bool = False,
            kind: str = "", rank: int | None = None) -> int:
    """An axis written as a layout letter or an index (negative counts from the end) as an index
    into the declared layout; `rank` widens the range (unsqueeze's positions). The batch axis is
    refused unless `batch_ok`: its size is symbolic, so nothing cuts or moves across it."""
    rank = t.rank if rank is None else rank
    if isinstance(axis, str):
        if axis.upper() == "C" and "C" not in t.layout.axes and axis not in t.layout.axes:
            raise t.layout.no_channels()
        found = t.layout.axes.find(axis)
        if found < 0 and axis.upper() in t.layout.axes and axis.upper() in "NCDHWL":
            found = t.layout.axes.find(axis.upper())
        if found < 0:
            raise ShapeError(f'`{attribute}` is "{axis}", but {t} has no such axis (layout '
                             f'{t.layout.axes})', rule=f"an axis is a letter of the layout ({t.layout.axes}) "
                             f"or an index", attributes=(attribute,))
        index = found
    else:
        if isinstance(axis, bool) or not -rank <= axis < rank:
            raise ShapeError(f"`{attribute}` is {axis}, out of range for {t} ({t.rank}-D {t.layout.axes})",
                             rule=f"an index from {-rank} to {rank - 1}", attributes=(attribute,))
        index = axis % rank
    if not batch_ok and not t.layout.is_unlaid and index < t.rank and index == t.layout.batch:
        raise ShapeError(f"cannot {kind or 'work on'} the batch axis N of {t}: its size is "
                         f"symbolic, and netspec keeps the batch whole",
                         rule="rearrangements leave the batch axis alone", attributes=(attribute,),
                         hint="name another axis, by letter (\"C\", \"H\") or index")
    return index


def describe_axis(t: TensorType, index: int) -> str:
    """`the height (H, 32)`, `axis 2 (b, no role, 58)`, for messages."""
    letter, size = t.layout.axes[index], t.shape[index]
    role = t.layout.role(index)
    return f"the {role} ({letter}, {size})" if letter in "NCDHWL" else f"{role[:-1]}, {size})"


def fresh_layout(letters: list[str | None], used: str = "") -> str:
    """Letters for the axes, a fresh lowercase letter (an axis without a role) for each None."""
    taken = set(letter for letter in letters if letter) | set(used)
    spare = iter(c for c in ROLELESS_LETTERS if c not in taken)
    out = []
    for letter in letters:
        if letter is None:
            letter = next(spare, None)
            if letter is None:
                raise ShapeError(f"the result has more than {len(ROLELESS_LETTERS)} axes without a role",
                                 rule="at most 26 axes without a role")
        out.append(letter)
    return "".join(out)


def check_layout(text: str, shape: tuple, batch: int = 0, attribute: str = "layout") -> None:
    """`layout=` of a reshape: one letter per axis, none twice, the batch N where the batch is."""
    if len(text) != len(shape):
        raise ShapeError(f'`{attribute}` "{text}" names {len(text)} axes, but the result '
                         f"[{', '.join(map(str, shape))}] has {len(shape)}",
                         rule="one letter per axis of the result", attributes=(attribute,))
    repeated = sorted({c for c in text if text.count(c) > 1})
    if repeated:
        raise ShapeError(f'`{attribute}` "{text}" names axis {repeated[0]} twice',
                         rule="each letter names one axis", attributes=(attribute,))
    if text.find("N") != batch:
        where = "first" if batch == 0 else f"at axis {batch}"
        raise ShapeError(f'`{attribute}` "{text}" must put the batch N {where}, where the result keeps it',
                         rule="the batch axis stays where it is", attributes=(attribute,))


def result_layout(t: TensorType, letters: str, given: str | None, made_here: bool) -> Layout:
    """The output's layout: `given` (a `layout=`) or `letters`; its origin is this layer when it
    made axes without a role or lost the channels, else the input's."""
    if given is not None:
        return Layout(given)
    lost = t.layout.has_channels and "C" not in letters
    roleless = any(c not in "NCDHWL" for c in letters)
    if made_here and (roleless or lost):
        return Layout(letters, HERE)
    return Layout(letters, t.layout.origin if (roleless or not t.layout.has_channels) else "")


def non_batch(t: TensorType, kind: str) -> list[int]:
    """The non-batch axes in declared order (every axis of a tensor of the network's own); each
    must have a fixed size."""
    axes = [i for i in range(t.rank) if t.layout.is_unlaid or i != t.layout.batch]
    symbolic = [t.shape[i] for i in axes if not isinstance(t.shape[i], int)]
    if symbolic:
        raise ShapeError(f"cannot {kind} {t}: axis {symbolic[0]} has no fixed size",
                         rule="only the batch axis may be symbolic")
    return axes


def _product(sizes) -> str:
    return " * ".join(str(s) for s in sizes)


def reshape_roles(letters: str, sizes: list[int], out: list[int]) -> list[str | None]:
    """The reshape rule: the letters of the axes kept unchanged at the front and at the back; of
    the axes between, one that merges several holding the channels is the channels; None for
    the others (axes without a role)."""
    front = 0
    while front < min(len(sizes), len(out)) and sizes[front] == out[front]:
        front += 1
    back = 0
    while (back < min(len(sizes), len(out)) - front and sizes[len(sizes) - 1 - back] == out[len(out) - 1 - back]):
        back += 1
    middle_in = letters[front:len(letters) - back]
    middle_out = len(out) - front - back
    result: list[str | None] = list(letters[:front])
    if middle_out == 1 and "C" in middle_in:
        result.append("C")
    else:
        result.extend([None] * middle_out)
    result.extend(letters[len(letters) - back:])
    return result


def resolve_sizes(sizes: tuple[int, ...], total: int, t: TensorType, kind: str, attribute: str,
                  what: str) -> list[int]:
    """Sizes with at most one -1, inferred so that they hold `total` elements."""
    shown = show_value(sizes)
    if sizes.count(-1) > 1:
        raise ShapeError(f"`{attribute}` {shown} has -1 more than once: only one size can be inferred",
                         rule="at most one -1", attributes=(attribute,))
    if 0 in sizes:
        raise ShapeError(f"`{attribute}` {shown} has a size 0", rule="sizes are at least 1 (or -1, inferred)",
                         attributes=(attribute,))
    known = prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if total % known:
            raise ShapeError(f"cannot infer the -1 in {shown}: {what} has {total:,} elements, which do not "
                             f"divide by {_product([s for s in sizes if s != -1])} = {known:,}",
                             rule="the sizes hold every element", attributes=(attribute,))
        return [total // known if s == -1 else s for s in sizes]
    if known != total:
        hint = None
        for i in reversed(range(len(sizes))):   # a -1 in place of one size, where it fits
            rest = prod(s for j, s in enumerate(sizes) if j != i)
            if total % rest == 0:
                hint = f"write -1 for the size to infer: `{show_value(sizes[:i] + (-1,) + sizes[i + 1:])}`"
                break
        raise ShapeError(f"`{attribute}` {shown} holds {known:,} elements, but {what} has {total:,}",
                         rule="a reshape keeps every element: the sizes' product is the input's",
                         attributes=(attribute,), hint=hint)
    return list(sizes)


# ---------------------------------------------------------------- lowering helpers


def _transpose(g, x: str, perm: list[int]) -> str:
    return x if perm == sorted(perm) else g.op("Transpose", [x], perm=perm)


def batch_first(t: TensorType) -> list[int]:
    """The declared axes with the batch moved first (the order a reshape reads elements in)."""
    return [t.layout.batch, *(i for i in range(t.rank) if i != t.layout.batch)]


def from_canonical(g, x: str, t: TensorType, order: list[int]) -> str:
    """`x`, a value of type `t` as the ONNX graph holds it (its canonical order, the declared
    one), transposed to the declared axes `order`."""
    canonical = list(t.layout.canonical)
    return _transpose(g, x, [canonical.index(axis) for axis in order])


def to_canonical(g, y: str, t: TensorType, order: list[int]) -> str:
    """`y`, a value of type `t` whose axes are the declared axes `order`, transposed to the order
    the ONNX graph holds `t` in."""
    return _transpose(g, y, [order.index(axis) for axis in t.layout.canonical])


def lower_reshape(g, x: str, t: TensorType, output: TensorType) -> str:
    """Any reshape of the non-batch axes: to the declared order (batch first), Reshape (0 keeps
    the batch), back to canonical order."""
    y = from_canonical(g, x, t, batch_first(t))
    order = batch_first(output)
    sizes = [output.shape[i] for i in order[1:]]
    y = g.op("Reshape", [y, g.const([0, *sizes], name="shape")])
    return to_canonical(g, y, output, order)


def torch_reshape(t: TensorType, output: TensorType) -> str:
    """lower_reshape as PyTorch writes it: the batch first (where it is not), the other axes
    reshaped to the output's, in its declared order, and the batch moved to its place."""
    b, out = t.layout.batch, output.layout.batch
    x = "{0}" if b == 0 else f"{{0}}.movedim({b}, 0)"
    sizes = [output.shape[i] for i in batch_first(output)[1:]]
    sizes = [d if isinstance(d, int) else -1 for d in sizes]
    y = f"{x}.reshape({{0}}.shape[{b}], {', '.join(map(str, sizes))})" if sizes else f"{x}.reshape({{0}}.shape[{b}])"
    return y if out == 0 else f"{y}.movedim(0, {out})"


def torch_index(axis: int, item: str) -> str:
    """`{0}[:, :, 2:5]`: `item` indexes axis `axis`."""
    return "{0}[" + ", ".join([":"] * axis + [item]) + "]"


def canonical_index(t: TensorType, axis: int) -> int:
    return list(t.layout.canonical).index(axis)


def _geometry_of_one_axis(t: TensorType, axis: int, window):
    """A layer that cuts one axis: the spatial ones stay where they are."""
    if axis not in t.layout.spatial:
        return None
    return [window if i == axis else ("window", 1, 1, 0) for i in t.layout.spatial]


def _spatial_changed(t: TensorType, output: TensorType):
    """Receptive fields past a layer that merges, splits, adds or removes spatial axes: each
    output sees the whole input (as after a flatten)."""
    before = [t.layout.axes[i] + str(t.shape[i]) for i in t.layout.spatial]
    after = [output.layout.axes[i] + str(output.shape[i]) for i in output.layout.spatial]
    return "global" if before and before != after else None


# ---------------------------------------------------------------- reshapes


class Reshape(Layer):
    """The non-batch axes reshaped, read in the declared layout's order, as PyTorch's
    `x.reshape(x.size(0), *shape)`; one size may be -1 (inferred)."""

    kind = "reshape"
    family = "rearrange"
    positional = ("shape",)
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch=("reshape", "view"), pytorch_args=("shape",))

    shape: Shape
    layout: LayoutText | None = None

    unlaid_inputs = True  # a param's or buffer's every axis (Swin's relative position bias)

    @classmethod
    def from_arguments(cls, positional, keywords):
        if len(positional) > 1 and "shape" not in keywords:  # PyTorch's x.reshape(n, 4, 8)
            sizes = ", ".join(show_value(v) for v in positional[1:])
            raise ArgumentError(
                f"reshape takes the sizes after the batch as one tuple, but got {len(positional)} values",
                arg=1, reason="positional",
                hint=f"the batch is kept: write `reshape(({sizes},))`" if len(positional) == 2 else
                f"the batch is kept, so leave its size out: write `reshape(({sizes}))`")
        return super().from_arguments(positional, keywords)

    def _sizes(self) -> tuple[int, ...]:
        return (self.shape,) if isinstance(self.shape, int) else self.shape

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        axes = non_batch(t, "reshape")
        sizes = [t.shape[i] for i in axes]
        if t.layout.is_unlaid:
            out = resolve_sizes(self._sizes(), prod(sizes), t, "reshape", "shape", f"{t} ({_product(sizes)})")
            if self.layout is not None:
                raise ShapeError(f"`layout` names the axes of an activation; {t} is a tensor of the "
                                 "network's own, whose axes take their meaning from the activation it meets",
                                 rule="a param's or buffer's axes have no roles", attributes=("layout",))
            return TensorType(t.dtype, tuple(out), Layout.unlaid(len(out)))
        out = resolve_sizes(self._sizes(), prod(sizes), t, "reshape", "shape",
                            f"each sample of {t} ({_product(sizes) or 1})")
        shape = (t.batch, *out)
        if self.layout is not None:
            check_layout(self.layout, shape)
        letters = "N" + fresh_layout(reshape_roles("".join(t.layout.axes[i] for i in axes), sizes, out), "N")
        return TensorType(t.dtype, shape, result_layout(t, letters, self.layout, True))

    def describe(self, inputs):
        return f"reshape {show_value(self.shape)}"

    def explain(self, inputs, output):
        t = inputs[0]
        sizes = [str(t.shape[i]) for i in non_batch(t, "reshape")]
        return [f"elements per sample: {' * '.join(sizes)} = {output.sample_elements():,}",
                f"layout: {t.layout.axes} -> {output.layout.axes}"], []

    def geometry(self, inputs):
        return _spatial_changed(inputs[0], self.infer(inputs))

    def torch_form(self, inputs, output):
        if inputs[0].layout.is_unlaid:
            return TorchForm(function=f"{{0}}.reshape{tuple(output.shape)!r}")
        return TorchForm(function=torch_reshape(inputs[0], output))

    def lower(self, g, node, inputs, types, output):
        if types[0].layout.is_unlaid:
            return g.op("Reshape", [inputs[0], g.const(list(output.shape), name="shape")])
        return lower_reshape(g, inputs[0], types[0], output)


class Flatten(Layer):
    """Without attributes: every axis but the batch, in the declared layout's order: [N, C, H, W]
    -> [N, C*H*W] (for NHWC input the features come out in H, W, C order, which decides the
    weights a following `linear` needs). With `start_dim`/`end_dim` (PyTorch's): the axes from
    one to the other (letters or indices, inclusive), as `torch.flatten(x, start_dim, end_dim)`."""

    kind = "flatten"
    foreign = Foreign(pytorch=("Flatten",), pytorch_args=("start_dim", "end_dim"), keras=("Flatten",))
    family = "rearrange"
    positional = ("start_dim", "end_dim")
    aliases = {"start": "start_dim", "end": "end_dim"}
    dtypes = ANY_DTYPE

    start_dim: Annotated[int | str | None, Field(), Expect('an axis: a letter such as "C", or an index')] = None
    end_dim: Annotated[int | str | None, Field(), Expect('an axis: a letter such as "W", or an index')] = None
    layout: LayoutText | None = None

    def _range(self, t: TensorType) -> tuple[int, int] | None:
        if self.start_dim is None and self.end_dim is None:
            return None
        start = axis_of(t, 1 if self.start_dim is None else self.start_dim, "start_dim", True)
        end = axis_of(t, -1 if self.end_dim is None else self.end_dim, "end_dim", True)
        if start > end:
            raise ShapeError(f"start_dim {show_value(self.start_dim)} (axis {start}) comes after end_dim "
                             f"{show_value(self.end_dim)} (axis {end}) in {t.layout.axes}",
                             rule="flatten(start_dim, end_dim) with start_dim <= end_dim",
                             attributes=("start_dim", "end_dim"))
        if start <= t.layout.batch <= end:
            raise ShapeError(f"axes {start} to {end} of {t} ({t.layout.axes}) include the batch N: flattening "
                             f"them would merge it into the others, and netspec keeps the batch whole",
                             rule="the batch axis is never flattened", attributes=("start_dim", "end_dim"),
                             hint="start after the batch: `flatten(1)` (or leave the attributes out)")
        return start, end

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        span = self._range(t)
        if span is None:
            non_batch(t, "flatten")
            shape = (t.batch, t.sample_elements())
            if self.layout is not None:
                check_layout(self.layout, shape)
            return TensorType(t.dtype, shape, Layout(self.layout or "NC"))
        start, end = span
        merged = t.shape[start:end + 1]
        if any(not isinstance(d, int) for d in merged):
            raise ShapeError(f"cannot flatten {t}: an axis in the range has no fixed size",
                             rule="only the batch axis may be symbolic")
        letters = t.layout.axes[start:end + 1]
        letter = letters if len(letters) == 1 else "C" if "C" in letters else None
        kept = t.layout.axes[:start] + t.layout.axes[end + 1:]
        shape = (*t.shape[:start], prod(merged), *t.shape[end + 1:])
        if self.layout is not None:  # the batch moves forward when the range is before it
            batch = t.layout.batch if t.layout.batch < start else t.layout.batch - (end - start)
            check_layout(self.layout, shape, batch)
        axes = kept[:start] + fresh_layout([letter], kept) + kept[start:]
        return TensorType(t.dtype, shape, result_layout(t, axes, self.layout, letter is None))

    def describe(self, inputs):
        span = self._range(inputs[0])
        return "flatten" if span is None else f"flatten {inputs[0].layout.axes[span[0]:span[1] + 1]}"

    def explain(self, inputs, output):
        t = inputs[0]
        span = self._range(t)
        if span is None:
            sizes = [str(d) for i, d in enumerate(t.shape) if i != t.layout.batch]
            order = "".join(a for a in t.layout.axes if a != "N")
            return [f"features: {' * '.join(sizes)} = {output.sample_elements():,} (in {order} order)"], []
        start, end = span
        return [f"axes {t.layout.axes[start:end + 1]}: {_product(t.shape[start:end + 1])} = "
                f"{prod(t.shape[start:end + 1]):,}"], []

    def geometry(self, inputs):
        return "global" if inputs[0].layout.spatial else None

    def torch_form(self, inputs, output):
        t = inputs[0]
        span = self._range(t)
        if span is None and output.rank == 2:
            if t.layout.batch == 0:
                return TorchForm(Ctor("nn.Flatten"), function="torch.flatten({0}, 1)")
            return TorchForm(function=f"torch.flatten({{0}}.movedim({t.layout.batch}, 0), 1)")
        if span is not None and not span[0] <= t.layout.batch <= span[1]:
            start, end = span
            return TorchForm(Ctor("nn.Flatten", {"start_dim": start, "end_dim": end}, 2),
                             function=f"torch.flatten({{0}}, {start}, {end})")
        return TorchForm(function=torch_reshape(t, output))

    def lower(self, g, node, inputs, types, output):
        t, x = types[0], inputs[0]
        if self._range(t) is None and output.rank == 2:
            # the batch first, then every other axis in the declared layout's order
            return g.op("Flatten", [from_canonical(g, x, t, batch_first(t))], axis=1)
        return lower_reshape(g, x, t, output)


class Unflatten(Layer):
    """One axis split into several, as PyTorch's `nn.Unflatten(dim, unflattened_size)`: the
    sizes hold the axis's elements (one may be -1). The new axes have no role unless
    `layout=` names them."""

    kind = "unflatten"
    family = "rearrange"
    positional = ("axis", "sizes")
    aliases = {"dim": "axis", "unflattened_size": "sizes"}
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch=("Unflatten",), pytorch_args=("dim", "unflattened_size"))

    axis: Axis
    sizes: Sizes
    layout: LayoutText | None = None

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        non_batch(t, "unflatten")
        axis = axis_of(t, self.axis, "axis", kind="unflatten")
        n = t.shape[axis]
        out = resolve_sizes(self.sizes, n, t, "unflatten", "sizes", describe_axis(t, axis))
        shape = (*t.shape[:axis], *out, *t.shape[axis + 1:])
        if self.layout is not None:
            check_layout(self.layout, shape)
        kept = t.layout.axes[:axis] + t.layout.axes[axis + 1:]
        letters = t.layout.axes[:axis] + fresh_layout([None] * len(out), kept) + t.layout.axes[axis + 1:]
        return TensorType(t.dtype, shape, result_layout(t, letters, self.layout, True))

    def describe(self, inputs):
        t = inputs[0]
        return f"unflatten {t.layout.axes[axis_of(t, self.axis, kind=self.kind)]} -> {show_value(self.sizes)}"

    def geometry(self, inputs):
        return _spatial_changed(inputs[0], self.infer(inputs))

    def torch_form(self, inputs, output):
        return TorchForm(function=torch_reshape(inputs[0], output))

    def lower(self, g, node, inputs, types, output):
        return lower_reshape(g, inputs[0], types[0], output)


class Squeeze(Layer):
    """Removes axes of size 1, as PyTorch's `squeeze(dim)`: the one named (a letter, an index or
    a tuple of them; it must be of size 1, where PyTorch silently keeps it), or without `axis`
    every axis of size 1 but the batch."""

    kind = "squeeze"
    family = "rearrange"
    positional = ("axis",)
    aliases = {"dim": "axis"}
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch_args=("dim",))

    axis: OptionalAxes = None

    unlaid_inputs = True

    def _removed(self, t: TensorType) -> list[int]:
        if self.axis is None:
            found = [i for i in non_batch(t, "squeeze") if t.shape[i] == 1]
            if not found:
                raise ShapeError(f"{t} ({t.layout.axes}) has no axis of size 1 to remove",
                                 rule="squeeze removes axes of size 1")
            return found
        named = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        found = []
        for axis in named:
            index = axis_of(t, axis, "axis", kind="squeeze")
            if t.shape[index] != 1:
                raise ShapeError(f"cannot remove {describe_axis(t, index)} of {t}: its size is not 1",
                                 rule="squeeze removes axes of size 1", attributes=("axis",),
                                 hint="PyTorch's squeeze leaves such an axis in place; netspec says so")
            if index in found:
                raise ShapeError(f"`axis` names {describe_axis(t, index)} twice", attributes=("axis",),
                                 rule="each axis once")
            found.append(index)
        return sorted(found)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        removed = self._removed(t)
        keep = [i for i in range(t.rank) if i not in removed]
        letters = "".join(t.layout.axes[i] for i in keep)
        return TensorType(t.dtype, tuple(t.shape[i] for i in keep), result_layout(t, letters, None, True))

    def describe(self, inputs):
        t = inputs[0]
        return "squeeze " + "".join(t.layout.axes[i] for i in self._removed(t))

    def geometry(self, inputs):
        return _spatial_changed(inputs[0], self.infer(inputs))

    def torch_form(self, inputs, output):
        removed = tuple(self._removed(inputs[0]))
        return TorchForm(function=f"{{0}}.squeeze({removed[0] if len(removed) == 1 else removed!r})")

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        axes = [canonical_index(t, i) for i in self._removed(t)]
        return g.op("Squeeze", [inputs[0], g.const(axes, name="axes")])


class Unsqueeze(Layer):
    """Inserts an axis of size 1 at position `axis` of the result, as PyTorch's `unsqueeze(dim)`;
    it has no role unless `layout=` names it (`unsqueeze(-1, layout="NCHW")` on [N, C, H])."""

    kind = "unsqueeze"
    family = "rearrange"
    positional = ("axis",)
    aliases = {"dim": "axis"}
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch_args=("dim",))

    axis: Index
    layout: LayoutText | None = None

    unlaid_inputs = True

    def _position(self, t: TensorType) -> int:
        if isinstance(self.axis, bool) or not -(t.rank + 1) <= self.axis <= t.rank:
            raise ShapeError(f"`axis` is {self.axis}, out of range for {t} ({t.rank}-D): the new axis goes "
                             f"at a position from {-(t.rank + 1)} to {t.rank}",
                             rule="an index from -(rank + 1) to rank", attributes=("axis",))
        return self.axis % (t.rank + 1)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        at = self._position(t)
        shape = (*t.shape[:at], 1, *t.shape[at:])
        if t.layout.is_unlaid:
            return TensorType(t.dtype, shape, Layout.unlaid(len(shape)))
        if self.layout is not None:
            check_layout(self.layout, shape, t.layout.batch + (1 if t.layout.batch >= at else 0))
        letters = t.layout.axes[:at] + fresh_layout([None], t.layout.axes) + t.layout.axes[at:]
        return TensorType(t.dtype, shape, result_layout(t, letters, self.layout, True))

    def describe(self, inputs):
        return f"unsqueeze {self.axis}"

    def geometry(self, inputs):
        return _spatial_changed(inputs[0], self.infer(inputs))

    def torch_form(self, inputs, output):
        return TorchForm(function=f"{{0}}.unsqueeze({self._position(inputs[0])})")

    def lower(self, g, node, inputs, types, output):
        # values keep their declared layouts inside the graph: the new axis goes where declared
        return g.op("Unsqueeze", [inputs[0], g.const([self._position(types[0])], name="axes")])


# ---------------------------------------------------------------- moving axes


def _moved(g, x: str, t: TensorType, output: TensorType) -> str:
    """A permute's lowering: one Transpose, from the input's letters to the output's (each axis
    keeps its letter)."""
    before = [t.layout.axes[i] for i in t.layout.canonical]
    after = [output.layout.axes[i] for i in output.layout.canonical]
    return _transpose(g, x, [before.index(letter) for letter in after])


class _Move(Layer):
    """A layer that moves axes (`permute`, `transpose`): each axis keeps its size and its role
    letter, so the layout moves with it. Subclasses give the new order."""

    family = "rearrange"
    dtypes = ANY_DTYPE
    unlaid_inputs = True  # a param's axes move too (the relative position bias's heads first)

    def _order(self, t: TensorType) -> list[int]:
        raise NotImplementedError

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        order = self._order(t)
        if t.layout.is_unlaid:
            return TensorType(t.dtype, tuple(t.shape[i] for i in order), t.layout)
        letters = "".join(t.layout.axes[i] for i in order)
        return TensorType(t.dtype, tuple(t.shape[i] for i in order), Layout(letters, t.layout.origin))

    def describe(self, inputs):
        t = inputs[0]
        if t.layout.is_unlaid:
            return f"{self.kind} {show_value(tuple(self._order(t)))}"
        return f"{self.kind} {t.layout.axes} -> {''.join(t.layout.axes[i] for i in self._order(t))}"

    def torch_form(self, inputs, output):
        t = inputs[0]
        if t.layout.is_unlaid:
            perm = self._order(t)
        else:
            before, after = t.layout.axes, output.layout.axes
            perm = [before.index(letter) for letter in after]
        return TorchForm(function="{0}" if perm == sorted(perm) else f"{{0}}.permute{tuple(perm)!r}")

    def lower(self, g, node, inputs, types, output):
        if types[0].layout.is_unlaid:
            return _transpose(g, inputs[0], self._order(types[0]))
        return _moved(g, inputs[0], types[0], output)


class Permute(_Move):
    """The axes in a new order, as PyTorch's `x.permute(0, 2, 3, 1)` (indices, or letters:
    `permute("NHWC")`, `permute(("N", "H", "W", "C"))`). Each axis keeps its role: NCHW permuted
    by (0, 2, 3, 1) is NHWC, and a following `layernorm` or `linear` works on its last axis, the
    channels (ConvNeXt's block)."""

    kind = "permute"
    family = "rearrange"
    positional = ("dims",)
    aliases = {"axes": "dims"}
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch=("Permute",), pytorch_args=("dims",))

    dims: Axes

    @classmethod
    def from_arguments(cls, positional, keywords):
        if len(positional) > 1 and "dims" not in keywords and "axes" not in keywords:
            positional = [tuple(positional)]  # PyTorch's x.permute(0, 2, 3, 1)
        return super().from_arguments(positional, keywords)

    def _order(self, t: TensorType) -> list[int]:
        named = tuple(self.dims) if isinstance(self.dims, str) else self.dims
        if len(named) != t.rank:
            last = t.layout.axes.replace("C", "") + "C" if t.layout.has_channels else t.layout.axes
            raise ShapeError(f"{show_value(self.dims)} names {len(named)} axes, but {t} has {t.rank} "
                             f"({t.layout.axes})", hint=f'name every axis once, e.g. `permute("{last}")` '
                             f"(the channels last)" if last != t.layout.axes else "name every axis once",
                             rule="permute names every axis once", attributes=("dims",))
        order = [axis_of(t, a, "dims", batch_ok=True) for a in named]
        for index in order:
            if order.count(index) > 1:
                raise ShapeError(f"{show_value(self.dims)} names {describe_axis(t, index)} twice",
                                 rule="permute names every axis once", attributes=("dims",))
        return order



class Transpose(_Move):
    """Two axes swapped, as PyTorch's `x.transpose(dim0, dim1)` (letters or indices); each keeps
    its role, as with `permute`."""

    kind = "transpose"
    family = "rearrange"
    positional = ("dim0", "dim1")
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch_args=("dim0", "dim1"))

    dim0: Axis
    dim1: Axis

    def _order(self, t: TensorType) -> list[int]:
        a = axis_of(t, self.dim0, "dim0", batch_ok=True)
        b = axis_of(t, self.dim1, "dim1", batch_ok=True)
        order = list(range(t.rank))
        order[a], order[b] = b, a
        return order



# ---------------------------------------------------------------- cutting one axis


class _Cut(Layer):
    """A layer that keeps a range of one axis (start, size, step): the axis keeps its role."""

    dtypes = ANY_DTYPE
    unlaid_inputs = True  # a third of a param (Swin V2's qkv bias without its keys' part)

    def _cut(self, t: TensorType) -> tuple[int, int, int, int]:
        """(axis, start, stop, step), resolved against the input."""
        raise NotImplementedError

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        axis, start, stop, step = self._cut(t)
        shape = list(t.shape)
        shape[axis] = -(-(stop - start) // step)
        return TensorType(t.dtype, tuple(shape), t.layout)

    def geometry(self, inputs):
        t = inputs[0]
        axis, start, _, step = self._cut(t)
        return _geometry_of_one_axis(t, axis, ("window", 1, step, -start))

    def torch_form(self, inputs, output):
        axis, start, stop, step = self._cut(inputs[0])
        return TorchForm(function=torch_index(axis, f"{start}:{stop}" + (f":{step}" if step != 1 else "")))

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        axis, start, stop, step = self._cut(t)
        args = [inputs[0], g.const([start], name="starts"), g.const([stop], name="ends"),
                g.const([canonical_index(t, axis)], name="axes")]
        if step != 1:
            args.append(g.const([step], name="steps"))
        return g.op("Slice", args)


def _position(t: TensorType, axis: int, value: int, attribute: str, allow_end: bool) -> int:
    n = t.shape[axis]
    high = n if allow_end else n - 1
    if not -n <= value <= high:
        raise ShapeError(f"`{attribute}` {value} is out of range for {describe_axis(t, axis)}: "
                         f"from {-n} to {high}", rule=f"{attribute} within the axis (negative counts "
                         f"from the end)", attributes=(attribute,))
    return value + n if value < 0 else value


class Slice(_Cut):
    """Elements `start` to `end` (exclusive) of one axis, every `step`-th, as Python's
    `x[:, start:end:step]` on that axis; negative positions count from the end, `end` defaults to
    the axis's end. Unlike Python, a position past the axis is an error, not clipped."""

    kind = "slice"
    family = "rearrange"
    positional = ("axis", "start", "end", "step")
    aliases = {"dim": "axis", "stop": "end"}
    foreign = Foreign(pytorch_args=("dim", "start", "end", "step"))

    axis: Axis
    start: Index = 0
    end: OptionalIndex = None
    step: PositiveInt = 1

    def _cut(self, t):
        axis = axis_of(t, self.axis, "axis", kind="slice")
        start = _position(t, axis, self.start, "start", False)
        stop = t.shape[axis] if self.end is None else _position(t, axis, self.end, "end", True)
        if stop <= start:
            raise ShapeError(f"slice {self.start}:{'' if self.end is None else self.end} of "
                             f"{describe_axis(t, axis)} is empty (from {start} to {stop})",
                             rule="a slice keeps at least one element: start < end",
                             attributes=("start", "end"))
        return axis, start, stop, self.step

    def describe(self, inputs):
        t = inputs[0]
        axis, start, stop, step = self._cut(t)
        return f"slice {t.layout.axes[axis]} {start}:{stop}" + (f":{step}" if step != 1 else "")


class Narrow(_Cut):
    """`length` elements of one axis from `start` (negative counts from the end), as PyTorch's
    `torch.narrow(x, dim, start, length)`."""

    kind = "narrow"
    family = "rearrange"
    positional = ("axis", "start", "length")
    aliases = {"dim": "axis"}
    foreign = Foreign(pytorch_args=("dim", "start", "length"))

    axis: Axis
    start: Index
    length: PositiveInt

    def _cut(self, t):
        axis = axis_of(t, self.axis, "axis", kind="narrow")
        start = _position(t, axis, self.start, "start", False)
        if start + self.length > t.shape[axis]:
            raise ShapeError(f"narrow from {start} for {self.length} runs past the end of "
                             f"{describe_axis(t, axis)}", rule="start + length <= size",
                             attributes=("start", "length"))
        return axis, start, start + self.length, 1

    def describe(self, inputs):
        t = inputs[0]
        axis, start, stop, _ = self._cut(t)
        return f"narrow {t.layout.axes[axis]} {start}:{stop}"


class Select(Layer):
    """One index of one axis, the axis removed, as PyTorch's `x.select(dim, index)` (`x[:, i]`)."""

    kind = "select"
    family = "rearrange"
    positional = ("axis", "index")
    aliases = {"dim": "axis"}
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch_args=("dim", "index"))

    axis: Axis
    index: Index

    unlaid_inputs = True

    def _at(self, t: TensorType) -> tuple[int, int]:
        axis = axis_of(t, self.axis, "axis", kind="select")
        return axis, _position(t, axis, self.index, "index", False)

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        axis, _ = self._at(t)
        letters = t.layout.axes[:axis] + t.layout.axes[axis + 1:]
        return TensorType(t.dtype, t.shape[:axis] + t.shape[axis + 1:], result_layout(t, letters, None, True))

    def describe(self, inputs):
        t = inputs[0]
        axis, index = self._at(t)
        return f"select {t.layout.axes[axis]} {index}"

    def geometry(self, inputs):
        return _spatial_changed(inputs[0], self.infer(inputs))

    def torch_form(self, inputs, output):
        axis, index = self._at(inputs[0])
        return TorchForm(function=torch_index(axis, str(index)))

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        axis, index = self._at(t)
        return g.op("Gather", [inputs[0], g.const(index, name="index")], axis=canonical_index(t, axis))


class _Pieces(_Cut):
    """Cuts one axis into pieces: several tensors, bound to several names (`a, b = x ->
    chunk(2)`; netspec.elaborate makes one node per piece, each with its `piece`), or the one
    that `piece` names."""

    several: ClassVar[bool] = True

    def _axis(self, t: TensorType) -> int:
        return axis_of(t, self.axis, "axis", kind=self.kind)

    def pieces(self, t: TensorType) -> list[tuple[int, int]]:
        """(start, size) of every piece."""
        raise NotImplementedError

    def _cut(self, t):
        pieces = self.pieces(t)
        if self.piece is None:
            raise ShapeError(f"{self.kind} gives {len(pieces)} tensors; bind them to names",
                             rule="a value is one tensor")
        if not -len(pieces) <= self.piece < len(pieces):
            raise ShapeError(f"`piece` {self.piece} is out of range: {self.kind} gives {len(pieces)} "
                             f"pieces of {describe_axis(t, self._axis(t))}",
                             rule=f"piece from {-len(pieces)} to {len(pieces) - 1}", attributes=("piece",))
        start, size = pieces[self.piece]
        return self._axis(t), start, start + size, 1

    def describe(self, inputs):
        t = inputs[0]
        axis, start, stop, _ = self._cut(t)
        return f"{self.kind} {t.layout.axes[axis]} {start}:{stop}"


class Chunk(_Pieces):
    """`chunks` pieces of one axis (default the channels), as PyTorch's `torch.chunk`: each of
    ceil(size / chunks) elements, the last smaller, so there may be fewer pieces than asked."""

    kind = "chunk"
    family = "rearrange"
    positional = ("chunks", "axis")
    aliases = {"dim": "axis"}
    foreign = Foreign(pytorch_args=("chunks", "dim"))

    chunks: PositiveInt
    axis: Axis = "C"
    piece: Piece = None

    def pieces(self, t):
        n = t.shape[self._axis(t)]
        size = -(-n // self.chunks)
        return [(start, min(size, n - start)) for start in range(0, n, size)]


class Split(_Pieces):
    """Pieces of one axis (default the channels), as PyTorch's `torch.split`: of
    `split_size_or_sections` elements each (the last smaller), or of the sizes a tuple lists,
    which must add up to the axis."""

    kind = "split"
    family = "rearrange"
    positional = ("split_size_or_sections", "axis")
    aliases = {"dim": "axis", "split_size": "split_size_or_sections", "sections": "split_size_or_sections"}
    foreign = Foreign(pytorch_args=("split_size_or_sections", "dim"))

    split_size_or_sections: SplitSizes
    axis: Axis = "C"
    piece: Piece = None

    def pieces(self, t):
        axis = self._axis(t)
        n = t.shape[axis]
        sizes = self.split_size_or_sections
        if isinstance(sizes, int):
            return [(start, min(sizes, n - start)) for start in range(0, n, sizes)]
        if sum(sizes) != n:
            raise ShapeError(f"the sizes {show_value(sizes)} add up to {sum(sizes)}, but "
                             f"{describe_axis(t, axis)} has {n}", rule="split sizes add up to the axis",
                             attributes=("split_size_or_sections",))
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return list(zip(starts, sizes))


# ---------------------------------------------------------------- rolling and gathering


class Roll(Layer):
    """Elements shifted cyclically along one axis or several, as PyTorch's `torch.roll(x,
    shifts, dims)`: `shifts` and `axes` are an integer or a letter each, or tuples of the same
    length; an element at position i goes to i + shift (modulo the size). Swin's shifted
    windows roll H and W by minus half a window, and back. Not the batch."""

    kind = "roll"
    family = "rearrange"
    positional = ("shifts", "axes")
    aliases = {"dims": "axes", "dim": "axes", "shift": "shifts"}
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch=("roll",), pytorch_args=("shifts", "dims"))

    shifts: Annotated[int | Annotated[tuple[int, ...], Field(min_length=1)], Field(),
                      Expect("an integer shift, or a tuple of them (one per axis)")]
    axes: Annotated[int | str | Annotated[tuple[int | str, ...], Field(min_length=1)], Field(),
                    Expect('an axis (a letter such as "H", or an index), or a tuple of them')]

    def _rolls(self, t: TensorType) -> list[tuple[int, int]]:
        """(axis, shift) pairs, the shift taken modulo the axis's size."""
        shifts = self.shifts if isinstance(self.shifts, tuple) else (self.shifts,)
        axes = self.axes if isinstance(self.axes, tuple) else (self.axes,)
        if len(shifts) != len(axes):
            raise ShapeError(f"{len(shifts)} shift{'s' if len(shifts) != 1 else ''} for {len(axes)} "
                             f"ax{'es' if len(axes) != 1 else 'is'}", rule="one shift per axis",
                             attributes=("shifts", "axes"))
        rolls = []
        for shift, named in zip(shifts, axes):
            axis = axis_of(t, named, "axes", kind="roll")
            if any(a == axis for a, _ in rolls):
                raise ShapeError(f"`axes` names {describe_axis(t, axis)} twice", rule="each axis once",
                                 attributes=("axes",))
            rolls.append((axis, shift % t.shape[axis]))
        return rolls

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        self._rolls(t)
        return t

    def describe(self, inputs):
        t = inputs[0]
        shifts = self.shifts if isinstance(self.shifts, tuple) else (self.shifts,)
        return "roll " + " ".join(f"{t.layout.axes[a]}{s:+d}" for (a, _), s in zip(self._rolls(t), shifts))

    def geometry(self, inputs):
        # an element can come from the far end of a rolled spatial axis
        t = inputs[0]
        return "global" if any(a in t.layout.spatial and s for a, s in self._rolls(t)) else None

    def torch_form(self, inputs, output):
        rolls = [(axis, shift) for axis, shift in self._rolls(inputs[0]) if shift]
        if not rolls:
            return TorchForm(function="{0}")
        shifts, dims = tuple(s for _, s in rolls), tuple(a for a, _ in rolls)
        return TorchForm(function=f"torch.roll({{0}}, {shifts!r}, {dims!r})")

    def lower(self, g, node, inputs, types, output):
        t, y = types[0], inputs[0]
        for axis, shift in self._rolls(t):
            if shift == 0:
                continue
            n, at = t.shape[axis], canonical_index(t, axis)
            # the last `shift` elements come first: x[n - shift:] then x[:n - shift]
            tail = g.op("Slice", [y, g.const([n - shift], name="starts"), g.const([n], name="ends"),
                                  g.const([at], name="axes")])
            head = g.op("Slice", [y, g.const([0], name="starts"), g.const([n - shift], name="ends"),
                                  g.const([at], name="axes")])
            y = g.op("Concat", [tail, head], axis=at)
        return y


class Gather(Layer):
    """`gather(table, index)`: the entries of `table` that an integer tensor `index` picks along
    `axis` (default 0), as NumPy's `take`, ONNX's Gather and PyTorch's `table[index]` (not
    `torch.gather`): the result's shape is the table's with that axis replaced by the index's
    shape. Swin's relative position bias is a learned table indexed by a constant buffer. The
    index is a tensor of the network's own (a buffer of i64 or i32); the table may be one too,
    or an activation (not along its batch)."""

    kind = "gather"
    family = "rearrange"
    arity = None
    positional = ("axis",)
    aliases = {"dim": "axis"}
    dtypes = ANY_DTYPE
    unlaid_inputs = True
    foreign = Foreign(pytorch=("index_select", "take"), pytorch_args=("dim", "index"))

    axis: Axis = 0

    def infer_dtype(self, inputs, names=()):
        super().infer_dtype(inputs, names)
        if len(inputs) == 2 and inputs[1].dtype not in ("i64", "i32"):
            shown = f"`{names[1]}` " if len(names) > 1 else ""
            raise DTypeError(f"the index {shown}{inputs[1]} is {inputs[1].dtype}", rule="an index is i64 or i32",
                             hint="declare it `buffer(..., dtype=i64)`")
        return inputs[0].dtype

    def infer(self, inputs: list[TensorType]) -> TensorType:
        if len(inputs) != 2:
            raise ShapeError(f"takes two tensors, got {len(inputs)}", rule="gather(table, index)")
        table, index = inputs
        if not index.layout.is_unlaid:
            raise ShapeError(f"the index {index} is an activation", rule="the index is a tensor of the "
                             "network's own: a buffer of integers", hint="make it `buffer(..., dtype=i64, init=...)`")
        axis = axis_of(table, self.axis, "axis", kind="gather along")
        shape = (*table.shape[:axis], *index.shape, *table.shape[axis + 1:])
        if table.layout.is_unlaid:
            return TensorType(table.dtype, shape, Layout.unlaid(len(shape)))
        kept = table.layout.axes[:axis] + table.layout.axes[axis + 1:]
        new = table.layout.axes[axis] if index.rank == 1 else fresh_layout([None] * index.rank, kept)
        letters = table.layout.axes[:axis] + new + table.layout.axes[axis + 1:]
        return TensorType(table.dtype, shape, result_layout(table, letters, None, index.rank != 1))

    def describe(self, inputs):
        table = inputs[0]
        axis = axis_of(table, self.axis, "axis")
        return "gather" if table.layout.is_unlaid else f"gather {table.layout.axes[axis]}"

    def geometry(self, inputs):
        t = inputs[0]
        return None if t.layout.is_unlaid else _spatial_changed(t, self.infer(inputs))

    def torch_form(self, inputs, output):
        table, index = inputs
        axis = axis_of(table, self.axis, "axis")
        return TorchForm(function=torch_index(axis, "{1}" if index.dtype == "i64" else "{1}.long()"))

    def lower(self, g, node, inputs, types, output):
        table = types[0]
        axis = axis_of(table, self.axis, "axis")
        _check_indices(g.weights.get(inputs[1]), table.shape[axis], describe_axis(table, axis)
                       if not table.layout.is_unlaid else f"axis {axis} ({table.shape[axis]})")
        if table.layout.is_unlaid:
            return g.op("Gather", inputs, axis=axis)
        # an activation: gather in declared order, the result in its own
        order = list(range(table.rank))
        y = g.op("Gather", [from_canonical(g, inputs[0], table, order), inputs[1]], axis=axis)
        return to_canonical(g, y, output, list(range(output.rank)))


def _check_indices(index, size: int, where: str) -> None:
    """An index's values (the spec's or a weights file's) within the axis it picks from, which
    onnxruntime would refuse only when the model runs."""
    if index is None or index.size == 0:
        return
    low, high = int(index.min()), int(index.max())
    if low < -size or high >= size:
        from netspec.lower import LoweringError

        bad = high if high >= size else low
        raise LoweringError(f"the index holds {bad}, out of range for {where}: from {-size} to {size - 1}",
                            hint="an index picks entries of the table along `axis`")


# ---------------------------------------------------------------- channel shuffle


class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle, as PyTorch's `nn.ChannelShuffle(groups)`: the channels,
    seen as `groups` rows of C/groups, read column by column (reshape to [N, g, C/g, ...],
    swap those two axes, reshape back). The layout is kept."""

    channels_first = True  # reshapes (N, C, spatial)

    kind = "channel_shuffle"
    family = "rearrange"
    positional = ("groups",)
    dtypes = ANY_DTYPE
    foreign = Foreign(pytorch=("ChannelShuffle",), pytorch_args=("groups",))

    groups: PositiveInt

    def infer(self, inputs: list[TensorType]) -> TensorType:
        (t,) = inputs
        if t.channels % self.groups:
            raise ShapeError(f"{t.channels} channels do not divide into {self.groups} groups",
                             rule="channels % groups == 0", attributes=("groups",))
        return t

    def describe(self, inputs):
        return f"channel_shuffle g={self.groups}"

    def torch_form(self, inputs, output):
        return TorchForm(Ctor("nn.ChannelShuffle", {"groups": self.groups}, 1),
                         function=f"{{0}}.unflatten(1, ({self.groups}, -1)).transpose(1, 2).flatten(1, 2)")

    def lower(self, g, node, inputs, types, output):
        t = types[0]
        c = t.channels
        rest = [t.shape[i] for i in t.layout.canonical[2:]]
        x = g.op("Reshape", [inputs[0], g.const([0, self.groups, c // self.groups, *rest], name="groups")])
        x = g.op("Transpose", [x], perm=[0, 2, 1, *range(3, 3 + len(rest))])
        return g.op("Reshape", [x, g.const([0, c, *rest], name="shape")])
