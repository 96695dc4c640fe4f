"""The README stays true: its quoted output is what the commands print, and every layer kind
and every spec it mentions exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from netspec.layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quoted_output(command: str) -> str:
    """The text of the README's code block that starts with `$ <command>`, without that line."""
    match = re.search(r"```\n\$ " + re.escape(command) + r"\n(.*?)```", README, re.S)
    assert match, f"the README quotes no output for `{command}`"
    return match.group(1)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=ROOT, capture_output=True,
                          text=True, env={"PATH": "", "NO_COLOR": "1", "COLUMNS": "200"})


def test_quick_start_output_is_real():
    result = run("check", "specs/alexnet.net")
    assert result.returncode == 0, result.stderr
    expected = [line.rstrip() for line in quoted_output("netspec check specs/alexnet.net").splitlines()]
    actual = [line.rstrip() for line in result.stdout.splitlines()]
    assert actual == expected


def test_every_layer_is_in_the_reference():
    table = README[README.index("### Layers"):README.index("### Shape rules")]
    documented = set(re.findall(r"^\| `(\w+)`", table, re.M))
    assert documented == set(LAYERS), (set(LAYERS) - documented, documented - set(LAYERS))


def test_install_and_test_commands():
    assert "pip install . && netspec check specs/alexnet.net" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "pip install -e '.[test]' && python -m pytest"
    assert command in README and command in ci


def test_python_api_example_runs(tmp_path, monkeypatch):
    block = re.search(r"## Python API\n\n```python\n(.*?)```", README, re.S)
    assert block, "the README has no Python API example"
    code = block.group(1).replace('"specs/', f'"{ROOT}/specs/')
    monkeypatch.chdir(tmp_path)
    printed: list[str] = []
    exec(compile(code, "README.md", "exec"), {"print": lambda *a: printed.append(" ".join(map(str, a)))})
    assert "11181642" in printed  # the comment beside net.totals().params
    assert (tmp_path / "resnet18.onnx").stat().st_size > 40_000_000


def test_explain_output_is_real():
    result = run("check", "specs/alexnet.net", "--explain", "--columns", "rf,jump,start")
    assert result.returncode == 0, result.stderr
    quoted = quoted_output("netspec check specs/alexnet.net --explain --columns rf,jump,start")
    expected = [line.rstrip() for line in quoted.splitlines() if line != "..."]
    actual = [line.rstrip() for line in result.stdout.splitlines()]
    assert actual[:len(expected)] == expected


def test_every_quoted_check_of_an_example_is_real():
    """Each `$ netspec check examples/...` block is what netspec prints, and exits as it says."""
    commands = re.findall(r"```\n\$ (netspec check examples/\S+)\n", README)
    assert len(commands) >= 3, commands
    for command in commands:
        result = run(*command.split()[1:])
        expected = [line.rstrip() for line in quoted_output(command).splitlines()]
        actual = [line.rstrip() for line in (result.stdout + result.stderr).splitlines()]
        assert actual == expected, command
        assert result.returncode == (1 if "error" in expected[-1] else 0)


def test_the_files_the_readme_uses_are_shipped():
    """Every examples/ path the README names exists, so every command runs as written."""
    paths = set(re.findall(r"examples/[\w.-]+", README))
    assert paths >= {"examples/broken.net", "examples/shape.net", "examples/image.png"}
    for path in paths:
        assert (ROOT / path).is_file(), path


def test_the_run_example_runs_as_written(tmp_path):
    export = run("export", "specs/resnet18.net", "-o", str(tmp_path / "resnet18.onnx"))
    assert export.returncode == 0, export.stderr
    quoted = quoted_output("netspec export specs/resnet18.net -o resnet18.onnx")
    command = re.search(r"^\$ (netspec run .*)$", quoted, re.M).group(1)
    args = [str(tmp_path / "resnet18.onnx") if a == "resnet18.onnx" else a for a in command.split()[1:]]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    expected = quoted[quoted.index("$ netspec run"):].splitlines()[1:3]
    assert result.stdout.splitlines()[:2] == expected  # the values; the latency line varies


def test_the_corpus_size_in_the_robustness_table_is_true():
    sys.path.insert(0, str(ROOT / "tests"))
    import test_bad_corpus

    row = next(line for line in README.splitlines() if line.startswith("| `tests/bad/`"))
    claimed = int(re.search(r"\((\d+) of them", row).group(1))
    assert claimed == len(test_bad_corpus.entries())


