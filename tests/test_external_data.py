"""Models over 2 GB keep their tensors in FILE.onnx.data beside the model (protobuf cannot hold
more). Tested by lowering the threshold: a 2 GB model would not fit this test suite's budget."""

from __future__ import annotations

import numpy as np
import onnx

import netspec
from netspec import runtime

SPEC = "network big\ninput x: f32[N, 64]\ny = x -> linear(512) -> relu -> linear(10)\noutput y\n"


def test_large_model_is_written_with_external_data(tmp_path, monkeypatch):
    spec = tmp_path / "big.net"
    spec.write_text(SPEC)
    monkeypatch.setattr(runtime, "TWO_GB", 1024)  # anything over 1 KiB counts as "large"
    net = netspec.load(spec)
    target = tmp_path / "big.onnx"
    files = runtime.save_model(net.to_onnx(), target)
    assert files == [target, tmp_path / "big.onnx.data"]
    assert target.stat().st_size < 10_000 < (tmp_path / "big.onnx.data").stat().st_size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".big.onnx.")]  # no staging left
    model = onnx.load(str(target))  # loads the external data from beside it
    onnx.checker.check_model(str(target), full_check=True)
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert weights["y.0.weight"].shape == (512, 64)
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    from_file = runtime.session(str(target)).run(None, {"x": x})[0]
    assert np.allclose(from_file, net.run(x)["y"], atol=1e-6)
