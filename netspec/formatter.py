"""Spec text in netspec's one canonical layout (`netspec fmt`).

The formatter works on the parse tree, every token kept (punctuation included), and reads the
comments and line breaks from the source between the tokens, so it changes only whitespace:
the tokens, their order and the comments stay as they are. It checks that itself: the text it
gives parses to the same tree (positions aside), else it refuses (an internal error, never a
changed network).

The layout (a gofmt-like formatter: the line breaks a person chose are kept, everything else
is canonical):

- Indentation: 4 spaces a level; a top-level statement starts at column 1, one in a block 4 in.
  A block's `{` ends its header line, each statement of its body is on a line of its own and
  its `}` on a line of its own (a one-line block is opened up).
- Continuation lines: a line starting with `->` is indented 4 past the line its chain starts
  on. Where the chain is inside brackets, it lines up with the chain's first `->` when that
  is on the chain's first line (`(x -> a` / `-> b)`), else under the chain's head (a repeat
  or seq body whose `{` ends its line). Any other line inside an open `(`, `[` or the `{` of a
  repeat or seq lines up just after that bracket ("visual" indent), or, when the bracket ends
  its line ("hanging"), 4 past the bracket's line (a closing bracket that starts a line goes
  back to that line's indent). Any other continuation line (`else ...`) is 4 past its
  statement.
- Spaces: one around `->`, `=` of a binding or of a parameter's default (`classes = 10`),
  binary and comparison operators, `and`, `or`, `if` and `else`; none around the `=` of a
  keyword argument (`stride=2`); none inside brackets, before `,`, `:` or `(` of a call, after
  a unary `-`; one after `,` and `:`; one inside the braces of `repeat(n) { a -> b }` and
  `seq { ... }`; none inside a label (`block{s}-{i}:`).
- Line breaks: kept where the source has them (all of them are allowed, so the meaning never
  depends on them); a line longer than WIDTH columns (its comment aside) is broken before a
  `->`, the outermost one that keeps the line within WIDTH. Other long lines are left long.
- Comments: never lost, never moved to another token. A comment on a line of its own takes the
  indentation of the code line after it (a block's body, before its `}`). A comment after code
  keeps its column where the code allows, at least two spaces after the code; comments of
  adjacent lines that were aligned stay aligned.
- Blank lines: at most one in a row; none at the start or end of the file, none just inside a
  block's braces. Trailing whitespace is removed; the file ends with one `\\n`; `\\r\\n` becomes
  `\\n`; tabs in indentation become spaces.

Idempotent: formatting formatted text changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token, Tree

__all__ = ["format_text", "WIDTH", "FormatterError"]

WIDTH = 120   # a line longer than this is broken before a `->` where it can be
INDENT = 4

_STATEMENTS = {"network", "input_decl", "binding", "unpack", "output", "use", "block", "return"}
_BINARY = {"+", "-", "*", "/", "//", "%", "@", "**", "->", "and", "or", "if", "else"}
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")", "]", "}"}
_LITERALS = ("STRING", "NAME", "INT", "FLOAT")


class FormatterError(Exception):
    """The formatter's own output failed its check: a bug in netspec, never a user's mistake."""


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """netspec's grammar with every token kept in the tree."""
    from netspec.parser import _Newlines, grammar_path

    return Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=False, keep_all_tokens=True,
                postlex=_Newlines(), cache=True)


@dataclass
class _Tok:
    text: str
    type: str
    parent: str                 # the rule of the tree the token is a child of
    start: int                  # offsets in the source
    end: int
    statement: bool = False     # the first token of a statement
    block_brace: bool = False   # the `{` or `}` of a block
    depth: int = 0              # blocks around it (0 or 1)
    chain: int | None = None    # for `->`: the chain it belongs to (index into _Chains)
    label: bool = False         # a token of a label itself (`block`, `{`, `}`, `-`, `:`)
    # what lies between the previous token and this one
    trailing: tuple[str, int] | None = None   # a comment ending the previous token's line, its column
    between: list = field(default_factory=list)   # ("blank",) or ("comment", text), full lines
    newline: bool = False                 # this token starts a line in the source


