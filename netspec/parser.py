"""Text to AST: Lark's LALR parser with the grammar cached, a newline postlexer, and syntax errors
turned into located diagnostics that point where the mistake is.

The tree is turned into the AST by Lark's non-recursive Transformer, so deeply nested input never
reaches Python's recursion limit.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from netspec import habits, syntax as S
from netspec.diagnostics import Diagnostic, NetspecError, Span

_OPENERS = {"(": ")", "[": "]"}
# Anything but printable ASCII, tab, line breaks and form feed: netspec.lookalikes looks closer.
_NOT_PLAIN = re.compile(r"[^\t\n\r\f\x20-\x7e]")
MAX_INT_DIGITS = 4300  # Python's own limit on converting text to int
# After one of these a line break cannot end a statement, so it is dropped.
_CONTINUES_AFTER = {"->", "+", "-", "*", "/", "//", "%", "**", ",", "=", ":", "{", "(", "[",
                    "==", "!=", "<", "<=", ">", ">=", "and", "or", "not", "if", "else"}


def grammar_path() -> Path:
    """The grammar file: inside the installed package, or at the top of the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "netspec.lark", here.parent / "grammar" / "netspec.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("netspec's grammar (grammar/netspec.lark) is missing from the install")


class _Newlines:
    """Postlexer: keeps only the line breaks that can end a statement, and remembers the last two
    tokens and the open brackets so a syntax error can say where the real mistake is.

    It never looks ahead: Lark's contextual lexer lexes each token in the parser state left by
    the previous one, so holding a token back would lex the next one in the wrong state.
    """

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.earlier: Token | None = None   # the token before `previous`
        self.previous: Token | None = None
        self.current: Token | None = None
        self.open: list[Token] = []     # unclosed ( and [
        self.braces: list[Token] = []   # unclosed {

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.earlier = self.previous = self.current = None
        self.open, self.braces = [], []
        for token in stream:
            if token.type == "_NL":
                if (self.open or self.current is None or self.current.type == "_NL"
                        or self._value(self.current) in _CONTINUES_AFTER):
                    continue
            else:
                value = self._value(token)
                if value in _OPENERS:
                    self.open.append(token)
                elif value in (")", "]") and self.open:
                    self.open.pop()
                elif value == "{":
                    self.braces.append(token)
                elif value == "}" and self.braces:
                    self.braces.pop()
            self.earlier, self.previous, self.current = self.previous, self.current, token
            yield token

    @staticmethod
    def _value(token: Token) -> str | None:
        return None if token.type in ("STRING", "NAME", "INT", "FLOAT") else str(token)


def _span(file: str, meta_or_token) -> Span:
    return Span(file, meta_or_token.line, meta_or_token.column,
                meta_or_token.end_line, meta_or_token.end_column)


def _unescape(literal: str) -> str:
    body = literal[1:-1]
    if "\\" not in body:
        return body
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
    out, chars = [], iter(body)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(escapes.get(nxt, "\\" + nxt))
        else:
            out.append(ch)
    return "".join(out)


