"""Characters that look like netspec's ASCII ones, and characters that cannot be seen.

Text pasted from a paper, a slide, a chat or a word processor brings en dashes in `–>`, curly
quotes, a Unicode minus `−`, `×`, full-width brackets and commas from an East Asian input method,
no-break and zero-width spaces. Outside strings and `#` comments a spec is ASCII, so each such
character is a mistake; `scan` finds them all before the parser runs (the lexer would stop at the
first, and name it no better than "unexpected character"), names each one with its code point and
says which ASCII character to write.

One error per kind of mistake: every place where the same character stands for the same ASCII
one is listed in that error's note, so a spec pasted with forty no-break spaces gets one error,
not forty. A run of the same character (an indentation of four no-break spaces) is one place.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from netspec.diagnostics import Diagnostic, Span
from netspec.habits import slash_comment

# Anything but printable ASCII, tab, line breaks and form feed. One regex search over the whole
# text decides whether the scan is needed at all: most specs are plain ASCII.
_SUSPECT = re.compile(r"[^\t\n\r\f\x20-\x7e]")

RULE = "outside strings and `#` comments a spec is written in ASCII"

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d\u02d7\u2796"
_ARROWS = "\u2192\u27f6\u21d2\u2794\u279c\u279d\u279e\u21a6\u2b62\u2b95\uffeb\u2799\u27f9"
_OPEN_QUOTES = "\u201c\u2018\u201e\u201a\u00ab\u2039\u201f\u201b\u301d\u2033\u2032\uff02\uff07"
_CLOSE_QUOTES = "\u201d\u2019\u201c\u2018\u00bb\u203a\u301e\u301f\u2033\u2032\uff02\uff07"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u00ab\u00bb\u301d\u301e\u301f\u2033\uff02"

# character -> the ASCII text it stands for (beyond what NFKC normalisation gives)
_ASCII = {
    **{c: "-" for c in _DASHES},
    **{c: "->" for c in _ARROWS},
    **{c: '"' for c in _DOUBLE_QUOTES},
    **{c: "'" for c in "\u2018\u2019\u201a\u201b\u2039\u203a\u2032\uff07"},
    "\u00d7": "*", "\u2217": "*", "\u22c5": "*", "\u00b7": "*", "\u2715": "*", "\u2716": "*",
    "\u00f7": "/", "\u2215": "/", "\u2044": "/",
    "\u2260": "!=", "\u2264": "<=", "\u2265": ">=", "\u2a7d": "<=", "\u2a7e": ">=",
    "\u3001": ",", "\uff64": ",", "\u3002": ".", "\u2026": "...",
}

# Letters of other scripts drawn exactly like Latin ones (a name typed on another keyboard).
_HOMOGLYPHS = dict(zip(
    "\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456\u0458\u0455\u04bb\u0501"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425"
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03bf",
    "aeopcxyijshd"
    "ABEKMHOPCTX"
    "ABEZHIKMNOPTYXo"))

_NAMES = {  # clearer than the Unicode names of these
    "\ufeff": "byte-order mark",
    "\x00": "NUL character", "\x08": "backspace character", "\x0b": "vertical tab",
    "\x1b": "escape character", "\x7f": "delete character",
}
_SUPERSCRIPTS = "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"


@dataclass
class _Finding:
    key: tuple            # findings with one key are one mistake, reported once
    char: str
    line: int
    column: int
    end_column: int
    message: str
    hint: str | None


def scan(text: str, file: str) -> list[Diagnostic]:
    """One located error per kind of look-alike or invisible character outside strings and
    comments; empty for a spec without any."""
    if _SUSPECT.search(text) is None:
        return []
    findings: list[_Finding] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if _SUSPECT.search(line) is not None:
            findings.extend(_scan_line(line, number))
    return _group(findings, file)


def _scan_line(line: str, number: int) -> list[_Finding]:
    found: list[_Finding] = []
    i, n = 0, len(line)
    start = slash_comment(line)
    comment = range(start, n) if start is not None else range(0)
    while i < n:
        char = line[i]
        if char == "#":
            break
        if char in "\"'":
            close = _string_end(line, i)
            if close is None:  # not closed on its line: a curly quote may be the closer meant
                curly = next((j for j in range(i + 1, n) if line[j] in _CLOSE_QUOTES), None)
                if curly is not None:
                    found.append(_curly_string(line, number, i, curly, opened_straight=True))
                    i = curly + 1
                    continue
                break  # the lexer reports the unclosed string
            i = close + 1
            continue
        if not _suspect(char):
            i += 1
            continue
        if char in _OPEN_QUOTES:
            close = next((j for j in range(i + 1, n) if line[j] in _CLOSE_QUOTES + "\"'"), None)
            if close is not None:
                found.append(_curly_string(line, number, i, close))
                i = close + 1
                continue
        if i in comment:
            break  # a `//` comment: the parser says to write `#`
        run = i + 1
        while run < n and line[run] == char:
            run += 1
        if char in _DASHES and line[run:run + 1] == "\uff1e":  # `–＞`: one arrow, one mistake
            run += 1
        found.append(_character(line, number, i, run))
        i = run
    return found


def _suspect(char: str) -> bool:
    return not (" " <= char <= "~" or char in "\t\r\f")


def _string_end(line: str, start: int) -> int | None:
    """The index of the quote closing the string that opens at `start`, or None."""
    quote, i = line[start], start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == quote:
            return i
        i += 1
    return None


def _curly_string(line: str, number: int, start: int, close: int,
                  opened_straight: bool = False) -> _Finding:
    body = line[start + 1:close]
    quote = "'" if '"' in body else '"'
    shown = line[start:close + 1]
    if opened_straight:
        culprit = line[close]
        message = (f"the string `{shown}` is closed with {_describe(culprit)} instead of a straight "
                   f"quote `{line[start]}`")
        return _Finding(("quotes",), line[close], number, close + 1, close + 2, message,
                        f"write `{line[start]}{body}{line[start]}`")
    message = f"a string in curly quotes, `{shown}`: netspec's strings are in straight quotes"
    return _Finding(("quotes",), line[start], number, start + 1, close + 2, message,
                    f"write `{quote}{body}{quote}`")


def _character(line: str, number: int, start: int, end: int) -> _Finding:
    char, count = line[start], end - start
    described = _describe(char, count)
    after = line[end:end + 1]
    category = unicodedata.category(char)
    ascii_ = _ASCII.get(char)
    if ascii_ is None:
        normal = unicodedata.normalize("NFKC", char)
        if normal.isascii() and normal.isprintable() and normal:
            ascii_ = normal
    if char in _DASHES and line[end - 1] == "\uff1e":  # `–＞`
        return _Finding(("dash arrow",), char, number, start + 1, end + 1,
                        f"{_describe(char, count - 1)} and {_describe(line[end - 1])} instead of the "
                        f"arrow `->`", "write `->`")
    if char in _DASHES and after == ">":
        return _Finding(("dash arrow",), char, number, start + 1, end + 1,
                        f"{described} instead of `-` in the arrow `->`", "write `->`")
    if char in _SUPERSCRIPTS:
        digits = "".join(str(_SUPERSCRIPTS.index(c)) for c in line[start:end])
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1,
                        f"{described}: netspec writes a power with `**`", f"write `** {digits}`")
    if char == "\u00d7" and _between_numbers(line, start, end):
        return _Finding(_key(char, (char, "kernel")), char, number, start + 1, end + 1,
                        f"{described} between two sizes",
                        "a 3x3 kernel is written `3` or `(3, 3)`; to multiply write `*`")
    if category == "Zs" or char == "\u3000":
        plural = "ordinary spaces" if count > 1 else "an ordinary space"
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1,
                        f"{described} instead of {plural}", f"write {plural} (ASCII 32)")
    if category in ("Zl", "Zp"):
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1, f"{described} instead of a line break",
                        "break the line with an ordinary line break")
    if char == "\ufeff":
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1,
                        f"{described} in the middle of the file",
                        "delete it: an editor or a concatenation left it; only the very start of a "
                        "file may have one")
    if char == "\x0b":
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1, f"{described} instead of a space or "
                        "a line break", "write a space, or break the line")
    if category == "Cf" and ascii_ is None:
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1, f"invisible {described}",
                        "delete it: it cannot be seen, but it is there")
    if category in ("Cc", "Co", "Cn", "Cs") and ascii_ is None:
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1, f"unexpected {described}",
                        "delete it: it has no place in a spec")
    if ascii_ is not None:
        return _Finding(_key(char, (char, ascii_)), char, number, start + 1, end + 1,
                        f"{described} instead of `{ascii_}`", f"write `{ascii_ * count}`")
    if char in _HOMOGLYPHS:
        latin = _HOMOGLYPHS[char]
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1,
                        f"{described}, which looks like the Latin letter `{latin}`",
                        f"write `{latin}`: names are ASCII letters, digits and `_`")
    if category.startswith("L") or category == "Nd":
        return _Finding(_key(char, (char,)), char, number, start + 1, end + 1, f"{described} in a name",
                        f"names are ASCII letters, digits and `_`{_spelling(char)}")
    return _Finding(_key(char, (char,)), char, number, start + 1, end + 1, f"unexpected character {described}",
                    "outside strings and `#` comments netspec's names, numbers and operators are ASCII")


def _key(char: str, default: tuple) -> tuple:
    """One mistake, one error: characters of one family (dashes for `-`, arrows, spaces, invisible
    ones, full-width forms) are one mistake wherever they are."""
    category = unicodedata.category(char)
    if char in _DASHES:
        return ("dash",)
    if char in _ARROWS:
        return ("arrow",)
    if category == "Zs" or char == "\u3000":
        return ("space",)
    if category == "Cf" and char != "\ufeff":
        return ("invisible",)
    if "\uff01" <= char <= "\uff5e":
        return ("fullwidth",)
    return default


def _between_numbers(line: str, start: int, end: int) -> bool:
    return bool(re.search(r"\d\s*$", line[:start]) and re.match(r"\s*\d", line[end:]))


def _describe(char: str, count: int = 1) -> str:
    """`en dash `–` (U+2013)`; an invisible character without itself: `no-break space (U+00A0)`."""
    name = _NAMES.get(char)
    if name is None:
        try:
            name = unicodedata.name(char).lower()
        except ValueError:  # control characters, private use and unassigned ones have no name
            name = {"Co": "private-use character", "Cn": "unassigned character",
                    "Cs": "surrogate"}.get(unicodedata.category(char), "control character")
    if count > 1:
        name = f"{count} {name}{'es' if name.endswith(('s', 'sh', 'ch', 'x')) else 's'}"
    code = f"U+{ord(char):04X}"
    if char.isprintable() and unicodedata.category(char) not in ("Mn", "Me"):
        return f"{name} `{char * count}` ({code})"
    return f"{name} ({code})"


def _short(char: str) -> str:
    """`–`, or U+00A0 for a character that cannot be seen."""
    if char.isprintable() and unicodedata.category(char) not in ("Mn", "Me"):
        return f"`{char}`"
    return f"U+{ord(char):04X}"


def _spelling(char: str) -> str:
    """`: e.g. `alpha`` for a Greek letter, `: e.g. `e`` for `é`."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if stripped.isascii() and stripped.isalnum():
        return f": e.g. `{stripped}`"
    try:
        name = unicodedata.name(char)
    except ValueError:
        return ""
    if name.startswith("GREEK") and " LETTER " in name:
        word = name.rsplit(" LETTER ", 1)[1].lower()
        if word.isalpha():
            return f": e.g. `{word}`"
    return ""


def _group(findings: list[_Finding], file: str) -> list[Diagnostic]:
    groups: dict[tuple, list[_Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.key, []).append(finding)
    diagnostics = []
    for members in groups.values():
        first = members[0]
        notes = []
        if len(members) > 1:
            places = [f"{m.line}:{m.column}" + (f" ({_short(m.char)}: {m.hint})" if m.hint != first.hint
                                                 else f" ({_short(m.char)})" if m.char != first.char else "")
                      for m in members[1:]]
            shown = places[:6]
            more = len(places) - len(shown)
            listed = (", ".join(shown[:-1]) + " and " + shown[-1]) if len(shown) > 1 else shown[0]
            if more:
                listed = ", ".join(shown) + f" and {more} more place{'s' if more != 1 else ''}"
            notes.append(f"the same mistake is also at {listed} ({len(members)} in all)")
        diagnostics.append(Diagnostic(first.message, Span(file, first.line, first.column, first.line,
                                                          first.end_column),
                                      rule=RULE, hint=first.hint, notes=notes))
    return diagnostics
