"""`netspec import`: ONNX back to a spec and its weights (netspec/importer.py).

Every classic example is exported with seeded weights, imported, and the imported spec must
check clean with the same parameters, buffers and MACs, and re-export to a model whose outputs
equal the original's. AlexNet and VGG-16 (61 M and 138 M parameters) take zero weights and are
compared node by node and tensor by tensor instead of run, to keep the file fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from bundled_specs import EXAMPLES
from cli_runner import cli
from onnx import TensorProto, helper, numpy_helper
from onnx_fixtures import assert_same_outputs

import netspec
from netspec import runtime
from netspec.diagnostics import NetspecError
from netspec.importer import import_model, read_model
from netspec.lower import NUMPY_DTYPES
from netspec.weights import parameter_dtypes

LARGE = {"alexnet", "vgg16"}


def _zero_weights(net) -> dict[str, np.ndarray]:
    dtypes = parameter_dtypes(net.graph)
    return {name: np.zeros(spec.shape, NUMPY_DTYPES[dtypes[name]])
            for name, spec in net.graph.parameter_specs().items()}


def _imported(tmp_path: Path, model, name: str):
    imported = import_model(model, name)
    path = tmp_path / f"{name}.net"
    path.write_text(imported.text, encoding="utf-8")
    net = netspec.load(path).check()
    return imported, net


def _nodes(model) -> list:
    """The nodes as (op, the attributes that shape their windows), dropout's Identity left out
    (import drops it); an attribute left at its default and written out compare equal."""
    kept = ("kernel_shape", "strides", "group", "dilations", "epsilon", "axis", "transB")
    return sorted((n.op_type, str(sorted((a.name, str(helper.get_attribute_value(a))) for a in n.attribute
                                         if a.name in kept)))
                  for n in model.graph.node if n.op_type != "Identity")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_round_trip(path: Path, tmp_path: Path):
    original = netspec.load(path).check()
    large = path.stem in LARGE
    model = original.lowered(weights=_zero_weights(original) if large else None, seed=7)
    imported, net = _imported(tmp_path, model, path.stem)
    assert not [d for d in net.diagnostics if d.severity == "error"]
    assert not [d for d in net.diagnostics if d.severity == "warning"], net.diagnostics
    a, b = original.totals(), net.totals()
    assert (a.params, a.buffers, a.macs) == (b.params, b.buffers, b.macs)
    again = net.lowered(weights=imported.weights)
    assert [o.name for o in again.graph.output] == [o.name for o in model.graph.output]
    assert [i.name for i in again.graph.input] == [i.name for i in model.graph.input]
    assert _nodes(again) == _nodes(model)
    if large:
        return
    first = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for init in again.graph.initializer:  # the same tensors under the same names
        if init.name in first:
            np.testing.assert_array_equal(numpy_helper.to_array(init), first[init.name])
    feeds = original.feeds(seed=1, batch=2)
    assert_same_outputs(runtime.run(runtime.session(model), feeds), runtime.run(runtime.session(again), feeds))


def test_lenet5_spec_reads_well():
    model = netspec.load(EXAMPLES[[p.stem for p in EXAMPLES].index("lenet5")]).lowered(seed=0)
    text = import_model(model, "lenet5").text
    # the chains come back as written: bound to `features` and `logits`, their layers named by position
    assert text.splitlines() == [
        "network lenet5", "", "input digits: f32[N, 1, 32, 32]", "",
        "features = digits -> conv(6, 5) -> relu -> maxpool(2) -> conv(16, 5) -> relu -> maxpool(2)",
        "logits = features -> flatten -> linear(120) -> relu -> linear(84) -> relu -> linear(10)", "",
        "output logits"]


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "hand", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _x(name="x", shape=("N", 3, 8, 8)):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def test_unsupported_ops_are_one_error_listing_each():
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "stem.weight")
    nodes = [helper.make_node("Conv", ["x", "stem.weight"], ["c"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Einsum", ["c", "c"], ["e1"], name="mix_a", equation="nchw,nchw->nchw"),
             helper.make_node("Einsum", ["e1", "c"], ["e2"], name="mix_b", equation="nchw,nchw->nchw"),
             helper.make_node("NonZero", ["e2"], ["y"], name="where")]
    model = _model(nodes, [_x()], [helper.make_tensor_value_info("y", TensorProto.INT64, None)], [w])
    with pytest.raises(NetspecError) as caught:
        import_model(model, "hand")
    (diagnostic,) = caught.value.diagnostics
    assert "3 nodes of 2 kinds" in diagnostic.message
    assert any(n.startswith("Einsum: 2 nodes: `mix_a`, `mix_b`") for n in diagnostic.notes)
    assert any(n.startswith("NonZero: 1 node: `where`") for n in diagnostic.notes)


def test_cli_unsupported_exits_1_without_traceback(tmp_path: Path, capsys, monkeypatch):
    nodes = [helper.make_node("Einsum", ["x", "x"], ["y"], name="mix", equation="nchw,nchw->nchw")]
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, [_x()], [_x("y")]), path)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["import", path], capsys)
    assert code == 1 and "Einsum: 1 node: `mix`" in err and "Traceback" not in err
    assert not list(tmp_path.glob("m.net")) and not list(tmp_path.glob("*.safetensors"))


def test_missing_initializer(tmp_path: Path):
    nodes = [helper.make_node("Conv", ["x", "gone.weight"], ["y"], name="c")]
    model = _model(nodes, [_x()], [_x("y")])
    with pytest.raises(NetspecError) as caught:
        import_model(model, "m")
    assert "no node, input or initializer provides" in caught.value.diagnostics[0].message
    assert "`gone.weight`" in caught.value.diagnostics[0].notes[0]


def test_missing_external_data(tmp_path: Path, capsys):
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "stem.weight")
    nodes = [helper.make_node("Conv", ["x", "stem.weight"], ["y"], name="stem")]
    model = _model(nodes, [_x()], [_x("y")], [w])
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.onnx.data", size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    code, out, err = cli(["import", path, "-o", tmp_path / "m.net"], capsys)
    assert code == 1 and "m.onnx.data" in err and "missing" in err and "Traceback" not in err


def test_external_data_beside_the_model_is_read(tmp_path: Path):
    """A model saved with its weights in a `.data` file imports with those weights."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "stem.weight")
    nodes = [helper.make_node("Conv", ["x", "stem.weight"], ["y"], name="stem", pads=[1, 1, 1, 1])]
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, [_x()], [_x("y", ("N", 4, 8, 8))], [w]), path, save_as_external_data=True,
              all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    imported = import_model(read_model(path), "m")
    np.testing.assert_array_equal(imported.weights["stem.weight"], numpy_helper.to_array(w))
    assert "y = x -> stem: conv(4, 3, padding=1, bias=false)" in imported.text


