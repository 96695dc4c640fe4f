"""ONNX export: validity of every example spec's model, shapes against netspec's own, opset and
IR versions, names, dropout at inference, atomic writes.

Every spec in specs/ is found by glob, so a new spec is covered without editing this file.

Cost: the big zoo models (VGG16 is 553 MB of weights) are lowered once with zero weights
(`np.zeros` is free; the values do not matter to the checker) for the full onnx.checker
pass. The shape-inference tests lower with empty weight arrays and then declare each
parameter as a graph input of the parameter's shape instead of an initializer: the nodes,
attributes, constants and parameter shapes are exactly those of the export, without pushing
hundreds of MB through protobuf for every inference pass.
"""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bundled_specs import EXAMPLES
from onnx import helper, numpy_helper

import netspec
from cli_runner import cli
from netspec.diagnostics import NetspecError
from netspec.lower import DEFAULT_OPSET, MAX_IR_VERSION, MAX_OPSET, MIN_OPSET, canonical_shape, lower
from netspec.lower import NUMPY_DTYPES
from netspec.weights import parameter_dtypes

ROOT = Path(__file__).resolve().parent.parent
SPECS = EXAMPLES  # the fourteen examples (tests/bundled_specs.py): exporting all 78 torchvision models would cost minutes
LENET = ROOT / "specs" / "lenet5.net"
SPEC_IDS = [p.stem for p in SPECS]
BATCH = 2




def write(tmp_path: Path, text: str, name: str = "t.net") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


_NETS: dict = {}


def net_of(path: Path):
    if path not in _NETS:
        _NETS[path] = netspec.load(path).check()
    return _NETS[path]


def zero_weights(net, empty: bool = False) -> dict[str, np.ndarray]:
    dtypes = parameter_dtypes(net.graph)
    return {name: np.zeros((0,) if empty else spec.shape, NUMPY_DTYPES[dtypes[name]])
            for name, spec in net.graph.parameter_specs().items()}


