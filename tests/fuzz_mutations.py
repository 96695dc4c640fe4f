"""Seeded mutations of netspec specs, for tests/test_fuzz_frontend.py.

`mutate(files, main, rng)` takes the files of one case ({name: bytes}, the spec to check named
`main`) and returns them with one to three random edits applied, plus a list of words saying
what was done (shown when a case fails, so it can be read without rerunning it). Every choice
comes from `rng`, so a case is reproduced from its seed alone.
"""

from __future__ import annotations

import random
import re

# A lexer close enough to grammar/netspec.lark for edits at token granularity: whitespace,
# comments and line breaks are kept as they are, so mutants stay readable.
_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|[0-9]+(?:_[0-9]+)*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|//|==|!=|<=|>=|[-+*/%<>=(),\[\]{}:])
  | (?P<nl>\r?\n)
  | (?P<ws>[ \t\r\f]+)
  | (?P<other>.)
""", re.X | re.S)

_SKIP = {"comment", "nl", "ws"}

# Tokens that a random replacement or insertion draws from: every keyword and punctuation mark
# of the language, a few layer names and values of each kind.
VOCABULARY = [
    "network", "input", "output", "block", "use", "return", "repeat", "if", "else", "and", "or",
    "not", "true", "false", "->", "+", "-", "*", "/", "//", "%", "==", "!=", "<", "<=", ">",
    ">=", "=", ",", ":", "(", ")", "[", "]", "{", "}", "conv", "relu", "linear", "batchnorm",
    "maxpool", "concat", "flatten", "add", "N", "f32", "NCHW", "x", "0", "1", "-1", "3", "0.5",
    "1e9", '"s"', "''", "\n", "\n->", "#", ";", "\u2192", "\t",
]

HUGE_NUMBERS = [
    str(10 ** 30), str(2 ** 63), str(2 ** 63 - 1), str(2 ** 64), str(2 ** 31), "99999999999999999999",
    "9" * 300, "1" + "0" * 4400, "1_000_000_000_000_000_000", "0" * 40 + "1", "1e308", "1e309",
    "1.7976931348623157e308", "4.9e-324", "1e-400", "0.0", "0", "-" + str(2 ** 63), "-1",
    "1" + "_0" * 200, "." + "9" * 400, "9" * 400 + ".0",
]

# Bytes that are not UTF-8: lone continuation bytes, truncated sequences, overlong forms,
# surrogates, code points past U+10FFFF, and Latin-1 text.
BAD_UTF8 = [
    b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xf0\x9f\x98",
    b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"caf\xe9", b"\xff\xfe", b"\xef\xbb\xbf\xff",
]

# Valid UTF-8 that is unusual in source text: control characters, line separators that
# str.splitlines() honours but the lexer does not, lookalikes, wide characters, a BOM.
ODD_TEXT = [
    "\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1c", "\x1e", "\x7f", "\x85", "\u2028", "\u2029",
    "\r", "\r\n", "\ufeff", "\u200b", "\u00a0", "\u2192", "\uff08", "\U0001f600", "\u0301",
    "\ud7ff", "\uffff", "\U0010ffff", "é", "x\u0308", "\t\t", "\\", '"', "'", "`", "$", "@", "?",
    "!", "&", "|", "^", "~", ".", "..", "...", "**", "//", "#",
]


class Pieces:
    """A text as a list of pieces: tokens and the whitespace, comments and breaks between them."""

    def __init__(self, text: str):
        self.items: list[tuple[str, str]] = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]

    def tokens(self) -> list[int]:
        return [i for i, (kind, _) in enumerate(self.items) if kind not in _SKIP]

    def text(self) -> str:
        return "".join(value for _, value in self.items)


def _pick_token(rng: random.Random, pieces: Pieces, kinds: set[str] | None = None) -> int | None:
    candidates = [i for i in pieces.tokens() if kinds is None or pieces.items[i][0] in kinds]
    return rng.choice(candidates) if candidates else None


# ---------------------------------------------------------------- token-level edits (on str)

def delete_token(rng, text):
    pieces = Pieces(text)
    i = _pick_token(rng, pieces)
    if i is None:
        return text, "delete-token (none)"
    shown = pieces.items[i][1]
    del pieces.items[i]
    return pieces.text(), f"delete-token {shown!r}"


def duplicate_token(rng, text):
    pieces = Pieces(text)
    i = _pick_token(rng, pieces)
    if i is None:
        return text, "duplicate-token (none)"
    kind, value = pieces.items[i]
    pieces.items[i:i + 1] = [(kind, value), ("ws", rng.choice(["", " "])), (kind, value)]
    return pieces.text(), f"duplicate-token {value!r}"


def swap_tokens(rng, text):
    pieces = Pieces(text)
    tokens = pieces.tokens()
    if len(tokens) < 2:
        return text, "swap-tokens (none)"
    k = rng.randrange(len(tokens) - 1)
    # mostly neighbours; sometimes tokens far apart
    other = k + 1 if rng.random() < 0.7 else rng.randrange(len(tokens))
    a, b = tokens[k], tokens[other]
    pieces.items[a], pieces.items[b] = pieces.items[b], pieces.items[a]
    return pieces.text(), f"swap-tokens {pieces.items[b][1]!r}<->{pieces.items[a][1]!r}"


def replace_token(rng, text):
    pieces = Pieces(text)
    i = _pick_token(rng, pieces)
    if i is None:
        return text, "replace-token (none)"
    new = rng.choice(VOCABULARY)
    old = pieces.items[i][1]
    pieces.items[i] = ("other", new)
    return pieces.text(), f"replace-token {old!r}->{new!r}"


def insert_token(rng, text):
    pieces = Pieces(text)
    at = rng.randrange(len(pieces.items) + 1)
    new = rng.choice(VOCABULARY)
    pieces.items.insert(at, ("other", f" {new} " if rng.random() < 0.5 else new))
    return pieces.text(), f"insert-token {new!r}"


def huge_number(rng, text):
    pieces = Pieces(text)
    i = _pick_token(rng, pieces, {"number"})
    if i is None or rng.random() < 0.15:  # sometimes where a name or anything else was
        i = _pick_token(rng, pieces)
    if i is None:
        return text, "huge-number (none)"
    new = rng.choice(HUGE_NUMBERS)
    old = pieces.items[i][1]
    pieces.items[i] = ("number", new)
    return pieces.text(), f"huge-number {old!r}->{new[:24]!r}{'...' if len(new) > 24 else ''}"


# Forms whose cost grows with the depth only in the parser, or that stop at the first error:
# nested up to 20,000 deep. The others make a layer or an evaluation per level (a 20,000-level
# sum is 20,000 layers, seconds of honest work): nested up to 3,000 deep.
_CHEAP_FORMS = {"parens", "neg", "not", "brackets", "braces", "open-parens", "close-parens",
                "open-braces", "open-brackets"}


def deep_nesting(rng, text):
    """Thousands of brackets, unary operators, calls, tuples, conditionals, repeats or labelled
    repeats around one value, balanced or not."""
    pieces = Pieces(text)
    i = _pick_token(rng, pieces, {"name", "number"})
    if i is None:
        return text, "deep-nesting (none)"
    v = pieces.items[i][1]
    forms = {
        "parens": lambda d: "(" * d + v + ")" * d,
        "brackets": lambda d: "[" * d + v + "]" * d,
        "braces": lambda d: "{" * d + v + "}" * d,
        "neg": lambda d: "-" * d + v,
        "not": lambda d: "not " * d + v,
        "calls": lambda d: "relu(" * d + v + ")" * d,
        "tuples": lambda d: "(" * d + v + ", 1)" * d,
        "conditional": lambda d: f"{v} if true else " * d + v,
        "sum": lambda d: " + ".join([v] * d),
        "chain": lambda d: v + " -> relu" * d,
        "repeat": lambda d: v + " -> " + "repeat(1) { " * d + "relu" + " }" * d,
        "labels": lambda d: (v + " -> " + "".join(f"l{k}: repeat(1) {{ " for k in range(d)) + "relu"
                             + " }" * d),
        "open-parens": lambda d: "(" * d + v,
        "close-parens": lambda d: v + ")" * d,
        "open-braces": lambda d: v + "{" * d,
        "open-brackets": lambda d: "[" * d + v,
    }
    form = rng.choice(sorted(forms))
    # mostly shallow, where the other edits still matter; thousands deep a third of the time
    if form in _CHEAP_FORMS:
        depth = rng.choices([30, 300, 1000, 3000, 10000, 20000], weights=[3, 3, 2, 2, 1, 1])[0]
    else:
        depth = rng.choices([30, 300, 1000, 3000], weights=[3, 3, 2, 1])[0]
    pieces.items[i] = ("other", forms[form](depth))
    return pieces.text(), f"deep-nesting {form} x{depth} at {v!r}"


def nested_blocks(rng, text):
    """Blocks that call one another `depth` deep, used from the last binding before `output`."""
    depth = rng.choices([100, 500, 1000, 2000], weights=[3, 2, 1, 1])[0]
    defs = "block fz0(t) {\n    return t -> relu\n}\n" + "".join(
        f"block fz{k}(t) {{\n    return t -> fz{k - 1}\n}}\n" for k in range(1, depth))
    lines = text.split("\n")
    outputs = [k for k, line in enumerate(lines) if line.startswith("output ")]
    if outputs:
        k = outputs[-1]
        names = lines[k][len("output "):].split(",")
        first = names[0].strip()
        lines[k:k] = [f"fz_out = {first} -> fz{depth - 1}", ""]
        lines[k + 2] = "output " + ", ".join(["fz_out"] + [n.strip() for n in names[1:]])
    return defs + "\n".join(lines), f"nested-blocks x{depth}"


# ---------------------------------------------------------------- line-level edits (on str)

def repeat_line(rng, text):
    lines = text.split("\n")
    k = rng.randrange(len(lines))
    times = rng.choice([2, 2, 3, 10, 100]) if rng.random() < 0.95 else 3000
    if "->" in lines[k]:
        # a chain line repeated is a chain that many stages longer: 3,000 copies of a dense
        # block's line are 250,000 honest layers, not a fuzzing question
        times = min(times, 100)
    lines[k:k + 1] = [lines[k]] * times
    return "\n".join(lines), f"repeat-line {k + 1} x{times}"


def swap_lines(rng, text):
    lines = text.split("\n")
    if len(lines) < 2:
        return text, "swap-lines (none)"
    a = rng.randrange(len(lines))
    b = min(len(lines) - 1, a + 1) if rng.random() < 0.5 else rng.randrange(len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return "\n".join(lines), f"swap-lines {a + 1}<->{b + 1}"


def delete_line(rng, text):
    lines = text.split("\n")
    k = rng.randrange(len(lines))
    del lines[k]
    return "\n".join(lines), f"delete-line {k + 1}"


def insert_use(rng, text, names=()):
    """A `use` of a sibling spec, itself, a missing file, a directory or a strange path."""
    targets = list(names) + ["missing.net", ".", "..", "", "/", "/dev/null", "lib.net",
                             "a" * 300 + ".net", "x\\u0000y", "sub/../lib.net"]
    target = rng.choice(targets)
    raw_nul = rng.random() < 0.1
    literal = '"' + (target + "\x00" if raw_nul else target) + '"'
    lines = text.split("\n")
    k = rng.randrange(len(lines) + 1)
    lines.insert(k, f"use {literal}")
    return "\n".join(lines), f"insert-use {literal!r} at line {k + 1}"


# ---------------------------------------------------------------- byte-level edits

def truncate(rng, data):
    at = rng.randrange(len(data) + 1)
    return data[:at], f"truncate at byte {at} of {len(data)}"


def random_bytes(rng, data):
    at = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        new = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    else:
        new = "".join(rng.choice(ODD_TEXT) for _ in range(rng.randint(1, 3))).encode("utf-8", "surrogatepass")
    return data[:at] + new + data[at:], f"insert-bytes {new!r} at byte {at}"


def bad_utf8(rng, data):
    at = rng.randrange(len(data) + 1) if rng.random() < 0.9 else 0
    new = rng.choice(BAD_UTF8)
    return data[:at] + new + data[at:], f"bad-utf8 {new!r} at byte {at}"


def flip_bits(rng, data):
    if not data:
        return data, "flip-bit (none)"
    at = rng.randrange(len(data))
    bit = 1 << rng.randrange(8)
    return data[:at] + bytes([data[at] ^ bit]) + data[at + 1:], f"flip-bit {bit:#x} at byte {at}"


TEXT_MUTATIONS = {
    "delete-token": (delete_token, 10), "duplicate-token": (duplicate_token, 8),
    "swap-tokens": (swap_tokens, 8), "replace-token": (replace_token, 8),
    "insert-token": (insert_token, 5), "huge-number": (huge_number, 8),
    "deep-nesting": (deep_nesting, 3), "nested-blocks": (nested_blocks, 1),
    "repeat-line": (repeat_line, 5), "swap-lines": (swap_lines, 5), "delete-line": (delete_line, 4),
    "insert-use": (insert_use, 2),
}
BYTE_MUTATIONS = {
    "truncate": (truncate, 6), "insert-bytes": (random_bytes, 6), "bad-utf8": (bad_utf8, 4),
    "flip-bit": (flip_bits, 3),
}
KINDS = sorted([*TEXT_MUTATIONS, *BYTE_MUTATIONS])


def _choose(rng: random.Random) -> str:
    table = {**TEXT_MUTATIONS, **BYTE_MUTATIONS}
    names = sorted(table)
    return rng.choices(names, weights=[table[n][1] for n in names])[0]


def mutate(files: dict[str, bytes], main: str, rng: random.Random,
           siblings: tuple[str, ...] = ()) -> tuple[dict[str, bytes], list[str]]:
    """Apply one to three edits to the files of a case, each to `main` or (where the case has
    other files) sometimes to one of those. Returns the new files and what was done."""
    files = dict(files)
    done = []
    for _ in range(rng.choices([1, 2, 3], weights=[6, 3, 1])[0]):
        kind = _choose(rng)
        others = sorted(n for n in files if n != main)
        name = rng.choice(others) if others and rng.random() < 0.3 else main
        data = files[name]
        if kind in BYTE_MUTATIONS:
            data, what = BYTE_MUTATIONS[kind][0](rng, data)
        else:
            # text edits work on what the lexer sees; undecodable bytes (from an earlier edit)
            # travel through as lone surrogates and come back as the same bytes
            text = data.decode("utf-8", "surrogateescape")
            func = TEXT_MUTATIONS[kind][0]
            text, what = func(rng, text, siblings) if func is insert_use else func(rng, text)
            data = text.encode("utf-8", "surrogateescape")
        files[name] = data
        done.append(f"{name}: {what}")
    return files, done


def split_blocks(text: str) -> tuple[str, str] | None:
    """Moves a spec's block definitions into a second file, `lib.net`, that the spec then
    `use`s; None for a spec without blocks. Both files still check as the original did."""
    lines = text.split("\n")
    keep, lib, inside = [], [], False
    for line in lines:
        if line.startswith("block "):
            inside = True
        (lib if inside else keep).append(line)
        if inside and line.startswith("}"):
            inside = False
    if not lib:
        return None
    header = next((k for k, line in enumerate(keep) if line.startswith("network ")), None)
    if header is None:
        return None
    keep.insert(header + 1, 'use "lib.net"')
    # the blocks may read the network's parameters: the library declares the same ones
    lib_header = keep[header].replace("network ", "network lib_", 1)
    return "\n".join(keep), lib_header + "\n\n" + "\n".join(lib) + "\n"
