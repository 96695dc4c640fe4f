"""Record ONNX fixtures of real torchvision models, from both torch.onnx exporters (never run in CI).

torchvision only installs with its matching torch build, so CI never has it (see
tests/reference/dump_torchvision.py). Where it is installed, with onnxscript for the dynamo
exporter (`python3 -m venv tv && tv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx
onnxscript numpy`),

    tv/bin/python tests/reference/record_onnx.py                  # every model in MODELS
    tv/bin/python tests/reference/record_onnx.py resnet18 vit_b_16 # some

writes, for each model and each exporter (`torchscript`, `dynamo`):

- tests/data/onnx/<model>.<exporter>.onnx: the exported graph with its large weights stripped
  (below);
- tests/data/onnx/<model>.<exporter>.json: what the graph contains, for the importer's tests
  and for reading: opset and IR version, producer, the op-type histogram, the number of nodes,
  Constant nodes, initializers and value_info entries, the initializer names in order (the
  first 20, with dims) and their count, the first 10 node names, the graph's input and output
  names and shapes (the batch axis is the string "N"), for the dynamo exporter the
  initializers its optimiser computed from others (`folded_from`: `val_5` ->
  `['features.1.0.block.3.weight']`, that weight transposed), the stripped tensors' count and
  the file's size. No outputs are recorded: the dynamo exporter folds each batch norm into the
  convolution before it (new values under the convolution's names), so torchvision's output
  for given weights cannot be reproduced from refilled ONNX weights without redoing that
  folding. A test compares onnxruntime runs instead (the refilled fixture against the
  re-imported model), which needs no torch.

The models (MODELS): resnet18, resnet50, mobilenet_v3_small, efficientnet_b0, densenet121,
convnext_tiny and vit_b_16, built as torchvision builds them with `weights=None`, in eval mode,
at 224x224 (their DEFAULT weights' size; every one, so the graphs are those of real use and
vit_b_16, which needs 224, is no exception), with a dynamic batch axis "N", the input named
`image` and the output `logits`. Before export every parameter and buffer is overwritten by
tests/reference/weights.py's seeded values (running variances in [0.5, 2], biases nonzero):
the dynamo exporter's optimiser is value-dependent (it drops an all-zero Conv bias, and
torchvision initialises some biases and every fresh batch norm's statistics to zeros), so
fresh-initialised weights would give a graph unlike that of any trained model.

The exporters:

- `torchscript`: `torch.onnx.export(model, x, f, dynamo=False, do_constant_folding=False,
  input_names=["image"], output_names=["logits"], dynamic_axes={"image": {0: "N"}, "logits":
  {0: "N"}}, opset_version=17)`. With constant folding off, the initializers keep their
  state_dict names and batch norms stay BatchNormalization nodes.
- `dynamo`: `torch.onnx.export(model, (x,), f, dynamo=True, input_names=["image"],
  output_names=["logits"], dynamic_shapes=({0: Dim("N")},))`, the default optimisation and
  opset (20 in torch 2.14.1: see the json's `opset`): batch norms folded into the convolutions
  before them, nodes named `node_*`. Exported with a sample batch of 2 (a batch of 1 invites
  torch.export's 0/1 specialisation). Each node keeps the exporter's metadata_props
  (`namespace`, `pkg.torch.onnx.name_scopes` and `.class_hierarchy`: the module path of the
  node, e.g. `features.denseblock1.denselayer1.norm2`; `pkg.onnxscript.rewriter.rule_name`:
  which rewrite made it) but for DROP_METADATA, the stack trace and the FX node's text.

Stripping: every floating-point tensor (FLOAT, FLOAT16, BFLOAT16, DOUBLE), initializer or
Constant node's `value`, with more than STRIP_ABOVE (64) elements keeps its name, dims and
data_type but loses its data (raw_data, float_data, int32_data, double_data cleared, no
external data): the file holds the graph, not the weights, and stays small. Integer tensors
(shapes, axes, indices) and small float tensors (scalars such as eps, sqrt(d), layer-scale
vectors of <= 64 channels) keep their values, since the graph's meaning depends on them. Such
a file does not pass onnx.checker (a tensor with no data), and onnxruntime cannot run it, until
it is refilled: tests/onnx_fixtures.py's `load_fixture(model, exporter, seed)` gives each
data-less tensor seeded values (see there). The model's metadata_props record
`netspec.fixture.stripped_tensors`, the number stripped.

Dropped models: none. Recording all seven takes about three minutes on two cores (vit_b_16 the
longest: about 12 s with the TorchScript exporter, 33 s with dynamo); the files are 23 kB
(resnet18, TorchScript) to 645 kB (vit_b_16, dynamo), 3.1 MB in all.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.export import Dim
from torchvision import models

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from onnx_fixtures import graphs  # noqa: E402
from weights import seeded_input, seeded_state_dict  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "data" / "onnx"

# model -> input side (square)
MODELS = {
    "resnet18": 224,
    "resnet50": 224,
    "mobilenet_v3_small": 224,
    "efficientnet_b0": 224,
    "densenet121": 224,
    "convnext_tiny": 224,
    "vit_b_16": 224,
}
EXPORTERS = ("torchscript", "dynamo")
STRIP_ABOVE = 64
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
               onnx.TensorProto.DOUBLE}
SAMPLE_BATCH = 2
# node metadata the dynamo exporter writes that the fixtures drop: the Python stack trace (this
# machine's paths, a third of a file) and the FX node's text (the aten op is in `namespace` too)
DROP_METADATA = {"pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node"}


def build(name: str) -> torch.nn.Module:
    """torchvision's model with weights=None, every entry of its state_dict seeded, in eval mode."""
    torch.manual_seed(0)
    model = getattr(models, name)(weights=None)
    sd = model.state_dict()
    shapes = {k: list(v.shape) for k, v in sd.items()}
    seeded = seeded_state_dict(shapes)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)).to(sd[k].dtype)
                           for k, v in seeded.items()}, strict=False)
    return model.eval()


