"""Habits from other tools and languages, named in their own words, with the netspec to write.

A PyTorch user writes `conv(3, 64, 11)` (input channels first, as `nn.Conv2d`), `in_channels=3`,
`linear(9216, 4096)`, `batchnorm(64)` or `nn.Conv2d(...)`; a Keras user `Conv2D(filters=64,
kernel_size=3)` or `Dense(10, activation="relu")`; a C or JavaScript programmer `// comment`.
The diagnostics that meet these mistakes ask this module what was meant and how netspec says it.

What each layer is called elsewhere is declared on the layer class itself (one layer, one place)
as a `Foreign` (netspec.layers.base.Layer.foreign): its PyTorch and Keras names, their positional
parameters, Keras's keywords, and the arguments netspec takes from the input tensor instead.

Everything here is pure: it reads those declarations and the text of the arguments, and returns
messages and corrected calls; it never looks at shapes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: typing's generics cost milliseconds at import
    from typing import Callable

    from netspec.layers.base import ArgumentError, Layer

    Ref = int | str          # an argument of the call as written: positional index or keyword name
    SourceOf = Callable[[Ref], str | None]


# PyTorch keywords with no netspec meaning: left out of a corrected call without a word.
_SILENT = {"inplace", "device", "dtype"}
# ... and what an error says of them, on a netspec layer (`relu(inplace=true)`); the layers'
# own such parameters are their Foreign.pytorch_traps (`padding_mode`, `return_indices`)
_PYTORCH_EVERYWHERE = {
    "inplace": "PyTorch's `inplace` has no meaning in netspec, where nothing is computed in place",
    "device": "a spec describes the network, not where it runs (`netspec run --device cuda` "
              "chooses that)",
    "dtype": "a layer computes in its input's dtype, which its parameters take too",
}
# PyTorch's padding modes that netspec's pad layer has (its "zeros" is pad's "constant")
_PAD_MODES = ("reflect", "replicate", "circular")
# Keras's activation names -> netspec's layers (`Dense(10, activation="relu")`)
_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
                "gelu": "gelu", "swish": "silu", "silu": "silu", "elu": "elu", "relu6": "relu6",
                "hard_sigmoid": "hardsigmoid", "hard_swish": "hardswish", "leaky_relu": "leaky_relu",
                "linear": None}
# PyTorch's and Keras's functions (`F.max_pool2d`, `torch.cat`, `tf.nn.relu`) -> netspec's layers
_FUNCTIONS = {"conv2d": "conv", "conv_transpose2d": "conv_transpose", "max_pool2d": "maxpool",
              "avg_pool2d": "avgpool", "lp_pool2d": "lppool", "adaptive_avg_pool2d": "adaptive_avgpool",
              "batch_norm": "batchnorm", "layer_norm": "layernorm", "group_norm": "groupnorm",
              "interpolate": "upsample", "cat": "concat", "concatenate": "concat", "multiply": "mul",
              "swish": "silu", "hard_swish": "hardswish", "hardsigmoid": "hardsigmoid"}
_PYTORCH_MODULES = {"nn", "torch.nn"}
_PYTORCH_FUNCTIONS = {"F", "torch", "torch.nn.functional", "nn.functional", "functional"}
_KERAS_MODULES = {"layers", "keras.layers", "tf.keras.layers", "tensorflow.keras.layers",
                  "keras", "tf.keras", "tf.nn", "tf", "K"}
_SEQUENTIAL = {"Sequential", "ModuleList", "Model"}


# ---------------------------------------------------------------- corrected calls


class Rewrite:
    """A call as netspec writes it, built from the user's own arguments: `args` are (keyword, or
    None for a positional; the argument), `values` the arguments' values for want of their text,
    `label` a label to put before it, `then` layers chained after it (`-> relu`)."""

    def __init__(self, kind: str, args: list[tuple[str | None, Ref]], values: dict | None = None,
                 label: str | None = None, then: list[str] | None = None,
                 before: list["Rewrite | str"] | None = None) -> None:
        self.kind, self.args, self.values = kind, args, values or {}
        self.label, self.then, self.before = label, then or [], before or []

    def text(self, source_of: SourceOf | None = None) -> str:
        from netspec.layers.base import show_value

        parts = []
        for keyword, ref in self.args:
            shown = source_of(ref) if source_of is not None else None
            if shown is None:
                value = self.values.get(ref, ...)
                shown = "..." if value is ... else value if isinstance(value, _Bare) else show_value(value)
            parts.append(f"{keyword}={shown}" if keyword else shown)
        call = f"{self.kind}({', '.join(parts)})" if parts else self.kind
        if self.label:
            call = f"{self.label}: {call}"
        before = [b.text(source_of) if isinstance(b, Rewrite) else b for b in self.before]
        return " -> ".join([*before, call, *self.then])


def _canonical(cls: type["Layer"], given: list[tuple[str, Ref, str]], leading: list[Ref] = ()) -> list:
    """The arguments in netspec's order: the positional attributes by position while none is
    missing, then the rest by name (as written where netspec knows that spelling). `given`:
    (attribute, argument, keyword written)."""
    by_field = {f: (ref, written) for f, ref, written in given}
    args: list[tuple[str | None, Ref]] = [(None, ref) for ref in leading]
    used = set()
    for name in cls.positional:
        if name not in by_field:
            break
        args.append((None, by_field[name][0]))
        used.add(name)
    for name, ref, written in given:
        if name in used:
            continue
        keyword = written if cls.aliases.get(written, written) == name else name
        args.append((keyword, ref))
    return args


def argument_error(message: str, arg: Ref | None, template: str, rewrite: Rewrite) -> "ArgumentError":
    """An ArgumentError whose hint is `template` with the corrected call in place of `{call}`."""
    from netspec.layers.base import ArgumentError

    return ArgumentError(message, arg=arg, hint=template, call=rewrite)


# ---------------------------------------------------------------- netspec calls, PyTorch's order


def _field(cls: type["Layer"], name: str, keras: bool = False) -> str | None:
    """The netspec attribute a framework's parameter name means, None if netspec has none.
    Keras's meaning comes first for a Keras call (its UpSampling2D `size` is a scale factor)."""
    keywords = cls.foreign.keras_keywords
    if keras and name in keywords:
        return keywords[name]
    attribute = cls.aliases.get(name, name)
    if attribute in cls.model_fields:
        return attribute
    attribute = keywords.get(name)
    return attribute if attribute in cls.model_fields else None


