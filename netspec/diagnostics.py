"""Source spans, located diagnostics and their rendering.

Every stage reports problems the same way: it adds a `Diagnostic` (message, primary span, the
layer, the rule that failed, a hint) to a `Diagnostics` collection and carries on where it can,
so one run shows every independent error. A diagnostic may carry secondary labels (a span with
a short message of its own: "this branch is [N, 256, 56, 56]", "first defined here") and the
chain of block instances it happened in. Rendering follows the compilers people know (rustc,
ariadne, miette):

    error: add: shapes do not match: [N, 64, 56, 56] + [N, 256, 56, 56]
      --> specs/bad.net:12:12
       |
     9 |     down = x -> downsample: conv(planes, 1, stride=stride, bias=false) -> batchnorm
       |                 ---------------------------------------------------- channels become 64 here
       .
    12 |     return relu(y + down)
       |                 ^^^^^^^^ channels differ: 256 and 64
       |                 -   ---- [N, 64, 56, 56] from layer1.0.downsample.1
       |                 |
       |                 [N, 256, 56, 56] from layer1.0.2
       = in: `layer1.0` = bottleneck(64), called at specs/bad.net:20:10
       = layer: layer1.0.add
       = rule: ...
       = hint: ...
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Span:
    """A region of one source file; lines and columns count from 1, `end_column` is exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to(self, other: "Span") -> "Span":
        """The span from the start of this one to the end of `other`."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)

    def point_after(self) -> "Span":
        """A one-character span just past the end of this one (where a missing token goes)."""
        return Span(self.file, self.end_line, self.end_column, self.end_line, self.end_column + 1)


class Sources:
    """The text of every file read in a run, so a diagnostic can quote its line."""

    def __init__(self) -> None:
        self._text: dict[str, str] = {}
        self._lines: dict[str, list[str]] = {}  # split once: a run may quote thousands of lines

    def add(self, name: str, text: str) -> None:
        self._text[name] = text
        self._lines.pop(name, None)

    def line(self, name: str, number: int) -> str | None:
        text = self._text.get(name)
        if text is None:
            return None
        lines = self._lines.get(name)
        if lines is None:  # the lexer's idea of a line: other breaks are not lines
            lines = self._lines[name] = text.split("\n")
        return lines[number - 1] if 0 < number <= len(lines) else ""


class Label:
    """A span with a short message of its own. The primary label marks where the mistake is
    (its span is the diagnostic's); secondary labels mark what explains it. (Plain classes
    here and below: each dataclass costs half a millisecond of every `netspec check`.)"""

    __slots__ = ("span", "message", "primary")

    def __init__(self, span: Span, message: str = "", primary: bool = False) -> None:
        self.span, self.message, self.primary = span, message, primary

    def __repr__(self) -> str:
        return f"Label({self.span!r}, {self.message!r}, primary={self.primary})"

    def to_json(self) -> dict:
        return {"file": self.span.file, "line": self.span.line, "column": self.span.column,
                "end_line": self.span.end_line, "end_column": self.span.end_column,
                "message": self.message, "primary": self.primary}


class Instance:
    """One block instance a diagnostic happened in: `layer2.0` = `bottleneck(128, stride=2)`,
    called at `span`."""

    __slots__ = ("name", "call", "span")

    def __init__(self, name: str, call: str, span: Span) -> None:
        self.name, self.call, self.span = name, call, span

    def __repr__(self) -> str:
        return f"Instance({self.name!r}, {self.call!r}, {self.span!r})"

    def describe(self) -> str:
        return f"in `{self.name}` = `{self.call}`, called at {self.span.location()}"


@dataclass(slots=True)
class Diagnostic:
    message: str
    span: Span | None = None
    severity: Severity = "error"
    layer: str | None = None
    rule: str | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)
    label: str = ""                                      # the primary span's own message
    labels: list[Label] = field(default_factory=list)   # secondary labels
    chain: tuple[Instance, ...] = ()                     # block instances, outermost first

    def all_labels(self) -> list[Label]:
        """The primary label (when there is a span) and the secondary ones."""
        primary = [Label(self.span, self.label, True)] if self.span is not None else []
        return primary + list(self.labels)

    def to_json(self) -> dict:
        out: dict = {"severity": self.severity, "message": self.message}
        if self.span is not None:
            out.update(file=self.span.file, line=self.span.line, column=self.span.column,
                       end_line=self.span.end_line, end_column=self.span.end_column)
        for key in ("layer", "rule", "hint"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.notes:
            out["notes"] = list(self.notes)
        labels = self.all_labels()
        if labels:
            out["labels"] = [label.to_json() for label in labels]
        if self.chain:
            out["instances"] = [{"name": i.name, "call": i.call, "file": i.span.file,
                                 "line": i.span.line, "column": i.span.column} for i in self.chain]
        return out


class NetspecError(Exception):
    """A problem with located diagnostics; raised where a stage cannot go on."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