def export(model: torch.nn.Module, x: torch.Tensor, exporter: str, path: Path) -> None:
    names = {"input_names": ["image"], "output_names": ["logits"]}
    if exporter == "torchscript":
        torch.onnx.export(model, x, str(path), dynamo=False, do_constant_folding=False,
                          dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}},
                          opset_version=17, **names)
    else:
        torch.onnx.export(model, (x,), str(path), dynamo=True,
                          dynamic_shapes=({0: Dim("N")},), **names)


def _strip(t: onnx.TensorProto) -> bool:
    """Clear `t`'s data if it is a float tensor of more than STRIP_ABOVE elements."""
    if t.data_type not in FLOAT_TYPES or int(np.prod(t.dims, dtype=np.int64)) <= STRIP_ABOVE:
        return False
    for field in ("raw_data", "float_data", "int32_data", "double_data", "external_data"):
        t.ClearField(field)
    t.data_location = onnx.TensorProto.DEFAULT
    return True


def strip(model: onnx.ModelProto) -> int:
    """Strip the model's large float tensors (initializers, Constant values, subgraphs too) and the
    nodes' DROP_METADATA in place; the number of tensors stripped."""
    count = 0
    for graph in graphs(model.graph):
        count += sum(_strip(t) for t in graph.initializer)
        for node in graph.node:
            keep = [p for p in node.metadata_props if p.key not in DROP_METADATA]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
            count += sum(_strip(a.t) for a in node.attribute if a.type == onnx.AttributeProto.TENSOR)
    return count


def _shape(vi: onnx.ValueInfoProto) -> list:
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in vi.type.tensor_type.shape.dim]


def summary(model: onnx.ModelProto, exporter: str, side: int, stripped: int) -> dict:
    g = model.graph
    ops = Counter(n.op_type for n in g.node)
    return {
        "exporter": exporter,
        "torch": torch.__version__,
        "input_side": side,
        "producer": f"{model.producer_name} {model.producer_version}",
        "ir_version": model.ir_version,
        "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "nodes": len(g.node),
        "constant_nodes": ops.get("Constant", 0),
        "initializers": len(g.initializer),
        "value_info": len(g.value_info),
        "functions": len(model.functions),
        "stripped_tensors": stripped,
        "op_types": dict(sorted(ops.items())),
        "first_initializers": {t.name: list(t.dims) for t in g.initializer[:20]},
        # dynamo: initializers the optimiser made from others (a Linear's weight transposed for
        # a MatMul is `val_<k>`), from the value_info's pkg.onnxscript.optimizer.folded_from
        "folded_from": {v.name: p.value for v in g.value_info for p in v.metadata_props
                        if p.key == "pkg.onnxscript.optimizer.folded_from"},
        "first_node_names": [n.name for n in g.node[:10]],
        "inputs": [{"name": v.name, "shape": _shape(v)} for v in g.input],
        "outputs": [{"name": v.name, "shape": _shape(v)} for v in g.output],
    }


def record(name: str) -> None:
    side = MODELS[name]
    model = build(name)
    x = torch.from_numpy(seeded_input([SAMPLE_BATCH, 3, side, side]))
    OUT.mkdir(parents=True, exist_ok=True)
    for exporter in EXPORTERS:
        start = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.onnx"
            try:
                export(model, x, exporter, path)
            except Exception as e:  # noqa: BLE001  (recorded, not fatal: the other models go on)
                print(f"{name} {exporter}: FAILED {type(e).__name__}: {e}", flush=True)
                continue
            onnx_model = onnx.load(str(path))  # external data (dynamo's .onnx.data) read in
        stripped = strip(onnx_model)
        onnx_model.metadata_props.add(key="netspec.fixture.stripped_tensors", value=str(stripped))
        target = OUT / f"{name}.{exporter}.onnx"
        onnx.save(onnx_model, str(target))
        doc = summary(onnx_model, exporter, side, stripped)
        doc["file_bytes"] = target.stat().st_size
        text = json.dumps(doc, indent=1)  # lists of numbers and strings on one line:
        text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
        (OUT / f"{name}.{exporter}.json").write_text(text + "\n")
        print(f"{name} {exporter}: {doc['nodes']} nodes, {doc['initializers']} initializers, "
              f"{stripped} stripped, {doc['file_bytes'] / 1e3:.0f} kB, {time.time() - start:.0f} s",
              flush=True)


if __name__ == "__main__":
    for model_name in sys.argv[1:] or MODELS:
        record(model_name)
