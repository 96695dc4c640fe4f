"""Every spec with torchvision reference data (tests/data/<name>_state_dict.json, recorded once
from the real torchvision 0.29.1, see each file's "comment" and "script") equals that model:
parameters, buffers, MACs, output shape, and every state_dict key with its shape, so a
torchvision state_dict loads into the spec's graph without renaming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netspec.compiler import compile_file
from netspec.report import totals

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = sorted((ROOT / "tests" / "data").glob("*_state_dict.json"))


def reference_name(path: Path) -> str:
    return path.name.removesuffix("_state_dict.json")


@pytest.fixture(scope="module", params=REFERENCES, ids=reference_name)
def model(request):
    reference = json.loads(request.param.read_text(encoding="utf-8"))
    spec = ROOT / "specs" / f"{reference_name(request.param)}.net"
    assert spec.exists(), f"no spec for {reference['model']}: expected {spec.relative_to(ROOT)}"
    result = compile_file(spec)
    assert result.ok, [d.message for d in result.diagnostics.errors]
    return reference, result.graph


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
    ours = {name: list(spec.shape) for name, spec in graph.parameter_specs().items()}
    theirs = reference["state_dict"]
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    assert not missing and not extra, f"missing: {missing[:10]} extra: {extra[:10]}"
    wrong = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
    assert not wrong, wrong


@pytest.mark.parametrize("spec", sorted((ROOT / "specs").glob("*.net")), ids=lambda p: p.stem)
def test_every_spec_starts_with_a_comment_saying_what_it_is(spec):
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 20
