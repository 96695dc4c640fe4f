"""Typed graph to ONNX: every layer lowers itself through a `Builder`; this module adds the graph
inputs and outputs, layouts, initializers and the opset/IR versions.

Inside the ONNX graph every value has its declared layout, as PyTorch's export has it: NCHW
images, [N, L, C] tokens, channels-last maps (ConvNeXt's and Swin's NHWC). A layer that ONNX
defines channels first (Conv, pools, BatchNormalization: `Layer.channels_first`) is lowered
between a Transpose to (N, C, spatial) and one back where its input is declared otherwise (an
NHWC input's first conv); onnxruntime cancels the pairs between such layers. The node producing a layer's value is
named after the layer, and so is the value (readable in Netron); a layer's other nodes are
`<layer>/<op>` and their values `<layer>/<op>:out`; initializers are named like the parameters
(`layer1.0.conv1.weight`). Values keep the dtype the spec declares: weights take the dtype of
the data they meet (netspec.weights), constants too.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from netspec.diagnostics import Diagnostic, NetspecError
from netspec.graph import Graph, LayerNode
from netspec.types import Layout, TensorType

from netspec.opsets import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, OPSET_RANGE  # noqa: F401  (re-exported)
MAX_IR_VERSION = 13

ONNX_DTYPES = {"f16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16, "f32": TensorProto.FLOAT,
               "f64": TensorProto.DOUBLE, "i8": TensorProto.INT8, "u8": TensorProto.UINT8,
               "i16": TensorProto.INT16, "i32": TensorProto.INT32, "i64": TensorProto.INT64,
               "bool": TensorProto.BOOL}
DTYPE_NAMES = {code: name for name, code in ONNX_DTYPES.items()}  # ONNX element type -> dtype
# numpy has no bfloat16: ml_dtypes gives it one
NUMPY_DTYPES = {"f16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16),
                "f32": np.dtype(np.float32), "f64": np.dtype(np.float64), "i8": np.dtype(np.int8),
                "u8": np.dtype(np.uint8), "i16": np.dtype(np.int16), "i32": np.dtype(np.int32),
                "i64": np.dtype(np.int64), "bool": np.dtype(np.bool_)}
_TYPE_STRINGS = {f"tensor({helper.tensor_dtype_to_string(code)[len('TensorProto.'):].lower()})": code
                 for code in ONNX_DTYPES.values()}


class LoweringError(Exception):
    """A layer that ONNX cannot express exactly (raised by a layer's `lower`)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


def canonical_perm(t: TensorType) -> list[int]:
    """The order of a tensor's declared axes inside the ONNX graph (netspec.types.Layout.canonical:
    the declared order itself; a channels-first layer's own view is Layout.channels_first)."""
    return list(t.layout.canonical)


def canonical_shape(t: TensorType) -> tuple:
    return tuple(t.shape[i] for i in canonical_perm(t))


def canonical_axis(t: TensorType, axis: int) -> int:
    """Where a declared-layout axis sits inside the ONNX graph."""
    return canonical_perm(t).index(axis)


# Initializers of this many bytes or more are the ones `lower(..., detached=...)` holds apart.
DETACH_BYTES = 1024


@lru_cache(maxsize=None)
def _signature(op_type: str, opset: int):
    """What ONNX's schema of `op_type` at `opset` says of dtypes: per formal input, its type
    parameter and the element types it allows (of netspec's ten), and how the output's type
    follows (the name of the input type parameter it shares, or one fixed element type).
    None for an operator without a schema."""
    try:
        schema = onnx.defs.get_schema(op_type, opset)
    except onnx.defs.SchemaError:
        return None
    allowed = {c.type_param_str: frozenset(_TYPE_STRINGS[t] for t in c.allowed_type_strs if t in _TYPE_STRINGS)
               for c in schema.type_constraints}

    def formal(type_str: str) -> tuple[str, frozenset]:
        return type_str, allowed.get(type_str, frozenset([_TYPE_STRINGS[type_str]]) if type_str in _TYPE_STRINGS
                                     else frozenset(ONNX_DTYPES.values()))
    inputs = tuple(formal(i.type_str) for i in schema.inputs)
    out_param, out_allowed = formal(schema.outputs[0].type_str)
    return inputs, out_param, (next(iter(out_allowed)) if len(out_allowed) == 1 else None)


def first_opset_taking(op_type: str, elem: int, after: int) -> int | None:
    """The first opset after `after` (up to MAX_OPSET) whose `op_type` takes `elem` as its first input."""
    for opset in range(after + 1, MAX_OPSET + 1):
        signature = _signature(op_type, opset)
        if signature and signature[0] and elem in signature[0][0][1]:
            return opset
    return None


class Builder:
    """Collects ONNX nodes and initializers for one graph.

    A layer's `lower` emits its nodes with `op` (named `<layer>/<op>`, their values
    `<layer>/<op>:out`) and returns its value; `finish` then gives that value, and the node
    producing it, the layer's own name. The element type of every value whose type is known
    (inputs, initializers, and node outputs as the operator schemas give them) is tracked, so
    a node that ONNX does not define for its inputs' dtypes at this opset is refused as it is
    emitted, with the opset that would take it."""

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
        self._first = 0                      # index of the current layer's first node
        self.types: dict[str, int] = {}      # value name -> ONNX element type, where known
        self._shared: dict[Any, str] = {}    # a constant's key -> the initializer that holds it

    def start(self, node: LayerNode) -> None:
        """Begin a layer: the nodes emitted next are named after it."""
        self._node, self._first = node, len(self.nodes)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def _node_name(self, base: str) -> str:
        name, n = base, 1
        while name in self._node_names:
            n += 1
            name = f"{base}_{n}"
        self._node_names.add(name)
        return name

    def declare(self, name: str, dtype: str) -> None:
        """A value that exists without a node of this builder (a graph input)."""
        self._names.add(name)
        self.types[name] = ONNX_DTYPES[dtype]

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        """Emit one node, named `<layer>/<op>`; returns its output value's name
        (`<layer>/<op>:out` unless `output` is given). Raises LoweringError when ONNX's
        operator does not take an input's dtype at this opset."""
        layer = self._node.name if self._node else op_type
        attrs = {k: v for k, v in attrs.items() if v is not None}
        signature = _signature(op_type, self.opset)
        if signature is not None:
            self._check_types(op_type, inputs, signature[0])
        if output is None:
            output = self.fresh(f"{layer}/{op_type}:out")
        else:
            self._names.add(output)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=self._node_name(f"{layer}/{op_type}"),
                                           **attrs))
        elem = self._output_type(op_type, inputs, attrs, signature)
        if elem is not None:
            self.types[output] = elem
        return output

    def _check_types(self, op_type: str, inputs: list[str], formals) -> None:
        bound: dict[str, int] = {}  # type parameter -> the element type its first input gave it
        for i, value in enumerate(inputs):
            elem = self.types.get(value) if value else None
            if elem is None or not formals:
                continue
            param, allowed = formals[min(i, len(formals) - 1)]  # the last formal may be variadic
            if elem not in allowed:
                later = first_opset_taking(op_type, elem, self.opset) if i == 0 else None
                raise LoweringError(
                    f"ONNX's {op_type} takes no {DTYPE_NAMES[elem]} tensors at opset {self.opset}",
                    hint=f"export with --opset {later} or later, or compute in f32: `-> cast(f32)` before it"
                    if later else "compute in another dtype: `-> cast(f32)` before it")
            if bound.setdefault(param, elem) != elem:  # a layer's bug, never the user's
                raise AssertionError(f"netspec lowers {self._node.kind if self._node else op_type} to "
                                     f"{op_type} with inputs of type {DTYPE_NAMES[bound[param]]} and "
                                     f"{DTYPE_NAMES[elem]} ({inputs})")

    def _output_type(self, op_type: str, inputs: list[str], attrs: dict, signature) -> int | None:
        if op_type == "Cast":
            return attrs["to"]
        if signature is None:
            return None
        formals, out_param, fixed = signature
        for (param, _), value in zip(formals, inputs):
            if param == out_param and value in self.types:
                return self.types[value]
        return fixed

    def finish(self, result: str | tuple[str, ...], value_name: str | None = None) -> str | tuple[str, ...]:
        """Give the current layer's value the layer's name (or `value_name`): the node that
        produced it is renamed `<layer>` and its output `<layer>`; a value the layer did not
        produce (its input passed through, an initializer) gets an Identity of that name. A
        layer with several values has them named `<layer>:0`, `<layer>:1`, ..., the first
        one's node named `<layer>`."""
        layer = self._node.name
        if isinstance(result, str):
            return self._claim(result, layer, value_name or layer)
        return tuple(self._claim(value, layer if i == 0 else None, f"{layer}:{i}")
                     for i, value in enumerate(result))

    def _claim(self, value: str, node_name: str | None, value_name: str) -> str:
        own = self.nodes[self._first:]
        producer = next((n for n in reversed(own) if value in n.output), None)
        if producer is None:
            out = self.fresh(value_name)
            self.nodes.append(helper.make_node("Identity", [value], [out],
                                               name=self._node_name(node_name or f"{value_name}/Identity")))
            if value in self.types:
                self.types[out] = self.types[value]
            return out
        self._names.discard(value)
        new = self.fresh(value_name)
        producer.output[list(producer.output).index(value)] = new
        for later in own[own.index(producer) + 1:]:
            for j, name in enumerate(later.input):
                if name == value:
                    later.input[j] = new
        if value in self.types:
            self.types[new] = self.types.pop(value)
        if node_name is not None:
            self._node_names.discard(producer.name)
            producer.name = self._node_name(node_name)
        return new

    def shared(self, key: Any, suffix: str = "") -> str:
        """The current layer's parameter `suffix` as an initializer shared by every layer whose
        constant has the same `key` (Swin's masks of shifted windows, one per block and equal
        within a stage: one initializer, not one per block)."""
        if key not in self._shared:
            self._shared[key] = self.param(suffix)
        return self._shared[key]

    def param(self, suffix: str) -> str:
        """The initializer holding the current layer's parameter `suffix` (e.g. `weight`)."""
        name = f"{self._node.name}.{suffix}" if suffix else self._node.name
        if name not in self._names:
            self._names.add(name)
            self.initializer(self.weights[name], name)
        return name

    def const(self, values, dtype: str | Any = "i64", name: str = "const") -> str:
        """A constant initializer (shapes, pads, scales): `dtype` is a netspec dtype name
        (the layer's input dtype for constants that meet its data) or a numpy dtype."""
        base = f"{self._node.name}/{name}" if self._node else name
        array = np.asarray(values, dtype=NUMPY_DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype)
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
        self.types[name] = tensor.data_type


