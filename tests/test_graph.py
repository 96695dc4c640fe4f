"""The graph's networkx view and its own traversal agree."""

from __future__ import annotations

import networkx as nx

from netspec.compiler import compile_file

SPEC = """\
network branches
input a: f32[N, 8, 16, 16]
input b: f32[N, 8, 16, 16]
left = a -> conv(8, 3, padding=1) -> relu
right = b -> conv(8, 1)
merged = (left + right) -> concat(a)
unused = b -> relu
output merged
"""


def test_networkx_view_matches_the_nodes():
    graph = compile_file("g.net", text=SPEC).graph
    view = graph.nx
    assert isinstance(view, nx.DiGraph) and nx.is_directed_acyclic_graph(view)
    assert set(view.nodes) == {node.name for node in graph}
    expected_edges = {(source, node.name) for node in graph for source in node.inputs}
    assert set(view.edges) == expected_edges
    assert all(view.nodes[node.name]["node"] is node for node in graph)
    # iteration order is a topological order of the networkx graph
    position = {node.name: i for i, node in enumerate(graph)}
    assert all(position[u] < position[v] for u, v in view.edges)


def test_ancestors_equal_networkx_ancestors():
    graph = compile_file("g.net", text=SPEC).graph
    view = graph.nx
    for node in graph:
        assert graph.ancestors([node.name]) == nx.ancestors(view, node.name) | {node.name}
    assert "unused" not in graph.ancestors([n for _, n in graph.outputs])
