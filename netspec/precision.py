"""Lower-precision exports: a lowered f32 model with its weights and compute in f16 or bf16,
through onnxruntime's own float16 converter (onnxruntime.transformers.float16, which ships with
onnxruntime), and the layers onnxruntime has no kernel for in that dtype on this machine.

The converter retypes every f32 tensor and initializer, leaves the operators it is told to block
in f32 and puts Casts around them, and (`keep_io_types`) keeps the graph's inputs and outputs f32
behind Casts. Blocked here, for accuracy, as PyTorch's autocast keeps them in f32: the layers
that reduce over many values (softmax's exponentials and their sum, the statistics of layer,
group and instance norms, normalize's sum of squares, lppool's powers), exp, and the softmax
inside attention. Batch norm is not blocked: its statistics are stored, not computed, and
onnxruntime folds it into the convolution before it.

bf16 is the f16 conversion retyped: the same placement of Casts, with every f16 tensor made
bf16 and the weights rounded from their f32 values (not from f16's, whose range is narrower)."""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, NamedTuple

import numpy as np

from netspec.diagnostics import Diagnostic, NetspecError

DTYPES = ("f16", "bf16")
# The first opset at which ONNX's Conv, ConvTranspose, the pools and InstanceNormalization take
# bf16: the default of --dtype bf16
BF16_OPSET = 22


def default_opset(dtype: str) -> int | None:
    """The opset to lower at for `dtype` when none is given (None: netspec's default)."""
    return BF16_OPSET if dtype == "bf16" else None
# Layer kinds computed in f32 whole, with why (the export says which layers these are)
KEPT_KINDS = {
    "softmax": "sums exponentials",
    "log_softmax": "sums exponentials",
    "layernorm": "statistics over the activations",
    "groupnorm": "statistics over the activations",
    "normalize": "sum of squares",
    "lppool": "p-th powers",
    "exp": "overflows f16 past 11",
}
# ONNX operators kept in f32 wherever they appear (the Softmax inside multihead_attention)
KEPT_OPS = ("Softmax", "LogSoftmax", "LayerNormalization", "GroupNormalization", "InstanceNormalization", "LpPool")


class Converted(NamedTuple):
    """The converted model, and the layers left in f32: {layer kind: [layer names]} (a
    kind `multihead_attention` where only its softmax is)."""
    model: object
    kept: dict[str, list[str]]


def _error(message: str, hint: str | None = None) -> NetspecError:
    return NetspecError([Diagnostic(message, hint=hint)])


def check_convertible(graph, dtype: str) -> None:
    """A network converts from f32 only: one whose floating-point tensors are other dtypes
    already says its precision in the spec."""
    from netspec.types import FLOATS

    declared = {graph.node(name).output.dtype for name in graph.inputs}
    declared |= set(graph.parameter_dtypes().values())
    others = sorted(d for d in declared if d in FLOATS and d != "f32")
    if others:
        raise _error(f"--dtype {dtype} converts an f32 network; this one's tensors are {', '.join(others)} "
                     "already", hint="declare the precision in the spec (its inputs' dtype) or convert an "
                                     "f32 spec, not both")


def layer_of(node_name: str) -> str:
    """The layer an ONNX node belongs to: netspec names a layer's nodes `<layer>` and
    `<layer>/<op>`."""
    return node_name.split("/")[0]


def layer_kinds(graph) -> dict[str, str]:
    """{layer name: layer kind} of a netspec graph."""
    return {node.name: node.kind for node in graph if node.layer is not None}


