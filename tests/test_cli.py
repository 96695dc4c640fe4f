"""The `netspec` command line: exit codes, the table, --json, --set, --input, --depth, packaging.

Expected figures are computed here by hand (the output-size formula, weight shapes), not by
asking netspec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import netspec
from cli_runner import cli
from netspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
LENET = str(SPECS / "lenet5.net")
ALEXNET = str(SPECS / "alexnet.net")


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse (usage errors, --help, --version) exits
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_json(argv: list[str], capsys) -> tuple[int, dict]:
    code, out, err = run(["check", "--json", *argv], capsys)
    return code, json.loads(out)


def write(tmp_path: Path, text: str, name: str = "t.net") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def out_size(size: int, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def conv_params(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cout * cin * k * k + (cout if bias else 0)


def linear_params(fin: int, fout: int) -> int:
    return fout * fin + fout


# LeNet-5 by hand: 32 -> conv5 -> 28 -> pool2 -> 14 -> conv5 -> 10 -> pool2 -> 5; 16*5*5 = 400
LENET_PARAMS = (conv_params(1, 6, 5) + conv_params(6, 16, 5) + linear_params(400, 120)
                + linear_params(120, 84) + linear_params(84, 10))
LENET_MACS = 28 * 28 * 6 * 1 * 25 + 10 * 10 * 16 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10


def alexnet_params(classes: int) -> int:
    return (conv_params(3, 64, 11) + conv_params(64, 192, 5) + conv_params(192, 384, 3)
            + conv_params(384, 256, 3) + conv_params(256, 256, 3)
            + linear_params(256 * 6 * 6, 4096) + linear_params(4096, 4096)
            + linear_params(4096, classes))


BLOCK_SPEC = """\
    network blk
    input x: f32[N, 3, 8, 8]
    block unit(t, c) {
        y = t -> conv(c, 3, padding=1) -> relu
        return y
    }
    stem = x -> u1: unit(4) -> u2: unit(6)
    output stem