def _what(cls: type["Layer"], names) -> str:
    whats = list(dict.fromkeys(cls.foreign.inherited[n] for n in names))
    return " and ".join(whats)


def reread(cls: type["Layer"], positional: list[Any], keywords: dict[str, Any],
           error: "ArgumentError") -> "ArgumentError":
    """`error`, from Layer.from_arguments, told in the user's words where the call reads as
    PyTorch's or Keras's (`conv(3, 64, 11)`, `in_channels=3`, `filters=64`); else `error`."""
    if error.reason in ("unknown", "positional"):
        trapped = pytorch_parameter(cls, positional, keywords, error)
        if trapped is not None:
            return trapped
    if error.reason == "unknown" and isinstance(error.arg, str):
        return unknown_keyword(cls, error.arg, positional, keywords) or error
    if error.reason in ("positional", "twice"):
        found = misread(cls, positional, keywords)
        if found is None and error.reason == "positional" and not cls.model_fields:
            from netspec.layers.base import ArgumentError

            # `sigmoid(2)`: no attribute to give by name, whatever the hint of a layer with some says
            return ArgumentError(f"{cls.kind} takes no attributes, but got `{_show(positional[0])}`"
                                 + (f" and {len(positional) - 1} more" if len(positional) > 1 else ""),
                                 arg=0, reason=error.reason, hint=f"write `{cls.kind}`")
        return found or error
    if error.reason == "value":
        return dtype_value(cls, positional, keywords, error) or error
    return error


# ---------------------------------------------------------------- PyTorch's parameters netspec has no use for


def pytorch_trap(cls: type["Layer"], name: str | None) -> str | None:
    """Why netspec's layer has no PyTorch parameter `name` (`padding_mode`, `inplace`), in words
    an error gives; None for a name the layer takes, or one PyTorch does not have either."""
    if name is None or name in cls.model_fields or name in cls.aliases:
        return None
    return cls.foreign.pytorch_traps.get(name) or _PYTORCH_EVERYWHERE.get(name)


def _trapped(cls: type["Layer"], positional: list, keywords) -> tuple[list[int], list[str]]:
    """The arguments of a call (positional indices, keywords) that are PyTorch parameters netspec
    has no use for. A positional one counts where PyTorch's order begins with netspec's
    positional attributes, so the extra ones are PyTorch's next (`flatten(1)`: `start_dim`)."""
    signature = cls.foreign.pytorch_args
    aligned = [_field(cls, n) for n in signature[:len(cls.positional)]] == list(cls.positional)
    indices = [i for i in range(len(cls.positional), len(positional))
               if aligned and i < len(signature) and pytorch_trap(cls, signature[i])]
    return indices, [k for k in keywords if pytorch_trap(cls, k)]


def pytorch_parameter(cls: type["Layer"], positional: list[Any], keywords: dict[str, Any],
                      error: "ArgumentError") -> "ArgumentError | None":
    """`relu(inplace=true)`, `conv(8, 3, padding_mode="reflect")`, `flatten(1)`: a PyTorch
    parameter netspec has no use for, said so, with the call without it (and what does its
    work instead: a `pad` before the conv, a `cast` before the layer)."""
    indices, names = _trapped(cls, positional, keywords)
    if error.reason == "positional" and indices and len(indices) == len(positional) - len(cls.positional):
        culprit, name = indices[0], cls.foreign.pytorch_args[indices[0]]
        count = len(cls.positional)
        takes = ("takes no positional arguments" if not count else
                 f"takes {count} positional argument{'s' if count != 1 else ''}")
        why, own = pytorch_trap(cls, name), f"PyTorch's `{name}` "
        message = (f"{cls.kind} {takes}; `{_show(positional[culprit])}` is PyTorch's `{name}`"
                   + (f", which {why[len(own):]}" if why.startswith(own) else f": {why}"))
    elif error.reason == "unknown" and error.arg in names:
        culprit = name = error.arg
        message = f"{cls.kind} has no attribute `{name}`: {pytorch_trap(cls, name)}"
    else:
        return None
    values: dict[Ref, Any] = {**dict(enumerate(positional)), **keywords}
    args: list[tuple[str | None, Ref]] = [(None, i) for i in range(len(positional)) if i not in indices]
    dropped = set(names)
    before: list[Rewrite] = []
    hint = "leave it out: write `{call}`"
    if name == "padding_mode":
        hint = _padding_mode(cls, positional, keywords, values, dropped, before)
    elif name == "dtype":
        dtype = _dtype_of(keywords[name])
        if dtype is not None:
            values["=to"] = _Bare(dtype)
            before.append(Rewrite("cast", [(None, "=to")], values))
            hint = f"the input's dtype decides: to compute in {dtype}, cast the input first: write `{{call}}`"
    elif name == "pad" and cls.kind == "pad" and "padding" not in keywords and not positional:
        padding = _pytorch_padding(keywords[name], function=True)
        if padding is not None:
            values["=padding"] = padding
            args.insert(0, (None, "=padding"))
            hint = "write `{call}`"
    args += [(k, k) for k in keywords if k not in dropped]
    return argument_error(message, culprit, hint, Rewrite(cls.kind, args, values, before=before))


