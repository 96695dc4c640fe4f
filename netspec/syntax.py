"""The abstract syntax tree: one typed pydantic node per construct, each with its source span.

The AST knows nothing of shapes or layers; `netspec.parser` builds it and `netspec.elaborate`
gives it meaning.
"""

from __future__ import annotations

from typing import Callable, Iterator, Literal, Union

from pydantic import BaseModel, ConfigDict

from netspec.diagnostics import Span


_FIELDS: dict[type, tuple[str, ...]] = {}  # each node class's fields that may hold nodes


class Node(BaseModel):
    # The parser builds nodes with `model_construct` (its grammar already guarantees the field
    # types), so the validation schema is only built if something else validates a node.
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)
    span: Span

    def children(self) -> Iterator["Node"]:
        """The nodes directly inside this one, in field order (lists item by item)."""
        names = _FIELDS.get(type(self))
        if names is None:  # pydantic's model_fields is a costly property: read it once a class
            names = _FIELDS[type(self)] = tuple(n for n in type(self).model_fields if n != "span")
        for name in names:
            value = getattr(self, name, None)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, Node):
                        yield item


def walk(node: Node, prune: Callable[[Node], bool] | None = None) -> Iterator[Node]:
    """Every node in the tree under `node` (itself first), without recursion: a spec may nest
    thousands deep. `prune(n)` true: n is yielded but not entered."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if prune is None or not prune(current):
            stack.extend(reversed(list(current.children())))


class Ident(Node):
    """A name as written, with its own span (for carets under exactly that name)."""

    name: str


# ---------------------------------------------------------------- expressions

class IntLit(Node):
    value: int


class FloatLit(Node):
    value: float


class StrLit(Node):
    value: str


class BoolLit(Node):
    value: bool


class NameRef(Node):
    name: str


class TupleExpr(Node):
    items: list[Expr]


class BinOp(Node):
    op: Literal["+", "-", "*", "/", "//", "%", "**", "@"]
    left: Expr
    right: Expr


class Neg(Node):
    operand: Expr


class Compare(Node):
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    left: Expr
    right: Expr


class BoolOp(Node):
    """`a and b`, `a or b` (short-circuit, as in Python)."""

    op: Literal["and", "or"]
    left: Expr
    right: Expr


class Not(Node):
    operand: Expr


class Conditional(Node):
    """`then if test else otherwise`: only the chosen branch is evaluated."""

    test: Expr
    then: Expr
    otherwise: Expr


class Arg(Node):
    """One call argument: positional when `name` is None."""

    name: Ident | None
    value: Expr


class LabelText(Node):
    """A literal piece of a label after its first `{...}`: `-`, a name or digits (`block{s}-{i}`)."""

    text: str


class Call(Node):
    """`label: callee(args)`: a layer or a block applied to its arguments.

    In a chain stage the piped tensor becomes the first argument (`a -> f(b)` is `f(a, b)`).
    """

    label: Ident | None
    # what follows the label's first name, joined to it: `denselayer{i + 1}:` is [i + 1],
    # `block{s}-{i}:` is [s, LabelText("-"), i]; empty for a plain `conv1:`
    label_parts: list = []
    callee: Ident
    args: list[Arg]


class Repeat(Node):
    """`repeat(count) { stage -> stage }`: the stages, `count` times over, inline in a chain."""

    label: Ident | None
    label_parts: list = []
    count: Expr
    index: Ident | None = None        # `repeat(n, i)`: the round index, bound in the body
    stages: list[Stage]


class Seq(Node):
    """`label: seq { stage -> stage }`: the stages as one nn.Sequential submodule, named
    `<seq>.0`, `<seq>.1`, ... (even when there is only one) and `<seq>.<label>` for a labelled one."""

    label: Ident | None
    label_parts: list = []
    stages: list[Stage]


Stage = Union[Call, Repeat, Seq]


class Chain(Node):
    """`head -> stage -> stage ...`."""

    head: Expr
    stages: list[Stage]


Expr = Union[IntLit, FloatLit, StrLit, BoolLit, NameRef, TupleExpr, BinOp, Neg, Compare, BoolOp, Not,
             Conditional, Call, Chain]


# ---------------------------------------------------------------- statements

class Param(Node):
    name: Ident
    default: Expr | None


class NetworkHeader(Node):
    name: Ident
    params: list[Param]


class InputDecl(Node):
    name: Ident
    dtype: Ident
    dims: list[Expr]
    layout: Ident | None


class Binding(Node):
    name: Ident
    value: Expr


class Unpack(Node):
    """`a, b = expr`: one name per tensor of a layer that gives several (split, chunk)."""

    names: list[Ident]
    value: Expr


class Output(Node):
    names: list[Ident]


class Use(Node):
    path: StrLit


class Return(Node):
    value: Expr


class BlockDef(Node):
    name: Ident
    params: list[Param]
    body: list[Binding | Unpack]
    returns: list[Return]


Statement = Union[NetworkHeader, InputDecl, Binding, Unpack, Output, Use, BlockDef]


class Module(Node):
    """One parsed file."""

    path: str
    statements: list[Statement]


