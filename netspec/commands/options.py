"""What every subcommand shares: exit codes, the usage error, the options that compile a spec
(`--set`, `--input-shape`), the export options (`--opset`, `--batch`, `--weights`, `--seed`),
and printing diagnostics.

Only the standard library is imported here, so registering every subcommand costs `netspec
check` nothing; each command imports what it runs when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

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
    """A mistake on the command line: printed as `netspec: error: ...`, exit code 2."""


# ---------------------------------------------------------------- parsing option values

def parse_value(text: str) -> Any:
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
        return tuple(parse_value(item) for item in items)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """`NAME=VALUE` items of a repeatable option, by name."""
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def parse_dims(name: str, text: str, flag: str = "--input-shape") -> list[int | str]:
    """`1,3,64,64` (or `1x3x64x64`; `N` keeps a symbolic batch) as a list of sizes."""
    dims: list[int | str] = []
    for part in text.replace("x", ",").split(","):
        part = part.strip()
        if part.isdigit() and int(part) > 0:
            dims.append(int(part))
        elif part.isidentifier():
            dims.append(part)
        else:
            raise UsageError(f"{flag} {name}={text}: {part!r} is not a size (a positive integer "
                             "or a symbol such as N)")
    return dims


def looks_like_shape(text: str) -> bool:
    """`digits=1,1,32,32`: a NAME=DIMS item, not a path."""
    name, sep, dims = text.partition("=")
    if not sep or not name.strip().isidentifier():
        return False
    parts = [p.strip() for p in dims.replace("x", ",").split(",")]
    return bool(parts) and all(p.isdigit() or p.isidentifier() for p in parts)


# ---------------------------------------------------------------- the options themselves

def add_spec_options(parser: argparse.ArgumentParser, data_input: bool = False) -> None:
    """--set and --input-shape: how every command that compiles a spec overrides its network
    parameters and input shapes. Where the command takes no data (`data_input` false), `--input
    NAME=DIMS` is also accepted, as it was before `--input-shape` existed everywhere."""
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", dest="params",
                        help="override a network parameter, e.g. --set classes=10 (repeatable)")
    flags = ["--input-shape"] if data_input else ["--input-shape", "--input"]
    parser.add_argument(*flags, action="append", metavar="NAME=DIMS", dest="inputs",
                        help="override an input's shape in its declared layout, e.g. "
                             "--input-shape image=1,3,64,64 (repeatable)")


def add_data_input(parser: argparse.ArgumentParser, extra: str = "") -> None:
    """--input FILE: the data a command runs the network on."""
    parser.add_argument("--input", dest="input_file", metavar="FILE",
                        help=".npy (one input), .npz (one array per input name) or an image "
                             "(.png, .jpg: resized to the input, scaled to [0, 1]); default: "
                             "seeded random values" + extra)


def add_lowering_options(parser: argparse.ArgumentParser, weights: bool = True) -> None:
    """--opset, --batch, --weights, --seed: how a spec becomes an ONNX model."""
    parser.add_argument("--opset", type=int, default=None, metavar="N",
                        help="ONNX opset (default 17; 13 to 26, what onnxruntime 1.31 and newer load)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="fix the batch size (default: dynamic, the input's symbol)")
    if weights:
        parser.add_argument("--weights-prefix", action="append", metavar="OLD=NEW", dest="weights_prefix",
                            help="rename the weights file's tensors as they load: a name starting "
                                 "with OLD starts with NEW instead, e.g. --weights-prefix module.= "
                                 "(what nn.DataParallel adds) (repeatable)")
        parser.add_argument("--weights", metavar="FILE",
                            help=".safetensors or .npz keyed by parameter name (default: seeded "
                                 "initialisation as PyTorch's defaults)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weight initialisation and of random inputs (default 0)")


def lowering_options(args: argparse.Namespace) -> dict:
    """The checked values of add_lowering_options, as keyword arguments of Network.lowered."""
    from netspec.opsets import MAX_OPSET, MIN_OPSET

    if args.opset is not None and not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise UsageError(f"--opset {args.opset}: choose {MIN_OPSET} to {MAX_OPSET} "
                         "(what onnxruntime 1.31 and newer load)")
    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch must be at least 1")
    weights = getattr(args, "weights", None)
    if weights is not None and not os.path.exists(weights):  # a missing file: usage, as a missing spec
        raise UsageError(f"--weights {weights}: no such file")
    if weights is not None and os.path.isdir(weights):
        raise UsageError(f"--weights {weights}: it is a directory, not a weights file")
    prefixes: dict[str, str] = {}
    for item in getattr(args, "weights_prefix", None) or []:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise UsageError(f"--weights-prefix {item!r}: expected OLD=NEW (NEW may be empty: module.=)")
        prefixes[old] = new
    if prefixes and weights is None:
        raise UsageError("--weights-prefix renames the tensors of --weights FILE; give the file too")
    return {"opset": args.opset, "batch": args.batch, "weights": getattr(args, "weights", None),
            "weights_prefix": prefixes or None,
            "seed": args.seed}


def check_depth(args: argparse.Namespace) -> None:
    if args.depth is not None and args.depth < 0:
        raise UsageError("--depth must be 0 or more")


# ---------------------------------------------------------------- compiling and reporting

def compile_spec(args: argparse.Namespace):
    """Compile args.spec with its --set and --input-shape overrides. A missing spec, an unknown
    parameter or input name is a usage error; errors in the spec are in the result."""
    from pathlib import Path

    from netspec.compiler import OverrideError, compile_file

    path = Path(args.spec)
    if not path.is_file():
        raise UsageError(f"cannot read {args.spec!r}: " + ("it is a directory" if path.is_dir() else "no such file"))
    params = {k: parse_value(v) for k, v in pairs(args.params, "--set").items()}
    inputs = {k: parse_dims(k, v) for k, v in pairs(args.inputs, "--input-shape").items()}
    try:
        return compile_file(path, params, inputs)
    except OverrideError as exc:
        flag = "--set" if exc.kind == "parameter" else "--input-shape"
        raise UsageError(f"{flag} {exc.name}: {exc}") from None


def network(args: argparse.Namespace):
    """Compile the spec for export, run, graph or features; spec errors are printed and raise
    SystemExit(1)."""
    from netspec.api import Network

    result = compile_spec(args)
    if result.diagnostics.items:
        print_diagnostics(result.diagnostics.items, result.diagnostics.sources)
    if not result.ok:
        raise SystemExit(EXIT_SPEC)
    args.sources = result.diagnostics.sources  # so a lowering error can quote the spec
    return Network(result)


def color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def print_diagnostics(diagnostics, sources) -> None:
    from netspec.diagnostics import render_all

    text = render_all(diagnostics, sources)
    if color(sys.stderr):
        text = "\n".join(
            ("\x1b[1;31merror\x1b[0m" + line[5:]) if line.startswith("error:") else
            ("\x1b[1;33mwarning\x1b[0m" + line[7:]) if line.startswith("warning:") else line
            for line in text.split("\n"))
    print(text, file=sys.stderr)


def status(message: str):
    """A spinner on a terminal (weights of a large model take a while), nothing elsewhere."""
    import contextlib

    if not color(sys.stderr):
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(message)
