"""The layer base class and registry.

A layer kind is one pydantic model: its fields are the attributes a user may write (typed,
validated, with PyTorch's names and defaults), and its methods are the shape rule, the
parameter shapes and the MAC count. Subclasses register themselves by their `kind`, so adding a
layer touches one module and its tests, never the grammar, elaboration or the CLI.

The layer modules evaluate annotations eagerly (no `from __future__ import annotations`):
with string annotations pydantic re-parses every one of them while creating each class, a fifth
of the time `netspec check` spends importing the layers.
"""


from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from netspec.types import ANY_DTYPE, FLOATS, NUMBERS, DTypeError, ShapeError, TensorType

LAYERS: dict[str, type["Layer"]] = {}


def register(cls: type["Layer"]) -> None:
    """Add a layer class to LAYERS under its kind; a second class of the same kind is a
    mistake in netspec (one kind, one class), refused at import."""
    previous = LAYERS.get(cls.kind)
    if previous is not None and previous is not cls:
        raise TypeError(f"layer kind `{cls.kind}` is defined twice: by {previous.__module__}."
                        f"{previous.__qualname__} and {cls.__module__}.{cls.__qualname__}")
    if not cls.family:
        raise TypeError(f"layer kind `{cls.kind}` ({cls.__qualname__}) has no family")
    LAYERS[cls.kind] = cls


class Expect:
    """Field metadata: how to say what a field accepts, in an error message or the reference."""

    def __init__(self, phrase: str):
        self.phrase = phrase


# Attribute types shared by the layer families; the phrase is what errors and docs print.
PositiveInt = Annotated[int, Field(ge=1), Expect("a positive integer")]
NonNegativeInt = Annotated[int, Field(ge=0), Expect("a non-negative integer")]
_Positive = Annotated[int, Field(ge=1)]
_NonNegative = Annotated[int, Field(ge=0)]
# Sizes of a window or a resampling: one value for every spatial axis, or one per axis (a 1-D,
# 2-D or 3-D input: l, (h, w), (d, h, w)); the layer's shape rule checks the count against its
# input's spatial axes.
SizeN = Annotated[_Positive | Annotated[tuple[_Positive, ...], Field(min_length=1, max_length=3)], Field(),
                  Expect("a positive integer or a pair (h, w) of them ((d, h, w) for a 3-D input)")]
NonNegativeN = Annotated[_NonNegative | Annotated[tuple[_NonNegative, ...], Field(min_length=1, max_length=3)],
                         Field(), Expect("a non-negative integer or a pair (h, w) of them "
                                         "((d, h, w) for a 3-D input)")]
# Padding: one value, one per axis, or begins then ends (at most six: a 3-D input's).
PaddingN = Annotated[
    Literal["same", "valid"] | _NonNegative
    | Annotated[tuple[_NonNegative, ...], Field(min_length=1, max_length=6)],
    Field(), Expect('a non-negative integer, a pair (h, w), four values (top, left, bottom, right), '
                    '"same" or "valid" (a 1-D input: one value or (left, right); a 3-D input: (d, h, w) '
                    'or six values (front, top, left, back, bottom, right))')]
_PositiveNumber = Annotated[float, Field(gt=0)]
PositiveNumberN = Annotated[_PositiveNumber | Annotated[tuple[_PositiveNumber, ...],
                                                        Field(min_length=1, max_length=3)],
                            Field(), Expect("a positive number or a pair (h, w) of them ((d, h, w) for a "
                                            "3-D input)")]
