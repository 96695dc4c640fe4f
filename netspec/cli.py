"""The `netspec` command line. Exit codes: 0 clean, 1 errors in the spec, 2 bad usage.

Only what a command uses is imported, and only when it runs: `check` never imports onnx.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from netspec.draw import add_graph_parser, cmd_graph
from netspec.features import add_features_parser, cmd_features
from netspec.files import output_path

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


def add_spec_options(parser: argparse.ArgumentParser, shape_flag: str = "--input") -> None:
    """--set and --input (--input-shape where --input names a data file): how every command
    that compiles a spec overrides its parameters and input shapes."""
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", dest="params",
                        help="override a network parameter, e.g. --set classes=10 (repeatable)")
    parser.add_argument(shape_flag, action="append", metavar="NAME=DIMS", dest="inputs",
                        help="override an input's shape in its declared layout, e.g. "
                             f"{shape_flag} image=1,3,64,64 (repeatable)")


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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--opset", type=int, default=None, metavar="N",
                        help="ONNX opset (default 17; 13 to 26, what onnxruntime 1.31 loads)")
    common.add_argument("--batch", type=int, default=None, metavar="N",
                        help="fix the batch size (default: dynamic, the input's symbol)")
    common.add_argument("--weights", metavar="FILE",
                        help=".safetensors or .npz keyed by parameter name (default: seeded "
                             "initialisation as PyTorch's defaults)")
    common.add_argument("--seed", type=int, default=0, help="seed of the initialisation (default 0)")

    export = commands.add_parser(
        "export", parents=[common], help="lower a spec to an ONNX file",
        description="Lower SPEC to ONNX: inputs and outputs keep the spec's names, nodes are named "
                    "after the layers and initializers after the parameters (layer1.0.conv1.weight). "
                    "The model passes onnx.checker's full check; the file is written atomically.")
    export.add_argument("spec", metavar="SPEC", help="the .net file")
    add_spec_options(export)
    export.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE", help="the .onnx file to write")

    run = commands.add_parser(
        "run", parents=[common], help="run a spec or an .onnx file with onnxruntime",
        description="Run SPEC (lowered on the fly) or an .onnx file with onnxruntime and print "
                    "each output's shape and values (or the top classes).")
    run.add_argument("spec", metavar="SPEC_OR_ONNX", help="a .net spec or an .onnx model")
    run.add_argument("--input", dest="input_file", metavar="FILE",
                     help=".npy (one input), .npz (one array per input name) or an image "
                          "(.png, .jpg: resized to the input, scaled to [0, 1]); default: "
                          "seeded random normal values")
    add_spec_options(run, "--input-shape")
    run.add_argument("--normalize", choices=["imagenet", "none"], default="none",
                     help="for an image: subtract ImageNet's mean and divide by its deviation")
    run.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="execution provider")
    run.add_argument("--top", type=int, metavar="K", help="print the K highest scores of each output")
    run.add_argument("-o", "--output", type=output_path, metavar="FILE.npz", help="save the outputs")
    run.add_argument("--repeat", type=int, default=0, metavar="N",
                     help="time N more runs and print the median and p90 latency")
    add_graph_parser(commands)
    add_features_parser(commands)
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

    if args.depth is not None and args.depth < 0:
        raise UsageError("--depth must be 0 or more")
    columns = None
    if args.columns is not None:
        from netspec.report import OPTIONAL_COLUMNS

        columns = tuple(c.strip() for c in args.columns.split(",") if c.strip())
        unknown = [c for c in columns if c not in OPTIONAL_COLUMNS]
        if unknown:
            raise UsageError(f"--columns: unknown column {unknown[0]!r} (choose from "
                             f"{', '.join(OPTIONAL_COLUMNS)})")
    result = _compile(args)
    path = Path(args.spec)
    diagnostics = result.diagnostics.items
    if args.json:
        from netspec.report import to_json

        graph = result.graph if result.ok else None
        print(json.dumps(to_json(graph, diagnostics, str(path), args.depth, args.explain), indent=2))
        return EXIT_OK if result.ok else EXIT_SPEC
    if diagnostics:
        _print_diagnostics(diagnostics, result.diagnostics.sources)
    if not result.ok:
        return EXIT_SPEC
    from netspec.report import render_table

    render_table(result.graph, args.depth, styled=_color(sys.stdout), explain=args.explain, columns=columns)
    return EXIT_OK


def _compile(args: argparse.Namespace):
    """Compile args.spec with its --set and --input overrides. A missing spec, an unknown
    parameter or input name is a usage error; errors in the spec are in the result."""
    from pathlib import Path

    from netspec.compiler import compile_file
    from netspec.elaborate import UsageError as SpecUsageError

    path = Path(args.spec)
    if not path.is_file():
        raise UsageError(f"cannot read {args.spec!r}: " + ("it is a directory" if path.is_dir() else "no such file"))
    params = {k: _parse_value(v) for k, v in _pairs(args.params, "--set").items()}
    inputs = {k: _parse_dims(k, v) for k, v in _pairs(args.inputs, "--input").items()}
    try:
        return compile_file(path, params, inputs)
    except SpecUsageError as exc:
        raise UsageError(str(exc)) from None


def _network(args: argparse.Namespace):
    """Compile the spec for export, run, graph or features; spec errors are printed and raise
    SystemExit(1)."""
    from netspec.api import Network

    result = _compile(args)
    if result.diagnostics.items:
        _print_diagnostics(result.diagnostics.items, result.diagnostics.sources)
    if not result.ok:
        raise SystemExit(EXIT_SPEC)
    args.sources = result.diagnostics.sources  # so a lowering error can quote the spec
    return Network(result)


def _export_options(args: argparse.Namespace) -> dict:
    from netspec.lower import MAX_OPSET, MIN_OPSET

    if args.opset is not None and not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise UsageError(f"--opset {args.opset}: choose {MIN_OPSET} to {MAX_OPSET} "
                         "(what onnxruntime 1.31 loads)")
    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch must be at least 1")
    return {"opset": args.opset, "batch": args.batch, "weights": args.weights, "seed": args.seed}


def cmd_export(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    options = _export_options(args)
    net = _network(args)
    start = time.perf_counter()
    detached: dict = {}
    with _weights_progress(net, options) as advance:
        model = net.lowered(**options, progress=advance, detached=detached)
    from netspec.runtime import save_model

    with _status(f"writing {args.output}"):
        files = save_model(model, Path(args.output), detached)
    size = sum(f.stat().st_size for f in files)
    from netspec.report import human_bytes

    print(f"wrote {', '.join(map(str, files))} ({human_bytes(size)}, opset "
          f"{model.opset_import[0].version}, IR {model.ir_version}, "
          f"{len(model.graph.node)} nodes) in {time.perf_counter() - start:.2f} s")
    return EXIT_OK


def _weights_progress(net, options: dict):
    """A progress bar over parameter elements while seeded weights are generated, on a
    terminal and for models large enough to wait for (over 10 M parameters)."""
    import contextlib

    elements = sum(spec.elements for spec in net.graph.parameter_specs().values())
    if options.get("weights") is not None or elements < 10_000_000 or not _color(sys.stderr):
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    @contextlib.contextmanager
    def bar():
        with Progress(TextColumn("generating weights"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeRemainingColumn(), console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("weights", total=elements)
            yield lambda n: progress.advance(task, n)
    return bar()


def _status(message: str):
    """A spinner on a terminal (weights of a large model take a while), nothing elsewhere."""
    import contextlib

    if not _color(sys.stderr):
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(message)


def cmd_run(args: argparse.Namespace) -> int:
    import statistics
    import time
    from pathlib import Path

    import numpy as np

    from netspec import runtime

    if args.repeat < 0:
        raise UsageError("--repeat must be 0 or more")
    if args.top is not None and args.top < 1:
        raise UsageError("--top must be at least 1")
    if args.spec.endswith(".onnx"):
        if not Path(args.spec).is_file():
            raise UsageError(f"cannot read {args.spec!r}: no such file")
        session = runtime.session(args.spec, args.device)
        layouts = {}  # an ONNX file does not say; images are laid out NCHW
    else:
        options = _export_options(args)
        net = _network(args)
        session = net.session(args.device, **options)
        layouts = {n: net.graph.node(n).output.layout.axes for n in net.graph.inputs}
    specs = []
    for i in session.get_inputs():
        default = {2: "NC", 4: "NCHW"}.get(len(i.shape), "NC" + "X" * (len(i.shape) - 2))
        specs.append((i.name, list(i.shape), layouts.get(i.name, default), np.float32))
    if args.input_file:
        feeds = runtime.read_inputs(Path(args.input_file), specs, args.normalize)
    else:
        rng = np.random.default_rng(args.seed)
        feeds = {name: rng.standard_normal([d if isinstance(d, int) else 1 for d in shape]).astype(np.float32)
                 for name, shape, _, _ in specs}
    outputs = session.run(None, feeds)
    names = [o.name for o in session.get_outputs()]
    for name, value in zip(names, outputs):
        print(f"{name}: {list(value.shape)} {value.dtype}, min {value.min():.4g}, max {value.max():.4g}, "
              f"mean {value.mean():.4g}")
        if args.top:
            flat = value.reshape(value.shape[0], -1)
            for row, scores in enumerate(flat):
                best = np.argsort(-scores)[: args.top]
                shown = ", ".join(f"{int(k)}: {scores[k]:.4g}" for k in best)
                print(f"  sample {row} top {len(best)}: {shown}")
    if args.output:
        _save_outputs(Path(args.output), dict(zip(names, outputs)))
        print(f"wrote {args.output}")
    if args.repeat:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - start)
        times.sort()
        p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
        print(f"latency over {args.repeat} runs ({args.device}): median "
              f"{statistics.median(times) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms")
    return EXIT_OK


def _save_outputs(path, arrays: dict) -> None:
    import numpy as np

    from netspec.files import write_with_handle

    write_with_handle(path, lambda handle: np.savez(handle, **arrays))


def NetspecErrorType():  # noqa: N802 - imported lazily, used in an except clause
    from netspec.diagnostics import NetspecError

    return NetspecError


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic looks for plugins at the first validation by reading the entry points of every
    # installed distribution (tens of milliseconds beside torch); the CLI validates only its own
    # layer attributes, so it skips that unless the user has set the variable.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage, as argparse does
    try:
        return {"check": cmd_check, "export": cmd_export, "run": cmd_run,
                "graph": cmd_graph, "features": cmd_features}[args.command](args)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"netspec: error: {exc}\n")
    except NetspecErrorType() as exc:  # bad weights or input files, unlowerable layers, devices
        from netspec.diagnostics import Sources

        _print_diagnostics(exc.diagnostics, getattr(args, "sources", None) or Sources())
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


if __name__ == "__main__":
    sys.exit(main())
