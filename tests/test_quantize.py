"""`netspec export --quantize int8`: onnxruntime's static QDQ quantization of the lowered model,
calibrated on a folder of samples or seeded noise (with a warning), written atomically.

Tolerance: on LeNet-5 (seeded weights, onnxruntime 1.32) the int8 model's logits keep, to the
fp32 export's, a cosine of 0.99998 calibrated on 16 noise samples, 0.99988 on 4 .npy files and
0.9988 on a single image (measured on inputs like the calibration data); the tests ask for 0.99,
which leaves room for onnxruntime versions that place scales a little differently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cli_runner import cli

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"
COSINE = 0.99


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"digits": x})[0]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    from netspec.cli import main

    path = tmp_path_factory.mktemp("fp32") / "lenet5.onnx"
    assert main(["export", str(LENET), "-o", str(path)]) == 0
    return path


def _samples(folder: Path, n: int = 8, shape=(1, 32, 32), seed: int = 1) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        np.save(folder / f"sample{i:02d}.npy", rng.standard_normal(shape).astype(np.float32))
    return folder


def test_random_calibration_warns_and_stays_close(tmp_path, capsys, fp32):
    out = tmp_path / "lenet5.int8.onnx"
    code, stdout, stderr = cli(["export", LENET, "-o", out, "--quantize", "int8"], capsys)
    assert code == 0, stderr
    assert "warning: no --calibrate folder" in stderr and "misplaced" in stderr
    assert f"wrote {out}" in stdout
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights = {i.name: i for i in model.graph.initializer}
    assert any(w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4 for w in weights.values())
    x = np.random.default_rng(7).standard_normal((12, 1, 32, 32)).astype(np.float32)
    assert _cosine(_outputs(fp32, x), _outputs(out, x)) >= COSINE
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: nothing staged is left


def test_calibration_folder_of_npy(tmp_path, capsys, fp32):
    folder = _samples(tmp_path / "calib")
    out = tmp_path / "q.onnx"
    code, _, stderr = cli(["export", LENET, "-o", out, "--quantize", "int8", "--calibrate", folder,
                           "--calibration-samples", "4"], capsys)
    assert code == 0, stderr
    assert "warning" not in stderr
    x = np.random.default_rng(3).standard_normal((6, 1, 32, 32)).astype(np.float32)
    assert _cosine(_outputs(fp32, x), _outputs(out, x)) >= COSINE


def test_fixed_batch_groups_samples(tmp_path, capsys):
    folder = _samples(tmp_path / "calib", n=5)
    out = tmp_path / "q.onnx"
    code, _, stderr = cli(["export", LENET, "-o", out, "--batch", "2", "--quantize", "int8",
                           "--calibrate", folder], capsys)
    assert code == 0, stderr
    assert _outputs(out, np.zeros((2, 1, 32, 32), np.float32)).shape == (2, 10)


def test_calibrate_without_quantize_is_usage_error(tmp_path, capsys):
    folder = _samples(tmp_path / "calib", n=1)
    code, _, stderr = cli(["export", LENET, "-o", tmp_path / "m.onnx", "--calibrate", folder], capsys)
    assert code == 2 and "--calibrate applies to --quantize int8 only" in stderr
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("case", ["missing", "file", "empty", "unreadable", "wrong_size"])
def test_bad_calibration_folder(tmp_path, capsys, case):
    folder = tmp_path / "calib"
    expected_code, expected = 1, None
    if case == "missing":
        expected_code, expected = 2, "no such folder"
    elif case == "file":
        folder.write_text("x")
        expected_code, expected = 2, "it is a file"
    elif case == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("not data")
        expected = "holds no calibration data"
    elif case == "unreadable":
        _samples(folder, n=2)
        (folder / "sample01.npy").write_bytes(b"not an npy file")
        expected = "sample01.npy"
    else:
        _samples(folder, n=2)
        np.save(folder / "sample01.npy", np.zeros((1, 28, 28), np.float32))
        expected = "sample01.npy"
    out = tmp_path / "q.onnx"
    code, _, stderr = cli(["export", LENET, "-o", out, "--quantize", "int8", "--calibrate", folder], capsys)
    assert code == expected_code, stderr
    assert expected in stderr
    assert not out.exists()



def test_calibration_folder_of_images(tmp_path, capsys, fp32):
    import shutil

    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "image.png", folder / "a.png")
    out = tmp_path / "q.onnx"
    code, _, stderr = cli(["export", LENET, "-o", out, "--quantize", "int8", "--calibrate", folder], capsys)
    assert code == 0, stderr
    x = np.random.default_rng(5).random((4, 1, 32, 32)).astype(np.float32)  # pixel-like, [0, 1)
    assert _cosine(_outputs(fp32, x), _outputs(out, x)) >= COSINE


def test_quantizes_without_sympy(tmp_path, capsys, monkeypatch, fp32):
    """onnxruntime does not install sympy, which its symbolic shape inference needs: on a machine
    without it (a plain `pip install .`) the export quantizes with ONNX's own shape inference."""
    import importlib.util
    import sys

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args, **kwargs: None if name == "sympy" else real(name, *args, **kwargs))
    monkeypatch.setitem(sys.modules, "sympy", None)  # `import sympy` raises ImportError
    out = tmp_path / "lenet5.int8.onnx"
    code, _, stderr = cli(["export", LENET, "-o", out, "--quantize", "int8"], capsys)
    assert code == 0, stderr
    x = np.random.default_rng(7).standard_normal((4, 1, 32, 32)).astype(np.float32)
    assert _cosine(_outputs(fp32, x), _outputs(out, x)) >= COSINE


def test_python_api_quantizes_as_export_does(tmp_path, fp32):
    import netspec

    net = netspec.load(LENET)
    with pytest.warns(UserWarning, match="no calibrate= folder: calibrating on 16 seeded random samples"):
        model = net.quantized()
    onnx.checker.check_model(model, full_check=True)
    assert "QuantizeLinear" in {node.op_type for node in model.graph.node}
    folder = _samples(tmp_path / "calibration")
    calibrated = net.quantized(calibrate=folder, calibration_samples=4)
    path = tmp_path / "api.int8.onnx"
    onnx.save(calibrated, path)
    x = np.random.default_rng(9).standard_normal((4, 1, 32, 32)).astype(np.float32)
    assert _cosine(_outputs(fp32, x), _outputs(path, x)) >= COSINE
    for bad, message in [(dict(calibrate=tmp_path / "missing"), "not a folder"),
                         (dict(calibration_samples=0), "at least 1"), (dict(normalize="vgg"), "imagenet")]:
        with pytest.raises(ValueError, match=message):
            net.quantized(**bad)
    with pytest.raises(TypeError, match="Network.quantized"):
        net.quantized(dtype="f16")
