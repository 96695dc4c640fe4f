"""The `netspec` command line. Exit codes: 0 clean, 1 errors in the spec, 2 bad usage.

Only what a command uses is imported, and only when it runs: `check` never imports onnx.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

COUNTING = """\
counting conventions:
  params       trainable parameters (weights, biases, batch-norm scale and shift), as
               torchvision and torchinfo count them
  buffers      batch-norm running mean and variance and num_batches_tracked, counted apart
  MACs         multiply-accumulates of conv, conv_transpose and linear weights for one
               sample; bias, activations, pooling, normalisation and merges count 0 (the
               convention of torchvision's published GFLOPS)
  memory       parameter memory: parameters and buffers at their dtype's size; activation
               memory: every layer's output for one sample, summed

exit codes: 0 clean (warnings allowed), 1 errors in the spec, 2 bad command-line usage
"""


class UsageError(Exception):
    pass


def _parse_value(text: str) -> Any:
    """A --set value: integer, number, true/false, a tuple `(3, 5)`, or a string."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.startswith("(") and text.endswith(")"):
        items = [item for item in text[1:-1].split(",") if item.strip()]
        return tuple(_parse_value(item) for item in items)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _parse_dims(name: str, text: str) -> list[int | str]:
    dims: list[int | str] = []
    for part in text.replace("x", ",").split(","):
        part = part.strip()
        if part.isdigit() and int(part) > 0:
            dims.append(int(part))
        elif part.isidentifier():
            dims.append(part)
        else:
            raise UsageError(f"--input {name}={text}: {part!r} is not a size (a positive integer "
                             "or a symbol such as N)")
    return dims


def build_parser() -> argparse.ArgumentParser:
    from netspec import __version__

    parser = argparse.ArgumentParser(
        prog="netspec",
        description="Compile a .net network description into a checked, typed graph.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COUNTING)
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    check = commands.add_parser(
        "check", help="check a spec and print every layer's shape, parameters and MACs",
        description="Parse, elaborate and shape-check SPEC; print a table of every layer "
                    "(output shape in the declared layout, parameters, MACs) and the totals, "
                    "or located errors.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COUNTING)
    check.add_argument("spec", metavar="SPEC", help="the .net file to check")
    check.add_argument("--json", action="store_true",
                       help="print the figures as JSON (schema netspec.check/1, see the README)")
    check.add_argument("--set", action="append", metavar="NAME=VALUE", dest="params",
                       help="override a network parameter, e.g. --set classes=10 (repeatable)")
    check.add_argument("--input", action="append", metavar="NAME=DIMS", dest="inputs",
                       help="override an input's shape in its declared layout, e.g. "
                            "--input image=1,3,64,64 (repeatable)")
    check.add_argument("--depth", type=int, metavar="N",
                       help="fold blocks nested deeper than N into one row (0: top level only)")
    return parser


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _print_diagnostics(diagnostics, sources) -> None:
    from netspec.diagnostics import render_all

    text = render_all(diagnostics, sources)
    if _color(sys.stderr):
        text = "\n".join(
            ("\x1b[1;31merror\x1b[0m" + line[5:]) if line.startswith("error:") else
            ("\x1b[1;33mwarning\x1b[0m" + line[7:]) if line.startswith("warning:") else line
            for line in text.split("\n"))
    print(text, file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from netspec.compiler import compile_file
    from netspec.elaborate import UsageError as SpecUsageError

    if args.depth is not None and args.depth < 0:
        raise UsageError("--depth must be 0 or more")
    params = {k: _parse_value(v) for k, v in _pairs(args.params, "--set").items()}
    inputs = {k: _parse_dims(k, v) for k, v in _pairs(args.inputs, "--input").items()}
    path = Path(args.spec)
    if not path.exists():
        raise UsageError(f"cannot read {args.spec!r}: no such file")
    if path.is_dir():
        raise UsageError(f"cannot read {args.spec!r}: it is a directory")
    try:
        result = compile_file(path, params, inputs)
    except SpecUsageError as exc:
        raise UsageError(str(exc)) from None
    diagnostics = result.diagnostics.items
    if args.json:
        from netspec.report import to_json

        graph = result.graph if result.ok else None
        print(json.dumps(to_json(graph, diagnostics, str(path), args.depth), indent=2))
        return EXIT_OK if result.ok else EXIT_SPEC
    if diagnostics:
        _print_diagnostics(diagnostics, result.diagnostics.sources)
    if not result.ok:
        return EXIT_SPEC
    from netspec.report import render_table

    render_table(result.graph, args.depth, styled=_color(sys.stdout))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage, as argparse does
    try:
        return {"check": cmd_check}[args.command](args)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"netspec: error: {exc}\n")
    except RecursionError:
        print("error: the spec nests too deeply for netspec to follow", file=sys.stderr)
        return EXIT_SPEC
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug in netspec: say so in one line, never a traceback
        if os.environ.get("NETSPEC_DEBUG"):
            raise
        print(f"netspec: internal error: {type(exc).__name__}: {exc}\n"
              "this is a bug in netspec; rerun with NETSPEC_DEBUG=1 for details and report it",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
