"""A Pygments lexer for netspec's `.net` files: `pygmentize -l netspec FILE.net`, and the
README's ```netspec code blocks.

Registered as the `pygments.lexers` entry point `netspec` (pyproject.toml), so Pygments finds it
once netspec is installed. Nothing on `netspec check`'s path imports this module: it imports
Pygments and the layer registry.

What it marks: keywords (`network`, `input`, `output`, `block`, `return`, `use`, `repeat`, `seq`,
`if`, `else`), the word operators (`and`, `or`, `not`), `true` and `false`, dtypes (`f32`,
`i64`, ...), the layer kinds of `netspec.layers` and the built-in functions (`channels`,
`floor`, ...) as builtins, the name a `network` line defines, a block's name (where it is
defined and wherever the file uses it), labels (`conv1:`,
`block{s}-{i}:`, `"features.0":`), numbers, strings, comments, operators (`->`, `=`, `**`,
`//`, comparisons, ...) and punctuation. A character that netspec's own lexer refuses (`;`,
`^`, `.`, a look-alike such as `→` or a no-break space) is an `Error` token; a file netspec can
lex has none.
"""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (Comment, Error, Keyword, Name, Number, Operator, Punctuation, String,
                            Whitespace)

from netspec.functions import FUNCTIONS, QUERIES
from netspec.layers import LAYERS
from netspec.owned import OWNED
from netspec.types import DTYPES

__all__ = ["NetspecLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_KEYWORDS = ("network", "input", "output", "block", "return", "use", "repeat", "seq", "if", "else")
_BUILTINS = tuple(sorted(set(LAYERS) | set(FUNCTIONS) | set(QUERIES) | set(OWNED)))


class NetspecLexer(RegexLexer):
    """netspec's network description language (`.net` files)."""

    name = "netspec"
    aliases = ["netspec"]
    filenames = ["*.net"]
    mimetypes = ["text/x-netspec"]
    url = "https://github.com/netspec/netspec"
    flags = re.MULTILINE

    def get_tokens_unprocessed(self, text, stack=("root",)):
        """The regex lexer's tokens, a name that a `block` line of this text defines marked as
        a function wherever it is used (`-> basic` without arguments too)."""
        blocks = set(re.findall(r"\bblock[ \t\f]+(" + _NAME + ")", text))
        for index, token, value in super().get_tokens_unprocessed(text, stack):
            yield index, (Name.Function if token is Name and value in blocks else token), value

    tokens = {
        "root": [
            (r"[ \t\f\r\n]+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            # `network name`, `block name`: the name they define
            (r"(network)([ \t\f]+)(" + _NAME + ")", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"(block)([ \t\f]+)(" + _NAME + ")", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            # `input name: dtype[...]`
            (r"(input)([ \t\f]+)(" + _NAME + ")", bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            # a label's first name before its `{...}` (`block{s}-{i}:`), `seq {` aside
            (r"(?!seq\{)(" + _NAME + r")(?=\{)", Name.Label),
            (r"use\b", Keyword.Namespace),
            (words(_KEYWORDS, suffix=r"\b"), Keyword),
            (words(("and", "or", "not"), suffix=r"\b"), Operator.Word),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (words(tuple(DTYPES), suffix=r"\b"), Keyword.Type),
            # a label: `conv1:`, `"features.0":`, `denselayer{i + 1}:` (the name before its `{`)
            (r'("(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')([ \t\f]*)(:)',
             bygroups(Name.Label, Whitespace, Punctuation)),
            (r"(" + _NAME + r")([ \t\f]*)(:)", bygroups(Name.Label, Whitespace, Punctuation)),
            (words(_BUILTINS, suffix=r"\b"), Name.Builtin),
            (r"(" + _NAME + r")(?=[ \t\f]*\()", Name.Function),
            (_NAME, Name),
            include("literals"),
            (r"->|\*\*|//|==|!=|<=|>=|[-+*/%@<>=]", Operator),
            (r"[()\[\]{},:]", Punctuation),
            (r".", Error),  # anything netspec's lexer refuses
        ],
        "literals": [
            (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", Number.Float),
            (r"[0-9]+(_[0-9]+)*", Number.Integer),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            (r"'(?:[^'\\\n]|\\.)*'", String.Single),
        ],
    }
