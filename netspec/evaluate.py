"""Evaluating expressions of plain values: literals, names, tuples, arithmetic, comparisons,
conditionals and scalar functions, with located errors and the poison value that keeps one
mistake from being reported twice.

What makes a graph (layer and block calls, chains, `+` and `*` between tensors) is left to a
subclass: `netspec.elaborate.Elaborator` builds the graph on top of this evaluator.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from netspec import syntax as S
from netspec.diagnostics import Diagnostics, Span, did_you_mean
from netspec.functions import DESCRIPTIONS, FUNCTIONS, QUERIES
from netspec.types import DTYPE_ALIASES, DTYPES


@dataclass(frozen=True, slots=True)
class Tensor:
    """A value that is a tensor: the output of one graph node."""

    node: str


class _Poison:
    """The value of an expression that already failed; using it reports nothing more."""

    def __repr__(self) -> str:
        return "<error>"


POISON = _Poison()


class Origin:
    """Where a plain value a name holds was written: the expression a person would edit to
    change it (a block argument at its call site, a binding, a parameter's default). (A plain
    class, as Argument: a dataclass costs half a millisecond of every `netspec check`.)"""

    __slots__ = ("span", "expr", "given")

    def __init__(self, span: Span | None, expr: S.Expr | None, given: str | None = None) -> None:
        self.span, self.expr = span, expr
        self.given = given  # a network parameter given when compiling: no span in the spec

    @staticmethod
    def override(name: str) -> "Origin":
        """The value of network parameter `name`, given when compiling (not written in the spec)."""
        return Origin(None, None, given=name)


class Argument:
    """One argument of a call, evaluated: its value, where it is written (for a keyword, the
    whole `name=value`), and its expression (None for the tensor a chain pipes in)."""

    __slots__ = ("value", "span", "expr")

    def __init__(self, value: Any, span: Span, expr: S.Expr | None = None) -> None:
        self.value, self.span, self.expr = value, span, expr


@dataclass
class Scope:
    """Names visible while evaluating: bindings and block parameters, then the file's network
    parameters. `prefix` is the state_dict prefix of layers created here; `blocks` the block
    instances it is inside, outermost first."""

    values: dict[str, Any]
    parent: "Scope | None"
    prefix: str = ""
    blocks: tuple = ()                                   # netspec.graph.BlockInstance
    spans: dict[str, Span] = field(default_factory=dict)  # where each name is defined
    origins: dict[str, Origin] = field(default_factory=dict)

    def lookup(self, name: str) -> tuple[bool, Any]:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return True, scope.values[name]
            scope = scope.parent
        return False, None

    def origin(self, name: str) -> Origin | None:
        """Where the plain value of `name` was written, if it is known."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope.origins.get(name)
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        names, scope = [], self
        while scope is not None:
            names.extend(scope.values)
            scope = scope.parent
        return names

    def qualify(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name


def kind_name(value: Any) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, tuple):
        return "a tuple"
    return "a value"


def free_names(expr: S.Node) -> list[S.NameRef]:
    """Every name an expression reads (not the layers or blocks it calls)."""
    return [node for node in S.walk(expr) if isinstance(node, S.NameRef)]


def is_plain(expr: S.Node) -> bool:
    """True for an expression of literals, names, arithmetic and scalar functions only (no
    layers, blocks or chains)."""
    return not any(isinstance(node, (S.Chain, S.Repeat, S.Seq))
                   or (isinstance(node, S.Call) and node.callee.name not in FUNCTIONS
                       and node.callee.name not in QUERIES)
                   for node in S.walk(expr))


def origin_of(expr: S.Expr, scope: Scope) -> Origin:
    """Where the value of `expr` was written: for a bare name, where that name got its value
    (followed through block arguments); otherwise the expression itself."""
    if isinstance(expr, S.NameRef):
        found = scope.origin(expr.name)
        if found is not None:
            return found
    return Origin(expr.span, expr)