class _Bare(str):
    """A value a corrected call shows as it is, unquoted (a dtype: `cast(f16)`)."""


def _padding_mode(cls, positional, keywords, values, dropped, before) -> str:
    """The hint for PyTorch's `padding_mode` on a conv: a `pad` layer of that mode before it."""
    mode = keywords.get("padding_mode")
    padding = keywords.get("padding", 0)
    other = "for reflect, replicate or circular padding put `pad(p, mode=...)` before the " + cls.kind
    if cls.kind != "conv" or mode not in _PAD_MODES:
        return "leave it out: write `{call}`" + ("; " + other if cls.kind == "conv" else "")
    if padding == "same":
        padding = _same_padding(positional[1] if len(positional) > 1 else
                                keywords.get("kernel", keywords.get("kernel_size")),
                                keywords.get("dilation", 1), keywords.get("stride", 1))
        if padding is None:
            return "leave it out: write `{call}`; " + other
        values["=pad"] = padding
        ref: Ref = "=pad"
    else:
        ref = "padding"
    if padding in (0, "valid") or (isinstance(padding, tuple) and not any(padding)):
        return "with no padding the mode changes nothing: write `{call}`"
    dropped.add("padding")
    before.append(Rewrite("pad", [(None, ref), ("mode", "padding_mode")], values))
    return (f"for {mode} padding, pad first and take `padding` out of the {cls.kind}: "
            f"write `{{call}}`")