# numpy dtypes written as raw little-endian bytes, as numpy_helper.from_array does
_RAW_DTYPES = {dtype: ONNX_DTYPES[name] for name, dtype in NUMPY_DTYPES.items()}


def _read_from_output(nodes: list, identity: onnx.NodeProto, layer: str) -> None:
    """Put a graph output's Identity right after the node producing its value (of `layer`), and
    have the later layers that consume the value read the output instead (the same values). onnxruntime 1.32's
    EliminateIdentity, given a layer value that feeds both an output's Identity and a Pad that
    PadFusion folds into the Conv after it, leaves that Conv reading a value that no longer
    exists ("Node input ... is not a graph input, initializer, or output of a previous node"):
    `b = a -> pad(1) -> conv(8, 3)` beside `output a`, where `a` is a chain of several layers."""
    value, output = identity.input[0], identity.output[0]
    nodes.pop(next(i for i in range(len(nodes) - 1, -1, -1) if nodes[i] is identity))
    at = next((i for i, n in enumerate(nodes) if value in n.output), -1)  # -1: a graph input
    nodes.insert(at + 1, identity)
    for later in nodes[at + 2:]:
        if later.name == layer or later.name.startswith(layer + "/"):
            continue  # the layer's own nodes keep reading its value
        for j, name in enumerate(later.input):
            if name == value:
                later.input[j] = output


