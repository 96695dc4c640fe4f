"""Shape inference: visit the graph in topological order and apply each layer's own rules.

Every node gets its output type, its parameters and buffers, its MACs and its table summary.
A node whose input failed is skipped silently (its cause is already reported), so independent
errors are all reported in one run.
"""

from __future__ import annotations

from netspec.diagnostics import Diagnostics
from netspec.graph import Graph
from netspec.types import MAX_SIZE, ShapeError


def infer(graph: Graph, diagnostics: Diagnostics) -> Graph:
    for node in graph:
        if node.layer is None:
            node.output = node.declared
            node.summary = f"input {node.declared.layout}" if node.declared else "input"
            continue
        inputs = [graph.node(name).output for name in node.inputs]
        if any(t is None for t in inputs):
            continue
        try:  # the layer's dtype rule, then its shape rule; the dtype rule decides the dtype
            dtype = node.layer.infer_dtype(inputs, node.inputs)
            node.output = node.layer.infer(inputs).with_dtype(dtype)
            if any(isinstance(d, int) and d > MAX_SIZE for d in node.output.shape):
                raise ShapeError(f"the output {node.output} has a size over 2^63 - 1",
                                 rule="sizes fit ONNX's 64-bit dimensions")
            node.params = node.layer.parameters(inputs, node.output)
            node.macs = node.layer.macs(inputs, node.output)
            node.summary = node.layer.describe(inputs)
        except OverflowError:  # float arithmetic on sizes past 1.8e308
            node.output = None
            diagnostics.error(f"{node.kind}: the sizes are too large to compute", node.span,
                              layer=node.name, rule="sizes fit ONNX's 64-bit dimensions")
        except ShapeError as exc:
            node.output = None
            shapes = ", ".join(str(t) for t in inputs)
            diagnostics.error(f"{node.kind}: {exc.message}", node.span, layer=node.name,
                              rule=exc.rule, hint=exc.hint,
                              notes=[f"input shape{'s' if len(inputs) > 1 else ''}: {shapes}"])
    return graph
