"""Constant tensors computed at compile time, for a `buffer(..., init=...)`: the tables that
window attention indexes with, as torchvision computes them (torchvision.models.swin_transformer
and maxvit; torchvision.models.video.swin_transformer for the video Swin's 3-D windows). Each
function is called from a spec like the scalar functions (netspec.functions) and returns a
Constant: the values, row-major, and the call that made them, which the table and the JSON show
instead of the values.

    relative_position_index = buffer(49 * 49, dtype=i64, init=relative_position_index(7, 7))

Pure Python, so that `netspec check` does not import numpy for them.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
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


def _window(value, name: str, axes: int = 2) -> tuple[int, ...]:
    """A window size or shift: one integer (the same on every axis) or a tuple of `axes`
    integers ((height, width), or (depth, height, width) for `axes` 3)."""
    sizes = value if isinstance(value, tuple) else (value,) * axes
    what = "(height, width)" if axes == 2 else "(depth, height, width)"
    if len(sizes) != axes or any(isinstance(v, bool) or not isinstance(v, int) for v in sizes):
        raise ValueError(f"`{name}` is an integer or a tuple of {axes} integers {what}, got {value!r}")
    return sizes


def _cached(function: Callable[..., "Constant"]) -> Callable[..., "Constant"]:
    """`function` remembering its last results by the repr of its arguments (so `True` is not `1`
    and `(7, 7)` not `(7.0, 7)`): each of a network's blocks asks for the same tables (the video
    Swin's 8 x 7 x 7 index is 153,664 values, its first mask 9.8 million). A Constant is a tuple,
    never changed once made."""
    cache: OrderedDict[str, Constant] = OrderedDict()

    @functools.wraps(function)
    def remembered(*args, **kwargs) -> Constant:
        key = repr((args, sorted(kwargs.items())))
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        made = cache[key] = function(*args, **kwargs)
        if len(cache) > 16:
            cache.popitem(last=False)
        return made

    return remembered


def _call(name: str, *args) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


@_cached
def relative_position_index(height, width=None, *more) -> Constant:
    """For every pair (i, j) of positions in a height x width window (row-major, i the query),
    the row of the relative position bias table for their offset: (dy + height - 1) * (2 *
    width - 1) + (dx + width - 1), dy and dx being i's row and column minus j's. (height *
    width)^2 values; Swin's `relative_position_index` flattened, MaxViT's as a square.

    Three sizes (`relative_position_index(8, 7, 7)`, or one tuple of three) are a depth x height
    x width window of the video Swin (torchvision.models.video.swin_transformer): positions
    row-major over (depth, height, width), the row (dz + depth - 1) * (2 height - 1) * (2 width
    - 1) + (dy + height - 1) * (2 width - 1) + (dx + width - 1), (depth * height * width)^2
    values (torchvision keeps them as a square, [volume, volume])."""
    given = (height, *(() if width is None else (width,)), *more)
    if len(given) > 3:
        raise ValueError(f"a window has 2 or 3 sizes (height, width or depth, height, width), got {len(given)}")
    if len(given) == 1 and isinstance(height, tuple):
        sizes = _window(height, "window", 3 if len(height) == 3 else 2)
    elif len(given) == 3:
        sizes = _window(given, "depth, height, width", 3)
    else:
        sizes = _window(height if width is None else (height, width), "height, width")
    if any(v < 1 for v in sizes):
        raise ValueError(f"a window is at least {' x '.join('1' * len(sizes))}, got {' x '.join(map(str, sizes))}")
    # each axis's offset, shifted to start at 0, weighs the product of (2 size - 1) of the axes after it
    weights = [math.prod(2 * v - 1 for v in sizes[k + 1:]) for k in range(len(sizes))]
    cells = [()]
    for v in sizes:
        cells = [c + (i,) for c in cells for i in range(v)]
    values = [sum((a - b + v - 1) * wt for a, b, v, wt in zip(ci, cj, sizes, weights))
              for ci in cells for cj in cells]
    return Constant(values, _call("relative_position_index", *given), True)


@_cached
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


@_cached
def shifted_window_mask(height, width, window, shift, *more) -> Constant:
    """The attention mask of Swin's shifted windows over a height x width map rolled by -shift:
    [windows, window area, window area], 0 between two positions of the same region before the
    roll and -100 between positions that the roll brought together from different ones (regions:
    the map cut at -window and -shift on each axis), as torchvision's shifted_window_attention
    builds it.

    Five arguments, `shifted_window_mask(depth, height, width, window, shift)`, are the video
    Swin's mask over a depth x height x width map (window and shift: an integer or a tuple
    (depth, height, width)): 27 regions, windows and positions row-major over (depth, height,
    width), [windows, window volume, window volume], as torchvision's _compute_attention_mask_3d.
    A shift may be 0 on some axes (not on all), as torchvision sets it where the window covers
    the map: its cuts are then Python's slices [0:-window], [-window:0] (empty), [0:] (all)."""
    given = (height, width, window, shift, *more)  # as written, for the call the table shows
    if more:
        if len(more) != 1:
            raise ValueError("takes a height and width, a window and a shift, or a depth, height and width, "
                             f"a window and a shift: got {4 + len(more)} arguments")
        sizes, window, shift, axes = (height, width, window), shift, more[0], 3
    else:
        sizes, axes = (height, width), 2
    size = _window(sizes, "height, width" if axes == 2 else "depth, height, width", axes)
    win = _window(window, "window", axes)
    sft = _window(shift, "shift", axes)
    if any(s % w for s, w in zip(size, win)) or any(w < 1 or w > s for s, w in zip(size, win)):
        raise ValueError(f"the map {' x '.join(map(str, size))} does not divide into windows of "
                         f"{' x '.join(map(str, win))}")
    if not all(0 <= s < w for s, w in zip(sft, win)) or not any(sft):
        raise ValueError(f"a shift is between 0 and the window, exclusive (0 on some axes at most): got "
                         f"{' x '.join(map(str, sft))} for {' x '.join(map(str, win))}")

    def regions(n: int, w: int, s: int) -> list[int]:
        # torchvision's slices (0, -w), (-w, -s), (-s, None), in order, each overwriting
        label = [0] * n
        for k, cut in enumerate((slice(0, -w), slice(-w, -s), slice(-s, None))):
            for i in range(n)[cut]:
                label[i] = k
        return label

    labels = [regions(n, w, s) for n, w, s in zip(size, win, sft)]
    cells = [()]
    for n in size:
        cells = [c + (i,) for c in cells for i in range(n)]
    label = {c: sum(labels[k][i] * 3 ** (axes - 1 - k) for k, i in enumerate(c)) for c in cells}
    offsets = [()]
    for w in win:
        offsets = [o + (i,) for o in offsets for i in range(w)]
    values: list[float] = []
    corners = [()]
    for n, w in zip(size, win):
        corners = [c + (i,) for c in corners for i in range(0, n, w)]
    masks: dict[tuple[int, ...], list[float]] = {}  # most windows hold one region: one mask for them all
    for corner in corners:
        window_labels = tuple(label[tuple(a + b for a, b in zip(corner, o))] for o in offsets)
        if window_labels not in masks:
            masks[window_labels] = [0.0 if a == b else -100.0 for a in window_labels for b in window_labels]
        values.extend(masks[window_labels])
    return Constant(values, _call("shifted_window_mask", *given), False)


