"""Random valid netspec networks and their PyTorch twins, for tests/test_differential.py.

A `Net` is a list of statements in evaluation order: chains (`b3 = b2 -> conv(...) -> relu`),
merges (`b4 = b2 + b3`, `b5 = concat(b1, b4, axis="H")`), tensors the network owns
(`b6 = param(9, 2)`, `b7 = buffer(16, dtype=i64, init=relative_position_index(2))`, chains over
them, never outputs) and expressions (`b8 = b4 * 0.5`, `b9 = b3 + b7`), over an input of 1, 2 or 3
spatial axes (NCL/NLC, NCHW/NHWC, NCDHW/NDHWC or another order of those letters). Every layer
carries the attributes as written in the spec (`Layer.args`, `Layer.kwargs`) and the same
attributes resolved for PyTorch (`Layer.sem`, one value per spatial axis). The generator keeps
its own (C, *spatial) bookkeeping, spatial axes in D, H, W (or L) order, only to stay valid (no
size below 1, sizes within the rank's MAX_SIZE, branch shapes that can be merged); what is
compared is netspec against torch, never against that bookkeeping.

The twin is written from the README's documented semantics with torch's own modules and
functionals of the input's rank (nn.Conv1d/2d/3d, F.max_pool1d/2d/3d, F.interpolate, ...); only
what torch cannot say directly is spelled out here: "same" padding with a stride above 1 and
begins-then-ends padding (an explicit F.pad before the convolution, its sizes last axis first),
and `flatten` in the declared layout's order. Values are not compared (shapes still are) for a
network that normalises (nearly) constant values with layernorm/groupnorm, where rounding noise
is divided by sqrt(eps).
"""

from __future__ import annotations

import math
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

# every spatial size stays in [1, MAX_SIZE[rank]] (3-D networks are kept small: their cost is
# the cube of the size)
MAX_SIZE = {1: 64, 2: 64, 3: 16}
MAX_CH = 12         # channels stay in [1, MAX_CH]
MAX_FEATURES = 4096  # a flatten sees at most this many features (else a global pool comes first)
BATCH = 2
RTOL = 1e-4         # max |onnxruntime - torch| <= RTOL * max(1, max |torch|), per output

# The spatial letters of each rank, in netspec's canonical order (ONNX's): (N, C, *letters).
LETTERS = {1: "L", 2: "HW", 3: "DHW"}
# The linear interpolation of each rank, as F.interpolate and netspec name it.
LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}

# Known netspec bugs and export refusals the generator steers around (each has an xfail regression test in
# tests/test_differential.py); remove an entry once its bug is fixed so it is fuzzed again.
KNOWN_BUGS = {
    # conv_transpose with stride <= output_padding < dilation: netspec and torch accept it, ONNX's
    # ConvTranspose does not, so export refuses it (tests/test_differential.py checks the message)
    "conv_transpose_output_padding_from_dilation",
    # maxpool/avgpool/lppool ceil_mode where one axis gains a window from rounding up and another's
    # ceil-mode window is dropped by PyTorch's rule: one ONNX ceil_mode for every axis cannot
    # express it before opset 22, so export refuses it there (checked in test_differential.py)
    "pool_ceil_mode_mixed_axes",
    # a dilated maxpool window that lies wholly in the padding: torch gives -inf, onnxruntime
    # the lowest float (-3.4e38); later layers turn either into different infinities or NaNs
    "maxpool_window_in_padding",
}


# ============================================================================ the model


class Raw(str):
    """Source text written as it is (a binding's name, a call such as relative_position_index(2))."""


def fmt(value: Any) -> str:
    """A value as netspec source writes it."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "(" + ", ".join(fmt(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value) if isinstance(value, float) else str(value)


@dataclass
class Layer:
    kind: str
    args: tuple = ()                                  # positional attributes, as written
    kwargs: dict = field(default_factory=dict)        # keyword attributes, as written
    sem: dict = field(default_factory=dict)           # resolved attributes for the torch twin

    def call(self) -> str:
        parts = [fmt(a) for a in self.args] + [f"{k}={fmt(v)}" for k, v in self.kwargs.items()]
        return f"{self.kind}({', '.join(parts)})" if parts else self.kind


@dataclass
class Chain:
    name: str
    source: str
    layers: list[Layer]
    layout: str | None = None   # the binding's declared layout where it is not the network's (a matmul operand)
    constant: bool = False      # over a param or buffer: no batch, no layout (never an output)
    head_call: bool = False     # the first layer written as a call of the source: `gather(t, i) -> reshape(...)`

    def node_names(self) -> list:
        """Layer names by the README's rule: a chain of one layer is the binding's name, else
        `name.0`, `name.1`, ... (as nn.Sequential). A head call is a layer inside an
        expression (`<kind>`, `<kind>_2`, ...: None, not checked by name); the chain after it
        is named as a chain of its own."""
        head = [None] if self.head_call else []
        rest = len(self.layers) - len(head)
        if rest == 0:
            return [self.name]
        if rest == 1:
            return head + [self.name]
        return head + [f"{self.name}.{i}" for i in range(rest)]

    def text(self) -> str:
        if self.head_call:
            first = self.layers[0]
            parts = [self.source] + [fmt(a) for a in first.args] + [f"{k}={fmt(v)}" for k, v in first.kwargs.items()]
            calls = [f"{first.kind}({', '.join(parts)})"] + [l.call() for l in self.layers[1:]]
            return f"{self.name} = " + " -> ".join(calls)
        return f"{self.name} = {self.source} -> " + " -> ".join(l.call() for l in self.layers)


@dataclass
class Merge:
    name: str
    kind: str               # "add", "concat" or "matmul"
    sources: list[str]
    axis: Any = None        # concat: as written ("H", 2, -1, ...), None for the default
    axis_keyword: str = "axis"
    form: str = "call"      # "call": add(a, b) / concat(a, b); "arrow": a -> add(b); "plus": a + b
    axis_letter: str = "C"  # the axis joined, as a layout letter
    layouts: list | None = None  # matmul: each operand's declared layout

    def node_names(self) -> list[str]:
        return [self.name]

    def text(self) -> str:
        if self.form == "plus":
            return f"{self.name} = " + " + ".join(self.sources)
        if self.form == "at":
            return f"{self.name} = " + " @ ".join(self.sources)
        extra = [] if self.axis is None else [f"{self.axis_keyword}={fmt(self.axis)}"]
        if self.form == "arrow":
            return f"{self.name} = {self.sources[0]} -> {self.kind}({', '.join(self.sources[1:] + extra)})"
        return f"{self.name} = {self.kind}({', '.join(self.sources + extra)})"


@dataclass
class Tensor:
    """`name = param(2, 3)` or `name = buffer(16, dtype=i64, init=..., persistent=false)`: a
    tensor the network owns. `value` is what it holds (None: a param the twin draws at random,
    N(0, 1)); a param and a persistent buffer go in the weights dict, a persistent=false buffer
    must not (it takes its init)."""

    name: str
    kind: str                    # "param" or "buffer"
    sizes: tuple
    value: Any = None            # np.ndarray, or None
    init: Any = None             # as written (a number, a tuple, Raw("relative_position_index(2)")), None: none
    dtype: str | None = None     # as written ("i64", "i32"), None: the default
    persistent: bool = True
    constant = True

    @property
    def stored(self) -> bool:
        return self.kind == "param" or self.persistent

    @property
    def layers(self) -> list:
        return []

    def node_names(self) -> list[str]:
        return [self.name]

    def text(self) -> str:
        parts = [str(n) for n in self.sizes]
        if self.dtype:
            parts.append(f"dtype={self.dtype}")
        if self.init is not None:
            parts.append(f"init={fmt(self.init)}")
        if not self.persistent:
            parts.append("persistent=false")
        return f"{self.name} = {self.kind}({', '.join(parts)})"


@dataclass
class Expr:
    """A binding written as an expression of tensors and numbers (`b4 = b3 * 0.5`, `b5 = b4 +
    bias`, `b6 = (b2 * 0.25) @ (b2 -> transpose(-2, -1))`), its node of kind `kind` named
    `name`; `fn(bindings)` is its twin (canonical tensors in, the canonical result out).
    `inner` lists the kinds of the layers inside the expression (not checked by name)."""

    name: str
    kind: str
    rhs: str
    fn: Any
    inner: list = field(default_factory=list)

    @property
    def layers(self) -> list:
        return [Layer(self.kind)] + [Layer(k) for k in self.inner]

    def node_names(self) -> list[str]:
        return [self.name]

    def text(self) -> str:
        return f"{self.name} = {self.rhs}"


@dataclass
class Unpack:
    """`p1, p2 = source -> chunk(2)` (or split): one node per piece, each named after its name;
    `name` is the piece the network goes on from."""

    names: list[str]
    source: str
    layer: Layer
    chosen: int

    @property
    def name(self) -> str:
        return self.names[self.chosen]

    @property
    def layers(self) -> list[Layer]:
        return [self.layer]

    def node_names(self) -> list[str]:
        return list(self.names)

    def text(self) -> str:
        return f"{', '.join(self.names)} = {self.source} -> {self.layer.call()}"


@dataclass
class Net:
    layout: str                  # the input's layout: "NCHW", "NHWC", "NCL", "NDHWC", ...
    write_layout: bool           # write the layout after the shape (NCL/NCHW/NCDHW are the defaults)
    c: int
    sizes: tuple                 # the input's spatial sizes, in canonical (D, H, W / L) order
    statements: list             # Chain | Merge, in evaluation order
    outputs: list[str]
    order: list[int]             # the order the statements are written in (bindings may come in any order)
    opset: int = 17
    image: tuple | None = None   # a patch-embedding network: the image input's (C, H, W), declared NCHW;
                                 # layout, c and sizes are then the tokens' (NLC, E, (L,)) after the first chain
    write_image_layout: bool = False

    @property
    def input_layout(self) -> str:
        return "NCHW" if self.image else self.layout

    @property
    def input_shape(self) -> tuple:
        """The input's canonical shape without the batch: (C, *spatial)."""
        return self.image if self.image else (self.c, *self.sizes)

    @property
    def rank(self) -> int:
        return len(self.sizes)

    @property
    def canonical(self) -> str:
        """The axes torch works on: "NCL", "NCHW" or "NCDHW"."""
        return "NC" + LETTERS[self.rank]

    def text(self) -> str:
        if self.image:
            decl = f"f32[N, {', '.join(map(str, self.image))}]" + (" NCHW" if self.write_image_layout else "")
        else:
            dims = {"N": "N", "C": str(self.c), **{a: str(n) for a, n in zip(LETTERS[self.rank], self.sizes)}}
            decl = f"f32[{', '.join(dims[a] for a in self.layout)}]" + (f" {self.layout}" if self.write_layout else "")
        lines = ["network diff", f"input x: {decl}"]
        lines += [self.statements[i].text() for i in self.order]
        lines.append("output " + ", ".join(self.outputs))
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:   # what hypothesis prints for a falsifying example
        return f"Net(opset={self.opset}):\n{self.text()}"


# ============================================================================ arithmetic


def conv_out(n, k, s, d, pb, pe):
    return (n + pb + pe - d * (k - 1) - 1) // s + 1


def pool_out(n, k, s, d, p, ceil):
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:  # PyTorch: the last window must start inside the input or left padding
        out -= 1
    return out


def window_in_padding(n, k, s, d, p, ceil):
    """Whether some (dilated) pooling window sees only padding, no input element."""
    return any(all(not 0 <= i * s - p + j * d < n for j in range(k))
               for i in range(pool_out(n, k, s, d, p, ceil)))


def tconv_out(n, k, s, d, p, op):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def op_limit(s, d):
    """The largest output_padding the generator uses: below the stride or the dilation (README)."""
    if "conv_transpose_output_padding_from_dilation" in KNOWN_BUGS:
        return s - 1
    return max(s, d) - 1


