"""Functions that specs may call while they are elaborated: on plain values (`min(a, b)`,
`make_divisible(c * 0.25, 8)`) and, in QUERIES, on a tensor's type (`channels(x)`, the sizes of
a tensor made so far): they compute sizes and flags, never tensors. A call names a layer, a
block or one of these.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from netspec.constants import CONSTANTS
from netspec.constants import DESCRIPTIONS as CONSTANT_DESCRIPTIONS


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor`, never below `min_value` (default:
    the divisor) nor more than 10% below `value`: the channel rounding of MobileNet and
    EfficientNet (torchvision's `_make_divisible`)."""
    if divisor <= 0:
        raise ValueError("divisor must be positive")
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _int(value: Any) -> int:
    """Truncate a number toward zero, as Python's `int`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("int() takes a number")
    return int(value)


def _ceil(value: float) -> int:
    return math.ceil(value)


def _log(value: float) -> float:
    """The natural logarithm (Swin V2's bound on its logit scale is log(100))."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"log takes a positive number, got {value!r}")
    return math.log(value)


def _sqrt(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"sqrt takes a number >= 0, got {value!r}")
    return math.sqrt(value)


def _floor(value: float) -> int:
    return math.floor(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "int": _int,
    "ceil": _ceil,
    "floor": _floor,
    "make_divisible": make_divisible,
    "log": _log,
    "sqrt": _sqrt,
    **CONSTANTS,
}

def _channels(t) -> int:
    return t.channels


def _spatial(t) -> tuple:
    return tuple(t.spatial)


def _size(t, axis: int | str) -> Any:
    """The size of one axis, named by its layout letter ("H") or its index in the layout."""
    if isinstance(axis, str):
        letter = axis if axis in t.layout.axes else axis.upper()
        if letter not in t.layout.axes:
            raise ValueError(f'`{t}` ({t.layout}) has no axis "{axis}"')
        return t.shape[t.layout.axes.index(letter)]
    if isinstance(axis, bool) or not isinstance(axis, int) or not -t.rank <= axis < t.rank:
        raise ValueError(f"axis {axis} is out of range for `{t}` ({t.rank}-D)")
    return t.shape[axis]


# functions of a tensor's type (netspec.types.TensorType), given as their first argument
QUERIES: dict[str, Callable[..., Any]] = {
    "channels": _channels,
    "spatial": _spatial,
    "size": _size,
}

DESCRIPTIONS: dict[str, str] = {
    "channels": "`channels(x)`: the channel count of tensor `x` (a squeeze-and-excitation block's width)",
    "spatial": "`spatial(x)`: the spatial sizes of tensor `x`, (D, H, W) or (H, W) or (L), e.g. for "
               "`upsample(size=spatial(image))`",
    "size": "`size(x, axis)`: the size of one axis of tensor `x`, by its layout letter (\"H\") or index",
    "min": "`min(a, b, ...)`: the smallest of its arguments",
    "max": "`max(a, b, ...)`: the largest of its arguments",
    "int": "`int(x)`: `x` truncated toward zero",
    "ceil": "`ceil(x)`: the smallest integer >= `x`",
    "floor": "`floor(x)`: the largest integer <= `x`",
    "make_divisible": "`make_divisible(v, divisor=8, min_value=divisor)`: `v` rounded to a multiple "
                      "of `divisor`, at least `min_value` and not 10% below `v` (MobileNet's channel rounding)",
    "log": "`log(x)`: the natural logarithm of `x` > 0",
    "sqrt": "`sqrt(x)`: the square root of `x` >= 0",
    **CONSTANT_DESCRIPTIONS,
}
