"""`netspec check` imports only what it uses: never onnx, onnxruntime, numpy, torch, or networkx
(the graph walks its nodes in creation order), and rich only to style a terminal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys, io, contextlib
from netspec.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["check", sys.argv[1]] + sys.argv[2:])
import json
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def modules_after(*args: str) -> tuple[int, set[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["code"], {m.split(".")[0] for m in report["modules"]}


def test_check_imports_nothing_heavy():
    code, top = modules_after("specs/resnet50.net")
    assert code == 0
    assert not top & {"onnx", "onnxruntime", "numpy", "torch", "networkx", "rich", "PIL", "safetensors"}


def test_check_json_imports_nothing_heavy():
    code, top = modules_after("specs/googlenet.net", "--json")
    assert code == 0
    assert not top & {"onnx", "onnxruntime", "numpy", "torch", "networkx", "rich"}