def _channels_first(t: TensorType) -> tuple[list[int], TensorType]:
    """The order ONNX's channels-first operators read `t`'s axes in, and `t` so laid out."""
    order = list(t.layout.channels_first)
    laid = Layout("".join(t.layout.axes[i] for i in order), t.layout.origin)
    return order, TensorType(t.dtype, tuple(t.shape[i] for i in order), laid)


def _lower_layer(g: "Builder", node: LayerNode, inputs: list[str], types: list[TensorType],
                 output: TensorType) -> str | tuple[str, ...]:
    """One layer's lowering; a `channels_first` layer sees its inputs transposed to (N, C,
    spatial) where they are declared otherwise (NHWC, NLC), and its value is transposed back."""
    if not node.layer.channels_first:
        return node.layer.lower(g, node, inputs, types, output)
    moved, laid = [], []
    for value, t in zip(inputs, types):
        order, first = _channels_first(t)
        moved.append(value if order == sorted(order) else g.op("Transpose", [value], perm=order))
        laid.append(first)
    order, first = _channels_first(output)
    y = node.layer.lower(g, node, moved, laid, first)
    if order == sorted(order):
        return y
    return g.op("Transpose", [y], perm=[order.index(i) for i in range(len(order))])


def ir_version_for(opset: int) -> int:
    """The oldest IR version that carries this opset (widest compatibility)."""
    return min(helper.find_min_ir_version_for([helper.make_opsetid("", opset)]), MAX_IR_VERSION)