def convert(model, graph, dtype: str, f32_io: bool = False, detached: dict | None = None) -> Converted:
    """`model` (the f32 onnx.ModelProto of netspec `graph`) in `dtype` (f16 or bf16), converted
    in place. `f32_io`: inputs and outputs stay f32, cast inside the model. `detached`: the
    arrays of the initializers the model holds no bytes for (netspec.lower.lower(...,
    detached=)); they come back converted in it, the model again without their bytes (so a
    model past protobuf's 2 GB converts: the converter gets onnx's shape inference done on the
    model without them, not its own on the whole). A layer whose ONNX operator takes no `dtype`
    at the model's opset is an error located at the layer."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    from netspec.runtime import declared_as_inputs

    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: one of {', '.join(DTYPES)}")
    detached = {} if detached is None else detached
    kinds = layer_kinds(graph)
    kept_nodes = [n.name for n in model.graph.node if kinds.get(layer_of(n.name)) in KEPT_KINDS]
    kept_layers = {layer_of(name) for name in kept_nodes}
    kept: dict[str, list[str]] = defaultdict(list)
    for node in model.graph.node:
        layer = layer_of(node.name)
        if (layer in kept_layers or node.op_type in KEPT_OPS) and layer in kinds \
                and layer not in kept[kinds[layer]]:
            kept[kinds[layer]].append(layer)
    inferred = onnx.shape_inference.infer_shapes(declared_as_inputs(model, detached))
    model.graph.value_info.extend(v for v in inferred.graph.value_info if v.name not in detached)
    originals = {}
    if dtype == "bf16":  # the converter rewrites the tensors in place
        originals = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
                     if t.data_type == onnx.TensorProto.FLOAT and t.name not in detached}
        originals.update(detached)
    for tensor in model.graph.initializer:
        if tensor.name in detached:
            tensor.raw_data = detached[tensor.name].tobytes()
    converted = convert_float_to_float16(model, keep_io_types=f32_io, disable_shape_infer=True,
                                         op_block_list=[*DEFAULT_OP_BLOCK_LIST, *KEPT_OPS],
                                         node_block_list=kept_nodes)
    # the converter adds the input Casts after the nodes that read them
    OnnxModel(converted).topological_sort()
    if dtype == "bf16":
        _retype_bf16(converted, originals)
    _check_schemas(converted, graph, dtype)
    for tensor in converted.graph.initializer:
        if tensor.name in detached:
            detached[tensor.name] = numpy_helper.to_array(tensor)
            tensor.ClearField("raw_data")
            tensor.ClearField("int32_data")
    return Converted(converted, dict(kept))


def embed(model, detached: dict) -> None:
    """Put the bytes of the `detached` arrays back into `model`'s initializers of their names."""
    for tensor in model.graph.initializer:
        if tensor.name in detached:
            tensor.raw_data = detached[tensor.name].tobytes()


def _types(model) -> dict[str, int]:
    """Element types of the model's values, as the converter left them in value_info (a
    schema refusal would stop onnx's shape inference)."""
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.value_info, *graph.output)}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def _opset(model) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _check_schemas(model, graph, dtype: str) -> None:
    """The first node whose ONNX operator takes no `dtype` input at the model's opset (bf16
    Conv before 22), as an error at its layer, with the opset that takes it."""
    from netspec.lower import ONNX_DTYPES, first_opset_taking

    elem, opset, types = ONNX_DTYPES[dtype], _opset(model), _types(model)
    for node in model.graph.node:
        if not node.input or types.get(node.input[0]) != elem:
            continue
        later = first_opset_taking(node.op_type, elem, opset - 1)
        if later == opset:
            continue
        layer = layer_of(node.name)
        found = graph.node(layer) if layer in graph else None
        where = f"{found.kind}: " if found is not None and found.layer is not None else ""
        raise NetspecError([Diagnostic(
            f"{where}ONNX's {node.op_type} takes no {dtype} tensors at opset {opset}",
            found.span if found is not None else None, layer=found.name if found is not None else None,
            rule=f"--dtype {dtype} computes every layer but those kept in f32 in {dtype}",
            hint=f"export with --opset {later} (the default for --dtype {dtype} is {BF16_OPSET})"
            if later else "export --dtype f16, or keep this network f32")])


