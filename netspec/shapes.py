"""Pure shape arithmetic shared by every sliding-window layer (convolution and pooling), for
any number of spatial axes (1-D [N, C, L], 2-D [N, C, H, W], 3-D [N, C, D, H, W]):

    out = floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1

on each axis, with PyTorch's `ceil_mode` rule for pooling. Nothing here knows about layers or
syntax, so the formulas are tested directly and every layer computes sizes the same way. Axes
are named by their layout letters (D, H, W, L: depth, height, width, length), never by position.
"""

from __future__ import annotations

from dataclasses import dataclass

from netspec.types import AXIS_ROLES, ShapeError

# The spatial letters a tensor of 1, 2 or 3 spatial axes has by default (NCL, NCHW, NCDHW).
AXIS_LETTERS = {1: "L", 2: "HW", 3: "DHW"}
AXIS_NAMES = {n: tuple(AXIS_ROLES[a] for a in letters) for n, letters in AXIS_LETTERS.items()}
# what decides a window's output size, besides the input
WINDOW_ATTRIBUTES = ("kernel", "stride", "padding", "dilation")
# how the two sides of each axis are called, for messages: (begin, end)
_SIDES = {"D": ("front", "back"), "H": ("top", "bottom"), "W": ("left", "right"), "L": ("left", "right")}


def letters_of(count: int, letters: str | None = None) -> str:
    """The spatial axes' letters: those given (a tensor's, in D, H, W order), else the default
    letters of `count` axes ("L", "HW", "DHW")."""
    if letters is not None:
        return letters
    return AXIS_LETTERS.get(count, "".join(f"{i}" for i in range(count)))


def axis_name(letter: str) -> str:
    """`height` for H: what an axis is, in words."""
    return AXIS_ROLES.get(letter, f"axis {letter}")


def spatial_words(letters: str) -> str:
    """`a 2-D input (height, width)`: how a message names the input's spatial axes."""
    names = ", ".join(axis_name(a) for a in letters)
    return f"a {len(letters)}-D input ({names})" if letters else "an input without spatial axes"


def pads_order(letters: str) -> str:
    """`(top, left, bottom, right)`: the order of begins-then-ends padding for these axes."""
    sides = [_SIDES.get(a, (f"{a} begin", f"{a} end")) for a in letters]
    return "(" + ", ".join([b for b, _ in sides] + [e for _, e in sides]) + ")"


def _show(value) -> str:
    """`(3, 3, 3)`, `(2, 1.5)`: a size as a spec writes it."""
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(map(_show, value)) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand(value, rank: int, name: str | None = None, letters: str | None = None) -> tuple:
    """A number or a tuple of one per spatial axis, as a tuple of `rank` (PyTorch's `_pair`,
    `_triple`). With a `name`, a tuple of another length is a ShapeError naming the attribute
    and the axes; without one it comes back as it is (a padding of begins and ends)."""
    if not isinstance(value, (tuple, list)):
        return (value,) * rank
    if len(value) == 1:
        return tuple(value) * rank
    if len(value) == rank or name is None:
        return tuple(value)
    letters = letters_of(rank, letters)
    raise ShapeError(f"`{name}` {_show(value)} has {len(value)} values, but this is {spatial_words(letters)}",
                     rule="a size is one integer for every spatial axis, or one per spatial axis",
                     hint=f"give `{name}` one value, or {rank} ({', '.join(axis_name(a) for a in letters)})",
                     attributes=(name,))


