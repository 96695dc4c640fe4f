"""`netspec run` and the Python API's run/export: inputs from .npy/.npz/images, --top, -o,
--repeat, --device, and every kind of bad weights file (exit 1, a clear message, never a
traceback).

Expected values are computed here: image pixels by hand from the array the PNG was made of,
network outputs with the Python API on the same input.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

import netspec
from cli_runner import cli
from netspec.diagnostics import NetspecError

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])




def write(tmp_path: Path, text: str, name: str = "t.net") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def clean_failure(code: int, err: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.startswith("error:"), err


def printed_stats(out: str) -> dict[str, tuple]:
    """{output: (shape, dtype, min, max, mean)} from run's summary lines."""
    stats = {}
    for m in re.finditer(r"^(\S+): \[([\d, ]*)\] (\w+), min (\S+), max (\S+), mean (\S+)$", out, re.M):
        shape = [int(d) for d in m.group(2).split(",") if d.strip()]
        stats[m.group(1)] = (shape, m.group(3), float(m.group(4)), float(m.group(5)), float(m.group(6)))
    return stats


def assert_printed(out: str, arrays: dict[str, np.ndarray]) -> None:
    stats = printed_stats(out)
    assert set(stats) == set(arrays), out
    for name, value in arrays.items():
        shape, dtype, lo, hi, mean = stats[name]
        assert shape == list(value.shape) and dtype == str(value.dtype)
        assert lo == float(f"{value.min():.4g}") and hi == float(f"{value.max():.4g}")
        assert mean == float(f"{value.mean():.4g}")


_LENET = None


def lenet():
    global _LENET
    if _LENET is None:
        _LENET = netspec.load(LENET)
    return _LENET


def digits(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 32, 32)).astype(np.float32)


# ================================================================ specs and .onnx files


def test_run_spec_default_input(capsys):
    code, out, err = cli(["run", LENET], capsys)
    assert code == 0, err
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)  # the documented default
    assert_printed(out, lenet().run(x))


def test_run_spec_and_onnx_give_the_same_outputs(tmp_path, capsys):
    x = digits()
    np.save(tmp_path / "x.npy", x)
    model = tmp_path / "l.onnx"
    assert cli(["export", LENET, "-o", model, "--seed", 3], capsys)[0] == 0
    code, out_spec, err = cli(["run", LENET, "--seed", 3, "--input", tmp_path / "x.npy",
                               "-o", tmp_path / "a.npz"], capsys)
    assert code == 0, err
    code, out_onnx, err = cli(["run", model, "--input", tmp_path / "x.npy", "-o", tmp_path / "b.npz"], capsys)
    assert code == 0, err
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a.files == b.files == ["logits"]
    np.testing.assert_array_equal(a["logits"], b["logits"])
    np.testing.assert_allclose(a["logits"], lenet().run(x, seed=3)["logits"], rtol=1e-6, atol=1e-7)
    assert_printed(out_onnx, {"logits": b["logits"]})


def test_output_npz_equals_the_printed_run(tmp_path, capsys):
    x = digits(4, seed=5)
    np.save(tmp_path / "x.npy", x)
    out_file = tmp_path / "out.npz"
    code, out, err = cli(["run", LENET, "--input", tmp_path / "x.npy", "-o", out_file], capsys)
    assert code == 0, err
    assert f"wrote {out_file}" in out
    with np.load(out_file) as saved:
        arrays = {k: saved[k] for k in saved.files}
    assert_printed(out, arrays)
    np.testing.assert_array_equal(arrays["logits"], lenet().run(x)["logits"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "x.npy"]  # no temporary left


def test_output_into_a_missing_folder_exits_1(tmp_path, capsys):
    out_file = tmp_path / "nodir" / "out.npz"
    code, out, err = cli(["run", LENET, "-o", out_file], capsys)
    clean_failure(code, err)
    assert "nodir" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_output_onto_a_directory_exits_1_and_leaves_no_temporary(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    code, out, err = cli(["run", LENET, "-o", tmp_path / "adir"], capsys)
    clean_failure(code, err)
    assert "adir" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]
    assert list((tmp_path / "adir").iterdir()) == []


def test_npy_single_sample_gets_a_batch_axis(tmp_path, capsys):
    x = digits(1)
    np.save(tmp_path / "x.npy", x[0])   # [1, 32, 32]: one sample
    code, out, err = cli(["run", LENET, "--input", tmp_path / "x.npy", "-o", tmp_path / "o.npz"], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["logits"], lenet().run(x)["logits"])


def test_npy_wrong_shape_exits_1(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 32, 32), np.float32))
    code, out, err = cli(["run", LENET, "--input", tmp_path / "x.npy"], capsys)
    clean_failure(code, err)
    assert "[2, 3, 32, 32]" in err and "digits" in err