def light_model(net, batch: int | None) -> onnx.ModelProto:
    """The export's graph with parameters as typed graph inputs instead of initializers."""
    specs = net.graph.parameter_specs()
    model = lower(net.graph, zero_weights(net, empty=True), DEFAULT_OPSET, batch)
    kept = []
    for init in model.graph.initializer:
        if init.name in specs:
            model.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type,
                                                                   list(specs[init.name].shape)))
        else:
            kept.append(init)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def inferred_shapes(model: onnx.ModelProto) -> dict[str, list]:
    """Every value's inferred dims: an int, a symbol name (str), or None (unnamed)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    out = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        t = info.type.tensor_type
        if not t.HasField("shape"):
            out[info.name] = "no shape"
            continue
        out[info.name] = [d.dim_value if d.HasField("dim_value") else
                          (d.dim_param or None) for d in t.shape.dim]
    return out


# ================================================================ every spec


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_model_passes_full_check(spec):
    net = net_of(spec)
    model = lower(net.graph, zero_weights(net), DEFAULT_OPSET, None)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == DEFAULT_OPSET == 17
    assert model.ir_version <= MAX_IR_VERSION <= 13


def test_specs_are_found():
    assert len(SPECS) >= 14 and LENET in SPECS


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_inferred_shapes_equal_netspec_with_fixed_batch(spec):
    net = net_of(spec)
    shapes = inferred_shapes(light_model(net, BATCH))
    problems = []
    for node in net.graph:
        want = [d if isinstance(d, int) else BATCH for d in canonical_shape(node.output)]
        got = shapes.get(node.name)
        if got != want:
            problems.append(f"{node.name} ({node.kind}): onnx {got}, netspec {want}")
    for name, node_name in net.graph.outputs:  # outputs in the declared layout
        t = net.graph.node(node_name).output
        want = [d if isinstance(d, int) else BATCH for d in t.shape]
        if shapes.get(name) != want:
            problems.append(f"output {name}: onnx {shapes.get(name)}, netspec {want}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_inferred_shapes_equal_netspec_with_dynamic_batch(spec):
    net = net_of(spec)
    shapes = inferred_shapes(light_model(net, None))
    problems = []
    for node in net.graph:
        want = list(canonical_shape(node.output))
        got = shapes.get(node.name)
        if not isinstance(got, list) or len(got) != len(want):
            problems.append(f"{node.name} ({node.kind}): onnx {got}, netspec {want}")
            continue
        for axis, (g, w) in enumerate(zip(got, want)):
            if isinstance(w, int):
                ok = g == w
            else:  # the batch: the spec's symbol, or an unnamed/generated symbol, never a number
                ok = axis == 0 and not isinstance(g, int)
            if not ok:
                problems.append(f"{node.name} ({node.kind}) axis {axis}: onnx {got}, netspec {want}")
                break
    assert not problems, "\n".join(problems[:20])


def _light_lowered(spec):
    net = net_of(spec)
    return net.graph, lower(net.graph, zero_weights(net, empty=True), DEFAULT_OPSET, None)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_graph_inputs_and_outputs_keep_the_spec_names(spec):
    graph, model = _light_lowered(spec)
    assert [i.name for i in model.graph.input] == list(graph.inputs)
    assert [o.name for o in model.graph.output] == [name for name, _ in graph.outputs]
    for info in model.graph.input:
        dims = [d.dim_value or d.dim_param for d in info.type.tensor_type.shape.dim]
        assert dims == list(graph.node(info.name).output.shape)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_initializers_are_named_like_the_parameters(spec):
    """Initializers holding parameters carry the state_dict keys; only `num_batches_tracked`
    (a training counter) is not needed at inference. Any other initializer is a constant
    named `<layer>/...`."""
    graph, model = _light_lowered(spec)
    params = set(graph.parameter_specs())
    needed = {p for p in params if not p.endswith(".num_batches_tracked")}
    inits = [i.name for i in model.graph.initializer]
    assert len(inits) == len(set(inits))
    assert {i for i in inits if i in params} == needed
    layer_names = {node.name for node in graph}
    for name in inits:
        if name not in params:
            assert "/" in name and name.split("/")[0] in layer_names, name


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_node_names_include_the_layer_names(spec):
    """Every layer has a node named exactly after it (the one producing its value); its other
    nodes are `<layer>/<op>`."""
    graph, model = _light_lowered(spec)
    layer_names = {node.name for node in graph}
    node_names = [n.name for n in model.graph.node]
    assert len(node_names) == len(set(node_names))
    missing = [n.name for n in graph if n.layer is not None and n.name not in node_names]
    assert not missing, f"layers without a node of their name: {missing[:5]} (nodes: {node_names[:5]})"
    for name in node_names:
        assert name in layer_names or name.split("/")[0] in layer_names, name


def test_initializer_values_are_the_weights():
    net = net_of(LENET)
    weights = net.weights(seed=4)
    model = net.to_onnx(weights=weights)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert list(inits) == list(net.graph.parameter_specs())
    for name, value in weights.items():
        assert inits[name].dtype == np.float32
        np.testing.assert_array_equal(inits[name], value)


def test_light_model_infers_like_the_real_export():
    """The shortcut the shape tests take (parameters as typed inputs) changes no inferred shape."""
    for spec in (LENET, ROOT / "specs" / "fpn.net", ROOT / "specs" / "mobilenet_v3_small.net"):
        net = net_of(spec)
        light = inferred_shapes(light_model(net, BATCH))
        real = inferred_shapes(net.to_onnx(batch=BATCH, weights=zero_weights(net)))
        assert real and all(light[name] == dims for name, dims in real.items()), spec.stem


# ================================================================ a small spec, all opsets


def test_default_opset_is_17(tmp_path, capsys):
    out = tmp_path / "l.onnx"
    code, stdout, _ = cli(["export", LENET, "-o", out], capsys)
    assert code == 0
    model = onnx.load(out)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert "opset 17" in stdout and f"IR {model.ir_version}" in stdout
    assert net_of(LENET).to_onnx().opset_import[0].version == 17


@pytest.mark.parametrize("opset", range(MIN_OPSET, MAX_OPSET + 1))
def test_every_opset_in_range_loads_in_onnxruntime(opset):
    assert (MIN_OPSET, MAX_OPSET) == (13, 26)
    net = net_of(LENET)
    model = net.to_onnx(opset=opset)
    assert model.opset_import[0].version == opset
    assert model.ir_version <= 13
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    (y,) = sess.run(None, {"digits": x})
    assert y.shape == (3, 10)
    np.testing.assert_allclose(y, net.run(x)["logits"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 17, 21, 26])
def test_cli_opset_accepted_and_loads(opset, tmp_path, capsys):
    out = tmp_path / f"l{opset}.onnx"
    code, stdout, err = cli(["export", LENET, "-o", out, "--opset", opset], capsys)
    assert code == 0, err
    model = onnx.load(out)
    assert model.opset_import[0].version == opset and model.ir_version <= 13
    assert f"opset {opset}" in stdout
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("opset", ["12", "27", "0", "-1"])
def test_cli_opset_out_of_range_is_a_usage_error(opset, tmp_path, capsys):
    out = tmp_path / "l.onnx"
    code, stdout, err = cli(["export", LENET, "-o", out, f"--opset={opset}"], capsys)
    assert code == 2
    assert "--opset" in err and "13" in err and "26" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_api_opset_out_of_range_raises():
    with pytest.raises(ValueError, match="opset 27: choose 13 to 26"):  # as the CLI says it
        net_of(LENET).to_onnx(opset=27)


def _layer_kind_cases():
    from test_parity_layers import CASES  # the one-layer specs of every kind

    return CASES


@pytest.mark.parametrize("opset", [13, 14, 16, 26])
def test_every_layer_kind_lowers_or_gives_a_located_error_at_any_opset(opset, tmp_path):
    """A layer at an opset that lacks its operator is a located error naming the layer (or is
    expressed with older operators), never an invalid model or a crash."""
    failures = []
    for case in _layer_kind_cases():
        spec = write(tmp_path, case.text(), f"{case.id}.net")
        net = netspec.load(spec)
        try:
            model = net.to_onnx(opset=opset)
        except NetspecError as exc:
            if not all(d.layer and d.span for d in exc.diagnostics):
                failures.append(f"{case.id}: unlocated error {exc}")
            continue
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{case.id}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{case.id}: onnxruntime cannot load it: {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures)


# ================================================================ dropout, batch


def test_dropout_disappears_at_inference(tmp_path):
    spec = write(tmp_path, """
        network t
        input x: f32[N, 4, 5, 5]
        y = x -> dropout(0.9)
        output y
    """)
    net = netspec.load(spec)
    model = net.to_onnx()
    assert "Dropout" not in {n.op_type for n in model.graph.node}
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(net.run(x)["y"], x)


def test_dropout_between_layers_changes_nothing(tmp_path):
    with_dropout = write(tmp_path, """
        network t
        input x: f32[N, 12]
        y = x -> a: linear(8) -> dropout(0.5) -> b: linear(3)
        output y
    """, "d.net")
    without = write(tmp_path, """
        network t
        input x: f32[N, 12]
        y = x -> a: linear(8) -> identity -> b: linear(3)
        output y
    """, "i.net")
    x = np.random.default_rng(1).standard_normal((4, 12)).astype(np.float32)
    a, b = netspec.load(with_dropout), netspec.load(without)
    np.testing.assert_array_equal(a.run(x)["y"], b.run(x, weights=a.weights())["y"])


def test_zoo_models_have_no_dropout_node():
    for spec in SPECS:
        net = net_of(spec)
        if any(node.kind == "dropout" for node in net.graph):
            model = lower(net.graph, zero_weights(net, empty=True), DEFAULT_OPSET, None)
            assert "Dropout" not in {n.op_type for n in model.graph.node}, spec.stem


def test_batch_option_fixes_the_batch(tmp_path, capsys):
    out = tmp_path / "l.onnx"
    assert cli(["export", LENET, "-o", out, "--batch", "2"], capsys)[0] == 0
    model = onnx.load(out)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 1, 32, 32]
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [2, 10]
    # default: the spec's symbol
    out2 = tmp_path / "d.onnx"
    assert cli(["export", LENET, "-o", out2], capsys)[0] == 0
    dim = onnx.load(out2).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "N" and not dim.HasField("dim_value")


def test_batch_below_1_is_a_usage_error(tmp_path, capsys):
    code, _, err = cli(["export", LENET, "-o", tmp_path / "l.onnx", "--batch", "0"], capsys)
    assert code == 2 and "--batch" in err


def test_export_uses_the_given_weights(tmp_path, capsys):
    net = net_of(LENET)
    weights = net.weights(seed=7)
    np.savez(tmp_path / "w.npz", **weights)
    out = tmp_path / "l.onnx"
    code, _, err = cli(["export", LENET, "-o", out, "--weights", tmp_path / "w.npz"], capsys)
    assert code == 0, err
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(out).graph.initializer}
    assert set(inits) == set(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(inits[name], value)
    # --seed: a different seed, different weights; the same seed, the same bytes
    a, b, c = tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"
    for path, seed in ((a, 1), (b, 1), (c, 2)):
        assert cli(["export", LENET, "-o", path, "--seed", seed], capsys)[0] == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


# ================================================================ atomic writes

NON_EXACT = """
    network t
    input x: f32[N, 3, 7, 7]
    y = x -> conv(4, 1) -> adaptive_avgpool(3)
    output y