@v_args(meta=True)
class _AstBuilder(Transformer_NonRecursive):
    """Builds `netspec.syntax` nodes; `self.file` names the file being parsed."""

    file = "<string>"

    def _s(self, meta) -> Span:
        return _span(self.file, meta)

    def _ident(self, token: Token) -> S.Ident:
        return S.Ident.model_construct(name=str(token), span=_span(self.file, token))

    # statements
    def start(self, meta, children):
        return list(children)

    def network(self, meta, children):
        name, params = children[0], (children[1] if len(children) > 1 else [])
        return S.NetworkHeader.model_construct(name=self._ident(name), params=params, span=self._s(meta))

    def params(self, meta, children):
        return [c for c in children if c is not None]

    def param(self, meta, children):
        default = children[1] if len(children) > 1 else None
        return S.Param.model_construct(name=self._ident(children[0]), default=default, span=self._s(meta))

    def input_decl(self, meta, children):
        name, dtype, dims = children[0], children[1], children[2]
        layout = self._ident(children[3]) if len(children) > 3 else None
        return S.InputDecl.model_construct(name=self._ident(name), dtype=self._ident(dtype), dims=dims,
                           layout=layout, span=self._s(meta))

    def dims(self, meta, children):
        return list(children)

    def binding(self, meta, children):
        return S.Binding.model_construct(name=self._ident(children[0]), value=children[1], span=self._s(meta))

    def unpack(self, meta, children):
        *names, value = children
        return S.Unpack.model_construct(names=[self._ident(n) for n in names], value=value, span=self._s(meta))

    def output(self, meta, children):
        return S.Output.model_construct(names=[self._ident(t) for t in children], span=self._s(meta))

    def use(self, meta, children):
        token = children[0]
        path = S.StrLit.model_construct(value=_unescape(str(token)), span=_span(self.file, token))
        return S.Use.model_construct(path=path, span=self._s(meta))

    def block(self, meta, children):
        name, params, *statements = children
        body = [s for s in statements if isinstance(s, (S.Binding, S.Unpack))]
        returns = [s for s in statements if isinstance(s, S.Return)]
        return S.BlockDef.model_construct(name=self._ident(name), params=params, body=body, returns=returns,
                          span=self._s(meta))

    def __default__(self, data, children, meta):  # `return` is a Python keyword
        if data == "return":
            return S.Return.model_construct(value=children[0], span=self._s(meta))
        raise AssertionError(f"no AST rule for {data}")

    # chains and calls
    def chain(self, meta, children):
        return S.Chain.model_construct(head=children[0], stages=children[1:], span=self._s(meta))

    def label(self, meta, children):
        return (self._ident(children[0]), [c for c in children[1:] if c is not None])

    def quoted_label(self, meta, children):
        # `"convs.0": f(...)`: the name as written, a submodule path allowed (checked when
        # the label is evaluated, netspec.evaluate.Evaluator.label)
        text = _unescape(str(children[0]))
        return (S.Ident.model_construct(name=text, span=self._s(meta)), [])

    def label_text(self, meta, children):
        return S.LabelText.model_construct(text=str(children[0]), span=self._s(meta))

    def _call(self, meta, children) -> S.Call:
        label, callee, args = children
        name, parts = label if label is not None else (None, [])
        return S.Call.model_construct(label=name, label_parts=parts, callee=self._ident(callee),
                                      args=args or [], span=self._s(meta))

    stage = _call
    call = _call

    def repeat(self, meta, children):
        label, count, index, *stages = children
        name, parts = label if label is not None else (None, [])
        return S.Repeat.model_construct(label=name, label_parts=parts, count=count,
                                        index=self._ident(index) if index is not None else None,
                                        stages=stages, span=self._s(meta))

    def seq(self, meta, children):
        label, *stages = children
        name, parts = label if label is not None else (None, [])
        return S.Seq.model_construct(label=name, label_parts=parts, stages=stages, span=self._s(meta))

    def args(self, meta, children):
        return [c if isinstance(c, S.Arg) else S.Arg.model_construct(name=None, value=c, span=c.span)
                for c in children]

    def keyword(self, meta, children):
        return S.Arg.model_construct(name=self._ident(children[0]), value=children[1], span=self._s(meta))

    # arithmetic and literals
    def _binop(op):  # noqa: N805 - a factory used while the class body runs
        def rule(self, meta, children):
            return S.BinOp.model_construct(op=op, left=children[0], right=children[1], span=self._s(meta))
        return rule

    add, sub, mul = _binop("+"), _binop("-"), _binop("*")
    div, floordiv, mod, pow = _binop("/"), _binop("//"), _binop("%"), _binop("**")
    matmul_op = _binop("@")

    def compare(self, meta, children):
        left, op, right = children
        return S.Compare.model_construct(op=str(op), left=left, right=right, span=self._s(meta))

    def and_(self, meta, children):
        return S.BoolOp.model_construct(op="and", left=children[0], right=children[1], span=self._s(meta))

    def or_(self, meta, children):
        return S.BoolOp.model_construct(op="or", left=children[0], right=children[1], span=self._s(meta))

    def not_(self, meta, children):
        return S.Not.model_construct(operand=children[0], span=self._s(meta))

    def conditional(self, meta, children):
        then, test, otherwise = children
        return S.Conditional.model_construct(test=test, then=then, otherwise=otherwise, span=self._s(meta))

    def neg(self, meta, children):
        return S.Neg.model_construct(operand=children[0], span=self._s(meta))

    def int(self, meta, children):
        digits = str(children[0]).replace("_", "")
        if len(digits) > MAX_INT_DIGITS:  # Python refuses to read longer ones
            raise NetspecError([Diagnostic(
                f"this integer has {len(digits):,} digits, more than netspec reads ({MAX_INT_DIGITS:,})",
                self._s(meta), rule="sizes are at most 2^63 - 1 (19 digits)")])
        return S.IntLit.model_construct(value=int(digits), span=self._s(meta))

    def float(self, meta, children):
        value = float(children[0])
        if math.isinf(value):
            raise NetspecError([Diagnostic(f"the number {children[0]} is too large for a float",
                                           self._s(meta), rule="numbers are at most 1.8e308")])
        return S.FloatLit.model_construct(value=value, span=self._s(meta))

    def string(self, meta, children):
        return S.StrLit.model_construct(value=_unescape(str(children[0])), span=self._s(meta))

    def true(self, meta, children):
        return S.BoolLit.model_construct(value=True, span=self._s(meta))

    def false(self, meta, children):
        return S.BoolLit.model_construct(value=False, span=self._s(meta))

    def name(self, meta, children):
        return S.NameRef.model_construct(name=str(children[0]), span=self._s(meta))

    def tuple(self, meta, children):
        return S.TupleExpr.model_construct(items=[c for c in children if c is not None], span=self._s(meta))


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, _AstBuilder, _Newlines]:
    builder, newlines = _AstBuilder(), _Newlines()
    lark = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=True, postlex=newlines, cache=True)
    return lark, builder, newlines


def parse(text: str, file: str = "<string>") -> S.Module:
    """Parse one file's text; raises NetspecError with one located diagnostic on a syntax error."""
    if _NOT_PLAIN.search(text) is not None:  # every look-alike and invisible character at once
        from netspec.lookalikes import scan

        lookalikes = scan(text, file)
        if lookalikes:
            raise NetspecError(lookalikes)
    lark, builder, newlines = _parser()
    builder.file = file
    try:
        tree = lark.parse(text)
    except UnexpectedInput as exc:
        raise NetspecError([_syntax_error(exc, file, text, lark, newlines)]) from None
    try:
        statements = builder.transform(tree)
    except VisitError as exc:  # a literal the builder refuses (a located NetspecError)
        if isinstance(exc.orig_exc, NetspecError):
            raise exc.orig_exc from None
        raise
    end = text.count("\n") + 1
    return S.Module.model_construct(path=file, statements=statements, span=Span(file, 1, 1, end, 1))


