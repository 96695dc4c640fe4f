"""The VS Code extension in editors/vscode: its JSON files are valid and agree with each other,
and its TextMate grammar's regexes compile (Python's `re` reads the subset of Oniguruma they
use) and tokenise every spec under specs/ and examples/ that netspec parses with no gap: each
character that is not blank is in a token other than `invalid.illegal` (which marks what the
language has no place for, such as a look-alike dash), and the tokens that matter get the
expected scopes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((EXTENSION / "syntaxes" / "netspec.tmLanguage.json").read_text(encoding="utf-8"))


def _parses(path: Path) -> bool:
    from netspec.diagnostics import NetspecError
    from netspec.parser import parse

    try:
        parse(path.read_text(encoding="utf-8"), str(path))
    except (NetspecError, UnicodeDecodeError):
        return False
    return True


SPECS = [p for p in sorted((ROOT / "specs").rglob("*.net")) + sorted((ROOT / "examples").rglob("*.net"))
         if _parses(p)]


def _patterns() -> list[tuple[str, re.Pattern, dict]]:
    """The top-level patterns in order, includes resolved: (name, regex, rule)."""
    out = []
    for entry in GRAMMAR["patterns"]:
        key = entry["include"].lstrip("#")
        rule = GRAMMAR["repository"][key]
        out.append((key, re.compile(rule["match"]), rule))
    return out


PATTERNS = _patterns()


def tokenize(line: str) -> list[tuple[int, int, str]]:
    """A TextMate engine for a grammar of `match` rules alone: at each position the rule whose
    match starts first wins, the earlier rule on a tie; (start, end, scope) per scoped piece."""
    tokens, position = [], 0
    while position < len(line):
        best = None
        for _, pattern, rule in PATTERNS:
            found = pattern.search(line, position)
            if found and found.end() > found.start() and (best is None or found.start() < best[0].start()):
                best = (found, rule)
        if best is None:
            break
        found, rule = best
        if "name" in rule:
            tokens.append((found.start(), found.end(), rule["name"]))
        for group, capture in rule.get("captures", {}).items():
            if found.group(int(group)) is not None:
                tokens.append((found.start(int(group)), found.end(int(group)), capture["name"]))
        position = found.end()
    return tokens


def scope_at(line: str, text: str, nth: int = 0) -> str | None:
    index = -1
    for _ in range(nth + 1):
        index = line.index(text, index + 1)
    for start, end, scope in tokenize(line):
        if start <= index < end:
            return scope
    return None


def test_json_files_are_valid_and_agree():
    package = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    configuration = json.loads((EXTENSION / "language-configuration.json").read_text(encoding="utf-8"))
    assert configuration["comments"]["lineComment"] == "#"
    word = re.compile(configuration["wordPattern"])
    assert word.fullmatch("conv1") and word.fullmatch("-1.5e-3") and not word.fullmatch("a b")
    increase = re.compile(configuration["indentationRules"]["increaseIndentPattern"])
    decrease = re.compile(configuration["indentationRules"]["decreaseIndentPattern"])
    assert increase.match("block basic(x, planes) {") and not increase.match("repeat(2) { relu }")
    assert decrease.match("    }")
    assert package["main"] == "./extension.js" and (EXTENSION / "extension.js").is_file()
    assert "vscode-languageclient" in package["dependencies"]
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["id"] == grammar["language"] == "netspec" and ".net" in language["extensions"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"]
    assert (EXTENSION / grammar["path"]).is_file() and (EXTENSION / language["configuration"]).is_file()
    settings = package["contributes"]["configuration"]["properties"]
    assert settings["netspec.server.args"]["default"] == ["lsp"]
    extension = (EXTENSION / "extension.js").read_text(encoding="utf-8")
    for setting in settings:
        assert setting.removeprefix("netspec.") in extension, setting


def test_every_rule_is_used_and_compiles():
    included = {entry["include"].lstrip("#") for entry in GRAMMAR["patterns"]}
    assert included == set(GRAMMAR["repository"])
    for name, rule in GRAMMAR["repository"].items():
        pattern = re.compile(rule["match"])
        assert "name" in rule or rule.get("captures"), name
        for group in rule.get("captures", {}):
            assert int(group) <= pattern.groups, (name, group)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_specs_tokenise_without_gaps(spec: Path):
    for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), 1):
        covered = [False] * len(line)
        for start, end, scope in tokenize(line):
            for i in range(start, end):
                covered[i] = covered[i] or scope != "invalid.illegal.netspec"
        gaps = [i for i, ch in enumerate(line) if not ch.isspace() and not covered[i]]
        assert not gaps, f"{spec.name}:{number}:{gaps[0] + 1}: {line!r} has characters in no token"


def test_scopes_of_the_pieces_that_matter():
    line = 'stem = image -> conv1: conv(64, 7, stride=2, padding="same", bias=false) -> relu  # a comment'
    assert scope_at(line, "stem") == "variable.other.definition.netspec"
    assert scope_at(line, "conv1") == "entity.name.label.netspec"
    assert scope_at(line, "conv(") == "entity.name.function.call.netspec"
    assert scope_at(line, "stride") == "variable.parameter.netspec"
    assert scope_at(line, '"same"') == "string.quoted.netspec"
    assert scope_at(line, "false") == "constant.language.boolean.netspec"
    assert scope_at(line, "64") == "constant.numeric.netspec"
    assert scope_at(line, "relu") == "entity.name.function.call.netspec"
    assert scope_at(line, "->") == "keyword.operator.arrow.netspec"
    assert scope_at(line, "# a comment") == "comment.line.number-sign.netspec"
    line = "input image: f32[N, 224, 224, 3] NHWC"
    assert scope_at(line, "input") == "keyword.other.input.netspec"
    assert scope_at(line, "image") == "variable.other.input.netspec"
    assert scope_at(line, "f32") == "storage.type.dtype.netspec"
    assert scope_at(line, "NHWC") == "storage.modifier.layout.netspec"
    line = "block basic(x, planes, stride = 1) {"
    assert scope_at(line, "block") == "keyword.other.block.netspec"
    assert scope_at(line, "basic") == "entity.name.function.block.netspec"
    line = "    y = x -> repeat(blocks - 1) { basic(planes) } if down else x"
    assert scope_at(line, "repeat") == "keyword.control.netspec"
    assert scope_at(line, "if") == "keyword.control.netspec"
    assert scope_at(line, "basic") == "entity.name.function.call.netspec"
    assert scope_at("network resnet50(classes = 1000)", "resnet50") == "entity.name.type.network.netspec"
    assert scope_at('use "lib/resnet.net"', "use") == "keyword.other.statement.netspec"
    assert scope_at("output logits", "output") == "keyword.other.statement.netspec"
    assert scope_at("x = 1.5e-3 ** 2", "1.5e-3") == "constant.numeric.netspec"
    assert scope_at("features = image \u2013> conv(8, 3)", "\u2013") == "invalid.illegal.netspec"
