"""The `netspec` command line: one module per subcommand, the options they share in
`netspec.commands.options`. Exit codes: 0 clean, 1 errors in the spec, 2 bad usage.

Each subcommand module has `register(subparsers)`, which adds its parser and sets `handler`,
the function that runs it. Only what a command uses is imported, and only when it runs:
`check` never imports onnx.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from netspec.commands import check, diff, export, features, fmt, graph, import_, lsp, profile, run, torch_
from netspec.commands.options import COUNTING, EXIT_INTERNAL, EXIT_OK, EXIT_SPEC, EXIT_USAGE, UsageError

SUBCOMMANDS = (check, export, run, profile, graph, features, import_, diff, fmt, torch_, lsp)

__all__ = ["main", "build_parser", "UsageError", "EXIT_OK", "EXIT_SPEC", "EXIT_USAGE", "EXIT_INTERNAL"]


def build_parser() -> argparse.ArgumentParser:
    from netspec import __version__

    parser = argparse.ArgumentParser(
        prog="netspec",
        description="Compile a .net network description into a checked, typed graph.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COUNTING)
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic looks for plugins at the first validation by reading the entry points of every
    # installed distribution (tens of milliseconds beside torch); the CLI validates only its own
    # layer attributes, so it skips that unless the user has set the variable.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage, as argparse does
    if args.command is None:  # a bare `netspec`: what it can do
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from netspec.diagnostics import NetspecError

    try:
        return args.handler(args)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"netspec: error: {exc}\n")
    except NetspecError as exc:  # bad weights or input files, unlowerable layers, devices
        from netspec.commands.options import print_diagnostics
        from netspec.diagnostics import Sources

        print_diagnostics(exc.diagnostics, getattr(args, "sources", None) or Sources())
        return EXIT_SPEC
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
