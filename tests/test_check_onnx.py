"""`netspec check MODEL.onnx` and `netspec graph MODEL.onnx`: an ONNX model imported in memory
and shown as a spec is, with the usual options (netspec/commands/onnx_spec.py).

Bundled specs are exported with seeded weights once per module; each model must check with
the totals its spec has.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from bundled_specs import SPECS
from onnx import TensorProto, helper
from test_imports import modules_after

import netspec
from cli_runner import cli
from netspec import runtime
from netspec.importer import Imported

# a chain, a branching network with concats, one with batch-norm buffers, and several inputs
# and outputs (a feature pyramid)
NAMES = ("lenet5", "squeezenet1_1", "resnet18", "fpn")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name in NAMES:
        paths[name] = folder / f"{name}.onnx"
        onnx.save(netspec.load(SPECS / f"{name}.net").check().lowered(seed=7), str(paths[name]))
    return paths


def _json(argv, capsys) -> dict:
    code, out, err = cli(["check", *argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


# The totals an import keeps. Activation memory is left out: the import drops dropout (an
# Identity in the model), so a spec with dropout has one activation fewer once imported.
KEPT_TOTALS = ("params", "buffers", "macs", "param_bytes")


def _total_lines(table: str) -> list[str]:
    return [re.sub(r"\s+", " ", line) for line in table.splitlines()
            if line.startswith(("Parameters", "Buffers", "MACs", "Parameter memory"))]


@pytest.mark.parametrize("name", NAMES)
def test_check_shows_the_totals_of_the_spec(name, models, capsys):
    code, out, err = cli(["check", models[name]], capsys)
    assert code == 0, err
    assert "Traceback" not in err
    _, original, _ = cli(["check", SPECS / f"{name}.net"], capsys)
    assert len(_total_lines(out)) == 4
    assert _total_lines(out) == _total_lines(original)
    assert out.startswith(f"network {name}\n")
    imported = _json([models[name]], capsys)["totals"]
    spec = _json([SPECS / f"{name}.net"], capsys)["totals"]
    assert {k: imported[k] for k in KEPT_TOTALS} == {k: spec[k] for k in KEPT_TOTALS}


def test_json_names_the_onnx_file(models, capsys):
    report = _json([models["lenet5"]], capsys)
    assert report["file"] == str(models["lenet5"])
    assert report["ok"] is True
    assert [i["shape"] for i in report["inputs"]] == [["N", 1, 32, 32]]


def test_input_shape_changes_the_shapes(models, capsys):
    code, out, err = cli(["check", models["lenet5"], "--input-shape", "digits=N,1,64,64"], capsys)
    assert code == 0, err
    assert "[N, 6, 60, 60]" in out          # the first conv, 5x5 without padding
    assert "[N, 16, 13, 13]" in out         # after the second pool
    assert "338,186 trainable" in out       # the first linear takes 16*13*13 features
    assert "[N, 6, 28, 28]" not in out


def test_depth_and_explain_work(models, capsys):
    code, out, err = cli(["check", models["lenet5"], "--explain", "--columns", "rf"], capsys)
    assert code == 0, err
    assert "    H: floor((32 + 2*0 - 1*(5-1) - 1) / 1) + 1 = 28\n" in out
    assert "    MACs: 28 * 28 * 6 * (1 * 5 * 5) = 117,600\n" in out
    assert re.search(r"MACs +RF\n", out)
    code, out, err = cli(["check", models["resnet18"], "--depth", "0"], capsys)
    assert code == 0, err
    assert "11,689,512 trainable" in out


def test_set_names_the_imported_networks_parameters(models, capsys):
    # an imported spec has no network parameters: --set is the usual usage error, naming none
    code, _, err = cli(["check", models["lenet5"], "--set", "classes=3"], capsys)
    assert code == 2
    assert "--set classes: the network has no parameter `classes`" in err
    assert "Traceback" not in err


def test_graph_writes_dot(models, tmp_path, capsys):
    out_file = tmp_path / "fpn.dot"
    code, out, err = cli(["graph", models["fpn"], "-o", out_file], capsys)
    assert code == 0, err
    assert out.startswith(f"wrote {out_file} (")
    text = out_file.read_text()
    assert text.startswith('digraph "fpn" {')
    assert "[N, 256, 4, 4]" in text         # p6's shape on an edge or in its box
    code, _, err = cli(["graph", models["lenet5"], "-o", tmp_path / "l.mmd", "--depth", "0",
                        "--input-shape", "digits=N,1,64,64"], capsys)
    assert code == 0, err
    assert "N, 6, 60, 60" in (tmp_path / "l.mmd").read_text()


def test_export_keeps_the_models_weights(models, tmp_path, capsys):
    # export re-lowers the imported spec with the model's own weights and --batch as for a spec
    again = tmp_path / "again.onnx"
    code, _, err = cli(["export", models["lenet5"], "-o", again, "--batch", "2"], capsys)
    assert code == 0, err
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    want = runtime.run(runtime.session(str(models["lenet5"]), "cpu"), {"digits": x})
    got = runtime.run(runtime.session(str(again), "cpu"), {"digits": x})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert onnx.load(str(again)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def _einsum_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4])
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="bij,bij->bij")
    return helper.make_model(helper.make_graph([node], "g", [x], [y]),
                             opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("command", ["check", "graph"])
def test_an_unsupported_op_is_the_importers_error(command, tmp_path, capsys):
    path = tmp_path / "einsum.onnx"
    onnx.save(_einsum_model(), str(path))
    extra = ["-o", tmp_path / "e.dot"] if command == "graph" else []
    code, out, err = cli([command, path, *extra], capsys)
    assert code == 1
    assert "error: cannot import the model: 1 node of 1 kind have no netspec layer" in err
    assert "Einsum: 1 node: `y`" in err
    assert "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "e.dot").exists()


def test_an_unsupported_op_in_json(tmp_path, capsys):
    path = tmp_path / "einsum.onnx"
    onnx.save(_einsum_model(), str(path))
    code, out, _ = cli(["check", path, "--json"], capsys)
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["file"] == str(path)
    assert "no netspec layer" in report["diagnostics"][0]["message"]


def test_a_file_that_is_not_onnx(tmp_path, capsys):
    path = tmp_path / "x.ONNX"               # the suffix in any case
    path.write_text("network x\n")
    code, _, err = cli(["check", path], capsys)
    assert code == 1
    assert f"error: cannot read `{path}` as an ONNX model" in err
    assert "Traceback" not in err


def test_a_missing_model_is_a_usage_error_as_a_missing_spec(tmp_path, capsys):
    code, _, err = cli(["check", tmp_path / "nope.onnx"], capsys)
    assert code == 2
    assert err == f"netspec: error: cannot read `{tmp_path / 'nope.onnx'}`: no such file\n"
    code, _, err_net = cli(["check", tmp_path / "nope.net"], capsys)
    assert code == 2 and err_net == err.replace("nope.onnx", "nope.net")


def test_an_imported_spec_that_fails_blames_the_import(models, monkeypatch, capsys):
    # should never happen; if it does, the error must not point at a .net file that is not there
    broken = Imported(text="network lenet5\n\ninput digits: f32[N, 1, 32, 32]\n\nout = digits -> nosuch\n\n"
                           "output out\n", weights={}, layers=1)
    monkeypatch.setattr("netspec.importer.import_model", lambda model, name: broken)
    path = models["lenet5"]
    code, _, err = cli(["check", path], capsys)
    assert code == 1
    assert f"--> {path} (as netspec imported it):5:" in err
    assert "out = digits -> nosuch" in err        # the imported line is quoted
    assert f"this spec is netspec's import of `{path}`, so the error is a bug in netspec's importer" in err
    assert "Traceback" not in err


def test_check_of_a_spec_still_imports_no_onnx():
    code, top = modules_after("specs/lenet5.net")
    assert code == 0
    assert not top & {"onnx", "numpy", "onnxruntime"}


def test_the_readme_quotes_real_output(models, tmp_path, capsys):
    from test_readme import quoted_output

    quoted = quoted_output("netspec export specs/lenet5.net -o lenet5.onnx")
    command = "netspec check lenet5.onnx --input-shape digits=N,1,64,64"
    expected = quoted[quoted.index(f"$ {command}\n"):].splitlines()[1:]
    code, out, _ = cli(["check", models["lenet5"], *command.split()[3:]], capsys)
    assert code == 0
    assert [line.rstrip() for line in out.splitlines()] == [line.rstrip() for line in expected]
    path = tmp_path / "einsum.onnx"
    onnx.save(_einsum_model(), str(path))
    code, _, err = cli(["check", path], capsys)
    assert code == 1
    assert err.splitlines() == quoted_output("netspec check einsum.onnx").splitlines()


def test_features_use_the_models_weights(models, tmp_path, capsys):
    # the model was exported with seed 7; --seed 7 also seeds the random input, so the spec
    # with seeded weights and the model with its own give the same maps
    for source, name in ((models["lenet5"], "model.npz"), (SPECS / "lenet5.net", "spec.npz")):
        code, _, err = cli(["features", source, "--layer", "features.3", "--seed", "7", "-o", tmp_path / name],
                           capsys)
        assert code == 0, err
    with np.load(tmp_path / "model.npz") as got, np.load(tmp_path / "spec.npz") as want:
        assert got["features.3"].shape == (1, 16, 10, 10)
        np.testing.assert_allclose(got["features.3"], want["features.3"], rtol=1e-5, atol=1e-6)
