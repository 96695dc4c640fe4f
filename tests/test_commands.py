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


# ================================================================ usage messages: names in backticks

ALEXNET = ROOT / "specs" / "alexnet.net"
CIRCULAR_PAD = ROOT / "tests" / "bad" / "unexportable_circular_pad.net"


@pytest.mark.parametrize("argv, expected", [
    (["check", "missing.net"], "cannot read `missing.net`: no such file"),
    (["check", LENET, "--set", "classes"], "--set classes: expected NAME=VALUE (e.g. --set classes=...)"),
    (["check", LENET, "--columns", "foo"], "unknown column `foo` (choose from rf, jump, start, from)"),
    (["check", LENET, "--input", "digits=1,0,32,32"], "`0` is not a size"),
    (["export", LENET, "-o", "m.onnx", "--weights", LENET, "--weights-prefix", "module"],
     "--weights-prefix module: expected OLD=NEW (NEW may be empty, to drop the prefix: --weights-prefix module=)"),
    (["run", "missing.onnx"], "cannot read `missing.onnx`: no such file"),
])
def test_usage_errors_write_names_in_backticks_not_reprs(argv, expected, capsys):
    code, out, err = cli(argv, capsys)
    assert code == 2 and out == ""
    assert expected in err
    assert "'" not in err  # no Python repr quotes


# ================================================================ --input-shape

@pytest.mark.parametrize("dims", ["[2,1,36,36]", "(2, 1, 36, 36)", "2x1x36x36", "2 x 1 x 36 x 36", "2,1,36,36,"])
def test_input_shape_takes_brackets_parentheses_and_x(dims, capsys):
    code, out, err = cli(["check", LENET, "--input-shape", f"digits={dims}"], capsys)
    assert code == 0, err
    assert "Inputs             digits [2, 1, 36, 36]" in out


def test_a_symbolic_batch_may_lead_the_x_form(capsys):
    code, out, err = cli(["check", LENET, "--input-shape", "digits=Nx1x36x36"], capsys)
    assert code == 0, err
    assert "digits [N, 1, 36, 36]" in out


@pytest.mark.parametrize("dims, expected", [
    ("1,x,64,64", "`x` is not a size; sizes are separated by `,` (1,3,64,64) or by `x` between numbers"),
    ("1,1,64x,64", "`64x` is not a size"),
    ("[1,1,64,64)", "unbalanced brackets"),
    ("1,,64,64", "an empty item is not a size"),
    ("1,\u00b2,64,64", "`\u00b2` is not a size"),  # a digit to str.isdigit, not to int()
])
def test_input_shape_reports_what_is_not_a_size(dims, expected, capsys):
    code, out, err = cli(["check", LENET, "--input-shape", f"digits={dims}"], capsys)
    assert code == 2 and out == ""
    assert f"--input-shape digits={dims}: {expected}" in err
    assert "''" not in err


def test_messages_name_the_option_typed(capsys):
    code, _, err = cli(["check", LENET, "--input", "digits=1,x,32,32"], capsys)
    assert code == 2 and err.startswith("netspec: error: --input digits=1,x,32,32: `x`")
    code, _, err = cli(["check", LENET, "--input", "image=1,1,32,32"], capsys)
    assert code == 2 and "--input image: the network has no input `image`" in err


@pytest.mark.parametrize("command", ["check", "export", "graph"])
def test_a_data_file_given_where_input_sets_a_shape(command, tmp_path, capsys):
    out_file = {"check": [], "export": ["-o", tmp_path / "m.onnx"], "graph": ["-o", tmp_path / "m.dot"]}
    code, out, err = cli([command, LENET, "--input", "x.npy", *out_file[command]], capsys)
    assert code == 2 and out == ""
    assert (f"--input x.npy: `netspec {command}` takes no data file; here `--input` sets an input's "
            "shape, as --input-shape does (NAME=DIMS") in err
    assert "NAME=VALUE" not in err and "'x.npy'" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_data_file_given_to_input_shape_points_to_input(capsys):
    code, _, err = cli(["run", LENET, "--input-shape", "x.npy"], capsys)
    assert code == 2
    assert "--input-shape x.npy: expected NAME=DIMS (e.g. --input-shape image=1,3,64,64); " \
           "a data file is given with --input x.npy" in err