class Diagnostics:
    """An ordered collection of diagnostics that stages append to.

    `chain` is the stack of block instances being elaborated or inferred just now: every
    diagnostic added while it is set records it (`within`), so an error inside a block says
    which instance, called from where."""

    def __init__(self, sources: Sources | None = None) -> None:
        self.sources = sources if sources is not None else Sources()
        self.items: list[Diagnostic] = []
        self.chain: tuple[Instance, ...] = ()

    def add(self, diagnostic: Diagnostic) -> Diagnostic:
        if self.chain and not diagnostic.chain:
            diagnostic.chain = self.chain
        self.items.append(diagnostic)
        return diagnostic

    def error(self, message: str, span: Span | None = None, **details) -> Diagnostic:
        return self.add(Diagnostic(message, span, "error", **details))

    def warning(self, message: str, span: Span | None = None, **details) -> Diagnostic:
        return self.add(Diagnostic(message, span, "warning", **details))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diagnostic in diagnostics:
            self.add(diagnostic)

    @contextmanager
    def within(self, chain: tuple[Instance, ...]):
        """Diagnostics added inside carry `chain` (the block instances, outermost first)."""
        saved, self.chain = self.chain, chain
        try:
            yield
        finally:
            self.chain = saved

    def coalesce(self) -> None:
        """One mistake, one diagnostic: the same problem at the same place in a block's body,
        reported once per instance of the block (or per round of a repeat), becomes one
        diagnostic that says in how many instances it happens."""
        groups: dict[tuple, list[Diagnostic]] = {}
        order: list[tuple] = []
        for d in self.items:
            key = (d.severity, d.span, d.rule, _without_names(d.message, d)) if d.span else (id(d),)
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(d)
        merged = []
        for key in order:
            first, *rest = groups[key]
            if rest:
                group = (first, *rest)
                names = [d.chain[-1].name if d.chain else d.layer for d in group]
                if None in names or len(set(names)) < len(names):  # rounds of a repeat
                    first.notes.append(f"reported once for the {len(group)} times this line is "
                                       "evaluated (rounds of a repeat, instances of a block)")
                else:
                    shown = ", ".join(f"`{n}`" for n in names[:4]) + (f" and {len(names) - 4} more"
                                                                       if len(names) > 4 else "")
                    first.notes.append(f"in {len(names)} instances: {shown}")
            merged.append(first)
        self.items = merged

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors():
            raise NetspecError(self.items)


def _without_names(message: str, d: Diagnostic) -> str:
    """The message with the instance's own names blanked, so the same mistake in two instances
    (`layer1.0.conv1`, `layer1.1.conv1`) compares equal. Names are quoted in backticks."""
    prefixes = [i.name for i in d.chain] + ([d.layer] if d.layer else [])
    if not prefixes:
        return message
    import re

    def blank(match: "re.Match") -> str:
        name = match.group(1)
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                return "`<name>" + name[len(prefix):] + "`"
        return match.group(0)
    return re.sub(r"`([^`]*)`", blank, message)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered and word not in candidates:  # `F32` is `f32`, not `i32`
        return f"did you mean `{lowered[word.lower()]}`?"
    import difflib  # only when there is a misspelling to explain

    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not matches:  # case differences count as no difference
        folded = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        matches = [lowered[m] for m in folded]
    return f"did you mean `{matches[0]}`?" if matches else None