CONSTANTS: dict[str, Callable[..., Constant]] = {
    "relative_position_index": relative_position_index,
    "relative_coords_table": relative_coords_table,
    "shifted_window_mask": shifted_window_mask,
}

DESCRIPTIONS = {
    "relative_position_index": "`relative_position_index(h, w)`: for each pair of positions in an h x w "
                               "window, the row of a relative position bias table (Swin, MaxViT), "
                               "(h*w)^2 integers; `relative_position_index(d, h, w)`: the same for a "
                               "d x h x w window (the video Swin), (d*h*w)^2",
    "relative_coords_table": "`relative_coords_table(h, w)`: Swin V2's log-spaced relative coordinates, "
                             "[1, 2h-1, 2w-1, 2]",
    "shifted_window_mask": "`shifted_window_mask(height, width, window, shift)`: Swin's attention mask "
                           "for windows of a map rolled by -shift, [windows, window area, window area] of 0 and -100; "
                           "`shifted_window_mask(depth, height, width, window, shift)`: the video Swin's, "
                           "[windows, window volume, window volume]",
}


# The same tables in torch, for the file `netspec torch` writes (netspec.owned's torch_form): a
# generated module computes its constant buffers as torchvision does, importing nothing but torch.
TORCH_HELPERS = {
    "relative_position_index": '''def relative_position_index(*sizes):
    """For every pair (i, j) of positions in a window (row-major, i the query), the row of the
    relative position bias table for their offset, as torchvision's Swin and MaxViT index it
    (a depth x height x width window for the video Swin), flattened."""
    if len(sizes) == 1:
        sizes = sizes[0] if isinstance(sizes[0], tuple) else (sizes[0], sizes[0])
    grid = torch.meshgrid(*[torch.arange(n) for n in sizes], indexing="ij")
    coords = torch.stack(grid).flatten(1)
    offsets = coords[:, :, None] - coords[:, None, :]
    index = torch.zeros(offsets.shape[1:], dtype=torch.int64)
    for k, n in enumerate(sizes):
        weight = 1
        for m in sizes[k + 1 :]:
            weight *= 2 * m - 1
        index += (offsets[k] + n - 1) * weight
    return index.flatten()
''',
    "relative_coords_table": '''def relative_coords_table(height, width=None):
    """Swin V2's log-spaced relative coordinates of a window, [1, 2h - 1, 2w - 1, 2]."""
    width = height if width is None else width
    dy = torch.arange(-(height - 1), height, dtype=torch.float64) / (height - 1) * 8
    dx = torch.arange(-(width - 1), width, dtype=torch.float64) / (width - 1) * 8
    table = torch.stack(torch.meshgrid(dy, dx, indexing="ij"), dim=-1)
    return (torch.sign(table) * torch.log2(table.abs() + 1.0) / 3.0).flatten()
''',
    "shifted_window_mask": '''def shifted_window_mask(*sizes):
    """The attention mask of Swin's shifted windows (torchvision's): [windows, area, area], 0
    within a region of the map before its roll, -100 between regions. Arguments: height,
    width, window, shift (depth first for the video Swin)."""
    size, window, shift = sizes[:-2], sizes[-2], sizes[-1]
    window = window if isinstance(window, tuple) else (window,) * len(size)
    shift = shift if isinstance(shift, tuple) else (shift,) * len(size)
    label = torch.zeros(size, dtype=torch.int64)
    for k, (n, w, s) in enumerate(zip(size, window, shift)):
        regions = torch.zeros(n, dtype=torch.int64)
        for r, cut in enumerate((slice(0, -w), slice(-w, -s), slice(-s, None))):
            regions[cut] = r
        shape = [1] * len(size)
        shape[k] = n
        label = label + regions.reshape(shape) * 3 ** (len(size) - 1 - k)
    split = [m for n, w in zip(size, window) for m in (n // w, w)]
    order = [*range(0, 2 * len(size), 2), *range(1, 2 * len(size), 2)]
    area = 1
    for w in window:
        area *= w
    windows = label.reshape(split).permute(order).reshape(-1, area)
    same = windows[:, :, None] == windows[:, None, :]
    return torch.where(same, 0.0, -100.0).to(torch.float64).flatten()
''',
}