# ---------------------------------------------------------------- friendly syntax errors

_NAMED_TERMINALS = {"NAME": "a name", "INT": "an integer", "FLOAT": "a number",
                    "STRING": "a string", "_NL": "a line break", "$END": "a line break",
                    "COMPARE": "a comparison"}
_EXPRESSION_STARTS = {"NAME", "INT", "FLOAT", "STRING"}
# After any value an operator could follow; naming them all in a message only hides the point.
_OPERATORS = {"+", "-", "*", "/", "//", "%", "**", "@", "and", "or", "if"}


def _terminal_text(lark: Lark, name: str) -> str | None:
    """A terminal's literal text (`->`, `(`); None for a pattern such as NAME or COMPARE."""
    try:
        pattern = lark.get_terminal(name).pattern
    except (KeyError, AttributeError):
        return None
    return pattern.value if pattern.type == "str" else None


def _describe_expected(names: set[str], lark: Lark) -> tuple[str, bool]:
    """Words for what the parser wanted, and whether it wanted only a separator or a closer."""
    wants_value = bool(names & _EXPRESSION_STARTS)
    if wants_value and len(names) > 3:
        return "an expression", False
    literals = {name: _terminal_text(lark, name) for name in names}
    shown = [n for n in names if literals[n] not in _OPERATORS and n != "COMPARE"] or list(names)
    options: list[str] = []
    for name in sorted(shown, key=lambda n: (n in _NAMED_TERMINALS, literals[n] or n)):
        words = _NAMED_TERMINALS.get(name) or (f"`{literals[name]}`" if literals[name] else name.lower())
        if words not in options:
            options.append(words)
    text = options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
    return text, not wants_value


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "_NL":
        return "the end of the line"
    kinds = {"NAME": "name", "INT": "integer", "FLOAT": "number", "STRING": "string"}
    kind = kinds.get(token.type)
    return f"{kind} `{token}`" if kind else f"`{token}`"


def _syntax_error(exc: UnexpectedInput, file: str, text: str, lark: Lark,
                  newlines: _Newlines) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(exc, file, text)
    if isinstance(exc, UnexpectedToken):
        habit = _other_language(exc.token, file, text) or _seq_outside_a_chain(exc.token, file, text)
        if habit is not None:
            return habit
        token = exc.token
        try:
            accepted = set(exc.interactive_parser.accepts())
        except Exception:  # accepts() replays the parser; fall back to the table's guess
            accepted = set(exc.expected)
    else:  # UnexpectedEOF
        token, accepted = Token("$END", ""), set(getattr(exc, "expected", ()) or ())
    accepted.discard("COMMENT")
    if accepted == {"COMMA", "EQUAL"}:  # a statement's first name: `a = ...`; `a, b = ...` is rarer
        accepted = {"EQUAL"}
    expected, only_separators = _describe_expected(accepted, lark)
    found = _describe_token(token)
    at_current = token is newlines.current
    previous = newlines.previous if at_current else newlines.current
    earlier = newlines.earlier if at_current else newlines.previous
    special = (_statement_habit(token, previous, file, text, newlines)
               or _common_mistake(token, previous, earlier, accepted, file, newlines))
    if special is not None:
        return special
    texts = {_terminal_text(lark, name) for name in accepted}
    hint = _syntax_hint(token, previous, texts, newlines)
    if previous is not None and (only_separators or token.type in ("_NL", "$END")):
        where = _span(file, previous).point_after()
        message = f"expected {expected} after `{previous}`, found {found}"
    else:
        width = max(1, len(str(token)))
        where = Span(file, token.line, token.column, token.line, token.column + width)
        message = f"expected {expected}, found {found}"
    return Diagnostic(message, where, rule="syntax", hint=hint)


_STATEMENT_KEYWORDS = {"network", "input", "output", "block", "use"}


def _seq_outside_a_chain(token: Token, file: str, text: str) -> Diagnostic | None:
    """`z = seq { relu }`: a `seq` that is not a stage of a chain, so nothing flows into it."""
    number = getattr(token, "line", None)
    if not isinstance(number, int) or number < 1:
        return None
    line = text.split("\n", number)[number - 1]
    for found in re.finditer(r"\bseq\s*\{", line[:token.column]):
        before = line[:found.start()].rstrip()
        if before.endswith("->") or re.search(r"[\w}]\s*:$", before):
            continue
        return Diagnostic("`seq { ... }` is a stage of a chain: it needs the tensor that flows into it",
                          Span(file, number, found.start() + 1, number, found.start() + 4), rule="syntax",
                          hint="write `x -> seq { ... }`")
    return None


