"""Source spans, located diagnostics and their rendering.

Every stage reports problems the same way: it adds a `Diagnostic` (message, span, the layer,
the rule that failed, a hint) to a `Diagnostics` collection and carries on where it can, so one
run shows every independent error. Rendering follows the compilers people know:

    error: conv expects 3 input channels ...
      --> specs/bad.net:4:12
       |
     4 |     -> conv(64, 3) -> relu
       |        ^^^^^^^^^^^
       = layer: features.0
       = rule: ...
       = hint: ...
"""

from __future__ import annotations

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


@dataclass(slots=True)
class Diagnostic:
    message: str
    span: Span | None = None
    severity: Severity = "error"
    layer: str | None = None
    rule: str | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)

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
        return out


class NetspecError(Exception):
    """A problem with located diagnostics; raised where a stage cannot go on."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


class Diagnostics:
    """An ordered collection of diagnostics that stages append to."""

    def __init__(self, sources: Sources | None = None) -> None:
        self.sources = sources if sources is not None else Sources()
        self.items: list[Diagnostic] = []

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def error(self, message: str, span: Span | None = None, **details) -> Diagnostic:
        diagnostic = Diagnostic(message, span, "error", **details)
        self.items.append(diagnostic)
        return diagnostic

    def warning(self, message: str, span: Span | None = None, **details) -> Diagnostic:
        diagnostic = Diagnostic(message, span, "warning", **details)
        self.items.append(diagnostic)
        return diagnostic

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

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
    """Plain-text rendering: header, location, quoted line with carets, details."""
    lines = [f"{diagnostic.severity}: {diagnostic.message}"]
    span = diagnostic.span
    if span is not None:
        lines.append(f"  --> {span.location()}")
        text = sources.line(span.file, span.line)
        if text is not None:
            number = str(span.line)
            gutter = " " * len(number)
            text = _visible(text.expandtabs(1))
            end = span.end_column if span.end_line == span.line else len(text) + 1
            width = max(1, min(end, len(text) + 2) - span.column)
            lines.append(f"{gutter} |")
            lines.append(f"{number} | {text}")
            lines.append(f"{gutter} | {' ' * (span.column - 1)}{'^' * width}")
    for key in ("layer", "rule", "hint"):
        value = getattr(diagnostic, key)
        if value:
            lines.append(f"  = {key}: {value}")
    for note in diagnostic.notes:
        lines.append(f"  = note: {note}")
    return "\n".join(lines)


def _visible(text: str) -> str:
    """The quoted line as a terminal should show it: control and other unprintable characters
    (from a binary file, say) become one replacement character each, so carets stay aligned."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


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