def test_opset_9_model_imports_with_its_own_semantics(tmp_path: Path):
    """Opset 9: Clip's bounds are attributes, Upsample takes its scales as an input (nearest,
    asymmetric, floor: netspec's upsample), Softmax's axis defaults to 1; the import runs as the
    original does in onnxruntime."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "stem.weight"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "stem.bias"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "fc.bias")]
    nodes = [helper.make_node("Conv", ["x", "stem.weight", "stem.bias"], ["c"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c"], ["r"], name="act", min=0.0, max=6.0),
             helper.make_node("Upsample", ["r", "scales"], ["u"], name="up", mode="nearest"),
             helper.make_node("GlobalAveragePool", ["u"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["g"], name="fc", transB=1),
             helper.make_node("Softmax", ["g"], ["y"], name="probs")]
    model = _model(nodes, [_x()], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits, opset=9)
    imported, net = _imported(tmp_path, model, "old")
    assert "act: relu6" in imported.text and "up: upsample(2)" in imported.text and "probs: softmax" in imported.text
    feeds = {"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)}
    again = net.lowered(weights=imported.weights)
    assert_same_outputs(runtime.run(runtime.session(model), feeds), runtime.run(runtime.session(again), feeds))


def test_opset_11_softmax_over_several_axes_is_refused():
    """Before opset 13 Softmax flattens the axes from `axis` on: over [N, 4, 8, 8] at axis 1 it
    normalises 256 values together, which no netspec softmax does; refused, with the reason."""
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="probs", axis=1)]
    model = _model(nodes, [_x()], [_x("y")], opset=11)
    with pytest.raises(NetspecError) as caught:
        import_model(model, "m")
    assert any("Softmax (a softmax over axes 1 to 3 together (opset 11's coercion to 2-D)): 1 node: `probs`" in n
               for n in caught.value.diagnostics[0].notes)


def test_cli_writes_both_files_and_export_recreates(tmp_path: Path, capsys, monkeypatch):
    spec = EXAMPLES[[p.stem for p in EXAMPLES].index("resnet18")]
    onnx_path = tmp_path / "r18.onnx"
    assert cli(["export", spec, "-o", onnx_path, "--seed", "3"], capsys)[0] == 0
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["import", "r18.onnx"], capsys)  # -o defaults to r18.net here
    assert code == 0, err
    assert out.startswith("wrote r18.net, r18.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r18.net", "r18.onnx", "r18.safetensors"]
    code, out, err = cli(["export", "r18.net", "--weights", "r18.safetensors", "-o", "again.onnx"], capsys)
    assert code == 0, err
    feeds = netspec.load(spec).feeds(seed=2, batch=1)
    (x,) = runtime.run(runtime.session(onnx.load(onnx_path)), feeds)
    (y,) = runtime.run(runtime.session(onnx.load(tmp_path / "again.onnx")), feeds)
    assert float(np.abs(x - y).max()) <= 1e-4 * float(np.abs(x).max())


def test_cli_failed_write_touches_nothing(tmp_path: Path, capsys, monkeypatch):
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="act")], [_x()], [_x("y")])
    onnx.save(model, tmp_path / "m.onnx")
    (tmp_path / "m.safetensors").write_text("kept")
    (tmp_path / "m.net").mkdir()   # the spec's path is a folder: nothing may be written
    code, out, err = cli(["import", tmp_path / "m.onnx", "-o", tmp_path / "m.net"], capsys)
    assert code in (1, 2) and "Traceback" not in err
    assert (tmp_path / "m.safetensors").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.net", "m.onnx", "m.safetensors"]


def test_cli_usage(tmp_path: Path, capsys):
    assert cli(["import", tmp_path / "none.onnx"], capsys)[0] == 2
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"])], [_x()], [_x("y")]), tmp_path / "m.onnx")
    code, out, err = cli(["import", tmp_path / "m.onnx", "-o", tmp_path / "m.txt"], capsys)
    assert code == 2 and "ending in .net" in err
    (tmp_path / "bad.onnx").write_text("not a model")
    code, out, err = cli(["import", tmp_path / "bad.onnx", "-o", tmp_path / "b.net"], capsys)
    assert code == 1 and "cannot read" in err and "Traceback" not in err


def test_hand_made_patterns(tmp_path: Path):
    """Patterns netspec's export does not emit for the examples: MatMul + Add, the Erf GELU,
    LeakyRelu, Softmax, Transpose-free LayerNormalization, Clip as hardtanh, Pad, Reshape."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    consts = {"fc.w": w, "fc.b": b, "sqrt2": np.array(1.4142135623730951, np.float32),
              "one": np.array(1.0, np.float32), "half": np.array(0.5, np.float32),
              "ln.weight": rng.standard_normal(6).astype(np.float32), "ln.bias": np.zeros(6, np.float32),
              "lo": np.array(-2.0, np.float32), "hi": np.array(2.0, np.float32),
              "shape": np.array([0, 3, 2], np.int64)}
    nodes = [helper.make_node("MatMul", ["x", "fc.w"], ["m"], name="fc/MatMul"),
             helper.make_node("Add", ["m", "fc.b"], ["f"], name="fc"),
             helper.make_node("Div", ["f", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["f", "half"], ["h"]),
             helper.make_node("Mul", ["h", "a"], ["g"], name="act"),
             helper.make_node("LayerNormalization", ["g", "ln.weight", "ln.bias"], ["n"], name="ln", epsilon=1e-6),
             helper.make_node("LeakyRelu", ["n"], ["l"], name="leaky", alpha=0.2),
             helper.make_node("Clip", ["l", "lo", "hi"], ["c"], name="clip"),
             helper.make_node("Softmax", ["c"], ["y"], name="probs", axis=-1),
             helper.make_node("Reshape", ["y", "shape"], ["r"], name="cube")]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    model = _model(nodes, [_x("x", ("N", 8))], [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)], inits)
    imported, net = _imported(tmp_path, model, "hand")
    text = imported.text
    assert "fc: linear(6)" in text and ": gelu" in text and "ln: layernorm(eps=1e-6)" in text
    assert "leaky_relu(0.2)" in text and "hardtanh(-2.0, 2.0)" in text and "reshape((3, 2))" in text
    np.testing.assert_array_equal(imported.weights["fc.weight"], w.T)
    x = rng.standard_normal((2, 8)).astype(np.float32)
    (expected,) = runtime.run(runtime.session(model), {"x": x})
    got = net.run({"x": x}, weights=imported.weights)["r"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _as_strided(order):
    """The dynamo exporter's `as_strided` after a mean (ConvNeXt's head): Reshape(x, [-1]) and a
    Gather by indices computed from the batch size; `order` is the channels' order in them."""
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["mean"], name="mean", keepdims=1),
             helper.make_node("Shape", ["x"], ["n1"], start=0, end=1),
             helper.make_node("Squeeze", ["n1"], ["n"]),
             helper.make_node("Reshape", ["mean", "flat"], ["flat_mean"]),
             helper.make_node("Range", ["zero", "n", "step"], ["rows"]),
             helper.make_node("Mul", ["rows", "stride"], ["starts"]),
             helper.make_node("Unsqueeze", ["starts", "axes3"], ["starts4"]),
             helper.make_node("Add", ["starts4", "cols"], ["index"]),
             helper.make_node("Gather", ["flat_mean", "index"], ["picked"], name="as_strided", axis=0),
             helper.make_node("Gelu", ["picked"], ["y"], name="act", approximate="tanh")]
    consts = {"axes": np.array([2, 3], np.int64), "flat": np.array([-1], np.int64),
              "zero": np.array(0, np.int64), "step": np.array(1, np.int64), "stride": np.array(4, np.int64),
              "axes3": np.array([1, 2, 3], np.int64), "cols": np.array(order, np.int64).reshape(1, 4, 1, 1)}
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    return _model(nodes, [_x("x", ("N", 4, 5, 5))], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                  inits, opset=20)