Probability = Annotated[float, Field(ge=0.0, le=1.0), Expect("a number from 0 to 1")]
PositiveFloat = Annotated[float, Field(gt=0.0), Expect("a positive number")]
Axis = Annotated[int | str, Field(), Expect('an axis: a letter of the layout such as "C", or an index')]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One tensor a layer owns: trainable parameters, or a buffer (running statistics).

    `init` says how a fresh model fills it, as PyTorch's default initialisation does:
    "uniform" draws from U(-scale, scale) (scale = 1/sqrt(fan_in) for conv and linear), "fill"
    sets every element to `scale` (1 for a norm's weight, 0.25 for PReLU), "zeros" is 0;
    "normal" draws from N(0, scale^2) and "values" takes `values` (row-major), for the tensors a
    network owns (netspec.owned).
    """

    shape: tuple[int, ...]
    trainable: bool = True
    dtype: str | None = None  # None: the dtype of the layer's input (f16 weights for f16 data)
    init: str = "zeros"
    scale: float = 0.0
    values: tuple | None = None
    # False: a constant that is no state_dict entry (PyTorch's register_buffer(...,
    # persistent=False)): no weights file holds it, and the buffer count leaves it out
    persistent: bool = True

    @property
    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class Foreign:
    """How PyTorch and Keras spell one netspec layer.

    `pytorch_args` and `keras_args` are the frameworks' positional parameters in their own names;
    a name in `inherited` is one that netspec takes from the input tensor (`in_channels`), the
    others are netspec attributes or their aliases (`kernel_size`), or keys of `keras_keywords`
    (Keras's name -> netspec's attribute: `filters` -> `out_channels`). `implies` gives the
    attributes a foreign name stands for (`ReflectionPad2d` is `pad(..., mode="reflect")`);
    `keras_traps` the Keras keywords whose value means something else in netspec, left out of a
    corrected call with a note; `pytorch_traps` PyTorch's parameters that netspec's layer has no
    use for (`padding_mode`, `return_indices`, flatten's `start_dim`), each with why, in words the
    error gives (PyTorch's `inplace`, `device` and `dtype` are known for every layer, in
    netspec.habits). (A plain class: a dataclass costs a millisecond at import.)
    """

    __slots__ = ("pytorch", "pytorch_args", "keras", "keras_args", "keras_keywords", "inherited",
                 "implies", "keras_traps", "pytorch_traps")

    def __init__(self, *, pytorch: tuple[str, ...] = (), pytorch_args: tuple[str, ...] = (),
                 keras: tuple[str, ...] = (), keras_args: tuple[str, ...] = (),
                 keras_keywords: dict[str, str] | None = None, inherited: dict[str, str] | None = None,
                 implies: dict[str, dict[str, str]] | None = None,
                 keras_traps: dict[str, str] | None = None,
                 pytorch_traps: dict[str, str] | None = None) -> None:
        self.pytorch, self.pytorch_args = pytorch, pytorch_args
        self.keras, self.keras_args = keras, keras_args
        self.keras_keywords = keras_keywords or {}
        self.inherited = inherited or {}
        self.implies = implies or {}
        self.keras_traps = keras_traps or {}
        self.pytorch_traps = pytorch_traps or {}


class Refusal:
    """Why ONNX cannot express a layer exactly: the message, and the way around it."""

    __slots__ = ("message", "hint")

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message, self.hint = message, hint


class Ctor:
    """A PyTorch constructor call as a layer's `torch_form` gives it: `callee` (`nn.Conv2d`),
    its arguments by name in PyTorch's order (plain Python values), the first `positional` of
    them written by position; `defaults` are PyTorch's defaults of the others, left out where a
    value is one. netspec.torch_codegen writes it (and may name a value after a block's
    parameter); no torch is imported to build one. (A plain class, as Foreign.)"""

    __slots__ = ("callee", "values", "positional", "defaults")

    def __init__(self, callee: str, values: dict[str, Any] | None = None, positional: int = 0,
                 defaults: dict[str, Any] | None = None) -> None:
        self.callee, self.values, self.positional = callee, dict(values or {}), positional
        self.defaults = defaults or {}


class TorchForm:
    """How PyTorch computes one layer, for `netspec torch` (netspec.torch_codegen).

    `module`: the nn.Module that holds the layer's tensors (a Ctor), a submodule named as the
    layer (so its state_dict keys are the layer's parameter names), called as `call`, a format
    string where `{m}` is the module and `{0}`, `{1}`, ... the inputs (`{m}({0})`). `function`:
    an expression of the inputs alone, for a layer without tensors that is not kept as a
    submodule (`torch.relu({0})`); a layer with no module computes only that way. `helpers`:
    the definitions the expression needs beyond torch (a layer PyTorch has no class for),
    by name -> source; the generated file holds each once. Values are laid out as the ONNX
    lowering sees them: a `channels_first` layer gets (N, C, spatial) types, and the generator
    permutes a differently declared input there and back."""

    __slots__ = ("module", "call", "function", "helpers")

    def __init__(self, module: Ctor | None = None, call: str = "{m}({0})", function: str | None = None,
                 helpers: dict[str, str] | None = None) -> None:
        self.module, self.call, self.function, self.helpers = module, call, function, helpers or {}


def torch_dims(t: TensorType) -> str:
    """`2d` for [N, C, H, W]: the suffix of PyTorch's class for the input's spatial rank
    (BatchNorm1d for [N, C] and [N, C, L])."""
    return f"{max(1, len(t.layout.spatial)) if t.layout.has_channels else 1}d"


def compact(values) -> Any:
    """One value per axis as PyTorch takes it: a single value when every axis agrees."""
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


class ArgumentError(Exception):
    """A bad argument; `arg` is the index of the offending argument (or its keyword name).

    `call`, where given, is the corrected call (a netspec.habits.Rewrite) that the hint shows in
    place of `{call}`: written from the arguments' values, or from their source text when the
    caller has it (`hint_with`)."""

    def __init__(self, message: str, arg: int | str | None = None, hint: str | None = None,
                 call=None, reason: str = "value"):
        super().__init__(message)
        self.message, self.arg, self.call, self._hint = message, arg, call, hint
        # what went wrong: "positional" (too many), "unknown" (keyword), "twice", "missing", "value"
        self.reason = reason

    @property
    def hint(self) -> str | None:
        return self.hint_with(None)

    def hint_with(self, source_of) -> str | None:
        """The hint; `source_of(argument)` gives an argument's source text (or None)."""
        if self.call is None or self._hint is None:
            return self._hint
        return self._hint.replace("{call}", self.call.text(source_of))


class Layer(BaseModel):
    # defer_build: a kind's validator is built when first used, so `check` pays only for the
    # kinds a spec uses.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    kind: ClassVar[str] = ""
    family: ClassVar[str] = ""
    positional: ClassVar[tuple[str, ...]] = ()   # attributes that may be given by position
    arity: ClassVar[int | None] = 1              # tensor inputs; None: two or more
    aliases: ClassVar[dict[str, str]] = {}       # other accepted spellings -> field name
    foreign: ClassVar["Foreign"] = None  # type: ignore[assignment]  # PyTorch's and Keras's names (below)
    # The dtype rule: the input dtypes the layer takes (netspec.types: FLOATS, NUMBERS,
    # ANY_DTYPE). Computing layers take floating point; a layer that only moves or joins
    # values says so. `infer_dtype` applies it; a layer with more to say overrides that.
    dtypes: ClassVar[tuple[str, ...]] = FLOATS
    # False for what is made by a graph node but is no layer a spec calls by its kind (the
    # tensors a network owns, netspec.owned): kept out of LAYERS
    registered: ClassVar[bool] = True
    # Whether the layer takes a value with no layout (a param's, netspec.owned), as an input:
    # the merges `+` and `*`, and what works element by element without reading an axis.
    unlaid_inputs: ClassVar[bool] = False
    # lowered as ONNX defines the operator, channels first (Conv, pools, BatchNormalization):
    # netspec.lower gives it its inputs, types and output type in Layout.channels_first order,
    # between Transposes where the declared order is another (NHWC, NLC)
    channels_first: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("kind") and cls.registered:
            register(cls)

    # ------------------------------------------------------------ construction from a call

    @classmethod
    def attribute_names(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def string_options(cls, name: str) -> list[str]:
        """The strings attribute `name` accepts ("same", "valid" for padding); [] for none."""
        field = cls.model_fields.get(name)
        return _string_options(field.annotation) if field is not None else []

    @classmethod
    def example_call(cls) -> str:
        """A call showing the attributes, e.g. `conv(out_channels, kernel, stride=1)`."""
        return _example(cls)

    @classmethod
    def from_arguments(cls, positional: list[Any], keywords: dict[str, Any]) -> "Layer":
        """Build the layer from a call's non-tensor arguments, PyTorch style.

        Raises ArgumentError naming the argument at fault, with a hint where one is obvious.
        """
        from netspec.diagnostics import did_you_mean

        if len(positional) > len(cls.positional):
            names = ", ".join(f"`{n}`" for n in cls.positional) or "none"
            raise ArgumentError(
                f"{cls.kind} takes {len(cls.positional)} positional argument"
                f"{'s' if len(cls.positional) != 1 else ''} ({names}) but got {len(positional)}",
                arg=len(cls.positional), reason="positional",
                hint="give the others by name, e.g. " + _example(cls))
        values: dict[str, Any] = dict(zip(cls.positional, positional))
        for name, value in keywords.items():
            field = cls.aliases.get(name, name)
            if field not in cls.model_fields:
                raise ArgumentError(f"{cls.kind} has no attribute `{name}`", arg=name, reason="unknown",
                                    hint=did_you_mean(name, [*cls.model_fields, *cls.aliases])
                                    or f"{cls.kind} takes: {', '.join(cls.model_fields) or 'no attributes'}")
            if field in values:
                raise ArgumentError(f"{cls.kind}: `{field}` is given twice", arg=name, reason="twice")
            values[field] = value
        for name, field in cls.model_fields.items():
            if field.is_required() and name not in values:
                raise ArgumentError(f"{cls.kind} needs `{name}` ({_phrase(cls, name)})", arg=None,
                                    reason="missing", hint="e.g. " + _example(cls))
        try:
            return cls(**values)
        except ValidationError as exc:
            name = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else ""
            where = name if name not in cls.positional or name in keywords else cls.positional.index(name)
            value = values.get(name)
            hint = None
            if isinstance(value, str):
                options = _string_options(cls.model_fields[name].annotation) if name in cls.model_fields else []
                close = did_you_mean(value, options)
                hint = close.replace("`", '"') if close else None
            raise ArgumentError(f"{cls.kind}: `{name}` must be {_phrase(cls, name)}, "
                                f"got {_show(value)}", arg=where, hint=hint) from None

    # ------------------------------------------------------------ the rules every kind gives

    def infer_dtype(self, inputs: list[TensorType], names: Sequence[str] = ()) -> str:
        """The dtype rule: the output's dtype (by default the first input's), or a DTypeError
        for an input whose dtype is not in `dtypes`. `names` are the inputs' producers (graph
        input or layer names), for the message."""
        for i, t in enumerate(inputs):
            if t.dtype not in self.dtypes:
                raise refused_dtype(self.kind, self.dtypes, t.dtype, names[i] if i < len(names) else None,
                                    len(inputs))
        return inputs[0].dtype

    def infer(self, inputs: list[TensorType]) -> TensorType:
        """The output type; raises ShapeError on misuse."""
        raise NotImplementedError

    def parameters(self, inputs: list[TensorType], output: TensorType) -> dict[str, ParamSpec]:
        """Tensors this layer owns, by state_dict suffix (`weight`, `running_mean`, ...)."""
        return {}

    def macs(self, inputs: list[TensorType], output: TensorType) -> int:
        """Multiply-accumulates per sample (conv, conv_transpose and linear weights only)."""
        return 0

    def describe(self, inputs: list[TensorType]) -> str:
        """The table's short description, e.g. `conv 11x11 /4 pad 2`."""
        return self.kind

    def refusal(self, inputs: list[TensorType], output: TensorType, opset: int) -> Refusal | None:
        """Why ONNX at `opset` cannot express this layer exactly, or None. `netspec export`
        refuses such a layer; `netspec check` warns about it at the default opset."""
        return None

    def lower(self, g, node, inputs: list[str], types: list[TensorType], output: TensorType) -> str:
        """Emit this layer's ONNX nodes through `g` (a netspec.lower.Builder: `g.op`,
        `g.param`, `g.const`) and return the value it produces (or a tuple of values). The
        lowering pass gives that value, and the node producing it, the layer's name; every
        other node is `<layer>/<op>`. `inputs` are ONNX value names, their axes in the
        order of `types` (the declared layout; for a `channels_first` layer, N, C, spatial);
        `types` are the inputs' netspec types. Constants that meet the data
        take its dtype: `g.const(0.5, types[0].dtype)`."""
        raise NotImplementedError(f"{self.kind} has no ONNX lowering")

    def torch_form(self, inputs: list[TensorType], output: TensorType) -> "TorchForm":
        """How PyTorch computes this layer (a TorchForm): its nn.Module and how it is called, or
        an expression of torch functions, for `netspec torch`. `inputs` as for `lower`."""
        raise NotImplementedError(f"{self.kind} has no PyTorch form")

    def explain(self, inputs: list[TensorType], output: TensorType) -> tuple[list[str], list[str]]:
        """The arithmetic behind this layer's row, with the real numbers, and notes (e.g. where a
        window's division was not exact): `netspec check --explain`."""
        return [], []

    def geometry(self, inputs: list[TensorType]):
        """How the layer maps spatial positions, for receptive fields: None when each output
        position sees the same input position (activations, norms, 1x1 merges); "global" when
        every output sees the whole input; else a list, one (window, stride, pad_begin) per
        spatial axis, window = dilation*(kernel-1)+1."""
        return None

    def attributes(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    # ------------------------------------------------------------ helpers for the families

    @staticmethod
    def require_spatial(t: TensorType, counts: tuple[int, ...] = (1, 2, 3), hint: str | None = None) -> str:
        """A layer that slides or resamples over the spatial axes: `t` has 1, 2 or 3 of them
        (of `counts`), whatever its layout. Returns their letters in D, H, W (or L) order."""
        from netspec.shapes import axis_name

        letters = "".join(t.layout.axes[i] for i in t.layout.spatial)
        if len(letters) not in counts:
            forms = {1: "1-D [N, C, L]", 2: "2-D [N, C, H, W]", 3: "3-D [N, C, D, H, W]"}
            taken = [forms[c] for c in counts]
            listed = taken[0] if len(taken) == 1 else ", ".join(taken[:-1]) + " or " + taken[-1]
            has = ("no spatial axes" if not letters else
                   f"{len(letters)} spatial axes ({', '.join(axis_name(a) for a in letters)})")
            raise ShapeError(f"takes a {listed} input; {t} has {has}",
                             rule="1 to 3 spatial axes" if counts == (1, 2, 3) else
                             "spatial axes: " + " or ".join(map(str, counts)), hint=hint)
        return letters


Layer.foreign = Foreign()


def dtypes_phrase(dtypes: Sequence[str]) -> str:
    """`floating-point tensors (f16, bf16, f32, f64)`: what a dtype rule accepts, in words."""
    listed = ", ".join(dtypes)
    if tuple(dtypes) == FLOATS:
        return f"floating-point tensors ({listed})"
    if tuple(dtypes) == NUMBERS:
        return "numeric tensors (any dtype but bool)"
    if tuple(dtypes) == ANY_DTYPE:
        return "tensors of any dtype"
    return f"tensors of dtype {listed}"


def refused_dtype(kind: str, dtypes: Sequence[str], dtype: str, name: str | None,
                  operands: int = 1) -> DTypeError:
    """The error of a dtype rule, `conv: takes floating-point tensors (f16, bf16, f32, f64);
    `x` is i64`, with the cast that fixes it. `name` is the input's producer (an input or a
    layer, as the table names it)."""
    target = "f32" if "f32" in dtypes else dtypes[0]
    what = f"`{name}`" if name else "the input"
    hint = (f"cast it first: `-> cast({target}) -> {kind}`" if operands == 1 else
            f"cast {what} first: `({name} -> cast({target}))`" if name else
            f"cast that operand first: `(... -> cast({target}))`")
    return DTypeError(f"takes {dtypes_phrase(dtypes)}; {what} is {dtype}",
                      rule=f"{kind} takes {', '.join(dtypes)}", hint=hint)


def _walk_types(annotation: Any):
    """Every type inside an annotation: union members, tuple items, Annotated metadata."""
    import typing

    stack = [annotation]
    while stack:
        current = stack.pop(0)
        yield current
        stack.extend(getattr(current, "__metadata__", ()))
        stack.extend(typing.get_args(current))


def _string_options(annotation: Any) -> list[str]:
    """The string literals a field's type accepts (e.g. "same", "valid"), found in its unions."""
    import typing

    return [a for t in _walk_types(annotation) if typing.get_origin(t) is Literal
            for a in typing.get_args(t) if isinstance(a, str)]


def _phrase(cls: type[Layer], name: str) -> str:
    """What a field accepts, in words: its Expect phrase, its literal options, or its type."""
    import typing

    field = cls.model_fields.get(name)
    if field is None:
        return "a valid value"
    for meta in field.metadata:
        if isinstance(meta, Expect):
            return meta.phrase
    found = list(_walk_types(field.annotation))
    phrases = [t.phrase for t in found if isinstance(t, Expect)]
    literals = [a for t in found if typing.get_origin(t) is Literal for a in typing.get_args(t)]
    if phrases:
        return phrases[0]
    if literals:
        return "one of " + ", ".join(_show(v) for v in literals)
    simple = {bool: "true or false", float: "a number", int: "an integer", str: "a string"}
    return simple.get(field.annotation, "a valid value")


def _example(cls: type[Layer]) -> str:
    args = [f"{name}={_show(f.default)}" if not f.is_required() else name
            for name, f in cls.model_fields.items()][:3]
    return f"`{cls.kind}({', '.join(args)})`"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def show_value(value: Any) -> str:
    """A value as netspec source writes it (`true`, `"same"`, `(3, 5)`)."""
    return _show(value)


def fan_in_uniform(shape: tuple[int, ...], fan_in: int, trainable: bool = True) -> ParamSpec:
    """PyTorch's default for conv and linear weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return ParamSpec(shape, trainable, init="uniform", scale=fan_in ** -0.5 if fan_in else 0.0)


def explain_counts(params: dict[str, ParamSpec], param_terms: list[str], macs: int | None,
                   mac_terms: list[str]) -> list[str]:
    """`params: 64 * 3 * 11 * 11 + 64 = 23,296` and `MACs: 55 * 55 * 64 * (3 * 11 * 11) = ...`."""
    lines = []
    total = sum(p.elements for p in params.values() if p.trainable)
    if param_terms:
        lines.append(f"params: {' + '.join(param_terms)} = {total:,}")
    if macs is not None and mac_terms:
        lines.append(f"MACs: {' * '.join(mac_terms)} = {macs:,}")
    return lines


def explain_windows(windows_, axes: str = "HW") -> tuple[list[str], list[str]]:
    """One formula line per spatial axis, and a note per axis whose division was not exact;
    `axes` are the axes' letters (D, H, W or L)."""
    lines = [f"{axis}: {w.formula()}" for axis, w in zip(axes, windows_)]
    notes = [n for axis, w in zip(axes, windows_) if (n := w.note(axis))]
    return lines, notes