def _retype_bf16(model, originals: Mapping) -> None:
    """Every f16 tensor of the converted `model` made bf16, in place; initializers rounded from
    their f32 arrays in `originals` (by name) where there are some."""
    import ml_dtypes
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.BFLOAT16
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT16:
            source = originals[tensor.name] if tensor.name in originals else numpy_helper.to_array(tensor)
            values = np.asarray(source, dtype=np.float32)
            tensor.CopyFrom(numpy_helper.from_array(values.astype(ml_dtypes.bfloat16), tensor.name))
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.BFLOAT16
            elif attribute.type == attribute.TENSOR and attribute.t.data_type == TensorProto.FLOAT16:
                values = numpy_helper.to_array(attribute.t).astype(np.float32)
                attribute.t.CopyFrom(numpy_helper.from_array(values.astype(ml_dtypes.bfloat16), attribute.t.name))


def kernel_gaps(model, dtype: str, device: str = "cpu") -> dict[str, list[str]] | None:
    """The nodes computed in `dtype` that onnxruntime has no kernel for on `device`, as
    {ONNX operator: [node names]}; None where this onnxruntime does not list its kernels."""
    from netspec import runtime
    from netspec.lower import ONNX_DTYPES

    elem = ONNX_DTYPES[dtype]
    types, opset = _types(model), _opset(model)
    known: dict[str, bool | None] = {}
    gaps: dict[str, list[str]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type == "Cast" or not node.input or types.get(node.input[0]) != elem:
            continue
        if node.op_type not in known:
            known[node.op_type] = runtime.has_kernel(node.op_type, opset, elem, device)
        if known[node.op_type] is None:
            return None
        if not known[node.op_type]:
            gaps[node.op_type].append(node.name)
    return dict(gaps)


def devices() -> list[str]:
    """The devices onnxruntime can run on here: the CPU, and CUDA where onnxruntime-gpu is."""
    import onnxruntime as ort

    return ["cpu"] + (["cuda"] if "CUDAExecutionProvider" in ort.get_available_providers() else [])


def _counted(groups: Mapping[str, list[str]]) -> str:
    return ", ".join(f"{len(names)} {kind}" for kind, names in groups.items())


def describe_kept(kept: Mapping[str, list[str]], dtype: str) -> str:
    """What stays f32: `kept in f32 for accuracy: 25 layernorm (statistics over the
    activations), 12 multihead_attention (their softmax)`."""
    if not kept:
        return f"no layer kept in f32: every layer computes in {dtype}"
    parts = []
    for kind, names in kept.items():
        why = KEPT_KINDS.get(kind, "their softmax" if len(names) > 1 else "its softmax")
        parts.append(f"{len(names)} {kind} ({why}; {names[0]}{', ...' if len(names) > 1 else ''})")
    return "kept in f32 for accuracy: " + ", ".join(parts)


def describe_gaps(gaps: Mapping[str, list[str]], kinds: Mapping[str, str], dtype: str, device: str) -> str:
    """The layers onnxruntime has no `dtype` kernel for on `device` (kernel_gaps), by kind, and
    what that means there: f16 runs in f32 behind onnxruntime's own Casts; bf16 does not run."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for op, nodes in gaps.items():
        for node in nodes:
            layer = layer_of(node)
            kind = kinds.get(layer, op)
            if layer not in by_kind[kind]:
                by_kind[kind].append(layer)
    ops = ", ".join(gaps)
    where = "the CPU" if device == "cpu" else device.upper()
    head = f"onnxruntime has no {dtype} kernel on {where} for {_counted(by_kind)} layers ({ops})"
    if dtype == "f16":
        return (f"note: {head}: it computes them in f32, casting to and from f16 itself, so the model "
                f"runs there, within f16's rounding of f32, but no faster; f16 is fast where onnxruntime "
                f"has the kernels (CUDA: onnxruntime-gpu)")
    first = next(iter(gaps.values()))[0]
    return (f"warning: {head}: the model is valid ONNX but does not run on {where} (`netspec run` stops "
            f"at `{layer_of(first)}`); run it where onnxruntime has {dtype} kernels, or export --dtype f16")
