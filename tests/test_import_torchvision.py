"""`netspec import` of real torchvision models, exported by both torch.onnx exporters.

The models are the recorded fixtures of tests/data/onnx/ (graphs with their weights stripped,
refilled with seeded values by tests/onnx_fixtures.py; tests/reference/record_onnx.py makes
them). Each imports into a spec that checks clean, and re-exports, with the imported weights, to
a model whose onnxruntime output equals the fixture's within 1e-4 of the output's scale. The
TorchScript exporter keeps torchvision's names, so the imported spec's state_dict is
torchvision's own, key for key and shape for shape (tests/data/<model>_state_dict.json); the
dynamo exporter folds each batch norm into its convolution, so its spec has biased convolutions
and no batch norm there. An imported ResNet-50 reads like a hand-written one: a bottleneck block,
four stages, at most twice the length of specs/resnet50.net. ViT-B/16's attention, whatever
subgraph each exporter makes of nn.MultiheadAttention, is one `multihead_attention(12)` layer
per encoder layer, under torchvision's names.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from onnx_fixtures import load_fixture

from netspec import runtime
from netspec.compiler import compile_file
from netspec.importer import import_model

ROOT = Path(__file__).resolve().parent.parent
CNNS = ["resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "densenet121"]
# the models each exporter's fixture imports from
MODELS = {"torchscript": CNNS + ["convnext_tiny", "vit_b_16"], "dynamo": CNNS + ["convnext_tiny", "vit_b_16"]}
CASES = [(m, e) for e in ("torchscript", "dynamo") for m in MODELS[e]]


@lru_cache(maxsize=None)
def _fixture(model: str, exporter: str):
    return load_fixture(model, exporter, seed=3)


@lru_cache(maxsize=None)
def _imported(model: str, exporter: str):
    imported = import_model(_fixture(model, exporter), model)
    compilation = compile_file(f"{model}.net", text=imported.text)
    assert compilation.ok, [d.message for d in compilation.diagnostics.errors()]
    assert not [d.message for d in compilation.diagnostics.items if d.severity == "warning"]
    return imported, compilation


@pytest.mark.parametrize("model,exporter", CASES, ids=[f"{m}-{e}" for m, e in CASES])
def test_imports_and_runs_as_the_original(model: str, exporter: str):
    from netspec.api import Network

    imported, compilation = _imported(model, exporter)
    net = Network(compilation)
    again = net.lowered(weights=imported.weights)
    original = _fixture(model, exporter)
    assert [i.name for i in again.graph.input] == [i.name for i in original.graph.input] == ["image"]
    assert [o.name for o in again.graph.output] == ["logits"]
    batch = np.random.default_rng(5).standard_normal((2, 3, 224, 224)).astype(np.float32)
    (expected,) = runtime.run(runtime.session(original), {"image": batch})
    (got,) = runtime.run(runtime.session(again), {"image": batch})
    scale = float(np.abs(expected).max())
    assert scale > 0 and float(np.abs(expected - got).max()) <= 1e-4 * scale


@pytest.mark.parametrize("model", MODELS["torchscript"])
def test_torchscript_names_are_torchvision_state_dict(model: str):
    """A torchvision state_dict loads into the imported spec unchanged: the same keys (buffers
    and num_batches_tracked included) with the same shapes."""
    _, compilation = _imported(model, "torchscript")
    reference = json.loads((ROOT / "tests" / "data" / f"{model}_state_dict.json").read_text())["state_dict"]
    ours = {name: list(spec.shape) for name, spec in compilation.graph.state_dict_specs().items()}
    assert ours == reference


@pytest.mark.parametrize("model", MODELS["dynamo"])
def test_dynamo_folds_batch_norms_into_biased_convolutions(model: str):
    """The dynamo exporter's convolutions carry their batch norm folded in: the imported spec's
    parameters are torchvision's convolution and linear weights under their own names, each
    convolution with a bias (`layer1.0.conv1.bias`), and the batch norms that follow no
    convolution (DenseNet's) keep theirs."""
    imported, compilation = _imported(model, "dynamo")
    reference = json.loads((ROOT / "tests" / "data" / f"{model}_state_dict.json").read_text())["state_dict"]
    ours = compilation.graph.state_dict_specs()
    weights = [k for k in ours if k.endswith(".weight") and len(ours[k].shape) > 1]
    assert weights and all(reference[k] == list(ours[k].shape) for k in weights)
    assert all(k in reference or k.endswith(".bias") for k in ours)


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_resnet50_reads_like_the_hand_written_one(exporter: str):
    """A bottleneck block (with and without the projection shortcut) and four stages, not 175
    lines: at most twice the length of specs/resnet50.net."""
    imported, _ = _imported("resnet50", exporter)
    lines = imported.text.splitlines()
    assert len(lines) <= 2 * len((ROOT / "specs" / "resnet50.net").read_text().splitlines())
    stages = [line for line in lines if line.startswith("layer")]
    assert [line.split(" = ")[0] for line in stages] == ["layer1", "layer2", "layer3", "layer4"]
    assert "repeat(5) {" in imported.text  # layer3's five blocks after its first
    assert sum(line.startswith("block ") for line in lines) == 3  # with, without the shortcut; a stage
    if exporter == "dynamo":  # its metadata gives the modules' classes: the blocks are named after them
        assert "block bottleneck(x, out_channels, stride) {" in lines
        assert "block bottleneck_2(x, out_channels) {" in lines


def test_blocks_are_named_after_the_modules_class_where_the_model_says():
    """The dynamo exporter's class_hierarchy metadata names the blocks (InvertedResidual,
    SqueezeExcitation, MBConv); containers (Sequential) say nothing and are not used."""
    names = {m: [line.split("(")[0][len("block "):] for line in _imported(m, "dynamo")[0].text.splitlines()
                 if line.startswith("block ")] for m in ("mobilenet_v3_small", "efficientnet_b0")}
    assert {"squeeze_excitation", "inverted_residual"} <= set(names["mobilenet_v3_small"])
    assert {"squeeze_excitation", "mbconv"} <= set(names["efficientnet_b0"])
    assert not any(n.startswith("sequential") for ns in names.values() for n in ns)


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_vit_attention_is_one_multihead_attention_layer(exporter: str):
    """Each encoder layer's self-attention (TorchScript's run-time shape arithmetic, the dynamo
    exporter's constant reshapes and split scale) is one `multihead_attention(12)` with
    torchvision's in_proj/out_proj parameters; the MLP is linear, gelu, linear."""
    imported, compilation = _imported("vit_b_16", exporter)
    ours = compilation.graph.state_dict_specs()
    for i in range(12):
        prefix = f"encoder.layers.encoder_layer_{i}.self_attention."
        assert list(ours[prefix + "in_proj_weight"].shape) == [2304, 768]
        assert list(ours[prefix + "out_proj.weight"].shape) == [768, 768]
    kinds = [node.layer.kind for node in compilation.graph if node.layer is not None]
    assert "multihead_attention(12)" in imported.text
    assert kinds.count("multihead_attention") == 12 and kinds.count("gelu") == 12
    assert imported.text.count("permute(") == 1  # the patch embedding's: none left around the attention
