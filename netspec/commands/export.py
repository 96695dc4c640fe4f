"""`netspec export SPEC -o FILE.onnx`: the spec lowered to an ONNX file, written atomically."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from netspec.commands.options import (EXIT_OK, UsageError, add_lowering_options, add_spec_options,
                                      color, lowering_options, model_weights, network, status)
from netspec.files import output_path


def register(commands) -> None:
    export = commands.add_parser(
        "export", help="lower a spec to an ONNX file",
        description="Lower SPEC to ONNX: inputs and outputs keep the spec's names, nodes are named "
                    "after the layers and initializers after the parameters (layer1.0.conv1.weight). "
                    "The model passes onnx.checker's full check; the file is written atomically.")
    export.add_argument("spec", metavar="SPEC", help="the .net file, or an .onnx model (imported with its weights)")
    add_spec_options(export)
    add_lowering_options(export, "export")
    export.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE",
                        help="the .onnx file to write")
    export.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    suffix = Path(args.output).suffix.lower()
    if suffix != ".onnx" and not Path(args.output).is_dir():  # a folder: the writer says so
        raise UsageError(f"-o {args.output}: an ONNX model is written to a file ending in .onnx "
                         f"(got {'`' + suffix + '`' if suffix else 'no suffix'}); write e.g. "
                         f"-o {_onnx_name(Path(args.output))}")
    options = lowering_options(args)
    net = network(args)
    options = model_weights(args, options)  # an .onnx SPEC keeps its own weights
    start = time.perf_counter()
    detached: dict = {}
    with _weights_progress(net, options) as advance:
        model = net.lowered(**options, progress=advance, detached=detached)
    from netspec.runtime import save_model

    with status(f"writing {args.output}"):
        files = save_model(model, Path(args.output), detached)
    size = sum(f.stat().st_size for f in files)
    from netspec.report import human_bytes

    print(f"wrote {', '.join(map(str, files))} ({human_bytes(size)}, opset "
          f"{model.opset_import[0].version}, IR {model.ir_version}, "
          f"{len(model.graph.node)} nodes) in {time.perf_counter() - start:.2f} s")
    return EXIT_OK


def _onnx_name(path: Path) -> str:
    """The name to suggest: `m.onnx` for `m.txt`, and for `m.onnx.tmp` too."""
    return path.stem if path.stem.lower().endswith(".onnx") else path.with_suffix(".onnx").name


def _weights_progress(net, options: dict):
    """A progress bar over parameter elements while seeded weights are generated, on a
    terminal and for models large enough to wait for (over 10 M parameters)."""
    import contextlib

    elements = sum(spec.elements for spec in net.graph.parameter_specs().values())
    if options.get("weights") is not None or elements < 10_000_000 or not color(sys.stderr):
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