TWO_INPUTS = """
    network two
    input a: f32[N, 4, 6, 6]
    input b: f32[N, 4, 6, 6]
    y = a + b
    z = a * b
    output y, z
"""


def test_npz_feeds_inputs_by_name(tmp_path, capsys):
    spec = write(tmp_path, TWO_INPUTS)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2, 4, 6, 6)).astype(np.float32) for _ in range(2))
    np.savez(tmp_path / "in.npz", b=b, a=a)
    code, out, err = cli(["run", spec, "--input", tmp_path / "in.npz", "-o", tmp_path / "o.npz"], capsys)
    assert code == 0, err
    o = np.load(tmp_path / "o.npz")
    np.testing.assert_array_equal(o["y"], a + b)
    np.testing.assert_array_equal(o["z"], a * b)
    assert_printed(out, {"y": o["y"], "z": o["z"]})


def test_npz_with_wrong_names_lists_the_inputs(tmp_path, capsys):
    spec = write(tmp_path, TWO_INPUTS)
    np.savez(tmp_path / "in.npz", a=np.zeros((1, 4, 6, 6), np.float32), c=np.zeros((1, 4, 6, 6), np.float32))
    code, out, err = cli(["run", spec, "--input", tmp_path / "in.npz"], capsys)
    clean_failure(code, err)
    assert "missing `b`, unexpected `c`" in err and "['" not in err
    assert "the inputs are `a`, `b`" in err
    assert out == ""


def test_npy_for_a_two_input_model_exits_1(tmp_path, capsys):
    spec = write(tmp_path, TWO_INPUTS)
    np.save(tmp_path / "x.npy", np.zeros((1, 4, 6, 6), np.float32))
    code, _, err = cli(["run", spec, "--input", tmp_path / "x.npy"], capsys)
    clean_failure(code, err)
    assert "2 inputs" in err and ".npz" in err


def test_missing_input_file_exits_2_and_unknown_format_exits_1(tmp_path, capsys):
    code, _, err = cli(["run", LENET, "--input", tmp_path / "nope.npy"], capsys)
    assert code == 2 and "--input" in err and "no such file" in err, err  # usage, as a missing spec
    (tmp_path / "x.csv").write_text("1,2,3")
    code, _, err = cli(["run", LENET, "--input", tmp_path / "x.csv"], capsys)
    clean_failure(code, err)
    assert "unknown format" in err and ".npy" in err


def test_corrupt_npy_exits_1(tmp_path, capsys):
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY garbage")
    code, _, err = cli(["run", LENET, "--input", tmp_path / "x.npy"], capsys)
    clean_failure(code, err)
    assert "x.npy" in err


# ================================================================ images

IDENTITY_RGB = """
    network ident
    input image: f32[N, 3, 6, 8]
    y = image -> identity
    output y
"""


