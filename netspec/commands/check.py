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
    memory = check.add_argument_group("memory (--memory)")
    memory.add_argument("--memory", action="store_true",
                        help="add memory columns and totals: Live (inference: activations live while "
                             "each layer runs, by liveness in execution order) and the inference peak")
    memory.add_argument("--batch", metavar="B",
                        help="the batch the memory figures are for (default: the inputs' batch where "
                             "--input-shape gives it as a number, else 1)")
    memory.add_argument("--train", action="store_true",
                        help="also training memory: parameters, gradients, optimizer state, and the "
                             "activations autograd keeps for the backward pass (a Saved column)")
    memory.add_argument("--optimizer", metavar="NAME",
                        help="the optimizer whose state --train counts: sgd (none), momentum (1 x the "
                             "parameters), adam (2 x; the default)")
    memory.add_argument("--fit", metavar="SIZE",
                        help="the largest batch whose memory (training's with --train, else the "
                             "parameters and the inference peak) fits in SIZE: a number and a unit, "
                             "binary (KiB, MiB, GiB, TiB) or decimal (B, kB, MB, GB, TB), e.g. 16GiB")
    check.set_defaults(handler=run)


def memory_options(args: argparse.Namespace) -> tuple[int | None, str] | None:
    """--memory's batch (None: not given) and optimizer, checked (None without --memory); the
    options that refine it, given without it, are a usage error."""
    given = [flag for flag, value in (("--batch", args.batch), ("--train", args.train),
                                      ("--optimizer", args.optimizer), ("--fit", args.fit))
             if value not in (None, False)]
    if not args.memory:
        if given:
            raise UsageError(f"{given[0]} needs --memory (netspec check SPEC --memory {given[0]} ...)")
        return None
    from netspec.memory import OPTIMIZER_STATES

    batch = None  # the inputs' own batch where they give a number, else 1 (in run)
    if args.batch is not None:
        try:
            batch = int(args.batch)
        except ValueError:
            batch = 0
        if batch < 1:
            raise UsageError(f"--batch: `{args.batch}` is not a batch size (a positive integer)")
    optimizer = args.optimizer or "adam"
    if optimizer not in OPTIMIZER_STATES:
        raise UsageError(f"--optimizer: unknown optimizer `{optimizer}` (choose from "
                         f"{', '.join(OPTIMIZER_STATES)})")
    if args.optimizer is not None and not args.train:
        raise UsageError("--optimizer needs --train (the optimizer's state is training memory)")
    if args.fit is not None:
        from netspec.memory import parse_size

        try:
            args.fit_bytes = parse_size(args.fit)
        except ValueError as error:
            raise UsageError(f"--fit: {error}") from None
    return batch, optimizer


def run(args: argparse.Namespace) -> int:
    import json

    check_depth(args)
    memory_settings = memory_options(args)
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
    memory = fit = None
    if memory_settings is not None and result.ok:
        from netspec.memory import declared_batch, largest_batch
        from netspec.memory import memory as measure

        batch, optimizer = memory_settings
        if batch is None:
            batch = declared_batch(result.graph) or 1
        memory = measure(result.graph, batch, optimizer)
        if args.fit is not None:
            fit = largest_batch(result.graph, args.fit_bytes, args.train, optimizer, args.fit.strip())
    if args.json:
        from netspec.report import to_json

        graph = result.graph if result.ok else None
        print(json.dumps(to_json(graph, diagnostics, str(args.spec), args.depth, args.explain, args.flops,
                                 memory, fit), indent=2))
        return EXIT_OK if result.ok else EXIT_SPEC
    if diagnostics:
        print_diagnostics(diagnostics, result.diagnostics.sources)
    if not result.ok:
        return EXIT_SPEC
    from netspec.report import render_table

    render_table(result.graph, args.depth, styled=color(sys.stdout), explain=args.explain, columns=columns,
                 flops=args.flops, memory=memory, train=args.train, fit=fit)
    return EXIT_OK
