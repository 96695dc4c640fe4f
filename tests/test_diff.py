"""`netspec diff A B`: alignment by name and by structure, the totals' deltas, the folded text,
--json (netspec.diff/1), ONNX models as either side, and the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from tests.cli_runner import cli

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
RESNET18, RESNET34 = SPECS / "resnet18.net", SPECS / "resnet34.net"

SMALL = """\
network small(classes = 10)

input image: f32[N, 3, 32, 32]

features = image
    -> conv1: conv(64, 3, padding=1) -> relu
    -> conv2: conv(64, 3, padding=1) -> relu -> maxpool(2)

logits = features -> flatten -> fc: linear(classes)

output logits
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def diff_json(a, b, capsys, *extra) -> tuple[int, dict]:
    code, out, err = cli(["diff", a, b, "--json", *extra], capsys)
    return code, json.loads(out)


def test_a_spec_against_itself_is_the_same(capsys):
    code, out, err = cli(["diff", RESNET18, RESNET18], capsys)
    assert code == 0, err
    assert "(no differences)" in out and "0 added, 0 removed, 0 changed" in out
    code, doc = diff_json(RESNET18, RESNET18, capsys)
    assert code == 0
    assert doc["same"] and not doc["added"] and not doc["removed"] and not doc["changed"]
    assert doc["params_delta"] == doc["macs_delta"] == 0


def test_resnet18_against_resnet34(capsys):
    code, doc = diff_json(RESNET18, RESNET34, capsys)
    assert code == 1
    assert doc["schema"] == "netspec.diff/1" and doc["ok"] and not doc["same"]
    assert doc["a"] == str(RESNET18) and doc["b"] == str(RESNET34)
    added = {layer["name"] for layer in doc["added"]}
    # basic-block stages of 2, 2, 2, 2 against 3, 4, 6, 3: the extra blocks, every layer of them
    blocks = {".".join(name.split(".")[:2]) for name in added}
    assert blocks == {"layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3", "layer3.4",
                      "layer3.5", "layer4.2"}
    assert {"layer3.5.conv1", "layer3.5.bn2", "layer4.2.conv2"} <= added
    assert doc["removed"] == [] and doc["changed"] == []
    t18, t34 = netspec.load(RESNET18).check().totals(), netspec.load(RESNET34).check().totals()
    assert doc["params_delta"] == t34.params - t18.params == 10_108_160
    assert doc["buffers_delta"] == t34.buffers - t18.buffers
    assert doc["macs_delta"] == t34.macs - t18.macs
    assert doc["totals"]["a"]["params"] == t18.params and doc["totals"]["b"]["macs"] == t34.macs
    assert sum(layer["params"] for layer in doc["added"]) == doc["params_delta"]
    first = next(layer for layer in doc["added"] if layer["name"] == "layer3.2.conv1")
    assert first == {"name": "layer3.2.conv1", "kind": "conv", "summary": first["summary"],
                     "shape": ["N", 256, 14, 14], "params": 589_824, "buffers": 0,
                     "macs": 115_605_504}


def test_the_text_folds_unchanged_runs_and_whole_blocks(capsys):
    code, out, err = cli(["diff", RESNET18, RESNET34], capsys)
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0] == f"--- {RESNET18} (network resnet18)"
    assert lines[1] == f"+++ {RESNET34} (network resnet34)"
    assert "  \u2026 18 unchanged layers \u2026" in lines
    added = [line for line in lines if line.startswith("+ ")]
    assert len(added) == 8 and added[0].split()[1:4] == ["layer1.2", "basic(64)", "7"]
    assert "56 added, 0 removed, 0 changed, 70 unchanged" in out
    assert "Parameters 11,689,512 -> 21,797,672  (+10,108,160)" in out
    assert "\x1b[" not in out  # plain text when not a terminal
    code, out, _ = cli(["diff", RESNET18, RESNET34, "--context", "0"], capsys)
    assert "  layer1.1.relu" not in out.splitlines()


def test_a_changed_attribute_changes_the_layers_after_it(tmp_path, capsys):
    a = write(tmp_path, "a.net", SMALL)
    b = write(tmp_path, "b.net", SMALL.replace("conv1: conv(64, 3", "conv1: conv(128, 3"))
    code, doc = diff_json(a, b, capsys)
    assert code == 1
    changed = {item["name"]: item["changes"] for item in doc["changed"]}
    assert changed["conv1"]["out_channels"] == [64, 128]
    assert changed["conv1"]["output"] == [["N", 64, 32, 32], ["N", 128, 32, 32]]
    assert changed["features.1"] == {"output": [["N", 64, 32, 32], ["N", 128, 32, 32]]}
    # conv2 keeps its 64 outputs, but takes 128 channels in: its weights and MACs double
    assert set(changed["conv2"]) == {"params", "macs"}
    assert changed["conv2"]["params"] == [36_928, 73_792]
    assert doc["params_delta"] == (3_584 - 1_792) + (73_792 - 36_928)
    assert not doc["added"] and not doc["removed"]
    code, out, _ = cli(["diff", a, b], capsys)
    assert "~ conv1" in out and "out_channels  64 -> 128" in out
    assert "output        [N, 64, 32, 32] -> [N, 128, 32, 32]" in out