def test_dynamo_as_strided_that_restates_the_shape_is_dropped(tmp_path: Path):
    """An as_strided whose indices are the elements' own order is the tensor itself (and the Gelu
    node, tanh approximation, is `gelu`); one in another order is refused, listing its nodes."""
    model = _as_strided([0, 1, 2, 3])
    imported, net = _imported(tmp_path, model, "hand")
    assert 'gelu(approximate="tanh")' in imported.text and "gather" not in imported.text
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
    (expected,) = runtime.run(runtime.session(model), {"x": x})
    np.testing.assert_allclose(net.run({"x": x}, weights=imported.weights)["y"], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(NetspecError) as caught:
        import_model(_as_strided([1, 0, 2, 3]), "hand")
    (diagnostic,) = caught.value.diagnostics
    assert any(n.startswith("Gather") and "`as_strided`" in n for n in diagnostic.notes)


def test_the_readme_quotes_the_real_import():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    from onnx_fixtures import load_fixture

    start = readme.index("# resnet50_imported.net\n") + len("# resnet50_imported.net\n")
    quoted = readme[start:readme.index("```", start)]
    assert quoted == import_model(load_fixture("resnet50", "torchscript"), "resnet50_imported").text


def test_torch_scoped_node_names_become_module_paths(tmp_path: Path):
    """torch.onnx names nodes by module scope: `/layer1/layer1.0/relu/Relu` is the module
    `layer1.0.relu`; an op inside a module (`/layer1/layer1.0/Add`) gets its kind after it."""
    from netspec.spec_writer import _module_path

    assert _module_path("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert _module_path("/features/features.0/features.0.1/Relu") == "features.0.1"
    assert _module_path("/Flatten") is None and _module_path("Relu_3") is None
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="/layer1/layer1.0/relu/Relu"),
             helper.make_node("Add", ["r", "x"], ["y"], name="/layer1/layer1.0/Add")]
    text = import_model(_model(nodes, [_x()], [_x("y")]), "m").text
    assert '"layer1.0": seq { relu: relu -> add: add(x) }' in text  # one module's layers, in its seq


