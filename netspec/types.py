"""Tensor types: dtype, shape (with a symbolic batch) and layout.

Shapes are kept in the declared layout's order (so they print as the user wrote them); layers
reach the logical axes (batch, channels, spatial) through the layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from math import prod

Dim = int | str  # an integer size, or a symbol such as "N" (the batch)

# The largest size of an axis: ONNX stores dimensions as 64-bit integers.
MAX_SIZE = 2 ** 63 - 1

DTYPES: dict[str, int] = {  # dtype name -> bytes per element
    "f16": 2, "bf16": 2, "f32": 4, "f64": 8,
    "i8": 1, "u8": 1, "i16": 2, "i32": 4, "i64": 8, "bool": 1,
}
# How other tools spell the dtypes (numpy, PyTorch, ONNX), for hints: "the dtype is written `f16`".
DTYPE_ALIASES: dict[str, str] = {
    "float16": "f16", "fp16": "f16", "half": "f16", "bfloat16": "bf16", "float32": "f32",
    "fp32": "f32", "float": "f32", "float64": "f64", "fp64": "f64", "double": "f64",
    "int8": "i8", "uint8": "u8", "int16": "i16", "short": "i16", "int32": "i32", "int64": "i64",
    "long": "i64",
}
# The groups the layers' dtype rules are written in (netspec.layers.base.Layer.dtypes).
FLOATS: tuple[str, ...] = ("f16", "bf16", "f32", "f64")
INTEGERS: tuple[str, ...] = ("i8", "u8", "i16", "i32", "i64")
NUMBERS: tuple[str, ...] = FLOATS + INTEGERS
ANY_DTYPE: tuple[str, ...] = tuple(DTYPES)

# What each dtype holds: integers by range, floats by their largest finite value.
_INTEGER_RANGES = {"i8": (-2 ** 7, 2 ** 7 - 1), "u8": (0, 2 ** 8 - 1), "i16": (-2 ** 15, 2 ** 15 - 1),
                   "i32": (-2 ** 31, 2 ** 31 - 1), "i64": (-2 ** 63, 2 ** 63 - 1), "bool": (0, 1)}
_FLOAT_MAX = {"f16": 65504.0, "bf16": 3.3895313892515355e38, "f32": 3.4028234663852886e38,
              "f64": 1.7976931348623157e308}


def representable(value: float, dtype: str) -> bool:
    """Whether a constant (a pad value) is a value of `dtype`: an integer within range for the
    integer types (0 or 1 for bool), a finite number within range for the floats (rounding to
    the dtype's precision is allowed)."""
    if dtype in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[dtype]
        return float(value).is_integer() and low <= value <= high
    return abs(value) <= _FLOAT_MAX.get(dtype, _FLOAT_MAX["f64"])


_DEFAULT_LAYOUTS = {2: "NC", 3: "NCL", 4: "NCHW", 5: "NCDHW"}
AXIS_ROLES = {"N": "batch", "C": "channels", "D": "depth", "H": "height", "W": "width", "L": "length"}
# the words for the axes of tokens [N, L, C] (a transformer's NLC), in messages
TOKEN_ROLES = {"L": "tokens", "C": "embedding width"}
# roles that read as plurals ("channels differ", "the height differs")
PLURAL_ROLES = ("channels", "tokens")
_SPATIAL_LETTERS = "DHWL"
# Letters for the axes a reshape makes without a role (netspec.layers.rearrange): lowercase, so
# they never read as a role. A spec names such axes with any other letter (`layout="NGCHW"`).
ROLELESS_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class ShapeError(Exception):
    """Raised by a layer's rules; the inference stage adds the span and the layer's name."""

    def __init__(self, message: str, rule: str | None = None, hint: str | None = None,
                 axes: tuple[int, ...] = (), attributes: tuple[str, ...] = ()):
        super().__init__(message)
        self.message, self.rule, self.hint = message, rule, hint
        self.axes = axes  # for a merge: the axes (declared layout) on which its inputs disagree
        self.attributes = attributes  # the layer attributes whose values the rule refused


class DTypeError(ShapeError):
    """Raised by a layer's dtype rule: an input of a dtype the layer does not take."""


class RoleError(ShapeError):
    """A layer that needs the channel axis, given a tensor that has none (a reshape or a select
    left the axes without that role): said in the words of the layer that lost it."""


@lru_cache(maxsize=None)  # a handful of layouts, asked once per layer and more
def _spatial_indices(axes: str) -> tuple[int, ...]:
    return tuple(sorted((i for i, a in enumerate(axes) if a in _SPATIAL_LETTERS),
                        key=lambda i: _SPATIAL_LETTERS.find(axes[i])))


@lru_cache(maxsize=None)
def _channels_first(axes: str) -> tuple[int, ...]:
    batch = [axes.index("N")] if "N" in axes else []
    channel = [axes.index("C")] if "C" in axes else []
    others = [i for i, a in enumerate(axes) if a not in "NC" and a not in _SPATIAL_LETTERS]
    return (*batch, *channel, *_spatial_indices(axes), *others)


@dataclass(frozen=True, slots=True)
class Layout:
    """Axis letters in memory order: N batch, C channels, D/H/W (or L) spatial; any other letter
    is an axis without a role (made by a reshape, netspec.layers.rearrange). `origin` says, for
    messages, which layer left the axes as they are when some have no role or the channels are
    gone ("the reshape at line 7"); it takes no part in comparisons."""

    axes: str
    origin: str = field(default="", compare=False)

    @staticmethod
    def default(rank: int) -> "Layout":
        return Layout(_DEFAULT_LAYOUTS.get(rank, "NC" + "X" * max(0, rank - 2)))

    @staticmethod
    def unlaid(rank: int) -> "Layout":
        """The layout of a value with no axes of its own: a tensor the network owns (a param, a
        buffer, netspec.owned) or what is made from them alone. Its axes are `*`: they take
        their meaning from the activation they meet, aligned on the last axes (NumPy's rule)."""
        return Layout("*" * rank)

    @property
    def is_unlaid(self) -> bool:
        return all(a == "*" for a in self.axes)

    @staticmethod
    def check(axes: str, rank: int) -> str | None:
        """Why `axes` is not a valid layout for this rank, or None when it is."""
        if len(axes) != rank:
            return f"layout {axes} has {len(axes)} axes but the shape has {rank}"
        if sorted(axes) != sorted(set(axes)):
            return f"layout {axes} repeats an axis"
        if "N" not in axes or "C" not in axes:
            return f"layout {axes} needs a batch axis N and a channel axis C"
        other = set(axes) - {"N", "C"} - set(_SPATIAL_LETTERS)
        if other:
            return f"layout {axes} has unknown axis {''.join(sorted(other))} (use N, C, D, H, W)"
        return None

    @property
    def batch(self) -> int:
        return self.axes.index("N")

    @property
    def channel(self) -> int:
        index = self.axes.find("C")
        if index < 0:
            raise self.no_channels()
        return index

    @property
    def has_channels(self) -> bool:
        return "C" in self.axes

    @property
    def roleless(self) -> tuple[int, ...]:
        """Indices of the axes without a role (not N, C or a spatial letter)."""
        return tuple(i for i, a in enumerate(self.axes) if a not in AXIS_ROLES)

    @property
    def canonical(self) -> tuple[int, ...]:
        """The order of the axes inside ONNX's graph: the declared order, as PyTorch's export has
        them (a permute moves data; tokens [N, L, C] and channels-last maps stay channels last,
        so their linears, norms and residual adds need no Transposes)."""
        return tuple(range(len(self.axes)))

    @property
    def channels_first(self) -> tuple[int, ...]:
        """The axes in the order ONNX's Conv, pools and BatchNormalization read them: the batch,
        the channels, the spatial axes in D, H, W (or L) order, then the axes without a role in
        their declared order (netspec.lower puts a layer with `channels_first` between
        Transposes to it and back, where the declared order is another)."""
        return _channels_first(self.axes)

    def no_channels(self) -> "RoleError":
        """The error of a layer that needs channels on a tensor that has none."""
        where = f"{self.origin} " if self.origin else ""
        return RoleError(f"the input has no channel axis: {where}left its axes as {self.axes} "
                         f"(lowercase letters are axes without a role)",
                         rule="this layer works on the channel axis C",
                         hint='name the axes of its result with `layout=` there (e.g. `layout="NCHW"`), '
                              'or permute or reshape back first (ShuffleNet\'s reshape, transpose, reshape '
                              'of the channels is `channel_shuffle(groups)`)')

    @property
    def spatial(self) -> tuple[int, ...]:
        """Indices of the spatial axes, in the order D, H, W (or L)."""
        return _spatial_indices(self.axes)

    def role(self, index: int) -> str:
        """What an axis holds, in words: "channels", "height", ...; of tokens [N, L, C] (NLC),
        "tokens" and "embedding width" (for messages)."""
        letter = self.axes[index]
        if self.axes == "NLC" and letter in TOKEN_ROLES:
            return TOKEN_ROLES[letter]
        return AXIS_ROLES.get(letter, f"axis {index} ({letter}, no role)")

    def __str__(self) -> str:
        return self.axes


@dataclass(frozen=True, slots=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...]
    layout: Layout

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def batch(self) -> Dim:
        return self.shape[self.layout.batch]

    @property
    def channels(self) -> int:
        return self.shape[self.layout.channel]  # type: ignore[return-value]

    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.shape[i] for i in self.layout.spatial)  # type: ignore[misc]

    def with_axes(self, channels: int | None = None,
                  spatial: tuple[int, ...] | None = None) -> "TensorType":
        """The same type with new channel and/or spatial sizes, in the same layout."""
        shape = list(self.shape)
        if channels is not None:
            shape[self.layout.channel] = channels
        if spatial is not None:
            for index, size in zip(self.layout.spatial, spatial):
                shape[index] = size
        return TensorType(self.dtype, tuple(shape), self.layout)

    def with_dtype(self, dtype: str) -> "TensorType":
        """The same shape and layout in another dtype (the type itself when it already is)."""
        return self if dtype == self.dtype else TensorType(dtype, self.shape, self.layout)

    def sample_elements(self) -> int:
        """Elements of one sample (every axis but the batch; all of a value with no layout)."""
        if self.layout.is_unlaid:
            return prod(self.shape)  # type: ignore[arg-type]
        return prod(d for i, d in enumerate(self.shape) if i != self.layout.batch)  # type: ignore[misc]

    @property
    def itemsize(self) -> int:
        return DTYPES.get(self.dtype, 4)

    def __str__(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"


def format_shape(shape: tuple[Dim, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
