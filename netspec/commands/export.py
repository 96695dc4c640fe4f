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
    export.add_argument("--quantize", choices=["int8"], metavar="int8",
                        help="int8 static quantization through onnxruntime.quantization: QDQ nodes, "
                             "weights QInt8 per channel, activations QUInt8 (U8S8, what onnxruntime's "
                             "x86 CPU kernels run fastest), ranges calibrated by MinMax")
    export.add_argument("--calibrate", metavar="DIR",
                        help="with --quantize: calibrate on the images (.png, .jpg, ...) or .npy/.npz "
                             "files in DIR, one sample a file, read as `netspec run --input` reads them "
                             "(default: seeded random inputs, with a warning)")
    export.add_argument("--calibration-samples", type=int, metavar="N",
                        help="with --quantize: calibrate on the first N files of DIR (default all), or "
                             "on N random samples without --calibrate (default 16)")
    export.add_argument("--normalize", choices=["imagenet", "none"], default="none",
                        help="with --calibrate: normalise calibration images as `netspec run --normalize`")
    export.add_argument("--dtype", choices=["f16", "bf16"],
                        help="weights and compute in f16 or bf16, converted by onnxruntime's float16 "
                             "converter; the layers that need f32 for accuracy (softmax, the statistics "
                             "of layer and group norms, ...) stay f32 behind Casts, and the export says "
                             "which, and which layers onnxruntime has no kernel for in that dtype here")
    export.add_argument("--f32-io", action="store_true",
                        help="with --dtype: the inputs and outputs stay f32, cast inside the model")
    export.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    suffix = Path(args.output).suffix.lower()
    if suffix != ".onnx" and not Path(args.output).is_dir():  # a folder: the writer says so
        raise UsageError(f"-o {args.output}: an ONNX model is written to a file ending in .onnx "
                         f"(got {'`' + suffix + '`' if suffix else 'no suffix'}); write e.g. "
                         f"-o {_onnx_name(Path(args.output))}")
    _check_quantize_options(args)
    _check_dtype_options(args)
    options = lowering_options(args)
    net = network(args)
    options = model_weights(args, options)  # an .onnx SPEC keeps its own weights
    if args.dtype:
        from netspec import precision

        precision.check_convertible(net.graph, args.dtype)
        if options["opset"] is None:
            options["opset"] = precision.default_opset(args.dtype)
    start = time.perf_counter()
    detached: dict = {}
    with _weights_progress(net, options) as advance:
        # quantize_static reads a whole model: nothing detached
        model = net.lowered(**options, progress=advance, detached=None if args.quantize else detached)
    if args.quantize:
        model = _quantized(args, net, options, model)
    notes: list[str] = []
    if args.dtype:
        with status(f"converting to {args.dtype}"):
            model, notes = _converted(args, net, model, detached)
    from netspec.runtime import save_model

    with status(f"writing {args.output}"):
        files = save_model(model, Path(args.output), detached)
    size = sum(f.stat().st_size for f in files)
    from netspec.report import human_bytes

    print(f"wrote {', '.join(map(str, files))} ({human_bytes(size)}, opset "
          f"{model.opset_import[0].version}, IR {model.ir_version}, "
          f"{len(model.graph.node)} nodes) in {time.perf_counter() - start:.2f} s")
    for note in notes:
        print(note, file=sys.stderr if note.startswith("warning") else sys.stdout)
    return EXIT_OK


def _check_dtype_options(args: argparse.Namespace) -> None:
    if args.f32_io and not args.dtype:
        raise UsageError("--f32-io keeps a converted model's inputs and outputs f32; add --dtype f16 "
                         "(or bf16) to convert")
    if args.dtype and args.quantize:
        raise UsageError(f"--dtype {args.dtype} and --quantize int8 are two precisions; choose one")


def _converted(args: argparse.Namespace, net, model, detached: dict) -> tuple:
    """`model` in args.dtype (netspec.precision), and what to tell of it: the layers kept in f32,
    and per device the layers onnxruntime has no kernel for in that dtype."""
    from netspec import precision

    kinds = precision.layer_kinds(net.graph)
    converted = precision.convert(model, net.graph, args.dtype, args.f32_io, detached)
    notes = [precision.describe_kept(converted.kept, args.dtype)]
    for device in precision.devices():
        gaps = precision.kernel_gaps(converted.model, args.dtype, device)
        if gaps:
            notes.append(precision.describe_gaps(gaps, kinds, args.dtype, device))
    return converted.model, notes


def _check_quantize_options(args: argparse.Namespace) -> None:
    """--calibrate, --calibration-samples and --normalize belong to --quantize (exit 2 without it);
    a calibration folder that is missing or not a folder is a usage error too."""
    if not args.quantize:
        given = [flag for flag, value in (("--calibrate", args.calibrate),
                                          ("--calibration-samples", args.calibration_samples),
                                          ("--normalize", args.normalize != "none")) if value]
        if given:
            raise UsageError(f"{given[0]} applies to --quantize int8 only; add --quantize int8 to "
                             "export a quantized model")
        return
    if args.calibration_samples is not None and args.calibration_samples < 1:
        raise UsageError(f"--calibration-samples {args.calibration_samples}: give at least 1")
    if args.calibrate is not None:
        folder = Path(args.calibrate)
        if not folder.exists():
            raise UsageError(f"--calibrate {args.calibrate}: no such folder")
        if not folder.is_dir():
            raise UsageError(f"--calibrate {args.calibrate}: it is a file; give the folder that holds "
                             "the calibration images or .npy files")
    elif args.normalize != "none":
        raise UsageError("--normalize applies to --calibrate images; without --calibrate the "
                         "calibration data is random")


def _quantized(args: argparse.Namespace, net, options: dict, model):
    """`model` quantized to int8 (netspec.quantize), calibrated on --calibrate or seeded noise."""
    from netspec import quantize

    batches, warning = quantize.calibration_batches(net.input_specs(options["batch"]), args.calibrate,
                                                    args.calibration_samples, args.normalize, options["seed"])
    if warning:
        print(warning, file=sys.stderr)
    with _calibration_progress(len(batches)) as advance:
        return quantize.quantize_int8(model, batches, advance)


def _calibration_progress(total: int):
    """A progress bar over calibration batches, on a terminal."""
    import contextlib

    if not color(sys.stderr):
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    @contextlib.contextmanager
    def bar():
        with Progress(TextColumn("calibrating"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("calibration", total=total)
            yield lambda: progress.advance(task)
    return bar()


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
