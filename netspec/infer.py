"""Shape inference: visit the graph in topological order and apply each layer's own rules.

Every node gets its output type, its parameters and buffers, its MACs and its table summary.
A node whose input failed is skipped silently (its cause is already reported), so independent
errors are all reported in one run. `propagate` is the pure core (types in, types out, the
failures), which `netspec.causes` reruns on changed inputs to find where a mistake is.
"""

from __future__ import annotations

from netspec.diagnostics import Diagnostic, Diagnostics, Label
from netspec.graph import Graph, LayerNode
from netspec.layers.base import show_value
from netspec.layers.rearrange import HERE
from netspec.opsets import DEFAULT_OPSET, MAX_OPSET
from netspec.types import MAX_SIZE, Layout, ShapeError, TensorType


class Failure:
    """A layer whose rule refused its inputs: what it was given, why, and what was reported."""

    __slots__ = ("node", "inputs", "error", "diagnostic")

    def __init__(self, node: LayerNode, inputs: list[TensorType], error: ShapeError) -> None:
        self.node, self.inputs, self.error = node, inputs, error
        self.diagnostic: Diagnostic | None = None


def propagate(graph: Graph, declared: dict[str, TensorType] | None = None
              ) -> tuple[dict[str, TensorType | None], list[Failure]]:
    """Every node's output type (None where it or an input failed) and the failures, for the
    graph inputs' declared types or the `declared` ones given instead."""
    declared = declared or {}
    types: dict[str, TensorType | None] = {}
    failures: list[Failure] = []
    for node in graph:
        if node.layer is None:
            types[node.name] = declared.get(node.name, node.declared)
            continue
        inputs = [types[name] for name in node.inputs]
        types[node.name] = None
        if any(t is None for t in inputs):
            continue
        try:
            types[node.name] = output_type(node, inputs)
        except ShapeError as exc:
            failures.append(Failure(node, inputs, exc))
    return types, failures


def output_type(node: LayerNode, inputs: list[TensorType]) -> TensorType:
    """One layer's output type: its dtype rule, then its shape rule (the dtype rule decides the
    dtype). Raises ShapeError (DTypeError) when a rule refuses its inputs."""
    if not node.layer.unlaid_inputs:
        for name, t in zip(node.inputs, inputs):
            if t.layout.is_unlaid:
                raise ShapeError(f"takes an activation; `{name}` {t} is a tensor of the network's own (or "
                                 f"made from them alone), with no layout",
                                 rule="a param or a buffer meets activations in `+` and `*` (and passes "
                                      "through cast and element-wise activations)",
                                 hint=f"combine it with an activation first: `x * {name.rsplit('.', 1)[-1]}`")
    try:
        dtype = node.layer.infer_dtype(inputs, node.inputs)
        output = node.layer.infer(inputs).with_dtype(dtype)
    except OverflowError:  # float arithmetic on sizes past 1.8e308
        raise ShapeError("the sizes are too large to compute", rule="sizes fit ONNX's 64-bit dimensions") from None
    if any(isinstance(d, int) and d > MAX_SIZE for d in output.shape):
        raise ShapeError(f"the output {output} has a size over 2^63 - 1", rule="sizes fit ONNX's 64-bit dimensions")
    if output.layout.origin == HERE:  # a reshape that left axes without a role: say which, for later errors
        where = f"the {node.kind} `{node.name}` (line {node.span.line})"
        output = TensorType(output.dtype, output.shape, Layout(output.layout.axes, where))
    return output


def infer(graph: Graph, diagnostics: Diagnostics) -> list[Failure]:
    """Type every node of `graph` in place and report each failure; returns the failures."""
    types, failures = propagate(graph)
    for node in graph:
        node.output = types[node.name]
        if node.layer is None:
            node.summary = f"input {node.declared.layout}" if node.declared else "input"
        elif node.output is not None:
            inputs = [types[name] for name in node.inputs]
            try:
                node.params = node.layer.parameters(inputs, node.output)
                node.macs = node.layer.macs(inputs, node.output)
                node.summary = node.layer.describe(inputs)
            except OverflowError:
                node.output = None
                failures.append(Failure(node, inputs, ShapeError(
                    "the sizes are too large to compute", rule="sizes fit ONNX's 64-bit dimensions")))
                continue
            except ShapeError as exc:  # a rule that only its parameters state (the channels they need)
                node.output = None
                failures.append(Failure(node, inputs, exc))
                continue
            _warn_if_unexportable(node, inputs, diagnostics)
            _warn_if_stride_skips_the_input(node, inputs, diagnostics)
    for failure in failures:
        failure.diagnostic = diagnostics.add(report(failure))
    return failures