def _pixels(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _png(tmp_path: Path, pixels: np.ndarray, name: str = "img.png") -> Path:
    path = tmp_path / name
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
    return path


@pytest.mark.parametrize("normalize", [None, "imagenet", "none"])
def test_png_input_exact_size(tmp_path, capsys, normalize):
    spec = write(tmp_path, IDENTITY_RGB)
    pixels = _pixels(6, 8, 3)
    png = _png(tmp_path, pixels)
    argv = ["run", spec, "--input", png, "-o", tmp_path / "o.npz"]
    if normalize:
        argv += ["--normalize", normalize]
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    got = np.load(tmp_path / "o.npz")["y"]
    want = pixels.astype(np.float64) / 255.0          # [H, W, C] in [0, 1]
    if normalize == "imagenet":
        want = (want - IMAGENET_MEAN) / IMAGENET_STD
    want = want.transpose(2, 0, 1)[None]               # NCHW, batch 1
    assert got.shape == (1, 3, 6, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_png_input_nhwc_and_grayscale(tmp_path, capsys):
    spec = write(tmp_path, """
        network ident
        input image: f32[N, 6, 8, 3] NHWC
        y = image -> body: identity
        output y
    """)
    pixels = _pixels(6, 8, 3, seed=1)
    code, _, err = cli(["run", spec, "--input", _png(tmp_path, pixels), "--normalize", "imagenet",
                        "-o", tmp_path / "o.npz"], capsys)
    assert code == 0, err
    want = ((pixels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)[None]   # NHWC
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["y"], want, atol=1e-6)

    gray = write(tmp_path, """
        network gray
        input image: f32[N, 1, 6, 8]
        y = image -> identity
        output y
    """, "gray.net")
    pixels = _pixels(6, 8, 1, seed=2)
    code, _, err = cli(["run", gray, "--input", _png(tmp_path, pixels, "g.png"), "-o", tmp_path / "g.npz"], capsys)
    assert code == 0, err
    want = (pixels / 255.0).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(np.load(tmp_path / "g.npz")["y"], want, atol=1e-6)
    # ImageNet statistics are for three channels
    code, _, err = cli(["run", gray, "--input", tmp_path / "g.png", "--normalize", "imagenet"], capsys)
    clean_failure(code, err)
    assert "3-channel" in err


def test_png_is_resized_to_the_input(tmp_path, capsys):
    spec = write(tmp_path, IDENTITY_RGB)
    pixels = _pixels(12, 16, 3)
    png = _png(tmp_path, pixels)
    code, _, err = cli(["run", spec, "--input", png, "-o", tmp_path / "o.npz"], capsys)
    assert code == 0, err
    got = np.load(tmp_path / "o.npz")["y"]
    assert got.shape == (1, 3, 6, 8)
    resized = np.asarray(Image.open(png).convert("RGB").resize((8, 6), Image.BILINEAR), np.float32) / 255.0
    np.testing.assert_allclose(got, resized.transpose(2, 0, 1)[None], atol=1e-6)


def test_png_through_a_real_network(tmp_path, capsys):
    """lenet5 takes one grey channel: the image is converted, resized and fed."""
    pixels = _pixels(32, 32, 1, seed=4)
    png = _png(tmp_path, pixels)
    code, out, err = cli(["run", LENET, "--input", png, "-o", tmp_path / "o.npz"], capsys)
    assert code == 0, err
    x = (pixels.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["logits"], lenet().run(x)["logits"],
                               rtol=1e-6, atol=1e-6)


def test_png_into_an_exported_onnx(tmp_path, capsys):
    spec = write(tmp_path, IDENTITY_RGB)
    model = tmp_path / "i.onnx"
    assert cli(["export", spec, "-o", model], capsys)[0] == 0
    pixels = _pixels(6, 8, 3, seed=3)
    code, _, err = cli(["run", model, "--input", _png(tmp_path, pixels), "--normalize", "imagenet",
                        "-o", tmp_path / "o.npz"], capsys)
    assert code == 0, err
    want = ((pixels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["y"], want, atol=1e-6)


# ================================================================ --top, --repeat, --device


def test_top_k(tmp_path, capsys):
    x = digits(2, seed=9)
    np.save(tmp_path / "x.npy", x)
    code, out, err = cli(["run", LENET, "--input", tmp_path / "x.npy", "--top", 3, "-o", tmp_path / "o.npz"],
                         capsys)
    assert code == 0, err
    logits = np.load(tmp_path / "o.npz")["logits"]
    lines = [line for line in out.splitlines() if line.startswith("  sample")]
    assert len(lines) == 2
    for row, line in enumerate(lines):
        m = re.fullmatch(rf"  sample {row} top 3: (.*)", line)
        assert m, line
        pairs = [p.split(": ") for p in m.group(1).split(", ")]
        assert [int(k) for k, _ in pairs] == list(np.argsort(-logits[row])[:3])
        for k, v in pairs:
            assert float(v) == float(f"{logits[row, int(k)]:.4g}")


def test_top_more_than_classes_and_bad_top(tmp_path, capsys):
    code, out, err = cli(["run", LENET, "--top", 50], capsys)
    assert code == 0, err
    assert "sample 0 top 10:" in out
    code, _, err = cli(["run", LENET, "--top", 0], capsys)
    assert code == 2 and "--top" in err


def test_repeat_prints_median_and_p90(capsys):
    code, out, err = cli(["run", LENET, "--repeat", 7], capsys)
    assert code == 0, err
    m = re.search(r"latency over 7 runs \(cpu\): median ([\d.]+) ms, p90 ([\d.]+) ms", out)
    assert m, out
    assert 0 < float(m.group(1)) <= float(m.group(2))
    assert cli(["run", LENET, "--repeat", -1], capsys)[0] == 2


@pytest.mark.parametrize("target", ["spec", "onnx"])
def test_device_cuda(tmp_path, capsys, target):
    x = digits(2)
    np.save(tmp_path / "x.npy", x)
    model = LENET
    if target == "onnx":
        model = tmp_path / "l.onnx"
        assert cli(["export", LENET, "-o", model], capsys)[0] == 0
    argv = ["run", model, "--input", tmp_path / "x.npy", "--device", "cuda", "-o", tmp_path / "gpu.npz"]
    code, out, err = cli(argv, capsys)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert code == 0, err
        cpu = lenet().run(x)["logits"]
        np.testing.assert_allclose(np.load(tmp_path / "gpu.npz")["logits"], cpu, rtol=1e-4, atol=1e-5)
    else:
        clean_failure(code, err)
        assert "onnxruntime-gpu" in err and "cuda" in err.lower()
        assert not (tmp_path / "gpu.npz").exists()


def test_unknown_device_is_a_usage_error(capsys):
    code, _, err = cli(["run", LENET, "--device", "tpu"], capsys)
    assert code == 2


def test_run_missing_onnx_is_a_usage_error(tmp_path, capsys):
    code, _, err = cli(["run", tmp_path / "missing.onnx"], capsys)
    assert code == 2 and "missing.onnx" in err


def test_run_corrupt_onnx_exits_1(tmp_path, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"this is not a protobuf")
    code, _, err = cli(["run", tmp_path / "bad.onnx"], capsys)
    clean_failure(code, err)
    assert "onnxruntime cannot load" in err


def test_run_opset_out_of_range_is_a_usage_error(capsys):
    code, _, err = cli(["run", LENET, "--opset", 12], capsys)
    assert code == 2 and "--opset" in err


def test_run_input_shape_override(tmp_path, capsys):
    spec = write(tmp_path, """
        network t
        input image: f32[N, 3, 16, 16]
        y = image -> conv(4, 3) -> global_avgpool -> flatten
        output y
    """)
    code, out, err = cli(["run", spec, "--input-shape", "image=2,3,9,9"], capsys)
    assert code == 0, err
    assert printed_stats(out)["y"][0] == [2, 4]


# ================================================================ weights files


def _weights() -> dict[str, np.ndarray]:
    return lenet().weights(seed=0)


def _run_weights(tmp_path, capsys, tensors: dict | None = None, name: str = "w.npz",
                 raw: bytes | None = None) -> tuple[int, str, str]:
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    elif tensors is not None:
        np.savez(path, **tensors)
    return cli(["run", LENET, "--weights", path], capsys)


def test_good_weights_npz_and_safetensors(tmp_path, capsys):
    from safetensors.numpy import save_file

    weights = lenet().weights(seed=11)
    x = digits(2)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "w.npz", **weights)
    save_file(weights, str(tmp_path / "w.safetensors"))
    want = lenet().run(x, seed=11)["logits"]
    for name in ("w.npz", "w.safetensors"):
        code, out, err = cli(["run", LENET, "--weights", tmp_path / name, "--input", tmp_path / "x.npy",
                              "-o", tmp_path / "o.npz"], capsys)
        assert code == 0, err
        np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["logits"], want)
    # the file's weights are used, not the seeded ones
    assert not np.allclose(want, lenet().run(x, seed=0)["logits"])


def test_weights_missing_tensor(tmp_path, capsys):
    tensors = _weights()
    del tensors["logits.5.bias"]
    code, _, err = _run_weights(tmp_path, capsys, tensors)
    clean_failure(code, err)
    assert "`logits.5.bias` [10] is missing from" in err and "w.npz" in err
    assert "layer: logits.5" in err


def test_weights_extra_tensor_near_miss_suggests_the_name(tmp_path, capsys):
    tensors = _weights()
    tensors["features.0.weigth"] = tensors.pop("features.0.weight")
    code, _, err = _run_weights(tmp_path, capsys, tensors)
    clean_failure(code, err)
    assert "`features.0.weight` [6, 1, 5, 5] is missing" in err
    assert "has `features.0.weigth`, which the network does not have" in err
    assert "did you mean `features.0.weight`?" in err
    assert "2 errors" in err


def test_weights_extra_unrelated_tensor(tmp_path, capsys):
    tensors = _weights()
    tensors["optimizer.step"] = np.zeros((3,), np.float32)
    code, _, err = _run_weights(tmp_path, capsys, tensors)
    clean_failure(code, err)
    assert "has `optimizer.step`, which the network does not have" in err
    assert "did you mean" not in err


def test_weights_wrong_shape_lists_both_shapes(tmp_path, capsys):
    tensors = _weights()
    tensors["features.0.weight"] = np.zeros((6, 1, 3, 3), np.float32)
    code, _, err = _run_weights(tmp_path, capsys, tensors)
    clean_failure(code, err)
    assert "`features.0.weight` has shape [6, 1, 3, 3]" in err and "expected [6, 1, 5, 5]" in err


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_weights_truncated_file(tmp_path, capsys, fmt):
    from safetensors.numpy import save_file

    full = tmp_path / f"full.{fmt}"
    if fmt == "npz":
        np.savez(full, **_weights())
    else:
        save_file(_weights(), str(full))
    data = full.read_bytes()
    code, _, err = _run_weights(tmp_path, capsys, name=f"half.{fmt}", raw=data[: len(data) // 2])
    clean_failure(code, err)
    assert f"half.{fmt}" in err and "truncated" in err


def test_weights_wrong_format(tmp_path, capsys):
    code, _, err = _run_weights(tmp_path, capsys, name="w.txt", raw=b"features.0.weight = 1\n")
    clean_failure(code, err)
    assert "unknown format `.txt`" in err and ".safetensors" in err and ".npz" in err


def test_weights_missing_file_is_a_usage_error(tmp_path, capsys):
    for command in (["run", LENET], ["export", LENET, "-o", tmp_path / "l.onnx"],
                    ["features", LENET, "--layer", "features.0", "-o", tmp_path / "m.png"]):
        code, _, err = cli([*command, "--weights", tmp_path / "none.npz"], capsys)
        assert code == 2, err  # README, exit codes: a path on the command line that does not exist
        assert "--weights" in err and "none.npz" in err and "no such file" in err
        code, _, err = cli([*command, "--weights", tmp_path], capsys)
        assert code == 2 and "directory" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_weights_integer_dtype_for_a_float_weight(tmp_path, capsys):
    tensors = _weights()
    tensors["features.3.weight"] = np.ones(tensors["features.3.weight"].shape, np.int32)
    code, _, err = _run_weights(tmp_path, capsys, tensors)
    clean_failure(code, err)
    assert "`features.3.weight` holds int32 values" in err and "floating point" in err


def test_weights_errors_in_export_too(tmp_path, capsys):
    tensors = _weights()
    del tensors["features.0.bias"]
    np.savez(tmp_path / "w.npz", **tensors)
    code, _, err = cli(["export", LENET, "-o", tmp_path / "l.onnx", "--weights", tmp_path / "w.npz"], capsys)
    clean_failure(code, err)
    assert "features.0.bias" in err and not (tmp_path / "l.onnx").exists()


def test_subprocess_bad_weights_no_traceback(tmp_path):
    data = b"PK\x03\x04" + b"\x00" * 40   # a zip header, then nothing
    (tmp_path / "w.npz").write_bytes(data)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NETSPEC_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "netspec", "run", str(LENET), "--weights",
                           str(tmp_path / "w.npz")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "w.npz" in proc.stderr and proc.stdout == ""


# ================================================================ the Python API


def test_api_run_and_export(tmp_path):
    net = netspec.load(LENET)
    x = digits(2)
    out = net.run(x)
    assert list(out) == ["logits"] and out["logits"].shape == (2, 10)
    assert out["logits"].dtype == np.float32
    np.testing.assert_array_equal(net.run({"digits": x})["logits"], out["logits"])
    path = net.export(tmp_path / "l.onnx")
    assert path == tmp_path / "l.onnx" and path.is_file()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(sess.run(None, {"digits": x})[0], out["logits"])


def test_api_params_and_input_shapes(tmp_path):
    net = netspec.load(LENET, classes=4, input_shapes={"digits": [5, 1, 32, 32]})
    assert net.run(digits(5))["logits"].shape == (5, 4)


def test_api_run_with_different_weight_dicts_gives_different_results():
    """Each call uses the weights it is given (a cached session must not be reused for other
    weights, however similar they look)."""
    net = netspec.load(LENET)
    x = digits(2)
    w1 = net.weights(seed=0)
    w2 = {k: v.copy() for k, v in w1.items()}
    w2["logits.1.weight"][:, 100:300] += 1.0   # deep inside a large array: the same numpy repr
    assert str(w1) == str(w2)                  # (which is what makes this case tricky)
    a = net.run(x, weights=w1)["logits"]
    b = net.run(x, weights=w2)["logits"]
    fresh = netspec.load(LENET).run(x, weights=w2)["logits"]   # a new Network: nothing cached
    assert not np.allclose(a, fresh)
    np.testing.assert_allclose(b, fresh, rtol=1e-6, atol=1e-6)


def test_api_run_rereads_a_rewritten_weights_file(tmp_path):
    """A weights file is read when run is called: rewriting it between calls is seen."""
    net = netspec.load(LENET)
    x = digits(2)
    path = tmp_path / "w.npz"
    np.savez(path, **net.weights(seed=1))
    first = net.run(x, weights=path)["logits"]
    np.savez(path, **net.weights(seed=2))
    second = net.run(x, weights=path)["logits"]
    np.testing.assert_allclose(second, netspec.load(LENET).run(x, seed=2)["logits"], rtol=1e-6, atol=1e-6)
    assert not np.allclose(first, second)


def test_api_run_needs_a_dict_for_two_inputs(tmp_path):
    net = netspec.load(write(tmp_path, TWO_INPUTS))
    with pytest.raises(ValueError, match="2 inputs"):
        net.run(np.zeros((1, 4, 6, 6), np.float32))


def test_api_check_raises_for_a_broken_spec(tmp_path):
    spec = write(tmp_path, """
        network broken
        input x: f32[N, 3, 8, 8]
        y = x -> conv(4, 3, strid=2) -> relu
        output y
    """)
    net = netspec.load(spec)  # loading does not raise
    with pytest.raises(NetspecError) as info:
        net.check()
    (d,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert "strid" in d.message and d.span.line == 3 and d.hint and "stride" in d.hint
    assert f"{spec}:3:" in str(info.value)
    with pytest.raises(NetspecError):
        net.run(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(NetspecError):
        net.export(tmp_path / "b.onnx")
    assert not (tmp_path / "b.onnx").exists()


def test_api_bad_weights_mapping_raises_netspec_error():
    net = netspec.load(LENET)
    weights = net.weights()
    weights["features.0.weight"] = weights["features.0.weight"][:, :, :3, :3]
    with pytest.raises(NetspecError, match=r"features\.0\.weight.*\[6, 1, 3, 3\]"):
        net.run(digits(1), weights=weights)
