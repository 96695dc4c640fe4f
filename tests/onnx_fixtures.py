"""The ONNX fixtures of torchvision models (tests/data/onnx/), with their stripped weights refilled.

tests/reference/record_onnx.py exports torchvision models with both torch.onnx exporters
(`torchscript`, `dynamo`) and strips every float tensor of more than 64 elements of its data
(name, dims and data type kept), so the files are small; integer and small float tensors keep
their values. `load_fixture` fills each data-less tensor again with seeded values, the same on
every run and every machine:

- each tensor draws from its own numpy Generator, seeded by (seed, zlib.crc32(name)), so the
  values depend neither on the order of the tensors nor on which others exist;
- a BatchNormalization node's variance (its input 4) gets uniform(0.5, 1.5);
- every other tensor gets uniform(-a, a), a = 1/sqrt(fan_in), fan_in the product of dims[1:]
  (1 for a one-axis tensor): convolution and linear weights keep activations O(1), biases and
  norm scales stay within [-1, 1].

So a refilled model runs in onnxruntime and gives finite, O(1) outputs; it is not torchvision's
model for any particular weights (no outputs of torchvision are recorded: see record_onnx.py).
Imports numpy and onnx only.

    from onnx_fixtures import FIXTURES, load_fixture, fixture_info
    model = load_fixture("resnet18", "dynamo", seed=0)   # an onnx.ModelProto
"""

from __future__ import annotations

import json
import zlib
from math import prod, sqrt
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

DATA = Path(__file__).resolve().parent / "data" / "onnx"
EXPORTERS = ("torchscript", "dynamo")
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
               onnx.TensorProto.DOUBLE}

# every (model, exporter) with a recorded file, in a stable order
FIXTURES = sorted((p.name.split(".")[0], p.name.split(".")[1]) for p in DATA.glob("*.*.onnx"))


def fixture_path(model: str, exporter: str) -> Path:
    return DATA / f"{model}.{exporter}.onnx"


def fixture_info(model: str, exporter: str) -> dict:
    """The fixture's recorded summary (tests/data/onnx/<model>.<exporter>.json)."""
    return json.loads((DATA / f"{model}.{exporter}.json").read_text())


def is_stripped(t: onnx.TensorProto) -> bool:
    """Whether `t` is a float tensor with elements but no data (stripped by record_onnx.py)."""
    return (t.data_type in FLOAT_TYPES and prod(t.dims) > 0 and not t.raw_data
            and not t.float_data and not t.int32_data and not t.double_data
            and not t.external_data)


def seeded_values(name: str, dims: list[int] | tuple[int, ...], seed: int = 0,
                  variance: bool = False) -> np.ndarray:
    """The float32 values `load_fixture` gives the stripped tensor `name` of shape `dims`."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    shape = tuple(int(d) for d in dims)
    u = rng.random(shape, dtype=np.float32)  # uniform [0, 1), drawn in float32 (vit_b_16: 86 M)
    if variance:
        return u + np.float32(0.5)
    a = np.float32(1.0 / sqrt(prod(shape[1:]) if len(shape) > 1 else 1))
    return (u * np.float32(2) - np.float32(1)) * a


def _fill(t: onnx.TensorProto, seed: int, variance: bool) -> None:
    values = seeded_values(t.name, t.dims, seed, variance)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)  # bfloat16: ml_dtypes'
    t.CopyFrom(numpy_helper.from_array(values.astype(dtype), t.name))


def graphs(graph: onnx.GraphProto):
    """`graph` and every subgraph of its nodes' attributes (If, Loop, Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from graphs(g)


def refill(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Fill every stripped tensor of `model` in place (initializers, Constant values, subgraphs)."""
    for graph in graphs(model.graph):
        variances = {n.input[4] for n in graph.node
                     if n.op_type == "BatchNormalization" and len(n.input) > 4}
        for t in graph.initializer:
            if is_stripped(t):
                _fill(t, seed, t.name in variances)
        for node in graph.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR and is_stripped(a.t):
                    # a Constant's tensor often has no name of its own: seed by its output's
                    keep = a.t.name
                    a.t.name = a.t.name or node.output[0]
                    _fill(a.t, seed, node.output[0] in variances)
                    a.t.name = keep
    return model


def assert_same_outputs(expected: list[np.ndarray], got: list[np.ndarray]) -> None:
    """Equal outputs, within 1e-4 of each expected output's scale (its largest magnitude)."""
    assert len(expected) == len(got)
    for x, y in zip(expected, got):
        scale = float(np.abs(x).max()) or 1.0
        assert float(np.abs(x - y).max()) <= 1e-4 * scale, (float(np.abs(x - y).max()), scale)


def load_fixture(model: str, exporter: str, seed: int = 0) -> onnx.ModelProto:
    """The recorded graph of torchvision's `model` from `exporter`, its stripped weights refilled."""
    return refill(onnx.load(str(fixture_path(model, exporter))), seed)
