"""The ONNX fixtures of torchvision models (tests/data/onnx/, tests/onnx_fixtures.py) are usable.

Each recorded graph, from either torch.onnx exporter, loads, is refilled with seeded weights,
passes onnx.checker, and runs in onnxruntime on the CPU at batch 2, with a finite output of the
recorded shape. The importer's own tests build on this: a re-imported model is compared with
the refilled fixture's onnxruntime run.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx_fixtures import (
    EXPORTERS,
    FIXTURES,
    fixture_info,
    is_stripped,
    load_fixture,
    seeded_values,
)

MODELS = ["resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "densenet121",
          "convnext_tiny", "vit_b_16"]


def test_every_fixture_is_recorded():
    assert sorted(FIXTURES) == sorted((m, e) for m in MODELS for e in EXPORTERS)


@pytest.mark.parametrize(("model", "exporter"), FIXTURES, ids=[f"{m}.{e}" for m, e in FIXTURES])
def test_fixture_runs(model, exporter):
    info = fixture_info(model, exporter)
    proto = load_fixture(model, exporter, seed=0)
    assert not any(is_stripped(t) for t in proto.graph.initializer)
    assert [v.name for v in proto.graph.input] == ["image"]
    assert [v.name for v in proto.graph.output] == ["logits"]
    serialized = proto.SerializeToString()  # once, for both (vit_b_16's is 330 MB)
    onnx.checker.check_model(serialized)

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(serialized, opts, providers=["CPUExecutionProvider"])
    shape = [2 if d == "N" else d for d in info["inputs"][0]["shape"]]
    x = np.random.default_rng(1234).standard_normal(shape, dtype=np.float32)
    (y,) = session.run(["logits"], {"image": x})
    assert list(y.shape) == [2 if d == "N" else d for d in info["outputs"][0]["shape"]]
    assert np.isfinite(y).all()
    assert 1e-3 < np.abs(y).max() < 1e4, np.abs(y).max()  # O(1), not vanished nor blown up


def test_refill_is_deterministic():
    a = load_fixture("resnet18", "torchscript", seed=0)
    b = load_fixture("resnet18", "torchscript", seed=0)
    c = load_fixture("resnet18", "torchscript", seed=1)
    w = {t.name: t for t in a.graph.initializer}
    assert all(t.SerializeToString() == w[t.name].SerializeToString() for t in b.graph.initializer)
    name = "conv1.weight"
    assert {t.name: t for t in c.graph.initializer}[name].raw_data != w[name].raw_data
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(w[name]),
                                  seeded_values(name, [64, 3, 7, 7], seed=0))


def test_batch_norm_variances_are_positive():
    proto = load_fixture("resnet18", "torchscript")
    values = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    # the refilled ones (> 64 channels); the small ones kept weights.py's values, in [0.5, 2]
    variances = [n.input[4] for n in proto.graph.node
                 if n.op_type == "BatchNormalization" and values[n.input[4]].size > 64]
    assert variances
    assert all(values[v].min() >= 0.5 and values[v].max() <= 1.5 for v in variances)
