"""Constant tensors computed at compile time, for a `buffer(..., init=...)`: the tables that
window attention indexes with, as torchvision computes them (torchvision.models.swin_transformer
and maxvit). Each function is called from a spec like the scalar functions (netspec.functions)
and returns a Constant: the values, row-major, and the call that made them, which the table and
the JSON show instead of the values.

    relative_position_index = buffer(49 * 49, dtype=i64, init=relative_position_index(7, 7))

Pure Python, so that `netspec check` does not import numpy for them.
"""

from __future__ import annotations

import math
from typing import Callable


class Constant(tuple):
    """A constant's values (row-major) and the call that made them (`call`, for messages and the
    table); `integral` says whether they are integers (an index) or real numbers (a mask)."""

    call: str
    integral: bool

    def __new__(cls, values, call: str, integral: bool) -> "Constant":
        made = super().__new__(cls, values)
        made.call, made.integral = call, integral
        return made

    def __getnewargs__(self):  # copies and pickles keep the call
        return tuple(self), self.call, self.integral


def _window(value, name: str) -> tuple[int, int]:
    """A window size or shift: one integer (square) or a pair (height, width)."""
    pair = value if isinstance(value, tuple) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair):
        raise ValueError(f"`{name}` is an integer or a pair of integers (height, width), got {value!r}")
    return pair


def _call(name: str, *args) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def relative_position_index(height, width=None) -> Constant:
    """For every pair (i, j) of positions in a height x width window (row-major, i the query),
    the row of the relative position bias table for their offset: (dy + height - 1) * (2 *
    width - 1) + (dx + width - 1), dy and dx being i's row and column minus j's. (height *
    width)^2 values; Swin's `relative_position_index` flattened, MaxViT's as a square."""
    h, w = _window(height if width is None else (height, width), "height, width")
    if h < 1 or w < 1:
        raise ValueError(f"a window is at least 1 x 1, got {h} x {w}")
    cells = [(r, c) for r in range(h) for c in range(w)]
    values = [(ri - rj + h - 1) * (2 * w - 1) + (ci - cj + w - 1) for ri, ci in cells for rj, cj in cells]
    return Constant(values, _call("relative_position_index", height, *(() if width is None else (width,))), True)


def relative_coords_table(height, width=None) -> Constant:
    """Swin V2's log-spaced relative coordinates, [1, 2*height - 1, 2*width - 1, 2]: for each
    offset (dy, dx) of a window, each scaled to [-8, 8] by (window - 1) and mapped to
    sign(v) * log2(|v| + 1) / 3, as torchvision's `relative_coords_table` (float32 there)."""
    h, w = _window(height if width is None else (height, width), "height, width")
    if h < 2 or w < 2:
        raise ValueError(f"the window is at least 2 x 2 (its coordinates are divided by size - 1), got {h} x {w}")

    def scaled(offset: int, size: int) -> float:
        v = offset / (size - 1) * 8
        return math.copysign(math.log2(abs(v) + 1.0) / 3.0, v) if v else 0.0

    values = [x for dy in range(-(h - 1), h) for dx in range(-(w - 1), w) for x in (scaled(dy, h), scaled(dx, w))]
    return Constant(values, _call("relative_coords_table", height, *(() if width is None else (width,))), False)


def shifted_window_mask(height, width, window, shift) -> Constant:
    """The attention mask of Swin's shifted windows over a height x width map rolled by -shift:
    [windows, window area, window area], 0 between two positions of the same region before the
    roll and -100 between positions that the roll brought together from different ones (regions:
    the map cut at -window and -shift on each axis), as torchvision's shifted_window_attention
    builds it."""
    hh, ww = _window((height, width), "height, width")
    wh, wd = _window(window, "window")
    sh, sw = _window(shift, "shift")
    if hh % wh or ww % wd:
        raise ValueError(f"the map {hh} x {ww} does not divide into windows of {wh} x {wd}")
    if not (0 < sh < wh and 0 < sw < wd):
        raise ValueError(f"a shift is between 0 and the window, exclusive: got {sh} x {sw} for {wh} x {wd}")

    def region(position: int, size: int, win: int, sft: int) -> int:
        return 0 if position < size - win else 1 if position < size - sft else 2

    label = [[region(r, hh, wh, sh) * 3 + region(c, ww, wd, sw) for c in range(ww)] for r in range(hh)]
    values: list[float] = []
    for top in range(0, hh, wh):
        for left in range(0, ww, wd):
            cells = [label[top + r][left + c] for r in range(wh) for c in range(wd)]
            values.extend(0.0 if a == b else -100.0 for a in cells for b in cells)
    return Constant(values, _call("shifted_window_mask", height, width, window, shift), False)


CONSTANTS: dict[str, Callable[..., Constant]] = {
    "relative_position_index": relative_position_index,
    "relative_coords_table": relative_coords_table,
    "shifted_window_mask": shifted_window_mask,
}

DESCRIPTIONS = {
    "relative_position_index": "`relative_position_index(h, w)`: for each pair of positions in an h x w "
                               "window, the row of a relative position bias table (Swin, MaxViT), "
                               "(h*w)^2 integers",
    "relative_coords_table": "`relative_coords_table(h, w)`: Swin V2's log-spaced relative coordinates, "
                             "[1, 2h-1, 2w-1, 2]",
    "shifted_window_mask": "`shifted_window_mask(height, width, window, shift)`: Swin's attention mask "
                           "for windows of a map rolled by -shift, [windows, window area, window area] of 0 and -100",
}
