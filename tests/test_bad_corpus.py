"""The corpus of bad specs in tests/bad/: one small file per mistake a person makes, each run
through `netspec check` (in process) and held to the diagnostics its header promises.

Header format: the comment lines at the very top of an entry file.

    # expect: SEVERITY [FILE:]LINE:COLUMN MESSAGE
    # label: [FILE:]LINE:COLUMN MESSAGE
    # also: TEXT
    # reject: TEXT
    # exit: CODE
    # free text: what the person did wrong

- `expect` (one or more): a diagnostic of SEVERITY (`error` or `warning`) located at
  LINE:COLUMN of this file, or of FILE (relative to this file's folder: another file of a
  multi-file case), whose message (the first line, after `error: `) contains MESSAGE. Every
  reported diagnostic must be expected and every expectation met: no extra (cascading) errors
  or warnings.
- `label` (zero or more, after an `expect`): that diagnostic has a secondary label at
  [FILE:]LINE:COLUMN whose message contains MESSAGE (checked in `--json`'s `labels`).
- `also`: TEXT appears somewhere in the output (a hint, a rule, a note).
- `reject`: TEXT appears nowhere in the output (a misleading hint, leaked internals).
- `exit`: the exit code; by default 1 when an error is expected, else 0.

Every run must be free of tracebacks and internal errors. A file with an `expect` line is an
entry; the other files of a multi-file case (in its own subfolder, e.g. import_cycle/a.net and
b.net) carry no header. Line and column numbers are counted on the files themselves (they were
written with the caret positions marked, not copied from netspec's output).

Cases where netspec's diagnostic falls short of what its header asks for are in XFAIL, with
the reason; they are strict, so fixing netspec makes them pass loudly and the entry goes.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netspec.cli import main

BAD = Path(__file__).resolve().parent / "bad"
EXPECT = re.compile(r"^(error|warning) (?:(\S+?):)?(\d+):(\d+) (.+)$")
LABEL = re.compile(r"^(?:(\S+?):)?(\d+):(\d+) (.+)$")
HEADER_KEYS = ("expect", "label", "also", "reject", "exit")

# case (relative to tests/bad) -> why netspec does not meet its header yet (none today: keep
# the mechanism for the next shortfall found)
XFAIL: dict[str, str] = {}


@dataclass
class LabelExpect:
    file: str | None
    line: int
    column: int
    message: str


@dataclass
class Expect:
    severity: str
    file: str | None
    line: int
    column: int
    message: str
    labels: list[LabelExpect] = field(default_factory=list)


@dataclass
class Case:
    path: Path
    expects: list[Expect] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)
    exit: int | None = None

    @property
    def exit_code(self) -> int:
        if self.exit is not None:
            return self.exit
        return 1 if any(e.severity == "error" for e in self.expects) else 0


def header_lines(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def parse_header(path: Path) -> Case:
    case = Case(path)
    for line in header_lines(path):
        key, sep, value = line[1:].strip().partition(":")
        if not sep or key not in HEADER_KEYS:
            continue  # free text
        value = value.strip()
        if key == "expect":
            m = EXPECT.match(value)
            assert m, f"{path}: malformed expect line {line!r}"
            severity, file, ln, col, message = m.groups()
            case.expects.append(Expect(severity, file, int(ln), int(col), message))
        elif key == "label":
            m = LABEL.match(value)
            assert m and case.expects, f"{path}: malformed or misplaced label line {line!r}"
            file, ln, col, message = m.groups()
            case.expects[-1].labels.append(LabelExpect(file, int(ln), int(col), message))
        elif key == "also":
            case.also.append(value)
        elif key == "reject":
            case.reject.append(value)
        else:
            case.exit = int(value)
    return case


def all_spec_files() -> list[Path]:
    return sorted(BAD.rglob("*.net"))


def is_entry(path: Path) -> bool:
    return any(line[1:].strip().startswith("expect:") for line in header_lines(path))


def entries() -> list[Path]:
    return [p for p in all_spec_files() if is_entry(p)]


def case_id(path: Path) -> str:
    return path.relative_to(BAD).as_posix()


def params():
    out = []
    for path in entries():
        name = case_id(path)
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[name])] if name in XFAIL else []
        out.append(pytest.param(path, id=name, marks=marks))
    return out


@dataclass
class Reported:
    severity: str
    message: str
    location: tuple[str, int, int] | None
    text: str


def reported(stderr: str) -> list[Reported]:
    """The diagnostics in `netspec check`'s text output: a header line `error: ...` or
    `warning: ...`, then `  --> FILE:LINE:COLUMN` where located."""
    found = []
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(error|warning): (.*)$", line)
        if not m:
            continue
        location = None
        if i + 1 < len(lines):
            loc = re.match(r"^\s+--> (.+):(\d+):(\d+)$", lines[i + 1])
            if loc:
                location = (loc.group(1), int(loc.group(2)), int(loc.group(3)))
        end = next((j for j in range(i + 1, len(lines)) if re.match(r"^(error|warning): ", lines[j])),
                   len(lines))
        found.append(Reported(m.group(1), m.group(2), location, "\n".join(lines[i:end])))
    return found


def run_check(path: Path, capsys) -> tuple[int, str, str]:
    try:
        code = main(["check", str(path)])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def same_file(shown: str, wanted: Path) -> bool:
    return Path(shown).resolve() == wanted.resolve()


def matches(expect: Expect, entry: Path, diag: Reported) -> bool:
    if diag.severity != expect.severity or diag.location is None:
        return False
    shown, line, column = diag.location
    wanted = entry if expect.file is None else entry.parent / expect.file
    return (same_file(shown, wanted) and (line, column) == (expect.line, expect.column)
            and expect.message in diag.message)


@pytest.mark.parametrize("path", params())
def test_bad_spec(path: Path, capsys):
    case = parse_header(path)
    code, out, err = run_check(path, capsys)
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text
    diagnostics = reported(err)
    unmatched = list(diagnostics)
    for expect in case.expects:
        hit = next((d for d in unmatched if matches(expect, path, d)), None)
        where = f"{expect.file + ':' if expect.file else ''}{expect.line}:{expect.column}"
        assert hit is not None, (f"expected {expect.severity} at {where} containing "
                                 f"{expect.message!r}; netspec printed:\n{err}")
        unmatched.remove(hit)
    assert not unmatched, "unexpected diagnostics:\n" + "\n\n".join(d.text for d in unmatched)
    assert code == case.exit_code, f"exit code {code}, expected {case.exit_code}\n{err}"
    if any(expect.labels for expect in case.expects):
        check_labels(case, path, capsys)
    for needle in case.also:
        assert needle in text, f"{needle!r} not in the output:\n{text}"
    for needle in case.reject:
        assert needle not in text, f"{needle!r} should not be in the output:\n{text}"
    if code == 0:
        assert "Outputs" in out, out  # a warnings-only spec still prints its table


def check_labels(case: Case, path: Path, capsys) -> None:
    """Each expected label is a secondary label of its diagnostic in `netspec check --json`."""
    try:
        main(["check", "--json", str(path)])
    except SystemExit:
        pass
    diagnostics = json.loads(capsys.readouterr().out)["diagnostics"]
    for expect in case.expects:
        if not expect.labels:
            continue
        wanted = path if expect.file is None else path.parent / expect.file
        diag = next(d for d in diagnostics if d.get("line") == expect.line and d.get("column") == expect.column
                    and same_file(d["file"], wanted) and expect.message in d["message"])
        secondary = [label for label in diag.get("labels", []) if not label["primary"]]
        for label in expect.labels:
            where = path if label.file is None else path.parent / label.file
            assert any(same_file(l["file"], where) and (l["line"], l["column"]) == (label.line, label.column)
                       and label.message in l["message"] for l in secondary), \
                f"no label at {label.line}:{label.column} containing {label.message!r}: {secondary}"


# ================================================================ the corpus itself


def test_corpus_is_large_enough():
    assert len(entries()) >= 30


def test_every_file_belongs_to_a_case():
    """No orphans: every file in tests/bad is a spec; a top-level spec is an entry (has an
    `expect` header); a subfolder is one multi-file case with exactly one entry."""
    for path in sorted(BAD.rglob("*")):
        if path.is_dir():
            assert path.parent == BAD, f"{path}: cases are one level deep"
            specs = sorted(path.glob("*.net"))
            assert sum(map(is_entry, specs)) == 1, f"{path}: one entry file per multi-file case"
            assert len(specs) >= 2, f"{path}: a folder is for a multi-file case"
            continue
        assert path.suffix == ".net", f"{path}: not a spec"
        if path.parent == BAD:
            assert is_entry(path), f"{path}: no `# expect:` header"


def test_headers_parse():
    for path in entries():
        case = parse_header(path)
        assert case.expects, path
        lines = len(path.read_text(encoding="utf-8").splitlines())
        for expect in case.expects:
            target = path if expect.file is None else path.parent / expect.file
            assert target.is_file(), f"{path}: {expect.file} does not exist"
            if expect.file is None:
                assert 1 <= expect.line <= lines, f"{path}: line {expect.line} is past the end"
        # a misspelt key (`# expct: ...`) would silently become free text
        for line in header_lines(path):
            m = re.match(r"^#\s*(\w+):", line)
            if m and m.group(1) not in HEADER_KEYS:
                assert not difflib.get_close_matches(m.group(1), HEADER_KEYS, cutoff=0.7), \
                    f"{path}: misspelt header key in {line!r}"


def test_xfail_entries_name_real_cases():
    names = {case_id(p) for p in entries()}
    assert set(XFAIL) <= names, set(XFAIL) - names