# ================================================================ one mistake, one diagnostic

def test_export_reports_an_unexportable_layer_once(tmp_path, capsys):
    code, out, err = cli(["export", ALEXNET, "--input-shape", "image=1,3,64,64", "-o", tmp_path / "a.onnx"], capsys)
    assert code == 1
    assert err.count("adaptive pooling from 1x1 to 6x6") == 1
    assert "warning" not in err and err.rstrip().endswith("1 error")
    assert not (tmp_path / "a.onnx").exists()


@pytest.mark.parametrize("command", ["run", "features"])
def test_run_and_features_report_an_unexportable_layer_once(command, tmp_path, capsys):
    extra = ["--layer", "features.0", "-o", tmp_path / "f.npz"] if command == "features" else []
    code, _, err = cli([command, ALEXNET, "--input-shape", "image=1,3,64,64", *extra], capsys)
    assert code == 1
    assert err.count("adaptive pooling from 1x1 to 6x6") == 1 and "warning" not in err


@pytest.mark.parametrize("command", ["check", "graph"])
def test_check_and_graph_keep_the_warning(command, tmp_path, capsys):
    extra = ["-o", tmp_path / "a.dot"] if command == "graph" else []
    code, _, err = cli([command, ALEXNET, "--input-shape", "image=1,3,64,64", *extra], capsys)
    assert code == 0
    assert "warning: adaptive_avgpool: `netspec export` refuses this layer at any opset" in err


def test_the_warning_is_moot_at_an_opset_that_expresses_the_layer(tmp_path, capsys):
    code, out, err = cli(["export", CIRCULAR_PAD, "-o", tmp_path / "p.onnx", "--opset", "19"], capsys)
    assert code == 0 and err == ""
    assert "opset 19" in out
    code, _, err = cli(["export", CIRCULAR_PAD, "-o", tmp_path / "q.onnx"], capsys)
    assert code == 1 and "warning" not in err
    assert "error: pad: circular padding (ONNX Pad mode 'wrap') needs opset 19" in err


def test_the_warning_the_commands_drop_is_infers():
    # the commands drop infer.py's warning by its rule, UNEXPORTABLE_RULE
    from netspec.infer import UNEXPORTABLE_RULE

    net = netspec.load(CIRCULAR_PAD)
    [warning] = net.diagnostics
    assert warning.severity == "warning" and warning.rule == UNEXPORTABLE_RULE


# ================================================================ run -o, --seed, an .onnx as it is

@pytest.mark.parametrize("name", ["out.txt", "out", "out.npy"])
def test_run_refuses_an_output_that_is_not_npz(name, tmp_path, capsys):
    code, out, err = cli(["run", LENET, "-o", tmp_path / name], capsys)
    assert code == 2 and out == ""
    assert "the outputs are saved as a .npz" in err and "write e.g. -o out.npz" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["export", LENET, "-o", "m.onnx"], ["run", LENET],
                                  ["features", LENET, "--layer", "features.0", "-o", "f.npz"]])
