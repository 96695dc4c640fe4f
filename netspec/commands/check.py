"""`netspec check SPEC`: the table of every layer's shape, parameters and MACs, or located errors."""

from __future__ import annotations

import argparse
import sys

from netspec.commands.options import (COUNTING, EXIT_OK, EXIT_SPEC, UsageError, add_spec_options,
                                      check_depth, color, compile_spec, print_diagnostics)


def register(commands) -> None:
    check = commands.add_parser(
        "check", help="check a spec and print every layer's shape, parameters and MACs",
        description="Parse, elaborate and shape-check SPEC (a .net file, or an .onnx model imported "
                    "in memory as `netspec import` would); print a table of every layer "
                    "(output shape in the declared layout, parameters, MACs) and the totals, "
                    "or located errors.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COUNTING)
    check.add_argument("spec", metavar="SPEC",
                       help="the .net file to check, or an .onnx model (imported in memory first)")
    check.add_argument("--json", action="store_true",
                       help="print the figures as JSON (schema netspec.check/1, see the README)")
    add_spec_options(check)
    check.add_argument("--depth", type=int, metavar="N",
                       help="fold blocks nested deeper than N into one row (0: top level only)")
    check.add_argument("--explain", action="store_true",
                       help="show each layer's arithmetic with the real numbers: the output-size "
                            "formula per axis, the parameter sum, the MAC product, and a note where "
                            "a division was not exact (also in --json)")
    check.add_argument("--columns", metavar="LIST",
                       help="optional columns, comma-separated: rf (receptive field), jump (effective "
                            "stride), start (centre of the first unit), from (each row's inputs; "
                            "shown by default when the graph branches); e.g. --columns rf,jump,start")
    check.add_argument("--flops", action="store_true",
                       help="also show FLOPs, 2 x MACs (a multiply and an add each), in the table, "
                            "the totals and --json")
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    check_depth(args)
    columns = None
    if args.columns is not None:
        from netspec.report import OPTIONAL_COLUMNS

        columns = tuple(c.strip() for c in args.columns.split(",") if c.strip())
        unknown = [c for c in columns if c not in OPTIONAL_COLUMNS]
        if unknown:
            raise UsageError(f"--columns: unknown column `{unknown[0]}` (choose from "
                             f"{', '.join(OPTIONAL_COLUMNS)})")
    result = compile_spec(args)
    diagnostics = result.diagnostics.items
    if args.json:
        from netspec.report import to_json

        graph = result.graph if result.ok else None
        print(json.dumps(to_json(graph, diagnostics, str(args.spec), args.depth, args.explain, args.flops), indent=2))
        return EXIT_OK if result.ok else EXIT_SPEC
    if diagnostics:
        print_diagnostics(diagnostics, result.diagnostics.sources)
    if not result.ok:
        return EXIT_SPEC
    from netspec.report import render_table

    render_table(result.graph, args.depth, styled=color(sys.stdout), explain=args.explain, columns=columns,
                 flops=args.flops)
    return EXIT_OK