@dataclass(frozen=True, slots=True)
class Window:
    """One spatial axis of a sliding window: sizes in, the padding used, the size out."""

    size: int
    kernel: int
    stride: int
    dilation: int
    pad_begin: int
    pad_end: int
    ceil_mode: bool
    out: int
    unused: int  # input rows (or columns) past the last window, never seen: the formula's remainder

    @property
    def effective_kernel(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    def note(self, axis: str) -> str | None:
        """Where the division was not exact: the input rows (H), columns (W), slices (D) or
        positions (L) a window never reaches. `axis` is the axis's letter."""
        if not self.unused:
            return None
        unit = {"H": "row", "height": "row", "D": "slice", "L": "position"}.get(axis, "column")
        plural = "s" if self.unused > 1 else ""
        return (f"{axis}: (in + pads - window) % stride = {self.unused}, so the last {self.unused} "
                f"{unit}{plural} of the padded input {'are' if plural else 'is'} never covered by a window")

    def formula(self) -> str:
        """The arithmetic with the real numbers, e.g. `floor((224 + 2 + 2 - 1*(11-1) - 1) / 4) + 1 = 55`."""
        rounding = "ceil" if self.ceil_mode else "floor"
        pads = (f"2*{self.pad_begin}" if self.pad_begin == self.pad_end
                else f"{self.pad_begin} + {self.pad_end}")
        return (f"{rounding}(({self.size} + {pads} - {self.dilation}*({self.kernel}-1) - 1)"
                f" / {self.stride}) + 1 = {self.out}")


def resolve_padding(padding, kernel: tuple[int, ...], stride: tuple[int, ...],
                    dilation: tuple[int, ...], sizes: tuple[int, ...],
                    letters: str | None = None) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis.

    `padding` is an int, a tuple of one per axis, a tuple of begins then ends (ONNX `pads`
    order: (top, left, bottom, right) in 2-D, (left, right) in 1-D, (front, top, left, back,
    bottom, right) in 3-D), "valid" (none) or "same" (output size = ceil(in / stride); an odd
    total puts the extra element at the end, as PyTorch and ONNX's SAME_UPPER do). One value
    per axis is read first: in 1-D a pair is (left, right), in 2-D (h, w).
    """
    rank = len(kernel)
    if padding == "valid":
        return [(0, 0)] * rank
    if padding == "same":
        pads = []
        for size, k, s, d in zip(sizes, kernel, stride, dilation):
            out = -(-size // s)
            total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        return [(padding, padding)] * rank
    padding = tuple(padding)
    if len(padding) == 1:
        return [(padding[0], padding[0])] * rank
    if len(padding) == rank:
        return [(p, p) for p in padding]
    if len(padding) == 2 * rank:
        return list(zip(padding[:rank], padding[rank:]))
    letters = letters_of(rank, letters)
    forms = "1" if rank == 1 else f"1, {rank} (one per axis)"
    raise ShapeError(f"padding {_show(padding)} has {len(padding)} values; {spatial_words(letters)} takes "
                     f"{forms} or {2 * rank} (begins then ends: {pads_order(letters)})",
                     rule="padding is an int, one value per spatial axis, or begins then ends",
                     attributes=("padding",))


def window(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int,
           ceil_mode: bool = False) -> Window:
    """Output size of one spatial axis; raises ShapeError when it would be zero or less."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        # PyTorch: the last window must start inside the input or its left padding.
        if (out - 1) * stride >= size + pad_begin:
            out -= 1
    else:
        out = span // stride + 1
    unused = span % stride if span >= 0 and not ceil_mode else 0
    result = Window(size, kernel, stride, dilation, pad_begin, pad_end, ceil_mode, out, unused)
    if out <= 0:
        raise ShapeError(
            f"output size would be {out}: {result.formula()}",
            rule="out = floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1 must be at least 1",
            hint=(f"the {result.effective_kernel}-wide window is larger than the padded input "
                  f"({size + pad_begin + pad_end}); use a smaller kernel, more padding or a larger input"),
            attributes=WINDOW_ATTRIBUTES)
    return result


def windows(sizes: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
            dilation: tuple[int, ...], pads: list[tuple[int, int]],
            ceil_mode: bool = False, letters: str | None = None) -> list[Window]:
    """`window` for every spatial axis; the error names the axis that failed (by `letters`,
    the axes' layout letters, or the default ones for that many axes)."""
    letters = letters_of(len(sizes), letters)
    result = []
    for axis, (size, k, s, d, (begin, end)) in enumerate(zip(sizes, kernel, stride, dilation, pads)):
        try:
            result.append(window(size, k, s, d, begin, end, ceil_mode))
        except ShapeError as exc:
            raise ShapeError(f"{axis_name(letters[axis])}: {exc.message}", exc.rule, exc.hint,
                             attributes=exc.attributes) from None
    return result


def transposed_window(size: int, kernel: int, stride: int, dilation: int, padding: int,
                      output_padding: int) -> int:
    """Output size of a transposed convolution (the inverse of `window`'s arithmetic):

        out = (in - 1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1
    """
    if output_padding >= stride and output_padding >= dilation:
        raise ShapeError(f"output_padding {output_padding} must be smaller than the stride ({stride}) "
                         f"or the dilation ({dilation})", rule="output_padding < max(stride, dilation)")
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out <= 0:
        raise ShapeError(f"output size would be {out}: ({size} - 1)*{stride} - 2*{padding} + "
                         f"{dilation}*({kernel}-1) + {output_padding} + 1 = {out}",
                         rule="out = (in-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1 "
                              "must be at least 1", hint="use less padding",
                         attributes=WINDOW_ATTRIBUTES + ("output_padding",))
    return out


def transposed_windows(sizes: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                       dilation: tuple[int, ...], padding: tuple[int, ...],
                       output_padding: tuple[int, ...], letters: str | None = None) -> list[int]:
    """`transposed_window` for every spatial axis; the error names the axis that failed."""
    letters = letters_of(len(sizes), letters)
    result = []
    for axis, parts in enumerate(zip(sizes, kernel, stride, dilation, padding, output_padding)):
        try:
            result.append(transposed_window(*parts))
        except ShapeError as exc:
            raise ShapeError(f"{axis_name(letters[axis])}: {exc.message}", exc.rule, exc.hint,
                             attributes=exc.attributes) from None
    return result


def broadcast(shapes: list[tuple]) -> tuple | None:
    """NumPy broadcasting of shapes whose entries are ints or symbols; None if incompatible."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)
