"""What every subcommand shares: exit codes, the usage error, the options that compile a spec
(`--set`, `--input-shape`), the export options (`--opset`, `--batch`, `--weights`, `--seed`),
and printing diagnostics.

Only the standard library is imported here, so registering every subcommand costs `netspec
check` nothing; each command imports what it runs when it runs.
"""

from __future__ import annotations

import argparse
import os
import re
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
  --memory     inference peak: tensors live from their producer to their last reader, views
               sharing their input's storage; training: parameters, gradients, optimizer
               state and the activations autograd keeps by layer kind, each tensor once

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


def _shown(text: str) -> str:
    """An option's value as the user wrote it, for `--set VALUE: ...` (an empty one as `""`)."""
    return text if text.strip() else '""'


def pairs(values: list | None, flag: str, meta: str = "NAME=VALUE",
          command: str | None = None) -> dict[str, tuple[str, str]]:
    """`NAME=VALUE` items of a repeatable option, by name: (the option as typed, VALUE). An
    item is a string or, from an option that records its spelling (`ShapeOption`), a pair
    (option string, text). `command` (check, run, ...) makes the messages exact."""
    out: dict[str, tuple[str, str]] = {}
    for item in values or []:
        typed, text = item if isinstance(item, tuple) else (flag, item)
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(_not_a_pair(typed, text, meta, command))
        out[name.strip()] = (typed, value.strip())
    return out


