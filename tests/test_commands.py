"""The command line's shape (one module per subcommand, shared options, one meaning per option
name) and the Python API's entry points: what a new user hits first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from tests.cli_runner import cli

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"


def test_a_bare_netspec_lists_the_commands(capsys):
    code, out, err = cli([], capsys)
    assert code == 2 and out == ""
    for command in ("check", "export", "run", "graph", "features"):
        assert f"    {command} " in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["check", "export", "graph"])
def test_input_shape_is_the_shape_option_everywhere(command, tmp_path, capsys):
    out_file = {"check": [], "export": ["-o", tmp_path / "m.onnx"], "graph": ["-o", tmp_path / "m.dot"]}
    code, out, err = cli([command, LENET, "--input-shape", "digits=2,1,36,36", *out_file[command]], capsys)
    assert code == 0, err
    if command == "check":
        assert "[2, 16, 6, 6]" in out  # (36 - 4) / 2 = 16, (16 - 4) / 2 = 6


def test_input_still_sets_a_shape_where_a_command_takes_no_data(capsys):
    code, out, err = cli(["check", LENET, "--input", "digits=2,1,36,36"], capsys)
    assert code == 0, err
    assert "[2, 16, 6, 6]" in out


@pytest.mark.parametrize("command", ["run", "features"])
def test_a_shape_given_to_input_names_the_option_meant(command, tmp_path, capsys):
    extra = ["--layer", "features.0", "-o", tmp_path / "f.png"] if command == "features" else []
    code, out, err = cli([command, LENET, "--input", "digits=1,1,32,32", *extra], capsys)
    assert code == 2 and out == ""
    assert "--input-shape digits=1,1,32,32" in err
    assert "no such file" not in err


def test_unknown_set_name_in_run_says_set(capsys):
    code, _, err = cli(["run", LENET, "--set", "clases=3"], capsys)
    assert code == 2 and "--set clases: the network has no parameter `clases`" in err


def test_unknown_input_shape_name_says_input_shape(capsys):
    code, _, err = cli(["run", LENET, "--input-shape", "image=1,1,32,32"], capsys)
    assert code == 2 and "--input-shape image: the network has no input `image`" in err
    assert "(its inputs: digits)" in err


@pytest.mark.parametrize("name", ["model.txt", "model", "model.onnx.tmp"])
def test_export_refuses_a_file_that_is_not_onnx(name, tmp_path, capsys):
    code, out, err = cli(["export", LENET, "-o", tmp_path / name], capsys)
    assert code == 2 and out == ""
    assert "ending in .onnx" in err
    assert not (tmp_path / name).exists()


def test_dtype_in_capitals_suggests_the_lowercase_one(tmp_path, capsys):
    spec = tmp_path / "t.net"
    spec.write_text("network t\ninput x: F32[N, 3, 8, 8]\ny = x -> relu\noutput y\n")
    code, _, err = cli(["check", spec], capsys)
    assert code == 1
    assert "hint: did you mean `f32`?" in err


def test_no_module_imports_private_helpers_of_the_cli():
    # the subcommands share netspec.commands.options; nothing reaches into netspec.cli
    for path in (ROOT / "netspec").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from netspec.cli import" not in text, path


# ================================================================ the Python API

def test_load_of_a_missing_file_raises_at_once():
    with pytest.raises(FileNotFoundError, match="missing.net"):
        netspec.load("missing.net")
    with pytest.raises(IsADirectoryError):
        netspec.load(ROOT / "specs")


def test_load_names_a_wrong_keyword_argument_not_a_flag():
    with pytest.raises(TypeError) as info:
        netspec.load(LENET, clases=3)
    message = str(info.value)
    assert "keyword argument `clases`" in message and "did you mean `classes`?" in message
    assert "--set" not in message


def test_load_names_a_wrong_input_shape():
    with pytest.raises(TypeError, match=r"input_shapes\['image'\].*no input `image`") as info:
        netspec.load(LENET, input_shapes={"image": [1, 1, 32, 32]})
    assert "--input" not in str(info.value)
    with pytest.raises(TypeError, match="3 sizes given, but the input is declared with 4"):
        netspec.load(LENET, input_shapes={"digits": [1, 32, 32]})


def test_dir_lists_the_public_names():
    names = dir(netspec)
    for name in ("load", "Network", "NetspecError", "__version__"):
        assert name in names


def test_a_missing_parameter_hint_is_neutral(tmp_path):
    spec = tmp_path / "t.net"
    spec.write_text("network t(width)\ninput x: f32[N, 3, 8, 8]\ny = x -> conv(width, 3)\noutput y\n")
    net = netspec.load(spec)
    [diagnostic] = net.diagnostics
    assert "a value when the spec is compiled: `width=...`" in diagnostic.hint
    assert "--set" not in diagnostic.hint  # the elaborator knows no command-line flag


def test_importing_the_cli_imports_nothing_heavy():
    probe = ("import json, sys\nimport netspec.cli\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    import json

    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not modules & {"numpy", "onnx", "onnxruntime", "PIL", "torch", "networkx", "rich", "pydantic", "lark",
                           "statistics", "tempfile", "difflib"}


def test_a_bad_set_value_says_it_was_given_when_compiling(capsys):
    code, _, err = cli(["check", ROOT / "specs" / "resnet18.net", "--set", "classes=10.5"], capsys)
    assert code == 1
    assert "`out_features` must be a positive integer, got 10.5" in err
    assert "note: `classes` = 10.5 is given when the spec is compiled (`classes=...`)" in err
