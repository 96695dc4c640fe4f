"""`netspec run SPEC_OR_ONNX`: run a spec (lowered on the fly) or an ONNX file in onnxruntime."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from netspec.commands.onnx_spec import is_onnx_model
from netspec.commands.options import (EXIT_OK, UsageError, add_data_input, add_lowering_options,
                                      add_spec_options, describe_array, looks_like_shape,
                                      lowering_options, network, require_file)
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
    run_.add_argument("--compare", metavar="OTHER",
                      help="also run OTHER (a spec or an .onnx file) on the same inputs and print, per "
                           "output, the max absolute and relative difference, the cosine similarity and "
                           "the top-1 agreement; --set, --input-shape, --opset, --batch and --seed apply "
                           "to a spec OTHER too, --weights to SPEC_OR_ONNX only")
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
    session, specs, locate = _load(args)
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
    if args.compare:
        _compare(args, names, outputs, feeds)
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


def _load(args: argparse.Namespace, other: bool = False):
    """(session, input specs, locate) for args.spec: an ONNX file as it is, a spec lowered
    with the command's options. `other`: the --compare model, which gets no weights."""
    from netspec import runtime

    if is_onnx_model(args.spec):  # run as it is, not imported
        require_file(args.spec)
        if not other:
            check_spec_only_options(args)
        session = runtime.session(args.spec, args.device)
        return session, runtime.describe_inputs(session), None  # images are laid out NCHW
    options = lowering_options(args)
    net = network(args)
    session = net.session(args.device, **options)
    return session, net.input_specs(options["batch"]), net.locate


def _compare_error(message: str, hint: str | None = None):
    from netspec.diagnostics import Diagnostic, NetspecError

    return NetspecError([Diagnostic(message, hint=hint)])


def _compare(args: argparse.Namespace, names: list, outputs: list, feeds: dict) -> None:
    """Run the --compare model on `feeds` (A's inputs) and print how its outputs differ from A's."""
    from netspec import runtime

    other_args = argparse.Namespace(**vars(args))
    other_args.spec, other_args.weights, other_args.weights_prefix = args.compare, None, None
    session, specs, locate = _load(other_args, other=True)
    theirs = [s.name for s in specs]
    if sorted(theirs) != sorted(feeds):
        raise _compare_error(f"--compare {args.compare}: its inputs ({runtime._names(theirs)}) are not "
                             f"those of {args.spec} ({runtime._names(list(feeds))})",
                             hint="both models are run on the same inputs, so they need the same input names")
    for spec in specs:
        shape = feeds[spec.name].shape
        if len(shape) != len(spec.shape) or any(isinstance(d, int) and d != n for d, n in zip(spec.shape, shape)):
            raise _compare_error(f"--compare {args.compare}: its input `{spec.name}` is "
                                 f"{runtime.show_shape(spec.shape)}, {args.spec} feeds it "
                                 f"{runtime.show_shape(shape)}",
                                 hint="both models are run on the same inputs, so they need the same input shapes")
    try:
        other = runtime.run(session, runtime.feeds(specs, feeds, source=args.spec))
    except runtime.OnnxRuntimeError as exc:
        raise (locate(exc) if locate else exc) from None
    other_names = [o.name for o in session.get_outputs()]
    if len(other) != len(outputs):
        raise _compare_error(f"--compare {args.compare}: it has {len(other)} outputs "
                             f"({runtime._names(other_names)}), {args.spec} has {len(outputs)} "
                             f"({runtime._names(names)})")
    by_name = sorted(names) == sorted(other_names)
    if not by_name:
        print(f"compare: output names differ ({runtime._names(names)} vs {runtime._names(other_names)}); "
              "matched by position")
    for i, (name, ours) in enumerate(zip(names, outputs)):
        j = other_names.index(name) if by_name else i
        label = name if other_names[j] == name else f"{name} vs {other_names[j]}"
        theirs_value = other[j]
        if ours.shape != theirs_value.shape:
            raise _compare_error(f"--compare {args.compare}: output `{other_names[j]}` is "
                                 f"{runtime.show_shape(theirs_value.shape)}, `{name}` of {args.spec} is "
                                 f"{runtime.show_shape(ours.shape)}",
                                 hint="outputs are compared element by element, so their shapes must agree")
        print(f"{label}: {describe_comparison(compare_arrays(ours, theirs_value))}")


def compare_arrays(a, b) -> dict:
    """How array b differs from a (same shape), in float64: max_abs, max_rel (max |a - b| over
    max |a|), cosine (flattened) and, for rank 2, top1 = (rows whose argmax agrees, rows)."""
    import numpy as np

    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not a64.size:
        return {"max_abs": 0.0, "max_rel": 0.0, "cosine": 1.0, "top1": None}
    diff = float(np.max(np.abs(a64 - b64)))
    scale = float(np.max(np.abs(a64)))
    rel = diff / scale if scale else (0.0 if diff == 0 else float("inf"))
    na, nb = np.linalg.norm(a64.ravel()), np.linalg.norm(b64.ravel())
    if na and nb:
        cosine = float(np.dot(a64.ravel(), b64.ravel()) / (na * nb))
    else:
        cosine = 1.0 if na == nb else 0.0  # both zero: alike; one zero: no direction in common
    top1 = None
    if a64.ndim == 2:
        agree = int(np.sum(np.argmax(a64, axis=-1) == np.argmax(b64, axis=-1)))
        top1 = (agree, a64.shape[0])
    return {"max_abs": diff, "max_rel": rel, "cosine": cosine, "top1": top1}


def describe_comparison(c: dict) -> str:
    """`max abs 1.2e-06, max rel 3.4e-07, cosine 1.000000, top-1 12/12 (100%)`."""
    top1 = "n/a" if c["top1"] is None else \
        f"{c['top1'][0]}/{c['top1'][1]} ({100 * c['top1'][0] / max(c['top1'][1], 1):.0f}%)"
    return (f"max abs {c['max_abs']:.2g}, max rel {c['max_rel']:.2g}, cosine {c['cosine']:.6f}, "
            f"top-1 {top1}")


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
