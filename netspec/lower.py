"""Typed graph to ONNX: every layer lowers itself through a `Builder`; this module adds the graph
inputs and outputs, layouts, initializers and the opset/IR versions.

Inside the ONNX graph every value is in canonical (N, C, spatial) order, which is what ONNX's
Conv and pooling operators expect: an NHWC input gets a Transpose in, and an output that is
spatial and declared NHWC gets a Transpose back out. Node names are the layer names, value
names are the layer names too (readable in Netron), initializers are named like the
parameters (`layer1.0.conv1.weight`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from netspec.diagnostics import Diagnostic, NetspecError
from netspec.graph import Graph, LayerNode
from netspec.types import TensorType

DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 26   # what onnxruntime 1.31 loads; 13 is the oldest lowered here
MAX_IR_VERSION = 13

ONNX_DTYPES = {"f16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16, "f32": TensorProto.FLOAT,
               "f64": TensorProto.DOUBLE, "i8": TensorProto.INT8, "u8": TensorProto.UINT8,
               "i16": TensorProto.INT16, "i32": TensorProto.INT32, "i64": TensorProto.INT64,
               "bool": TensorProto.BOOL}
NUMPY_DTYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64, "i8": np.int8,
                "u8": np.uint8, "i16": np.int16, "i32": np.int32, "i64": np.int64, "bool": np.bool_}


class LoweringError(Exception):
    """A layer that ONNX cannot express exactly (raised by a layer's `lower`)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


def canonical_perm(t: TensorType) -> list[int]:
    """Axis order that takes a tensor from its declared layout to (N, C, spatial)."""
    return [t.layout.batch, t.layout.channel, *t.layout.spatial]


def canonical_shape(t: TensorType) -> tuple:
    return tuple(t.shape[i] for i in canonical_perm(t))


def canonical_axis(t: TensorType, axis: int) -> int:
    """Where a declared-layout axis sits in canonical order."""
    return canonical_perm(t).index(axis)


# Initializers of this many bytes or more are the ones `lower(..., detached=...)` holds apart.
DETACH_BYTES = 1024


class Builder:
    """Collects ONNX nodes and initializers for one graph."""

    def __init__(self, opset: int, weights: dict[str, np.ndarray],
                 detached: dict[str, np.ndarray] | None = None):
        self.opset = opset
        self.weights = weights
        self.detached = detached
        self.nodes: list[onnx.NodeProto] = []
        # the model is built in place: initializers are written straight into its graph, so
        # a weight's bytes are copied once (not again by make_graph and make_model)
        self.model = onnx.ModelProto()
        self._names: set[str] = set()        # value names (and initializers)
        self._node_names: set[str] = set()   # node names: a namespace of their own in ONNX
        self._node: LayerNode | None = None
        self._count = 0
        self.transposed_outputs: set[str] = set()  # layers whose own name is a transposed output

    def start(self, node: LayerNode) -> None:
        """Begin a layer: the nodes emitted next are named after it."""
        self._node, self._count = node, 0

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, final: bool = True,
           **attrs: Any) -> str:
        """Emit one node; returns its output value's name. A layer's `final` node (the one
        producing its result) is named after the layer and so is its output value; the
        others are `<layer>/<op>`."""
        layer = self._node.name if self._node else op_type
        self._count += 1
        if output is None:
            if not final:
                output = self.fresh(f"{layer}/{op_type}:out")
            else:  # an output transposed back to NHWC takes the layer's name; the layer keeps /nchw
                output = self.fresh(f"{layer}/nchw" if layer in self.transposed_outputs else layer)
        name, n = (layer if final else f"{layer}/{op_type}"), 1
        base = name
        while name in self._node_names:
            n += 1
            name = f"{base}_{n}"
        self._node_names.add(name)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attrs))
        return output

    def param(self, suffix: str) -> str:
        """The initializer holding the current layer's parameter `suffix` (e.g. `weight`)."""
        name = f"{self._node.name}.{suffix}"
        if name not in self._names:
            self._names.add(name)
            self.initializer(self.weights[name], name)
        return name

    def const(self, values, dtype=np.int64, name: str = "const") -> str:
        """A constant initializer (shapes, pads, scales)."""
        base = f"{self._node.name}/{name}" if self._node else name
        array = np.asarray(values, dtype=dtype)
        full = self.fresh(base)
        self.initializer(array, full)
        return full

    def initializer(self, array: np.ndarray, name: str) -> None:
        tensor = self.model.graph.initializer.add()
        if array.dtype in _RAW_DTYPES:
            tensor.name = name
            tensor.data_type = _RAW_DTYPES[array.dtype]
            tensor.dims.extend(array.shape)
            little_endian = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
            if self.detached is not None and little_endian.nbytes >= DETACH_BYTES:
                self.detached[name] = little_endian  # named and shaped here, bytes written later
            else:
                tensor.raw_data = little_endian.tobytes()
        else:  # anything unusual goes through onnx's own converter
            tensor.CopyFrom(numpy_helper.from_array(array, name))