def _other_language(token: Token, file: str, text: str) -> Diagnostic | None:
    """A syntax error that is another language's way of writing something netspec writes
    otherwise: `//` or `/*` comments, `[4, 4]` lists, `=` comparing in a condition, `3x3`,
    Keras's `Conv2D(64, 3)(x)`."""
    number = getattr(token, "line", None)
    if not isinstance(number, int) or number < 1:
        return None
    line = text.split("\n", number)[number - 1]
    index = token.column - 1
    value = str(token)

    def at(start: int, end: int) -> Span:
        return Span(file, number, start + 1, number, end + 1)

    comment = habits.slash_comment(line)
    if comment is not None and index >= comment:
        words = line[comment + 2:].strip().rstrip("*/").strip() if line[comment:comment + 2] == "/*" \
            else line[comment + 2:].strip()
        shown = words if len(words) <= 50 else words[:47] + "..."
        if line[comment:comment + 2] == "/*":
            return Diagnostic("`/* ... */` is a C comment; netspec's comments start with `#` and run "
                              "to the end of the line", at(comment, comment + 2), rule="syntax",
                              hint=f"write `# {shown}`")
        return Diagnostic("`//` is floor division in netspec (`c // 2`); a comment starts with `#`",
                          at(comment, comment + 2), rule="syntax", hint=f"write `# {shown}`")
    if value == "//" and re.fullmatch(r"[ \t]*[A-Za-z][\w'-]*[ \t]*\r?", line[index + 2:]):
        # `-> relu  // widen`: one word, where the parser refused `//`, so it divides nothing
        return Diagnostic("`//` is floor division in netspec (`c // 2`); a comment starts with `#`",
                          at(index, index + 2), rule="syntax",
                          hint=f"write `# {line[index + 2:].strip()}`")
    before = line[:index].rstrip()
    if value == "[" and (not before or before[-1] in "=(,[+-*/%"):
        close = _matching(line, index, "[", "]")
        if close is not None:
            items = line[index + 1:close]
            tuple_ = f"({items})" if _top_level_comma(items) else items.strip()
            return Diagnostic(f"`{line[index:close + 1]}` is a list; netspec has no lists: several "
                              f"values are a tuple in parentheses", at(index, close + 1),
                              rule="syntax", hint=f"write `{tuple_}`")
        return Diagnostic("`[` opens a list; netspec has no lists: several values are a tuple in "
                          "parentheses", at(index, index + 1), rule="syntax", hint="write `(4, 4)`")
    if value == "=" and line[index + 1:index + 2] != "=" and re.search(r"\bif\b", before):
        left = re.search(r"([A-Za-z_]\w*|\d+|\))\s*$", before)
        right = re.match(r"\s*([A-Za-z_]\w*|\d+(?:\.\d+)?|\"[^\"]*\"|'[^']*')", line[index + 1:])
        shown = f"{left.group(1)} == {right.group(1)}" if left and right else "=="
        return Diagnostic("`=` binds a name; a condition compares with `==`", at(index, index + 1),
                          rule="syntax", hint=f"write `{shown}`")
    if token.type == "NAME" and re.fullmatch(r"[xX]\d+", value) and before == line[:index] \
            and before[-1:].isdigit():
        size = re.search(r"\d+$", before).group()
        start = index - len(size)
        other = value[1:]
        kernel = f"`{size}`" if size == other else f"`({size}, {other})`"
        return Diagnostic(f"`{size}{value}` is not a number in netspec", at(start, index + len(value)),
                          rule="syntax", hint=f"a {size}x{other} kernel is written {kernel}"
                          + (f" or `({size}, {other})`" if size == other else "")
                          + f"; to multiply write `{size} * {other}`")
    if value == "(" and before.endswith(")"):
        return _applied_call(line, before, index, number, file)
    return None


# Python's modules a spec has no use for: `import torch` is deleted, not turned into a `use`
_PYTHON_MODULES = {"torch", "torchvision", "numpy", "tensorflow", "keras", "jax", "flax", "onnx",
                   "math", "typing", "collections", "functools", "__future__", "timm"}


