"""Every torchvision model with reference data (tests/data/<name>_state_dict.json, recorded from
the real torchvision 0.29.1 by tests/reference/dump_torchvision.py, see each file's "comment")
has a spec, specs/<name>.net, that equals it: the input size of its DEFAULT weights,
parameters, buffers, MACs, output shape, and every state_dict key with its shape, so a
torchvision state_dict loads into the spec's graph without renaming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bundled_specs import SPECS, networks
from netspec.compiler import compile_file
from netspec.report import totals

DATA = Path(__file__).resolve().parent / "data"
REFERENCES = sorted(DATA.glob("*_state_dict.json"))


def reference_name(path: Path) -> str:
    return path.name.removesuffix("_state_dict.json")


def test_every_recorded_model_has_its_spec():
    recorded = {reference_name(p) for p in REFERENCES}
    # the 78 convolutional models (issue 12), the five ViTs, the six Swins and MaxViT (issue 13),
    # the three video Swins (swin3d_t, _s, _b)
    assert len(recorded) == 93, "tests/reference/dump_torchvision.py records 93 models"
    assert sorted(recorded - {p.stem for p in networks()}) == []


@pytest.fixture(scope="module", params=REFERENCES, ids=reference_name)
def model(request):
    reference = json.loads(request.param.read_text(encoding="utf-8"))
    spec = SPECS / f"{reference_name(request.param)}.net"
    assert spec.exists(), f"no spec for {reference['model']}: expected {spec}"
    result = compile_file(spec)
    assert result.ok, [d.message for d in result.diagnostics.errors]
    return reference, result.graph


def test_input_is_the_default_weights_resolution(model):
    reference, graph = model
    (node,) = graph.inputs
    assert list(graph.node(node).output.shape[1:]) == reference["input_shape"][1:]


def test_parameter_and_buffer_counts(model):
    reference, graph = model
    t = totals(graph)
    assert (t.params, t.buffers) == (reference["params"], reference["buffers"])


def test_macs(model):
    reference, graph = model
    assert totals(graph).macs == reference["macs"]


def test_output_shape(model):
    reference, graph = model
    (_, node), = graph.outputs
    assert list(graph.node(node).output.shape[1:]) == reference["output_shape"][1:]


def test_state_dict_keys_and_shapes(model):
    reference, graph = model
    ours = {name: list(spec.shape) for name, spec in graph.state_dict_specs().items()}
    theirs = reference["state_dict"]
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    assert not missing and not extra, f"missing: {missing[:10]} extra: {extra[:10]}"
    wrong = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
    assert not wrong, wrong


@pytest.mark.parametrize("spec", networks(), ids=lambda p: p.stem)
def test_every_spec_starts_with_a_comment_saying_what_it_is(spec):
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 20
