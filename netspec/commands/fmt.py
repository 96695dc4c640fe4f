"""`netspec fmt SPEC... [--check] [--diff]`: specs rewritten in netspec's canonical layout
(netspec.formatter), in place and atomically, only where they change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from netspec.commands.options import EXIT_INTERNAL, EXIT_OK, EXIT_SPEC, UsageError, print_diagnostics

EPILOG = """\
the layout: 4 spaces a level; a continuation line that starts with `->` 4 past the line its
chain starts on; inside brackets, just after the bracket (or 4 past its line where the bracket
ends the line); one space around `->`, `=`, operators, none around a keyword argument's `=`
(`stride=2`); the line breaks you chose are kept, a line over 120 columns is broken before a
`->`; comments are kept, trailing ones at their column (aligned ones stay aligned); at most one
blank line in a row. The README's `netspec fmt` section has the whole layout.

exit codes: 0 formatted (or, with --check, nothing to change), 1 a spec has errors (printed as
`netspec check` prints them; that file is left as it is) or, with --check, a file would change,
2 bad command-line usage, 3 a bug in netspec (the formatter's check of its own result failed;
that file is left as it is)
"""


def register(commands) -> None:
    command = commands.add_parser(
        "fmt", help="rewrite specs in the canonical layout (or --check that they are)",
        description="Format each SPEC in netspec's one canonical layout: indentation, spaces, "
                    "line breaks in long chains; comments are kept. Only whitespace changes (the "
                    "tokens and comments stay as they are, and netspec checks that the result "
                    "parses to the same tree). Files are rewritten in place, atomically, and only "
                    "when they change. A folder stands for every .net file under it; `-` reads "
                    "standard input and writes the result to standard output.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    command.add_argument("specs", metavar="SPEC", nargs="+",
                         help="a .net file, a folder of them, or - for standard input")
    command.add_argument("--check", action="store_true",
                         help="change nothing; list the files that would change and exit 1 if any would")
    command.add_argument("--diff", action="store_true",
                         help="change nothing; print a unified diff of what would change")
    command.set_defaults(handler=run)


def _files(specs: list[str]) -> list[str]:
    """The SPEC arguments as files: a folder's .net files (sorted, recursively), `-` as is."""
    files: list[str] = []
    for spec in specs:
        path = Path(spec)
        if spec == "-":
            files.append(spec)
        elif path.is_dir():
            found = sorted(str(p) for p in path.rglob("*.net") if p.is_file())
            if not found:
                raise UsageError(f"`{spec}` is a folder with no .net files")
            files += found
        elif path.is_file():
            files.append(spec)
        else:
            raise UsageError(f"cannot read `{spec}`: no such file")
    if files.count("-") > 1:
        raise UsageError("`-` (standard input) may be given once")
    return files


def run(args: argparse.Namespace) -> int:
    import difflib

    from netspec.diagnostics import NetspecError, Sources, normalize_newlines, read_source
    from netspec.formatter import FormatterError, format_text

    files = _files(args.specs)
    status = EXIT_OK
    changed = unchanged = failed = 0
    for file in files:
        sources = Sources()
        try:
            if file == "-":
                text = normalize_newlines(sys.stdin.read())
                text = text[1:] if text.startswith("\ufeff") else text
                sources.add("<stdin>", text)
                name = "<stdin>"
            else:
                text, name = read_source(Path(file), sources), file
            formatted = format_text(text, name)
        except NetspecError as exc:
            print_diagnostics(exc.diagnostics, sources)
            status, failed = max(status, EXIT_SPEC), failed + 1
            continue
        except FormatterError as exc:  # the formatter's own check refused its result: a bug
            print(f"netspec: internal error: {exc}\nthis is a bug in netspec (the file is left as it "
                  "is); please report it", file=sys.stderr)
            status, failed = EXIT_INTERNAL, failed + 1
            continue
        raw = _raw(file)
        same = formatted == text and (raw is None or raw == formatted.encode("utf-8"))
        if file == "-" and not (args.check or args.diff):
            sys.stdout.write(formatted)
            continue
        if same:
            unchanged += 1
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                f"{name} (original)", f"{name} (formatted)"))
        if args.check:
            print(f"would reformat {name}", file=sys.stderr if args.diff else sys.stdout)
            status = max(status, EXIT_SPEC)
        elif not args.diff:
            _rewrite(Path(file), formatted)
            print(f"reformatted {name}")
    if len(files) > 1 or failed:
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        parts = [f"{changed} file{'s' if changed != 1 else ''} {verb}", f"{unchanged} unchanged"]
        if failed:
            parts.append(f"{failed} with errors (left as they are)")
        print(", ".join(parts), file=sys.stderr)
    return status


def _raw(file: str) -> bytes | None:
    """The file's bytes (a file whose text is canonical may still need rewriting: a BOM, CRLF)."""
    if file == "-":
        return None
    try:
        return Path(file).read_bytes()
    except OSError:
        return None


def _rewrite(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permissions."""
    import shutil

    from netspec.files import write_atomically

    def produce(staged: Path) -> None:
        staged.write_bytes(text.encode("utf-8"))
        try:
            shutil.copymode(path, staged)
        except OSError:
            pass

    write_atomically(path, produce)