def test_a_negative_seed_is_a_usage_error(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli([*argv, "--seed", "-1"], capsys)
    assert code == 2 and out == ""
    assert "--seed -1: a seed is 0 or more" in err and "internal error" not in err


@pytest.mark.parametrize("option", [["--opset", "13"], ["--set", "classes=3"], ["--weights", LENET],
                                    ["--input-shape", "digits=1,1,32,32"]])
def test_an_onnx_model_refuses_the_options_of_a_spec(option, tmp_path, capsys):
    model = tmp_path / "l.onnx"
    assert cli(["export", LENET, "-o", model], capsys)[0] == 0
    code, out, err = cli(["run", model, *option], capsys)
    assert code == 2 and out == ""
    assert f"{option[0]} applies to a spec; `{model}` is an ONNX model, run as it is" in err


# ================================================================ features' figures are run's

def test_features_figures_are_computed_wide(tmp_path, capsys):
    spec = tmp_path / "b.net"
    spec.write_text("network b\ninput x: f32[N, 64, 64, 64]\na = x -> relu -> cast(bf16) -> identity\noutput a\n")
    code, out, err = cli(["features", spec, "--layer", "a.2", "-o", tmp_path / "f.npz"], capsys)
    assert code == 0, err
    features_line = out.splitlines()[0]
    code, out, err = cli(["run", spec], capsys)
    assert code == 0, err
    run_line = out.splitlines()[0]
    # the same tensor: run's `a` is the network's output, features' `a.2` the same layer
    assert features_line.split("bfloat16")[1] == run_line.split("bfloat16")[1]
    mean = float(run_line.rsplit("mean ", 1)[1])
    assert 0.35 < mean < 0.45  # relu of a standard normal: 1/sqrt(2 pi) = 0.399 (bf16 sums gave 0.004)


# ================================================================ help and README

def _subparsers():
    import argparse

    from netspec.commands import build_parser

    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_each_command_says_what_its_seed_seeds():
    seed = {name: action.help for name, parser in _subparsers().items()
            for action in parser._actions if "--seed" in action.option_strings}
    assert set(seed) == {"export", "run", "features", "profile"}
    assert seed["export"] == "seed of the weight initialisation (default 0; ignored with --weights)"
    for command in ("run", "features"):
        assert "and of the random inputs (without --input)" in seed[command], command
    assert "and of the random inputs it runs on" in seed["profile"]  # it takes no --input


def _readme_synopses() -> dict[str, str]:
    """Each command's synopsis in the README: the code block lines from `netspec COMMAND` (not
    a `$ ` example) to the next such line, indented continuation lines included."""
    import re

    blocks, block = [], None
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```") and block is None:  # a block opens
            block = []
        elif line.startswith("```"):  # it closes
            blocks.append(block)
            block = None
        elif block is not None:
            block.append(line)
    synopses: dict[str, str] = {}
    for block in blocks:
        current = None
        for line in block:
            start = re.match(r"netspec (\w+) ", line)
            if start:
                current = start.group(1)
                assert current not in synopses, f"two synopses of `netspec {current}`"
                synopses[current] = line
            elif current and line.startswith(" "):
                synopses[current] += " " + line.strip()
            else:
                current = None
    return synopses


def test_every_readme_synopsis_has_the_options_of_its_parser():
    import re

    synopses = _readme_synopses()
    parsers = _subparsers()
    assert set(synopses) == set(parsers)
    for command, parser in parsers.items():
        written = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-o)(?![\w-])", synopses[command]))
        actions = [a for a in parser._actions if a.option_strings and "--help" not in a.option_strings]
        missing = [a.option_strings[0] for a in actions if not written & set(a.option_strings)]
        known = {s for a in actions for s in a.option_strings}
        assert not missing, f"the README's `netspec {command}` synopsis lacks {missing}"
        assert written <= known, f"the README's `netspec {command}` synopsis has {written - known}"
        positional = [a.metavar for a in parser._actions if not a.option_strings]
        if positional:  # `netspec lsp` takes none
            assert synopses[command].split()[2] == positional[0], command


def test_the_readme_says_what_an_internal_error_prints(capsys, monkeypatch):
    from netspec.commands import check

    def broken(args):
        raise RuntimeError("boom")
    monkeypatch.setattr(check, "run", broken)  # each main() registers the commands anew
    monkeypatch.delenv("NETSPEC_DEBUG", raising=False)
    code, out, err = cli(["check", LENET], capsys)
    assert code == 3 and out == ""
    assert err.splitlines() == [
        "netspec: internal error: RuntimeError: boom",
        "this is a bug in netspec; rerun with NETSPEC_DEBUG=1 for details and report it"]
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert ("Exit 3 is a bug in netspec, said without a traceback: a line naming the error, and a line "
            "asking to rerun with `NETSPEC_DEBUG=1`") in readme