def _statement_habit(token: Token, previous: Token | None, file: str, text: str,
                     newlines: _Newlines) -> Diagnostic | None:
    """A statement written as another language writes it: Python's `def`, `class`, `import`
    and a `return` outside any block; `use` of an unquoted path; a name with a `-`
    (`network resnet-18`)."""
    if previous is None or not isinstance(getattr(previous, "line", None), int):
        return None
    lines = text.split("\n")
    line = lines[previous.line - 1].rstrip("\r") if previous.line <= len(lines) else ""
    word = str(previous)
    first = previous.type == "NAME" and not line[:previous.column - 1].strip()
    same_line = token.type in ("_NL", "$END") or getattr(token, "line", None) == previous.line

    def at(t: Token) -> Span:
        return Span(file, t.line, t.column, t.line, t.column + len(str(t)))

    if str(token) == "-":
        return _dashed_name(token, previous, line, file)
    if word == "use" and token.type != "STRING" and same_line and token.type not in ("_NL", "$END"):
        start = token.column - 1
        path = line[start:].split("#")[0].strip()
        shown = path[1:-1] if path[:1] == "<" and path[-1:] == ">" else path
        return Diagnostic("the path after `use` is a string: it is written in quotes",
                          Span(file, token.line, token.column, token.line, token.column + len(path)),
                          rule="syntax", hint=f'write `use "{shown}"`')
    if not first or not same_line or newlines.braces:
        return None
    rest = line[previous.end_column - 1:].split("#")[0].strip()
    if word == "def":
        return _python_def(previous, line, rest, file)
    if word == "class":
        name = re.match(r"[A-Za-z_]\w*", rest)
        return Diagnostic("`class` is Python's; netspec has no classes: a file describes one network, "
                          "named by its `network` line", at(previous), rule="syntax",
                          hint=f"write `network {name.group() if name else 'net'}`; its layers are "
                               f"bindings (`y = x -> conv(64, 3)`), the parts it repeats `block`s")
    if word in ("import", "from"):
        module = re.match(r"[A-Za-z_][\w.]*", rest)
        path = module.group() if module else ""
        if path.split(".")[0] in _PYTHON_MODULES or not path:
            hint = "delete this line: a spec imports nothing to use netspec's layers"
        else:
            hint = f'write `use "{path.replace(".", "/")}.net"`'
        return Diagnostic(f"`{word}` is Python's; netspec takes the blocks of another file with "
                          f"`use \"file.net\"`", at(previous), rule="syntax", hint=hint)
    if word == "return":
        closing = next((i + 1 for i in range(previous.line - 2, -1, -1)
                        if lines[i].strip().startswith("}")), None)
        if closing is not None and any(l.strip() == "}" for l in lines[previous.line:]):
            return Diagnostic(f"`return` outside any block: the `}}` at line {closing} ends the "
                              f"block before it", at(previous), rule="a block's body ends with its "
                              "`return`, then `}`", hint=f"move the `}}` of line {closing} after this line")
        if re.fullmatch(r"[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*", rest):
            hint = f"write `output {rest}`"
        else:
            value = rest if len(rest) <= 40 else rest[:37] + "..."
            name = "out" if not re.search(r"\bout\b", rest) else "result"
            hint = (f"bind the result to a name and list that: `{name} = {value}`, then `output {name}`"
                    if value else "name the network's results with `output NAME`")
        return Diagnostic("`return` ends a block; a network names its results with `output`",
                          at(previous), rule="syntax", hint=hint)
    return None


def _python_def(previous: Token, line: str, rest: str, file: str) -> Diagnostic:
    """`def block1(x, planes: int, stride=1):`, Python's function, as netspec's block."""
    where = Span(file, previous.line, previous.column, previous.line, previous.column + 3)
    match = re.fullmatch(r"([A-Za-z_]\w*)\s*\((.*)\)\s*(?:->[^:]*)?:", rest)
    if match is not None and match.group(1) == "forward":
        return Diagnostic("`def forward` is a PyTorch module's method; netspec's forward pass is the "
                          "file's own bindings", where, rule="syntax",
                          hint="write it at the top level, e.g. `y = x -> conv(64, 3) -> relu`, and "
                               "name the results with `output y`")
    if match is None:
        shown = "block name(x) {"
    else:
        params = [p.strip() for p in _split_top_level(match.group(2)) if p.strip()]
        params = [re.sub(r"^([A-Za-z_]\w*)\s*:\s*[^=]+?(\s*=|$)", r"\1\2", p) for p in params]
        params = [re.sub(r"\s*=\s*", " = ", p) for p in params if p != "self"]
        shown = f"block {match.group(1)}({', '.join(params)}) {{"
    return Diagnostic(f"`def` is Python's; netspec's blocks are written `{shown} ... return ... }}`",
                      where, rule="syntax",
                      hint=f"write `{shown}` here, then the block's bindings, a `return` and `}}`")


