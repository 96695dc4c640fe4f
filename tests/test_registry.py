"""The layer registry: one class per kind, every family module found without an edit elsewhere,
and every kind covered by what documents and tests it (the README's reference, the
differential fuzzer)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from netspec.layers import LAYERS
from netspec.layers.base import Layer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import differential_helpers as H  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Kinds the differential fuzzer does not generate, and why. Anything else it must generate.
NOT_GENERATED: dict[str, str] = {
    "identity": "checked against nn.Identity in test_parity_layers",
    "cast": "changes the dtype, which the fuzzer keeps f32; checked against torch's .to() in "
            "test_parity_layers and test_dtypes",
}


def test_a_second_class_of_the_same_kind_is_refused():
    with pytest.raises(TypeError, match="layer kind `relu` is defined twice"):
        class AnotherRelu(Layer):  # noqa: F841
            kind = "relu"
            family = "activation"
    assert LAYERS["relu"].__module__ == "netspec.layers.activation"


def test_a_layer_without_a_family_is_refused():
    with pytest.raises(TypeError, match="has no family"):
        class Orphan(Layer):  # noqa: F841
            kind = "orphan_kind_for_the_test"
    assert "orphan_kind_for_the_test" not in LAYERS


def test_every_family_module_is_imported_without_a_list():
    families = {p.stem for p in (ROOT / "netspec" / "layers").glob("*.py")} - {"__init__", "base"}
    assert {cls.__module__.rsplit(".", 1)[1] for cls in LAYERS.values()} == families
    init = (ROOT / "netspec" / "layers" / "__init__.py").read_text(encoding="utf-8")
    assert not any(re.search(rf"\b{family}\b", init) for family in families)


def test_the_differential_fuzzer_generates_every_layer_kind():
    seen: set[str] = set()

    @settings(max_examples=400, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(net=H.networks())
    def collect(net):
        for statement in net.statements:
            seen.update(layer.kind for layer in getattr(statement, "layers", []))
            if isinstance(statement, H.Merge):
                seen.add("add" if statement.kind == "add" else statement.kind)
    collect()
    missing = set(LAYERS) - seen - set(NOT_GENERATED)
    assert not missing, f"the differential fuzzer never generates {sorted(missing)}: add them to " \
                        "tests/differential_helpers.py, or to NOT_GENERATED with the reason"
    assert not set(NOT_GENERATED) - set(LAYERS), "NOT_GENERATED names kinds that no longer exist"