def onnx_dims(t: TensorType, batch: int | None) -> list:
    """A value's ONNX dimensions: its declared shape, the batch fixed to `batch` where given (at
    the batch's own axis: [L, N, C] has it second)."""
    return [batch if (i == t.layout.batch and batch is not None) else d for i, d in enumerate(t.shape)]


def _value_info(name: str, t: TensorType, batch: int | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, ONNX_DTYPES[t.dtype], onnx_dims(t, batch))


def lower(graph: Graph, weights: dict[str, np.ndarray], opset: int = DEFAULT_OPSET,
          batch: int | None = None, detached: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """Build the ONNX model of a checked graph. Raises NetspecError (located, naming the layer)
    for a layer ONNX cannot express exactly.

    With a `detached` dict, the initializers of DETACH_BYTES or more get their name, type and
    shape in the model but no bytes: their arrays go into the dict, for runtime.save_model to
    stream into the file (a model's weights are then never copied into the protobuf at all)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset {opset} is outside {MIN_OPSET}..{MAX_OPSET} ({OPSET_RANGE})")
    g = Builder(opset, weights, detached)
    values: dict[str, Any] = {}
    inputs, outputs, problems = [], [], []
    for node in graph:
        t = node.output
        g.start(node)
        if node.layer is None:
            inputs.append(_value_info(node.name, t, batch))
            g.declare(node.name, t.dtype)
            values[node.name] = node.name
            continue
        types = [graph.node(name).output for name in node.inputs]
        try:
            refusal = node.layer.refusal(types, t, opset)  # what the layer itself says ONNX cannot do
            if refusal is not None:
                raise LoweringError(refusal.message, refusal.hint)
            lowered = _lower_layer(g, node, [values[n] for n in node.inputs], types, t)
            # a param's value is its initializer, already named by the node
            values[node.name] = lowered if not node.inputs and lowered == node.name else g.finish(lowered)
        except LoweringError as exc:  # report every layer that cannot be lowered
            problems.append(Diagnostic(f"{node.kind}: {exc.message}", node.span, layer=node.name,
                                       rule="ONNX can express this layer exactly", hint=exc.hint))
            values[node.name] = node.name
            g.declare(node.name, t.dtype)  # typed, so the layers after it are checked too
            continue
        produced = g.types.get(values[node.name])
        if produced is not None and produced != ONNX_DTYPES[t.dtype]:  # a layer's bug, never the user's
            raise AssertionError(f"{node.kind} `{node.name}` lowers to a {DTYPE_NAMES[produced]} value; "
                                 f"its type is {t.dtype}")
    if problems:
        raise NetspecError(problems)
    for name, node_name in graph.outputs:
        t = graph.node(node_name).output
        g.start(graph.node(node_name))
        if values[node_name] != name:
            if name in g._names:
                raise NetspecError([Diagnostic(f"output `{name}` has the name of another layer's value",
                                               graph.node(node_name).span, layer=node_name,
                                               rule="ONNX value names are unique",
                                               hint="rename the binding or the label")])
            g.op("Identity", [values[node_name]], name)
            _read_from_output(g.nodes, g.nodes[-1], node_name)
        outputs.append(_value_info(name, t, batch))
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
