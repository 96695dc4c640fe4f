"""Weights for a checked graph: seeded initialisation like PyTorch's defaults, or tensors loaded
from `.safetensors` / `.npz` files keyed by state_dict name, checked against the graph.

Seeded initialisation follows each ParamSpec's `init` (declared by its layer): conv and linear
weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), norm scales 1, shifts and running
means 0, running variances 1. The same seed gives the same weights, so any spec runs.
"""

from __future__ import annotations

import difflib
import zipfile
from pathlib import Path

import numpy as np

from netspec.diagnostics import Diagnostic, NetspecError
from netspec.graph import Graph
from netspec.layers.base import ParamSpec

_NUMPY = {"f16": np.float16, "f32": np.float32, "f64": np.float64, "i64": np.int64}


def _numpy_dtype(spec: ParamSpec, default: str) -> np.dtype:
    return np.dtype(_NUMPY.get(spec.dtype or default, np.float32))


def network_dtype(graph: Graph) -> str:
    """The dtype parameters take: that of the first floating-point input."""
    for name in graph.inputs:
        dtype = graph.node(name).output.dtype if graph.node(name).output else "f32"
        if dtype in ("f16", "f32", "f64"):
            return dtype
    return "f32"


def initialize(graph: Graph, seed: int = 0, progress=None) -> dict[str, np.ndarray]:
    """Fresh weights for every parameter and buffer, in state_dict order, from `seed`.
    `progress(elements)` is called after each tensor (for a progress bar)."""
    rng = np.random.default_rng(seed)
    dtype = network_dtype(graph)
    weights: dict[str, np.ndarray] = {}
    for name, spec in graph.parameter_specs().items():
        kind = _numpy_dtype(spec, dtype)
        if spec.init == "uniform":
            values = rng.uniform(-spec.scale, spec.scale, spec.shape)
        elif spec.init == "fill":
            values = np.full(spec.shape, spec.scale)
        else:
            values = np.zeros(spec.shape)
        weights[name] = np.asarray(values, dtype=kind)
        if progress is not None:
            progress(spec.elements)
    return weights


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Every tensor in a `.safetensors` or `.npz` file, by name. Raises NetspecError with a
    clear message for a missing, unreadable, truncated or wrongly formatted file."""
    def fail(message: str, hint: str | None = None) -> NetspecError:
        return NetspecError([Diagnostic(f"weights file `{path}`: {message}", rule="weights files are "
                                        ".safetensors or .npz, keyed by parameter name", hint=hint)])

    if not path.exists():
        raise fail("no such file")
    if path.is_dir():
        raise fail("it is a directory")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            if not zipfile.is_zipfile(path):  # np.load would guess it is a pickle
                raise fail("not a valid .npz file (not a zip archive)",
                           hint="write it with numpy.savez, or use .safetensors")
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            return load_file(str(path))
    except (zipfile.BadZipFile, EOFError) as exc:
        raise fail(f"not a valid {suffix} file ({exc})", hint="the file may be truncated") from None
    except ValueError as exc:  # numpy: pickled objects; format errors
        if "pickle" in str(exc):
            raise fail("holds pickled Python objects, not numeric arrays",
                       hint="save plain numeric arrays with numpy.savez") from None
        raise fail(f"cannot be read: {exc}") from None
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror or exc}") from None
    except Exception as exc:  # safetensors raises its own error type for a bad header
        raise fail(f"not a valid {suffix} file ({exc})", hint="the file may be truncated") from None
    raise fail(f"unknown format `{suffix or path.name}`", hint="use .safetensors or .npz")


def check_weights(graph: Graph, tensors: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The graph's weights from `tensors`: every parameter and buffer present, nothing extra,
    shapes equal, floating-point values for float parameters. All problems are reported at once,
    with "did you mean" for near-miss names. Values are cast to the network's dtype."""
    expected = graph.parameter_specs()
    dtype = network_dtype(graph)
    problems: list[Diagnostic] = []
    missing = [name for name in expected if name not in tensors]
    extra = [name for name in tensors if name not in expected]
    for name in missing:
        close = difflib.get_close_matches(name, extra, n=1, cutoff=0.8)
        problems.append(Diagnostic(f"`{name}` {list(expected[name].shape)} is missing from {source}",
                                   layer=name.rsplit(".", 1)[0], rule="every parameter needs a tensor",
                                   hint=f"did you mean `{close[0]}` (found in the file)?" if close else None))
    for name in extra:
        close = difflib.get_close_matches(name, list(expected), n=1, cutoff=0.8)
        problems.append(Diagnostic(f"{source} has `{name}`, which the network does not have",
                                   rule="every tensor in the file is a parameter of the network",
                                   hint=f"did you mean `{close[0]}`?" if close else None))
    out: dict[str, np.ndarray] = {}
    for name, spec in expected.items():
        if name not in tensors:
            continue
        array = np.asarray(tensors[name])
        if tuple(array.shape) != spec.shape:
            problems.append(Diagnostic(f"`{name}` has shape {list(array.shape)} in {source}, expected "
                                       f"{list(spec.shape)}", layer=name.rsplit(".", 1)[0],
                                       rule="tensor shapes equal the parameter shapes"))
            continue
        wanted = _numpy_dtype(spec, dtype)
        if np.issubdtype(wanted, np.floating) and not np.issubdtype(array.dtype, np.floating):
            problems.append(Diagnostic(f"`{name}` holds {array.dtype} values in {source}, expected "
                                       "floating point", layer=name.rsplit(".", 1)[0],
                                       rule="float parameters have float values"))
            continue
        out[name] = array.astype(wanted, copy=False)
    if problems:
        raise NetspecError(problems)
    return out


def load_weights(graph: Graph, path: Path) -> dict[str, np.ndarray]:
    return check_weights(graph, read_weights(path), f"`{path}`")