@dataclass
class _Chain:
    head: int                   # index of its first token
    first_arrow: int            # index of its first `->`


@dataclass
class _Line:
    indent: int
    tokens: list[int]           # token indices
    columns: list[int] = field(default_factory=list)   # output column of each token (0-based)
    code: str = ""
    comment: str | None = None  # a trailing comment
    comment_column: int | None = None   # its column in the source
    kind: str = "code"          # "code", "comment" or "blank"


def _tokens(tree: Tree) -> tuple[list[_Tok], list[_Chain]]:
    """The tree's tokens in source order (line breaks left out), each with its context, and
    the chains (and repeat and seq bodies) with their heads and first `->`."""
    toks: list[_Tok] = []
    chains: list[_Chain] = []
    chain_of: dict[int, int] = {}
    # (node, parent rule, blocks around it, first token of a statement?, a label's own token?)
    stack: list = [(tree, "start", 0, False, False)]
    while stack:   # iterative: deeply nested input stays off Python's stack
        node, parent, depth, statement, in_label = stack.pop()
        if isinstance(node, Token):
            if node.type == "_NL":
                continue
            tok = _Tok(str(node), node.type, parent, node.start_pos, node.end_pos, statement=statement,
                       depth=depth, label=in_label)
            tok.block_brace = parent == "block" and tok.text in ("{", "}") and node.type not in _LITERALS
            toks.append(tok)
            continue
        data = node.data
        if data in _STATEMENTS:
            statement = True
        if data in ("chain", "repeat", "seq"):
            chain_of[id(node)] = len(chains)
            chains.append(_Chain(-1, -1))
        items = []
        for position, child in enumerate(node.children):
            body = data == "block" and isinstance(child, Tree) and child.data in _STATEMENTS
            items.append((child, data, depth + 1 if body else depth, statement and position == 0,
                          isinstance(child, Token) and data in ("label", "label_text", "quoted_label")))
        stack.extend(reversed(items))
    _mark_chains(tree, toks, chains, chain_of)
    return toks, chains


def _mark_chains(tree: Tree, toks: list[_Tok], chains: list[_Chain], chain_of: dict[int, int]) -> None:
    """Each chain's (and repeat or seq body's) head token and first `->`; each `->` its chain."""
    by_start = {t.start: i for i, t in enumerate(toks)}
    stack = [tree]
    while stack:
        node = stack.pop()
        index = chain_of.get(id(node))
        if index is not None:
            arrows = [c for c in node.children if isinstance(c, Token) and c.type not in _LITERALS
                      and str(c) == "->"]
            if node.data == "chain":
                head = _first_token(node)
            else:  # repeat / seq: the body starts after its `{`
                brace = next(c for c in node.children if isinstance(c, Token) and str(c) == "{")
                head = next(_tokens_after(node, brace), None)
            chain = chains[index]
            chain.head = by_start[head.start_pos] if head is not None else -1
            chain.first_arrow = by_start[arrows[0].start_pos] if arrows else -1
            for arrow in arrows:
                toks[by_start[arrow.start_pos]].chain = index
        stack.extend(c for c in node.children if isinstance(c, Tree))


def _first_token(node) -> Token:
    while isinstance(node, Tree):
        node = node.children[0]
    return node


def _tokens_after(node: Tree, brace: Token):
    seen = False
    for child in node.children:
        if child is brace:
            seen = True
            continue
        if seen:
            yield _first_token(child)
            return


def _gaps(text: str, toks: list[_Tok]) -> tuple[tuple[str, int] | None, list]:
    """Fill each token's `trailing`, `between` and `newline` from the source before it; returns
    what follows the last token (a trailing comment, then comment and blank lines)."""
    previous_end = 0
    for index in range(len(toks) + 1):
        tok = toks[index] if index < len(toks) else None
        gap = text[previous_end:tok.start if tok is not None else len(text)]
        trailing, between, newline = _read_gap(text, previous_end, gap, first=index == 0)
        if tok is None:
            return trailing, between
        tok.trailing, tok.between, tok.newline = trailing, between, newline
        previous_end = tok.end
    raise AssertionError("unreachable")