def test_a_renamed_layer_is_aligned_by_structure(tmp_path, capsys):
    a = write(tmp_path, "a.net", SMALL)
    b = write(tmp_path, "b.net", SMALL.replace("conv2: conv", "second: conv"))
    code, doc = diff_json(a, b, capsys)
    assert code == 1
    assert doc["changed"] == [{"name": "second", "kind": "conv", "a_name": "conv2", "b_name": "second",
                               "changes": {"name": ["conv2", "second"]}}]
    assert not doc["added"] and not doc["removed"]
    code, out, _ = cli(["diff", a, b], capsys)
    assert "~ conv2 -> second" in out


def test_a_renamed_layer_that_also_changed(tmp_path, capsys):
    a = write(tmp_path, "a.net", SMALL)
    b = write(tmp_path, "b.net", SMALL.replace("conv2: conv(64, 3", "second: conv(32, 3"))
    code, doc = diff_json(a, b, capsys)
    renamed = next(item for item in doc["changed"] if item.get("a_name") == "conv2")
    assert renamed["changes"]["out_channels"] == [64, 32]
    assert not doc["added"] and not doc["removed"]


def test_an_onnx_model_against_its_spec(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    spec = write(tmp_path, "small.net", SMALL.replace("-> flatten ->", "-> flatten -> dropout(0.5) ->"))
    model = tmp_path / "small.onnx"
    onnx.save(netspec.load(spec).check().lowered(seed=0), str(model))
    code, doc = diff_json(spec, model, capsys)
    # the same network, up to what the export drops: dropout is the identity at inference
    assert [layer["kind"] for layer in doc["removed"]] == ["dropout"]
    assert doc["added"] == [] and doc["changed"] == []
    assert doc["params_delta"] == doc["macs_delta"] == 0
    assert code == 1


def test_set_and_input_shape_apply_to_both(capsys):
    code, doc = diff_json(RESNET18, RESNET34, capsys, "--set", "classes=10",
                          "--input-shape", "image=1,3,64,64")
    assert doc["totals"]["a"]["params"] == netspec.load(RESNET18, classes=10).check().totals().params
    assert code == 1


def test_usage_errors(tmp_path, capsys):
    code, _, err = cli(["diff", RESNET18, tmp_path / "missing.net"], capsys)
    assert code == 2 and "missing.net" in err and "no such file" in err
    code, _, err = cli(["diff", RESNET18], capsys)
    assert code == 2
    code, _, err = cli(["diff", RESNET18, RESNET34, "--context", "-1"], capsys)
    assert code == 2 and "--context" in err
    code, _, err = cli(["diff", RESNET18, RESNET34, "--set", "clases=3"], capsys)
    assert code == 2 and "clases" in err


def test_a_spec_with_errors_is_reported_as_check_reports_it(tmp_path, capsys):
    bad = write(tmp_path, "bad.net", "network bad\ninput i: f32[N, 3, 8, 8]\ny = i -> conv(4, 9)\noutput y\n")
    good = write(tmp_path, "good.net", SMALL)
    _, _, check_err = cli(["check", bad], capsys)
    code, out, err = cli(["diff", bad, good], capsys)
    assert code == 1 and out == "" and err == check_err
    code, doc = diff_json(good, bad, capsys)
    assert code == 1 and doc["ok"] is False and doc["diagnostics"][0]["severity"] == "error"


def test_check_does_not_load_the_diff():
    code = ("import sys; from netspec.cli import main; main(['check', 'specs/lenet5.net']); "
            "print('netspec.diff' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip().endswith("False"), result.stderr


def test_removed_blocks_fold_as_added_ones_do(capsys):
    code, out, _ = cli(["diff", RESNET34, RESNET18], capsys)
    removed = [line.split()[1] for line in out.splitlines() if line.startswith("- ")]
    assert code == 1 and removed[:3] == ["layer1.2", "layer2.2", "layer2.3"] and len(removed) == 8
    assert "0 added, 56 removed, 0 changed, 70 unchanged" in out
