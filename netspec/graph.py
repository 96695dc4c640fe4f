"""The elaborated network: one node per layer instance, and its networkx DiGraph.

Elaboration creates the nodes (name, layer, inputs, source span, enclosing blocks); inference
fills in each node's output type, parameters and MACs.

Nodes are kept in creation order, which is a topological order (a node is created after its
inputs), so `check` walks the graph without importing networkx: that import alone costs about
120 ms, a quarter of a whole `netspec check` process. The networkx DiGraph (`Graph.nx`) is built
on first use by what runs graph algorithms: netspec.causes, to explain a merge that failed (the
branches' lowest common ancestor and their lengths). networkx stays a dependency for that, and
for what is coming (subgraph matching when importing ONNX models), not for the clean path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from netspec.diagnostics import Instance, Span
from netspec.layers.base import Layer, ParamSpec
from netspec.types import TensorType


def tensor_key(node: str, suffix: str) -> str:
    """The state_dict key of a node's tensor: `conv1.weight`; a tensor the network owns
    (`layer_scale = param(...)`) is the node itself, its suffix empty: `features.1.0.layer_scale`."""
    return f"{node}.{suffix}" if suffix else node


@dataclass(eq=False)
class BlockInstance:
    """One expansion of a block: `layer1.0` is an instance of `basic(64)`."""

    name: str            # the state_dict prefix of everything inside, e.g. "layer1.0"
    block: str           # the block's name, e.g. "basic"
    call: str            # how it was called, for the table, e.g. "basic(64, stride=2)"
    span: Span
    output: str | None = None  # the node that produces the block's result
    # the block's parameters as this instance has them (a tensor's: netspec.evaluate.Tensor), and
    # where each was written (netspec.evaluate.Origin): what netspec.torch_codegen names values by
    arguments: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> Instance:
        """This instance as a diagnostic shows where it happened."""
        return Instance(self.name, self.call, self.span)


@dataclass(eq=False)
class LayerNode:
    name: str                            # unique; parameters are `<name>.<suffix>`
    layer: Layer | None                  # None for a graph input
    inputs: list[str]                    # producer nodes, in argument order
    span: Span
    blocks: tuple[BlockInstance, ...] = ()   # enclosing block instances, outermost first
    declared: TensorType | None = None   # a graph input's declared type
    input_spans: list[Span] = field(default_factory=list)  # where each input is written
    # attributes whose value was written elsewhere (a block's call site, a binding): where
    written: dict[str, Span] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)  # attributes that are a network parameter given
                                                         # when compiling (--set): its name
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
        return sum(p.elements for p in self.params.values() if not p.trainable and p.persistent)


class Graph:
    """Layer nodes in creation order (a topological order), with a networkx view."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._nodes: dict[str, LayerNode] = {}
        self._order: list[str] = []  # names in creation order, to slice what a step added
        self._nx = None
        self.inputs: list[str] = []
        self.outputs: list[tuple[str, str]] = []   # (output name, producing node)
        self.parameters: dict[str, Any] = {}       # the network's parameters, as resolved
        self.parameter_origins: dict[str, Any] = {}  # where each was written (netspec.evaluate.Origin)

    def add(self, node: LayerNode) -> LayerNode:
        if node.name not in self._nodes:
            self._order.append(node.name)
        self._nodes[node.name] = node
        self._nx = None
        if node.layer is None:
            self.inputs.append(node.name)
        return node

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def node(self, name: str) -> LayerNode:
        return self._nodes[name]

    def __iter__(self) -> Iterator[LayerNode]:
        """Nodes in topological order: the order of creation, so source order where it can be."""
        return iter(list(self._nodes.values()))

    def added_since(self, mark: int) -> list[str]:
        """The names of the nodes created after the graph had `mark` of them (`len(graph)`)."""
        return self._order[mark:]

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nx(self):
        """The graph as a networkx.DiGraph: node names, with attribute `node` (the LayerNode)
        and edges from each input to its consumer."""
        if self._nx is None:
            import networkx

            graph = networkx.DiGraph()
            for node in self._nodes.values():
                graph.add_node(node.name, node=node)
                graph.add_edges_from((source, node.name) for source in node.inputs)
            self._nx = graph
        return self._nx

    def ancestors(self, names: list[str]) -> set[str]:
        """The given nodes and every node they depend on."""
        seen, stack = set(), list(names)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self._nodes[name].inputs)
        return seen

    def parameter_specs(self) -> dict[str, ParamSpec]:
        """Every parameter and buffer by its state_dict key, in order."""
        return {tensor_key(node.name, suffix): spec
                for node in self for suffix, spec in node.params.items()}

    def state_dict_specs(self) -> dict[str, ParamSpec]:
        """The parameters and buffers a state_dict holds: all but the constants kept out of it
        (`buffer(..., persistent=false)`)."""
        return {key: spec for key, spec in self.parameter_specs().items() if spec.persistent}

    def parameter_dtypes(self) -> dict[str, str]:
        """Every parameter's and buffer's dtype, by state_dict key: its ParamSpec's own
        (`num_batches_tracked` is i64, a spec's `param` and `buffer` theirs), else that of the
        data its layer multiplies, the layer's first input (f16 weights for an f16 conv)."""
        out: dict[str, str] = {}
        for node in self:
            data = self.node(node.inputs[0]).output if node.inputs else None
            for suffix, spec in node.params.items():
                out[tensor_key(node.name, suffix)] = spec.dtype or (data.dtype if data is not None else "f32")
        return out