DATA_SUFFIXES = (".npy", ".npz", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _not_a_pair(flag: str, text: str, meta: str, command: str | None) -> str:
    """Why `flag text` is not NAME=VALUE, and what to write instead."""
    name = text.partition("=")[0].strip()
    looks_like_file = text.lower().endswith(DATA_SUFFIXES) or os.path.isfile(text)
    if flag == "--input" and looks_like_file:  # only commands that take no data accept --input NAME=DIMS
        return (f"--input {text}: `netspec {command or 'check'}` takes no data file; here `--input` "
                f"sets an input's shape, as --input-shape does (NAME=DIMS, e.g. --input image=1,3,64,64); "
                f"to run the network on {text} use `netspec run SPEC --input {text}`")
    if flag == "--input-shape" and looks_like_file:
        hint = (f"; a data file is given with --input {text}" if command in ("run", "features")
                else f"; `netspec {command}` takes no data file" if command else "")
        return f"--input-shape {text}: expected NAME=DIMS (e.g. --input-shape image=1,3,64,64){hint}"
    example = f" (e.g. {flag} {name}=...)" if name.isidentifier() and "=" not in text else ""
    return f"{flag} {_shown(text)}: expected {meta}{example}"


_X_BETWEEN_DIGITS = re.compile(r"(?<=\d)\s*[xX]\s*(?=\d)")
_SYMBOL_THEN_X = re.compile(r"^([A-Za-z_]\w*?)[xX](\d+)$")   # `Nx3` in `Nx3x64x64`
_CLOSING = {"[": "]", "(": ")"}


def parse_dims(name: str, text: str, flag: str = "--input-shape") -> list[int | str]:
    """`1,3,64,64`, `[1,3,64,64]`, `(1, 3, 64, 64)` or `1x3x64x64` (`N` keeps a symbolic batch)
    as a list of sizes. `x` separates sizes only between digits (and after a leading symbol:
    `Nx3x64x64`); anywhere else it is reported as what it is."""
    body = text.strip()
    if body[:1] in _CLOSING or body[-1:] in _CLOSING.values():
        if body[:1] not in _CLOSING or body[-1:] != _CLOSING[body[:1]]:
            raise UsageError(f"{flag} {name}={text}: unbalanced brackets; write the sizes as "
                             "1,3,64,64, [1,3,64,64] or 1x3x64x64")
        body = body[1:-1]
    if "," in body:
        parts = body.split(",")
        if parts[-1].strip() == "" and len(parts) > 1:  # a trailing comma, as Python allows
            parts = parts[:-1]
    else:
        parts = _X_BETWEEN_DIGITS.split(body)
        first = _SYMBOL_THEN_X.match(parts[0].strip())
        if first:
            parts[:1] = list(first.groups())
    dims: list[int | str] = []
    for part in parts:
        part = part.strip()
        if part.isascii() and part.isdigit() and int(part) > 0:  # (not `²`: int() refuses it)
            dims.append(int(part))
        elif part in ("x", "X"):
            raise UsageError(f"{flag} {name}={text}: `{part}` is not a size; sizes are separated by "
                             "`,` (1,3,64,64) or by `x` between numbers (1x3x64x64), and a symbolic "
                             "batch is a name such as N")
        elif part.isidentifier():
            dims.append(part)
        else:
            what = f"`{part}`" if part else "an empty item"
            raise UsageError(f"{flag} {name}={text}: {what} is not a size (a positive integer "
                             "or a symbol such as N)")
    return dims


def looks_like_shape(text: str) -> bool:
    """`digits=1,1,32,32`: a NAME=DIMS item, not a path."""
    name, sep, dims = text.partition("=")
    if not sep or not name.strip().isidentifier():
        return False
    try:
        parse_dims(name, dims)
    except UsageError:
        return False
    return True


class ShapeOption(argparse.Action):
    """A repeatable NAME=DIMS option that keeps how each item was spelt (`--input-shape` or
    `--input`), so a message names the option the user typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((option_string, values))
        setattr(namespace, self.dest, items)


# ---------------------------------------------------------------- the options themselves

def add_spec_options(parser: argparse.ArgumentParser, data_input: bool = False) -> None:
    """--set and --input-shape: how every command that compiles a spec overrides its network
    parameters and input shapes. Where the command takes no data (`data_input` false), `--input
    NAME=DIMS` is also accepted, as it was before `--input-shape` existed everywhere."""
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", dest="params",
                        help="override a network parameter, e.g. --set classes=10 (repeatable)")
    flags = ["--input-shape"] if data_input else ["--input-shape", "--input"]
    parser.add_argument(*flags, action=ShapeOption, metavar="NAME=DIMS", dest="inputs",
                        help="override an input's shape in its declared layout, e.g. "
                             "--input-shape image=1,3,64,64 (also [1,3,64,64] or 1x3x64x64; "
                             "N keeps a symbolic batch) (repeatable)")


def add_data_input(parser: argparse.ArgumentParser, extra: str = "") -> None:
    """--input FILE: the data a command runs the network on."""
    parser.add_argument("--input", dest="input_file", metavar="FILE",
                        help=".npy (one input), .npz (one array per input name) or an image "
                             "(.png, .jpg: resized to the input, scaled to [0, 1]); default: "
                             "seeded random values" + extra)


# What each command's --seed seeds: export takes no inputs, run and features may be given theirs.
SEED_HELP = {
    "export": "seed of the weight initialisation (default 0; ignored with --weights)",
    "run": "seed of the weight initialisation (of a spec, without --weights) and of the random "
           "inputs (without --input) (default 0)",
    "profile": "seed of the weight initialisation (of a spec, without --weights) and of the random "
               "inputs it runs on (default 0)",
    "features": "seed of the weight initialisation (without --weights) and of the random inputs "
                "(without --input) (default 0)",
}


def add_lowering_options(parser: argparse.ArgumentParser, command: str, weights: bool = True) -> None:
    """--opset, --batch, --weights, --weights-prefix, --seed: how a spec becomes an ONNX model.
    `command` chooses the help of --seed (what it seeds)."""
    from netspec.opsets import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, OPSET_RANGE

    parser.add_argument("--opset", type=int, default=None, metavar="N",
                        help=f"ONNX opset (default {DEFAULT_OPSET}; {MIN_OPSET} to {MAX_OPSET}, {OPSET_RANGE})")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="fix the batch size (default: dynamic, the input's symbol)")
    if weights:
        parser.add_argument("--weights", metavar="FILE",
                            help=".safetensors or .npz keyed by parameter name (default: seeded "
                                 "initialisation as PyTorch's defaults)")
        parser.add_argument("--weights-prefix", action="append", metavar="OLD=NEW", dest="weights_prefix",
                            help="rename the weights file's tensors as they load: a name starting "
                                 "with OLD starts with NEW instead, e.g. --weights-prefix module.= "
                                 "(what nn.DataParallel adds) (repeatable)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help=SEED_HELP[command])


def lowering_options(args: argparse.Namespace) -> dict:
    """The checked values of add_lowering_options, as keyword arguments of Network.lowered."""
    from netspec.opsets import MAX_OPSET, MIN_OPSET, OPSET_RANGE

    if args.opset is not None and not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise UsageError(f"--opset {args.opset}: choose {MIN_OPSET} to {MAX_OPSET} ({OPSET_RANGE})")
    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch must be at least 1")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: a seed is 0 or more")
    weights = getattr(args, "weights", None)
    if weights is not None and not os.path.exists(weights):  # a missing file: usage, as a missing spec
        raise UsageError(f"--weights {weights}: no such file")
    if weights is not None and os.path.isdir(weights):
        raise UsageError(f"--weights {weights}: it is a directory, not a weights file")
    prefixes: dict[str, str] = {}
    for item in getattr(args, "weights_prefix", None) or []:
        old, sep, new = item.partition("=")
        if not sep or not old:
            example = f"--weights-prefix {old}=" if old else "--weights-prefix module.="
            raise UsageError(f"--weights-prefix {_shown(item)}: expected OLD=NEW (NEW may be empty, to drop "
                             f"the prefix: {example})")
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

def require_file(path) -> None:
    """A SPEC or MODEL argument must name a readable file: else the usage error every command gives."""
    from pathlib import Path

    if not Path(path).is_file():
        raise UsageError(f"cannot read `{path}`: " + ("it is a directory" if Path(path).is_dir() else "no such file"))


def compile_spec(args: argparse.Namespace):
    """Compile args.spec with its --set and --input-shape overrides; an .onnx SPEC is imported
    first. A missing spec, an unknown parameter or input name is a usage error; errors in the
    spec are in the result."""
    from pathlib import Path

    from netspec.commands.onnx_spec import is_onnx_model
    from netspec.compiler import OverrideError, compile_file

    path = Path(args.spec)
    require_file(args.spec)
    command = getattr(args, "command", None)
    params = {k: parse_value(v) for k, (_, v) in pairs(args.params, "--set", command=command).items()}
    shapes = pairs(args.inputs, "--input-shape", "NAME=DIMS", command)
    inputs = {k: parse_dims(k, v, flag) for k, (flag, v) in shapes.items()}
    try:
        if is_onnx_model(path):
            return _compile_model(args, path, params, inputs)
        return compile_file(path, params, inputs)
    except OverrideError as exc:
        flag = "--set" if exc.kind == "parameter" else shapes.get(exc.name, ("--input-shape",))[0]
        raise UsageError(f"{flag} {exc.name}: {exc}") from None


def _compile_model(args: argparse.Namespace, path, params: dict, inputs: dict):
    """An ONNX model imported in memory and its spec compiled; the model's weights are kept in
    args.imported_weights for the commands that lower it (model_weights)."""
    from netspec.commands.onnx_spec import blame_the_import, import_spec, imported_source_name
    from netspec.compiler import Compilation, compile_file
    from netspec.diagnostics import Diagnostics, NetspecError

    try:
        imported = import_spec(path)
    except NetspecError as exc:  # a model netspec cannot import: its errors, as a spec's (--json too)
        diagnostics = Diagnostics()
        diagnostics.extend(exc.diagnostics)
        return Compilation(None, diagnostics, str(path))
    args.imported_weights = imported.weights
    result = compile_file(imported_source_name(path), params, inputs, text=imported.text)
    blame_the_import(result.diagnostics.items, path)
    return result


def model_weights(args: argparse.Namespace, options: dict) -> dict:
    """The lowering options with an imported ONNX model's own weights where no --weights is
    given, so an exported or run model computes what the original does."""
    imported = getattr(args, "imported_weights", None)
    if imported is None or options.get("weights") is not None:
        return options
    return {**options, "weights": imported}


def network(args: argparse.Namespace, lowering: bool = True):
    """Compile the spec for export, run, graph or features; spec errors are printed and raise
    SystemExit(1).

    `lowering`: the command lowers the network to ONNX (export, run, features). Its lowering
    reports a layer ONNX cannot express itself, at the opset chosen, so check's warning that
    export would refuse it (at the default opset) is dropped: it would say the same mistake
    twice, or be moot at an opset that can express the layer."""
    from netspec.api import Network
    from netspec.infer import UNEXPORTABLE_RULE

    result = compile_spec(args)
    shown = [d for d in result.diagnostics.items
             if not (lowering and d.severity == "warning" and d.rule == UNEXPORTABLE_RULE)]
    if shown:
        print_diagnostics(shown, result.diagnostics.sources)
    if not result.ok:
        raise SystemExit(EXIT_SPEC)
    args.sources = result.diagnostics.sources  # so a lowering error can quote the spec
    return Network(result)


def describe_array(value, axes: str = "") -> str:
    """`[1, 1000] float32, min -0.08942, max 0.08955, mean -1.716e-06`, for any dtype: the
    figures are taken in float64 (a bf16 or f16 sum would round at every step; bool counts as
    0 and 1). `axes`, e.g. `(N, C, H, W)`, is printed after the shape."""
    import numpy as np

    shape = f"{list(value.shape)}{' ' + axes if axes else ''} {value.dtype}"
    wide = np.asarray(value, np.float64)
    if not wide.size:
        return f"{shape}, empty"
    return f"{shape}, min {wide.min():.4g}, max {wide.max():.4g}, mean {wide.mean():.4g}"


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