"""


# ================================================================ exit 0: clean runs and the table


def test_hand_computed_constants():
    assert LENET_PARAMS == 61_706          # the figure in specs/lenet5.net's comment
    assert alexnet_params(1000) == 61_100_840  # torchvision's AlexNet


def test_check_lenet_table(capsys):
    code, out, err = run(["check", LENET], capsys)
    assert code == 0
    assert err == ""
    assert "lenet5" in out
    for name in ["digits", "features.0", "features.5", "logits.0", "logits.5"]:
        assert name in out
    assert "[N, 1, 32, 32]" in out
    assert f"[N, 6, {out_size(32, 5)}, {out_size(32, 5)}]" in out      # [N, 6, 28, 28]
    assert "[N, 16, 5, 5]" in out
    assert "[N, 400]" in out and "[N, 10]" in out
    assert f"{LENET_PARAMS:,}" in out
    assert f"{LENET_MACS:,}" in out
    for total in ["Parameters", "Buffers", "MACs", "Parameter memory", "Activation memory",
                  "Inputs", "Outputs"]:
        assert total in out


def test_check_alexnet_table(capsys):
    code, out, err = run(["check", ALEXNET], capsys)
    assert code == 0
    s1 = out_size(224, 11, stride=4, pad=2)             # 55
    p1 = out_size(s1, 3, stride=2)                      # 27
    p2 = out_size(p1, 3, stride=2)                      # 13
    p3 = out_size(p2, 3, stride=2)                      # 6
    assert (s1, p1, p2, p3) == (55, 27, 13, 6)
    assert "[N, 64, 55, 55]" in out
    assert f"[N, 192, {p1}, {p1}]" in out
    assert f"[N, 256, {p3}, {p3}]" in out
    assert "[N, 9216]" in out and "[N, 1000]" in out
    assert "features.12" in out and "classifier.6" in out
    assert f"{alexnet_params(1000):,} trainable" in out
    # the first conv's MACs: 55*55*64 outputs, each 3*11*11 multiply-accumulates
    assert f"{55 * 55 * 64 * 3 * 11 * 11:,}" in out


def test_warnings_still_exit_0(tmp_path, capsys):
    spec = write(tmp_path, """\
        network w
        input x: f32[N, 3, 8, 8]
        input unused: f32[N, 3]
        y = x -> relu
        output y
    """)
    code, out, err = run(["check", spec], capsys)
    assert code == 0
    assert "warning:" in err and "`unused`" in err
    assert f"{spec}:3:1" in err
    assert "Parameters" in out


# ================================================================ exit 1: errors in the spec


def test_spec_error_exits_1_with_located_message(tmp_path, capsys):
    spec = write(tmp_path, """\
        network e
        input x: f32[N, 3, 8, 8]
        y = x -> conv(4, kernal=3)
        output y
    """)
    code, out, err = run(["check", spec], capsys)
    assert code == 1
    assert out == ""
    assert f"{spec}:3:18" in err
    assert "y = x -> conv(4, kernal=3)" in err
    assert "^^^^^^^^" in err
    assert "did you mean `kernel`?" in err
    assert "1 error" in err


def test_syntax_error_exits_1(tmp_path, capsys):
    spec = write(tmp_path, "network e\ninput x: f32[N, 3]\ny = x -> linear(4 5)\noutput y\n")
    code, out, err = run(["check", spec], capsys)
    assert code == 1
    assert f"{spec}:3:18" in err
    assert "internal error" not in err


def test_several_errors_all_printed(tmp_path, capsys):
    spec = write(tmp_path, """\
        network e
        input x: f32[N, 3, 8, 8]
        a = x -> cnov(4, 3)
        b = x -> conv(4, 9)
        output a, b, c
    """)
    code, out, err = run(["check", spec], capsys)
    assert code == 1
    assert f"{spec}:3:10" in err and f"{spec}:4:10" in err and f"{spec}:5:14" in err
    assert "3 errors" in err


# ================================================================ exit 2: bad usage


@pytest.mark.parametrize("argv, phrase", [
    ([], "COMMAND"),
    (["frobnicate", LENET], "invalid choice"),
    (["check"], "SPEC"),
    (["check", LENET, "--set", "clases=10"], "clases"),
    (["check", LENET, "--set", "classes"], "NAME=VALUE"),
    (["check", LENET, "--input", "image=1,1,32,32"], "image"),
    (["check", LENET, "--input", "digits=1,a-b,32,32"], "`a-b` is not a size"),
    (["check", LENET, "--input", "digits=1,0,32,32"], "`0` is not a size"),
    (["check", LENET, "--input", "digits=1,-1,32,32"], "`-1` is not a size"),
    (["check", LENET, "--depth", "-1"], "--depth"),
    (["check", LENET, "--depth", "two"], "--depth"),
    (["check", "no/such/file.net"], "no such file"),
    (["check", str(SPECS)], "directory"),
    (["check", LENET, "--bogus"], "--bogus"),
])
def test_bad_usage_exits_2(argv, phrase, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert phrase in err
    assert "Traceback" not in err


def test_unknown_set_name_suggests_the_parameter(capsys):
    code, out, err = run(["check", LENET, "--set", "clases=10"], capsys)
    assert code == 2
    assert "classes" in err and "did you mean" in err


def test_unknown_input_name_lists_the_inputs(capsys):
    code, out, err = run(["check", LENET, "--input", "image=1,1,32,32"], capsys)
    assert code == 2
    assert "digits" in err


# ================================================================ --json


LAYER_KEYS = {"name", "kind", "summary", "depth", "output", "params", "buffers", "macs",
              "inputs", "attributes", "tensors"}


def test_json_schema(capsys):
    code, doc = run_json([LENET], capsys)
    assert code == 0
    assert doc["schema"] == "netspec.check/1"
    assert doc["file"] == LENET
    assert doc["ok"] is True
    assert doc["network"] == "lenet5"
    assert doc["parameters"] == {"classes": 10}
    assert doc["inputs"] == [{"name": "digits", "shape": ["N", 1, 32, 32], "layout": "NCHW",
                              "dtype": "f32"}]
    (output,) = doc["outputs"]
    assert output["name"] == "logits"
    assert output["shape"] == ["N", 10] and output["dtype"] == "f32"
    assert doc["diagnostics"] == []

    layers = doc["layers"]
    assert layers[0]["name"] == "digits" and layers[0]["kind"] == "input"
    for layer in layers[1:]:
        assert LAYER_KEYS <= set(layer), layer
        assert set(layer["output"]) == {"shape", "layout", "dtype"}
        assert isinstance(layer["depth"], int)
    names = [layer["name"] for layer in layers]
    assert names == ["digits"] + [f"features.{i}" for i in range(6)] + [f"logits.{i}" for i in range(6)]

    conv1 = layers[1]
    assert conv1["kind"] == "conv"
    assert conv1["output"] == {"shape": ["N", 6, 28, 28], "layout": "NCHW", "dtype": "f32"}
    assert conv1["params"] == conv_params(1, 6, 5)
    assert conv1["macs"] == 28 * 28 * 6 * 25
    assert conv1["inputs"] == ["digits"]
    assert conv1["attributes"]["out_channels"] == 6 and conv1["attributes"]["kernel"] == 5
    assert conv1["tensors"] == {"features.0.weight": {"shape": [6, 1, 5, 5], "trainable": True},
                                "features.0.bias": {"shape": [6], "trainable": True}}
    flat = layers[7]
    assert flat["kind"] == "flatten" and flat["output"]["shape"] == ["N", 400]
    assert flat["output"]["layout"] == "NC"

    totals = doc["totals"]
    assert set(totals) == {"params", "buffers", "macs", "param_bytes", "activation_bytes", "layers",
                           "uncounted_kinds"}
    assert totals["params"] == LENET_PARAMS
    assert totals["buffers"] == 0
    assert totals["macs"] == LENET_MACS
    assert totals["param_bytes"] == LENET_PARAMS * 4
    assert totals["layers"] == 12
    # every layer's output for one sample, 4 bytes each
    sample = (6 * 28 * 28) * 2 + 6 * 14 * 14 + (16 * 10 * 10) * 2 + 400 * 2 + 120 * 2 + 84 * 2 + 10
    assert totals["activation_bytes"] == sample * 4
    assert totals["uncounted_kinds"] == ["relu", "maxpool"]  # their arithmetic counts 0 MACs


def test_the_totals_say_which_kinds_count_no_macs(tmp_path, capsys):
    """Activations, norms, pools and merges count 0 MACs; the table names those the network has,
    and a network with none (only a linear and a flatten) has no such line."""
    spec = write(tmp_path, "input x: f32[N, 3, 8, 8]\ny = x -> conv(4, 3) -> batchnorm -> relu\n"
                           "z = y + y -> global_avgpool -> flatten -> linear(2)\noutput z\n")
    code, out, _ = cli(["check", spec], capsys)
    assert code == 0
    assert "Not counted        batchnorm, relu, add, global_avgpool (0 MACs by convention)" in out.splitlines()
    plain = write(tmp_path, "input x: f32[N, 8]\ny = x -> linear(2) -> flatten\noutput y\n", name="plain.net")
    code, out, _ = cli(["check", plain], capsys)
    assert code == 0 and "Not counted" not in out


def test_json_with_errors(tmp_path, capsys):
    spec = write(tmp_path, """\
        network e
        input x: f32[N, 3, 8, 8]
        y = x -> conv(4, 9)
        output y
    """)
    code, out, err = run(["check", "--json", spec], capsys)
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "netspec.check/1"
    assert doc["ok"] is False
    (d,) = doc["diagnostics"]
    assert d["severity"] == "error"
    assert (d["line"], d["column"]) == (3, 10)
    assert d["file"] == spec
    assert d["layer"] == "y"
    # floor((8 - 1*(9-1) - 1) / 1) + 1 = 0
    assert "output size would be 0" in d["message"]


def test_json_with_a_warning_is_ok(tmp_path, capsys):
    spec = write(tmp_path, """\
        network w
        input x: f32[N, 3, 8, 8]
        input unused: f32[N, 3]
        y = x -> relu
        output y
    """)
    code, doc = run_json([spec], capsys)
    assert code == 0
    assert doc["ok"] is True
    (d,) = doc["diagnostics"]
    assert d["severity"] == "warning" and d["line"] == 3


# ================================================================ --set and --input


def test_set_classes_changes_last_linear_and_param_count(capsys):
    code, doc = run_json([ALEXNET, "--set", "classes=10"], capsys)
    assert code == 0
    assert doc["parameters"]["classes"] == 10
    last = doc["layers"][-1]
    assert last["name"] == "classifier.6" and last["kind"] == "linear"
    assert last["output"]["shape"] == ["N", 10]
    assert last["params"] == linear_params(4096, 10)
    assert doc["totals"]["params"] == alexnet_params(10)
    assert doc["totals"]["params"] == alexnet_params(1000) - 4096 * 990 - 990


def test_set_in_text_mode(capsys):
    code, out, err = run(["check", LENET, "--set", "classes=3"], capsys)
    assert code == 0
    assert "[N, 3]" in out
    assert f"{LENET_PARAMS - linear_params(84, 10) + linear_params(84, 3):,}" in out


def test_set_a_bad_value_is_a_spec_error(capsys):
    code, out, err = run(["check", LENET, "--set", "classes=0"], capsys)
    assert code == 1
    assert "out_features" in err


def test_input_override_alexnet_64(capsys):
    code, doc = run_json([ALEXNET, "--input", "image=1,3,64,64"], capsys)
    assert code == 0
    assert doc["inputs"][0]["shape"] == [1, 3, 64, 64]
    by_name = {layer["name"]: layer for layer in doc["layers"]}
    s1 = out_size(64, 11, stride=4, pad=2)      # floor((64 + 4 - 10 - 1) / 4) + 1 = 15
    p1 = out_size(s1, 3, stride=2)              # 7
    p2 = out_size(p1, 3, stride=2)              # 3
    p3 = out_size(p2, 3, stride=2)              # 1
    assert (s1, p1, p2, p3) == (15, 7, 3, 1)
    assert by_name["features.0"]["output"]["shape"] == [1, 64, s1, s1]
    assert by_name["features.12"]["output"]["shape"] == [1, 256, p3, p3]
    assert by_name["avgpool"]["output"]["shape"] == [1, 256, 6, 6]   # adaptive: always 6x6
    assert doc["outputs"][0]["shape"] == [1, 1000]
    # the parameters do not depend on the input size
    assert doc["totals"]["params"] == alexnet_params(1000)


def test_input_override_in_text_mode_with_x_separator(capsys):
    code, out, err = run(["check", LENET, "--input", "digits=8x1x32x32"], capsys)
    assert code == 0
    assert "[8, 1, 32, 32]" in out and "[8, 10]" in out


def test_input_too_small_is_a_spec_error(capsys):
    code, out, err = run(["check", LENET, "--input", "digits=1,1,8,8"], capsys)
    assert code == 1
    # 8 -> conv5 -> 4 -> pool2 -> 2 -> conv5: floor((2 - 4 - 1) / 1) + 1 < 1
    assert "output size" in err


# ================================================================ --depth


def test_depth_0_folds_block_instances(tmp_path, capsys):
    spec = write(tmp_path, BLOCK_SPEC)
    u1 = conv_params(3, 4, 3)       # 112
    u2 = conv_params(4, 6, 3)       # 222
    code, doc = run_json([spec, "--depth", "0"], capsys)
    assert code == 0
    rows = {layer["name"]: layer for layer in doc["layers"]}
    assert list(rows) == ["x", "u1", "u2"]
    assert rows["u1"]["kind"] == "block" and rows["u1"]["depth"] == 0
    assert rows["u1"]["params"] == u1 and rows["u2"]["params"] == u2
    assert rows["u1"]["macs"] == 8 * 8 * 4 * 3 * 9
    assert rows["u2"]["output"]["shape"] == ["N", 6, 8, 8]
    assert doc["totals"]["params"] == u1 + u2

    code, out, err = run(["check", spec, "--depth", "0"], capsys)
    assert code == 0
    assert "u1" in out and "unit(4)" in out and f"{u1:,}" in out
    assert "u1.y.0" not in out


def test_without_depth_every_layer_of_a_block_is_listed(tmp_path, capsys):
    spec = write(tmp_path, BLOCK_SPEC)
    code, doc = run_json([spec], capsys)
    assert code == 0
    names = [layer["name"] for layer in doc["layers"]]
    assert names == ["x", "u1.y.0", "u1.y.1", "u2.y.0", "u2.y.1"]
    assert [layer["depth"] for layer in doc["layers"]] == [0, 1, 1, 1, 1]
    assert doc["layers"][1]["params"] == conv_params(3, 4, 3)
    code, out, err = run(["check", spec], capsys)
    assert "u1.y.0" in out and "unit(4)" in out


def test_depth_larger_than_nesting_changes_nothing(tmp_path, capsys):
    spec = write(tmp_path, BLOCK_SPEC)
    _, full = run_json([spec], capsys)
    _, deep = run_json([spec, "--depth", "5"], capsys)
    assert full["layers"] == deep["layers"]


# ================================================================ --help and --version


def test_check_help_mentions_counting_conventions(capsys):
    code, out, err = run(["check", "--help"], capsys)
    assert code == 0
    assert "MACs" in out
    assert "multiply-accumulate" in out
    assert "--json" in out and "--set" in out and "--input" in out and "--depth" in out
    assert "exit codes" in out


def test_version(capsys):
    code, out, err = run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"netspec {netspec.__version__}"


# ================================================================ as a real process


def _process(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NETSPEC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=60)


def test_process_clean_run():
    proc = _process("check", "specs/lenet5.net")
    assert proc.returncode == 0
    assert "[N, 6, 28, 28]" in proc.stdout
    assert proc.stderr == ""


def test_process_syntax_error_has_no_traceback(tmp_path):
    (tmp_path / "bad.net").write_text("network b\ninput x: f32[N, 3]\ny = x -> linear(4 5)\n"
                                      "output y\n", encoding="utf-8")
    proc = _process("check", "bad.net", cwd=tmp_path)
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert proc.returncode == 1
    assert "bad.net:3:18" in proc.stderr


def test_process_usage_error_has_no_traceback():
    proc = _process("check", "does-not-exist.net")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "does-not-exist.net" in proc.stderr


# ================================================================ packaging

# Builds a real wheel with pip (hatchling backend): this takes several seconds (~10-20 s when
# pip has to set up the isolated build environment).
def test_wheel_contains_the_grammar(tmp_path):
    dist = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(dist),
                           "-q", "--disable-pip-version-check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = dist.glob("netspec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "netspec/grammar/netspec.lark" in names
        grammar = archive.read("netspec/grammar/netspec.lark").decode()
        archive.extractall(tmp_path / "site")
    assert grammar == (ROOT / "grammar" / "netspec.lark").read_text(encoding="utf-8")
    # the unpacked wheel (no source tree around it) finds its grammar and checks a spec
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-c",
                           "import netspec, netspec.parser as p, sys;"
                           "print(netspec.__file__); print(p.grammar_path());"
                           "from netspec.cli import main; sys.exit(main(['check', sys.argv[1]]))",
                           str(SPECS / "lenet5.net")],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    module_file, grammar_file = proc.stdout.splitlines()[:2]
    assert module_file.startswith(str(tmp_path / "site"))
    assert grammar_file == str(tmp_path / "site" / "netspec" / "grammar" / "netspec.lark")
    assert "[N, 6, 28, 28]" in proc.stdout


def test_flops_are_twice_the_macs_in_the_table_the_totals_and_the_json(capsys):
    code, out, _ = cli(["check", LENET, "--flops"], capsys)
    assert code == 0
    header = out.splitlines()[2].split()
    assert header[header.index("MACs") + 1] == "FLOPs"
    row = next(line for line in out.splitlines() if line.startswith("features.0 "))
    assert "117,600" in row and "235,200" in row
    assert "FLOPs              833,040 per sample (833 k: 2 x MACs)" in out
    code, out, _ = cli(["check", LENET, "--flops", "--json"], capsys)
    doc = json.loads(out)
    assert doc["totals"]["flops"] == 2 * doc["totals"]["macs"] == 833_040
    assert all(layer["flops"] == 2 * layer["macs"] for layer in doc["layers"])
    code, out, _ = cli(["check", LENET, "--json"], capsys)
    assert "flops" not in json.loads(out)["totals"]  # only when asked: the schema's figures stay
    code, out, _ = cli(["check", LENET], capsys)
    assert "FLOPs" not in out