# numpy dtypes written as raw little-endian bytes, as numpy_helper.from_array does
_RAW_DTYPES = {np.dtype(t): onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t)) for t in
               ("float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")}


def ir_version_for(opset: int) -> int:
    """The oldest IR version that carries this opset (widest compatibility)."""
    return min(helper.find_min_ir_version_for([helper.make_opsetid("", opset)]), MAX_IR_VERSION)


def _value_info(name: str, t: TensorType, shape: tuple, batch: int | None) -> onnx.ValueInfoProto:
    dims = [batch if (i == 0 and batch is not None) else d for i, d in enumerate(shape)]
    return helper.make_tensor_value_info(name, ONNX_DTYPES[t.dtype], dims)


def lower(graph: Graph, weights: dict[str, np.ndarray], opset: int = DEFAULT_OPSET,
          batch: int | None = None, detached: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """Build the ONNX model of a checked graph. Raises NetspecError (located, naming the layer)
    for a layer ONNX cannot express exactly.

    With a `detached` dict, the initializers of DETACH_BYTES or more get their name, type and
    shape in the model but no bytes: their arrays go into the dict, for runtime.save_model to
    stream into the file (a model's weights are then never copied into the protobuf at all)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is outside {MIN_OPSET}..{MAX_OPSET} (what onnxruntime 1.31 loads)")
    g = Builder(opset, weights, detached)
    values: dict[str, str] = {}
    inputs, outputs, problems = [], [], []
    for name, node_name in graph.outputs:
        perm = canonical_perm(graph.node(node_name).output)
        if perm != sorted(perm):
            g.transposed_outputs.add(name)
    for node in graph:
        t = node.output
        if node.layer is None:
            inputs.append(_value_info(node.name, t, t.shape, batch))
            g._names.add(node.name)
            g.start(node)
            perm = canonical_perm(t)
            values[node.name] = (node.name if perm == sorted(perm) else
                                 g.op("Transpose", [node.name], g.fresh(f"{node.name}/nchw"), perm=perm))
            continue
        g.start(node)
        types = [graph.node(name).output for name in node.inputs]
        try:
            values[node.name] = node.layer.lower(g, node, [values[n] for n in node.inputs], types, t)
        except LoweringError as exc:  # report every layer that cannot be lowered
            problems.append(Diagnostic(f"{node.kind}: {exc.message}", node.span, layer=node.name,
                                       rule="ONNX can express this layer exactly", hint=exc.hint))
            values[node.name] = node.name
    if problems:
        raise NetspecError(problems)
    for name, node_name in graph.outputs:
        t = graph.node(node_name).output
        g.start(graph.node(node_name))
        perm = canonical_perm(t)
        if perm != sorted(perm):  # back to the declared layout
            inverse = [perm.index(i) for i in range(len(perm))]
            g.op("Transpose", [values[node_name]], name, final=False, perm=inverse)
        elif values[node_name] != name:
            if name in g._names:
                raise NetspecError([Diagnostic(f"output `{name}` has the name of another layer's value",
                                               graph.node(node_name).span, layer=node_name,
                                               rule="ONNX value names are unique",
                                               hint="rename the binding or the label")])
            g.op("Identity", [values[node_name]], name, final=False)
        outputs.append(_value_info(name, t, t.shape, batch))
    from netspec import __version__

    model = g.model
    model.graph.name = graph.name
    model.graph.node.extend(g.nodes)
    model.graph.input.extend(inputs)
    model.graph.output.extend(outputs)
    model.ir_version = ir_version_for(opset)
    model.opset_import.append(helper.make_opsetid("", opset))
    model.producer_name, model.producer_version = "netspec", __version__
    return model
