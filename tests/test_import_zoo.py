"""Issue 14: every network under specs/ (the 93 torchvision models and the classic ones, not
specs/lib/) round-trips through `netspec import`: exported, imported, the imported spec checks
clean (no error, no warning) with the same parameters, buffers and MACs, and its weights are
the original's tensors under the same state_dict keys.

Three tiers keep the file fast on two cores:
- small models (RUN_PARAMS, RUN_MACS) get seeded weights, are re-exported with the imported
  weights and run in onnxruntime: equal outputs (1e-4 of the output's scale), equal tensors;
- mid-sized ones take zero weights and are re-exported: the same ONNX op types, node for node
  (Identity left out: import drops dropout's);
- the largest (past REEXPORT_PARAMS) take zero weights and compare the imported weights' keys
  and shapes with the network's own.

The models netspec import cannot yet bring back are listed in XFAIL with the reason, strict:
one that starts to pass fails the suite until it leaves the list.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from bundled_specs import networks
from onnx import numpy_helper

import netspec
from netspec import runtime
from netspec.importer import import_model
from netspec.lower import NUMPY_DTYPES
from netspec.weights import parameter_dtypes

RUN_PARAMS, RUN_MACS = 15_000_000, 3_000_000_000
REEXPORT_PARAMS = 100_000_000

_SWIN = ("the shifted windows' attention mask is a persistent=false buffer, an initializer that is no "
         "state_dict key and whose values only shifted_window_mask(...) makes; the import does not "
         "recover that call (nor the layouts its window reshapes name)")
_LAYOUTS = ("window partition reshapes need `layout=` (\"NabC\", \"NCHW\") that ONNX does not record; "
            "the imported reshapes leave the channel axis unnamed and `linear` refuses them")
XFAIL: dict[str, str] = {
    "maxvit_t": _LAYOUTS,
    "swin_t": _SWIN, "swin_s": _SWIN, "swin_b": _SWIN,
    "swin_v2_t": _SWIN, "swin_v2_s": _SWIN, "swin_v2_b": _SWIN,
    "swin3d_t": _SWIN, "swin3d_s": _SWIN, "swin3d_b": _SWIN,
}


def _zero_weights(net) -> dict[str, np.ndarray]:
    dtypes = parameter_dtypes(net.graph)
    return {name: np.zeros(spec.shape, NUMPY_DTYPES[dtypes[name]])
            for name, spec in net.graph.parameter_specs().items() if spec.persistent}


def _ops(model) -> Counter:
    return Counter(n.op_type for n in model.graph.node if n.op_type != "Identity")


def _cases():
    for path in networks():
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[path.stem])] if path.stem in XFAIL else []
        yield pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", list(_cases()))
def test_zoo_round_trip(path: Path, tmp_path: Path):
    original = netspec.load(path).check()
    totals = original.totals()
    run = totals.params <= RUN_PARAMS and totals.macs <= RUN_MACS
    model = original.lowered(weights=None if run else _zero_weights(original), seed=7)
    imported = import_model(model, path.stem)
    spec = tmp_path / f"{path.stem}.net"
    spec.write_text(imported.text, encoding="utf-8")
    net = netspec.load(spec).check()
    assert not [d for d in net.diagnostics if d.severity in ("error", "warning")], net.diagnostics
    again_totals = net.totals()
    assert (totals.params, totals.buffers, totals.macs) == \
        (again_totals.params, again_totals.buffers, again_totals.macs)
    keys = {name: tuple(s.shape) for name, s in original.graph.parameter_specs().items() if s.persistent}
    assert {name: tuple(np.shape(a)) for name, a in imported.weights.items()} == keys
    if totals.params > REEXPORT_PARAMS:
        return
    again = net.lowered(weights=imported.weights)
    assert [i.name for i in again.graph.input] == [i.name for i in model.graph.input]
    assert [o.name for o in again.graph.output] == [o.name for o in model.graph.output]
    assert _ops(again) == _ops(model)
    if not run:
        return
    first = {i.name: i for i in model.graph.initializer}
    for name, array in imported.weights.items():  # the same tensors under the same names
        if name in first:
            np.testing.assert_array_equal(array, numpy_helper.to_array(first[name]))
    feeds = original.feeds(seed=1, batch=2)
    expected = runtime.run(runtime.session(model), feeds)
    got = runtime.run(runtime.session(again), feeds)
    for x, y in zip(expected, got):
        scale = float(np.abs(x).max()) or 1.0
        assert float(np.abs(x - y).max()) <= 1e-4 * scale
