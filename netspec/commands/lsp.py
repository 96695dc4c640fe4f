"""`netspec lsp`: the language server (LSP over stdio) that editors start; see netspec.lsp.

pygls is imported only here, when the command runs: `netspec check` never loads it.
"""

from __future__ import annotations

import argparse
import sys

from netspec.commands.options import EXIT_SPEC, UsageError


def register(commands) -> None:
    lsp = commands.add_parser(
        "lsp", help="run the language server (LSP over stdio) for editors",
        description="Run netspec's Language Server Protocol server on stdin and stdout, as an "
                    "editor starts it: diagnostics as you type, hover (shape, parameters, MACs, "
                    "the --explain arithmetic), inlay hints of each stage's shape, go to "
                    "definition, document symbols and completion. Needs pygls "
                    "(pip install 'netspec[lsp]').",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    lsp.add_argument("--stdio", action="store_true",
                     help="talk over stdin and stdout (the default and only transport; accepted "
                          "because editors' LSP clients pass it)")
    lsp.add_argument("--debounce", type=float, metavar="MS",
                     help="milliseconds a change waits for the next before it is checked "
                          "(default 150; also the `debounce` setting)")
    lsp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.debounce is not None and args.debounce < 0:
        raise UsageError(f"--debounce: {args.debounce:g} is negative (milliseconds, 0 or more)")
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError as exc:
        print(f"netspec lsp needs pygls and lsprotocol ({exc.name} is not installed): "
              "pip install 'netspec[lsp]'", file=sys.stderr)
        return EXIT_SPEC
    from netspec.lsp.server import build, quiet_logging

    quiet_logging()
    server = build()
    if args.debounce is not None:
        server.configure({"debounce": args.debounce})
    server.start_io()
    return 0
