"""`netspec diff A B`: what changed between two specs (or ONNX models, imported in memory as
`check` does): layers added, removed and changed, and the deltas of the totals, laid out as a
code diff is (unchanged runs folded, changed values side by side) or as JSON."""

from __future__ import annotations

import argparse
import copy
import sys

from netspec.commands.options import EXIT_OK, EXIT_SPEC, UsageError, add_spec_options, color, compile_spec, print_diagnostics

EXIT_DIFFERENT = 1  # as diff(1) and `git diff --exit-code`: 1 when the networks differ

EPILOG = """\
exit codes: 0 the networks are the same, 1 they differ (or a spec has errors, printed as
`netspec check` prints them; --json then has "ok": false), 2 bad command-line usage
"""


def register(commands) -> None:
    command = commands.add_parser(
        "diff", help="compare two specs or ONNX models layer by layer",
        description="Compare A and B (each a .net spec, or an .onnx model imported in memory as "
                    "`netspec check` does): the layers added, removed and changed (attributes, "
                    "output shape, parameters, MACs) and the deltas of the totals. Layers are "
                    "aligned by name (their state_dict prefix), then what is left by structure "
                    "(kind and attributes, in order), so a layer renamed in place is one changed "
                    "layer. --set and --input-shape apply to both.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    command.add_argument("a", metavar="A", help="the old spec (.net) or model (.onnx)")
    command.add_argument("b", metavar="B", help="the new spec (.net) or model (.onnx)")
    command.add_argument("--json", action="store_true",
                         help="print the differences as JSON (schema netspec.diff/1, see the README)")
    command.add_argument("-U", "--context", type=int, default=1, metavar="N",
                         help="unchanged layers shown around each difference (default 1); the "
                              "rest of an unchanged run is folded into one line")
    add_spec_options(command)
    command.set_defaults(handler=run)


def compile_side(args: argparse.Namespace, path: str):
    """One side compiled exactly as `check` compiles its SPEC (the same options, .onnx too)."""
    side = copy.copy(args)
    side.spec = path
    return compile_spec(side)


def run(args: argparse.Namespace) -> int:
    import json

    if args.context < 0:
        raise UsageError("--context must be 0 or more")
    results = [compile_side(args, args.a), compile_side(args, args.b)]
    if not all(r.ok for r in results):
        if args.json:
            diagnostics = [d.to_json() for r in results for d in r.diagnostics.items]
            print(json.dumps({"schema": "netspec.diff/1", "a": args.a, "b": args.b, "ok": False,
                              "diagnostics": diagnostics}, indent=2))
        else:
            for result in results:
                if result.diagnostics.items:
                    print_diagnostics(result.diagnostics.items, result.diagnostics.sources)
        return EXIT_SPEC
    if not args.json:  # warnings as check prints them; --json leaves them to `check --json`
        for result in results:
            if result.diagnostics.items:
                print_diagnostics(result.diagnostics.items, result.diagnostics.sources)
    from netspec.diff import diff, to_json

    result = diff(results[0].graph, results[1].graph)
    if args.json:
        print(json.dumps(to_json(result, args.a, args.b), indent=2))
    else:
        render(result, args.a, args.b, args.context, styled=color(sys.stdout))
    return EXIT_OK if result.same else EXIT_DIFFERENT


# ---------------------------------------------------------------- the text diff

MARKS = {"same": " ", "changed": "~", "removed": "-", "added": "+"}
STYLES = {"same": "", "changed": "yellow", "removed": "red", "added": "green"}


def figures(params: int, macs: int) -> list[str]:
    """A row's params and MACs cells, empty where zero."""
    return [f"{params:,} params" if params else "", f"{macs:,} MACs" if macs else ""]


def shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return "(" + ", ".join(map(shown, value)) + ")"
    return "none" if value is None else str(value)


def whole_instances(result, status: str) -> dict[str, int]:
    """Block instances whose every layer is `status` (added or removed): name -> layer count."""
    side = "b" if status == "added" else "a"
    total: dict[str, int] = {}
    marked: dict[str, int] = {}
    for entry in result.entries:
        layer = getattr(entry, side)
        if layer is None:
            continue
        for name, _ in layer.blocks:
            total[name] = total.get(name, 0) + 1
            if entry.status == status:
                marked[name] = marked.get(name, 0) + 1
    return {name: count for name, count in marked.items() if total[name] == count}


def lines(result, context: int) -> list:
    """The diff's body as lines, each (text, style) or a list of them: unchanged runs folded past `context` layers on
    each side of a difference, a block instance added or removed whole shown as one line."""
    whole = {status: whole_instances(result, status) for status in ("added", "removed")}
    rows: list[tuple[str, str, list[str]]] = []   # (status, first line, change lines)
    entries = result.entries
    index = 0
    while index < len(entries):
        entry = entries[index]
        layer = entry.layer
        if entry.status in whole:
            instance = next(((n, call) for n, call in layer.blocks if n in whole[entry.status]), None)
            run = []
            if instance is not None:
                for later in entries[index:]:
                    if later.status != entry.status or instance not in later.layer.blocks:
                        break
                    run.append(later)
            if instance is not None and len(run) == whole[entry.status][instance[0]]:
                # the whole instance, its layers in one run: one line, their figures summed
                output = run[-1].layer.output
                params = sum(e.layer.params for e in run)
                macs = sum(e.layer.macs for e in run)
                rows.append((entry.status, [instance[0], instance[1], f"{len(run)} layers",
                                            str(output), *figures(params, macs)], []))
                index += len(run)
                continue
        if entry.status == "changed":
            name = f"{entry.a.name} -> {entry.b.name}" if entry.renamed else layer.name
            changes = [(c.field, shown(c.old), shown(c.new)) for c in entry.changes if c.field != "name"]
            rows.append(("changed", [name, layer.summary, "", "", "", ""], changes))
        else:
            rows.append((entry.status, [layer.name, layer.summary, "", str(layer.output),
                                        *figures(layer.params, layer.macs)], []))
        index += 1

    widths = [max((len(r[1][i]) for r in rows), default=0) for i in range(6)]
    out: list[tuple[str, str]] = []
    index = 0
    while index < len(rows):
        status = rows[index][0]
        if status == "same":
            end = index
            while end < len(rows) and rows[end][0] == "same":
                end += 1
            keep_before = context if index > 0 else 0
            keep_after = context if end < len(rows) else 0
            if end - index > keep_before + keep_after + 1:
                out += [row_line(r, widths) for r in rows[index:index + keep_before]]
                folded = end - index - keep_before - keep_after
                out.append((f"  \u2026 {folded} unchanged layer{'s' if folded != 1 else ''} \u2026", "dim"))
                out += [row_line(r, widths) for r in rows[end - keep_after:end]]
            else:
                out += [row_line(r, widths) for r in rows[index:end]]
            index = end
            continue
        out.append(row_line(rows[index], widths))
        field_width = max((len(f) for f, _, _ in rows[index][2]), default=0)
        # the old value in the removed colour, the new in the added one, as a word diff shows them
        out += [[(f"      {f.ljust(field_width)}  ", "yellow"), (old, "red"), (" -> ", "yellow"), (new, "green")]
                for f, old, new in rows[index][2]]
        index += 1
    return out


def row_line(row, widths: list[int]) -> tuple[str, str]:
    status, cells, _ = row
    # name, op, layer count and output left-aligned; params and MACs right-aligned, as check's
    parts = [cells[i].ljust(widths[i]) if i < 4 else cells[i].rjust(widths[i])
             for i in range(6) if widths[i]]
    return (f"{MARKS[status]} " + "  ".join(parts)).rstrip(), STYLES[status]


def summary(result) -> list[tuple[str, str]]:
    counts = {s: len(result.of(s)) for s in ("added", "removed", "changed", "same")}
    out = [(f"{counts['added']} added, {counts['removed']} removed, {counts['changed']} changed, "
            f"{counts['same']} unchanged", "bold")]
    for label, figure in (("Parameters", "params"), ("Buffers", "buffers"), ("MACs", "macs"),
                          ("Layers", "layers")):
        old, new = getattr(result.totals_a, figure), getattr(result.totals_b, figure)
        delta = new - old
        change = f"  ({delta:+,})" if delta else ""
        out.append((f"{label:<11}{old:,} -> {new:,}{change}" if delta else f"{label:<11}{old:,}",
                    "green" if delta > 0 else "red" if delta < 0 else ""))
    return out


def render(result, path_a: str, path_b: str, context: int = 1, styled: bool = False, file=None) -> None:
    """Print the diff; styled (rich) on a terminal, the same text plain elsewhere (without
    importing rich)."""
    pieces = [(f"--- {path_a} (network {result.name_a})", "bold red"),
              (f"+++ {path_b} (network {result.name_b})", "bold green"), ("", "")]
    pieces += lines(result, context) if not result.same else [("  (no differences)", "dim")]
    pieces += [("", "")] + summary(result)
    if styled:
        from rich.console import Console
        from rich.text import Text

        text = Text()
        for line in pieces:
            for chunk, style in (line if isinstance(line, list) else [line]):
                text.append(chunk, style=style)
            text.append("\n")
        Console(highlight=False, file=file).print(text, soft_wrap=True, end="")
    else:
        (file or sys.stdout).write("".join(
            "".join(chunk for chunk, _ in (line if isinstance(line, list) else [line])) + "\n"
            for line in pieces))
