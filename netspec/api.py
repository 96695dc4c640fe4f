"""The Python API: `netspec.load(path, **params)` and what it returns.

    net = netspec.load("specs/resnet18.net", classes=10)
    net.check()                       # raises NetspecError with located diagnostics
    print(net.table())
    net.export("resnet18.onnx")       # seeded weights, opset 17, dynamic batch
    outputs = net.run({"image": x})   # onnxruntime on the CPU
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Mapping

from netspec.compiler import Compilation, compile_file
from netspec.diagnostics import NetspecError, render_all

# The keyword options of each method that lowers the network, for a clear TypeError naming the
# method the user called (they pass **options on to to_onnx and lowered).
LOWERING_OPTIONS = ("opset", "batch", "weights", "weights_prefix", "seed", "progress", "dtype", "f32_io")
METHOD_OPTIONS = {
    "export": LOWERING_OPTIONS,
    "session": (*LOWERING_OPTIONS, "check"),
    "quantized": ("opset", "batch", "weights", "weights_prefix", "seed", "progress"),
    "run": (*LOWERING_OPTIONS, "check"),
}
DEVICES = ("cpu", "cuda")


def _takes(method: str, options: Mapping[str, Any], positional: tuple[str, ...] = ()) -> None:
    """TypeError for a keyword that `Network.<method>()` does not take, as Python says it of
    a wrong keyword, but naming the method called (not the one it passes its options to) and
    listing what it takes."""
    allowed = METHOD_OPTIONS[method]
    unknown = [name for name in options if name not in allowed]
    if unknown:
        from netspec.diagnostics import did_you_mean

        hint = did_you_mean(unknown[0], (*positional, *allowed))
        raise TypeError(f"Network.{method}() got an unexpected keyword argument `{unknown[0]}`"
                        + (f"; {hint}" if hint else "")
                        + f" (it takes {', '.join(f'`{n}`' for n in (*positional, *allowed))})")


def _integer(value: Any) -> int | None:
    """`value` as an int when it is one (numpy integers too; not bool), else None."""
    import operator

    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_options(opset: Any = None, batch: Any = None, seed: Any = 0, weights_prefix: Any = None,
                   dtype: Any = None, f32_io: Any = False) -> None:
    """The lowering options' types and ranges, checked before anything is computed (seeded
    weights of a large model take seconds): TypeError for the wrong type, ValueError for a
    value out of range, as the command line refuses them (exit 2)."""
    from netspec.opsets import MAX_OPSET, MIN_OPSET, OPSET_RANGE

    if opset is not None:
        if _integer(opset) is None:
            raise TypeError(f"opset must be an int ({MIN_OPSET} to {MAX_OPSET}) or None (the default), "
                            f"not {type(opset).__name__}")
        if not MIN_OPSET <= _integer(opset) <= MAX_OPSET:
            raise ValueError(f"opset {opset}: choose {MIN_OPSET} to {MAX_OPSET} ({OPSET_RANGE})")
    if batch is not None:
        if _integer(batch) is None:
            raise TypeError(f"batch must be an int (at least 1) or None (dynamic), not {type(batch).__name__}")
        if _integer(batch) < 1:
            raise ValueError(f"batch {batch}: a batch is at least 1 (None keeps it dynamic)")
    if _integer(seed) is None:
        raise TypeError(f"seed must be an int (0 or more), not {seed!r} ({type(seed).__name__})")
    if _integer(seed) < 0:
        raise ValueError(f"seed {seed}: a seed is 0 or more")
    if weights_prefix is not None and not (
            isinstance(weights_prefix, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in weights_prefix.items())):
        raise TypeError("weights_prefix must be a mapping of old prefix to new, e.g. "
                        f'{{"module.": ""}} to drop the prefix nn.DataParallel adds; got '
                        f"{weights_prefix!r} ({type(weights_prefix).__name__})")
    if dtype not in (None, "f16", "bf16"):
        raise ValueError(f"dtype {dtype!r}: \"f16\" or \"bf16\" converts the f32 network (None keeps its "
                         "declared dtypes)")
    if f32_io and dtype is None:
        raise ValueError("f32_io keeps a converted model's inputs and outputs f32; give dtype=\"f16\" "
                         "(or \"bf16\") too")


class Network:
    """A compiled spec: its graph, diagnostics, figures, and ways to export and run it."""

    def __init__(self, compilation: Compilation):
        self.compilation = compilation
        self._sessions: dict = {}

    @property
    def graph(self):
        return self.compilation.graph

    @property
    def name(self) -> str:
        return self.graph.name if self.graph else Path(self.compilation.path).stem

    @property
    def diagnostics(self):
        return self.compilation.diagnostics.items

    def check(self) -> "Network":
        """Raise NetspecError (its message is the rendered diagnostics) if the spec has errors."""
        if not self.compilation.ok:
            error = NetspecError(self.compilation.diagnostics.items)
            error.args = (render_all(self.compilation.diagnostics.items, self.compilation.diagnostics.sources),)
            raise error
        return self

    def table(self, depth: int | None = None) -> str:
        """The `netspec check` table and totals, as plain text."""
        from netspec.report import render_table

        self.check()
        out = io.StringIO()
        render_table(self.graph, depth, file=out)
        return out.getvalue()

    def totals(self):
        from netspec.report import totals

        return totals(self.check().graph)

    def tensors(self) -> dict[str, dict]:
        """Every parameter and buffer by its state_dict key, in order: `shape` (a tuple), `dtype`
        and `trainable` (False for a buffer: batch-norm statistics, a spec's `buffer(...)`). The
        keys are those a state_dict loaded with `weights=` must have."""
        graph = self.check().graph
        dtypes = graph.parameter_dtypes()
        out = {}
        for key, spec in graph.state_dict_specs().items():
            out[key] = {"shape": spec.shape, "dtype": dtypes[key], "trainable": spec.trainable}
        return out

    def weights(self, weights: str | Path | Mapping | None = None, seed: int = 0, progress=None,
                weights_prefix: Mapping[str, str] | None = None) -> dict:
        """The weights to use: seeded initialisation, a .safetensors/.npz file, or a mapping of
        arrays (e.g. a PyTorch state_dict converted with `.numpy()`), checked against the graph.
        `weights_prefix` renames the given tensors first: `{"module.": ""}` drops the prefix
        nn.DataParallel saves."""
        from netspec.weights import check_weights, initialize, load_weights

        _check_options(seed=seed, weights_prefix=weights_prefix)
        self.check()
        if weights is None:
            return initialize(self.graph, seed, progress)
        if isinstance(weights, (str, Path)):
            return load_weights(self.graph, Path(weights), weights_prefix)
        return check_weights(self.graph, dict(weights), "the given weights", weights_prefix)

    def to_onnx(self, opset: int | None = None, batch: int | None = None,
                weights: str | Path | Mapping | None = None, seed: int = 0, progress=None,
                check: bool = True, weights_prefix: Mapping[str, str] | None = None,
                dtype: str | None = None, f32_io: bool = False):
        """The onnx.ModelProto, validated by onnx.checker (full check) unless `check` is false.
        `progress(elements)` is called as seeded weights are generated. `dtype` "f16" or
        "bf16": weights and compute converted to it (netspec.precision), the inputs and outputs
        too unless `f32_io`."""
        from netspec.runtime import serialize

        model = self.lowered(opset, batch, weights, seed, progress, weights_prefix=weights_prefix,
                             dtype=dtype, f32_io=f32_io)
        if check:
            self._checked(serialize, model)
        return model

    def lowered(self, opset: int | None = None, batch: int | None = None,
                weights: str | Path | Mapping | None = None, seed: int = 0, progress=None,
                detached: dict | None = None, weights_prefix: Mapping[str, str] | None = None,
                dtype: str | None = None, f32_io: bool = False):
        """The unchecked onnx.ModelProto; with a `detached` dict, its large weights are left
        out of it and put there instead (see netspec.lower.lower), for netspec.runtime.save_model.
        `dtype`, `f32_io`: as to_onnx's (a converted model keeps its weights inside)."""
        from netspec.lower import DEFAULT_OPSET, lower

        _check_options(opset, batch, seed, weights_prefix, dtype, f32_io)
        from netspec import precision

        graph = self.check().graph
        if dtype is not None:
            precision.check_convertible(graph, dtype)
            opset = precision.default_opset(dtype) if opset is None else opset
        held = detached if detached is not None or dtype is None else {}
        model = lower(graph, self.weights(weights, seed, progress, weights_prefix),
                      DEFAULT_OPSET if opset is None else _integer(opset),
                      None if batch is None else _integer(batch), held)
        if dtype is None:
            return model
        converted = precision.convert(model, graph, dtype, f32_io, held).model
        if detached is None:
            precision.embed(converted, held)
        return converted

    def quantized(self, calibrate: str | Path | None = None, calibration_samples: int | None = None,
                  normalize: str | None = None, **options: Any):
        """The int8 onnx.ModelProto, as `netspec export --quantize int8` makes it (netspec.quantize:
        onnxruntime's static QDQ quantization, weights per channel), calibrated on the files of the
        folder `calibrate` (images, read with `normalize` "imagenet" or None, or .npy/.npz), the
        first `calibration_samples` of them, or on that many seeded random inputs (default 16)
        with a warning (warnings.warn) that real data is better. `options`: to_onnx's, but dtype."""
        import warnings

        from netspec import quantize

        _takes("quantized", options, ("calibrate", "calibration_samples", "normalize"))
        if calibration_samples is not None and (_integer(calibration_samples) is None or calibration_samples < 1):
            raise ValueError(f"calibration_samples {calibration_samples!r}: at least 1 (None: all the files, or 16)")
        if normalize not in (None, "imagenet", "none"):
            raise ValueError(f"normalize {normalize!r}: \"imagenet\" or None")
        if calibrate is not None and not Path(calibrate).is_dir():
            raise ValueError(f"calibrate {str(calibrate)!r}: not a folder (give the folder of calibration samples)")
        model = self.lowered(**options)
        batches, warning = quantize.calibration_batches(self.input_specs(options.get("batch")), calibrate,
                                                        calibration_samples, normalize, options.get("seed", 0))
        if warning:
            warnings.warn(warning.removeprefix("warning: ").replace("--calibrate DIR", "calibrate=DIR")
                          .replace("--calibrate", "calibrate="), stacklevel=2)
        return quantize.quantize_int8(model, batches)

    def torch_source(self) -> str:
        """The network as a Python file defining a PyTorch module (what `netspec torch` writes):
        one class per block kind, the network's class (its parameters as arguments, the spec's
        defaults) and `Model`; its state_dict keys are netspec's parameter names. Text only:
        torch is not imported."""
        from netspec.torch_codegen import generate

        return generate(self.check().graph, str(self.compilation.path))

    def to_torch(self, weights: str | Path | Mapping | None = None, seed: int = 0,
                 weights_prefix: Mapping[str, str] | None = None):
        """The network as a torch.nn.Module (the code `torch_source` writes, run in memory), with
        netspec's seeded weights (`seed`) or `weights` (a file or a mapping, as `weights()` takes),
        in train mode as PyTorch makes modules: call `.eval()` for inference. Needs torch
        (`pip install 'netspec[torch]'`): without it, ImportError says so."""
        from netspec.torch_codegen import import_torch, instantiate, state_dict

        import_torch()
        tensors = self.weights(weights, seed, weights_prefix=weights_prefix)
        model = instantiate(self.torch_source(), self.name)
        model.load_state_dict(state_dict(self.graph, tensors), strict=True)
        return model

    def export(self, path: str | Path, **options: Any) -> Path:
        """Write the ONNX model to `path` atomically, checked by onnx.checker (full check);
        options as for `to_onnx` (opset, batch, weights, weights_prefix, seed, progress). A
        model over 2 GB gets a `<name>.data` file beside it. A path that does not end in
        `.onnx` raises ValueError, as `netspec export -o` refuses it."""
        from netspec.runtime import save_model

        _takes("export", options, ("path",))
        suffix = Path(path).suffix.lower()
        if suffix != ".onnx":
            raise ValueError(f"Network.export: `{path}`: the path of an ONNX model ends in .onnx (got "
                             f"{'`' + suffix + '`' if suffix else 'no suffix'}); write e.g. "
                             f"`{_onnx_name(Path(path))}`")
        detached: dict = {}
        model = self.lowered(**options, detached=detached)
        self._checked(save_model, model, Path(path), detached)
        return Path(path)

    def session(self, device: str = "cpu", **options: Any):
        """An onnxruntime InferenceSession of this network (`cpu` or `cuda`). A layer that
        onnxruntime has no kernel for, in its dtype on this device, raises NetspecError located
        at the layer. `options` are those of `to_onnx`."""
        _takes("session", options, ("device",))
        _check_device(device)
        if options.get("weights") is not None:
            # arrays have no reliable key and a file may change between calls: build afresh
            return self._session(self.to_onnx(**options), device)
        key = (device, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in self._sessions:
            self._sessions[key] = self._session(self.to_onnx(**options), device)
        return self._sessions[key]

    def _session(self, model, device: str):
        from netspec import runtime

        try:
            return runtime.session(model, device)
        except runtime.OnnxRuntimeError as exc:
            raise self.locate(exc) from None

    def input_specs(self, batch: int | None = None, dtype: str | None = None) -> list:
        """The inputs as netspec.runtime.InputSpec (name, shape, layout, numpy dtype), the
        batch fixed to `batch` when given; with `dtype`, the f32 ones in that dtype (those of
        the model converted to it)."""
        from netspec.lower import NUMPY_DTYPES
        from netspec.runtime import InputSpec

        graph = self.check().graph
        specs = []
        for name in graph.inputs:
            t = graph.node(name).output
            shape = tuple(batch if (batch and i == t.layout.batch) else d for i, d in enumerate(t.shape))
            declared = dtype if dtype is not None and t.dtype == "f32" else t.dtype
            specs.append(InputSpec(name, shape, t.layout.axes, NUMPY_DTYPES[declared]))
        return specs

    def feeds(self, inputs: Mapping[str, Any] | Any | None = None, seed: int = 0,
              batch: int | None = None, dtype: str | None = None) -> dict:
        """onnxruntime feeds for this network: `inputs` checked and converted to the declared
        dtypes (see netspec.runtime.feeds), or seeded random values of them when None; with
        `dtype`, for the model converted to it (input_specs)."""
        from netspec.runtime import feeds

        _check_options(batch=batch, seed=seed, dtype=dtype)
        return feeds(self.input_specs(batch, dtype), inputs, seed, batch)

    def run(self, inputs: Mapping[str, Any] | Any | None = None, device: str = "cpu", **options: Any) -> dict:
        """Run the network: `inputs` maps input names to arrays (or is one array for a
        single-input network; None: seeded random values). Arrays are converted to the
        declared dtypes where that loses nothing a user relies on (netspec.runtime.feeds).
        Returns {output name: array}, each in its output's dtype. `options` are those of
        `to_onnx`; `seed` also seeds the random inputs."""
        from netspec import runtime

        _takes("run", options, ("inputs", "device"))
        sess = self.session(device, **options)
        converted = None if options.get("f32_io") else options.get("dtype")
        feeds = self.feeds(inputs, options.get("seed", 0), options.get("batch"), converted)
        try:
            results = runtime.run(sess, feeds)
        except runtime.OnnxRuntimeError as exc:
            raise self.locate(exc) from None
        return {o.name: r for o, r in zip(sess.get_outputs(), results)}

    def locate(self, error):
        """An error of onnxruntime about one node (netspec.runtime.OnnxRuntimeError), as a
        diagnostic at the layer the node belongs to (nodes are `<layer>` and `<layer>/<op>`)."""
        from netspec.diagnostics import Diagnostic

        node = getattr(error, "node", None)
        layer = node.split("/")[0] if node else None
        graph = self.graph
        if graph is None or layer is None or layer not in graph or graph.node(layer).layer is None:
            return error
        found = graph.node(layer)
        dtype = graph.node(found.inputs[0]).output.dtype if found.inputs else found.output.dtype
        if getattr(error, "missing_kernel", False):
            where = "the CPU" if error.device == "cpu" else error.device.upper()
            return NetspecError([Diagnostic(
                f"{found.kind}: onnxruntime has no {dtype} kernel for ONNX's {error.op} on {where}",
                found.span, layer=found.name,
                rule="onnxruntime runs each ONNX operator in the dtypes it has kernels for; the "
                     "exported model is valid",
                hint=f"compute this layer in f32: `-> cast(f32) -> {found.kind}(...) -> cast({dtype})`, "
                     "or run it where onnxruntime has the kernel (the README's dtype table lists the CPU's)")])
        message = error.diagnostics[0].message if error.diagnostics else str(error)
        return NetspecError([Diagnostic(f"{found.kind}: {message}", found.span, layer=found.name,
                                        rule="onnxruntime runs the exported model")])

    def _checked(self, write, model, *args):
        """`write(model, *args)` (onnx.checker's full check, and writing), with a model that
        onnx.checker refuses reported at the layer whose node it names."""
        import onnx

        from netspec.diagnostics import Diagnostic

        try:
            return write(model, *args)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            match = re.search(r"node name: ([^)\s]+)\)", text)
            layer = match.group(1).split("/")[0] if match else None
            node = self.graph.node(layer) if layer and layer in self.graph else None
            raise NetspecError([Diagnostic(
                f"{node.kind + ': ' if node is not None and node.layer is not None else ''}"
                f"the ONNX model fails onnx.checker: {text}", node.span if node is not None else None,
                layer=node.name if node is not None else None,
                rule="every exported model passes onnx.checker.check_model(full_check=True)",
                hint="this is netspec's lowering at fault: please report it")]) from None


def _onnx_name(path: Path) -> str:
    """The name to suggest for a model file: `m.onnx` for `m.txt`, and for `m.onnx.tmp` too."""
    return path.stem if path.stem.lower().endswith(".onnx") else path.with_suffix(".onnx").name


def _check_device(device: Any) -> None:
    if device not in DEVICES:
        raise ValueError(f"device `{device}`: choose {' or '.join(f'`{d}`' for d in DEVICES)}")


def _input_shapes(input_shapes: Any) -> dict[str, list]:
    """`input_shapes` checked: a mapping of input name to a list of sizes, each a positive int
    or a symbol (a name such as "N"); TypeError for the wrong type, ValueError for a size of 0
    or less."""
    if input_shapes is None:
        return {}
    example = '{"image": [1, 3, 64, 64]}'
    if not isinstance(input_shapes, Mapping):
        raise TypeError(f"netspec.load: input_shapes must be a mapping of input name to a list of sizes, "
                        f"e.g. {example}; got {type(input_shapes).__name__}")
    out: dict[str, list] = {}
    for name, dims in input_shapes.items():
        where = f"netspec.load: input_shapes[{name!r}]"
        if isinstance(dims, (str, bytes)):
            parts = str(dims if isinstance(dims, str) else dims.decode(errors="replace")).strip("[]() ")
            sizes = [p.strip() for p in parts.replace("x", ",").split(",")]
            suggestion = ("[" + ", ".join(p if p.isdigit() else repr(p) for p in sizes) + "]"
                          if all(p.isdigit() or p.isidentifier() for p in sizes) else "[1, 3, 64, 64]")
            raise TypeError(f"{where} is a string, {dims!r}: give a list of sizes, e.g. {suggestion}")
        if isinstance(dims, Mapping):
            raise TypeError(f"{where}: give a list of sizes, e.g. [1, 3, 64, 64]; got {type(dims).__name__}")
        try:
            sizes = list(dims)
        except TypeError:
            raise TypeError(f"{where}: give a list of sizes, e.g. [1, 3, 64, 64]; got "
                            f"{type(dims).__name__}") from None
        checked: list = []
        for i, size in enumerate(sizes):
            if isinstance(size, str) and size.isidentifier():
                checked.append(size)
                continue
            number = _integer(size)
            if number is None:
                raise TypeError(f"{where}[{i}] is {size!r}: a size is a positive int or a symbol such as 'N'")
            if number < 1:
                raise ValueError(f"{where}[{i}] is {number}: a size is a positive int or a symbol such as 'N'")
            checked.append(number)
        out[name] = checked
    return out


def load(path: str | Path, *, input_shapes: Mapping[str, list] | None = None, **params: Any) -> Network:
    """Compile a spec file. `params` override network parameters (`classes=10`);
    `input_shapes` override input shapes ({"image": [1, 3, 64, 64]}).

    A path that is not a readable file raises FileNotFoundError (or IsADirectoryError) at once;
    a keyword that names no network parameter, or an input that does not exist, raises
    TypeError, as a Python call with a wrong keyword does; so does an input shape that is not a
    list of sizes (a string such as "1,3,64,64"), and a size that is neither a positive int nor
    a symbol such as "N" (ValueError for 0 or less). Errors in the spec itself do not raise
    here: call `.check()` (every other method does)."""
    from netspec.compiler import OverrideError

    file = Path(path)
    if file.is_dir():
        raise IsADirectoryError(f"netspec.load: `{path}` is a directory, not a spec file")
    if not file.is_file():
        raise FileNotFoundError(f"netspec.load: no such spec file: `{path}`")
    try:
        return Network(compile_file(file, params, _input_shapes(input_shapes)))
    except OverrideError as exc:
        if exc.kind == "parameter":
            raise TypeError(f"netspec.load: keyword argument `{exc.name}`: {exc}") from None
        raise TypeError(f"netspec.load: input_shapes[{exc.name!r}]: {exc}") from None
