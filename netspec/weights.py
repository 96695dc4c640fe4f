"""Weights for a checked graph: seeded initialisation like PyTorch's defaults, or tensors loaded
from `.safetensors` / `.npz` files keyed by state_dict name, checked against the graph.

Seeded initialisation follows each ParamSpec's `init` (declared by its layer): conv and linear
weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), norm scales 1, shifts and running
means 0, running variances 1. The same seed gives the same weights, so any spec runs. Every
tensor has the dtype of the data its layer multiplies (f16 weights for an f16 network).
"""

from __future__ import annotations

import difflib
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from netspec.diagnostics import Diagnostic, NetspecError
from netspec.graph import Graph
from netspec.runtime import numeric_kind

def parameter_dtypes(graph: Graph) -> dict[str, str]:
    """Every parameter's and buffer's dtype, by state_dict key (Graph.parameter_dtypes)."""
    return graph.parameter_dtypes()


def initialize(graph: Graph, seed: int = 0, progress=None) -> dict[str, np.ndarray]:
    """Fresh weights for every parameter and buffer, in state_dict order, from `seed`, each in
    its dtype (parameter_dtypes). `progress(elements)` is called after each tensor (for a
    progress bar). The values are drawn in float64 and rounded to the dtype, so a seed gives
    the same weights, to the dtype's precision, whatever the dtype."""
    from netspec.lower import NUMPY_DTYPES

    rng = np.random.default_rng(seed)
    dtypes = parameter_dtypes(graph)
    weights: dict[str, np.ndarray] = {}
    for name, spec in graph.parameter_specs().items():
        weights[name] = np.asarray(_initial(spec, rng), dtype=NUMPY_DTYPES[dtypes[name]])
        if progress is not None:
            progress(spec.elements)
    return weights


def _initial(spec, rng: np.random.Generator) -> np.ndarray:
    if spec.init == "uniform":
        return rng.uniform(-spec.scale, spec.scale, spec.shape)
    if spec.init == "fill":
        return np.full(spec.shape, spec.scale)
    if spec.init == "normal":
        return rng.normal(0.0, spec.scale, spec.shape)
    if spec.init == "values":
        return np.asarray(spec.values).reshape(spec.shape)
    return np.zeros(spec.shape)