def render(diagnostic: Diagnostic, sources: Sources) -> str:
    """Plain-text rendering: header, location, every labelled line quoted with its markers
    (`^` under the primary span, `-` under secondary ones) and messages, then the details."""
    lines = [f"{diagnostic.severity}: {diagnostic.message}"]
    span = diagnostic.span
    labels = diagnostic.all_labels()
    if span is not None:
        lines.append(f"  --> {span.location()}")
    elif labels:
        lines.append(f"  --> {labels[0].span.location()}")
    if labels:
        lines.extend(_snippets(labels, sources))
    # the details line up with the quoted lines' bar, past the widest line number
    indent = " " * (len(str(max(label.span.line for label in labels))) + 1 if labels else 2)
    for instance in diagnostic.chain:
        lines.append(f"{indent}= {instance.describe()}")
    for key in ("layer", "rule", "hint"):
        value = getattr(diagnostic, key)
        if value:
            lines.append(f"{indent}= {key}: {value}")
    for note in diagnostic.notes:
        lines.append(f"{indent}= note: {note}")
    return "\n".join(lines)


def _snippets(labels: list[Label], sources: Sources) -> list[str]:
    """The quoted lines of every label, grouped by file (the primary's file first), lines in
    order, a `.` row between lines that are not adjacent."""
    files: dict[str, dict[int, list[Label]]] = {}
    for label in labels:
        files.setdefault(label.span.file, {}).setdefault(label.span.line, []).append(label)
    quoted = {name: {n: sources.line(name, n) for n in by_line} for name, by_line in files.items()}
    numbers = [n for by_line in files.values() for n in by_line]
    gutter = " " * len(str(max(numbers)))
    out: list[str] = []
    for index, (name, by_line) in enumerate(files.items()):
        if all(text is None for text in quoted[name].values()):
            if index:  # a file whose text is not at hand: its location and messages only
                out.extend(f"  ::: {label.span.location()}" + (f" {label.message}" if label.message else "")
                           for line_labels in by_line.values() for label in line_labels)
            continue
        if index:
            first = min(by_line)
            out.append(f"  ::: {Span(name, first, by_line[first][0].span.column, first, 1).location()}")
        out.append(f"{gutter} |")
        previous = None
        for number in sorted(by_line):
            text = quoted[name][number]
            if text is None:
                continue
            if previous is not None and number > previous + 1:
                out.append(f"{gutter} .")
            previous = number
            out.append(f"{str(number).rjust(len(gutter))} | {_visible(text)[0]}")
            out.extend(f"{gutter} | {row}".rstrip() for row in _marker_rows(by_line[number], text))
    return out