def _read_gap(text: str, offset: int, gap: str, first: bool):
    """The comments and blank lines of the whitespace between two tokens (only a line break
    ends a line: a lone `\r` is whitespace, as netspec's lexer reads it)."""
    lines = gap.split("\n")
    trailing = None
    between: list = []
    head = lines[0].strip(" \t\f\r")
    if head:
        if first:
            between.append(("comment", head))
        else:
            at = offset + lines[0].index("#")
            trailing = (head, at - (text.rfind("\n", 0, at) + 1))
    for middle in lines[1:-1]:
        stripped = middle.strip(" \t\f\r")
        between.append(("comment", stripped) if stripped else ("blank",))
    if len(lines) > 1:
        tail = lines[-1].strip(" \t\f\r")
        if tail:  # the end of a file without a final line break
            between.append(("comment", tail))
    return trailing, between, len(lines) > 1


class _Layout:
    def __init__(self, toks: list[_Tok], chains: list[_Chain], width: int) -> None:
        self.toks, self.chains, self.width = toks, chains, width
        self.lines: list[_Line] = []
        self.where: dict[int, tuple[int, int]] = {}   # token -> (output line, column)
        self.stack: list[int] = []                   # open brackets (token indices)
        self.statement_indent = 0

    # ---------------------------------------------------------------- spacing
    def space(self, a: _Tok, b: _Tok) -> str:
        if a.label and b.label and not (a.text == ":" and a.type != "STRING"):
            return ""                                  # `block{s}-{i}:`, `conv1:`
        if a.label and a.text == "{":
            return ""
        if b.label and b.text == "}":
            return ""
        at, bt = (None if a.type in _LITERALS else a.text), (None if b.type in _LITERALS else b.text)
        if bt in (")", "]", ","):
            return ""
        if at in ("(", "["):
            return ""
        if bt == ":":
            return ""
        if bt == "(" and b.parent in ("call", "stage", "params", "repeat"):
            return ""
        if bt == "[" and b.parent == "input_decl":
            return ""
        if (at == "=" or bt == "=") and (a.parent == "keyword" if at == "=" else b.parent == "keyword"):
            return ""
        if at == "-" and a.parent == "neg":
            return ""
        return " "

    # ---------------------------------------------------------------- indentation
    def indent_of(self, i: int) -> int:
        tok = self.toks[i]
        if tok.statement:
            return INDENT * tok.depth
        if tok.block_brace:                      # a block's `}`
            return INDENT * tok.depth
        opener = self.stack[-1] if self.stack else None
        if tok.text == "->" and tok.type != "STRING" and tok.chain is not None:
            chain = self.chains[tok.chain]
            head_line, _ = self.where.get(chain.head, (None, None))
            if head_line is None:
                return self.statement_indent + INDENT
            if opener is not None and opener < chain.head:
                # inside brackets: under the chain's first `->` where it is on the head's line
                # (`(x -> a` / `-> b)`), else under the head (a repeat or seq body)
                first = chain.first_arrow
                if self.toks[opener].text != "{" and first != i and first in self.where:
                    line, column = self.where[first]
                    if line == head_line and self.lines[line].tokens[0] != first:
                        return column
                return self.where[chain.head][1]
            return self.lines[head_line].indent + INDENT
        if opener is not None:
            line, column = self.where[opener]
            hanging = self.lines[line].tokens[-1] == opener
            if tok.type not in _LITERALS and tok.text in _CLOSERS:
                return self.lines[line].indent if hanging else column + 1
            return self.lines[line].indent + INDENT if hanging else column + 1
        return self.statement_indent + INDENT

    # ---------------------------------------------------------------- placing tokens
    def place(self, group: list[int]) -> _Line:
        """Lay out one line of tokens (the indentation from the state), updating the state."""
        first = self.toks[group[0]]
        indent = self.indent_of(group[0])
        if first.statement:
            self.statement_indent = indent
        line = _Line(indent, list(group))
        number = len(self.lines)
        self.lines.append(line)
        parts: list[str] = []
        column = indent
        previous = None
        for i in group:
            tok = self.toks[i]
            if previous is not None:
                gap = self.space(previous, tok)
                parts.append(gap)
                column += len(gap)
            line.columns.append(column)
            self.where[i] = (number, column)
            parts.append(tok.text)
            column += len(tok.text)
            if tok.type not in _LITERALS:
                if tok.text in _OPENERS and not tok.block_brace and not tok.label:
                    self.stack.append(i)
                elif tok.text in _CLOSERS and not tok.block_brace and not tok.label and self.stack:
                    self.stack.pop()
            previous = tok
        line.code = " " * indent + "".join(parts)
        return line

    def run(self, groups: list[list[int]]) -> None:
        k = 0
        while k < len(groups):
            group = groups[k]
            saved = (list(self.stack), self.statement_indent, len(self.lines))
            line = self.place(group)
            if len(line.code) > self.width:
                split = self.split_point(line)
                if split is not None:
                    # undo, and lay the line out as two
                    self.stack, self.statement_indent = saved[0], saved[1]
                    del self.lines[saved[2]:]
                    for i in group:
                        self.where.pop(i, None)
                    groups[k:k + 1] = [group[:split], group[split:]]
                    continue
            k += 1

    def split_point(self, line: _Line) -> int | None:
        """Where to break an overlong line: before the outermost `->` whose prefix fits, else
        before the first outermost one; None where the line has no `->` to break at."""
        depth, candidates = 0, []
        for position, i in enumerate(line.tokens):
            tok = self.toks[i]
            if position > 0 and tok.text == "->" and tok.type not in _LITERALS:
                candidates.append((depth, position))
            if tok.type not in _LITERALS and not tok.block_brace and not tok.label:
                if tok.text in _OPENERS:
                    depth += 1
                elif tok.text in _CLOSERS:
                    depth -= 1
        if not candidates:
            return None
        outermost = min(d for d, _ in candidates)
        positions = [p for d, p in candidates if d == outermost]
        fitting = [p for p in positions
                   if line.columns[p - 1] + len(self.toks[line.tokens[p - 1]].text) <= self.width]
        return fitting[-1] if fitting else positions[0]


