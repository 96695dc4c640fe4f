"""Large and deeply nested specs check through the Python API (not only the CLI, which raises
the recursion limit itself): no RecursionError, no traceback, linear cost."""

from __future__ import annotations

import sys

from netspec.compiler import compile_file

HEAD = "network s\ninput x: f32[N, 4, 8, 8]\n"


def ok(text: str):
    result = compile_file("s.net", text=HEAD + text)
    assert result.ok, [d.message for d in result.diagnostics.errors][:3]
    return result


def test_long_sum_and_deep_parentheses():
    ok("y = " + " + ".join(["x"] * 2000) + "\noutput y\n")
    ok("y = " + "(" * 500 + "x" + ")" * 500 + " -> relu\noutput y\n")


def test_blocks_nested_200_deep():
    blocks = "block b0(t) {\n    return t -> relu\n}\n" + "".join(
        f"block b{i}(t) {{\n    return t -> b{i - 1}\n}}\n" for i in range(1, 201))
    result = ok(blocks + "y = x -> b200\noutput y\n")
    (node,) = [n for n in result.graph if n.layer is not None]
    # b200 .. b0 are 201 nested instances; each returned chain adds `.0`
    assert node.depth == 201 and node.name == "y" + ".0" * 201


def test_ten_thousand_layers_and_bindings():
    result = ok("y = x\n" + "".join("    -> relu\n" for _ in range(10_000)) + "output y\n")
    assert len(result.graph) == 10_001
    chain = "b0 = x -> relu\n" + "".join(f"b{i} = b{i - 1} -> relu\n" for i in range(1, 10_000))
    result = ok(chain + "output b9999\n")
    assert result.graph.outputs == [("b9999", "b9999")]


def test_recursion_limit_is_restored():
    before = sys.getrecursionlimit()
    ok("y = " + " + ".join(["x"] * 50) + "\noutput y\n")
    assert sys.getrecursionlimit() == before


def test_sizes_near_two_to_the_62():
    big = 2 ** 62
    result = compile_file("s.net", text=f"network s\ninput x: f32[N, {big}]\ny = x -> linear(2)\noutput y\n")
    assert result.ok
    node = result.graph.node("y")
    assert node.trainable == 2 * big + 2 and node.macs == 2 * big  # exact: Python integers