def division_hint(value: Any, expr: S.Expr | None) -> str | None:
    """For a whole number that came out of `/` where an integer was needed: `//`."""
    if isinstance(value, float) and value.is_integer() and isinstance(expr, S.BinOp) and expr.op == "/":
        return f"`/` divides to a number ({value!r}); `//` divides to an integer ({int(value)})"
    return None


def _power(base: int | float, exponent: int | float) -> int | float:
    """`base ** exponent`, as Python computes it; an integer result of more than 4,300 digits
    (netspec's limit on integers) raises OverflowError before it is computed."""
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0 \
            and exponent * math.log10(abs(base)) > 4300:
        raise OverflowError("integer power too large")
    return base ** exponent


class Evaluator:
    """Evaluates expressions in a Scope, reporting each mistake once (located) and returning
    POISON for what failed. Subclasses give calls, chains and tensor operators their meaning."""

    def __init__(self, diagnostics: Diagnostics):
        self.diag = diagnostics

    # ------------------------------------------------------------ what a subclass provides

    def call(self, call: S.Call, scope: Scope, bound: str | None) -> Any:
        raise NotImplementedError

    def chain(self, chain: S.Chain, scope: Scope, bound: str | None) -> Any:
        raise NotImplementedError

    def tensor_op(self, kind: str, operands: list[Tensor], sides: list[S.Expr], span: Span, scope: Scope,
                  bound: str | None, scalar: float | None = None) -> Any:
        """The layer of a tensor operator: `a + b` (add), `a * b` (mul), `a @ b` (matmul), or a
        tensor and a number (`scalar`); `sides` are the tensors' expressions."""
        raise NotImplementedError

    def input_hint(self, scope: Scope) -> str:
        """What to write for the keyword `input` used as a value: the inputs' names."""
        return "declare the input with a name, e.g. `input image: f32[N, 3, 224, 224]`, and write that name"

    def undefined_hint(self, name: str) -> str | None:
        """What an undefined name may be meant as, where a subclass knows better."""
        return None

    def callable_kind(self, name: str) -> str | None:
        """"layer" or "block" when `name` names one (so using it as a value can say so)."""
        return None

    # ------------------------------------------------------------ expressions

    def scalar(self, expr: S.Expr, scope: Scope) -> Any:
        """Evaluate an expression that must not be a tensor (a parameter, an attribute)."""
        value = self.expr(expr, scope, bound=None)
        if isinstance(value, Tensor):
            self.diag.error("expected a number or other value here, not a tensor", expr.span,
                            rule="parameters and sizes are plain values")
            return POISON
        return value

    def expr(self, expr: S.Expr, scope: Scope, bound: str | None) -> Any:
        """Evaluate an expression. `bound` is the qualified binding name when `expr` is a
        binding's whole right-hand side (it names the layer that produces the value)."""
        if isinstance(expr, (S.IntLit, S.FloatLit, S.StrLit, S.BoolLit)):
            return expr.value
        if isinstance(expr, S.NameRef):
            return self.name(expr, scope)
        if isinstance(expr, S.TupleExpr):
            items = tuple(self.scalar(item, scope) for item in expr.items)
            return POISON if POISON in items else items
        if isinstance(expr, S.Neg):
            value = self.expr(expr.operand, scope, None)
            if value is POISON:
                return POISON
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value
            self.diag.error(f"cannot negate {kind_name(value)}", expr.span, rule="`-` needs a number")
            return POISON
        if isinstance(expr, S.BinOp):
            return self.binop(expr, scope, bound)
        if isinstance(expr, (S.Compare, S.BoolOp, S.Not)):
            return self.logic(expr, scope)
        if isinstance(expr, S.Conditional):
            test = self.truth(expr.test, scope)
            if test is POISON:
                return POISON
            return self.expr(expr.then if test else expr.otherwise, scope, bound)
        if isinstance(expr, S.Call):
            return self.call(expr, scope, bound)
        if isinstance(expr, S.Chain):
            return self.chain(expr, scope, bound)
        raise AssertionError(f"unhandled expression {type(expr).__name__}")

    def name(self, ref: S.NameRef, scope: Scope) -> Any:
        found, value = scope.lookup(ref.name)
        if found:
            return value
        if ref.name in DTYPES:  # a dtype written bare, `cast(f16)`: its name, as `cast("f16")`
            return ref.name
        what = self.callable_kind(ref.name)
        if what is not None:
            self.diag.error(f"`{ref.name}` is a {what}, not a value", ref.span,
                            rule="layers and blocks are applied to tensors",
                            hint=f"apply it: `x -> {ref.name}` or `{ref.name}(x)`")
            return POISON
        if ref.name == "input":  # the keyword that declares inputs, used as a value
            self.diag.error("`input` declares an input; it is not a value", ref.span,
                            rule="an input is declared `input NAME: dtype[dims]` and used by its name",
                            hint=self.input_hint(scope))
            return POISON
        hint = did_you_mean(ref.name, scope.visible())
        if ref.name in ("True", "False", "TRUE", "FALSE"):
            hint = f"write `{ref.name.lower()}`"
        elif ref.name in ("None", "null", "nil", "undefined"):
            hint = "netspec has no `None`: leave the argument out to get its default"
        elif ref.name.lower() in DTYPES or ref.name.lower() in DTYPE_ALIASES:
            hint = f"the dtype is written `{DTYPE_ALIASES.get(ref.name.lower(), ref.name.lower())}`"
        hint = self.undefined_hint(ref.name) or hint
        self.diag.error(f"`{ref.name}` is not defined", ref.span, rule="names are defined before use "
                        "by a binding, an input, a block parameter or a network parameter", hint=hint)
        return POISON

    def reads_later_parameter(self, param: S.Param, params: list[S.Param], given: dict[str, Any],
                              owner: str) -> bool:
        """Report a default that reads a parameter declared after it (and not given): defaults
        are evaluated in order, so that name has no value yet."""
        position = next(i for i, p in enumerate(params) if p is param)
        later = {p.name.name for p in params[position + 1:]} - set(given)
        ref = next((r for r in free_names(param.default) if r.name in later), None)
        if ref is None:
            return False
        self.diag.error(f"the default of `{param.name.name}` reads `{ref.name}`, a later parameter of "
                        f"{owner}", ref.span, rule="a default sees only the earlier parameters",
                        hint=f"declare `{ref.name}` before `{param.name.name}`")
        return True

    # ------------------------------------------------------------ conditions and comparisons

    _COMPARISONS = {
        "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    }

    def truth(self, expr: S.Expr, scope: Scope) -> Any:
        """Evaluate a condition: true or false, nothing else (no truthy numbers)."""
        value = self.expr(expr, scope, None)
        if value is POISON or isinstance(value, bool):
            return value
        self.diag.error(f"a condition must be true or false, got {kind_name(value)}", expr.span,
                        rule="conditions are comparisons or booleans", hint="compare it, e.g. `stride != 1`")
        return POISON

    def logic(self, expr: S.Expr, scope: Scope) -> Any:
        if isinstance(expr, S.Not):
            value = self.truth(expr.operand, scope)
            return value if value is POISON else not value
        if isinstance(expr, S.BoolOp):
            left = self.truth(expr.left, scope)
            if left is POISON or (left if expr.op == "or" else not left):
                return left  # short-circuit, as in Python
            return self.truth(expr.right, scope)
        left, right = self.expr(expr.left, scope, None), self.expr(expr.right, scope, None)
        if left is POISON or right is POISON:
            return POISON
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            self.diag.error(f"cannot compare tensors with `{expr.op}`", expr.span,
                            rule="comparisons are between plain values")
            return POISON
        if expr.op not in ("==", "!="):
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
            if not numeric:
                self.diag.error(f"cannot order {kind_name(left)} and {kind_name(right)} with `{expr.op}`",
                                expr.span, rule="`<`, `<=`, `>`, `>=` compare numbers")
                return POISON
        return self._COMPARISONS[expr.op](left, right)

    # ------------------------------------------------------------ arithmetic

    _ARITHMETIC = {
        "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
        "**": lambda a, b: _power(a, b),
    }
    _TENSOR_OPS = {"+": "add", "*": "mul", "@": "matmul"}

    def _scaled(self, expr: S.BinOp, left: Any, right: Any, scope: Scope, bound: str | None) -> Any:
        """A tensor and a number: `q * d ** -0.5`, `16 * x`, `x / 8`, `x + 1`, `x - 0.5`, an
        `add` or `mul` layer with the number as its `scalar` (a division multiplies by the
        inverse, a subtraction adds the negation)."""
        tensor_left = isinstance(left, Tensor)
        tensor, number = (left, right) if tensor_left else (right, left)
        side = expr.left if tensor_left else expr.right
        allowed = ("+", "-", "*", "/") if tensor_left else ("+", "*")
        is_number = isinstance(number, (int, float)) and not isinstance(number, bool)
        if not is_number or expr.op not in allowed:
            what = kind_name(number)
            written = "`x + n`, `n + x`, `x - n`, `x * n`, `n * x` and `x / n`"
            hint = None
            if is_number and not tensor_left and expr.op == "-":
                from netspec.layers.base import show_value

                hint = f"`{show_value(number)} - x` is `x * -1 + {show_value(number)}`"
            self.diag.error(f"cannot combine a tensor and {what} with `{expr.op}`", expr.span,
                            rule=f"`+` and `*` between tensors are element-wise; a tensor and a number "
                                 f"combine as {written}", hint=hint)
            return POISON
        if expr.op == "/" and number == 0:
            self.diag.error("division by zero", expr.right.span, rule="the divisor is not 0")
            return POISON
        scalar = {"-": -number, "/": 1 / number}.get(expr.op, number)
        kind = "add" if expr.op in ("+", "-") else "mul"
        return self.tensor_op(kind, [tensor], [side], expr.span, scope, bound, scalar=scalar)

    def binop(self, expr: S.BinOp, scope: Scope, bound: str | None) -> Any:
        left = self.expr(expr.left, scope, None)
        right = self.expr(expr.right, scope, None)
        if left is POISON or right is POISON:
            return POISON
        if expr.op == "**" and (isinstance(left, Tensor) or isinstance(right, Tensor)):
            self.diag.error("`**` raises a plain number to a power; it does not apply to tensors",
                            expr.span, rule="`**` is arithmetic between numbers",
                            hint="netspec has no element-wise power of a tensor; `x * x` squares one")
            return POISON
        if isinstance(left, Tensor) and isinstance(right, Tensor):
            kind = self._TENSOR_OPS.get(expr.op)
            if kind is None:
                self.diag.error(f"`{expr.op}` between tensors is not supported", expr.span,
                                rule="tensors combine with `+` (add), `*` (multiply), `@` (matrix "
                                     "product) or concat(...)")
                return POISON
            return self.tensor_op(kind, [left, right], [expr.left, expr.right], expr.span, scope, bound)
        if expr.op == "@":
            other = left if not isinstance(left, Tensor) else right
            self.diag.error(f"`@` multiplies two tensors; this operand is {kind_name(other)}",
                            (expr.left if other is left else expr.right).span,
                            rule="`a @ b` is the matrix product of tensors a and b",
                            hint="scale a tensor with `*`: `x * 0.125`")
            return POISON
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            return self._scaled(expr, left, right, scope, bound)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        if not numeric:
            self.diag.error(f"cannot apply `{expr.op}` to {kind_name(left)} and {kind_name(right)}",
                            expr.span, rule="arithmetic needs numbers")
            return POISON
        if expr.op in ("/", "//", "%") and right == 0:
            self.diag.error("division by zero", expr.right.span, rule="the divisor is not 0")
            return POISON
        if expr.op == "**" and left == 0 and right < 0:
            self.diag.error("0 cannot be raised to a negative power (it divides by zero)", expr.span,
                            rule="`0 ** n` needs n >= 0")
            return POISON
        if expr.op == "**" and left < 0 and isinstance(right, float) and not right.is_integer():
            from netspec.layers.base import show_value

            self.diag.error(f"a negative number to a fractional power has no real value: "
                            f"({show_value(left)}) ** {show_value(right)}", expr.span,
                            rule="`a ** b` with a fractional b needs a >= 0")
            return POISON
        try:
            result = self._ARITHMETIC[expr.op](left, right)
        except OverflowError:
            result = math.inf
        if isinstance(result, float) and not math.isfinite(result):
            self.diag.error(f"`{expr.op}` overflows: the result is too large for a number", expr.span,
                            rule="numbers are at most 1.8e308, integers 4,300 digits")
            return POISON
        return result

    # ------------------------------------------------------------ scalar functions

    def function(self, call: S.Call, positional: list[Argument], keywords: dict[str, Argument],
                 poisoned: bool) -> Any:
        """`min(a, b)`, `make_divisible(v, 8)`: a function of plain values (netspec.functions)."""
        name = call.callee.name
        if poisoned:
            return POISON
        values = [a.value for a in positional] + [a.value for a in keywords.values()]
        if any(isinstance(v, Tensor) for v in values):
            self.diag.error(f"`{name}` works on plain values, not tensors", call.span,
                            rule=DESCRIPTIONS[name])
            return POISON
        try:
            result = FUNCTIONS[name](*(a.value for a in positional), **{k: a.value for k, a in keywords.items()})
        except (TypeError, ValueError, OverflowError) as exc:
            self.diag.error(f"`{name}`: {exc}", call.span, rule=DESCRIPTIONS[name])
            return POISON
        return result

    def label(self, label: S.Ident, parts: list, scope: Scope) -> Any:
        """A label's text: `conv1`, `denselayer` + the value of `{i + 1}`, or the parts of
        `block{s}-{i}` joined (`block2-3`). A computed part is an integer or a string; the
        label is one state_dict name: letters, digits, `_` and `-`."""
        if not parts and not _NAME.fullmatch(label.name):  # quoted: `"convs.0":`, `"block2-3":`
            if not _QUOTED_LABEL.fullmatch(label.name):
                self.diag.error(f"the label {label.name!r} is not a state_dict name", label.span,
                                rule="a quoted label is names of letters, digits, `_` and `-`, "
                                     "joined by `.` (`\"convs.0\"`, `\"block2-3\"`)")
                return POISON
            return label.name
        text = [label.name]
        for part in parts:
            if isinstance(part, S.LabelText):
                text.append(part.text)
                continue
            value = self.scalar(part, scope)
            if value is POISON:
                return POISON
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                self.diag.error(f"a label's `{{...}}` must be an integer or a string, got {kind_name(value)}",
                                part.span, rule="labels are names", hint=division_hint(value, part))
                return POISON
            if isinstance(value, str) and not _LABEL_PIECE.fullmatch(value):
                self.diag.error(f"a label's `{{...}}` gives the string {value!r}, which cannot be part "
                                f"of a name", part.span,
                                rule="a label is one state_dict name: letters, digits, `_` and `-`",
                                hint='a `.` makes a submodule path: quote the whole label (`"convs.0": ...`), or use a '
                                     'block or `seq { ... }`'
                                if "." in value else None)
                return POISON
            text.append(str(value))
        return "".join(text)


_LABEL_PIECE = re.compile(r"[A-Za-z0-9_\-]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a quoted label: one state_dict name or a path of them (an nn.ModuleList entry, `convs.0`)
_QUOTED_LABEL = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
