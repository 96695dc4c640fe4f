"""`netspec export --dtype f16|bf16 [--f32-io]` and `Network.to_onnx(dtype=...)`: the f32 model
converted by onnxruntime's float16 converter, the accuracy-critical layers kept f32, the
layers onnxruntime has no kernel for in that dtype reported, every model passing onnx.checker's
full check.

Tolerances, on seeded weights and inputs: f16 outputs within 5e-3 of the output's scale (max
|f32 output|) of the f32 export's, cosine >= 0.9999 (measured: resnet18 8.5e-5 abs on a scale
of 0.16, 5e-4 relative; the tiny transformer 3.3e-5); bf16, which keeps 8 bits of mantissa
to f16's 11, within 3e-2 of the scale (measured: lenet5 3.2e-3), cosine >= 0.999. bf16 runs in
onnx's reference evaluator: onnxruntime's CPU provider has no bf16 Conv, Gemm or Relu."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import netspec
from cli_runner import cli

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"
RESNET18 = ROOT / "specs" / "resnet18.net"
F16_SCALE, F16_COSINE = 5e-3, 0.9999
BF16_SCALE, BF16_COSINE = 3e-2, 0.999

TRANSFORMER = """network tiny
input x: f32[N, 8, 16] NLC
h = x -> layernorm -> multihead_attention(4) -> linear(32) -> gelu -> linear(10)
y = h -> softmax
output y
"""
NORMS = """network norms
input image: f32[N, 3, 16, 16]
y = image -> conv(8, 3) -> groupnorm(2) -> relu -> global_avgpool -> flatten -> linear(4) -> normalize
output y
"""


def _spec(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.net"
    path.write_text(text)
    return path


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _assert_close(reference: np.ndarray, got: np.ndarray, scale: float, cosine: float) -> None:
    assert got.shape == reference.shape
    got = got.astype(np.float64)
    error = np.abs(got - reference).max() / np.abs(reference).max()
    assert error <= scale, f"max abs difference {error:.2e} of the output's scale, over {scale}"
    assert _cosine(reference, got) >= cosine


def _types(model) -> dict[str, int]:
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.value_info, *graph.output)}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def _run(path: Path, feeds: dict) -> list:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("spec", [LENET, RESNET18], ids=["lenet5", "resnet18"])
def test_f16_export_checks_runs_and_stays_close(tmp_path, capsys, spec):
    out = tmp_path / "model.f16.onnx"
    code, stdout, stderr = cli(["export", spec, "-o", out, "--dtype", "f16"], capsys)
    assert code == 0, stderr
    assert f"wrote {out}" in stdout
    assert "no layer kept in f32: every layer computes in f16" in stdout  # no softmax or norm of statistics here
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert {t.data_type for t in model.graph.initializer if t.dims} == {onnx.TensorProto.FLOAT16}
    # onnxruntime's CPU provider computes Conv and Gemm in f32 behind Casts of its own: said
    assert "note: onnxruntime has no f16 kernel on the CPU for" in stdout and "conv" in stdout
    net = netspec.load(spec)
    feeds = net.feeds(seed=3)
    reference = net.run(feeds)
    got = _run(out, {k: v.astype(np.float16) for k, v in feeds.items()})
    for (name, want), value in zip(reference.items(), got):
        assert value.dtype == np.float16
        _assert_close(want.astype(np.float64), value, F16_SCALE, F16_COSINE)


def test_f32_io_keeps_inputs_and_outputs_f32(tmp_path, capsys):
    out = tmp_path / "lenet5.f16.onnx"
    code, _, stderr = cli(["export", LENET, "-o", out, "--dtype", "f16", "--f32-io"], capsys)
    assert code == 0, stderr
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert len(casts) == 2  # one in, one out
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert _types(model)[conv.input[1]] == onnx.TensorProto.FLOAT16  # the weights are f16
    net = netspec.load(LENET)
    feeds = net.feeds(seed=1)
    [got] = _run(out, feeds)
    assert got.dtype == np.float32
    _assert_close(net.run(feeds)["logits"].astype(np.float64), got, F16_SCALE, F16_COSINE)


def test_softmax_and_norm_statistics_stay_f32_and_are_named(tmp_path, capsys):
    spec = _spec(tmp_path, TRANSFORMER, "tiny")
    out = tmp_path / "tiny.f16.onnx"
    code, stdout, stderr = cli(["export", spec, "-o", out, "--dtype", "f16"], capsys)
    assert code == 0, stderr
    assert ("kept in f32 for accuracy: 1 layernorm (statistics over the activations; h.0), "
            "1 multihead_attention (its softmax; h.1), 1 softmax (sums exponentials; y)") in stdout
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    types = _types(model)
    by_op: dict[str, set] = {}
    for node in model.graph.node:
        by_op.setdefault(node.op_type, set()).add(types[node.input[0]])
    assert by_op["Softmax"] == {onnx.TensorProto.FLOAT}  # attention's and the last layer's
    assert by_op["LayerNormalization"] == {onnx.TensorProto.FLOAT}
    assert by_op["MatMul"] == {onnx.TensorProto.FLOAT16}
    net = netspec.load(spec)
    feeds = net.feeds(seed=2)
    [got] = _run(out, {"x": feeds["x"].astype(np.float16)})
    _assert_close(net.run(feeds)["y"].astype(np.float64), got, F16_SCALE, F16_COSINE)


def test_bf16_export_defaults_to_opset_22_and_says_the_cpu_cannot_run_it(tmp_path, capsys):
    spec = _spec(tmp_path, NORMS, "norms")
    out = tmp_path / "norms.bf16.onnx"
    code, stdout, stderr = cli(["export", spec, "-o", out, "--dtype", "bf16", "--f32-io"], capsys)
    assert code == 0, stderr
    assert "opset 22" in stdout
    assert ("kept in f32 for accuracy: 1 groupnorm (statistics over the activations; y.1), "
            "1 normalize (sum of squares; y.6)") in stdout
    assert "warning: onnxruntime has no bf16 kernel on the CPU for 1 conv" in stderr
    assert "does not run on the CPU (`netspec run` stops at `y.0`)" in stderr
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert onnx.TensorProto.BFLOAT16 in {t.data_type for t in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 not in set(_types(model).values())
    # what it warned of: onnxruntime's CPU provider refuses the model, at that layer
    from netspec import runtime

    with pytest.raises(runtime.OnnxRuntimeError) as refused:
        runtime.session(out)
    assert refused.value.missing_kernel and refused.value.node == "y.0"


def test_bf16_values_are_rounded_from_f32_and_stay_close(tmp_path):
    import ml_dtypes
    from onnx.reference import ReferenceEvaluator

    net = netspec.load(LENET)
    model = net.to_onnx(dtype="bf16", f32_io=True)
    f32 = {t.name: onnx.numpy_helper.to_array(t) for t in net.to_onnx().graph.initializer}
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.BFLOAT16:
            values = onnx.numpy_helper.to_array(tensor)
            assert np.array_equal(values, f32[tensor.name].astype(ml_dtypes.bfloat16))
    feeds = net.feeds(seed=4)
    [got] = ReferenceEvaluator(model).run(None, feeds)
    _assert_close(net.run(feeds)["logits"].astype(np.float64), got, BF16_SCALE, BF16_COSINE)


def test_bf16_below_opset_22_is_an_error_at_the_layer(tmp_path, capsys):
    out = tmp_path / "r.onnx"
    code, _, stderr = cli(["export", RESNET18, "-o", out, "--dtype", "bf16", "--opset", "17"], capsys)
    assert code == 1
    assert "error: conv: ONNX's Conv takes no bf16 tensors at opset 17" in stderr
    assert "specs/resnet18.net:11:17" in stderr and "--opset 22" in stderr
    assert not out.exists()


def test_run_compare_against_the_f16_export(tmp_path, capsys):
    out = tmp_path / "r.onnx"
    assert cli(["export", RESNET18, "-o", out, "--dtype", "f16"], capsys)[0] == 0
    code, stdout, stderr = cli(["run", RESNET18, "--compare", out], capsys)  # the same seed: weights and inputs
    assert code == 0, stderr
    assert "cosine 1.0000" in stdout and "top-1 1/1 (100%)" in stdout


def test_python_api_runs_converted_models():
    net = netspec.load(LENET)
    feeds = net.feeds(seed=6)
    reference = net.run(feeds)["logits"].astype(np.float64)
    half = net.run(feeds, dtype="f16")["logits"]  # the f32 arrays fed to the f16 inputs
    assert half.dtype == np.float16
    _assert_close(reference, half, F16_SCALE, F16_COSINE)
    kept = net.run(feeds, dtype="f16", f32_io=True)["logits"]
    assert kept.dtype == np.float32
    _assert_close(reference, kept, F16_SCALE, F16_COSINE)
    with pytest.raises(ValueError, match="f16"):
        net.to_onnx(dtype="f8")
    with pytest.raises(ValueError, match="f32_io"):
        net.to_onnx(f32_io=True)


@pytest.mark.parametrize("argv, message", [
    (["--f32-io"], "--f32-io keeps a converted model's inputs and outputs f32; add --dtype"),
    (["--dtype", "f16", "--quantize", "int8"], "--dtype f16 and --quantize int8 are two precisions"),
    (["--dtype", "f8"], "invalid choice: 'f8'"),
])
def test_usage_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "m.onnx"
    code, _, stderr = cli(["export", LENET, "-o", out, *argv], capsys)
    assert code == 2 and message in stderr
    assert not out.exists()


def test_a_network_declared_f16_is_not_converted(tmp_path, capsys):
    spec = _spec(tmp_path, LENET.read_text().replace("f32[N", "f16[N"), "half")
    out = tmp_path / "m.onnx"
    code, _, stderr = cli(["export", spec, "-o", out, "--dtype", "bf16"], capsys)
    assert code == 1
    assert "--dtype bf16 converts an f32 network; this one's tensors are f16 already" in stderr
    assert not out.exists()


def test_detached_weights_convert_as_embedded_ones():
    """A model past protobuf's 2 GB converts with its weights held apart (export's way, which
    wrote vit_h_14 in f16, 1.18 GiB): the arrays come back converted, the model without their
    bytes, and with them put back it is the model converted whole."""
    from netspec import precision

    net = netspec.load(RESNET18)
    for dtype in ("f16", "bf16"):
        held: dict = {}
        light = net.lowered(dtype=dtype, detached=held)
        assert held and {a.dtype.name for a in held.values()} == {"float16" if dtype == "f16" else "bfloat16"}
        assert all(not t.raw_data for t in light.graph.initializer if t.name in held)
        precision.embed(light, held)
        assert light.SerializeToString() == net.to_onnx(dtype=dtype).SerializeToString()
