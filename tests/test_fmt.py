"""`netspec fmt` and netspec.formatter: the canonical layout, idempotent, never a change of
meaning (check --json of the formatted spec is the original's, locations aside), comments
kept, the bundled specs kept formatted, the command's --check / --diff / in-place behaviour,
and mutants of the fuzzer formatted without a crash."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_mutations as fm
from netspec.commands import main
from netspec.compiler import compile_file
from netspec.diagnostics import NetspecError
from netspec.formatter import FormatterError, format_text
from netspec.report import to_json

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted([*(ROOT / "specs").rglob("*.net"), *(ROOT / "examples").glob("*.net")])
TESTS = sorted((ROOT / "tests").rglob("*.net"))


@lru_cache(maxsize=None)
def formatted(path: Path) -> str | None:
    """The spec at `path` formatted; None where it does not parse."""
    try:
        return format_text(path.read_text(encoding="utf-8"), str(path))
    except NetspecError:
        return None


def parses(path: Path) -> bool:
    return formatted(path) is not None


@lru_cache(maxsize=1)
def formattable() -> list[Path]:
    return [p for p in BUNDLED + TESTS if parses(p)]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------- the layout

def test_spacing_indentation_and_blocks():
    source = ("network  n( classes=10,width = 2 )\n"
              "input x:f32[N,3,8,8]   NCHW\n"
              "block b(x,k = 2) { return x->relu }\n"
              "y=x->b(k=-1*2**-1)->c1:conv( 8,3 ,stride = 2)->block{k}-{k+1}: relu\n"
              "z = y -> repeat(2, i){l{i}:relu} -> seq{relu->relu} if not (1<2) else y\n"
              "a, b = z -> chunk( 2 )\n"
              "output a,b\n")
    assert format_text(source) == (
        "network n(classes = 10, width = 2)\n"
        "input x: f32[N, 3, 8, 8] NCHW\n"
        "block b(x, k = 2) {\n"
        "    return x -> relu\n"
        "}\n"
        "y = x -> b(k=-1 * 2 ** -1) -> c1: conv(8, 3, stride=2) -> block{k}-{k + 1}: relu\n"
        "z = y -> repeat(2, i) { l{i}: relu } -> seq { relu -> relu } if not (1 < 2) else y\n"
        "a, b = z -> chunk(2)\n"
        "output a, b\n")


def test_continuation_lines():
    source = ("network n\n"
              "input x: f32[N, 3, 8, 8]\n"
              "block b(x, planes, stride = 1,\n"
              "  down = false) {\n"
              "  y = x -> conv(planes, 3)\n"
              "          -> relu\n"
              "  z = (y -> conv(planes, 1)\n"
              "   -> relu) if down else\n"
              "   y\n"
              "  return z -> seq {\n"
              "  relu\n"
              "  -> relu\n"
              "  }\n"
              "}\n"
              "y = x -> conv(8, 3,\n"
              "  padding=1)\n"
              "output y\n")
    assert format_text(source) == (
        "network n\n"
        "input x: f32[N, 3, 8, 8]\n"
        "block b(x, planes, stride = 1,\n"
        "        down = false) {\n"
        "    y = x -> conv(planes, 3)\n"
        "        -> relu\n"
        "    z = (y -> conv(planes, 1)\n"
        "           -> relu) if down else\n"
        "        y\n"
        "    return z -> seq {\n"
        "        relu\n"
        "        -> relu\n"
        "    }\n"
        "}\n"
        "y = x -> conv(8, 3,\n"
        "              padding=1)\n"
        "output y\n")


def test_comments_and_blank_lines():
    source = ("\n\n# heading\n\n\n\nnetwork n   # the name\n"
              "input x: f32[N, 3, 8, 8]     # aligned\n"
              "input yy: f32[N, 3, 8, 8]    # aligned\n"
              "block b(x) {\n\n     # inside\n  return x\n\n      # before the brace\n\n}\n"
              "y = x # one space\n"
              "      # a comment line in a chain\n"
              "    -> relu\n"
              "output y\n\n\n# the end")
    assert format_text(source) == (
        "# heading\n\n"
        "network n   # the name\n"
        "input x: f32[N, 3, 8, 8]     # aligned\n"
        "input yy: f32[N, 3, 8, 8]    # aligned\n"
        "block b(x) {\n    # inside\n    return x\n\n    # before the brace\n}\n"
        "y = x  # one space\n"
        "    # a comment line in a chain\n"
        "    -> relu\n"
        "output y\n\n# the end\n")


def test_aligned_comments_stay_aligned_when_code_grows():
    source = "network n\ninput x: f32[N,3,8,8]  # a\ny = x->relu            # b\noutput y\n"
    assert format_text(source).splitlines()[1:3] == ["input x: f32[N, 3, 8, 8]  # a",
                                                      "y = x -> relu             # b"]


def test_a_long_chain_is_broken_before_an_arrow():
    stages = " -> ".join(f"conv({8 + k}, 3, padding=1)" for k in range(8))
    source = f"network n\ninput x: f32[N, 3, 64, 64]\ny = x -> {stages}\noutput y\n"
    lines = format_text(source).splitlines()
    assert max(map(len, lines)) <= 120
    assert lines[2].startswith("y = x -> conv(8, 3, padding=1)")
    assert all(line.startswith("    -> ") for line in lines[3:-1])
    assert format_text(source, width=60).count("\n") > len(lines)


def test_line_endings_tabs_and_an_empty_file():
    assert format_text("network n\r\ninput x: f32[N, 3]\r\n\ty = x\r\noutput y") == \
        "network n\ninput x: f32[N, 3]\ny = x\noutput y\n"
    assert format_text("") == ""
    assert format_text("# only a comment") == "# only a comment\n"


def test_a_spec_that_does_not_parse_is_the_usual_located_error():
    with pytest.raises(NetspecError) as caught:
        format_text("network n\ny == x -> relu\n", "bad.net")
    span = caught.value.diagnostics[0].span
    assert (span.file, span.line, span.column) == ("bad.net", 2, 3)


# ---------------------------------------------------------------- over every spec

def test_idempotent_on_every_spec():
    unstable = []
    for path in formattable():
        once = formatted(path)
        if format_text(once, str(path)) != once:
            unstable.append(_rel(path))
    assert len(formattable()) > 300 and not unstable


_LOCATION = re.compile(r"(\.net:\d+:\d+|\bline \d+|\bcolumn \d+|\blines \d+)")


def _check_json(path: Path, text: str | None = None) -> dict:
    result = compile_file(path, text=text)
    data = to_json(result.graph if result.ok else None, result.diagnostics.items, str(path))

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k not in ("line", "column", "end_line", "end_column")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, str):
            return _LOCATION.sub("<at>", value)
        return value
    return strip(json.loads(json.dumps(data)))


def test_formatting_never_changes_what_check_json_says():
    """check --json of each formatted spec (of specs/, examples/ and the parseable ones of
    tests/) equals the original's, line and column numbers aside. The bundled specs are
    formatted already, so each is also formatted after its spaces are shuffled and at a width
    of 60 columns, which breaks many more lines (and moves what follows)."""
    changed, moved = [], 0
    for k, path in enumerate(formattable()):
        text = path.read_text(encoding="utf-8")
        variant = format_text(_jitter(text, random.Random(k)), str(path), width=60)
        moved += variant.count("\n") != text.count("\n")
        original = _check_json(path)
        if any(_check_json(path, other) != original for other in {formatted(path), variant} - {text}):
            changed.append(_rel(path))
    assert not changed
    assert moved > 50


def test_check_json_through_the_command_line(tmp_path):
    """The same, as a user runs it, for one spec whose formatting changes lines."""
    original = ROOT / "tests" / "bad" / "merge_residual_without_downsample.net"
    copy = tmp_path / original.name
    copy.write_text(original.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["fmt", str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") != original.read_text(encoding="utf-8")

    def check(path: Path) -> dict:
        run = subprocess.run([sys.executable, "-m", "netspec", "check", "--json", path.name],
                             cwd=path.parent, capture_output=True, text=True)
        return json.loads(_LOCATION.sub("<at>", re.sub(r'"(end_)?(line|column)": \d+', '"x": 0', run.stdout)))
    assert check(original) == check(copy)


def test_the_bundled_specs_are_formatted(capsys):
    """`netspec fmt --check` over specs/ (specs/lib/ too) and examples/ changes nothing."""
    files = [str(p) for p in BUNDLED if parses(p)]
    assert len(files) == len(BUNDLED) - 1   # all but examples/pasted.net, a look-alike on purpose
    assert main(["fmt", "--check", *files]) == 0, capsys.readouterr()


def test_no_comment_is_lost():
    for path in formattable():
        text = path.read_text(encoding="utf-8")
        before = [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line and '"' not in line]
        after = [line.split("#", 1)[1].strip() for line in formatted(path).splitlines()
                 if "#" in line and '"' not in line]
        assert before == after, _rel(path)


# ---------------------------------------------------------------- whitespace never matters

def _jitter(text: str, rng: random.Random) -> str:
    """`text` with random spaces added between the tokens of each line and before each line."""
    from netspec.formatter import _lark, _tokens

    toks, _ = _tokens(_lark().parse(text))
    out, position = [], 0
    for tok in toks:
        gap = text[position:tok.start]
        if "\n" not in gap:
            gap += " " * rng.choice([0, 0, 1, 2, 5])
        else:
            gap = gap[:gap.rindex("\n") + 1] + " " * rng.choice([0, 1, 3, 4, 9]) + gap[gap.rindex("\n") + 1:]
        out.append(gap + text[tok.start:tok.end])
        position = tok.end
    return "".join(out) + text[position:]


def _comparable(text: str) -> str:
    return re.sub(r"(?<=\S) +#", " #", text)   # a trailing comment's column follows the source


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(BUNDLED) - 1), seed=st.integers(0, 2 ** 32))
def test_the_layout_does_not_depend_on_the_spaces(index, seed):
    path = BUNDLED[index]
    text = path.read_text(encoding="utf-8")
    if not parses(path):
        return
    jittered = _jitter(text, random.Random(seed))
    assert _comparable(format_text(jittered)) == _comparable(format_text(text))


def test_mutants_of_the_fuzzer_format_without_a_crash():
    """Seeded mutants of every bundled spec (tests/fuzz_mutations.py): each either is a located
    NetspecError or formats, idempotently, to the same tree (format_text checks that itself)."""
    specs = [p for p in BUNDLED if parses(p)]
    siblings = tuple(p.stem for p in specs)
    formatted = 0
    for k in range(300):
        base = specs[k % len(specs)]
        rng = random.Random(f"fmt:{k}")
        files, edits = fm.mutate({"mutant.net": base.read_bytes()}, "mutant.net", rng, siblings)
        try:
            text = files["mutant.net"].decode("utf-8")
        except UnicodeDecodeError:
            continue
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        try:
            once = format_text(text, "mutant.net")
        except NetspecError as exc:
            assert exc.diagnostics and exc.diagnostics[0].message, (base.name, edits)
            continue
        except FormatterError as exc:  # pragma: no cover - a formatter bug, shown with its case
            pytest.fail(f"{base.name} {edits}: {exc}")
        assert format_text(once, "mutant.net") == once, (base.name, edits)
        formatted += 1
    assert formatted > 60


# ---------------------------------------------------------------- the command

UGLY = "network n\ninput x:f32[N,3,8,8]\ny=x->relu # c\noutput y\n"
PRETTY = "network n\ninput x: f32[N, 3, 8, 8]\ny = x -> relu  # c\noutput y\n"


def test_check_lists_what_would_change_and_exits_1(tmp_path, capsys):
    ugly, pretty = tmp_path / "ugly.net", tmp_path / "pretty.net"
    ugly.write_text(UGLY)
    pretty.write_text(PRETTY)
    assert main(["fmt", "--check", str(ugly), str(pretty)]) == 1
    out = capsys.readouterr().out
    assert f"would reformat {ugly}" in out and str(pretty) not in out
    assert ugly.read_text() == UGLY
    assert main(["fmt", "--check", str(pretty)]) == 0


def test_diff_prints_a_unified_diff_and_changes_nothing(tmp_path, capsys):
    ugly = tmp_path / "ugly.net"
    ugly.write_text(UGLY)
    assert main(["fmt", "--diff", str(ugly)]) == 0
    out = capsys.readouterr().out
    assert "\n-y=x->relu # c\n" in out and "\n+y = x -> relu  # c\n" in out
    assert out.startswith(f"--- {ugly} (original)\n+++ {ugly} (formatted)\n")
    assert ugly.read_text() == UGLY
    assert main(["fmt", "--diff", "--check", str(ugly)]) == 1


def test_rewrites_in_place_only_what_changes(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    ugly, pretty = tmp_path / "sub" / "ugly.net", tmp_path / "pretty.net"
    ugly.write_text(UGLY)
    pretty.write_text(PRETTY)
    ugly.chmod(0o640)
    before = pretty.stat().st_mtime_ns, pretty.stat().st_ino
    assert main(["fmt", str(tmp_path)]) == 0   # a folder: every .net file under it
    out = capsys.readouterr()
    assert ugly.read_text() == PRETTY and f"reformatted {ugly}" in out.out
    assert (pretty.stat().st_mtime_ns, pretty.stat().st_ino) == before
    assert ugly.stat().st_mode & 0o777 == 0o640
    assert "1 file reformatted, 1 unchanged" in out.err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["pretty.net", "sub", "ugly.net"]  # no leftovers


def test_a_spec_with_errors_is_reported_and_left_alone(tmp_path, capsys):
    bad, ugly = tmp_path / "bad.net", tmp_path / "ugly.net"
    bad.write_text("network n\ny == x -> relu\n")
    ugly.write_text(UGLY)
    assert main(["fmt", str(bad), str(ugly)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:3" in err and "`==` compares two values" in err and "Traceback" not in err
    assert bad.read_text() == "network n\ny == x -> relu\n"
    assert ugly.read_text() == PRETTY   # the others are still formatted


def test_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["fmt", str(tmp_path / "missing.net")])
    assert caught.value.code == 2 and "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["fmt"])
    assert caught.value.code == 2
    not_utf8 = tmp_path / "latin1.net"
    not_utf8.write_bytes(b"network caf\xe9\n")
    assert main(["fmt", str(not_utf8)]) == 1
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_standard_input_to_standard_output():
    result = subprocess.run([sys.executable, "-m", "netspec", "fmt", "-"], input=UGLY,
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == PRETTY
    check = subprocess.run([sys.executable, "-m", "netspec", "fmt", "--check", "-"], input=UGLY,
                           capture_output=True, text=True)
    assert check.returncode == 1 and "would reformat <stdin>" in check.stdout


def test_help_describes_the_layout():
    result = subprocess.run([sys.executable, "-m", "netspec", "fmt", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "--check" in result.stdout and "--diff" in result.stdout and "exit codes" in result.stdout


def test_the_readme_quotes_real_output(tmp_path):
    """The README's `netspec fmt --diff messy.net`, run on its own messy.net."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## `netspec fmt`"):]
    messy = re.search(r"```netspec\n(# a messy spec.*?)```", section, re.S).group(1)
    quoted = re.search(r"```\n\$ netspec fmt --diff messy.net\n(.*?)```", section, re.S).group(1)
    (tmp_path / "messy.net").write_text(messy, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "netspec", "fmt", "--diff", "messy.net"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == quoted
    assert compile_file(tmp_path / "messy.net").ok


def test_a_formatter_bug_is_exit_3_and_touches_nothing(tmp_path, capsys, monkeypatch):
    import netspec.formatter

    def broken(text, file="<string>", width=120):
        raise FormatterError(f"{file}: the formatted text parses to a different tree")
    monkeypatch.setattr(netspec.formatter, "format_text", broken)
    ugly = tmp_path / "ugly.net"
    ugly.write_text(UGLY)
    assert main(["fmt", str(ugly)]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err and ugly.read_text() == UGLY