def constants(graph: Graph) -> dict[str, np.ndarray]:
    """The buffers kept out of the state_dict (`persistent=false`): no weights file holds them,
    so they always take the spec's values."""
    from netspec.lower import NUMPY_DTYPES

    dtypes = parameter_dtypes(graph)
    rng = np.random.default_rng(0)
    return {name: np.asarray(_initial(spec, rng), dtype=NUMPY_DTYPES[dtypes[name]])
            for name, spec in graph.parameter_specs().items() if not spec.persistent}


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Every tensor in a `.safetensors` or `.npz` file, by name. Raises NetspecError with a
    clear message for a missing, unreadable, truncated or wrongly formatted file."""
    def fail(message: str, hint: str | None = None) -> NetspecError:
        return NetspecError([Diagnostic(f"weights file `{path}`: {message}", rule="weights files are "
                                        ".safetensors or .npz (or a torch state_dict .pt), keyed by "
                                        "parameter name", hint=hint)])

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
        if suffix in (".pt", ".pth"):
            return _read_torch(path, fail)
    except NetspecError:
        raise
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
    raise fail(f"unknown format `{suffix or path.name}`", hint="use .safetensors, .npz, or a .pt of "
               "torch.save(model.state_dict()) (with torch installed)")


def _read_torch(path: Path, fail) -> dict[str, np.ndarray]:
    """A state_dict saved by torch.save (`.pt`, `.pth`), read with torch (weights only: no
    pickled code runs) and converted to numpy; bf16 goes through ml_dtypes."""
    try:
        import torch
    except ImportError:
        raise fail("is a PyTorch file, and reading it needs torch, which is not installed",
                   hint="pip install 'netspec[torch]', or save the weights as .safetensors") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle torch refuses, a truncated zip
        raise fail(f"cannot be read by torch.load(weights_only=True): {str(exc).splitlines()[0]}",
                   hint="save it with torch.save(model.state_dict())") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise fail("does not hold a state_dict (a dict of tensors)",
                   hint="save it with torch.save(model.state_dict())")
    out = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            import ml_dtypes

            out[name] = tensor.float().numpy().astype(ml_dtypes.bfloat16)
        else:
            out[name] = tensor.numpy().copy()
    return out


def rename(tensors: dict[str, np.ndarray], prefixes: Mapping[str, str] | None) -> dict[str, np.ndarray]:
    """The tensors with each name that starts with a key of `prefixes` starting with its value
    instead (`{"module.": ""}` drops DataParallel's prefix); the longest matching key wins.
    Names are dotted: `module` and `module.` name the same prefix (no name is left starting
    with a dot), and `features` becomes `stage1` in `features.0.weight` -> `stage1.0.weight`."""
    if not prefixes:
        return tensors
    if not isinstance(prefixes, Mapping):
        raise TypeError(f"weights_prefix takes a mapping of old prefixes to new ones, e.g. "
                        f'{{"module.": ""}}, not {type(prefixes).__name__}')
    ordered = sorted(prefixes.items(), key=lambda item: -len(item[0]))
    out = {}
    for name, array in tensors.items():
        for old, new in ordered:
            if name.startswith(old):
                rest = name[len(old):]
                if old and not old.endswith(".") and rest.startswith(".") and not new:
                    rest = rest[1:]  # `module` dropped with its dot
                elif new and not new.endswith(".") and old.endswith(".") and rest:
                    rest = "." + rest  # `features.` -> `stage1`: keep the dot
                name = new + rest
                break
        out[name] = array
    return out


def renamings(missing: list[str], extra: list[str]) -> dict[str, str]:
    """Prefix renamings (old -> new) that turn the file's extra names into the network's missing
    ones: `module.` -> `` (saved from nn.DataParallel), `feature_extraction.` -> `features.`.
    A renaming counts where it explains at least two names, or all of them."""
    wanted = set(missing)
    rules: dict[str, str] = {}
    left = list(extra)
    while left and wanted:
        counts: dict[tuple[str, str], int] = {}
        for name in left[:20]:  # candidates from a sample; each is then tried on every name
            parts = name.split(".")
            for target in wanted:
                other = target.split(".")
                shared = 0
                while shared < min(len(parts), len(other)) and parts[-1 - shared] == other[-1 - shared]:
                    shared += 1
                if shared:
                    old = ".".join(parts[:len(parts) - shared])
                    new = ".".join(other[:len(other) - shared])
                    rule = (old + "." if old else "", new + "." if new else "")
                    if rule[0] != rule[1]:
                        counts[rule] = counts.get(rule, 0) + 1
        best, explained = None, []
        for old, new in sorted(counts, key=counts.get, reverse=True)[:10]:
            hits = [n for n in left if n.startswith(old) and new + n[len(old):] in wanted]
            if len(hits) > len(explained):
                best, explained = (old, new), hits
        if best is None or (len(explained) < 2 and len(explained) < len(extra)):
            break
        rules[best[0]] = best[1]
        wanted -= {best[1] + n[len(best[0]):] for n in explained}
        left = [n for n in left if n not in explained]
    return rules


def check_weights(graph: Graph, tensors: dict[str, np.ndarray], source: str,
                  prefixes: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    """The graph's weights from `tensors`: every parameter and buffer present, nothing extra,
    shapes equal, and values of the right kind. All problems are reported at once, with "did
    you mean" for near-miss names.

    Each tensor is converted to its parameter's dtype (parameter_dtypes): a float tensor of
    any width for a float parameter (f32 weights of PyTorch into an f16 network, f64 ones into
    f32: rounding to the parameter's precision, as `model.half()` does), an integer one for an
    integer buffer. Refused, as wrongly typed: integer or boolean values for a float
    parameter, float or boolean ones for an integer buffer, values the parameter's dtype
    cannot hold (a float past f16's 65504, an integer out of range), and arrays that are not
    numbers at all (an .npz cannot carry bf16: numpy saves it as raw bytes)."""
    from netspec.lower import NUMPY_DTYPES

    tensors = rename(tensors, prefixes)
    expected = graph.state_dict_specs()
    dtypes = parameter_dtypes(graph)
    problems: list[Diagnostic] = []
    missing = [name for name in expected if name not in tensors]
    extra = [name for name in tensors if name not in expected]
    rules = renamings(missing, extra)
    if rules:  # one mistake (the names' prefix), one error: not one per tensor
        renamed = rename({name: None for name in extra}, rules)
        pairs = [(old, new) for old, new in zip(extra, renamed) if new in expected]
        shown = ", ".join(f"`{old or '(none)'}` -> `{new or '(none)'}`" for old, new in rules.items())
        flags = " ".join(f"--weights-prefix {old}={new}" for old, new in rules.items())
        problems.append(Diagnostic(
            f"{len(pairs)} tensors in {source} are named with another prefix than the network's: {shown}",
            rule="tensors are keyed by the network's parameter names",
            hint=f"rename them as they load: `{flags}` (Python: weights_prefix={dict(rules)!r})",
            notes=[f"e.g. `{old}` is the network's `{new}`" for old, new in pairs[:3]]))
        explained = {old for old, _ in pairs} | {new for _, new in pairs}
        missing = [name for name in missing if name not in explained]
        extra = [name for name in extra if name not in explained]
    for name in missing:
        close = difflib.get_close_matches(name, extra, n=1, cutoff=0.8)
        problems.append(Diagnostic(f"`{name}` {_dims(expected[name].shape)} is missing from {source}",
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
        layer = name.rsplit(".", 1)[0]
        if tuple(array.shape) != spec.shape:
            problems.append(Diagnostic(f"`{name}` has shape {_dims(array.shape)} in {source}, expected "
                                       f"{_dims(spec.shape)}", layer=layer,
                                       rule="tensor shapes equal the parameter shapes"))
            continue
        dtype = dtypes[name]
        converted, problem, hint = _convert(array, NUMPY_DTYPES[dtype], dtype)
        if problem:
            problems.append(Diagnostic(f"`{name}` {problem} in {source}", layer=layer,
                                       rule="a parameter's values are of its kind (floats for weights, "
                                            "integers for counters) and fit its dtype", hint=hint))
            continue
        out[name] = converted
    if problems:
        raise NetspecError(problems)
    kept_out = constants(graph)
    return {name: out[name] if name in out else kept_out[name] for name in graph.parameter_specs()}


def _dims(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _convert(array: np.ndarray, wanted: np.dtype, name: str):
    """(`array` as `wanted`, None, None), or (None, why not, a hint); `name` is the netspec dtype."""
    have, want = numeric_kind(array.dtype), numeric_kind(wanted)
    if have != want:
        raw = array.dtype.kind == "V"
        shown = "raw bytes, not numbers" if raw else f"{array.dtype} values"
        expected = "floating point" if want == "float" else "integers"
        return None, f"holds {shown}, expected {expected} ({name})", (
            "numpy has no bfloat16, so an .npz keeps bf16 arrays as raw bytes: save them with "
            "safetensors, or as float32" if raw else None)
    if array.dtype == wanted:
        return array, None, None
    if want == "float":
        with np.errstate(over="ignore", invalid="ignore"):
            converted = array.astype(wanted)
        finite = np.isfinite(array.astype(np.float64))
        lost = finite & ~np.isfinite(converted.astype(np.float64))
        if lost.any():
            biggest = float(np.abs(array.astype(np.float64)[lost]).max())
            return None, f"holds values up to {biggest:g}, more than {name} can hold", \
                "these weights need a wider dtype: declare the network's input f32"
        return converted, None, None
    info = np.iinfo(wanted)
    if array.size and (array.min() < info.min or array.max() > info.max):
        return None, f"holds values from {array.min()} to {array.max()}, outside {name}'s range", None
    return array.astype(wanted), None, None


def load_weights(graph: Graph, path: Path, prefixes: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    return check_weights(graph, read_weights(path), f"`{path}`", prefixes)
