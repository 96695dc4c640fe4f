"""The Python API: `netspec.load(path, **params)` and what it returns.

    net = netspec.load("specs/resnet18.net", classes=10)
    net.check()                       # raises NetspecError with located diagnostics
    print(net.table())
    net.export("resnet18.onnx")       # seeded weights, opset 17, dynamic batch
    outputs = net.run({"image": x})   # onnxruntime on the CPU
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

from netspec.compiler import Compilation, compile_file
from netspec.diagnostics import NetspecError, render_all


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

    def weights(self, weights: str | Path | Mapping | None = None, seed: int = 0, progress=None) -> dict:
        """The weights to use: seeded initialisation, a .safetensors/.npz file, or a mapping of
        arrays (e.g. a PyTorch state_dict converted with `.numpy()`), checked against the graph."""
        from netspec.weights import check_weights, initialize, load_weights

        self.check()
        if weights is None:
            return initialize(self.graph, seed, progress)
        if isinstance(weights, (str, Path)):
            return load_weights(self.graph, Path(weights))
        return check_weights(self.graph, dict(weights), "the given weights")

    def to_onnx(self, opset: int | None = None, batch: int | None = None,
                weights: str | Path | Mapping | None = None, seed: int = 0, progress=None,
                check: bool = True):
        """The onnx.ModelProto, validated by onnx.checker (full check) unless `check` is false.
        `progress(elements)` is called as seeded weights are generated."""
        from netspec.runtime import serialize

        model = self.lowered(opset, batch, weights, seed, progress)
        if check:
            serialize(model)
        return model

    def lowered(self, opset: int | None = None, batch: int | None = None,
                weights: str | Path | Mapping | None = None, seed: int = 0, progress=None,
                detached: dict | None = None):
        """The unchecked onnx.ModelProto; with a `detached` dict, its large weights are left
        out of it and put there instead (see netspec.lower.lower), for netspec.runtime.save_model."""
        from netspec.lower import DEFAULT_OPSET, lower

        return lower(self.check().graph, self.weights(weights, seed, progress), opset or DEFAULT_OPSET,
                     batch, detached)

    def export(self, path: str | Path, **options: Any) -> Path:
        """Write the ONNX model to `path` atomically, checked by onnx.checker (full check);
        options as for `to_onnx`. A model over 2 GB gets a `<name>.data` file beside it."""
        from netspec.runtime import save_model

        detached: dict = {}
        model = self.lowered(**options, detached=detached)
        save_model(model, Path(path), detached)
        return Path(path)

    def session(self, device: str = "cpu", **options: Any):
        """An onnxruntime InferenceSession of this network (`cpu` or `cuda`)."""
        from netspec.runtime import session

        if options.get("weights") is not None:
            # arrays have no reliable key and a file may change between calls: build afresh
            return session(self.to_onnx(**options), device)
        key = (device, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in self._sessions:
            self._sessions[key] = session(self.to_onnx(**options), device)
        return self._sessions[key]

    def run(self, inputs: Mapping[str, Any] | Any, device: str = "cpu", **options: Any) -> dict:
        """Run the network: `inputs` maps input names to arrays (or is one array for a
        single-input network). Returns {output name: array}."""
        import numpy as np

        sess = self.session(device, **options)
        names = [i.name for i in sess.get_inputs()]
        if not isinstance(inputs, Mapping):
            if len(names) != 1:
                raise ValueError(f"the network has {len(names)} inputs ({', '.join(names)}); pass a dict")
            inputs = {names[0]: inputs}
        feeds = {name: np.asarray(value, dtype=np.float32) for name, value in inputs.items()}
        results = sess.run(None, feeds)
        return {o.name: r for o, r in zip(sess.get_outputs(), results)}


def load(path: str | Path, *, input_shapes: Mapping[str, list] | None = None, **params: Any) -> Network:
    """Compile a spec file. `params` override network parameters (`classes=10`);
    `input_shapes` override input shapes ({"image": [1, 3, 64, 64]}).

    A path that is not a readable file raises FileNotFoundError (or IsADirectoryError) at once;
    a keyword that names no network parameter, or an input that does not exist, raises
    TypeError, as a Python call with a wrong keyword does. Errors in the spec itself do not
    raise here: call `.check()` (every other method does)."""
    from netspec.compiler import OverrideError

    file = Path(path)
    if file.is_dir():
        raise IsADirectoryError(f"netspec.load: `{path}` is a directory, not a spec file")
    if not file.is_file():
        raise FileNotFoundError(f"netspec.load: no such spec file: `{path}`")
    try:
        return Network(compile_file(file, params, dict(input_shapes or {})))
    except OverrideError as exc:
        if exc.kind == "parameter":
            raise TypeError(f"netspec.load: keyword argument `{exc.name}`: {exc}") from None
        raise TypeError(f"netspec.load: input_shapes[{exc.name!r}]: {exc}") from None
