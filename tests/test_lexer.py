"""The Pygments lexer (netspec.lexer): registered through its entry point, and no `Error`
token on any spec netspec's own lexer accepts, while a character netspec refuses is one."""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from lark import Lark
from lark.exceptions import UnexpectedCharacters
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String

from netspec.lexer import NetspecLexer
from netspec.parser import grammar_path

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for folder in ("specs", "examples", "tests") for p in (ROOT / folder).rglob("*.net"))


@lru_cache(maxsize=1)
def _netspec_lexer() -> Lark:
    return Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic")


def lexically_valid(text: str) -> bool:
    """netspec's own terminals cover the whole text (whether or not it parses)."""
    try:
        for _ in _netspec_lexer().lex(text):
            pass
    except UnexpectedCharacters:
        return False
    return True


def test_the_corpus_is_there():
    assert len(SPECS) > 300


def test_error_tokens_exactly_where_netspec_refuses_a_character():
    """Every spec of specs/, examples/ and tests/ (the bad corpus included): a file netspec's
    lexer accepts has no Error token, one it refuses (`;`, `^`, `nn.Conv2d`, look-alikes) has."""
    lexer = NetspecLexer()
    wrong = []
    for path in SPECS:
        text = path.read_text(encoding="utf-8")
        errors = [(i, v) for i, t, v in lexer.get_tokens_unprocessed(text) if t is Error]
        if bool(errors) == lexically_valid(text):
            wrong.append((str(path.relative_to(ROOT)), errors[:3]))
    assert not wrong


def test_found_through_the_entry_point():
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("netspec"), NetspecLexer)
    assert isinstance(get_lexer_for_filename("resnet18.net"), NetspecLexer)


def test_pygmentize_highlights_a_spec():
    result = subprocess.run([sys.executable, "-m", "pygments", "-l", "netspec", "-f", "html",
                             str(ROOT / "specs" / "lenet5.net")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '<span class="nb">conv</span>' in result.stdout
    assert 'class="err"' not in result.stdout


@pytest.mark.parametrize("source, expected", [
    ("network lenet5(classes = 10)", [(Keyword.Declaration, "network"), (Name.Class, "lenet5"),
                                      (Name, "classes"), (Operator, "="), (Number.Integer, "10")]),
    ("input x: f32[N, 3, 224, 224] NHWC", [(Keyword.Declaration, "input"), (Name.Variable, "x"),
                                           (Keyword.Type, "f32"), (Name, "NHWC")]),
    ("y = x -> conv1: conv(64, 3, bias=false) -> relu  # c",
     [(Name.Label, "conv1"), (Name.Builtin, "conv"), (Operator, "->"), (Keyword.Constant, "false"),
      (Name.Builtin, "relu"), (Comment.Single, "# c")]),
    ("block basic(x, planes, stride = 1) {", [(Keyword.Declaration, "block"), (Name.Function, "basic"),
                                              (Name, "planes"), (Punctuation, "{")]),
    ("block stem(x) {\n    return x\n}\ny = x -> stem", [(Name.Function, "stem")] * 2),
    ('use "lib/resnet.net"', [(Keyword.Namespace, "use"), (String.Double, '"lib/resnet.net"')]),
    ("a = block{s}-{i}: basic(2 ** -1, 1.5e-3) if not down else x",
     [(Name.Label, "block"), (Name.Function, "basic"), (Operator, "**"), (Number.Float, "1.5e-3"),
      (Keyword, "if"), (Operator.Word, "not"), (Keyword, "else")]),
])
def test_token_kinds(source, expected):
    tokens = [(t, v) for t, v in NetspecLexer().get_tokens(source) if v.strip()]
    for pair in set(expected):
        assert tokens.count(pair) >= expected.count(pair), (pair, tokens)