def same_pads(n, k, s, d):
    """README: "same" gives ceil(in / stride); an odd total puts the extra row at the end."""
    out = -(-n // s)
    total = max(0, (out - 1) * s + d * (k - 1) + 1 - n)
    return total // 2, total - total // 2


def conv_pads(padding, axis: int, rank: int, n, k, s, d):
    """(begin, end) padding of one axis (canonical index) for a conv `padding` as written: an int,
    one per axis, begins then ends (README; a pair is (left, right) in 1-D), "same", "valid"."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return same_pads(n, k, s, d)
    if isinstance(padding, int):
        return padding, padding
    if len(padding) == rank:
        return padding[axis], padding[axis]
    return padding[axis], padding[axis + rank]   # (top, left, bottom, right), (front, ..., right)


def torch_pad(pads: list[tuple[int, int]]) -> tuple:
    """Per-axis (begin, end) pads, canonical order, as F.pad takes them: last axis first."""
    return tuple(v for begin, end in reversed(pads) for v in (begin, end))


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def packed(values: tuple, as_tuple: bool):
    """Write per-axis values as one integer where every axis agrees (unless as_tuple; a 1-D
    input's single value is always written as one)."""
    return values if ((as_tuple and len(values) > 1) or len(set(values)) > 1) else values[0]


def ones(rank: int) -> tuple:
    return (1,) * rank


# ============================================================================ strategies


class Names:
    def __init__(self):
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        return f"b{self.count}"


def _per_axis(draw, strategy, rank: int, distinct: bool) -> list:
    """One value for every axis (`distinct` false), or one drawn per axis."""
    first = draw(strategy)
    return [first] + [draw(strategy) if distinct else first for _ in range(rank - 1)]


def _padding_form(draw, rank: int, limit: int = 3):
    """A conv padding as written: an int, one per axis, begins then ends, "same", "valid", or 0."""
    form = draw(st.sampled_from(["int", "per_axis", "begins_ends", "same", "valid", "default"]))
    if form == "int":
        return draw(st.integers(0, limit))
    if form == "per_axis":
        return packed(tuple(draw(st.integers(0, limit)) for _ in range(rank)), True)
    if form == "begins_ends":
        return tuple(draw(st.integers(0, limit)) for _ in range(2 * rank))
    return 0 if form == "default" else form


def draw_conv(draw, shape, out_channels=None, fixed=None):
    """conv with random kernel/stride/padding/dilation/groups/bias; `fixed` = per-axis
    (k, s, p, d) that must be used (the branch fixer)."""
    c, sizes = shape[0], shape[1:]
    rank = len(sizes)
    if out_channels is None:
        groups = draw(st.sampled_from(divisors(c)))
        out_channels = groups * draw(st.integers(1, max(1, MAX_CH // groups)))
    else:
        groups = draw(st.sampled_from([g for g in divisors(c) if out_channels % g == 0]))
    distinct = draw(st.booleans())
    if fixed is not None:
        k, s, pads, d = [list(v) for v in zip(*fixed)]
        padding = packed(tuple(pads), distinct)
    else:
        k = _per_axis(draw, st.integers(1, 3 if rank == 3 else 5), rank, distinct)
        s = _per_axis(draw, st.integers(1, 3), rank, distinct)
        d = _per_axis(draw, st.sampled_from([1, 1, 2, 3]), rank, distinct)
        padding = _padding_form(draw, rank)
        for axis, n in enumerate(sizes):   # repair: smaller dilation, then smaller kernel
            while conv_out(n, k[axis], s[axis], d[axis], *conv_pads(padding, axis, rank, n, k[axis], s[axis],
                                                                     d[axis])) < 1:
                if d[axis] > 1:
                    d[axis] -= 1
                else:
                    k[axis] -= 1
    pads = [conv_pads(padding, a, rank, n, k[a], s[a], d[a]) for a, n in enumerate(sizes)]
    out = tuple(conv_out(n, k[a], s[a], d[a], *pads[a]) for a, n in enumerate(sizes))
    bias = draw(st.booleans())
    sem = dict(out=out_channels, kernel=tuple(k), stride=tuple(s), dilation=tuple(d), padding=padding,
               pads=pads, groups=groups, bias=bias)
    kwargs = {}
    kernel_written = packed(tuple(k), distinct)
    if draw(st.booleans()):
        args = (out_channels, kernel_written)
    else:
        args = (out_channels,)
        kwargs[draw(st.sampled_from(["kernel", "kernel_size"]))] = kernel_written
    if tuple(s) != ones(rank) or draw(st.booleans()):
        kwargs["stride"] = packed(tuple(s), distinct)
    if padding != 0:
        kwargs["padding"] = padding
    if tuple(d) != ones(rank):
        kwargs["dilation"] = packed(tuple(d), distinct)
    if groups != 1:
        kwargs["groups"] = groups
    if not bias or draw(st.booleans()):
        kwargs["bias"] = bias
    return Layer("conv", args, kwargs, sem), (out_channels, *out)


def draw_conv_transpose(draw, shape, out_channels=None, fixed=None):
    c, sizes = shape[0], shape[1:]
    rank, limit = len(sizes), MAX_SIZE[len(sizes)]
    if out_channels is None:
        groups = draw(st.sampled_from(divisors(c)))
        out_channels = groups * draw(st.integers(1, max(1, MAX_CH // groups)))
    else:
        groups = draw(st.sampled_from([g for g in divisors(c) if out_channels % g == 0]))
    distinct = draw(st.booleans())
    if fixed is not None:
        k, s, p, d, op = [list(v) for v in zip(*fixed)]
    else:
        k = _per_axis(draw, st.integers(1, 4), rank, distinct)
        s = _per_axis(draw, st.integers(1, 3), rank, distinct)
        d = _per_axis(draw, st.sampled_from([1, 1, 2]), rank, distinct)
        p = _per_axis(draw, st.integers(0, 3), rank, distinct)
        op = [draw(st.integers(0, op_limit(s[a], d[a]))) for a in range(rank)]
        for axis, n in enumerate(sizes):
            while tconv_out(n, k[axis], s[axis], d[axis], p[axis], op[axis]) > limit:
                if s[axis] > 1:
                    s[axis] -= 1
                elif k[axis] > 1:
                    k[axis] -= 1
                else:
                    p[axis] += 1
                op[axis] = min(op[axis], op_limit(s[axis], d[axis]))
            while tconv_out(n, k[axis], s[axis], d[axis], p[axis], op[axis]) < 1:
                p[axis] -= 1
    out = tuple(tconv_out(n, k[a], s[a], d[a], p[a], op[a]) for a, n in enumerate(sizes))
    bias = draw(st.booleans())
    sem = dict(out=out_channels, kernel=tuple(k), stride=tuple(s), dilation=tuple(d), padding=tuple(p),
               output_padding=tuple(op), groups=groups, bias=bias)
    kwargs = {}
    if tuple(s) != ones(rank):
        kwargs["stride"] = packed(tuple(s), distinct)
    if set(p) != {0}:
        kwargs["padding"] = packed(tuple(p), distinct)
    if set(op) != {0}:
        kwargs["output_padding"] = packed(tuple(op), distinct)
    if tuple(d) != ones(rank):
        kwargs["dilation"] = packed(tuple(d), distinct)
    if groups != 1:
        kwargs["groups"] = groups
    if not bias:
        kwargs["bias"] = False
    return Layer("conv_transpose", (out_channels, packed(tuple(k), distinct)), kwargs, sem), (out_channels, *out)


def draw_pool(draw, shape, kind=None, fixed=None):
    """maxpool / avgpool / lppool: kernel, stride (default: the kernel), padding <= kernel // 2
    (none for lppool), dilation (maxpool), ceil_mode, count_include_pad (avgpool), norm_type
    (lppool: 1, the signed sum, or 2)."""
    c, sizes = shape[0], shape[1:]
    rank = len(sizes)
    kind = kind or draw(st.sampled_from(["maxpool", "maxpool", "avgpool", "avgpool", "lppool"]))
    distinct = draw(st.booleans())
    if fixed is not None:
        k, s, p, d, ceils = [list(v) for v in zip(*fixed)]
        ceil = ceils[0]
        default_stride = False
    else:
        k = _per_axis(draw, st.integers(1, 4), rank, distinct)
        default_stride = draw(st.booleans())
        s = list(k) if default_stride else _per_axis(draw, st.integers(1, 3), rank, distinct)
        d = _per_axis(draw, st.sampled_from([1, 1, 2]), rank, distinct) if kind == "maxpool" else [1] * rank
        if kind == "lppool":
            p = [0] * rank
        elif distinct:
            p = [draw(st.integers(0, k[a] // 2)) for a in range(rank)]
        else:
            p = [draw(st.integers(0, min(k) // 2))] * rank
        ceil = draw(st.booleans())
        for axis, n in enumerate(sizes):
            for _ in range(2):
                while pool_out(n, k[axis], s[axis], d[axis], p[axis], ceil) < 1:
                    if d[axis] > 1:
                        d[axis] -= 1
                    else:
                        k[axis] -= 1
                        p[axis] = min(p[axis], k[axis] // 2)
                        if default_stride:
                            s[axis] = k[axis]
                if ("maxpool_window_in_padding" in KNOWN_BUGS
                        and window_in_padding(n, k[axis], s[axis], d[axis], p[axis], ceil)):
                    p[axis] = 0   # then repair again
            if rank == 3 and kind != "maxpool" and k[axis] > n:
                # README: a 3-D avgpool or lppool needs an input as large as its kernel (PyTorch's rule)
                k[axis] = n
                p[axis] = min(p[axis], n // 2)
                if default_stride:
                    s[axis] = n
    out = tuple(pool_out(n, k[a], s[a], d[a], p[a], ceil) for a, n in enumerate(sizes))
    floors = [pool_out(n, k[a], s[a], d[a], p[a], False) for a, n in enumerate(sizes)]
    naive = [-(-(n + 2 * p[a] - d[a] * (k[a] - 1) - 1) // s[a]) + 1 for a, n in enumerate(sizes)]
    # ceil_mode that an ONNX model before opset 22 gets wrong: see KNOWN_BUGS
    mixed = ceil and out != tuple(floors) and list(out) != naive
    sem = dict(kernel=tuple(k), stride=tuple(s), padding=tuple(p), dilation=tuple(d), ceil_mode=ceil,
               mixed_ceil=mixed)
    args = (packed(tuple(k), distinct),)
    if kind == "lppool":
        sem["norm_type"] = draw(st.sampled_from([1, 2]))
        args = (sem["norm_type"],) + args
    kwargs = {}
    if not default_stride:
        if draw(st.booleans()):
            args += (packed(tuple(s), distinct),)
        else:
            kwargs["stride"] = packed(tuple(s), distinct)
    if set(p) != {0}:
        kwargs["padding"] = packed(tuple(p), distinct)
    if tuple(d) != ones(rank):
        kwargs["dilation"] = packed(tuple(d), distinct)
    if ceil or draw(st.booleans()):
        kwargs["ceil_mode"] = ceil
    if kind == "avgpool":
        include = draw(st.booleans())
        sem["count_include_pad"] = include
        if not include:
            kwargs["count_include_pad"] = False
    return Layer(kind, args, kwargs, sem), (c, *out)


# 1.1, 2.1 and 0.7 are not exact in float32 (10 * 2.1 is 21, in float32 20), 1.1 and 1.25 keep a
# small size and 2.1 doubles one: PyTorch maps by the scale given, not out/in, with special cases
SCALES = [2, 3, 0.5, 1.5, 2.5, 0.75, 1.25, 0.25, 1.1, 2.1, 0.7]


def draw_upsample(draw, shape, size=None):
    c, sizes = shape[0], shape[1:]
    rank, limit = len(sizes), MAX_SIZE[len(sizes)]
    mode = draw(st.sampled_from(["nearest", LINEAR[rank]]))
    align = mode != "nearest" and draw(st.booleans())
    kwargs = {}
    if size is None and draw(st.integers(0, 3)) == 0:
        size = tuple(draw(st.integers(1, min(40, limit))) for _ in range(rank))
    if size is not None:
        kwargs["size"] = packed(size, draw(st.booleans()))
        sem = dict(size=size, scale=None)
        args, out = (), size
    else:
        keeps = "upsample_scale_keeps_size" in KNOWN_BUGS
        options = [[f for f in SCALES if 1 <= math.floor(n * f) <= limit
                    and not (keeps and math.floor(n * f) == n)] for n in sizes]
        distinct = draw(st.booleans())
        first = draw(st.sampled_from(options[0]))
        scales = [first] + [draw(st.sampled_from(o)) if distinct else (first if first in o else 1)
                            for o in options[1:]]
        scale = packed(tuple(scales), distinct and draw(st.booleans()))
        if set(scales) == {1}:   # an identity scale is still a valid upsample
            scale = 1
        out = tuple(math.floor(n * f) for n, f in zip(sizes, scales))
        sem = dict(size=None, scale=tuple(float(f) for f in scales))
        if draw(st.booleans()):
            args = (scale,)
        else:
            args, kwargs["scale_factor"] = (), scale
    if ("nearest_size_rounding" in KNOWN_BUGS and mode == "nearest" and size is not None
            and any(o % n for o, n in zip(out, sizes))):
        mode = LINEAR[rank]
    if ("bilinear_to_size_one" in KNOWN_BUGS and mode != "nearest" and not align
            and any(o == 1 and n > 1 for o, n in zip(out, sizes))):
        align = True
    if mode != "nearest" or draw(st.booleans()):
        kwargs["mode"] = mode
    if align:
        kwargs["align_corners"] = True
    sem.update(mode=mode, align_corners=align)
    return Layer("upsample", args, kwargs, sem), (c, *out)


def draw_pad(draw, shape):
    c, sizes = shape[0], shape[1:]
    rank, top = len(sizes), MAX_SIZE[len(sizes)]
    mode = draw(st.sampled_from(["constant", "reflect", "replicate"]))
    form = draw(st.sampled_from(["int", "per_axis", "begins_ends"]))
    limits = [max(0, min(3, top - n, n - 1 if mode == "reflect" else 3)) for n in sizes]
    room = [max(0, (top - n) // 2) for n in sizes]   # both sides together stay within the maximum
    if form == "int":
        v = min(draw(st.integers(0, min(limits))), min(room))
        padding, pads = v, [(v, v)] * rank
    elif form == "per_axis":
        values = [min(draw(st.integers(0, limits[a])), room[a]) for a in range(rank)]
        padding, pads = packed(tuple(values), True), [(v, v) for v in values]
    else:
        pads = [(min(draw(st.integers(0, limits[a])), room[a]), min(draw(st.integers(0, limits[a])), room[a]))
                for a in range(rank)]
        padding = tuple(b for b, _ in pads) + tuple(e for _, e in pads)
    kwargs, sem = {}, dict(pads=pads, mode=mode, value=0.0)
    if mode != "constant":
        kwargs["mode"] = mode
    elif draw(st.booleans()):
        kwargs["value"] = sem["value"] = draw(st.sampled_from([1.5, -2.0, 0.25]))
    return Layer("pad", (padding,), kwargs, sem), (c, *(n + b + e for n, (b, e) in zip(sizes, pads)))


ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "relu6", "hardsigmoid", "hardswish", "gelu",
               "silu", "elu", "prelu", "softmax", "log_softmax", "hardtanh", "dropout", "stochastic_depth",
               "identity", "clamp"]


def draw_activation(draw, shape, flat: bool):
    c = shape[0]
    kind = draw(st.sampled_from(ACTIVATIONS))
    args, kwargs, sem = (), {}, {}
    if kind == "leaky_relu" and draw(st.booleans()):
        sem["slope"] = draw(st.sampled_from([0.2, 0.05]))
        args = (sem["slope"],)
    elif kind == "elu" and draw(st.booleans()):
        sem["alpha"] = draw(st.sampled_from([0.7, 1.5]))
        args = (sem["alpha"],)
    elif kind == "gelu" and draw(st.booleans()):
        kwargs["approximate"] = sem["approximate"] = "tanh"
    elif kind == "prelu":
        sem["num"] = draw(st.sampled_from([1, c]))
        if sem["num"] != 1 or draw(st.booleans()):
            args = (sem["num"],)
    elif kind in ("softmax", "log_softmax"):
        sem["axis"] = draw(st.sampled_from(["C"] if flat else ["C", *LETTERS[len(shape) - 1]]))
        if sem["axis"] != "C" or draw(st.booleans()):
            args = (sem["axis"],)
    elif kind == "hardtanh" and draw(st.booleans()):
        sem["range"] = draw(st.sampled_from([(-0.5, 0.5), (0.0, 6.0), (-2.0, 0.25)]))
        args = sem["range"]
    elif kind == "stochastic_depth" and draw(st.booleans()):
        args = (draw(st.sampled_from([0.1, 0.2])), draw(st.sampled_from(["row", "batch"])))
    elif kind == "dropout" and draw(st.booleans()):
        args = (draw(st.sampled_from([0.1, 0.5])),)
    elif kind == "clamp":
        return draw_clamp(draw), shape
    return Layer(kind, args, kwargs, sem), shape


def draw_norm(draw, shape, flat: bool):
    c = shape[0]
    kind = draw(st.sampled_from(["batchnorm", "layernorm"] if flat else ["batchnorm", "layernorm", "groupnorm"]))
    if kind == "groupnorm":
        g = draw(st.sampled_from(divisors(c)))
        return Layer(kind, (g,), {}, dict(groups=g)), shape
    return Layer(kind), shape


def draw_spatial_layer(draw, shape):
    c, sizes = shape[0], shape[1:]
    kind = draw(st.sampled_from(["conv"] * 4 + ["conv_transpose"] * 2 + ["pool"] * 3 + ["upsample"] * 2
                                + ["activation"] * 3 + ["pad", "norm", "adaptive", "global"]))
    if kind == "conv":
        return draw_conv(draw, shape)
    if kind == "conv_transpose":
        return draw_conv_transpose(draw, shape)
    if kind == "pool":
        return draw_pool(draw, shape)
    if kind == "upsample":
        return draw_upsample(draw, shape)
    if kind == "pad":
        return draw_pad(draw, shape)
    if kind == "norm":
        return draw_norm(draw, shape, flat=False)
    if kind == "adaptive":   # sizes that divide (what ONNX lowers exactly)
        out = tuple(draw(st.sampled_from(divisors(n))) for n in sizes)
        pool = draw(st.sampled_from(["adaptive_avgpool", "adaptive_avgpool", "adaptive_maxpool"]))
        return Layer(pool, (packed(out, False),), {}, dict(size=out)), (c, *out)
    if kind == "global":
        return Layer(draw(st.sampled_from(["global_avgpool", "global_maxpool"]))), (c, *ones(len(sizes)))
    return draw_activation(draw, shape, flat=False)


# ---------------------------------------------------------------------------- tokens
#
# Tokens are the 1-D networks' tensors read as [N, L, E]: canonically (N, C, L), the embedding E
# the channels, in any layout (netspec reads attention's axes by role). A patch-embedding network
# makes them from an image as a ViT does: `conv(E, p, stride=p) -> flatten(2, layout="NCL") ->
# permute(0, 2, 1)`, [N, L, E] NLC from there on.


def draw_attention(draw, shape):
    """multihead_attention(num_heads), the twin nn.MultiheadAttention(E, heads, batch_first=True)."""
    e = shape[0]
    heads = draw(st.sampled_from(divisors(e)))
    args, kwargs = (heads,), {}
    dropout = draw(st.sampled_from([0.0, 0.0, 0.1]))
    if dropout or draw(st.integers(0, 3)) == 0:
        args += (dropout,)
    bias = draw(st.integers(0, 3)) > 0
    if not bias or draw(st.integers(0, 3)) == 0:
        kwargs["bias"] = bias
    return Layer("multihead_attention", args, kwargs, dict(heads=heads, dropout=dropout, bias=bias)), shape


def draw_channels_last_linear(draw, shape):
    """linear over the channels of a channels-last tensor, at every position (nn.Linear on the last axis)."""
    out = draw(st.integers(1, MAX_CH))
    bias = draw(st.booleans())
    return Layer("linear", (out,), {} if bias else {"bias": False}, dict(out=out, bias=bias)), (out, *shape[1:])


def draw_chain_layer(draw, shape, layout: str, tokens: bool = False):
    """A layer of a chain: mostly draw_spatial_layer; over tokens (a 1-D tensor) now and then
    attention, layernorm or a linear (channels last), more often in a patch-embedding network."""
    rank = len(shape) - 1
    last = layout[-1] == "C"
    odds = 2 if tokens else 6 if rank == 1 else 12 if last else 0
    if odds and draw(st.integers(0, odds - 1)) == 0:
        kinds = (["attention", "attention", "layernorm"] if rank == 1 else []) + (["linear"] if last else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "attention":
            return draw_attention(draw, shape)
        if kind == "linear":
            return draw_channels_last_linear(draw, shape)
        return Layer("layernorm"), shape
    return draw_spatial_layer(draw, shape)


def draw_patch_embedding(draw, names: Names):
    """An NCHW image to tokens: conv(E, p, stride=p) -> flatten(2, layout="NCL") -> permute(0, 2, 1).
    Returns the chain, the image's (C, H, W) and the tokens' (E, L)."""
    low, high = INPUT_SIZES[2]
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(low, high)), draw(st.integers(low, high))
    p = draw(st.sampled_from([q for q in (2, 4, 5, 8) if (h // q) * (w // q) <= MAX_SIZE[1]]))
    e = draw(st.sampled_from([1, 2, 4, 6, 8, 12]))
    bias = draw(st.booleans())
    conv = Layer("conv", (e, p), {"stride": p} if bias else {"stride": p, "bias": False},
                 dict(out=e, kernel=(p, p), stride=(p, p), dilation=(1, 1), padding=0, pads=[(0, 0)] * 2,
                      groups=1, bias=bias))
    flatten = _rearranged("flatten", (draw(st.sampled_from([2, "H", -2])),), {"layout": "NCL"}, "NCHW", "NCL",
                          lambda t: t.flatten(2))
    perm = draw(st.sampled_from([(0, 2, 1), ((0, 2, 1),), ("NLC",)]))
    permute = _rearranged("permute", perm, {}, "NCL", "NLC", lambda t: t.permute(0, 2, 1))
    length = (h // p) * (w // p)
    return Chain(names.fresh(), "x", [conv, flatten, permute]), (c, h, w), (e, length)


def matmul_ok(layout: str) -> bool:
    """README: matmul's batch is a leading axis (not among the last two)."""
    return layout.index("N") < len(layout) - 2


def draw_matmul(draw, names: Names, source: str, shape, layout: str):
    """`matmul(a, b)` of two activations from `source` ([..., M, K] in the declared layout): b is
    the source transposed on its last two axes ([..., K, P], P <= M after a narrow), or the
    source itself (or an activation of it) when M == K; now and then one operand narrowed to 1 on
    a leading axis (broadcast). The twin is torch.matmul on the declared tensors."""
    rank = len(shape) - 1
    letters = "C" + LETTERS[rank]
    size = dict(zip(letters, shape))
    m_letter, k_letter = layout[-2], layout[-1]
    lead = [a for a in layout[:-2] if a != "N"]
    a_size, b_size = dict(size), dict(size)
    statements, a_layers, b_layers = [], [], []
    if lead and draw(st.booleans()):   # broadcast a leading axis of size 1 against the other's
        letter = draw(st.sampled_from(lead))
        axis = layout.index(letter)
        start = draw(st.integers(0, size[letter] - 1))
        narrow = _rearranged("narrow", (_letter_or_index(draw, layout, axis), start, 1), {}, layout, layout,
                             lambda t, a=axis, b=start: t.narrow(a, b, 1))
        if draw(st.booleans()):
            a_layers.append(narrow)
            a_size[letter] = 1
        else:
            b_layers.append(narrow)
            b_size[letter] = 1
    if draw(st.booleans()):
        layer, _ = draw_activation(draw, (b_size["C"],), flat=True)   # softmax/log_softmax over C; prelu of b's channels
        b_layers.append(layer)
    b_layout = layout
    if size[m_letter] == size[k_letter] and draw(st.booleans()):
        p = size[k_letter]   # square: b in the source's layout
    else:
        cap = MAX_CH if k_letter == "C" else MAX_SIZE[rank]
        m = size[m_letter]
        p = draw(st.integers(1, min(m, cap)))
        axis = layout.index(m_letter)
        if p < m or draw(st.integers(0, 3)) == 0:
            start = draw(st.integers(0, m - p))
            b_layers.append(_rearranged("narrow", (_letter_or_index(draw, layout, axis), start, p), {}, layout,
                                        layout, lambda t, a=axis, b=start, k=p: t.narrow(a, b, k)))
        b_layout = layout[:-2] + k_letter + m_letter
        r = len(layout)
        args = draw(st.sampled_from([(-2, -1), (-1, -2), (r - 2, r - 1), (m_letter, k_letter)]))
        b_layers.append(_rearranged("transpose", args, {}, layout, b_layout,
                                    lambda t: t.transpose(-2, -1)))
    # the operator: `a @ b`, or Swin's `(q * s) @ (k -> transpose(-2, -1))` with b's transpose inline
    form = draw(st.sampled_from(["call", "at", "inline"]))
    inline = None
    if form == "inline" and b_layers and b_layers[-1].kind == "transpose":
        inline = b_layers.pop()
        b_layout = layout
    operands = []
    for layers, lay in ((a_layers, layout), (b_layers, b_layout)):
        if layers:
            statements.append(Chain(names.fresh(), source, layers, layout=None if lay == layout else lay))
            operands.append(statements[-1].name)
        else:
            operands.append(source)
    out = {a: max(a_size[a], b_size[a]) for a in letters}
    out[m_letter], out[k_letter] = a_size[m_letter], p
    if inline is None:
        statements.append(Merge(names.fresh(), "matmul", operands, layouts=[layout, b_layout],
                                form="at" if form == "at" else "call"))
        return statements, tuple(out[a] for a in letters)
    a, b = operands
    scale = draw(st.sampled_from([0.25, 0.5, 2, 0.125, 3]))
    a_text = draw(st.sampled_from([f"({a} * {scale})", f"{a} * {scale}", f"{scale} * {a}"]))

    def fn(bindings, a=a, b=b, s=scale):
        q, k = declared_tensor(bindings[a], layout), declared_tensor(bindings[b], layout)
        return canonical_tensor(torch.matmul(q * s, k.transpose(-2, -1)), layout)
    statements.append(Expr(names.fresh(), "matmul", f"{a_text} @ ({b} -> {inline.call()})", fn,
                           inner=["mul", "transpose"]))
    return statements, tuple(out[a] for a in letters)


# ---------------------------------------------------------------------------- window attention's pieces
#
# Swin's constructs, each on the tensor in its declared layout (twins: torch.roll, indexing,
# F.normalize, torch.clamp, torch.exp, the arithmetic itself): roll over non-batch axes; a
# relative position bias (a param table gathered by a buffer index, reshaped and permuted,
# added to an activation shaped to match); an activation gathered along an axis; normalize;
# clamp and a bounded exp; a tensor and a number; a param or buffer (persistent or not) meeting
# an activation in `+` or `*`, or Swin V2's `s -> clamp(max=...) -> exp` logit scale.


def declared_tensor(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The twin's canonical tensor in the declared layout `layout`."""
    order = canonical_order(layout)
    return t.permute(*[order.index(i) for i in range(len(layout))])


def canonical_tensor(t: torch.Tensor, layout: str) -> torch.Tensor:
    return t.permute(*canonical_order(layout))


def relative_position_index(h: int, w: int) -> np.ndarray:
    """README: for each pair of positions of an h x w window, query first, the row of the bias
    table for their offset, (dy + h - 1) * (2w - 1) + dx + w - 1 (torchvision's, flattened)."""
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    dy, dx = ys[:, None] - ys[None, :], xs[:, None] - xs[None, :]
    return ((dy + h - 1) * (2 * w - 1) + dx + w - 1).reshape(-1).astype(np.int64)


def _declared_sizes(shape, layout: str) -> list[int]:
    size = dict(zip("C" + LETTERS[len(shape) - 1], shape))
    return [size.get(a, BATCH) for a in layout]


def draw_roll(draw, shape, layout: str) -> Layer:
    """roll(shifts, axes): one axis or a tuple of them (letters or indices, never the batch),
    shifts positive, negative, zero or past the size."""
    declared = _declared_sizes(shape, layout)
    others = [i for i, a in enumerate(layout) if a != "N"]
    axes = draw(st.permutations(others))[:draw(st.integers(1, min(3, len(others))))]
    shifts = []
    for a in axes:
        n = declared[a]
        shifts.append(draw(st.one_of(st.integers(-n, n), st.sampled_from([0, n, -n, n + 1, 2 * n + 3, -(n + 2)]))))
    written = [_letter_or_index(draw, layout, a) for a in axes]
    if len(axes) == 1 and draw(st.booleans()):
        args = (shifts[0], written[0])
    else:
        args = (tuple(shifts), tuple(written))
    return _rearranged("roll", args, {}, layout, layout,
                       lambda t, s=tuple(shifts), d=tuple(axes): torch.roll(t, s, d))


def draw_normalize(draw, layout: str) -> Layer:
    """normalize over the channels (the default) or the last axis; twin F.normalize."""
    r = len(layout)
    targets = ["C"] + (["last"] if layout[-1] != "N" else [])
    target = draw(st.sampled_from(targets))
    dim = layout.index("C") if target == "C" else r - 1
    if target == "C" and draw(st.booleans()):
        args = ()
    elif target == "last" and draw(st.booleans()):
        args = (-1,)
    else:
        args = (_letter_or_index(draw, layout, dim),)
    kwargs, eps = {}, 1e-12
    if draw(st.integers(0, 3)) == 0:
        eps = kwargs["eps"] = draw(st.sampled_from([1e-6, 0.001]))
    layer = _rearranged("normalize", args, kwargs, layout, layout,
                        lambda t, d=dim, e=eps: F.normalize(t, dim=d, eps=e))
    layer.sem["dim"] = dim
    return layer


CLAMP_LOW = [-1, -0.5, 0, 0.25]
CLAMP_HIGH = [0.5, 1, 2.0, 3.0]


def draw_clamp(draw, need_max: bool = False) -> Layer:
    """clamp(min, max), either bound or both, positional or by keyword."""
    which = "max" if need_max and draw(st.booleans()) else draw(
        st.sampled_from(["both", "max"] if need_max else ["both", "min", "max"]))
    low, high = draw(st.sampled_from(CLAMP_LOW)), draw(st.sampled_from(CLAMP_HIGH))
    sem = {"min": low if which != "max" else None, "max": high if which != "min" else None}
    if which == "both":
        args, kwargs = ((low, high), {}) if draw(st.booleans()) else ((), {"min": low, "max": high})
    elif which == "min":
        args, kwargs = ((low,), {}) if draw(st.booleans()) else ((), {"min": low})
    else:
        args, kwargs = (), {"max": high}
    return Layer("clamp", args, kwargs, sem)


def draw_bounded_exp(draw) -> list[Layer]:
    """exp after a layer that bounds it from above (clamp with a max, tanh, sigmoid): no overflow."""
    first = draw(st.sampled_from(["clamp", "clamp", "tanh", "sigmoid"]))
    return [draw_clamp(draw, need_max=True) if first == "clamp" else Layer(first), Layer("exp")]


NUMBERS = [0.5, 2, 4, 0.25, 1.5, 3, -0.5, 1]


def draw_arithmetic(draw, names: Names, source: str) -> Expr:
    """A tensor and a number: x * 0.5, 2 * x, x / 4, x + 1, 1 + x, x - 0.25 (a mul or add with its scalar)."""
    op = draw(st.sampled_from(["x*n", "n*x", "x/n", "x+n", "n+x", "x-n"]))
    n = draw(st.sampled_from(NUMBERS))
    rhs = {"x*n": "{x} * {n}", "n*x": "{n} * {x}", "x/n": "{x} / {n}", "x+n": "{x} + {n}", "n+x": "{n} + {x}",
           "x-n": "{x} - {n}"}[op].format(x=source, n=n)
    fns = {"x*n": lambda t: t * n, "n*x": lambda t: n * t, "x/n": lambda t: t / n,
           "x+n": lambda t: t + n, "n+x": lambda t: n + t, "x-n": lambda t: t - n}
    kind = "mul" if op in ("x*n", "n*x", "x/n") else "add"
    return Expr(names.fresh(), kind, rhs, lambda b, f=fns[op], s=source: f(b[s]))


def _trailing(layout: str) -> int:
    """How many axes follow the batch in the declared layout (what a param may align with)."""
    return len(layout) - 1 - layout.index("N")


def draw_owned(draw, names: Names, source: str, shape, layout: str):
    """A param or buffer (persistent or not) meeting an activation in `+` or `*`, broadcast on the
    activation's last axes (sizes its own or 1); a param sometimes through Swin V2's
    `clamp(max=...) -> exp` first."""
    declared = _declared_sizes(shape, layout)
    k = draw(st.integers(1, _trailing(layout)))
    sizes = [d if draw(st.integers(0, 2)) else 1 for d in declared[-k:]]
    for i in range(len(sizes)):
        if math.prod(sizes) > 64:
            sizes[i] = 1
    sizes = tuple(sizes)
    kind = draw(st.sampled_from(["param", "buffer", "buffer_temp", "buffer_temp"]))
    name = names.fresh()
    statements = []
    if kind == "param":
        tensor = Tensor(name, "param", sizes)
    elif kind == "buffer":   # its value comes from the weights dict
        tensor = Tensor(name, "buffer", sizes)
    else:                    # persistent=false: its value is its init, and no weights file has it
        if math.prod(sizes) <= 24 and draw(st.booleans()):
            values = tuple(draw(st.sampled_from([-1.5, -0.5, 0.25, 0.75, 1.0, 2.0])) for _ in range(math.prod(sizes)))
            init, value = values, np.array(values, np.float32).reshape(sizes)
        else:
            init = draw(st.sampled_from([0.5, -2.0, 1.25, 3]))
            value = np.full(sizes, init, np.float32)
        tensor = Tensor(name, "buffer", sizes, value=value, init=init, persistent=False)
    statements.append(tensor)
    other = name
    op = draw(st.sampled_from(["+", "*"]))
    if kind == "param" and op == "*" and draw(st.booleans()):   # Swin V2's logit scale
        high = draw(st.sampled_from([1.0, 2.0, 4.6]))   # 4.6: about log(100), Swin V2's bound
        clamp = Layer("clamp", (), {"max": high}, {"min": None, "max": high})
        chain = Chain(names.fresh(), name, [clamp, Layer("exp")], constant=True)
        statements.append(chain)
        other = chain.name
    first = draw(st.booleans())
    rhs = f"{source} {op} {other}" if first else f"{other} {op} {source}"

    def fn(b, s=source, o=other, mul=op == "*"):
        a = declared_tensor(b[s], layout)
        return canonical_tensor(a * b[o] if mul else a + b[o], layout)
    statements.append(Expr(names.fresh(), "mul" if op == "*" else "add", rhs, fn))
    return statements, shape


def draw_relative_bias(draw, names: Names, source: str, shape, layout: str):
    """Swin's relative position bias: a param table [K, heads] gathered by a buffer index
    (relative_position_index(w), (h, w), or an explicit tuple of rows), reshaped to [A, A, heads]
    and permuted to the activation's last three declared axes (the table's [M, heads], perhaps
    transposed, against the last two of a 1-D tensor), added to the source shaped by a fixer."""
    rank = len(shape) - 1
    letters = "C" + LETTERS[rank]
    three = rank >= 2
    trail = layout[-3:] if three else layout[-2:]
    if "N" in trail:   # a param aligns with the axes after the batch
        return [], None
    cap = {a: (MAX_CH if a == "C" else MAX_SIZE[rank]) for a in letters}
    heads = draw(st.integers(1, 4))
    form = draw(st.sampled_from(["square", "rect", "tuple"]))
    limit = 9 if three else 8
    if form == "square":
        w = draw(st.sampled_from([x for x in (1, 2, 3) if x * x <= limit]))
        h, call = w, Raw(f"relative_position_index({w})")
    elif form == "rect":
        h, w = draw(st.sampled_from([(hh, ww) for hh in (1, 2, 3) for ww in (1, 2, 3) if hh * ww <= limit]))
        call = Raw(f"relative_position_index({h}, {w})")
    if form == "tuple":
        area = draw(st.integers(1, 3))
        rows = draw(st.integers(1, 6))
        values = tuple(draw(st.integers(0, rows - 1)) for _ in range(area * area))
        index_value, init = np.array(values, np.int64), values
    else:
        area, rows = h * w, (2 * h - 1) * (2 * w - 1)
        index_value, init = relative_position_index(h, w), call
    m = area * area
    dtype = draw(st.sampled_from(["i64", "i64", "i32"]))
    index_value = index_value.astype(np.int32 if dtype == "i32" else np.int64)
    persistent = draw(st.booleans())
    table = Tensor(names.fresh(), "param", (rows, heads))
    index = Tensor(names.fresh(), "buffer", (m,), value=index_value, init=init, dtype=dtype, persistent=persistent)
    statements = [table, index]
    gather = _rearranged("gather", (Raw(index.name),), {}, "??", "??",
                         lambda t, i=torch.from_numpy(index_value.astype(np.int64)): t[i])
    if three:
        roles = draw(st.permutations(["q", "k", "h"]))   # which of [A, A, heads] each trailing axis takes
        raw = {"q": 0, "k": 1, "h": 2}
        perm = tuple(raw[r] for r in roles)
        sizes = {"q": area, "k": area, "h": heads}
        want = {letter: sizes[r] for letter, r in zip(trail, roles)}
        layers = [gather, _rearranged("reshape", ((area, area, heads),), {}, "??", "???",
                                      lambda t, a=area, n=heads: t.reshape(a, a, n))]
        if perm != (0, 1, 2) or draw(st.booleans()):
            args = (perm,) if draw(st.booleans()) else perm
            layers.append(_rearranged("permute", args, {}, "???", "???", lambda t, p=perm: t.permute(*p)))
    else:
        flip = trail[0] == "C"   # [M, heads] against (C, L): transposed
        want = {trail[0]: heads if flip else m, trail[1]: m if flip else heads}
        layers = [gather]
        if flip:
            layers.append(_rearranged("transpose", draw(st.sampled_from([(0, 1), (1, 0), (-1, -2)])), {}, "??", "??",
                                      lambda t: t.transpose(0, 1)))
    if any(v > cap[a] for a, v in want.items()):
        return [], None
    head_call = draw(st.booleans())
    if head_call or len(layers) == 1:
        bias = Chain(names.fresh(), table.name, layers, constant=True, head_call=True)
        statements.append(bias)
    else:   # `g = table -> gather(index)`, then the rest
        g = Chain(names.fresh(), table.name, layers[:1], constant=True)
        bias = Chain(names.fresh(), g.name, layers[1:], constant=True)
        statements += [g, bias]
    fix, out = draw_fixer(draw, shape, tuple(want.get(a) for a in letters))
    act = source
    if fix:
        statements.append(Chain(names.fresh(), source, fix))
        act = statements[-1].name
    first = draw(st.booleans())
    rhs = f"{act} + {bias.name}" if first else f"{bias.name} + {act}"

    def fn(b, s=act, o=bias.name):
        return canonical_tensor(declared_tensor(b[s], layout) + b[o], layout)
    statements.append(Expr(names.fresh(), "add", rhs, fn))
    return statements, out


def draw_gather_activation(draw, names: Names, source: str, shape, layout: str):
    """gather(x, index, axis=k) along a non-batch axis with a buffer index of one axis (the
    axis keeps its role) or two (then flatten(k, k + 1, layout=...) back); twin x[..., index]."""
    rank = len(shape) - 1
    declared = _declared_sizes(shape, layout)
    R = len(layout)
    axis = draw(st.sampled_from([i for i, a in enumerate(layout) if a != "N"]))
    n, letter = declared[axis], layout[axis]
    cap = MAX_CH if letter == "C" else MAX_SIZE[rank]
    two_ok = not ("flatten_layout_before_batch" in KNOWN_BUGS and axis < layout.index("N"))
    if two_ok and draw(st.booleans()):
        a = draw(st.integers(1, 4))
        sizes = (a, draw(st.integers(1, min(4, cap // a))))
    else:
        sizes = (draw(st.integers(1, min(12, cap))),)
    count = math.prod(sizes)
    values = tuple(draw(st.integers(0, n - 1)) for _ in range(count))
    dtype = draw(st.sampled_from(["i64", "i64", "i32"]))
    value = np.array(values, np.int32 if dtype == "i32" else np.int64).reshape(sizes)
    index = Tensor(names.fresh(), "buffer", sizes, value=value, init=values, dtype=dtype,
                   persistent=draw(st.integers(0, 3)) > 0)
    mid = layout if len(sizes) == 1 else layout[:axis] + "??" + layout[axis + 1:]
    kwargs, args = {}, (Raw(index.name),)
    style = draw(st.sampled_from(["keyword", "positional", "default"]))
    if style == "default" and axis != 0:
        style = "keyword"
    if style != "default":
        written = _letter_or_index(draw, layout, axis)
        if style == "keyword":
            kwargs["axis"] = written
        else:
            args += (written,)
    gather = _rearranged("gather", args, kwargs, layout, mid,
                         lambda t, a=axis, i=torch.from_numpy(value.astype(np.int64)): t[(slice(None),) * a + (i,)])
    layers = [gather]
    if len(sizes) == 2:
        start = axis if draw(st.booleans()) else axis - (R + 1)
        end = axis + 1 if draw(st.booleans()) else axis + 1 - (R + 1)
        layers.append(_rearranged("flatten", (start, end), {"layout": layout}, mid, layout,
                                  lambda t, a=axis: torch.flatten(t, a, a + 1)))
    declared[axis] = count
    chain = Chain(names.fresh(), source, layers, head_call=draw(st.booleans()))
    return [index, chain], _canonical_shape(declared, layout, "C" + LETTERS[rank])


def draw_window(draw, names: Names, source: str, shape, layout: str):
    """One of window attention's pieces on `source`: statements and the new shape."""
    kinds = ["roll", "normalize", "clamp", "exp", "arithmetic", "gather", "bias"]
    if _trailing(layout):
        kinds.append("owned")
    kind = draw(st.sampled_from(kinds))
    if kind == "bias":
        statements, out = draw_relative_bias(draw, names, source, shape, layout)
        if statements:
            return statements, out
        kind = "roll"
    if kind == "owned":
        return draw_owned(draw, names, source, shape, layout)
    if kind == "gather":
        return draw_gather_activation(draw, names, source, shape, layout)
    if kind == "arithmetic":
        return [draw_arithmetic(draw, names, source)], shape
    if kind == "roll":
        layers = [draw_roll(draw, shape, layout)]
    elif kind == "normalize":
        layers = [draw_normalize(draw, layout)]
    elif kind == "clamp":
        layers = [draw_clamp(draw)]
    else:
        layers = draw_bounded_exp(draw)
    if draw(st.booleans()):   # then an activation (Swin: softmax after the bias, dropout, gelu)
        layers.append(draw_activation(draw, shape, flat=False)[0])
    return [Chain(names.fresh(), source, layers)], shape


# ---------------------------------------------------------------------------- merges


def _axis_candidates(n, t):
    """Ways a single layer takes one axis from n to t: conv (k, s, p, d), conv_transpose
    (k, s, p, d, op), maxpool (k, s, p, d, ceil), each as a list."""
    conv = [(k, s, p, d) for k in range(1, 6) for s in range(1, 4) for p in range(3) for d in (1, 2)
            if conv_out(n, k, s, d, p, p) == t]
    tconv = [(k, s, p, d, op) for k in range(1, 5) for s in range(1, 4) for p in range(3) for d in (1, 2)
             for op in range(op_limit(s, d) + 1) if tconv_out(n, k, s, d, p, op) == t]
    pool = {ceil: [(k, s, p, 1, ceil) for k in range(1, 5) for s in range(1, 4) for p in range(k // 2 + 1)
                   if pool_out(n, k, s, 1, p, ceil) == t] for ceil in (False, True)}
    return conv, tconv, pool


def draw_fixer(draw, shape, target):
    """Layers that take `shape` to `target` (entries None: any size): one conv, conv_transpose,
    pool or upsample(size=...) for the spatial axes, then a 1x1 conv for the channels if needed."""
    sizes = tuple(shape[1:])
    rank = len(sizes)
    tc = target[0]
    want = tuple(t or n for t, n in zip(target[1:], sizes))
    layers = []
    if sizes != want or draw(st.booleans()):
        candidates = [_axis_candidates(n, t) for n, t in zip(sizes, want)]
        kinds = ["upsample"]
        if all(conv for conv, _, _ in candidates):
            kinds.append("conv")
        if all(tconv for _, tconv, _ in candidates):
            kinds.append("conv_transpose")
        for ceil in (False, True):
            if all(pool[ceil] for _, _, pool in candidates):
                kinds.append(("pool", ceil))
        kind = draw(st.sampled_from(kinds))
        if kind == "conv":
            layer, shape = draw_conv(draw, shape, out_channels=tc,
                                     fixed=[draw(st.sampled_from(conv)) for conv, _, _ in candidates])
        elif kind == "conv_transpose":
            layer, shape = draw_conv_transpose(draw, shape, out_channels=tc,
                                               fixed=[draw(st.sampled_from(tconv)) for _, tconv, _ in candidates])
        elif kind == "upsample":
            layer, shape = draw_upsample(draw, shape, size=want)
        else:
            ceil = kind[1]
            layer, shape = draw_pool(draw, shape, kind="maxpool",
                                     fixed=[draw(st.sampled_from(pool[ceil])) for _, _, pool in candidates])
        layers.append(layer)
    if tc is not None and shape[0] != tc:
        layer, shape = draw_conv(draw, shape, out_channels=tc, fixed=[(1, 1, 0, 1)] * rank)
        layers.append(layer)
    assert shape[0] == (tc or shape[0]) and tuple(shape[1:]) == want, (shape, target)
    return layers, shape


def draw_merge(draw, names: Names, source: str, shape):
    """Two or three branches from `source`, merged by add or concat, shapes matched by construction."""
    letters = "C" + LETTERS[len(shape) - 1]
    kind = draw(st.sampled_from(["add", "concat"]))
    axis_letter = "C" if kind == "add" else draw(st.sampled_from(["C", "C", *letters[1:]]))
    n_branches = draw(st.sampled_from([2, 2, 3]))
    statements, operands, shapes = [], [], []
    first_layers, cur = [], shape
    for _ in range(draw(st.integers(0, 2))):
        layer, cur = draw_spatial_layer(draw, cur)
        first_layers.append(layer)
    target_shape = cur
    if first_layers:
        statements.append(Chain(names.fresh(), source, first_layers))
        operands.append(statements[-1].name)
    else:
        operands.append(source)
    shapes.append(cur)
    free = axis_letter if kind == "concat" else None     # the axis a concat joins may differ
    target = tuple(None if letter == free else size for letter, size in zip(letters, target_shape))
    for _ in range(n_branches - 1):
        layers, cur = [], shape
        for _ in range(draw(st.integers(0, 1))):
            layer, cur = draw_spatial_layer(draw, cur)
            layers.append(layer)
        fix, cur = draw_fixer(draw, cur, target)
        layers += fix
        if layers:
            statements.append(Chain(names.fresh(), source, layers))
            operands.append(statements[-1].name)
        else:
            operands.append(source)
        shapes.append(cur)
    index = letters.index(axis_letter)
    out = list(shapes[0])
    if kind == "concat":
        out[index] = sum(s[index] for s in shapes)   # may exceed MAX_SIZE / MAX_CH: later layers shrink
    if kind == "add":
        axis, form = None, draw(st.sampled_from(["plus", "call", "arrow"]))
        axis_letter = "C"
    else:
        form = draw(st.sampled_from(["call", "arrow"]))
        axis = None if axis_letter == "C" and draw(st.booleans()) else axis_letter
    merge = Merge(names.fresh(), kind, operands, axis=axis, form=form, axis_letter=axis_letter)
    statements.append(merge)
    return statements, tuple(out)


# ---------------------------------------------------------------------------- rearrangements
#
# Each group starts and ends in the declared layout, so the (C, *spatial) bookkeeping holds; in
# between the layout is what the README's rule says ("Layouts through permute and reshape"),
# predicted here from that rule with "?" for an axis without a role. The twin applies each
# rearrangement to the tensor in its declared layout with torch's own op (`sem["fn"]`), between
# the layouts `sem["before"]` and `sem["after"]`.

ROLES = "NCDHWL"


def canonical_order(layout: str) -> list[int]:
    """README: inside ONNX (and in the twin) axes are N, C, the spatial ones in D, H, W (or L)
    order, then those without a role in their declared order."""
    batch = [layout.index("N")] if "N" in layout else []
    channel = [layout.index("C")] if "C" in layout else []
    spatial = sorted((i for i, a in enumerate(layout) if a in "DHWL"), key=lambda i: "DHWL".index(layout[i]))
    others = [i for i, a in enumerate(layout) if a not in ROLES]
    return batch + channel + spatial + others


def _reshape_rule(letters: str, sizes: list[int], out: list[int]) -> str:
    """README's reshape rule: axes unchanged at the front and back keep their letters; one axis
    merging several that held the channels is C; the others have no role (?)."""
    front = 0
    while front < min(len(sizes), len(out)) and sizes[front] == out[front]:
        front += 1
    back = 0
    while back < min(len(sizes), len(out)) - front and sizes[-1 - back] == out[-1 - back]:
        back += 1
    middle = letters[front:len(letters) - back]
    between = len(out) - front - back
    mid = "C" if between == 1 and "C" in middle else "?" * between
    return letters[:front] + mid + letters[len(letters) - back:]


def _rearranged(kind, args, kwargs, before, after, fn) -> Layer:
    return Layer(kind, args, kwargs, dict(before=before, after=after, fn=fn))


def _letter_or_index(draw, layout: str, index: int):
    """An axis written as its letter (where it has a role) or an index, possibly negative."""
    style = draw(st.sampled_from(["letter", "index", "negative"]))
    if style == "letter" and layout[index] in ROLES:
        return layout[index]
    return index if style != "negative" else index - len(layout)


def _pieces(kind: str, n: int, amount) -> list[tuple[int, int]]:
    """torch.chunk's and torch.split's pieces of an axis of n: (start, size)."""
    if kind == "chunk":
        size = -(-n // amount)
        return [(s, min(size, n - s)) for s in range(0, n, size)]
    if isinstance(amount, int):
        return [(s, min(amount, n - s)) for s in range(0, n, amount)]
    return [(sum(amount[:i]), v) for i, v in enumerate(amount)]


def draw_rearrange(draw, names: Names, source: str, shape, layout: str):
    """Statements that rearrange `source` and come back to `layout`, and the new shape."""
    rank = len(shape) - 1
    letters = "C" + LETTERS[rank]
    size = dict(zip(letters, shape))
    declared = [size.get(a, BATCH) for a in layout]       # BATCH stands for N (never touched)
    R, batch = len(layout), layout.index("N")
    others = [i for i in range(R) if i != batch]
    kinds = ["permute", "transpose", "unsqueeze", "select", "slice", "narrow", "piece", "unpack", "shuffle"]
    if batch == 0:
        kinds += ["reshape", "flatten"]
    kind = draw(st.sampled_from(kinds))
    layers: list[Layer] = []
    if kind == "permute":
        order = draw(st.permutations(range(R)))
        mid = "".join(layout[i] for i in order)
        form = draw(st.sampled_from(["letters", "indices", "tuple"]))
        dims = mid if form == "letters" else tuple(order) if form == "indices" else tuple(mid)
        args = dims if form == "indices" and draw(st.booleans()) else (dims,)   # permute(0, 2, 3, 1)
        layers.append(_rearranged("permute", args, {}, layout, mid, lambda t, o=tuple(order): t.permute(*o)))
        middle = draw(st.sampled_from([None, "relu", "layernorm", "shuffle"]))
        if middle == "shuffle" and size["C"] > 1:
            g = draw(st.sampled_from([d for d in divisors(size["C"]) if d > 1]))
            layers.append(Layer("channel_shuffle", (g,), {}, dict(groups=g)))
        elif middle in ("relu", "layernorm"):
            layers.append(Layer(middle))
        inverse = [order.index(i) for i in range(R)]
        back = layout if draw(st.booleans()) else tuple(inverse)
        layers.append(_rearranged("permute", (back,), {}, mid, layout, lambda t, o=tuple(inverse): t.permute(*o)))
    elif kind == "transpose":
        a, b = draw(st.permutations(range(R)))[:2]
        mid = list(layout)
        mid[a], mid[b] = mid[b], mid[a]
        mid = "".join(mid)
        for before, after in ((layout, mid), (mid, layout)):
            args = (_letter_or_index(draw, before, a), _letter_or_index(draw, before, b))
            layers.append(_rearranged("transpose", args, {}, before, after, lambda t, a=a, b=b: t.transpose(a, b)))
    elif kind == "reshape":
        sizes = declared[1:]
        total = math.prod(sizes)
        out, left = [], total
        for _ in range(draw(st.integers(0, 3))):
            d = draw(st.sampled_from(divisors(left)[:8]))
            out.append(d)
            left //= d
        out.append(left)
        out = draw(st.permutations(out))
        written = list(out)
        if draw(st.booleans()):
            written[draw(st.integers(0, len(out) - 1))] = -1
        mid = "N" + _reshape_rule(layout[1:], sizes, list(out))
        shape_arg = written[0] if len(written) == 1 and draw(st.booleans()) else tuple(written)
        layers.append(_rearranged("reshape", (shape_arg,), {}, layout, mid,
                                  lambda t, o=tuple(out): t.reshape(t.shape[0], *o)))
        layers.append(_rearranged("reshape", (tuple(sizes),), {"layout": layout}, mid, layout,
                                  lambda t, o=tuple(sizes): t.reshape(t.shape[0], *o)))
    elif kind == "flatten" and R >= 3:
        start = draw(st.integers(1, R - 1))
        end = draw(st.integers(start, R - 1))
        merged = layout[start:end + 1]
        letter = merged if len(merged) == 1 else "C" if "C" in merged else "?"
        mid = layout[:start] + letter + layout[end + 1:]
        args = (_letter_or_index(draw, layout, start), _letter_or_index(draw, layout, end))
        if end == R - 1 and draw(st.booleans()):
            args = args[:1]
        layers.append(_rearranged("flatten", args, {}, layout, mid, lambda t, s=start, e=end: torch.flatten(t, s, e)))
        sizes = tuple(declared[start:end + 1])
        keyword = draw(st.sampled_from(["axis", "dim"]))
        layers.append(_rearranged("unflatten", (), {keyword: start, "sizes": sizes, "layout": layout}, mid, layout,
                                  lambda t, s=start, z=sizes: t.unflatten(s, z)))
    elif kind == "unsqueeze" or (kind == "flatten"):
        at = draw(st.integers(0, R))
        mid = layout[:at] + "?" + layout[at:]
        written = at if draw(st.booleans()) else at - (R + 1)
        layers.append(_rearranged("unsqueeze", (written,), {}, layout, mid, lambda t, a=at: t.unsqueeze(a)))
        back = at if draw(st.booleans()) else at - (R + 1)
        layers.append(_rearranged("squeeze", (back,) if draw(st.integers(0, 3)) else (), {}, mid, layout,
                                  lambda t, a=at: t.squeeze(a)))
        if not layers[-1].args and any(d == 1 for i, d in enumerate(declared) if i != batch):
            layers[-1].args = (back,)   # without an axis, squeeze would take the others of size 1 too
    elif kind == "select":
        axis = draw(st.sampled_from(others))
        n = declared[axis]
        index = draw(st.integers(-n, n - 1))
        mid = layout[:axis] + layout[axis + 1:]
        layers.append(_rearranged("select", (_letter_or_index(draw, layout, axis), index), {}, layout, mid,
                                  lambda t, a=axis, i=index: t.select(a, i)))
        layers.append(_rearranged("unsqueeze", (axis,), {"layout": layout}, mid, layout,
                                  lambda t, a=axis: t.unsqueeze(a)))
        declared[axis] = 1
    elif kind in ("slice", "narrow"):
        axis = draw(st.sampled_from(others))
        n = declared[axis]
        start = draw(st.integers(0, n - 1))
        if kind == "slice":
            end = draw(st.integers(start + 1, n))
            step = draw(st.sampled_from([1, 1, 2, 3]))
            args = [_letter_or_index(draw, layout, axis), start if draw(st.booleans()) else start - n]
            if end != n or draw(st.booleans()):
                args.append(end if draw(st.booleans()) or end == n else end - n)
            kwargs = {"step": step} if step != 1 else {}
            layers.append(_rearranged("slice", tuple(args), kwargs, layout, layout,
                                      lambda t, a=axis, b=start, e=end, k=step: t[(slice(None),) * a + (slice(b, e, k),)]))
            declared[axis] = -(-(end - start) // step)
        else:
            length = draw(st.integers(1, n - start))
            layers.append(_rearranged("narrow", (_letter_or_index(draw, layout, axis), start, length), {}, layout,
                                      layout, lambda t, a=axis, b=start, k=length: t.narrow(a, b, k)))
            declared[axis] = length
    elif kind in ("piece", "unpack"):
        axis = draw(st.sampled_from(others))
        n = declared[axis]
        which = draw(st.sampled_from(["chunk", "split"]))
        if which == "chunk":
            amount = draw(st.integers(1, min(n, 4)))
        elif draw(st.booleans()) or n == 1:
            amount = draw(st.integers(1, n))
        else:
            cut = sorted(draw(st.lists(st.integers(1, n - 1), max_size=2, unique=True)))
            amount = tuple(b - a for a, b in zip([0, *cut], [*cut, n]))
        pieces = _pieces(which, n, amount)
        chosen = draw(st.integers(0, len(pieces) - 1))
        axis_written = _letter_or_index(draw, layout, axis)
        kwargs = {} if layout[axis] == "C" and draw(st.booleans()) else {draw(st.sampled_from(["axis", "dim"])): axis_written}
        start, piece_size = pieces[chosen]
        fn = (lambda t, a=axis, b=start, k=piece_size: t.narrow(a, b, k))
        if kind == "piece" or len(pieces) == 1 or len(pieces) > 4:
            written = chosen if draw(st.booleans()) else chosen - len(pieces)
            layers.append(_rearranged(which, (amount,), {**kwargs, "piece": written}, layout, layout, fn))
        else:
            layer = _rearranged(which, (amount,), kwargs, layout, layout, fn)
            layer.sem["pieces"] = pieces
            unpack = Unpack([names.fresh() for _ in pieces], source, layer, chosen)
            declared[axis] = piece_size
            return [unpack], _canonical_shape(declared, layout, letters)
        declared[axis] = piece_size
    else:   # channel_shuffle
        g = draw(st.sampled_from(divisors(size["C"])))
        layers.append(Layer("channel_shuffle", (g,), {}, dict(groups=g)))
    return [Chain(names.fresh(), source, layers)], _canonical_shape(declared, layout, letters)


def _canonical_shape(declared: list[int], layout: str, letters: str) -> tuple:
    return tuple(declared[layout.index(a)] for a in letters)


def write_axis(draw, letter: str, layout: str):
    """An axis as a letter or as an index (possibly negative) into the declared layout."""
    style = draw(st.sampled_from(["letter", "index", "negative"]))
    if style == "letter":
        return letter
    index = layout.index(letter)
    return index if style == "index" else index - len(layout)


# the input layouts of each rank: mostly the two common ones, now and then another order
# (README: any order of N, C and the rank's letters)
LAYOUTS = {1: ["NCL", "NLC"] * 3 + ["LNC", "CLN"],
           2: ["NCHW", "NHWC"] * 3 + ["NWHC", "CHWN", "HWNC", "NCWH"],
           3: ["NCDHW", "NDHWC"] * 3 + ["NCHWD", "DHWNC", "NDCHW"]}
# the input's spatial sizes by rank (3-D smaller: its cost is the cube)
INPUT_SIZES = {1: (8, 48), 2: (8, 40), 3: (3, 10)}


@st.composite
def networks(draw) -> Net:
    names = Names()
    statements: list = []
    image = None
    if draw(st.integers(0, 7)) == 0:   # a ViT's patch embedding: the rest of the network works on tokens
        patches, image, shape = draw_patch_embedding(draw, names)
        rank, layout, write_layout = 1, "NLC", draw(st.booleans())
        c, sizes = shape[0], tuple(shape[1:])
        statements.append(patches)
        current = patches.name
    else:
        rank = draw(st.sampled_from([2, 2, 1, 3]))   # half the networks 2-D, a quarter each 1-D and 3-D
        layout = draw(st.sampled_from(LAYOUTS[rank]))
        write_layout = layout != "NC" + LETTERS[rank] or draw(st.booleans())
        c = draw(st.integers(1, 8))
        low, high = INPUT_SIZES[rank]
        sizes = tuple(draw(st.integers(low, high)) for _ in range(rank))
        current, shape = "x", (c, *sizes)
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 4)) == 0:
            new, shape = draw_rearrange(draw, names, current, shape, layout)
        elif matmul_ok(layout) and draw(st.integers(0, 6)) == 0:
            new, shape = draw_matmul(draw, names, current, shape, layout)
        elif draw(st.integers(0, 4)) == 0:
            new, shape = draw_window(draw, names, current, shape, layout)
        elif draw(st.integers(0, 3)) == 0:
            new, shape = draw_merge(draw, names, current, shape)
            for s in new:
                if isinstance(s, Merge) and s.kind == "concat" and s.axis is not None:
                    s.axis = write_axis(draw, s.axis_letter, layout)
                    s.axis_keyword = draw(st.sampled_from(["axis", "dim"]))
        else:
            layers = []
            for _ in range(draw(st.integers(1, 3))):
                layer, shape = draw_chain_layer(draw, shape, layout, tokens=image is not None)
                layers.append(layer)
            new = [Chain(names.fresh(), current, layers)]
        statements += new
        current = new[-1].name
    head_ok = not ("flatten_batch_not_first" in KNOWN_BUGS and layout[0] != "N")
    if head_ok and draw(st.booleans()):   # a classifier head: flatten, linear layers
        layers = []
        if math.prod(shape) > MAX_FEATURES:
            layers.append(Layer("global_avgpool"))
            shape = (shape[0], *ones(rank))
        layers.append(Layer("flatten"))
        features = math.prod(shape)
        for _ in range(draw(st.integers(1, 2))):
            out = draw(st.integers(1, 16))
            bias = draw(st.booleans())
            layers.append(Layer("linear", (out,), {} if bias else {"bias": False}, dict(out=out, bias=bias)))
            features = out
            if draw(st.booleans()):
                choice = draw(st.sampled_from(["activation", "norm"]))
                layer, _ = (draw_activation(draw, (features,), flat=True) if choice == "activation"
                            else draw_norm(draw, (features,), flat=True))
                layers.append(layer)
        statements.append(Chain(names.fresh(), current, layers))
        current = statements[-1].name
    for s in statements:   # softmax axes as letters or indices of the declared layout
        flat = False
        for layer in getattr(s, "layers", []):
            flat = flat or layer.kind == "flatten"
            if layer.kind in ("softmax", "log_softmax") and layer.args:
                layer.args = (write_axis(draw, layer.sem["axis"], "NC" if flat else layout),)
    others = [s.name for s in statements[:-1] if not getattr(s, "constant", False)]   # README: no param output
    extra = draw(st.lists(st.sampled_from(others), max_size=2, unique=True)) if others else []
    for s in statements:   # the pieces of an unpacking that the network does not go on from
        if isinstance(s, Unpack):
            extra += [n for n in s.names if n != s.name and n not in extra]
    order = list(range(len(statements)))
    if len(order) > 1 and draw(st.integers(0, 3)) == 0:
        order = draw(st.permutations(order))
    opset = draw(st.sampled_from([17, 13, 18, 20, 22]))
    layers = [layer for s in statements for layer in getattr(s, "layers", [])]
    if any(layer.kind == "layernorm" for layer in layers):
        opset = max(opset, 17)   # README: ONNX has LayerNormalization from opset 17
    if "pool_ceil_mode_mixed_axes" in KNOWN_BUGS and any(layer.sem.get("mixed_ceil") for layer in layers):
        opset = 22
    return Net(layout, write_layout, c, sizes, statements, extra + [current], list(order), opset,
               image=image, write_image_layout=bool(image) and draw(st.booleans()))


# ============================================================================ the torch twin


def _randomized(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Norm scales/shifts and running statistics away from their defaults, so they matter."""
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            continue
        if name.endswith("running_var"):
            t.copy_(torch.rand(t.shape, generator=generator) + 0.5)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)):
            t.copy_(torch.randn(t.shape, generator=generator) * 0.5 + (1.0 if name == "weight" else 0.0))
    return module.eval()


def _piece_axis(layer: Layer, layout: str) -> int:
    """The declared axis a split or chunk cuts, as written (a letter or an index; "C" by default)."""
    axis = layer.kwargs.get("axis", layer.kwargs.get("dim", "C"))
    return layout.index(axis) if isinstance(axis, str) else axis % len(layout)


def canonical_dim(axis, layout: str, flat: bool, canonical: str) -> int:
    """A softmax/concat axis (letter or index into the declared layout) as a dim of the
    canonical (N, C, *spatial) or (N, C) tensor torch works on."""
    declared = "NC" if flat else layout
    letter = axis if isinstance(axis, str) else declared[axis]
    return canonical.index(letter)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, *range(2, x.ndim), 1)


def channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


class Twin:
    """Runs a Net in torch on canonical (N, C, *spatial) tensors, collecting every layer's output
    and the weights by netspec parameter name."""

    def __init__(self, net: Net, seed: int = 0):
        self.net = net
        self.weights: dict[str, np.ndarray] = {}
        self.layers: dict[str, torch.Tensor] = {}     # netspec node name -> output
        self.bindings: dict[str, torch.Tensor] = {}
        self.generator = torch.Generator().manual_seed(seed)
        self.ill_conditioned = False                  # see note_variance
        torch.manual_seed(seed)

    def note_variance(self, values: torch.Tensor) -> None:
        """`values`: what a layernorm/groupnorm normalises together, on the last axis. Over
        (nearly) constant values it divides rounding noise by about sqrt(eps): the values
        downstream are ill-conditioned, so only shapes are compared for this network."""
        if values.shape[-1] > 1 and float(values.var(dim=-1, unbiased=False).min()) < 1e-4:
            self.ill_conditioned = True
        # one value normalised alone is constant: its rounding noise (~6e-8 |x|) over sqrt(eps)
        # passes RTOL from |x| ~ 5 (a matmul of a row with itself gives one value of ~20)
        if values.shape[-1] == 1 and values.numel() and float(values.abs().max()) > 4.0:
            self.ill_conditioned = True

    def note_norms(self, x: torch.Tensor, sem: dict) -> None:
        """normalize divides by each vector's length: a vector of (nearly) rounding noise
        (0 < length < 1e-3) turns that noise into values of order 1."""
        order = canonical_order(sem["before"])
        declared = x.permute(*[order.index(i) for i in range(x.ndim)])
        norms = torch.linalg.vector_norm(declared, dim=sem["dim"])
        if bool(((norms > 0) & (norms < 1e-3)).any()):
            self.ill_conditioned = True

    def module(self, m: nn.Module, name: str, randomize: bool = False) -> nn.Module:
        if randomize:
            _randomized(m, self.generator)
        m.eval()
        for key, value in m.state_dict().items():
            self.weights[f"{name}.{key}"] = value.detach().numpy().copy()
        return m

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with warnings.catch_warnings():   # torch's note on padding="same" with even kernels
            warnings.simplefilter("ignore", UserWarning)
            return self._run(x)

    def _run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.bindings["x"] = x
        for s in self.net.statements:
            if isinstance(s, Tensor):
                if s.value is not None:
                    value = torch.from_numpy(np.array(s.value))
                else:
                    value = torch.randn(s.sizes, generator=self.generator)
                if s.stored:
                    self.weights[s.name] = value.numpy().copy()
                self.layers[s.name] = self.bindings[s.name] = value
                continue
            if isinstance(s, Expr):
                self.layers[s.name] = self.bindings[s.name] = s.fn(self.bindings)
                continue
            if isinstance(s, Unpack):
                t = self.bindings[s.source]
                axis = _piece_axis(s.layer, self.net.layout)
                for name, (start, size) in zip(s.names, s.layer.sem["pieces"]):
                    self.layers[name] = self.bindings[name] = self.rearrange(
                        t, s.layer.sem["before"], s.layer.sem["after"],
                        lambda u, a=axis, b=start, k=size: u.narrow(a, b, k))
                continue
            if isinstance(s, Chain):
                t = self.bindings[s.source]
                for layer, name in zip(s.layers, s.node_names()):
                    t = self.layer(layer, t, name)
                    self.layers[name] = t
            else:
                ts = [self.bindings[n] for n in s.sources]
                if s.kind == "matmul":   # torch.matmul on the declared tensors, back to canonical
                    declared = [u.permute(*[canonical_order(lay).index(i) for i in range(len(lay))])
                                for u, lay in zip(ts, s.layouts)]
                    t = torch.matmul(*declared).permute(*canonical_order(s.layouts[0]))
                elif s.kind == "add":
                    t = ts[0]
                    for other in ts[1:]:
                        t = t + other
                else:
                    axis = "C" if s.axis is None else s.axis
                    t = torch.cat(ts, canonical_dim(axis, self.net.layout, ts[0].ndim == 2, self.net.canonical))
                self.layers[s.name] = t
            self.bindings[s.name] = t
        return self.bindings

    @staticmethod
    def rearrange(x: torch.Tensor, before: str, after: str, fn) -> torch.Tensor:
        """A rearrangement in torch: to the declared layout `before`, torch's op, then to the
        twin's canonical order of the layout `after`."""
        order = canonical_order(before)
        declared = x.permute(*[order.index(i) for i in range(len(before))])
        return fn(declared).permute(*canonical_order(after))

    def layer(self, layer: Layer, x: torch.Tensor, name: str) -> torch.Tensor:
        k, a = layer.kind, layer.sem
        if k == "normalize":
            self.note_norms(x, a)
        if "fn" in a:
            return self.rearrange(x, a["before"], a["after"], a["fn"])
        if k == "channel_shuffle":   # over the channels, in any layout
            return nn.ChannelShuffle(a["groups"])(x)
        if x.ndim >= 3:
            # Plain NC(D)HW strides. A 1-channel tensor that went through a permute (layernorm) is
            # both contiguous and channels_last, and torch 2.13's CPU conv2d then gets e.g. a
            # (1, 5) kernel with stride (1, 3) wrong (off by up to 5 on N(0, 1) data).
            x = x.clone(memory_format=torch.contiguous_format)
        flat = x.ndim == 2
        r = x.ndim - 2   # the spatial axes: torch's 1d, 2d or 3d module
        if k == "conv":
            padding, pre = a["padding"], None
            if (padding == "same" and set(a["stride"]) != {1}) or (isinstance(padding, tuple) and len(padding) == 2 * r):
                pre, padding = torch_pad(a["pads"]), 0
            m = self.module(getattr(nn, f"Conv{r}d")(x.shape[1], a["out"], a["kernel"], a["stride"], padding,
                                                     a["dilation"], a["groups"], a["bias"]), name)
            return m(F.pad(x, pre) if pre else x)
        if k == "conv_transpose":
            m = self.module(getattr(nn, f"ConvTranspose{r}d")(x.shape[1], a["out"], a["kernel"], a["stride"],
                                                              a["padding"], a["output_padding"], a["groups"],
                                                              a["bias"], a["dilation"]), name)
            return m(x)
        if k == "maxpool":
            return getattr(F, f"max_pool{r}d")(x, a["kernel"], a["stride"], a["padding"], a["dilation"],
                                              ceil_mode=a["ceil_mode"])
        if k == "avgpool":
            return getattr(F, f"avg_pool{r}d")(x, a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"],
                                              count_include_pad=a["count_include_pad"])
        if k == "lppool":   # F.lp_pool1d takes its kernel as an integer
            kernel, stride = (a["kernel"][0], a["stride"][0]) if r == 1 else (a["kernel"], a["stride"])
            return getattr(F, f"lp_pool{r}d")(x, a["norm_type"], kernel, stride, ceil_mode=a["ceil_mode"])
        if k == "upsample":
            align = a["align_corners"] if a["mode"] != "nearest" else None
            if a["size"] is not None:
                return F.interpolate(x, size=a["size"], mode=a["mode"], align_corners=align)
            return F.interpolate(x, scale_factor=a["scale"], mode=a["mode"], align_corners=align)
        if k == "pad":
            if a["mode"] == "constant":
                return F.pad(x, torch_pad(a["pads"]), value=a["value"])
            return F.pad(x, torch_pad(a["pads"]), mode=a["mode"])
        if k == "adaptive_avgpool":
            return getattr(F, f"adaptive_avg_pool{r}d")(x, a["size"])
        if k == "adaptive_maxpool":
            return getattr(F, f"adaptive_max_pool{r}d")(x, a["size"])
        if k == "global_avgpool":
            return getattr(F, f"adaptive_avg_pool{r}d")(x, 1)
        if k == "global_maxpool":
            return getattr(F, f"adaptive_max_pool{r}d")(x, 1)
        if k == "flatten":  # the batch, then every other axis in the declared layout's order
            perm = [0] + [self.net.canonical.index(letter) for letter in self.net.layout if letter != "N"]
            return x.permute(*perm).flatten(1)
        if k == "linear":   # [N, features], or over the channels of a channels-last tensor
            m = self.module(nn.Linear(x.shape[1], a["out"], a["bias"]), name)
            return m(x) if flat else channels_first(m(channels_last(x)))
        if k == "multihead_attention":   # tokens (N, E, L) canonically; batch_first reads (N, L, E)
            e = x.shape[1]
            m = nn.MultiheadAttention(e, a["heads"], dropout=a["dropout"], bias=a["bias"], batch_first=True)
            if a["bias"]:   # PyTorch starts them at zero: away from it, so they matter
                with torch.no_grad():
                    m.in_proj_bias.copy_(torch.randn(3 * e, generator=self.generator) * 0.5)
                    m.out_proj.bias.copy_(torch.randn(e, generator=self.generator) * 0.5)
            m = self.module(m, name)
            tokens = x.transpose(1, 2)
            return m(tokens, tokens, tokens, need_weights=False)[0].transpose(1, 2)
        if k == "batchnorm":   # BatchNorm1d takes [N, C] and [N, C, L]
            module = getattr(nn, f"BatchNorm{max(r, 1)}d")
            return self.module(module(x.shape[1]), name, randomize=True)(x)
        if k == "layernorm":
            self.note_variance(x if flat else channels_last(x))
            m = self.module(nn.LayerNorm(x.shape[1]), name, randomize=True)
            return m(x) if flat else channels_first(m(channels_last(x)))
        if k == "groupnorm":
            self.note_variance(x.reshape(x.shape[0], a["groups"], -1))
            return self.module(nn.GroupNorm(a["groups"], x.shape[1]), name, randomize=True)(x)
        if k == "prelu":
            return self.module(nn.PReLU(a["num"]), name)(x)
        if k in ("softmax", "log_softmax"):
            f = F.softmax if k == "softmax" else F.log_softmax
            return f(x, canonical_dim(a.get("axis", "C"), self.net.layout, flat, self.net.canonical))
        if k == "hardtanh":
            return F.hardtanh(x, *a.get("range", (-1.0, 1.0)))
        if k == "clamp":
            return torch.clamp(x, a.get("min"), a.get("max"))
        if k == "exp":
            return torch.exp(x)
        simple = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu6": F.relu6,
                  "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish, "silu": F.silu,
                  "dropout": lambda t: t, "stochastic_depth": lambda t: t, "identity": lambda t: t}
        if k in simple:
            return simple[k](x)
        if k == "leaky_relu":
            return F.leaky_relu(x, a.get("slope", 0.01))
        if k == "elu":
            return F.elu(x, a.get("alpha", 1.0))
        if k == "gelu":
            return F.gelu(x, approximate=a.get("approximate", "none"))
        raise AssertionError(f"the twin has no rule for {k}")


# ============================================================================ the check


def to_canonical(shape: tuple, layout: str, canonical: str) -> tuple:
    """A netspec shape in its declared layout, in canonical (N, C, *spatial) order (2-D shapes
    are (N, C), an LN one after a select too); axes without a role last, in their declared order
    (README)."""
    return tuple(shape[i] for i in canonical_order(layout))


def to_declared(t: np.ndarray, layout: str, canonical: str) -> np.ndarray:
    if t.ndim == 2:
        return t
    return t.transpose([canonical.index(letter) for letter in layout])


def difference(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(max |got - want|, max(1, max finite |want|)). Equal values count 0, infinities and NaNs
    included (a max pool whose window lies wholly in the padding gives -inf in both); a
    non-finite value on one side only counts inf."""
    if not want.size:
        return 0.0, 1.0
    got, want = got.astype(np.float64), want.astype(np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(got - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    finite = np.abs(want[np.isfinite(want)])
    return float(diff.max()), max(1.0, float(finite.max()) if finite.size else 1.0)


class Disagreement(AssertionError):
    pass


def check_network(net: Net, numerics: bool = True) -> None:
    """Compile `net` with netspec, run its torch twin, compare every layer's shape; lower it to
    ONNX, run onnxruntime, compare the outputs' shapes and values; write it as a PyTorch module
    (`netspec torch`, Network.to_torch) with the twin's weights and compare its outputs with
    onnxruntime's. Raises Disagreement with the spec text on any difference (or any netspec
    exception)."""
    from netspec.api import Network
    from netspec.compiler import compile_file

    text = net.text()
    stage = "compile"
    try:
        compiled = Network(compile_file("diff.net", text=text))
        compiled.check()
        graph = compiled.graph

        stage = "torch"
        rng = np.random.default_rng(zlib.crc32(text.encode()))
        x = rng.standard_normal((BATCH, *net.input_shape)).astype(np.float32)
        twin = Twin(net)
        with torch.no_grad():
            twin.run(torch.from_numpy(x.copy()))

        stage = "shapes"
        problems = []
        for s in net.statements:
            layers = s.layers * len(s.names) if isinstance(s, Unpack) else s.layers if isinstance(s, Chain) else [None]
            for layer, name in zip(layers, s.node_names()):
                if name is None:   # a layer inside an expression: named `<kind>`, `<kind>_2`, ...
                    continue
                node = graph.node(name)
                want_kind = layer.kind if layer else s.kind
                if node.kind != want_kind:
                    problems.append(f"{name}: netspec kind {node.kind}, spec says {want_kind}")
                    continue
                if getattr(s, "constant", False):   # a param, a buffer, a chain over them: no batch, no layout
                    got, want = tuple(node.output.shape), tuple(twin.layers[name].shape)
                else:
                    got = to_canonical(node.output.shape, str(node.output.layout), net.canonical)
                    want = ("N", *twin.layers[name].shape[1:])
                if got != want:
                    problems.append(f"{name} ({(layer.call() if layer else s.kind)}): netspec {list(node.output.shape)}"
                                    f" {node.output.layout} = canonical {list(got)}, torch {list(want)}")
        if problems:
            raise Disagreement("layer shapes differ from torch:\n  " + "\n  ".join(problems))

        stage = "onnx"
        results = compiled.run({"x": to_declared(x, net.input_layout, "NC" + LETTERS[len(net.input_shape) - 1])},
                               weights=twin.weights, opset=net.opset)
        layouts = {s.name: s.layout for s in net.statements if getattr(s, "layout", None)}
        for out in net.outputs:
            want = to_declared(twin.bindings[out].numpy(), layouts.get(out, net.layout), net.canonical)
            declared = [BATCH if d == "N" else d for d in graph.node(dict(graph.outputs)[out]).output.shape]
            got = results[out]
            if list(got.shape) != declared or got.shape != want.shape:
                raise Disagreement(f"output {out}: onnxruntime {list(got.shape)}, netspec {declared}, "
                                   f"torch {list(want.shape)}")
            if numerics and not twin.ill_conditioned:
                err, scale = difference(got, want)
                if err > RTOL * scale:
                    raise Disagreement(f"output {out}: max |onnxruntime - torch| = {err:.3g} > "
                                       f"{RTOL:g} * {scale:.3g}")

        stage = "netspec torch"  # the module `netspec torch` writes, with the same weights
        module = compiled.to_torch(weights=twin.weights).eval()
        declared = torch.from_numpy(to_declared(x, net.input_layout, "NC" + LETTERS[len(net.input_shape) - 1]).copy())
        with torch.no_grad():
            generated = module(declared)
        generated = generated if isinstance(generated, tuple) else (generated,)
        for (name, _), value in zip(graph.outputs, generated):
            got, want = value.numpy(), results[name]
            if got.shape != want.shape:
                raise Disagreement(f"output {name}: the generated module {list(got.shape)}, onnxruntime "
                                   f"{list(want.shape)}")
            if numerics and not twin.ill_conditioned:
                err, scale = difference(got, want)
                if err > RTOL * scale:
                    raise Disagreement(f"output {name}: max |generated module - onnxruntime| = {err:.3g} > "
                                       f"{RTOL:g} * {scale:.3g}")
    except Disagreement as exc:
        raise Disagreement(f"[{stage}] {exc}\n--- spec (opset {net.opset}) ---\n{text}") from None
    except Exception as exc:  # noqa: BLE001 -- a netspec or onnxruntime failure on a valid network
        raise Disagreement(f"[{stage}] {type(exc).__name__}: {exc}\n--- spec (opset {net.opset}) ---\n{text}\n"
                           + "".join(traceback.format_exception(exc)[-6:])) from None
