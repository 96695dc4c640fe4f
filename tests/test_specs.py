"""The bundled specs: every spec under specs/ checks cleanly, and the classic networks have
exactly their published sizes and torchvision's parameter names.

tests/data/{alexnet,vgg16}_state_dict.json hold torchvision's state_dict keys and shapes
(recorded from torchvision by tests/reference/dump_torchvision.py; see each file's `comment`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundled_specs import libraries, networks

from netspec.compiler import compile_file
from netspec.report import totals

ROOT = Path(__file__).resolve().parent.parent
SPECS = networks()  # every network under specs/, the libraries under specs/lib/ excluded
DATA = Path(__file__).resolve().parent / "data"


def compiled(name: str):
    result = compile_file(ROOT / "specs" / f"{name}.net")
    assert result.ok, [d.message for d in result.diagnostics.items]
    return result.graph


def test_the_classic_specs_are_there():
    assert {"lenet5", "alexnet", "vgg16"} <= {p.stem for p in SPECS}


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(ROOT / "specs")) for p in SPECS])
def test_every_spec_checks_without_errors(path):
    result = compile_file(path)
    errors = [f"{d.span.location() if d.span else ''} {d.message}"
              for d in result.diagnostics.items if d.severity == "error"]
    assert errors == []
    assert result.ok
    graph = result.graph
    assert graph.outputs, "a spec names at least one output"
    for node in graph:
        assert node.output is not None, node.name
    assert totals(graph).layers == sum(1 for n in graph if n.kind != "input")


def test_every_library_is_used_and_says_what_it_holds():
    """A library under specs/lib/ is shared by a family's networks: at least one uses it."""
    for library in libraries():
        assert library.read_text(encoding="utf-8").startswith("# "), library
        quoted = f'"{library.relative_to(library.parent.parent).as_posix()}"'  # "lib/resnet.net"
        users = [p for p in networks() if quoted in p.read_text(encoding="utf-8")]
        assert users, f"no network under specs/ has `use {quoted}`"


@pytest.mark.parametrize("name, params, macs", [
    # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850 parameters
    ("lenet5", 61_706, None),
    # torchvision: AlexNet 61.1 M params, 0.71 GFLOPS; VGG16 138.4 M, 15.47 GFLOPS (which are MACs)
    ("alexnet", 61_100_840, 714_188_480),
    ("vgg16", 138_357_544, 15_470_264_320),
])
def test_published_totals(name, params, macs):
    t = totals(compiled(name))
    assert t.params == params
    assert t.buffers == 0
    if macs is not None:
        assert t.macs == macs


def test_lenet5_by_hand():
    g = compiled("lenet5")
    t = totals(g)
    # conv 6x28x28x25 + conv 16x10x10x150 + 400x120 + 120x84 + 84x10
    assert t.macs == 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert g.outputs[0][0] == "logits"
    assert g.node(g.outputs[0][1]).output.shape == ("N", 10)
    assert {k: v.shape for k, v in g.parameter_specs().items()} == {
        "features.0.weight": (6, 1, 5, 5), "features.0.bias": (6,),
        "features.3.weight": (16, 6, 5, 5), "features.3.bias": (16,),
        "logits.1.weight": (120, 400), "logits.1.bias": (120,),
        "logits.3.weight": (84, 120), "logits.3.bias": (84,),
        "logits.5.weight": (10, 84), "logits.5.bias": (10,),
    }


@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_parameter_names_and_shapes_equal_torchvision_state_dict(name):
    reference = json.loads((DATA / f"{name}_state_dict.json").read_text(encoding="utf-8"))
    expected = {k: tuple(v) for k, v in reference["state_dict"].items()}
    specs = compiled(name).parameter_specs()
    assert list(specs) == list(expected)  # same names, same (state_dict) order
    assert {k: v.shape for k, v in specs.items()} == expected
    assert all(v.trainable for v in specs.values())
    assert sum(v.elements for v in specs.values()) == reference["params"]


@pytest.mark.parametrize("name, last_features, pooled, flat", [
    ("alexnet", "features.12", ("N", 256, 6, 6), 256 * 6 * 6),
    ("vgg16", "features.30", ("N", 512, 7, 7), 512 * 7 * 7),
])
def test_classifier_output_and_feature_map(name, last_features, pooled, flat):
    g = compiled(name)
    assert g.outputs == [("classifier", "classifier.6")]
    assert g.node("classifier.6").output.shape == ("N", 1000)
    assert g.node(last_features).kind == "maxpool"
    assert g.node(last_features).output.shape == pooled  # 224 ends as 6x6 (AlexNet) and 7x7 (VGG)
    assert g.node("avgpool").output.shape == pooled
    assert g.node("flat").output.shape == ("N", flat)


def test_alexnet_and_vgg_take_other_classes_and_sizes():
    # the adaptive pool makes the classifier independent of the input size
    result = compile_file(ROOT / "specs" / "vgg16.net", params={"classes": 10},
                          inputs={"image": [1, 3, 64, 64]})
    assert result.ok
    g = result.graph
    assert g.node("features.30").output.shape == (1, 512, 2, 2)
    assert g.node("classifier.6").params["weight"].shape == (10, 4096)
    assert totals(g).params == 138_357_544 - 990 * 4096 - 990
