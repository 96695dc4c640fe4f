"""Conditionals, comparisons, boolean operators and scalar functions."""

from __future__ import annotations

import textwrap

import pytest

from netspec.compiler import compile_file
from netspec.functions import make_divisible

HEAD = "network t\ninput x: f32[N, 8, 16, 16]\n"


def compile_text(body: str, **kw):
    return compile_file("t.net", text=HEAD + textwrap.dedent(body), **kw)


def names(result):
    return [n.name for n in result.graph if n.layer is not None]


def messages(result):
    return [d.message for d in result.diagnostics.errors]


RESIDUAL = """\
    block unit(t, planes, stride = 1, down = false) {
        y = t -> conv1: conv(planes, 3, stride=stride, padding=1, bias=false) -> bn1: batchnorm
        downsample = (t -> conv(planes, 1, stride=stride, bias=false) -> batchnorm) if down else t
        return relu(y + downsample)
    }
    """


def test_the_chosen_branch_keeps_the_binding_name():
    result = compile_text(RESIDUAL + "y = x -> unit(16, stride=2, down=true) -> unit(16)\noutput y\n")
    assert result.ok, messages(result)
    assert names(result) == ["y.0.conv1", "y.0.bn1", "y.0.downsample.0", "y.0.downsample.1",
                             "y.0.add", "y.0.relu", "y.1.conv1", "y.1.bn1", "y.1.add", "y.1.relu"]
    assert result.graph.node("y.1.relu").output.shape == ("N", 16, 8, 8)


def test_only_the_chosen_branch_is_evaluated():
    # the other branch would be a shape error (linear on a 4-D map) if it were built
    result = compile_text("y = (x -> relu) if 2 > 1 else (x -> linear(3))\noutput y\n")
    assert result.ok, messages(result)
    assert names(result) == ["y"]


@pytest.mark.parametrize("condition, expected", [
    ("1 == 1", True), ("1 != 1", False), ("2 < 3", True), ("3 <= 2", False), ("2 > 1", True),
    ("1 >= 1", True), ('"a" == "a"', True), ("true and false", False), ("true or false", True),
    ("not false", True), ("not 1 == 2 and 2 == 2", True), ("1 == 2 or 3 > 2 and true", True),
])
def test_conditions(condition, expected):
    result = compile_text(f"k = 5 if {condition} else 3\ny = x -> conv(4, k, padding=k // 2)\noutput y\n")
    assert result.ok, messages(result)
    assert result.graph.node("y").layer.kernel == (5 if expected else 3)


def test_short_circuit_skips_an_error():
    result = compile_text("k = 3 if false and undefined_name else 1\ny = x -> conv(4, k)\noutput y\n")
    assert result.ok, messages(result)


def test_a_condition_must_be_boolean():
    result = compile_text("k = 3 if 1 else 1\ny = x -> conv(4, k)\noutput y\n")
    (error,) = result.diagnostics.errors
    assert "must be true or false" in error.message and error.span.line == 3


def test_ordering_needs_numbers_and_tensors_cannot_be_compared():
    result = compile_text('k = 3 if "a" < 2 else 1\nj = 3 if x == x else 1\ny = x -> conv(4, k)\noutput y\n')
    assert any("cannot order" in m for m in messages(result))
    assert any("cannot compare tensors" in m for m in messages(result))


def test_a_condition_may_continue_on_the_next_line():
    result = compile_text("k = 3 if 1 == 1 and\n    2 == 2 else 1\ny = x -> conv(4, k)\noutput y\n")
    assert result.ok, messages(result)


@pytest.mark.parametrize("value, divisor, expected", [
    # torchvision's _make_divisible, worked by hand: max(d, int(v + d/2) // d * d), +d if < 0.9 v
    (32, 8, 32), (18, 8, 24), (72 / 4, 8, 24), (96 // 4, 8, 24), (3, 8, 8), (576 // 4, 8, 144),
    (240 // 4, 8, 64), (37.5, 8, 40), (100, 16, 96),
])
def test_make_divisible(value, divisor, expected):
    assert make_divisible(value, divisor) == expected


def test_functions_in_a_spec():
    result = compile_text("c = make_divisible(72 // 4, 8)\nk = max(1, min(3, 7))\nh = int(2.9) + ceil(0.5) + floor(1.5)\n"
                          "y = x -> conv(c, k) -> conv(h, 1)\noutput y\n")
    assert result.ok, messages(result)
    assert result.graph.node("y.0").output.shape[1] == 24
    assert result.graph.node("y.0").layer.kernel == 3
    assert result.graph.node("y.1").output.shape[1] == 4


def test_function_errors_are_located():
    result = compile_text("c = make_divisible(16, 0)\nd = min(x, 3)\ny = x -> relu\noutput y\n")
    errors = result.diagnostics.errors
    assert any("`make_divisible`" in e.message and e.span.line == 3 for e in errors)
    assert any("plain values" in e.message and e.span.line == 4 for e in errors)


def test_unknown_call_suggests_a_function():
    result = compile_text("c = make_divisable(20, 8)\ny = x -> relu\noutput y\n")
    (error,) = result.diagnostics.errors
    assert error.hint == "did you mean `make_divisible`?"


def test_returned_chain_is_indexed_even_with_one_layer():
    result = compile_text("block one(t) {\n    return t -> conv(4, 1)\n}\ny = x -> one\noutput y\n")
    assert names(result) == ["y.0"]


def test_a_returned_conditional_keeps_the_sequential_naming():
    result = compile_text(
        "block act(t, hs) {\n    return (t -> conv(4, 1) -> hardswish) if hs else (t -> conv(4, 1) -> relu)\n}\n"
        "y = x -> act(true) -> act(false)\noutput y\n")
    assert result.ok, messages(result)
    assert names(result) == ["y.0.0", "y.0.1", "y.1.0", "y.1.1"]
    assert [n.kind for n in result.graph if n.layer is not None] == ["conv", "hardswish", "conv", "relu"]


def test_repeat_index_in_labels_and_arguments():
    result = compile_text("y = x -> repeat(3, i) { layer{i + 1}: conv(4 + i, 1) } -> b: repeat(2, j) { conv(8, 3, "
                          "padding=j + 1, dilation=j + 1) }\noutput y\n")
    assert result.ok, messages(result)
    assert names(result) == ["layer1", "layer2", "layer3", "b.0", "b.1"]
    assert [result.graph.node(n).output.shape[1] for n in ("layer1", "layer2", "layer3")] == [4, 5, 6]
    assert result.graph.node("b.1").layer.dilation == 2


def test_repeat_index_is_local_to_the_body():
    result = compile_text("y = x -> repeat(2, i) { relu }\nz = x -> conv(i, 1)\noutput y, z\n")
    assert any("`i` is not defined" in m for m in messages(result))


def test_label_index_must_be_an_integer_or_string():
    result = compile_text("y = x -> repeat(2, i) { l{1.5}: relu }\noutput y\n")
    assert any("must be an integer or a string" in m for m in messages(result))
