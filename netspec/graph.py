"""The elaborated network: a networkx DiGraph with one node per layer instance.

Elaboration creates the nodes (name, layer, inputs, source span, enclosing blocks); inference
fills in each node's output type, parameters and MACs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import networkx as nx

from netspec.diagnostics import Span
from netspec.layers.base import Layer, ParamSpec
from netspec.types import TensorType


@dataclass(eq=False)
class BlockInstance:
    """One expansion of a block: `layer1.0` is an instance of `basic(64)`."""

    name: str            # the state_dict prefix of everything inside, e.g. "layer1.0"
    block: str           # the block's name, e.g. "basic"
    call: str            # how it was called, for the table, e.g. "basic(64, stride=2)"
    span: Span
    output: str | None = None  # the node that produces the block's result


@dataclass(eq=False)
class LayerNode:
    name: str                            # unique; parameters are `<name>.<suffix>`
    layer: Layer | None                  # None for a graph input
    inputs: list[str]                    # producer nodes, in argument order
    span: Span
    blocks: tuple[BlockInstance, ...] = ()   # enclosing block instances, outermost first
    declared: TensorType | None = None   # a graph input's declared type
    # filled in by netspec.infer
    output: TensorType | None = None
    params: dict[str, ParamSpec] = field(default_factory=dict)
    macs: int = 0
    summary: str = ""

    @property
    def kind(self) -> str:
        return self.layer.kind if self.layer is not None else "input"

    @property
    def depth(self) -> int:
        return len(self.blocks)

    @property
    def trainable(self) -> int:
        return sum(p.elements for p in self.params.values() if p.trainable)

    @property
    def buffers(self) -> int:
        return sum(p.elements for p in self.params.values() if not p.trainable)


class Graph:
    """Layer nodes in creation order (a topological order) over a networkx DiGraph."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nx = nx.DiGraph()
        self.inputs: list[str] = []
        self.outputs: list[tuple[str, str]] = []   # (output name, producing node)
        self.parameters: dict[str, Any] = {}       # the network's parameters, as resolved

    def add(self, node: LayerNode) -> LayerNode:
        self.nx.add_node(node.name, node=node, order=len(self.nx))
        for source in node.inputs:
            self.nx.add_edge(source, node.name)
        if node.layer is None:
            self.inputs.append(node.name)
        return node

    def __contains__(self, name: str) -> bool:
        return name in self.nx

    def node(self, name: str) -> LayerNode:
        return self.nx.nodes[name]["node"]

    def __iter__(self) -> Iterator[LayerNode]:
        """Nodes in topological order, ties broken by creation order (so, source order)."""
        order = nx.lexicographical_topological_sort(self.nx, key=lambda n: self.nx.nodes[n]["order"])
        return (self.nx.nodes[n]["node"] for n in order)

    def __len__(self) -> int:
        return len(self.nx)

    def parameter_specs(self) -> dict[str, ParamSpec]:
        """Every parameter and buffer by its state_dict key, in order."""
        return {f"{node.name}.{suffix}": spec
                for node in self for suffix, spec in node.params.items()}