"""


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_failed_export_exits_1_and_writes_nothing(tmp_path, capsys):
    spec = write(tmp_path, NON_EXACT)
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    code, stdout, err = cli(["export", spec, "-o", out], capsys)
    assert code == 1
    assert "adaptive_avgpool" in err and "y.1" in err and f"{spec}:3" in err
    assert "Traceback" not in err and "internal error" not in err
    assert not out.exists()
    assert _listing(out.parent) == []  # no temporary file left behind either


def test_lowering_error_quotes_the_source_line(tmp_path, capsys):
    """README: every problem gets file:line:column, the source line and a caret (as `check`
    errors do); a layer ONNX cannot express is located the same way."""
    spec = write(tmp_path, NON_EXACT)
    code, _, err = cli(["export", spec, "-o", tmp_path / "m.onnx"], capsys)
    assert code == 1
    lines = err.splitlines()
    quoted = [i for i, line in enumerate(lines) if "y = x -> conv(4, 1) -> adaptive_avgpool(3)" in line]
    assert quoted, err
    assert "^" in lines[quoted[0] + 1], err


def test_failed_export_leaves_an_existing_file_byte_identical(tmp_path, capsys):
    spec = write(tmp_path, NON_EXACT)
    out = tmp_path / "m.onnx"
    assert cli(["export", LENET, "-o", out], capsys)[0] == 0
    before = hashlib.sha256(out.read_bytes()).hexdigest()
    stat = out.stat()
    code, _, err = cli(["export", spec, "-o", out], capsys)
    assert code == 1, err
    assert hashlib.sha256(out.read_bytes()).hexdigest() == before
    assert out.stat().st_mtime_ns == stat.st_mtime_ns
    assert _listing(tmp_path) == ["m.onnx", "t.net"]


def test_failed_weights_leave_an_existing_file_byte_identical(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert cli(["export", LENET, "-o", out], capsys)[0] == 0
    before = out.read_bytes()
    (tmp_path / "w.npz").write_bytes(b"not a zip")
    code, _, err = cli(["export", LENET, "-o", out, "--weights", tmp_path / "w.npz"], capsys)
    assert code == 1 and "w.npz" in err
    assert out.read_bytes() == before
    assert _listing(tmp_path) == ["m.onnx", "w.npz"]


def test_successful_export_replaces_an_existing_file(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old contents")
    code, stdout, err = cli(["export", LENET, "-o", out], capsys)
    assert code == 0, err
    assert f"wrote {out}" in stdout
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.name == "lenet5"
    assert model.SerializeToString() == net_of(LENET).to_onnx().SerializeToString()
    assert _listing(tmp_path) == ["m.onnx"]


def test_export_into_a_missing_folder_exits_1(tmp_path, capsys):
    out = tmp_path / "nope" / "m.onnx"
    code, _, err = cli(["export", LENET, "-o", out], capsys)
    assert code == 1 and "does not exist" in err and "Traceback" not in err
    assert not out.parent.exists()


def test_export_onto_a_directory_exits_1(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    code, _, err = cli(["export", LENET, "-o", tmp_path / "adir"], capsys)
    assert code == 1 and "cannot write" in err and "Traceback" not in err
    assert _listing(tmp_path) == ["adir"] and _listing(tmp_path / "adir") == []


def test_api_export_writes_the_model(tmp_path):
    out = netspec.load(LENET).export(tmp_path / "api.onnx", batch=3, opset=21)
    model = onnx.load(out)
    assert model.opset_import[0].version == 21
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3
    assert _listing(tmp_path) == ["api.onnx"]


@pytest.mark.parametrize("spec", [LENET, ROOT / "specs" / "resnet18.net"], ids=["lenet5", "resnet18"])
def test_exported_file_is_the_model_byte_for_byte(tmp_path, spec):
    """export streams the large weights into the file from their arrays (never through a
    protobuf message): what a reader loads is exactly the model to_onnx builds."""
    net = netspec.load(spec)
    out = net.export(tmp_path / "m.onnx", seed=4, batch=2)
    assert onnx.load(out).SerializeToString() == net.to_onnx(seed=4, batch=2).SerializeToString()


def _conv_model(weight_shape, output_shape):
    """x [1, 3, 8, 8] -> Conv with a weight `w` that is named and shaped but holds no bytes."""
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, output_shape)])
    weight = graph.initializer.add()
    weight.name, weight.data_type = "w", onnx.TensorProto.FLOAT
    weight.dims.extend(weight_shape)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_save_model_checks_detached_weights_by_their_shapes(tmp_path):
    from netspec import runtime

    weight = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3)
    good = tmp_path / "good.onnx"
    runtime.save_model(_conv_model(weight.shape, [1, 4, 6, 6]), good, {"w": weight})
    assert np.array_equal(numpy_helper.to_array(onnx.load(good).graph.initializer[0]), weight)
    # five output channels do not follow from a weight of four filters: the full check's shape
    # inference sees the detached weight's shape, and nothing is written
    bad = tmp_path / "bad.onnx"
    with pytest.raises(onnx.shape_inference.InferenceError, match="differ in dimension 1"):
        runtime.save_model(_conv_model(weight.shape, [1, 5, 6, 6]), bad, {"w": weight})
    assert _listing(tmp_path) == ["good.onnx"]


def test_external_data_export_streams_aligned_tensors(tmp_path, monkeypatch):
    from netspec import runtime

    monkeypatch.setattr(runtime, "TWO_GB", 1024)   # every model counts as large
    net = netspec.load(LENET)
    out = net.export(tmp_path / "m.onnx", seed=3)
    assert _listing(tmp_path) == ["m.onnx", "m.onnx.data"]
    bare = onnx.load(out, load_external_data=False)
    offsets = [int(entry.value) for tensor in bare.graph.initializer for entry in tensor.external_data
               if entry.key == "offset"]
    assert offsets and all(offset % runtime.EXTERNAL_ALIGNMENT == 0 for offset in offsets)
    loaded = {t.name: numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer}
    expected = {t.name: numpy_helper.to_array(t) for t in net.to_onnx(seed=3).graph.initializer}
    assert loaded.keys() == expected.keys()
    assert all(np.array_equal(loaded[name], expected[name]) for name in expected)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    from_file = runtime.session(str(out)).run(None, {"digits": x})[0]
    assert np.allclose(from_file, net.run(x, seed=3)["logits"], atol=1e-6)


def test_spec_error_in_export_exits_1(tmp_path, capsys):
    spec = write(tmp_path, """
        network t
        input x: f32[N, 3, 8, 8]
        y = x -> conv(4, 3, strid=2)
        output y
    """)
    out = tmp_path / "m.onnx"
    code, _, err = cli(["export", spec, "-o", out], capsys)
    assert code == 1 and "strid" in err and not out.exists()


def test_unknown_set_or_missing_spec_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert cli(["export", LENET, "-o", out, "--set", "nope=1"], capsys)[0] == 2
    assert cli(["export", tmp_path / "missing.net", "-o", out], capsys)[0] == 2
    assert cli(["export", LENET], capsys)[0] == 2  # -o is required
    assert not out.exists()
