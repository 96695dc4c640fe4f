"""Pure shape arithmetic shared by every sliding-window layer (convolution and pooling).

    out = floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1

with PyTorch's `ceil_mode` rule for pooling. Nothing here knows about layers or syntax, so the
formulas are tested directly and every layer computes sizes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from netspec.types import ShapeError

AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
# what decides a window's output size, besides the input
WINDOW_ATTRIBUTES = ("kernel", "stride", "padding", "dilation")


def expand(value, rank: int) -> tuple:
    """A number or a tuple of `rank` numbers, as a tuple (PyTorch's `_pair`)."""
    if not isinstance(value, (tuple, list)):
        return (value,) * rank
    if len(value) == 1:
        return tuple(value) * rank
    return tuple(value)


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
        """Where the division was not exact: the input rows a window never reaches."""
        if not self.unused:
            return None
        unit = "row" if axis in ("H", "height", "L") else "column"
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
                    dilation: tuple[int, ...], sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis.

    `padding` is an int, a tuple of one per axis, a tuple of begins then ends (ONNX `pads`
    order), "valid" (none) or "same" (output size = ceil(in / stride); an odd total puts the
    extra element at the end, as PyTorch and ONNX's SAME_UPPER do).
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
    if len(padding) == rank:
        return [(p, p) for p in padding]
    if len(padding) == 2 * rank:
        return list(zip(padding[:rank], padding[rank:]))
    raise ShapeError(f"padding {padding} has {len(padding)} values; give 1, {rank} or {2 * rank}",
                     rule="padding is an int, one value per spatial axis, or begins then ends")


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
            ceil_mode: bool = False) -> list[Window]:
    """`window` for every spatial axis; the error names the axis that failed."""
    names = AXIS_NAMES.get(len(sizes), tuple(f"axis {i}" for i in range(len(sizes))))
    result = []
    for axis, (size, k, s, d, (begin, end)) in enumerate(zip(sizes, kernel, stride, dilation, pads)):
        try:
            result.append(window(size, k, s, d, begin, end, ceil_mode))
        except ShapeError as exc:
            raise ShapeError(f"{names[axis]}: {exc.message}", exc.rule, exc.hint,
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