def _groups(toks: list[_Tok]) -> list[list[int]]:
    """The tokens split into lines: where the source breaks the line, and around a block's body."""
    groups: list[list[int]] = []
    for i, tok in enumerate(toks):
        previous = toks[i - 1] if i else None
        starts = (i == 0 or tok.newline or tok.block_brace and tok.text == "}"
                  or (previous is not None and previous.block_brace and previous.text == "{"))
        if starts:
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def format_text(text: str, file: str = "<string>", width: int = WIDTH) -> str:
    """`text` in the canonical layout. A spec that does not parse raises netspec's usual
    located NetspecError (from netspec.parser.parse); FormatterError is a bug of the formatter."""
    from netspec.parser import parse

    parse(text, file)          # netspec's own errors, located, for a spec that does not parse
    tree = _lark().parse(text)
    toks, chains = _tokens(tree)
    end_trailing, end_between = _gaps(text, toks)
    layout = _Layout(toks, chains, width)
    layout.run(_groups(toks))
    result = _assemble(layout, end_trailing, end_between)
    _verify(result, tree, _comment_list(toks, end_trailing, end_between), file)
    return result


def _assemble(layout: _Layout, end_trailing, end_between) -> str:
    """The code lines with the comments and blank lines between them, trailing comments placed."""
    toks = layout.toks
    out: list[_Line] = []

    def attach(comment: tuple[str, int]) -> None:   # onto the code line it ends
        for line in reversed(out):
            if line.kind == "code":
                line.comment, line.comment_column = comment
                return
        out.append(_Line(0, [], code=comment[0], kind="comment"))

    def add(items: list, indent: int) -> None:
        for item in items:
            if item[0] == "blank":
                out.append(_Line(0, [], kind="blank"))
            else:
                out.append(_Line(indent, [], code=" " * indent + item[1], kind="comment"))

    for line in layout.lines:
        first = toks[line.tokens[0]]
        if first.trailing is not None:
            attach(first.trailing)
        # a comment line takes the indentation of the code after it (before a block's `}`, the body's)
        body = first.block_brace and first.text == "}"
        add(first.between, INDENT * (first.depth + 1) if body else line.indent)
        out.append(line)
    if end_trailing is not None:
        attach(end_trailing)
    add(end_between, 0)

    def opens_block(line: _Line) -> bool:
        return line.kind == "code" and bool(line.tokens) and toks[line.tokens[-1]].block_brace \
            and toks[line.tokens[-1]].text == "{"

    def closes_block(line: _Line) -> bool:
        return line.kind == "code" and bool(line.tokens) and toks[line.tokens[0]].block_brace \
            and toks[line.tokens[0]].text == "}"

    # blank lines: at most one in a row; none at the ends, none just inside a block's braces
    kept: list[_Line] = []
    for k, line in enumerate(out):
        if line.kind == "blank":
            after = next((l for l in out[k + 1:] if l.kind != "blank"), None)
            if (not kept or kept[-1].kind == "blank" or opens_block(kept[-1]) or after is None
                    or closes_block(after)):
                continue
        kept.append(line)
    _place_comments(kept)
    text = []
    for line in kept:
        code = line.code.rstrip()
        if line.comment is not None:
            code += " " * (line.comment_column - len(code)) + line.comment
        text.append(code)
    return "\n".join(text) + "\n" if text else ""