def _same_padding(kernel, dilation, stride):
    """netspec's pad for `padding="same"` at stride 1: an odd total puts the extra at the end."""
    def pair(v):
        if isinstance(v, int) and not isinstance(v, bool):
            return (v, v)
        ok = isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) for x in v)
        return v if ok else None

    kernel, dilation, stride = pair(kernel), pair(dilation), pair(stride)
    if kernel is None or dilation is None or stride != (1, 1):
        return None
    begins, ends = [], []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        begins.append(total // 2)
        ends.append(total - total // 2)
    if begins != ends:
        return (begins[0], begins[1], ends[0], ends[1])
    return begins[0] if begins[0] == begins[1] else tuple(begins)


def _pytorch_padding(value: Any, function: bool) -> Any:
    """PyTorch's pad sizes, last axis first ((left, right, top, bottom); F.pad's (left, right)
    pads the width only), as netspec's `padding` (top, left, bottom, right); None for others."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, tuple):
        return None
    if len(value) == 4:
        left, right, top, bottom = value
        return (top, left, bottom, right)
    if len(value) == 2 and function:
        return (0, value[0], 0, value[1])
    return None


_PAD_ORDER = ("PyTorch lists the pad sizes from the last axis back, (left, right, top, bottom); "
              "netspec's `padding` is (top, left, bottom, right)")
# PyTorch functions whose positional parameters differ from their module's (F.pad(x, pad, mode))
_FUNCTION_ARGS = {"flatten": ("input", "start_dim", "end_dim"), "pad": ("input", "pad", "mode", "value")}


def _literal(text: str | None) -> Any:
    """An integer, a string or a flat tuple of integers, from its source text; None otherwise."""
    if text is None:
        return None
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    quoted = _string(text)
    if quoted is not None:
        return quoted
    match = re.fullmatch(r"\(\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*,?\s*\)", text)
    return tuple(int(v) for v in match.group(1).split(",")) if match else None


def netspec_dtype(value: Any) -> str | None:
    """netspec's dtype for a value written as one (`f16`, `"float16"`, `"half"`), else None."""
    return _dtype_of(value)


def _dtype_of(value: Any) -> str | None:
    """netspec's dtype for a value written as one (`f16`, `"float16"`, `"half"`), else None."""
    from netspec.types import DTYPE_ALIASES, DTYPES

    if not isinstance(value, str):
        return None
    word = value.lower()
    return word if word in DTYPES else DTYPE_ALIASES.get(word)


def dtype_value(cls: type["Layer"], positional: list[Any], keywords: dict[str, Any],
                error: "ArgumentError") -> "ArgumentError | None":
    """`cast("half")`, `cast("float")`, `cast(to="int64")`: another tool's name for a dtype,
    with netspec's."""
    from netspec.types import DTYPES

    if isinstance(error.arg, int) and error.arg < len(positional):
        value, attribute = positional[error.arg], cls.positional[error.arg]
    elif isinstance(error.arg, str) and error.arg in keywords:
        value, attribute = keywords[error.arg], cls.aliases.get(error.arg, error.arg)
    else:
        return None
    if cls.string_options(attribute) != list(DTYPES):
        return None
    dtype = _dtype_of(value)
    if dtype is None:
        return None
    # "did you mean "f16"?" where the text is close to netspec's; else what the word means
    spelling = error.hint if error.hint and f'"{dtype}"' in error.hint else dtype_spelling(value) + ":"
    values: dict[Ref, Any] = {**dict(enumerate(positional)), **keywords, "=dtype": _Bare(dtype)}
    args = [(None, i) if i != error.arg else (None, "=dtype") for i in range(len(positional))]
    args += [(k, k) if k != error.arg else (k, "=dtype") for k in keywords]
    return argument_error(error.message, error.arg, f"{spelling} write `{{call}}`",
                          Rewrite(cls.kind, args, values))


# whose the names for a dtype are that do not say their width
_DTYPE_WORDS = {"half": "PyTorch's", "float": "PyTorch's", "double": "PyTorch's and C's",
                "long": "PyTorch's", "short": "PyTorch's"}


def dtype_spelling(written: str) -> str:
    """What another tool's name for a dtype is in netspec: `"half"` is PyTorch's name for f16."""
    dtype = _dtype_of(written)
    whose = _DTYPE_WORDS.get(written.lower())
    if whose is None:
        return f"netspec writes this dtype `{dtype}`"
    also = " (NumPy's `float` is f64)" if written.lower() == "float" else ""
    return f'`"{written}"` is {whose} name for {dtype}{also}'


# a framework's module -> whose dtype names those are (`torch.float32`, `np.float16`)
_DTYPE_MODULES = {"torch": "PyTorch's", "np": "NumPy's", "numpy": "NumPy's", "jnp": "JAX's",
                  "jax.numpy": "JAX's", "tf": "TensorFlow's", "tensorflow": "TensorFlow's",
                  "onnx.TensorProto": "ONNX's", "TensorProto": "ONNX's"}
# NumPy's `float` and `int_` are 64-bit, PyTorch's `float` and `int` 32-bit
_NUMPY_DTYPES = {"float": "f64", "float_": "f64", "double": "f64", "int_": "i64", "bool_": "bool",
                 "intc": "i32", "single": "f32"}


def dotted_dtype(written: str) -> tuple[str, str] | None:
    """(netspec's dtype, whose name it is) for a framework's dtype: `torch.float32`, `np.float16`,
    `tf.int64`, `torch.half`; None for anything else."""
    from netspec.types import DTYPES

    module, _, name = written.rpartition(".")
    whose = _DTYPE_MODULES.get(module)
    if whose is None:
        return None
    if whose in ("NumPy's", "JAX's") and name in _NUMPY_DTYPES:
        return _NUMPY_DTYPES[name], whose
    if whose == "PyTorch's" and name == "int":
        return "i32", whose
    dtype = _dtype_of(name) or ("bool" if name == "bool" else None)
    return (dtype, whose) if dtype in DTYPES else None


def misread(cls: type["Layer"], positional: list[Any], keywords: dict[str, Any]) -> "ArgumentError | None":
    """For a call netspec cannot read (too many positional arguments, one given twice): the
    reading in PyTorch's order, when it names an argument netspec takes from the input
    (`conv(3, 64, 11)` is nn.Conv2d(in_channels=3, out_channels=64, kernel_size=11)), and for
    extra positional arguments the reading that gives them by name (`conv(8, 3, 2)`: stride 2)."""
    pytorch = _pytorch_reading(cls, positional, keywords)
    extra = len(positional) > len(cls.positional)
    # the other reading is a rival only where a kernel shows which is meant (`conv(8, 3, 2)`)
    plausible = extra and (pytorch is None or "kernel" in cls.model_fields)
    by_name = _by_name(cls, positional, keywords) if plausible else None
    if pytorch is None and by_name is None:
        return None
    count = len(cls.positional)
    names = ", ".join(f"`{n}`" for n in cls.positional) or "none"
    message = (f"{cls.kind} takes {count} positional argument{'s' if count != 1 else ''} ({names}) "
               f"but got {len(positional)}")
    if pytorch is None:
        return argument_error(message, count, "give the rest by name: `{call}`", by_name)
    rewrite, first, explanation = pytorch
    if by_name is not None:
        return argument_error(message, count, f"give the rest by name: `{by_name.text()}`; or, "
                              f"{explanation}: write `{{call}}`", rewrite)
    if extra:
        return argument_error(f"{message}: {explanation}", first, "write `{call}`", rewrite)
    twice = next(f for f in cls.positional[:len(positional)] if f in {_field(cls, k) for k in keywords})
    return argument_error(f"{cls.kind}: `{twice}` is given twice, by position and by name: "
                          f"{explanation}", first, "write `{call}`", rewrite)


def _pytorch_reading(cls: type["Layer"], positional: list[Any], keywords: dict[str, Any]):
    """(the call in netspec, the first argument netspec takes from the input, why) when reading
    the positional arguments in PyTorch's order names one that netspec takes from the input
    and makes a valid layer; else None."""
    foreign = cls.foreign
    signature = foreign.pytorch_args
    if not signature or len(positional) > len(signature):
        return None
    read = list(signature[:len(positional)])
    inherited = [i for i, name in enumerate(read) if name in foreign.inherited]
    if not inherited:
        return None
    fields: dict[str, int] = {}
    for index, name in enumerate(read):
        if index not in inherited:
            attribute = _field(cls, name)
            if attribute is None:
                return None
            fields[attribute] = index
    given: list[tuple[str, Ref, str]] = [(f, i, f) for f, i in fields.items()]
    for name in keywords:
        if name in foreign.inherited:
            continue
        attribute = _field(cls, name)
        if attribute is None or attribute in fields:
            return None  # another mistake, or this reading gives it twice too
        given.append((attribute, name, name))
    if not _valid(cls, {f: positional[i] for f, i in fields.items()}
                  | {a: keywords[k] for a, k, _ in given if isinstance(k, str)}):
        return None
    rewrite = Rewrite(cls.kind, _canonical(cls, given), values={**dict(enumerate(positional)), **keywords})
    shown = max(len(positional), 3)
    order = ", ".join(f"`{n}`" for n in signature[:shown]) + (", ..." if len(signature) > shown else "")
    dropped = " and ".join(f"`{_show(positional[i])}`" for i in inherited)
    what = _what(cls, [read[i] for i in inherited])
    return rewrite, inherited[0], (f"in PyTorch's order ({order}) {dropped} is the {what}, which "
                                   f"netspec takes from the input tensor")


def _valid(cls: type["Layer"], values: dict[str, Any]) -> bool:
    from pydantic import ValidationError

    try:
        cls(**values)
    except (ValidationError, TypeError):
        return False
    return True


def _by_name(cls: type["Layer"], positional: list[Any], keywords: dict[str, Any]) -> Rewrite | None:
    """The extra positional arguments read as the next attributes in PyTorch's order, for a
    layer that takes some by position (`conv(8, 3, 2)`: stride 2), when that makes a valid layer."""
    if not cls.positional:
        return None  # no positional attributes at all: PyTorch's order it is
    order = [a for n in cls.foreign.pytorch_args or cls.positional if n not in cls.foreign.inherited
             and (a := _field(cls, n)) is not None]
    if order[:len(cls.positional)] != list(cls.positional) or len(positional) > len(order):
        return None
    values = dict(zip(order, positional))
    for name, value in keywords.items():
        attribute = _field(cls, name)
        if attribute is None or attribute in values:
            return None
        values[attribute] = value
    if not _valid(cls, values):
        return None
    kernel = values.get("kernel")
    if kernel is not None and max(kernel if isinstance(kernel, tuple) else (kernel,)) > 11:
        return None  # a kernel this large is more likely a channel count
    given = [(a, i, a) for i, a in enumerate(order[:len(positional)])]
    given += [(_field(cls, k), k, k) for k in keywords]
    return Rewrite(cls.kind, _canonical(cls, given), values={**dict(enumerate(positional)), **keywords})


def unknown_keyword(cls: type["Layer"], name: str, positional: list[Any],
                    keywords: dict[str, Any]) -> "ArgumentError | None":
    """`in_channels=3` (netspec takes it from the input) or a Keras keyword (`filters=64`)."""
    from netspec.diagnostics import did_you_mean

    foreign = cls.foreign
    values = {**dict(enumerate(positional)), **keywords}
    if name in foreign.inherited:
        given = _given(cls, positional, keywords, skip=name)
        if given is None:
            return None
        rewrite = Rewrite(cls.kind, _canonical(cls, given), values=values)
        what = foreign.inherited[name]
        return argument_error(f"{cls.kind} reads its {what} from the input tensor: PyTorch's "
                              f"`{name}` is not written in netspec", name,
                              "write `{call}`", rewrite)
    attribute = foreign.keras_keywords.get(name)
    if attribute is None or attribute not in cls.model_fields:
        return None
    given = _given(cls, positional, keywords)
    if given is None:
        return None
    rewrite = Rewrite(cls.kind, _canonical(cls, given), values=values)
    close = did_you_mean(name, [*cls.model_fields, *cls.aliases])
    if close == f"did you mean `{attribute}`?":
        return argument_error(f"{cls.kind} has no attribute `{name}`", name,
                              f"{close} `{name}` is Keras's spelling: write `{{call}}`", rewrite)
    position = (f", {cls.kind}'s {_ordinal(cls.positional.index(attribute))} positional argument"
                if attribute in cls.positional else "")
    return argument_error(f"{cls.kind} has no attribute `{name}`", name,
                          f"`{name}` is Keras's name for `{attribute}`{position}: write `{{call}}`",
                          rewrite)


def _given(cls, positional, keywords, skip: str | None = None) -> list[tuple[str, Ref, str]] | None:
    given: list[tuple[str, Ref, str]] = [(f, i, f) for i, f in enumerate(cls.positional[:len(positional)])]
    for name in keywords:
        if name == skip or name in cls.foreign.inherited:
            continue
        attribute = _field(cls, name)
        if attribute is None or any(attribute == g[0] for g in given):
            return None  # another mistake: let it be reported on its own
        given.append((attribute, name, name))
    return given


def _ordinal(index: int) -> str:
    return ["first", "second", "third", "fourth"][index] if index < 4 else f"{index + 1}th"


def _show(value: Any) -> str:
    from netspec.layers.base import show_value

    return show_value(value)


# ---------------------------------------------------------------- foreign layer names


class ForeignName:
    """A framework's name for a netspec layer, as the user wrote it (`nn.Conv2d`, `Conv2D`,
    `F.relu`); `frameworks` ("PyTorch", "Keras"); `function`: `F.relu(x)` takes the tensor."""

    def __init__(self, written: str, cls: type["Layer"], frameworks: tuple[str, ...],
                 function: bool = False) -> None:
        self.written, self.cls, self.frameworks, self.function = written, cls, frameworks, function

    def message(self) -> str:
        whose = " and ".join(f"{f}'s" for f in self.frameworks)
        what = "function" if self.function else "name"
        return f"`{self.written}` is {whose} {what}; netspec's layer is `{self.cls.kind}`"


def _index() -> dict[str, list[tuple[type["Layer"], str]]]:
    from netspec.layers import LAYERS

    found: dict[str, list[tuple[type["Layer"], str]]] = {}
    for cls in LAYERS.values():
        for name in cls.foreign.pytorch:
            found.setdefault(name, []).append((cls, "PyTorch"))
        for name in cls.foreign.keras:
            found.setdefault(name, []).append((cls, "Keras"))
    return found


_INDEX: dict | None = None


def foreign_name(written: str) -> ForeignName | None:
    """netspec's layer for a PyTorch or Keras name: `Conv2d`, `nn.Conv2d`, `layers.Conv2D`,
    `torch.nn.ReLU`, `F.max_pool2d`, `torch.cat`. None for anything else."""
    global _INDEX
    from netspec.layers import LAYERS

    if _INDEX is None:
        _INDEX = _index()
    module, _, name = written.rpartition(".")
    hits = _INDEX.get(name, [])
    if module in _PYTORCH_MODULES:
        hits = [h for h in hits if h[1] == "PyTorch"]
    elif module in _KERAS_MODULES:
        hits = [h for h in hits if h[1] == "Keras"] or hits
    elif module and module not in _PYTORCH_FUNCTIONS:
        return None
    if hits:
        return ForeignName(written, hits[0][0], tuple(dict.fromkeys(f for _, f in hits)))
    if module in _PYTORCH_FUNCTIONS | {"tf.nn", "K", "tf"}:
        kind = _FUNCTIONS.get(name, name)
        if kind in LAYERS:
            framework = "PyTorch" if module in _PYTORCH_FUNCTIONS else "TensorFlow"
            return ForeignName(written, LAYERS[kind], (framework,), function=True)
    return None


_METHODS = {"view": "flatten", "reshape": "flatten", "flatten": "flatten", "relu": "relu",
            "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax", "mean": "global_avgpool",
            "permute": "permute", "transpose": "transpose", "chunk": "chunk", "split": "split",
            "squeeze": "squeeze", "unsqueeze": "unsqueeze", "narrow": "narrow", "select": "select",
            "unflatten": "unflatten"}


def tensor_method(method: str) -> str | None:
    """netspec's layer for a PyTorch tensor method (`x.view(n, -1)` is `x -> flatten`)."""
    return _METHODS.get(method)


def sequential(written: str) -> bool:
    return written.rpartition(".")[2] in _SEQUENTIAL


def translate(found: ForeignName, positional: list[Ref], keywords: list[str],
              leading: list[Ref] = (), values: dict[Ref, Any] | None = None,
              source_of: SourceOf | None = None) -> tuple[str, list[str]]:
    """The netspec call for a foreign one, and notes on what it leaves out. `positional` and
    `keywords` are the call's non-tensor arguments, `leading` its tensors (not a piped one)."""
    cls, foreign = found.cls, found.cls.foreign
    values = dict(values or {})
    texts: dict[Ref, str] = {}

    def text_of(ref: Ref) -> str | None:
        return texts[ref] if ref in texts else (source_of(ref) if source_of is not None else None)

    def padding_of(ref: Ref, function: bool, notes: list[str]) -> Ref:
        """PyTorch's pad sizes (last axis first) as netspec's `padding`, under a new reference."""
        written = text_of(ref)
        padding = _pytorch_padding(_literal(written) if written is not None else values.get(ref), function)
        if padding is None or isinstance(padding, int):
            return ref
        texts["=padding"] = _show(padding)
        notes.append(f"the sizes are reordered: {_PAD_ORDER}")
        return "=padding"

    if found.function:  # F.max_pool2d(x, 2): netspec takes the same arguments, tensors first
        notes: list[str] = []
        # the input first: given apart (`leading`), or as the first of `positional`
        signature = _FUNCTION_ARGS.get(cls.kind, ())[len(leading):]
        args = [(None, ref) for ref in leading]
        for index, ref in enumerate(positional):
            name = signature[index] if index < len(signature) else None
            if name == "pad":
                args.append((None, padding_of(ref, True, notes)))
            elif name in cls.model_fields:
                args.append((name, ref))
            elif pytorch_trap(cls, name):
                notes.append(f"`{text_of(ref) or _show(values.get(ref))}` ({name}) is left out: "
                             f"{pytorch_trap(cls, name)}")
            else:
                args.append((None, ref))
        for name in keywords:
            if name == "pad" and cls.kind == "pad":
                args.append((None, padding_of(name, True, notes)))
            elif name in _SILENT and pytorch_trap(cls, name):
                continue
            elif pytorch_trap(cls, name):
                notes.append(f"`{name}` is left out: {pytorch_trap(cls, name)}")
            else:
                args.append((_field(cls, name) or name, name))
        return Rewrite(cls.kind, args, values).text(text_of), notes
    pytorch = "PyTorch" in found.frameworks and bool(foreign.pytorch_args)
    signature = foreign.pytorch_args if pytorch else foreign.keras_args
    keras = "PyTorch" not in found.frameworks
    given: list[tuple[str, Ref, str]] = []
    label, then, left_out, notes, before = None, [], [], [], []
    for index, ref in enumerate(positional):
        name = signature[index] if index < len(signature) else None
        attribute = _field(cls, name, keras) if name is not None else None
        if name in foreign.inherited:
            notes.append(f"`{text_of(ref) or _show(values.get(ref))}` ({name}) is left out: netspec "
                         f"takes the {foreign.inherited[name]} from the input tensor")
        elif pytorch and attribute == "padding" and cls.kind == "pad":  # nn.ZeroPad2d((l, r, t, b))
            given.append((attribute, padding_of(ref, False, notes), attribute))
        elif pytorch and pytorch_trap(cls, name):
            if name not in _SILENT:  # `nn.ReLU(True)`: its inplace goes without a word
                notes.append(f"`{text_of(ref) or _show(values.get(ref))}` ({name}) is left out: "
                             f"{pytorch_trap(cls, name)}")
        elif attribute is None:
            left_out.append(f"`{text_of(ref) or _show(values.get(ref))}`")
        else:
            given.append((attribute, ref, attribute))
    for name in keywords:
        attribute = _field(cls, name, keras)
        quoted = _string(text_of(name) or "")
        if keras and name in foreign.keras_traps:
            notes.append(foreign.keras_traps[name])
        elif attribute is not None:
            given.append((attribute, name, name))
        elif name == "activation" and quoted in _ACTIVATIONS:
            then += [_ACTIVATIONS[quoted]] if _ACTIVATIONS[quoted] else []
        elif name == "name" and quoted is not None and re.fullmatch(r"[A-Za-z_]\w*", quoted):
            label = quoted
        elif name in foreign.inherited:
            notes.append(f"`{name}` is left out: netspec takes the {foreign.inherited[name]} "
                         f"from the input tensor")
        elif name == "padding_mode" and not keras:
            mode = quoted
            if mode in _PAD_MODES and cls.kind == "conv":
                before.append(name)  # a pad of that mode before the conv, once its padding is known
            else:
                notes.append(f"`{name}` is left out: {pytorch_trap(cls, name)}")
        elif not keras and name not in _SILENT and pytorch_trap(cls, name):
            notes.append(f"`{name}` is left out: {pytorch_trap(cls, name)}")
        elif name not in _SILENT:
            left_out.append(f"`{name}`")
    for name, text in foreign.implies.get(found.written.rpartition(".")[2], {}).items():
        if all(g[0] != name for g in given):
            texts[f"={name}"] = text
            given.append((name, f"={name}", name))
    if left_out:
        notes.append(f"left out, as netspec's {cls.kind} has no such attribute: {', '.join(left_out)}")
    stages: list[Rewrite] = []
    if before:  # nn.Conv2d(..., padding=1, padding_mode="reflect"): pad(1, mode="reflect") -> conv
        padding = next(((i, g) for i, g in enumerate(given) if g[0] == "padding"), None)
        written = _literal(text_of(padding[1][1])) if padding is not None else 0
        if written == "same":
            kernel = next((_literal(text_of(g[1])) for g in given if g[0] == "kernel"), None)
            dilation = next((_literal(text_of(g[1])) for g in given if g[0] == "dilation"), 1)
            stride = next((_literal(text_of(g[1])) for g in given if g[0] == "stride"), 1)
            written = _same_padding(kernel, dilation, stride)
            if written is not None:
                texts["=pad"] = _show(written)
        if written is None:
            notes.append(f"`padding_mode` is left out: {pytorch_trap(cls, 'padding_mode')}; for "
                         f"{_string(text_of('padding_mode'))} padding put `pad(p, mode=...)` before it")
        elif written in (0, "valid") or written == (0, 0):
            notes.append("`padding_mode` is left out: with no padding it changes nothing")
        else:
            ref = "=pad" if "=pad" in texts else padding[1][1]
            del given[padding[0]]
            stages.append(Rewrite("pad", [(None, ref), ("mode", "padding_mode")], values))
            notes.append(f"`padding_mode` becomes a `pad` layer before the {cls.kind}: "
                         f"{pytorch_trap(cls, 'padding_mode')}")
    rewrite = Rewrite(cls.kind, _canonical(cls, given, leading), values, label, then, stages)
    return rewrite.text(text_of), notes


def unknown_callee(callee: str, positional: list, keywords: dict, piped: bool,
                   sources) -> tuple[str, str, list[str]] | None:
    """For a call of a name netspec does not know, as elaborate holds it (its arguments as
    netspec.evaluate.Argument, the piped tensor first): the message, hint and notes when it is
    PyTorch's or Keras's name for a netspec layer (`Conv2D(filters=64, kernel_size=3)`), else None."""
    from netspec.evaluate import Tensor

    source_of = argument_source(sources, positional, keywords)
    if callee == "Activation" and len(positional) > int(piped):  # Keras's Activation("relu")
        kind = _ACTIVATIONS.get(_string(source_of(int(piped)) or "") or "")
        if kind:
            return ("`Activation` is Keras's wrapper; in netspec an activation is a layer of its own",
                    f"write `{kind}`", [])
    found = foreign_name(callee)
    if found is None:
        return None
    start = 1 if piped else 0
    leading, attributes = [], []
    for index in range(start, len(positional)):
        value = positional[index].value
        if isinstance(value, Tensor) and not attributes:
            leading.append(index)
        else:
            attributes.append(index)
    values = {i: a.value for i, a in enumerate(positional)} | {k: a.value for k, a in keywords.items()}
    call, notes = translate(found, attributes, list(keywords), leading, values, source_of)
    return found.message(), f"write `{call}`", notes


def sequential_call(callee: str, args: list, sources) -> tuple[str, str] | None:
    """`Sequential(Conv2d(3, 8, 3), ReLU())`, before its arguments are evaluated (they are
    layers, not values): the message and a hint with the layers as a netspec chain."""
    if not sequential(callee):
        return None
    from netspec import syntax as S
    from netspec.layers import LAYERS

    stages = []
    for arg in args:
        node = arg.value
        name = node.callee.name if isinstance(node, S.Call) else getattr(node, "name", None)
        found = foreign_name(name) if name is not None else None
        inner = node.args if isinstance(node, S.Call) else []
        source_of = argument_source(  # the syntax's Arg spans: a positional's value, `name=value`
            sources, [a.value for a in inner if a.name is None], {a.name.name: a for a in inner if a.name is not None})
        if arg.name is None and name in LAYERS:
            text = source_of.span_text(node.span)
            stages.append(text or name)
        elif arg.name is None and found is not None:
            positional = list(range(sum(a.name is None for a in inner)))
            stages.append(translate(found, positional, [a.name.name for a in inner if a.name is not None],
                                    source_of=source_of)[0])
        else:
            stages = []
            break
    chain = " -> ".join(stages) if stages else "conv(64, 3) -> relu -> maxpool(2)"
    return (f"`{callee}` is PyTorch's and Keras's container; netspec chains layers with `->`",
            f"write the layers as a chain: `x -> {chain}`")


def _string(text: str) -> str | None:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return None


def argument_source(sources, positional: list, keywords: dict) -> SourceOf:
    """The source text of a call's arguments (each with a `.span`, as netspec.evaluate.Argument:
    the value's for a positional, `name=value` for a keyword), by position or keyword name;
    None for an argument spread over several lines. `.span_text(span)` reads any span."""
    def span_text(span) -> str | None:
        if span is None or span.line != span.end_line:
            return None
        line = sources.line(span.file, span.line)
        return line[span.column - 1:span.end_column - 1].strip() or None if line else None

    def source_of(ref: Ref) -> str | None:
        if isinstance(ref, int):
            return span_text(positional[ref].span) if 0 <= ref < len(positional) else None
        text = span_text(keywords[ref].span) if ref in keywords else None
        return text.partition("=")[2].strip() or None if text else None

    source_of.span_text = span_text
    return source_of


# ---------------------------------------------------------------- habits of other languages


_SLASH = re.compile(r"//[ \t]+[A-Za-z][\w'-]*[ \t]+\S|/\*")
# a chain's last stage, `-> relu` or `-> conv1: conv(8, (3, 3))`, which no `//` may follow
_AFTER_STAGE = re.compile(r"->\s*(?:[A-Za-z_]\w*\s*:\s*)?[A-Za-z_]\w*\s*"
                          r"(?:\((?:[^()]|\([^()]*\))*\))?\s*$")
_WORD_NEXT = re.compile(r"//[ \t]*[^\W\d]")


def slash_comment(line: str) -> int | None:
    """Where a `//` or `/*` comment starts on `line`, when one is clearly meant: `//` first on
    the line, or followed by words (`c // 2  // half the width`), or by a word after a chain's
    last stage (`-> relu  // größer`: no `//` may follow a stage), or any `/*`; outside strings
    and before a `#`. None when there is none (a `//` alone is floor division)."""
    if "/" not in line:
        return None
    stripped = line.lstrip()
    if stripped.startswith(("//", "/*")):
        return len(line) - len(stripped)
    i, n = 0, len(line)
    while i < n:
        char = line[i]
        if char == "#":
            return None
        if char in "\"'":
            close = line.find(char, i + 1)
            while close != -1 and line[close - 1] == "\\":
                close = line.find(char, close + 1)
            if close == -1:
                return None
            i = close + 1
            continue
        if char == "/" and (_SLASH.match(line, i) or (_WORD_NEXT.match(line, i)
                                                       and _AFTER_STAGE.search(line, 0, i))):
            return i
        i += 1
    return None


def dotted_name(line: str, index: int) -> tuple[int, int, str] | None:
    """The dotted name (`nn.Conv2d`, `torch.nn.functional.relu`) whose `.` is at `index` on
    `line`: its start and end indices and its text."""
    for match in re.finditer(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", line):
        if match.start() <= index < match.end():
            return match.start(), match.end(), match.group()
    return None