def _warn_if_stride_skips_the_input(node: LayerNode, inputs: list[TensorType],
                                    diagnostics: Diagnostics) -> None:
    """A window whose stride is larger than its input: one window fits, and most of the input
    is never read. Legal, and almost always a mistake (a block's arguments in the wrong order
    giving it a stride of 128)."""
    geometry = node.layer.geometry(inputs)
    if not isinstance(geometry, list) or not inputs[0].layout.spatial:
        return
    t = inputs[0]
    for axis, size, (kind, window, stride, _) in zip(t.layout.spatial, t.spatial, geometry):
        if kind != "window" or not isinstance(size, int) or stride <= size or window >= size:
            continue
        role = t.layout.role(axis)
        span, labels = node.span, []
        if "stride" in node.written:  # the stride came from a call: that is where to look
            span, labels = node.written["stride"], [Label(node.span, f"the stride of {node.kind} here")]
        diagnostics.add(Diagnostic(
            f"{node.kind}: stride {stride} is larger than the input's {role} ({size}): one window "
            f"fits and reads {window} of the {size}, the rest is never read", span, "warning",
            layer=node.name, rule="a window's stride is at most the size it slides over",
            hint="check the stride (a block's arguments in the wrong order?)", labels=labels,
            chain=tuple(b.describe() for b in node.blocks)))
        return


# The rule of the warning that `netspec export` would refuse a layer: the commands that lower
# the network drop it, their lowering saying it at the opset chosen.
UNEXPORTABLE_RULE = "ONNX can express every exported layer exactly"


def _warn_if_unexportable(node: LayerNode, inputs: list[TensorType], diagnostics: Diagnostics) -> None:
    """A layer that checks but that `netspec export` would refuse (at the default opset): say so
    now, at the layer, not only when exporting."""
    refusal = node.layer.refusal(inputs, node.output, DEFAULT_OPSET)
    if refusal is None:
        return
    at_any = node.layer.refusal(inputs, node.output, MAX_OPSET) is not None
    when = "at any opset" if at_any else f"at the default opset {DEFAULT_OPSET}"
    diagnostics.add(Diagnostic(f"{node.kind}: `netspec export` refuses this layer {when}: {refusal.message}",
                               node.span, "warning", layer=node.name, hint=refusal.hint,
                               rule=UNEXPORTABLE_RULE,
                               chain=tuple(b.describe() for b in node.blocks)))


def report(failure: Failure) -> Diagnostic:
    """The diagnostic of one failure: at the layer, in its block instances; where the rule
    refused an attribute whose value was written elsewhere (a block argument at its call site),
    at that place instead, with the layer as a label."""
    node, exc, inputs = failure.node, failure.error, failure.inputs
    shapes = ", ".join(str(t) for t in inputs)
    span, labels = node.span, []
    written = [a for a in exc.attributes if a in node.written]
    if len(written) == 1:
        attribute = written[0]
        span = node.written[attribute]
        labels.append(Label(node.span, f"`{attribute}` = {show_value(getattr(node.layer, attribute))} "
                                       f"reaches {node.kind} here"))
    else:
        labels.extend(Label(node.written[a], f"`{a}` = {show_value(getattr(node.layer, a))} is given here")
                      for a in written)
    return Diagnostic(f"{node.kind}: {exc.message}", span, layer=node.name, rule=exc.rule, hint=exc.hint,
                      notes=[f"input shape{'s' if len(inputs) > 1 else ''}: {shapes}"], labels=labels,
                      chain=tuple(b.describe() for b in node.blocks))
