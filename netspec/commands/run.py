"""`netspec run SPEC_OR_ONNX`: run a spec (lowered on the fly) or an ONNX file in onnxruntime."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from netspec.commands.onnx_spec import is_onnx_model
from netspec.commands.options import (EXIT_OK, UsageError, add_data_input, add_lowering_options,
                                      add_spec_options, describe_array, looks_like_shape,
                                      lowering_options, network)
from netspec.files import output_path


def register(commands) -> None:
    run_ = commands.add_parser(
        "run", help="run a spec or an .onnx file with onnxruntime",
        description="Run SPEC (lowered on the fly) or an .onnx file with onnxruntime and print "
                    "each output's shape and values (or the top classes).")
    run_.add_argument("spec", metavar="SPEC_OR_ONNX", help="a .net spec or an .onnx model")
    add_data_input(run_)
    add_spec_options(run_, data_input=True)
    add_lowering_options(run_, "run")
    run_.add_argument("--normalize", choices=["imagenet", "none"], default="none",
                      help="for an image: subtract ImageNet's mean and divide by its deviation")
    run_.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="execution provider")
    run_.add_argument("--top", type=int, metavar="K", help="print the K highest scores of each output")
    run_.add_argument("-o", "--output", type=output_path, metavar="FILE.npz",
                      help="save the outputs to a .npz, one array per output name (bf16 as float32)")
    run_.add_argument("--repeat", type=int, default=0, metavar="N",
                      help="time N more runs and print the median and p90 latency")
    run_.set_defaults(handler=run)


def check_data_input(args: argparse.Namespace) -> None:
    """`--input digits=1,1,32,32` where a data file was meant to be a shape: say which option.
    A data file that does not exist is a usage error too (exit 2), as a missing spec is."""
    value = args.input_file
    if value and looks_like_shape(value) and not Path(value).exists():
        raise UsageError(f"--input {value}: `--input` names a data file (.npy, .npz or an image) "
                         f"in `netspec {args.command}`; to set an input's shape write "
                         f"--input-shape {value}")
    if value and not Path(value).exists():
        raise UsageError(f"--input {value}: no such file")
    if value and Path(value).is_dir():
        raise UsageError(f"--input {value}: it is a directory, not a data file")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from netspec import runtime

    if args.repeat < 0:
        raise UsageError("--repeat must be 0 or more")
    if args.top is not None and args.top < 1:
        raise UsageError("--top must be at least 1")
    if args.batch is not None and args.batch < 1:  # (a spec's options are checked again below)
        raise UsageError("--batch must be at least 1")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: a seed is 0 or more")
    if args.output:
        check_npz_output(args.output)
    check_data_input(args)
    if is_onnx_model(args.spec):  # run as it is, not imported
        if not Path(args.spec).is_file():
            raise UsageError(f"cannot read `{args.spec}`: " + ("it is a directory" if Path(args.spec).is_dir()
                                                               else "no such file"))
        check_spec_only_options(args)
        session = runtime.session(args.spec, args.device)
        specs = runtime.describe_inputs(session)  # an ONNX file does not say; images are laid out NCHW
        locate = None
    else:
        options = lowering_options(args)
        net = network(args)
        session = net.session(args.device, **options)
        specs = net.input_specs(options["batch"])
        locate = net.locate
    if args.input_file:
        feeds = runtime.read_inputs(Path(args.input_file), specs, args.normalize)
    else:
        feeds = runtime.feeds(specs, None, args.seed, args.batch)

    def execute():
        try:
            return runtime.run(session, feeds)
        except runtime.OnnxRuntimeError as exc:
            raise (locate(exc) if locate else exc) from None

    outputs = execute()
    names = [o.name for o in session.get_outputs()]
    for name, value in zip(names, outputs):
        print(f"{name}: {describe_array(value)}")
        if args.top:
            flat = np.asarray(value, np.float64).reshape(value.shape[0], -1) if value.ndim else \
                np.asarray(value, np.float64).reshape(1, 1)
            for row, scores in enumerate(flat):
                best = np.argsort(-scores, kind="stable")[: args.top]
                shown = ", ".join(f"{int(k)}: {scores[k]:.4g}" for k in best)
                print(f"  sample {row} top {len(best)}: {shown}")
    if args.output:
        _save_outputs(Path(args.output), dict(zip(names, outputs)))
        print(f"wrote {args.output}")
    if args.repeat:
        import statistics  # 3 ms of imports (fractions, decimal): not on every command's start-up

        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            execute()
            times.append(time.perf_counter() - start)
        times.sort()
        p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
        print(f"latency over {args.repeat} runs ({args.device}): median "
              f"{statistics.median(times) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms")
    return EXIT_OK


def check_npz_output(output: str) -> None:
    """`-o FILE`: the outputs are saved as a .npz; another suffix is refused (exit 2), as
    `export` refuses a model file that does not end in .onnx."""
    path = Path(output)
    suffix = path.suffix.lower()
    if suffix != ".npz" and not path.is_dir():  # a folder: the writer says so
        raise UsageError(f"-o {output}: the outputs are saved as a .npz, one array per output "
                         f"(got {'`' + suffix + '`' if suffix else 'no suffix'}); write e.g. "
                         f"-o {path.with_suffix('.npz').name}")


def check_spec_only_options(args: argparse.Namespace) -> None:
    """An .onnx model is run as it is: the options that compile or lower a spec would be
    ignored silently, so they are refused."""
    given = [flag for flag, value in (("--set", args.params), ("--input-shape", args.inputs),
                                      ("--opset", args.opset), ("--weights", args.weights),
                                      ("--weights-prefix", args.weights_prefix)) if value]
    if given:
        raise UsageError(f"{given[0]} applies to a spec; `{args.spec}` is an ONNX model, run as it is "
                         "(its inputs, opset and weights are in the file)")


def _save_outputs(path, arrays: dict) -> None:
    """The outputs to a .npz, atomically. numpy has no bfloat16 (an .npz would keep its raw
    bytes only), so bf16 outputs are saved as float32, which holds every bf16 value exactly."""
    import numpy as np

    from netspec.files import write_with_handle
    from netspec.runtime import numeric_kind

    arrays = {name: (value.astype(np.float32) if numeric_kind(value.dtype) == "float"
                     and value.dtype.itemsize == 2 and value.dtype != np.float16 else value)
              for name, value in arrays.items()}
    write_with_handle(path, lambda handle: np.savez(handle, **arrays))