def _place_comments(lines: list[_Line]) -> None:
    """Trailing comments: at their source column where the code allows, at least two spaces
    after the code; a run of adjacent lines whose comments shared a column keeps one column."""
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.comment is None:
            k += 1
            continue
        run = [line]
        while (k + len(run) < len(lines) and lines[k + len(run)].comment is not None
               and lines[k + len(run)].comment_column == line.comment_column):
            run.append(lines[k + len(run)])
        column = max(max(l.comment_column, len(l.code.rstrip()) + 2) for l in run)
        for l in run:
            l.comment_column = column
        k += len(run)


def _comment_list(toks: list[_Tok], end_trailing, end_between) -> list[str]:
    comments = []
    for tok in toks:
        if tok.trailing is not None:
            comments.append(tok.trailing[0])
        comments += [item[1] for item in tok.between if item[0] == "comment"]
    if end_trailing is not None:
        comments.append(end_trailing[0])
    return comments + [item[1] for item in end_between if item[0] == "comment"]


def _same_tree(a, b) -> bool:
    """Lark trees equal in rules and tokens (type and text), positions aside; iterative."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, Tree) != isinstance(y, Tree):
            return False
        if isinstance(x, Tree):
            xs = [c for c in x.children if getattr(c, "type", None) != "_NL"]   # line breaks aside
            ys = [c for c in y.children if getattr(c, "type", None) != "_NL"]
            if x.data != y.data or len(xs) != len(ys):
                return False
            stack.extend(zip(xs, ys))
        elif getattr(x, "type", None) != getattr(y, "type", None) or str(x) != str(y):
            return False
    return True


def _verify(after: str, tree: Tree, comments: list[str], file: str) -> None:
    """The formatted text parses to the same tree as the source and keeps every comment."""
    try:
        again = _lark().parse(after)
    except Exception as exc:  # any failure here is the formatter's bug, not the user's
        raise FormatterError(f"{file}: the formatted text does not parse ({type(exc).__name__})") from None
    if not _same_tree(again, tree):
        raise FormatterError(f"{file}: the formatted text parses to a different tree")
    toks, _ = _tokens(again)
    end_trailing, end_between = _gaps(after, toks)
    if _comment_list(toks, end_trailing, end_between) != comments:
        raise FormatterError(f"{file}: the formatted text lost or changed a comment")