def _split_top_level(items: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in items:
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _dashed_name(token: Token, previous: Token, line: str, file: str) -> Diagnostic | None:
    """`network resnet-18`, `input my-image: ...`: a `-` inside a name, where the parser refused
    a `-` (so it subtracts nothing): netspec's names are letters, digits and `_`."""
    dash, before = token, previous
    if before.type != "NAME" or before.end_pos != dash.start_pos:
        return None
    index = dash.column - 1
    if not re.match(r"\w", line[index + 1:index + 2]):
        return None
    start = before.column - 1
    end = re.match(r"[A-Za-z_]\w*(?:-\w+)+", line[start:])
    if end is None:
        return None
    name = end.group()
    fixed = name.replace("-", "_")
    head = re.match(r"\s*(network|input|block|output)\s+$", line[:start])
    shown = f"{head.group(1)} {fixed}" if head else fixed
    if head is None and re.match(r"\s*:", line[start + len(name):]):  # a label: `block1-0:`
        first, *rest = name.split("-")
        split = re.match(r"([A-Za-z_]*[A-Za-z_])(\d*)$", first)
        stem, digits = (split.group(1), split.group(2)) if split else (first, "")
        written = f"{stem}{{{digits or repr(first)}}}" if digits else f"{first}{{\"\"}}"
        written += "".join(f"-{{{p}}}" if p.isdigit() else f"-{p}" for p in rest)
        return Diagnostic(f"the label `{name}` has a `-` straight after its first name, which reads as a "
                          f"subtraction", Span(file, dash.line, start + 1, dash.line, start + len(name) + 1),
                          rule="a label's parts after a first `{...}` are joined: `block{s}-{i}:`",
                          hint=f"quote it, `\"{name}\":`, or write `{written}:` to compute its parts "
                               f"(`{fixed}:` for a name without the `-`)")
    return Diagnostic(f"`{name}` is not a name: names are letters, digits and `_`",
                      Span(file, dash.line, start + 1, dash.line, start + len(name) + 1),
                      rule="syntax", hint=f"write `{shown}`")


def _matching(line: str, start: int, opener: str, closer: str) -> int | None:
    depth = 0
    for i in range(start, len(line)):
        depth += (line[i] == opener) - (line[i] == closer)
        if depth == 0:
            return i
    return None


def _top_level_comma(items: str) -> bool:
    depth = 0
    for char in items:
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            return True
    return False


def _applied_call(line: str, before: str, index: int, number: int, file: str) -> Diagnostic | None:
    """`Conv2D(64, 3)(x)`: Keras's functional style, a layer built, then called on a tensor."""
    depth, open_ = 0, None
    for i in range(len(before) - 1, -1, -1):
        depth += (before[i] == ")") - (before[i] == "(")
        if depth == 0:
            open_ = i
            break
    name = re.search(r"([A-Za-z_][\w.]*)\s*$", before[:open_]) if open_ is not None else None
    close = _matching(line, index, "(", ")")
    if name is None or close is None:
        return None
    callee, applied = name.group(1), line[index + 1:close].strip()
    found = habits.foreign_name(callee)
    layer = line[open_:len(before)]
    if found is not None:
        arguments = _call_arguments(layer)
        if arguments is not None:
            positional, keywords, texts = arguments
            call, _ = habits.translate(found, positional, keywords, source_of=texts.get)
        else:
            call = found.cls.kind
    else:
        call = callee + layer
    where = Span(file, number, name.start(1) + 1, number, close + 2)
    return Diagnostic(f"`{line[name.start(1):close + 1]}` builds a layer and then calls it, "
                      f"Keras's functional style; netspec applies a layer with `->`", where,
                      rule="syntax", hint=f"write `{applied or 'x'} -> {call}`")


def _common_mistake(token: Token, previous: Token | None, earlier: Token | None,
                    accepted: set[str], file: str, newlines: _Newlines) -> Diagnostic | None:
    """A message written for a mistake people make often, where the parser's own view (what
    it expected at the token where it stopped) would point past the real cause."""
    def at(t: Token, width: int | None = None) -> Span:
        return Span(file, t.line, t.column, t.line, t.column + (width or max(1, len(str(t)))))

    # `y = x -> conv(8, 3) ->` then a new statement: the `->` continued the chain onto the next
    # line, whose first word the parser took for a layer.
    if (earlier is not None and str(earlier) == "->" and previous is not None
            and previous.type == "NAME" and previous.line > earlier.line
            and (str(previous) in _STATEMENT_KEYWORDS or str(token) == "=")):
        return Diagnostic("expected a layer or block after `->`, found the end of the line",
                          at(earlier), rule="syntax",
                          hint=f"the chain ends here: `{previous}` on the next line begins a new "
                               f"statement, so remove this `->`")
    # `y == x`: a comparison where a binding was meant
    if (str(token) == "=" and previous is not None and str(previous) == "="
            and previous.end_pos == token.start_pos):
        return Diagnostic("`==` compares two values; a binding is written with one `=`",
                          at(previous, 2), rule="syntax", hint="write one `=`")
    # `input x: [N, 3, 224, 224]`: the dtype left out
    if str(token) == "[" and previous is not None and str(previous) == ":" and accepted == {"NAME"}:
        from netspec.types import DTYPES

        return Diagnostic("expected a dtype before the dimensions, found `[`", at(token),
                          rule="inputs are declared as `name: dtype[dims]`",
                          hint=f"write e.g. `f32[N, 3, 224, 224]`; dtypes: {', '.join(DTYPES)}")
    # a block's `}` forgotten: the next statement is read as part of the block
    brace = _unclosed_brace(token, previous, newlines)
    if brace is not None:
        statement = previous if previous is not None and str(previous) in _STATEMENT_KEYWORDS else token
        if statement.type == "$END":
            return Diagnostic(_never_closed(brace), _span(file, brace), rule="syntax",
                              hint="end the block with `}` on a line of its own")
        return Diagnostic(_never_closed(brace), at(statement), rule="syntax",
                          hint=f"end the block with `}}` on a line of its own before `{statement}`")
    return None


def _unclosed_brace(token: Token, previous: Token | None, newlines: _Newlines) -> Token | None:
    if newlines.braces and (token.type == "$END" or str(token) in _STATEMENT_KEYWORDS
                            or (previous is not None and str(previous) in _STATEMENT_KEYWORDS)):
        return newlines.braces[-1]
    return None


def _never_closed(opener: Token) -> str:
    return f"the `{opener}` at line {opener.line}, column {opener.column} is never closed"


def _syntax_hint(token: Token, previous: Token | None, texts: set, newlines: _Newlines) -> str | None:
    """The likely cause of a syntax error, where one is obvious."""
    on_new_line = previous is not None and getattr(token, "line", 0) > previous.end_line
    if newlines.open and (token.type == "$END" or on_new_line):
        return _never_closed(newlines.open[-1])
    if token.type in ("NAME", "INT", "FLOAT", "STRING") and "," in texts and newlines.open:
        return "arguments and list items are separated by `,`"
    if token.type == "NAME" and "->" in texts:
        return f"to apply `{token}` to the result, write `-> {token}`"
    if texts == {"="} and previous is not None and previous.type == "NAME":
        return (f"`{previous}` begins a new statement here; a line that continues a chain "
                f"starts with `->`")
    return None


_CHARACTER_HINTS = {
    ";": "a statement ends at the end of its line; no `;` is needed",
    "\u2192": "write the arrow as `->`",
    '"': "this string is not closed on its line",
    "'": "this string is not closed on its line",
    "{": "`{` opens the body of a block or a repeat",
    "^": "netspec writes a power as `**` (`2 ** 3`); `^` is not an operator",
    "?": "netspec's conditional is `a if test else b`",
    "!": "netspec's negation is `not` (`not down`); `!=` compares",
    "&": "netspec's logical and is `and`",
    "|": "netspec's logical or is `or`",
    ".": "names have no `.` in netspec: there are no modules or attributes",
}
# C's and JavaScript's operators, as netspec writes them
_OPERATOR_WORDS = {"&&": "and", "||": "or"}


def _unexpected_character(exc: UnexpectedCharacters, file: str, text: str) -> Diagnostic:
    char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
    where = Span(file, exc.line, exc.column, exc.line, exc.column + 1)
    line = text.split("\n", exc.line)[exc.line - 1] if exc.line >= 1 else ""
    index = exc.column - 1
    pair = line[index:index + 2]
    if pair in _OPERATOR_WORDS:
        word = _OPERATOR_WORDS[pair]
        return Diagnostic(f"`{pair}` is written `{word}` in netspec", where.to(Span(
            file, exc.line, exc.column + 1, exc.line, exc.column + 2)), rule="syntax",
            hint=f"write `{word}`: `a {word} b`")
    operand = re.match(r"([A-Za-z_]\w*|\()", line[index + 1:]) if char == "!" else None
    if operand is not None:  # `!down`, `!(a and b)`
        shown = f"not {operand.group(1)}" if operand.group(1) != "(" else "not (...)"
        return Diagnostic("`!` is written `not` in netspec", where, rule="syntax", hint=f"write `{shown}`")
    if char == ";" and line[index + 1:].strip() and not line[index + 1:].lstrip().startswith("#"):
        return Diagnostic("unexpected character `;`", where, rule="syntax",
                          hint="a statement ends at the end of its line: put the next one on a line of its own")
    if char == ".":
        dotted = habits.dotted_name(line, index)
        if dotted is not None:
            return _dotted_name(dotted, line, exc.line, file)
    shown = char if char.isprintable() else repr(char)
    return Diagnostic(f"unexpected character `{shown}`", where, rule="syntax",
                      hint=_CHARACTER_HINTS.get(char))


def _dotted_name(dotted: tuple[int, int, str], line: str, number: int, file: str) -> Diagnostic:
    """`nn.Conv2d(3, 64, 3)`, `torch.nn.ReLU()`, `F.relu(x)`: a framework's layer, named as
    netspec names it, its call rewritten; any other `a.b`: names have no dots."""
    start, end, name = dotted
    where = Span(file, number, start + 1, number, end + 1)
    if habits.sequential(name):
        stages = _sequential_stages(line[end:])
        chain = " -> ".join(stages) if stages else "conv(64, 3) -> relu -> maxpool(2)"
        return Diagnostic(f"`{name}` is PyTorch's and Keras's container; netspec chains layers with "
                          f"`->`", where, rule="syntax", hint=f"write the layers as a chain: `x -> {chain}`")
    if name.startswith("self."):  # `self.conv1 = nn.Conv2d(3, 64, 3)`: a PyTorch module's layer
        label = name.split(".")[1]
        later = re.search(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\(", line[end:])
        found = habits.foreign_name(later.group(1)) if later else None
        call, example = "conv(64, 3)", "e.g. "
        if found is not None:
            example, call = "", found.cls.kind
            arguments = _call_arguments(line[end + later.end(1):])
            if arguments is not None:
                call = habits.translate(found, arguments[0], arguments[1], source_of=arguments[2].get)[0]
        return Diagnostic(f"`{name}` is a PyTorch module's attribute; netspec names a layer with a label",
                          where, rule="syntax", hint=f"label the layer where the chain applies it: "
                                                     f"{example}`x -> {label}: {call}`")
    found = habits.foreign_name(name)
    head, _, method = name.rpartition(".")
    if found is None:
        converted = _dtype_habit(name, line, start, end, number, file)
        if converted is not None:
            return converted
    layer = habits.tensor_method(method)
    if found is None and layer is not None and "." not in head:  # `x.view(x.size(0), -1)`
        rest = line[end:]
        close = _matching(rest, 0, "(", ")") if layer == method and rest.startswith("(") else None
        arguments = rest[:close + 1] if close is not None and rest[1:close].strip() else ""
        return Diagnostic(f"`{name}` is a tensor method in PyTorch; netspec applies a layer in a chain",
                          where, rule="syntax", hint=f"write `{head} -> {layer}{arguments}`")
    if found is None:
        return Diagnostic(f"`{name}`: names have no `.` in netspec", where, rule="syntax",
                          hint="there are no modules or attributes: a layer is called by its "
                               "name, e.g. `conv(64, 3)`")
    arguments = _call_arguments(line[end:])
    notes: list[str] = []
    if arguments is None:
        call = found.cls.kind
    else:
        positional, keywords, texts = arguments
        call, notes = habits.translate(found, positional, keywords, source_of=texts.get)
    return Diagnostic(found.message(), where, rule="syntax", hint=f"write `{call}`", notes=notes)


# PyTorch's tensor methods that convert (`x.half()`) -> netspec's dtype
_CONVERSIONS = {"half": "f16", "float": "f32", "double": "f64", "bfloat16": "bf16", "long": "i64",
                "int": "i32", "short": "i16", "char": "i8", "byte": "u8", "bool": "bool"}


def _dtype_habit(name: str, line: str, start: int, end: int, number: int, file: str) -> Diagnostic | None:
    """`torch.float32`, `np.float16` (a framework's dtype: netspec writes `f32`), and PyTorch's
    conversions `x.to(torch.float16)`, `x.half()` (netspec's `x -> cast(f16)`)."""
    where = Span(file, number, start + 1, number, end + 1)
    dtype = habits.dotted_dtype(name)
    if dtype is not None:
        netspec, whose = dtype
        if re.search(r"\bcast\s*\(\s*(?:(?:to|dtype)\s*=\s*)?$", line[:start]):
            hint = f"write `cast({netspec})`"
        elif re.match(r"\s*input\s+\w+\s*:\s*$", line[:start]):
            hint = f"write `{netspec}`"
        else:
            hint = f"write `{netspec}` (a conversion is `x -> cast({netspec})`)"
        return Diagnostic(f"`{name}` is {whose} name for a dtype; netspec writes it `{netspec}`", where,
                          rule="syntax", hint=hint)
    head, _, method = name.rpartition(".")
    if "." in head or not re.fullmatch(r"[A-Za-z_]\w*", head):
        return None
    rest = line[end:]
    target = None
    if method in _CONVERSIONS and re.match(r"\(\s*\)", rest):
        target = _CONVERSIONS[method]
    elif method in ("to", "type") and rest.startswith("("):
        close = _matching(rest, 0, "(", ")")
        argument = rest[1:close].strip() if close is not None else ""
        argument = re.sub(r"^dtype\s*=\s*", "", argument)
        dotted = habits.dotted_dtype(argument)
        word = argument[1:-1] if argument[:1] in "\"'" and argument[-1:] == argument[:1] else argument
        target = dotted[0] if dotted else habits.netspec_dtype(word)
    if target is None:
        return None
    return Diagnostic(f"`{name}` is a tensor method in PyTorch; netspec converts with the `cast` layer",
                      where, rule="syntax", hint=f"write `{head} -> cast({target})`")


def _sequential_stages(rest: str) -> list[str] | None:
    """`(nn.Conv2d(3, 8, 3), nn.ReLU())`, the arguments of a Sequential, as netspec's stages
    (`conv(8, 3)`, `relu`); None where one of them is not a layer netspec knows by some name."""
    from netspec.layers import LAYERS

    if not rest.startswith("("):
        return None
    close = _matching(rest, 0, "(", ")")
    if close is None:
        return None
    inner = re.sub(r"\b(?:torch\.nn|nn|tf\.keras\.layers|keras\.layers|layers)\.", "", rest[1:close])
    try:
        binding = parse(f"v = f({inner})\n", "<call>").statements[0]
    except NetspecError:
        return None
    text = f"v = f({inner})"
    stages = []
    for arg in getattr(binding.value, "args", None) or []:
        call, span = arg.value, arg.value.span
        if arg.name is not None or not isinstance(call, (S.Call, S.NameRef)) or span.line != span.end_line:
            return None
        callee = call.callee.name if isinstance(call, S.Call) else call.name
        found = habits.foreign_name(callee)
        if found is None:
            if callee not in LAYERS:
                return None
            stages.append(text[span.column - 1:span.end_column - 1])
            continue
        arguments = _call_arguments(text[call.callee.span.end_column - 1:span.end_column - 1])
        if arguments is None:
            return None
        positional, keywords, texts = arguments
        stages.append(habits.translate(found, positional, keywords, source_of=texts.get)[0])
    return stages or None


def _call_arguments(rest: str) -> tuple[list[int], list[str], dict] | None:
    """The arguments of the call that `rest` (the text after a callee's name) opens: positional
    indices, keyword names and the source text of each; None without parentheses or when they
    do not parse on this line."""
    if not rest.startswith("("):
        return ([], [], {}) if not rest.strip() or rest.lstrip()[0] in "-)#" else None
    depth, close = 0, None
    for i, char in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            close = i
            break
    if close is None:
        return None
    snippet = "f" + rest[:close + 1]
    # parse() again, from inside the handling of a syntax error: the outer parse has finished
    # with the shared parser, and the snippet is shorter than the text, so this ends
    try:
        binding = parse(f"v = {snippet}\n", "<call>").statements[0]
    except NetspecError:
        return None
    call = binding.value
    if not isinstance(call, S.Call):
        return None
    positional, keywords, texts = [], [], {}
    for arg in call.args:
        span = arg.value.span
        text = f"v = {snippet}"[span.column - 1:span.end_column - 1] if span.line == span.end_line == 1 else None
        if arg.name is None:
            texts[len(positional)] = text
            positional.append(len(positional))
        else:
            texts[arg.name.name] = text
            keywords.append(arg.name.name)
    return positional, keywords, texts