def test_channels_last_input_comes_back_channels_last(tmp_path: Path):
    """An NHWC network's export reads its channels-first operators between Transposes; the
    import declares the input NHWC and drops them."""
    spec = tmp_path / "nhwc.net"
    spec.write_text("input image: f32[N, 16, 16, 3] NHWC\n"
                    "y = image -> conv(8, 3, padding=1) -> batchnorm -> relu -> maxpool(2) -> flatten -> linear(10)\n"
                    "output y\n", encoding="utf-8")
    original = netspec.load(spec).check()
    model = original.lowered(seed=4)
    imported, net = _imported(tmp_path, model, "back")
    assert "input image: f32[N, 16, 16, 3] NHWC" in imported.text and "permute" not in imported.text
    assert "y = image -> conv(8, 3, padding=1) -> batchnorm -> relu -> maxpool(2) -> flatten -> linear(10)" \
        in imported.text
    feeds = original.feeds(seed=1, batch=2)
    (x,) = runtime.run(runtime.session(model), feeds)
    (y,) = runtime.run(runtime.session(net.lowered(weights=imported.weights)), feeds)
    assert float(np.abs(x - y).max()) <= 1e-4 * float(np.abs(x).max())


def test_a_structure_that_would_rename_falls_back_to_every_layer_written_out(monkeypatch):
    """The import compiles the structured spec it wrote; where its state_dict would not be the
    model's, it writes the flat spec instead, whose names are the labels themselves."""
    import netspec.importer as importer

    model = netspec.load(EXAMPLES[[p.stem for p in EXAMPLES].index("resnet18")]).lowered(seed=0)
    structured = import_model(model, "r18").text
    assert "block " in structured
    real = importer._problems
    monkeypatch.setattr(importer, "_problems",
                        lambda imported: ["structured"] if "block " in imported.text else real(imported))
    flat = import_model(model, "r18")
    assert "block " not in flat.text and '"layer4.1.conv2": conv(512, 3, padding=1, bias=false)' in flat.text
    from netspec.compiler import compile_file

    compilation = compile_file("r18.net", text=flat.text)
    assert compilation.ok and set(compilation.graph.state_dict_specs()) == set(flat.weights)


def test_a_spec_that_would_not_come_back_is_an_error_not_a_file(monkeypatch):
    """Where even the flat spec would not give the model's state_dict (a gap in the importer),
    the import says so instead of writing it."""
    import netspec.importer as importer

    model = netspec.load(EXAMPLES[[p.stem for p in EXAMPLES].index("lenet5")]).lowered(seed=0)
    monkeypatch.setattr(importer, "_problems", lambda imported: ["names differ"])
    with pytest.raises(NetspecError) as caught:
        import_model(model, "lenet5")
    assert "a gap in netspec import" in caught.value.diagnostics[0].message