def _marker_rows(labels: list[Label], text: str) -> list[str]:
    """The rows under one quoted line: labels that do not overlap share a row of markers (the
    primary's row first); in a row the rightmost label's message follows its markers, the
    others hang below it on `|` connectors, as rustc draws them. Markers stand in screen
    columns (see `_visible`), under the characters as the quoted line shows them."""
    length, starts = len(text), _visible(text)[1]

    def extent(label: Label) -> tuple[int, int]:
        start = label.span.column - 1
        end = label.span.end_column - 1 if label.span.end_line == label.span.line else length
        end = max(start + 1, min(end, length + 1))
        first = _screen_column(starts, length, start + 1)
        return first, max(first + 1, _screen_column(starts, length, end + 1))

    rows: list[list[tuple[int, int, Label]]] = []
    for label in sorted(labels, key=lambda l: (not l.primary, l.span.column)):
        start, end = extent(label)
        for row in rows:
            if all(end < s or start > e for s, e, _ in row):
                row.append((start, end, label))
                break
        else:
            rows.append([(start, end, label)])
    out: list[str] = []
    for row in rows:
        row.sort(key=lambda item: item[0])
        markers = [" "] * max(e for _, e, _ in row)
        for start, end, label in row:
            for i in range(start, end):
                markers[i] = "^" if label.primary else "-"
        last = row[-1][2]
        out.append("".join(markers) + (f" {last.message}" if last.message else ""))
        hanging = [item for item in row[:-1] if item[2].message]
        for count in range(len(hanging), 0, -1):
            pending = hanging[:count]
            connectors = [" "] * (pending[-1][0] + 1)
            for start, _, _ in pending:
                connectors[start] = "|"
            out.append("".join(connectors))
            start, _, label = pending[-1]
            text_row = connectors[:start]
            out.append("".join(text_row) + label.message)
    return out


def _visible(text: str) -> tuple[str, list[int] | None]:
    """The quoted line as a terminal shows it, and the screen column (from 0) where each of its
    characters starts, so that markers stand under the right one.

    A tab is one space (a span counts it as one column). An invisible or unprintable character
    (a no-break or zero-width space, a byte-order mark, a control character from a binary file)
    becomes a visible marker such as `<U+00A0>`; an East Asian wide character (`（`, `，`, CJK)
    takes two columns and a combining mark none. `starts` has one entry per character and one
    for the end of the line; it is None when every character takes one column."""
    if text.isascii() and text.isprintable():
        return text, None
    import unicodedata  # only for a line that needs it

    shown: list[str] = []
    starts: list[int] = []
    column = 0
    for char in text:
        starts.append(column)
        if char == "\t":
            piece, width = " ", 1
        elif char.isprintable():
            piece = char
            if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
                width = 0
            else:
                width = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        else:
            piece = f"<U+{ord(char):04X}>"
            width = len(piece)
        shown.append(piece)
        column += width
    starts.append(column)
    return "".join(shown), starts


def _screen_column(starts: list[int] | None, length: int, column: int) -> int:
    """Where source column `column` (from 1) of a line of `length` characters starts on screen;
    a column past the end of the line (where a missing token goes) is one more per step."""
    index = column - 1
    if starts is None:
        return index
    if index <= length:
        return starts[index]
    return starts[length] + index - length


def render_all(diagnostics: Iterable[Diagnostic], sources: Sources) -> str:
    items = list(diagnostics)
    blocks = [render(d, sources) for d in items]
    errors = sum(d.severity == "error" for d in items)
    warnings = len(items) - errors
    summary = []
    if errors:
        summary.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        summary.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    if summary:
        blocks.append(", ".join(summary))
    return "\n\n".join(blocks)


def read_source(path: Path, sources: Sources, span: Span | None = None) -> str:
    """Read a spec file as UTF-8, turning every failure into a located NetspecError."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NetspecError([Diagnostic(f"cannot read `{name}`: no such file", span)]) from None
    except IsADirectoryError:
        raise NetspecError([Diagnostic(f"cannot read `{name}`: it is a directory", span)]) from None
    except PermissionError:
        raise NetspecError([Diagnostic(f"cannot read `{name}`: permission denied", span)]) from None
    except OSError as exc:
        raise NetspecError([Diagnostic(f"cannot read `{name}`: {exc.strerror or exc}", span)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        sources.add(name, raw.decode("utf-8", errors="replace"))
        where = Span(name, line, column, line, column + 1)
        raise NetspecError([Diagnostic(f"`{name}` is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                                       where, hint="save the spec as UTF-8")]) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    text = normalize_newlines(text)
    sources.add(name, text)
    return text


def normalize_newlines(text: str) -> str:
    """Windows (CRLF) and classic Mac (CR) line endings become LF, the only break the grammar
    knows; columns are unchanged."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