def test_the_zoo_section_quotes_a_real_spec_and_the_real_table():
    sys.path.insert(0, str(ROOT / "tests" / "reference"))
    import zoo_table

    text = README
    assert (ROOT / "specs" / "resnet101.net").read_text(encoding="utf-8") in text
    table = text.split("<!-- zoo table -->\n", 1)[1].split("<!-- end zoo table -->", 1)[0]
    assert table.strip().splitlines() == zoo_table.rows()


def test_the_vit_table_is_real():
    command = "netspec check specs/vit_b_16.net --depth 1"
    result = run(*command.split()[1:])
    expected = [line.rstrip() for line in quoted_output(command).splitlines()]
    assert [line.rstrip() for line in result.stdout.splitlines()] == expected


def test_the_diff_output_is_real():
    result = run("diff", "specs/resnet18.net", "specs/resnet34.net")
    assert result.returncode == 1, result.stderr  # 1: the networks differ
    expected = [line.rstrip() for line in quoted_output("netspec diff specs/resnet18.net specs/resnet34.net").splitlines()]
    assert [line.rstrip() for line in result.stdout.splitlines()] == expected


def test_the_quantize_example_is_real(tmp_path):
    """The README's `--quantize int8` example: the export writes the file, the comparison prints
    the quoted lines (the export's time varies)."""
    quoted = quoted_output("netspec export specs/lenet5.net -o lenet5.int8.onnx --quantize int8")
    assert quoted.startswith("wrote lenet5.int8.onnx (71.96 KiB, opset 17, IR 8, 36 nodes) in ")
    fp32, int8 = str(tmp_path / "lenet5.onnx"), str(tmp_path / "lenet5.int8.onnx")
    assert run("export", "specs/lenet5.net", "-o", fp32).returncode == 0
    export = run("export", "specs/lenet5.net", "-o", int8, "--quantize", "int8")
    assert export.returncode == 0, export.stderr
    assert export.stdout.startswith(f"wrote {int8} (71.96 KiB, opset 17, IR 8, 36 nodes) in ")
    result = run("run", fp32, "--compare", int8, "--batch", "12")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == quoted[quoted.index("$ netspec run"):].splitlines()[1:3]


def test_the_dtype_examples_are_real(tmp_path):
    """The README's `--dtype` examples: what the exports print (but their times) and the f16
    model's comparison, line for line."""
    block = quoted_output("netspec export specs/vit_b_16.net -o vit_b_16.f16.onnx --dtype f16 --f32-io")
    lines = block.splitlines()
    vit, resnet = str(tmp_path / "vit_b_16.f16.onnx"), str(tmp_path / "resnet18.bf16.onnx")

    def without_time(text: str) -> list[str]:
        return [re.sub(r" in [\d.]+ s$", "", line) for line in text.splitlines()]

    export = run("export", "specs/vit_b_16.net", "-o", vit, "--dtype", "f16", "--f32-io")
    assert export.returncode == 0, export.stderr
    assert without_time(export.stdout.replace(vit, "vit_b_16.f16.onnx")) == without_time("\n".join(lines[0:3]))
    compare = run("run", "specs/vit_b_16.net", "--compare", vit, "--batch", "4")
    assert compare.returncode == 0, compare.stderr
    assert compare.stdout.splitlines() == lines[4:6]
    export = run("export", "specs/resnet18.net", "-o", resnet, "--dtype", "bf16")
    assert export.returncode == 0, export.stderr
    assert without_time(export.stdout.replace(resnet, "resnet18.bf16.onnx")) == without_time("\n".join(lines[7:9]))
    assert export.stderr.splitlines() == lines[9:10]

def test_the_torch_section_is_real(tmp_path):
    """`netspec torch`'s quoted output and excerpt are what it writes, and the training loop runs."""
    section = README[README.index("## `netspec torch`"):README.index("## Python API")]
    result = subprocess.run([sys.executable, "-m", "netspec", "torch", str(ROOT / "specs" / "resnet18.net"),
                             "-o", "resnet18.py"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "", "NO_COLOR": "1", "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == quoted_output("netspec torch specs/resnet18.net -o resnet18.py")
    written = (tmp_path / "resnet18.py").read_text()
    excerpt = re.search(r"An excerpt of `resnet18.py`:\n\n```python\n(.*?)```", section, re.S).group(1)
    for piece in excerpt.split("...\n"):
        assert piece.strip() and piece in written, piece
    loop = re.search(r"```python\n(optimizer = .*?)```", section, re.S).group(1)
    import torch

    namespace: dict = {}
    exec(compile(written, "resnet18.py", "exec"), namespace)
    model = namespace["Model"](classes=10)
    loader = [(torch.randn(2, 3, 32, 32), torch.tensor([1, 7]))]
    with torch.enable_grad():
        exec(compile(loop, "README.md", "exec"), {"torch": torch, "model": model, "loader": loader})
