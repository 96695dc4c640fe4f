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
from onnx_fixtures import assert_same_outputs

import netspec
from netspec import runtime
from netspec.diagnostics import NetspecError
from netspec.importer import import_model
from netspec.lower import NUMPY_DTYPES
from netspec.weights import parameter_dtypes

RUN_PARAMS, RUN_MACS = 30_000_000, 6_000_000_000
REEXPORT_PARAMS = 200_000_000

# stem -> why netspec import cannot bring it back yet; none today (every spec round-trips)
XFAIL: dict[str, str] = {}

# Lines the imported spec must hold: each pattern of netspec's lowering read back as the layer,
# param or buffer a person writes, not as the ONNX nodes it became
WRITTEN: dict[str, list[str]] = {
    "vit_b_32": ["class_token = param(1, 1, 768)",
                 'encoder_pos_embedding = "encoder.pos_embedding": param(1, 50, 768)',
                 "-> tokens: concat(patches_2, axis=1)",
                 "-> self_attention: multihead_attention(12) -> h: add(x)",
                 "layers: seq { repeat(12, i) { encoder_layer_{i}: block2 } }",
                 '-> "logits.0": select(1, 0)'],
    "convnext_tiny": ["    layer_scale = param(out_channels, 1, 1)",
                      'return x -> "block": block1(out_channels, out_features) -> mul: mul(layer_scale) -> add: add(x)',
                      "features = image -> seq { conv(96, 4, stride=4) -> layernorm(eps=1e-6) } -> block3(96, 384)"],
    "shufflenet_v2_x0_5": ["-> concat: concat(branch2) -> channel_shuffle(2)"],
    "swin_t": ["relative_position_index = buffer(2401, dtype=i64, init=relative_position_index(7))",
               'full_attn_mask = "full.attn_mask": buffer(size_2, 1, 49, 49, init=init, persistent=false)',
               "shifted_window_mask(56, 56, 7, (3, 3))",
               "return x -> rolled: roll((-3, -3), (1, 2))",
               '-> "bias.gather": gather(relative_position_index)'],
    "swin_v2_t": ["relative_coords_table = buffer(1, 15, 15, 2, init=relative_coords_table(8))",
                  "-> queries: normalize(4)", "scale = logit_scale -> clamp(max=4.6051702) -> exp",
                  "-> mul_2: mul(scalar=16.0)"],
    "swin3d_t": ['-> "features.0.1.attn.rolled": roll((-3, -3), (2, 3))'],
    "maxvit_t": ['-> reshape(shape_2, layout="NabC")', '-> reshape(shape_2, layout="NCHW")'],
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
    lines = imported.text.splitlines()
    for line in WRITTEN.get(path.stem, []):
        assert any(line in text for text in lines), line
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
    assert_same_outputs(runtime.run(runtime.session(model), feeds), runtime.run(runtime.session(again), feeds))


def test_scalar_call_form(tmp_path: Path):
    """`x -> mul(scalar=n)` is `x * n` (the import writes a tensor-number product in a chain so);
    a layer without a `scalar` still needs two tensors."""
    spec = tmp_path / "s.net"
    spec.write_text("input x: f32[N, 8]\ny = x -> mul(scalar=0.5) -> add(scalar=-1.0)\noutput y\n", encoding="utf-8")
    y = netspec.load(spec).run({"x": np.ones((2, 8), np.float32)})["y"]
    np.testing.assert_array_equal(y, np.full((2, 8), -0.5, np.float32))
    spec.write_text("input x: f32[N, 8]\ny = x -> concat(scalar=1.0)\noutput y\n", encoding="utf-8")
    with pytest.raises(NetspecError):
        netspec.load(spec).check()


def test_patterns_it_cannot_express_are_refused_without_a_traceback():
    """An Expand of an activation (not a class token's param), a Gather along the batch and a
    Slice with bounds that are not constant: one error naming each, as for any unsupported op."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8])
    consts = {"shape": np.array([2, 4, 8], np.int64), "zero": np.array(0, np.int64)}
    nodes = [helper.make_node("Expand", ["x", "shape"], ["e"], name="spread"),
             helper.make_node("Gather", ["x", "zero"], ["g"], name="first", axis=0),
             helper.make_node("Shape", ["g"], ["s"], name="sizes"),
             helper.make_node("Slice", ["x", "zero1", "s"], ["y"], name="cut")]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()] + \
        [numpy_helper.from_array(np.array([0], np.int64), "zero1")]
    graph = helper.make_graph(nodes, "hand", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                                                  helper.make_tensor_value_info("e", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(NetspecError) as caught:
        import_model(model, "hand")
    notes = "\n".join(caught.value.diagnostics[0].notes)
    assert "Expand (a tensor that is no initializer): 1 node: `spread`" in notes
    assert "Gather (a pick along the batch): 1 node: `first`" in notes
