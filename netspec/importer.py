"""ONNX to netspec: an onnx.ModelProto read back into spec text and its weights, the pipeline
of netspec.lower read backwards. Layers, not nodes: the patterns exporters emit (Conv with its
bias, Gemm or MatMul + Add as `linear`, Clip(0, 6) as `relu6`, Erf's GELU, ...) become layer
calls with their attributes; constant subgraphs (shape arithmetic) are evaluated, not copied;
Identity and Dropout are dropped. Layers that own parameters take the initializers' names
(`layer1.0.conv1.weight` makes the layer `"layer1.0.conv1":`), the others the node's name where
it is a valid label, else a short one (`relu_3`). What cannot be expressed is one NetspecError
that lists every unsupported op type with its nodes.

Only `import_model` is public; onnx is imported by the caller (`netspec import`), never by
`netspec check`.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from netspec.compiler import compile_file
from netspec.diagnostics import Diagnostic, NetspecError
from netspec.spec_writer import _LABEL, Layer, label_layers, write_spec
from netspec.spec_writer import number_text as _num

RULE = "netspec import: an ONNX model as netspec layers"

_DTYPES = {1: "f32", 2: "u8", 3: "i8", 5: "i16", 6: "i32", 7: "i64", 9: "bool", 10: "f16", 11: "f64", 16: "bf16"}
# initializers read as activations are the network's own tensors: a `param(...)`, or a
# `buffer(...)` where integer-valued or named as torchvision names its buffers
_BUFFER_NAMES = {"relative_position_index", "relative_coords_table", "running_mean", "running_var"}
# ops that read a param or a buffer as their data (Swin V2's logit scale clamped, its qkv bias
# narrowed, its coordinates table through a linear): the initializer is owned, not folded
_OWNED_READERS = {"Clip", "Exp", "Sigmoid", "Relu", "Slice", "Reshape", "Gather", "MatMul"}


def _error(message: str, notes: list[str] | None = None, hint: str | None = None) -> NetspecError:
    return NetspecError([Diagnostic(message, rule=RULE, notes=notes or [], hint=hint)])


@dataclass
class Imported:
    text: str                       # the spec
    weights: dict[str, np.ndarray]  # by the spec's parameter names
    layers: int                     # how many layers the spec has


def _light(model):
    """A copy of `model` for shape inference without its large tensors' data (each a graph
    input of its type instead): inference serializes the model, and weights cost time there
    (and past 2 GB cannot be serialized at all)."""
    from onnx import helper

    light = type(model)()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    for name in ("node", "input", "output", "value_info"):
        getattr(light.graph, name).extend(getattr(model.graph, name))
    light.graph.name = model.graph.name
    for init in model.graph.initializer:
        if np.prod(init.dims, dtype=np.int64) <= 64:
            light.graph.initializer.append(init)
        elif not any(i.name == init.name for i in model.graph.input):
            light.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return light


def _shapes(graph) -> dict[str, list]:
    shapes: dict[str, list] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                 for d in info.type.tensor_type.shape.dim]
    return shapes


def _known(dims: list) -> int:
    """How much of a shape is known: its rank, and its sizes that are numbers or named."""
    return 1 + sum(1 for d in dims if isinstance(d, str) and not d.startswith("unk__") or isinstance(d, int) and d > 0)


def _restated_targets(model, graph, shapes):
    """A copy of `graph` (the light model's, for shape inference) where each Reshape's or
    Expand's target that the model computes at run time, and inference could not, is restated
    as constants and the batch size (`Shape(image)[0:1]`, times a constant): the values the
    model computes for batches of 1 and 2 (onnxruntime, on random inputs) say which is which.
    None where there is no such target, or the model cannot be run (no weights, other inputs)."""
    from onnx import TensorProto, helper, numpy_helper

    constant = {i.name for i in model.graph.initializer} | \
        {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    targets = [n for n in graph.node if n.op_type in ("Reshape", "Expand") and n.input[1] not in constant
               and (n.output[0] not in shapes or _known(shapes[n.output[0]]) <= len(shapes[n.output[0]]))]
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if not targets or len(inputs) != 1 or len(targets) > 2000:
        return None
    dims = shapes.get(inputs[0].name, [])
    if not dims or isinstance(dims[0], int) and dims[0] > 0 or \
            any(not (isinstance(d, int) and d > 0) for d in dims[1:]) or \
            inputs[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        return None
    if any(not i.HasField("raw_data") and not i.float_data and not i.int64_data and not i.int32_data
           and not i.double_data and np.prod(i.dims, dtype=np.int64) > 0 and i.data_type == TensorProto.FLOAT
           for i in model.graph.initializer):
        return None  # weights stripped: the model cannot run
    try:
        import onnxruntime

        probe = type(model)()
        probe.CopyFrom(model)
        names = sorted({n.input[1] for n in targets})
        del probe.graph.output[:]
        probe.graph.output.extend(helper.make_value_info(x, _any_type()) for x in names)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # numpy runs next
        session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        runs = [dict(zip(names, session.run(names, {inputs[0].name: rng.standard_normal(
            [b, *dims[1:]]).astype(np.float32)}))) for b in (1, 2)]
    except Exception:
        return None
    batch_nodes = [helper.make_node("Shape", [inputs[0].name], ["netspec_batch"], start=0, end=1)]
    restated = {}
    for x in names:
        one, two = (np.asarray(r[x]).reshape(-1) for r in runs)
        if one.shape != two.shape or one.dtype.kind != "i":
            continue
        pieces = []
        for a, b in zip(one, two):
            if a == b:
                pieces.append(("const", int(a)))
            elif b == 2 * a:
                pieces.append(("batch", int(a)))
            else:
                break
        else:
            name = f"netspec_target_{len(restated)}"
            parts = []
            for k, (what, v) in enumerate(pieces):
                part = f"{name}_{k}"
                if what == "const":
                    batch_nodes.append(helper.make_node("Constant", [], [part], value=numpy_helper.from_array(
                        np.array([v], np.int64))))
                elif v == 1:
                    part = "netspec_batch"
                else:
                    batch_nodes.append(helper.make_node("Constant", [], [part + "_k"], value=numpy_helper.from_array(
                        np.array([v], np.int64))))
                    batch_nodes.append(helper.make_node("Mul", ["netspec_batch", part + "_k"], [part]))
                parts.append(part)
            batch_nodes.append(helper.make_node("Concat", parts, [name], axis=0))
            restated[x] = name
    if not restated:
        return None
    copy = type(graph)()
    copy.CopyFrom(graph)
    nodes = list(copy.node)
    for n in nodes:
        if n.op_type in ("Reshape", "Expand") and n.input[1] in restated:
            n.input[1] = restated[n.input[1]]
    model_light = _light(model)
    del model_light.graph.node[:]
    model_light.graph.node.extend(batch_nodes + nodes)
    del model_light.graph.value_info[:]
    return model_light


def _any_type():
    """A value's type left open (onnxruntime and the reference take what the node makes)."""
    from onnx import TypeProto

    return TypeProto()


def _literal_list(text: str) -> list:
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return value if isinstance(value, list) else []


def _metadata_list(node, key: str) -> list:
    for prop in node.metadata_props:
        if prop.key == key:
            return _literal_list(prop.value)
    return []


def _scope_name(node) -> str | None:
    """A dynamo-exported node's module scopes as torch.onnx's TorchScript exporter names the node
    (`/layer1/layer1.0/layer1.0.relu/Relu`), from its `pkg.torch.onnx.name_scopes` metadata
    (`['', 'layer1', 'layer1.0', 'layer1.0.relu', 'relu_1']`: the modules, then the op)."""
    scopes = _metadata_list(node, "pkg.torch.onnx.name_scopes")
    if not scopes:
        return None
    modules = [s for s in scopes[:-1] if isinstance(s, str) and s]
    return "/" + "".join(f"{m}/" for m in modules) + node.op_type


def _module_classes(nodes) -> dict[str, str]:
    """Each module path's class (`layer1.0` -> `torchvision.models.resnet.Bottleneck`), from the
    dynamo exporter's `pkg.torch.onnx.class_hierarchy` beside its name scopes."""
    classes: dict[str, str] = {}
    for node in nodes:
        scopes = _metadata_list(node, "pkg.torch.onnx.name_scopes")
        hierarchy = _metadata_list(node, "pkg.torch.onnx.class_hierarchy")
        for path, cls in zip(scopes[1:-1], hierarchy[1:-1]):
            if isinstance(path, str) and isinstance(cls, str):
                classes.setdefault(path, cls)
    return classes


def _window_mask(array: np.ndarray) -> str | None:
    """The `shifted_window_mask(...)` call whose values `array` holds ([windows, 1, area, area]
    of 0 and -100, Swin's; [windows, 1, volume, volume], the video Swin's), or None: square
    windows and maps, the shift half a window where a window does not cover its axis."""
    if array.ndim != 4 or array.shape[1] != 1 or array.shape[2] != array.shape[3] or \
            not np.issubdtype(array.dtype, np.floating) or not np.all((array == 0) | (array == -100)):
        return None
    from netspec.constants import shifted_window_mask

    windows, area = array.shape[0], array.shape[2]
    candidates = []
    for depth in range(1, area + 1):  # the window: (depth,) x side x side
        side = int(round((area // depth) ** 0.5)) if area % depth == 0 else 0
        if not side or depth * side * side != area:
            continue
        for nd in range(1, windows + 1):  # windows: nd x n x n
            n = int(round((windows // nd) ** 0.5)) if windows % nd == 0 else 0
            if not n or nd * n * n != windows or (depth == 1 and nd != 1):
                continue
            sizes, win = ((n * side, n * side), (side, side)) if depth == 1 else \
                ((nd * depth, n * side, n * side), (depth, side, side))
            shift = tuple(w // 2 if count > 1 else 0 for w, count in zip(win, (n, n) if depth == 1 else (nd, n, n)))
            if any(shift):
                candidates.append((sizes, win, shift))
    for sizes, win, shift in candidates:
        args = [*sizes, win[0] if len(set(win)) == 1 else win, shift]
        try:
            made = shifted_window_mask(*args)
        except ValueError:
            continue
        if len(made) == array.size and np.array_equal(np.asarray(made, np.float32), array.reshape(-1)):
            return "shifted_window_mask(" + ", ".join(
                "(" + ", ".join(map(str, a)) + ")" if isinstance(a, tuple) else str(a) for a in args) + ")"
    return None


_TABLES: dict[tuple, Any] = {}  # (function, sizes) -> its values, computed once per import of a model


def _table_init(name: str, array: np.ndarray) -> str | None:
    """The `relative_position_index(...)` or `relative_coords_table(...)` call whose values a
    buffer named so holds (square windows; the video Swin's depth x side x side), or None."""
    from netspec.constants import relative_coords_table, relative_position_index

    last = name.rsplit(".", 1)[-1]
    tries: list[tuple] = []
    if last == "relative_position_index" and np.issubdtype(array.dtype, np.integer):
        area = int(round(array.size ** 0.5))
        for depth in range(1, area + 1):
            side = int(round((area // depth) ** 0.5)) if area % depth == 0 else 0
            if side and depth * side * side == area:
                tries.append((relative_position_index, (side,) if depth == 1 else (depth, side, side)))
    elif last == "relative_coords_table" and array.ndim == 4 and array.shape[1] == array.shape[2] and \
            array.shape[1] % 2 == 1 and array.shape[1] > 1:
        tries.append((relative_coords_table, ((array.shape[1] + 1) // 2,)))
    for function, sizes in tries:
        key = (function.__name__, sizes)
        if key not in _TABLES:
            _TABLES[key] = np.asarray(function(*sizes))
        values = _TABLES[key]
        if values.size == array.size and np.allclose(values, array.reshape(-1).astype(np.float64), atol=1e-6):
            return f"{function.__name__}({', '.join(map(str, sizes))})"
    return None


class _Refused(Exception):
    """A node that matches no layer, and why."""


_CHANNELS_FIRST = {"conv", "conv_transpose", "maxpool", "avgpool", "global_avgpool", "global_maxpool",
                   "batchnorm", "upsample", "pad"}
_ANY_ORDER = {"relu", "relu6", "sigmoid", "tanh", "leaky_relu", "hardsigmoid",
                   "hardswish", "silu", "gelu", "elu", "hardtanh", "clamp", "exp", "add", "mul"}
_TO_FIRST = {3: [0, 2, 1], 4: [0, 3, 1, 2], 5: [0, 4, 1, 2, 3]}
# layers whose result has its channels at axis 1 (channel_axis())
_CHANNELS_AT_1 = {"conv", "conv_transpose", "maxpool", "avgpool", "global_avgpool", "global_maxpool",
                  "batchnorm", "upsample", "channel_shuffle", "flatten"}
_TO_LAST = {3: [0, 2, 1], 4: [0, 2, 3, 1], 5: [0, 2, 3, 4, 1]}
_LAST = {3: "NLC", 4: "NHWC", 5: "NDHWC"}


class _Tensor:
    """An activation: a layer's (or an input's) output."""

    def __init__(self, shape: list):
        self.shape = shape


def _size(values) -> str:
    values = [int(v) for v in values]
    return str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"


def _padding(pads: list[int], rank: int) -> str | None:
    pads = [int(p) for p in pads] or [0] * (2 * rank)
    begins, ends = pads[:rank], pads[rank:]
    if begins == ends:
        return None if not any(begins) else _size(begins)
    return "(" + ", ".join(map(str, begins + ends)) + ")"


class _Importer:
    def __init__(self, model, name: str):
        import onnx
        from onnx import numpy_helper, shape_inference

        self.onnx = onnx
        self.name = name
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        try:
            inferred = shape_inference.infer_shapes(_light(model), data_prop=True)
        except Exception:  # a model shape inference cannot follow: the declared shapes only
            inferred = model
        g = inferred.graph
        model_graph = model.graph
        self.graph = g
        self.shapes = _shapes(g)
        # shapes computed at run time from the batch (TorchScript's ViT: every Reshape's target
        # from Shape(image)) that inference could not follow: the targets as the model computes
        # them for two batches, restated from the input's batch size, and inferred again
        again = _restated_targets(model, g, self.shapes)
        if again is not None:
            try:
                more = _shapes(shape_inference.infer_shapes(again, data_prop=True).graph)
            except Exception:
                more = {}
            for name, dims in more.items():
                if name not in self.shapes or _known(dims) > _known(self.shapes[name]):
                    self.shapes[name] = dims
        self.consts: dict[str, np.ndarray] = {}
        self.const_names: set[str] = set()
        for init in model_graph.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
            self.const_names.add(init.name)
        # the dynamo exporter's pre-transposed weights (`val_5`, [in, out]) name the initializer
        # they were folded from (`features.1.0.block.3.weight`) in their value_info's metadata
        self.folded_from: dict[str, str] = {}
        for info in model_graph.value_info:
            for prop in info.metadata_props:
                if prop.key == "pkg.onnxscript.optimizer.folded_from":
                    origin = _literal_list(prop.value)
                    if len(origin) == 1 and isinstance(origin[0], str) and _LABEL.match(origin[0]):
                        self.folded_from[info.name] = origin[0]
        # the dynamo exporter names nodes `node_relu_1` and keeps the module path in metadata
        self.scopes = {n.name: path for n in model_graph.node if (path := _scope_name(n))}
        self.classes = _module_classes(model_graph.node) if self.scopes else {}
        self.tensors: dict[str, _Tensor] = {}
        self.alias: dict[str, str] = {}
        self.layers: list[Layer] = []
        self.producer: dict[str, Layer] = {}
        self.unsupported: dict[str, list[str]] = {}
        self.consumers: dict[str, list] = {}
        for node in g.node:
            for x in node.input:
                if x:
                    self.consumers.setdefault(x, []).append(node)
        self.skip: set[int] = set()
        self.gelus: dict[str, tuple[str, str]] = {}   # the final Mul's value -> (x, node name)
        self.matched: dict[str, Layer] = {}           # a multi-node pattern's last value -> its layer
        self.owned: dict[str, tuple[str, str, str]] = {}  # a param's or buffer's binding -> (kind, key, args)
        self._channels: dict[str, int | None] = {}   # channel_axis(): a layer's value -> its channel axis
        self._channels_upto = 0                      # the layers channel_axis() has seen
        self.inputs = [i for i in model_graph.input if i.name not in self.consts]
        # a channels-last input (netspec's NHWC, or Keras's) is read through Transposes to
        # channels first around each channels-first operator: `order` is, for the ONNX values of
        # such tensors, "first" while in that order and "declared" once back
        self.order: dict[str, str] = {}
        self.layouts: dict[str, str] = {}
        for info in self.inputs:
            rank = len(self.shapes.get(info.name, []))
            readers = self.consumers.get(info.name, [])
            if rank in _TO_FIRST and readers and all(
                    n.op_type == "Transpose" and [a.ints for a in n.attribute if a.name == "perm"] == [_TO_FIRST[rank]]
                    for n in readers):
                self.layouts[info.name] = _LAST[rank]
                self.order[info.name] = "declared"

    # ------------------------------------------------------------ values

    def real(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def is_tensor(self, name: str) -> bool:
        return bool(name) and self.real(name) in self.tensors

    def shape(self, name: str) -> list:
        return self.shapes.get(name) or self.shapes.get(self.real(name)) or []

    def add(self, layer: Layer) -> str | None:
        """Record `layer`; a reason it cannot be, where it reads a channels-last tensor in an
        order its netspec layer would not."""
        orders = {self.order.get(x, "declared") for x in layer.inputs}
        if self.order.get(layer.inputs[0]) is not None or len(orders) > 1:
            first = self.channels_first_order(layer.inputs[0])
            if len(orders) > 1 or (layer.kind not in _ANY_ORDER and (layer.kind in _CHANNELS_FIRST) != first):
                raise _Refused("a channels-last tensor read in another axis order than its layout's")
            self.order[layer.output] = "first" if first else "declared"
        layer.inputs = [self.real(x) for x in layer.inputs]
        self.layers.append(layer)
        self.producer[layer.output] = layer
        self.tensors[layer.output] = _Tensor(self.shape(layer.output))

    def unsupported_node(self, node, why: str | None = None) -> None:
        key = node.op_type + (f" ({why})" if why else "")
        self.unsupported.setdefault(key, []).append(node.name or node.output[0])

    # ------------------------------------------------------------ the walk

    def run(self) -> None:
        """Read every node as layers; a NetspecError for what cannot be."""
        known = set(self.consts) | {i.name for i in self.graph.input} | {o for m in self.graph.node for o in m.output}
        missing = [(n, x) for n in self.graph.node for x in n.input if x and x not in known]
        if missing:
            lines = [f"node `{n.name or n.op_type}` ({n.op_type}) reads `{x}`" for n, x in missing[:20]]
            raise _error(f"the model reads {len(missing)} value(s) that no node, input or initializer "
                         "provides (a missing initializer?)", notes=lines)
        for info in self.inputs:
            self.tensors[info.name] = _Tensor(self.shape(info.name))
        self.match_gelu()
        self.match_attention()
        self.match_channel_shuffle()
        self.match_channel_layernorm()
        self.match_normalize()
        self.match_as_strided()
        self.match_torch_attention()
        self.skip_dead()
        for index, node in enumerate(self.graph.node):
            if index in self.skip:
                continue
            self.visit(node)
        if self.unsupported:
            notes = []
            for op, names in sorted(self.unsupported.items()):
                shown = ", ".join(f"`{n}`" for n in names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
                notes.append(f"{op}: {len(names)} node{'s' if len(names) > 1 else ''}: {shown}")
            total = sum(map(len, self.unsupported.values()))
            raise _error(f"cannot import the model: {total} node{'s' if total > 1 else ''} of "
                         f"{len(self.unsupported)} kind{'s' if len(self.unsupported) > 1 else ''} "
                         "have no netspec layer", notes=notes,
                         hint="netspec imports the layers its own export emits and PyTorch's usual patterns")
        # the params and buffers, each just before the first layer that reads it, then the labels
        self.labelled = list(self.layers)
        for owned in self.owned_layers():
            at = next((i for i, layer in enumerate(self.labelled) if owned.output in layer.inputs),
                      len(self.labelled))
            self.labelled.insert(at, owned)
        self.weights = label_layers(self.labelled, self.scopes)

    def match_gelu(self) -> None:
        """0.5 x (1 + erf(x / sqrt 2)): Div, Erf, Add, and Mul(x, 0.5) with Mul of the two (in
        any operand order), as netspec and torch.onnx emit it."""
        nodes = list(self.graph.node)
        index_of = {id(n): i for i, n in enumerate(nodes)}
        producer = {o: n for n in nodes for o in n.output}

        def scalar(name, value):
            c = self.consts.get(name)
            if c is None and name in producer and producer[name].op_type == "Constant":
                c = self.onnx.numpy_helper.to_array(producer[name].attribute[0].t)
            return c is not None and c.size == 1 and abs(float(c.reshape(-1)[0]) - value) < 1e-4

        for erf in nodes:
            if erf.op_type != "Erf":
                continue
            div = producer.get(erf.input[0])
            if not div or div.op_type != "Div" or not scalar(div.input[1], 1.4142135623730951):
                continue
            x = div.input[0]
            adds = self.consumers.get(erf.output[0], [])
            if len(adds) != 1 or adds[0].op_type != "Add":
                continue
            add = adds[0]
            if not scalar([i for i in add.input if i != erf.output[0]][0], 1.0):
                continue
            finals = self.consumers.get(add.output[0], [])
            if len(finals) != 1 or finals[0].op_type != "Mul":
                continue
            final = finals[0]
            other = [i for i in final.input if i != add.output[0]][0]
            half = producer.get(other)
            group = [div, erf, add, final]
            if half is not None and half.op_type == "Mul" and x in half.input and \
                    scalar([i for i in half.input if i != x][0], 0.5):
                group.append(half)
            elif other == x:  # x * (1 + erf) then * 0.5
                after = self.consumers.get(final.output[0], [])
                if len(after) != 1 or after[0].op_type != "Mul" or not scalar(
                        [i for i in after[0].input if i != final.output[0]][0], 0.5):
                    continue
                group.append(after[0])
                final = after[0]
            else:
                continue
            for n in group:
                self.skip.add(index_of[id(n)])
            # visited as one node where the final Mul stands
            self.gelus[final.output[0]] = (x, final.name)
            self.skip.discard(index_of[id(final)])

    def match_attention(self) -> None:
        """netspec's `multihead_attention` as its lowering emits it: MatMul by the transposed
        `in_proj_weight` (+ `in_proj_bias`), Reshape to (N, L, 3, H, d), Transpose to (3, N, H,
        L, d), three Gathers (q, k, v), q @ k^T * d^-0.5, Softmax, @ v, Transpose and Reshape
        back to (N, L, E), MatMul by the transposed `out_proj.weight` (+ `out_proj.bias`)."""
        nodes = list(self.graph.node)
        index_of = {id(n): i for i, n in enumerate(nodes)}
        producer = {o: n for n in nodes for o in n.output}
        helper = self.onnx.helper

        def attr(n, name, default=None):
            return next((helper.get_attribute_value(a) for a in n.attribute if a.name == name), default)

        def only(value, op):
            readers = self.consumers.get(value, [])
            ok = len(readers) == 1 and readers[0].op_type == op and value not in self.output_names
            return readers[0] if ok else None

        def weight(name, suffix):
            n = producer.get(name)
            if n is not None and n.op_type == "Transpose" and list(attr(n, "perm", [])) == [1, 0] and \
                    n.input[0] in self.const_names and n.input[0].endswith(suffix):
                return n.input[0], n
            return None

        def const(name):
            c = self.consts.get(name)
            if c is None and name in producer and producer[name].op_type == "Constant":
                c = self.onnx.numpy_helper.to_array(producer[name].attribute[0].t)
            return c

        def bias(value, suffix, group, params, key):
            add = only(value, "Add")
            if add is None:
                return value
            b = [i for i in add.input if i != value]
            if len(b) != 1 or b[0] not in self.const_names or not b[0].endswith(suffix):
                return value
            group.append(add)
            params[key] = (b[0], self.consts[b[0]])
            return add.output[0]

        for mm in nodes:
            if mm.op_type != "MatMul" or not (w_in := weight(mm.input[1], "in_proj_weight")):
                continue
            group = [w_in[1], mm]
            params = {"in_proj_weight": (w_in[0], self.consts[w_in[0]])}
            v = bias(mm.output[0], "in_proj_bias", group, params, "in_proj_bias")
            reshape = only(v, "Reshape")
            shape = const(reshape.input[1]) if reshape is not None else None
            if shape is None or shape.size != 5 or int(shape[2]) != 3:
                continue
            heads, d = int(shape[3]), int(shape[4])
            split = only(reshape.output[0], "Transpose")
            if split is None or list(attr(split, "perm", [])) != [2, 0, 3, 1, 4]:
                continue
            gathers = self.consumers.get(split.output[0], [])
            picks = {}
            for g in gathers:
                index = const(g.input[1]) if g.op_type == "Gather" and attr(g, "axis", 0) == 0 else None
                if index is not None and index.size == 1:
                    picks[int(index.reshape(-1)[0])] = g
            if len(gathers) != 3 or sorted(picks) != [0, 1, 2]:
                continue
            q, k, val = (picks[i].output[0] for i in range(3))
            kt = only(k, "Transpose")
            scores = kt and only(kt.output[0], "MatMul")
            if kt is None or list(attr(kt, "perm", [])) != [0, 1, 3, 2] or scores is None or \
                    list(scores.input) != [q, kt.output[0]] or only(q, "MatMul") is not scores:
                continue
            scale = only(scores.output[0], "Mul")
            s = scale and const(next(i for i in scale.input if i != scores.output[0]))
            if s is None or s.size != 1 or abs(float(s.reshape(-1)[0]) - d ** -0.5) > 1e-6:
                continue
            softmax = only(scale.output[0], "Softmax")
            av = softmax and only(softmax.output[0], "MatMul")
            if av is None or attr(softmax, "axis", -1) not in (-1, 3) or list(av.input) != [softmax.output[0], val] \
                    or only(val, "MatMul") is not av:
                continue
            merge = only(av.output[0], "Transpose")
            back = merge and only(merge.output[0], "Reshape")
            out = back and only(back.output[0], "MatMul")
            w_out = out and weight(out.input[1], "out_proj.weight")
            if not w_out or list(attr(merge, "perm", [])) != [0, 2, 1, 3]:
                continue
            group += [reshape, split, *gathers, kt, scores, scale, softmax, av, merge, back, w_out[1], out]
            params["out_proj.weight"] = (w_out[0], self.consts[w_out[0]])
            final = bias(out.output[0], "out_proj.bias", group, params, "out_proj.bias")
            if ("in_proj_bias" in params) != ("out_proj.bias" in params):
                continue
            args = [str(heads)] + ([] if "in_proj_bias" in params else ["bias=false"])
            last = group[-1]
            for n in group:
                self.skip.add(index_of[id(n)])
            self.skip.discard(index_of[id(last)])
            self.matched[final] = Layer("multihead_attention", args, [mm.input[0]], final, last.name, params)

    def match_channel_shuffle(self) -> None:
        """netspec's `channel_shuffle(g)` (ShuffleNet): Reshape to [N, g, C/g, ...], Transpose
        of those two axes, Reshape back to [N, C, ...]."""
        nodes = list(self.graph.node)
        index_of = {id(n): i for i, n in enumerate(nodes)}
        helper = self.onnx.helper
        for first in nodes:
            groups = self.consts.get(first.input[1]) if first.op_type == "Reshape" else None
            if groups is None or groups.ndim != 1 or groups.size < 4 or int(groups[0]) != 0:
                continue
            readers = self.consumers.get(first.output[0], [])
            swap = readers[0] if len(readers) == 1 and readers[0].op_type == "Transpose" else None
            perm = [list(helper.get_attribute_value(a)) for a in swap.attribute if a.name == "perm"] if swap else []
            if not perm or perm[0] != [0, 2, 1, *range(3, groups.size)]:
                continue
            readers = self.consumers.get(swap.output[0], [])
            last = readers[0] if len(readers) == 1 and readers[0].op_type == "Reshape" else None
            shape = self.consts.get(last.input[1]) if last is not None else None
            g, c = int(groups[1]), int(groups[1]) * int(groups[2])
            if shape is None or [int(v) for v in shape] != [0, c, *[int(v) for v in groups[3:]]] or \
                    first.output[0] in self.output_names or swap.output[0] in self.output_names:
                continue
            for n in (first, swap):
                self.skip.add(index_of[id(n)])
            self.matched[last.output[0]] = Layer("channel_shuffle", [str(g)], [first.input[0]], last.output[0],
                                                 last.name)

    def match_channel_layernorm(self) -> None:
        """`layernorm` of a channels-first map (ConvNeXt's LayerNorm2d): netspec lowers it as a
        Transpose to channels last, LayerNormalization over the last axis, and a Transpose back;
        the import reads the LayerNormalization on the map itself, both Transposes dropped."""
        helper = self.onnx.helper
        nodes = list(self.graph.node)
        index_of = {id(n): i for i, n in enumerate(nodes)}

        def perm(n):
            return next((list(helper.get_attribute_value(a)) for a in n.attribute if a.name == "perm"), None)

        def only(value, op):
            readers = self.consumers.get(value, [])
            ok = len(readers) == 1 and readers[0].op_type == op and value not in self.output_names
            return readers[0] if ok else None

        for first in nodes:
            if first.op_type != "Transpose" or first.input[0] in self.order:
                continue
            rank = len(perm(first) or [])
            norm = only(first.output[0], "LayerNormalization") if perm(first) == _TO_LAST.get(rank) else None
            back = norm and only(norm.output[0], "Transpose")
            if back is None or perm(back) != _TO_FIRST.get(rank) or \
                    next((a.i for a in norm.attribute if a.name == "axis"), -1) not in (-1, rank - 1):
                continue
            self.skip.update((index_of[id(first)], index_of[id(back)]))
            self.alias[first.output[0]] = first.input[0]
            self.alias[back.output[0]] = norm.output[0]
            self.shapes[norm.output[0]] = self.shape(back.output[0])

    def match_normalize(self) -> None:
        """netspec's `normalize(axis)` (F.normalize, Swin V2's cosine attention): x / max(sqrt(
        ReduceSum(x * x, axis, keepdims)), eps)."""
        nodes = list(self.graph.node)
        index_of = {id(n): i for i, n in enumerate(nodes)}
        helper = self.onnx.helper
        for square in nodes:
            if square.op_type != "Mul" or square.input[0] != square.input[1]:
                continue
            x = square.input[0]

            def only(value, op):
                readers = self.consumers.get(value, [])
                ok = len(readers) == 1 and readers[0].op_type == op and value not in self.output_names
                return readers[0] if ok else None

            total = only(square.output[0], "ReduceSum")
            root = total and only(total.output[0], "Sqrt")
            floor = root and only(root.output[0], "Max")
            div = floor and only(floor.output[0], "Div")
            if div is None or list(div.input) != [x, floor.output[0]]:
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in total.attribute}
            axes = self.consts.get(total.input[1]) if len(total.input) > 1 else None
            eps = self.consts.get(next(i for i in floor.input if i != root.output[0]))
            if axes is None or axes.size != 1 or not attrs.get("keepdims", 1) or eps is None or eps.size != 1:
                continue
            rank = len(self.shape(x))
            axis = int(axes.reshape(-1)[0])
            axis += rank if axis < 0 else 0
            args = [str(axis)] + ([] if abs(float(eps.reshape(-1)[0]) - 1e-12) < 1e-15 else
                                  [f"eps={_num(float(eps.reshape(-1)[0]))}"])
            for n in (square, total, root, floor):
                self.skip.add(index_of[id(n)])
            self.matched[div.output[0]] = Layer("normalize", args, [x], div.output[0], div.name)

    def evaluate(self, value: str, batch: int, given: dict | None = None):
        """`value`, computed from initializers, Constants and Shapes alone, evaluated with onnx's
        reference for a batch of `batch` (each Shape's symbolic sizes read as it); None where it
        reads an activation other than through a Shape, or cannot be evaluated. Also the nodes
        that compute it."""
        producer = {o: n for n in self.graph.node for o in n.output}
        helper, numpy_helper = self.onnx.helper, self.onnx.numpy_helper
        given = given or {}
        nodes, feeds, seen, stack = [], {}, set(), [value]
        real_shapes: set[int] = set()
        while stack:
            name = stack.pop()
            if not name or name in seen:
                continue
            seen.add(name)
            if name in given:
                continue
            if name in self.const_names:
                feeds[name] = self.consts[name]
                continue
            n = producer.get(name)
            if n is None:
                return None, []
            nodes.append(n)
            if n.op_type == "Shape" and given and n.input[0] not in {i.name for i in self.inputs}:
                real_shapes.add(id(n))  # of an activation computed from the given ones
                stack.append(n.input[0])
                continue
            if n.op_type == "Shape":
                sizes = self.shape(n.input[0])
                if not sizes or any(not (isinstance(d, int) and d > 0) for d in sizes[1:]):
                    return None, []
                continue
            stack.extend(n.input)
        order = {id(n): i for i, n in enumerate(self.graph.node)}
        nodes.sort(key=lambda n: order[id(n)])
        body = []
        for n in nodes:
            if n.op_type == "Shape" and id(n) not in real_shapes:
                sizes = [batch if not (isinstance(d, int) and d > 0) else d for d in self.shape(n.input[0])]
                attrs = {a.name: a.i for a in n.attribute}
                sizes = sizes[attrs.get("start", 0):attrs.get("end", len(sizes))] if "end" in attrs else \
                    sizes[attrs.get("start", 0):]
                body.append(helper.make_node("Constant", [], [n.output[0]],
                                             value=numpy_helper.from_array(np.array(sizes, np.int64))))
            else:
                body.append(n)
        inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
                  for k, v in given.items()]
        out = helper.make_value_info(value, self.onnx.TypeProto())  # of any type
        graph = helper.make_graph(body, "shape", inputs, [out],
                                  [numpy_helper.from_array(np.asarray(v), k) for k, v in feeds.items()])
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        model.ir_version = self.model.ir_version
        result = None
        if given:  # activations: onnxruntime, much faster than the reference at a MatMul
            try:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.log_severity_level = 3
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # numpy runs next
                session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                                       providers=["CPUExecutionProvider"])
                (result,) = session.run(None, dict(given))
            except Exception:
                result = None
        if result is None:
            try:
                from onnx.reference import ReferenceEvaluator

                (result,) = ReferenceEvaluator(model).run(None, dict(given))
            except Exception:
                return None, []
        return np.asarray(result), nodes

    def match_as_strided(self) -> None:
        """The dynamo exporter's `aten.as_strided` where it only restates a tensor's shape
        (ConvNeXt's head after its mean): Reshape(x, [-1]) and a Gather by indices computed from
        the batch size (Range, Mul, Unsqueeze, Adds) that, for every batch tried, are the
        elements' own order in x's shape. The Gather is x itself."""
        nodes = list(self.graph.node)
        index_of = {id(n): i for i, n in enumerate(nodes)}
        producer = {o: n for n in nodes for o in n.output}
        for gather in nodes:
            if gather.op_type != "Gather" or gather.input[1] in self.consts:
                continue
            flat = producer.get(gather.input[0])
            target = self.consts.get(flat.input[1]) if flat is not None and flat.op_type == "Reshape" else None
            if target is None or [int(v) for v in target.reshape(-1)] != [-1] or \
                    len(self.consumers.get(flat.output[0], [])) != 1:
                continue
            x = flat.input[0]
            sizes = self.shape(x)
            if not sizes or any(not (isinstance(d, int) and d > 0) for d in sizes[1:]):
                continue
            for batch in (1, 2):
                index, _ = self.evaluate(gather.input[1], batch)
                shape = [batch, *sizes[1:]]
                if index is None or list(index.shape) != shape or \
                        not np.array_equal(index.reshape(-1), np.arange(index.size)):
                    break
            else:
                self.skip.update(index_of[id(n)] for n in (flat, gather))
                self.alias[gather.output[0]] = x
                self.shapes[gather.output[0]] = self.shape(x)

    def match_torch_attention(self) -> None:
        """nn.MultiheadAttention as torch.onnx exports it (torchvision's ViT, both exporters): the
        tokens transposed to (L, N, E), the in_proj (a MatMul by `in_proj_weight` transposed, or by
        the dynamo exporter's pre-transposed copy of it, and `in_proj_bias` added), the heads split,
        scaled, attended and merged by whatever Reshapes, Transposes, Gathers and shape arithmetic
        the exporter chose, the out_proj (a Gemm or MatMul by `out_proj.weight`, + `out_proj.bias`)
        and the Reshape and Transpose back to (N, L, E). Found by its projections' names, it is
        taken for `multihead_attention` only where the subgraph between, evaluated on random
        tokens for two batch sizes, gives PyTorch's attention with those weights."""
        nodes = list(self.graph.node)
        index_of = {id(n): i for i, n in enumerate(nodes)}
        producer = {o: n for n in nodes for o in n.output}
        done = {o for layer in self.matched.values() for o in [layer.output]}
        skipped = set(self.skip)

        def origin(name):
            return self.folded_from.get(name, name)

        def weight_of(n, suffix):
            """The weight a MatMul or Gemm multiplies by, if it is the initializer `...suffix` (or
            the dynamo exporter's pre-transposed copy of it): its name and its [out, in] array."""
            if n.op_type not in ("MatMul", "Gemm") or len(n.input) < 2:
                return None
            w = n.input[1]
            t = producer.get(w)
            if t is not None and t.op_type == "Transpose" and t.input[0] in self.const_names:
                if next((list(a.ints) for a in t.attribute if a.name == "perm"), [1, 0]) != [1, 0]:
                    return None
                name, array = t.input[0], self.consts[t.input[0]]   # x @ W^T, W as stored
                if n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute):
                    array = array.T
            elif w in self.const_names:
                name, array = origin(w), self.consts[w]
                if n.op_type == "MatMul" or not any(a.name == "transB" and a.i for a in n.attribute):
                    array = array.T  # x @ W: W is [in, out]
            else:
                return None
            if not name.endswith(suffix) or array.ndim != 2:
                return None
            return name, np.ascontiguousarray(array)

        def bias_after(value, suffix):
            readers = self.consumers.get(value, [])
            if len(readers) != 1 or readers[0].op_type != "Add":
                return None
            others = [i for i in readers[0].input if i != value]
            if len(others) == 1 and others[0] in self.const_names and others[0].endswith(suffix):
                return readers[0], others[0]
            return None

        outs = [n for n in nodes if n.op_type in ("MatMul", "Gemm") and n.input[1:] and
                (origin(n.input[1]).endswith("out_proj.weight") or n.input[1] in producer and
                 producer[n.input[1]].op_type == "Transpose" and producer[n.input[1]].input[0].endswith("out_proj.weight"))]
        for mm in nodes:
            if mm.op_type != "MatMul" or index_of[id(mm)] in skipped or mm.output[0] in done:
                continue
            w_in = weight_of(mm, "in_proj_weight")
            if w_in is None:
                continue
            e = w_in[1].shape[1]
            if w_in[1].shape != (3 * e, e):
                continue
            params = {"in_proj_weight": w_in}
            if (b := bias_after(mm.output[0], "in_proj_bias")) is not None:
                params["in_proj_bias"] = (b[1], self.consts[b[1]])
            # the tokens: before the Transposes and Reshapes only the in_proj reads
            start = mm.input[0]
            while start in producer and producer[start].op_type in ("Transpose", "Reshape") and \
                    sum(r.op_type != "Shape" for r in self.consumers.get(start, [])) == 1 and \
                    start not in self.output_names:
                start = producer[start].input[0]
            below = {start}  # the values computed from the tokens
            for n in nodes[index_of[id(producer[start])] + 1 if start in producer else 0:]:
                if any(x in below for x in n.input):
                    below.update(n.output)
            out = next((n for n in outs if n.input[0] in below and n.output[0] in below), None)
            if out is None or index_of[id(out)] in skipped:
                continue
            prefix = w_in[0][:-len("in_proj_weight")]
            w_out = weight_of(out, "out_proj.weight")
            if w_out is None or w_out[0] != prefix + "out_proj.weight" or w_out[1].shape != (e, e):
                continue
            params["out_proj.weight"] = w_out
            end = out.output[0]
            if out.op_type == "Gemm" and len(out.input) > 2 and out.input[2]:
                if not out.input[2].endswith("out_proj.bias"):
                    continue
                params["out_proj.bias"] = (out.input[2], self.consts[out.input[2]].reshape(-1))
            elif (b := bias_after(end, "out_proj.bias")) is not None:
                params["out_proj.bias"] = (b[1], self.consts[b[1]])
                end = b[0].output[0]
            if ("in_proj_bias" in params) != ("out_proj.bias" in params):
                continue
            while end not in self.output_names:
                readers = [r for r in self.consumers.get(end, []) if r.op_type != "Shape"]
                if len(readers) != 1 or readers[0].op_type not in ("Reshape", "Transpose"):
                    break
                end = readers[0].output[0]
            # the nodes between the tokens and the end
            above, stack = set(), [end]
            while stack:
                v = stack.pop()
                if v in above or v == start:
                    continue
                above.add(v)
                if v in producer:
                    stack.extend(x for x in producer[v].input if x)
            group = [n for n in nodes if any(o in below and o in above for o in n.output)]
            inside = {o for n in group for o in n.output}
            if any(o != end and (o in self.output_names or
                                 any(id(r) not in {id(g) for g in group} for r in self.consumers.get(o, [])))
                   for o in inside) or any(index_of[id(n)] in skipped for n in group):
                continue
            heads = self._attention_heads(start, end, params)
            if heads is None:
                continue
            args = [str(heads)] + ([] if "in_proj_bias" in params else ["bias=false"])
            last = producer[end]
            self.skip.update(index_of[id(n)] for n in group)
            self.skip.discard(index_of[id(last)])
            self.matched[end] = Layer("multihead_attention", args, [start], end, last.name, params)
            self.shapes[end] = self.shape(start)

    def _attention_heads(self, start: str, end: str, params) -> int | None:
        """The heads with which nn.MultiheadAttention(batch_first=True) computes what the model
        computes from `start` to `end`, on random tokens of batch 1 and 3; None where none does."""
        sizes = self.shape(start)
        if len(sizes) != 3 or any(not (isinstance(d, int) and d > 0) for d in sizes[1:]):
            return None
        length, e = sizes[1], sizes[2]
        w_in, w_out = params["in_proj_weight"][1], params["out_proj.weight"][1]
        b_in = params.get("in_proj_bias", (None, np.zeros(3 * e, np.float32)))[1]
        b_out = params.get("out_proj.bias", (None, np.zeros(e, np.float32)))[1]
        rng = np.random.default_rng(0)
        tries = []
        for batch in (1, 2):
            x = rng.standard_normal((batch, length, e)).astype(np.float32)
            got, _ = self.evaluate(end, batch, {start: x})
            if got is None or got.shape != x.shape:
                return None
            qkv = x @ w_in.T.astype(np.float32) + b_in.astype(np.float32)
            tries.append((x, qkv, got))
        # the usual head widths first (64, then 32 or 128, ...): each try costs an attention
        for heads in sorted((h for h in range(1, e + 1) if e % h == 0), key=lambda h: abs(np.log2(e / h / 64))):
            d = e // heads
            for x, qkv, got in tries:
                q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(x.shape[0], length, heads, d).transpose(0, 2, 1, 3)
                           for i in range(3))
                scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d))
                scores = np.exp(scores - scores.max(-1, keepdims=True))
                attended = (scores / scores.sum(-1, keepdims=True)) @ v
                want = attended.transpose(0, 2, 1, 3).reshape(x.shape) @ w_out.T.astype(np.float32) + b_out
                scale = float(np.abs(want).max()) or 1.0
                if float(np.abs(want - got).max()) > 1e-3 * scale:
                    break
            else:
                return heads
        return None

    def skip_dead(self) -> None:
        """Skip the nodes whose values nothing visited reads: the shape arithmetic of the nodes
        a pattern matched (its layer reads only its inputs)."""
        nodes = list(self.graph.node)
        live = set(self.output_names)

        def mark(name):
            while name:
                live.add(name)
                name = self.alias.get(name)

        for name in list(live):
            mark(name)
        for index in range(len(nodes) - 1, -1, -1):
            node = nodes[index]
            if not any(o in live for o in node.output):
                if index not in self.skip:
                    self.skip.add(index)
                continue
            if index in self.skip:
                continue
            first = node.output[0] if node.output else None
            if first in self.matched:
                reads = self.matched[first].inputs
            elif first in self.gelus:
                reads = [self.gelus[first][0]]
            else:
                reads = list(node.input)
            for x in reads:
                mark(x)

    def own(self, name: str) -> bool:
        """Make the initializer `name`, read as an activation, a tensor of the network's own: a
        `param(...)` or `buffer(...)` bound to a name (owned_layers makes its step). False where it
        cannot be one (a scalar, a folded constant, a name that is no state_dict key)."""
        if self.real(name) in self.owned:
            return True
        if name not in self.const_names or not _LABEL.match(name) or self.consts[name].ndim == 0:
            return False
        from netspec.layers.base import LAYERS

        array = self.consts[name]
        base = re.sub(r"\W", "_", name).strip("_") or "t"
        base = "t_" + base if base[0].isdigit() else base
        taken = {i.name for i in self.inputs} | {o.name for o in self.graph.output} | set(LAYERS)
        binding, k = base, 1
        while binding in taken or keyword.iskeyword(binding):
            k += 1
            binding = f"{base}_{k}"
        kind = "param" if np.issubdtype(array.dtype, np.floating) and \
            name.rsplit(".", 1)[-1] not in _BUFFER_NAMES else "buffer"
        mask = _window_mask(array)
        if mask:  # Swin's mask of shifted windows: a constant, no state_dict key
            kind = "buffer"
        table = _table_init(name, array) if kind == "buffer" and not mask else None
        more = f", init={mask}, persistent=false" if mask else f", init={table}" if table else ""
        self.owned[binding] = (kind, name, more)
        if binding != name:
            self.alias[name] = binding
        self.shapes[binding] = list(array.shape)
        self.tensors[binding] = _Tensor(list(array.shape))
        # declared as an input until written: write() then names and reads it as one
        self.inputs.append(self.onnx.helper.make_tensor_value_info(
            binding, self.onnx.helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape)))
        return True

    def _state(self, name: str) -> bool:
        """Whether `name` is an initializer named as a state_dict key (not an export's constant,
        `conv/shape`), of more than one element."""
        return name in self.const_names and bool(_LABEL.match(name)) and self.consts[name].size > 1

    def unlaid(self, name: str) -> bool:
        """Whether `name` is computed from the network's own tensors alone (no batch axis)."""
        name = self.real(name)
        layer = self.producer.get(name)
        return name in self.owned or layer is not None and all(self.unlaid(x) for x in layer.inputs)

    def owned_layers(self) -> list[Layer]:
        """The params and buffers own() declared, each as the call that makes it (`param(1, 50,
        768)`), placed just before its first reader; its array is the layer's value."""
        floats = [_DTYPES.get(i.type.tensor_type.elem_type) for i in self.inputs if i.name not in self.owned]
        network = next((d for d in floats if d in ("f16", "bf16", "f32", "f64")), "f32")
        made = []
        for binding, (kind, key, more) in self.owned.items():
            array = self.consts[key]
            dtype = _DTYPES.get(self.onnx.helper.np_dtype_to_tensor_dtype(array.dtype))
            args = [str(d) for d in array.shape] + ([] if dtype == network else [f"dtype={dtype}"])
            more = more.removeprefix(", ")
            persistent = not more.endswith("persistent=false")
            if not persistent:
                more = more.removesuffix("persistent=false").removesuffix(", ")
            args += ([more] if more else []) + ([] if persistent else ["persistent=false"])
            made.append(Layer(kind, args, [], binding, key, value=array if persistent else None))
        return made

    def fold(self, node) -> bool:
        """Evaluate a node whose inputs are all constant (or partly known shapes)."""
        ins = [x for x in node.input]
        if node.op_type == "Constant":
            from onnx import numpy_helper

            attr = node.attribute[0]
            if attr.name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(attr.t)
            else:
                value = self.onnx.helper.get_attribute_value(attr)
                self.consts[node.output[0]] = np.array(value)
            return True
        if node.op_type == "Shape" and self.is_tensor(ins[0]):
            shape = self.shape(ins[0])
            if not shape:
                return False
            start = end = None
            for a in node.attribute:
                if a.name == "start":
                    start = a.i
                if a.name == "end":
                    end = a.i
            self.consts[node.output[0]] = np.array([d if isinstance(d, int) and d > 0 else "?" for d in shape],
                                                   dtype=object)[start:end]
            return True
        if any(x and x not in self.consts for x in ins):
            return False
        if any(x and self.real(x) in self.owned for x in ins) or node.op_type in _OWNED_READERS and \
                self._state(ins[0]):
            return False  # a param's or buffer's value stays one (a bias table read by an index)
        values = [self.consts[x] if x else None for x in ins]
        if any(v is not None and v.dtype == object for v in values):
            return self.fold_shape(node, values)
        from onnx.reference import ReferenceEvaluator

        try:
            outputs = ReferenceEvaluator(node).run(None, {x: v for x, v in zip(ins, values) if x})
        except Exception:
            return False
        for name, value in zip(node.output, outputs):
            self.consts[name] = np.asarray(value)
        return True

    def fold_shape(self, node, values) -> bool:
        """Shape arithmetic with a symbolic batch: 1-D object arrays of sizes and `?`."""
        op = node.op_type
        if op == "Slice":
            data, starts, ends = values[0], values[1], values[2]
            steps = values[4] if len(values) > 4 and values[4] is not None else [1]
            result = data[int(starts[0]):int(ends[0]) if int(ends[0]) < 2 ** 62 else None:int(steps[0])]
        elif op == "Concat":
            result = np.concatenate([np.asarray(v, dtype=object).reshape(-1) for v in values])
        elif op == "Gather":
            result = np.asarray(values[0], dtype=object)[np.asarray(values[1], dtype=np.int64)]
        elif op in ("Cast", "Identity"):
            result = values[0]
        elif op == "Unsqueeze":
            result = np.asarray(values[0], dtype=object).reshape(-1)
        else:
            result = self._batch_free(node, values)
            if result is None:
                return False
        result = np.asarray(result, dtype=object)
        if all(not isinstance(v, str) for v in result.reshape(-1)):
            result = result.astype(np.int64)
        self.consts[node.output[0]] = result
        return True

    def _batch_free(self, node, values):
        """`node` evaluated with the symbolic batch `?` read as 2 and as 3: where both agree, the
        value; where they differ only in sizes that are the batch itself, those are `?`; else None."""
        from onnx.reference import ReferenceEvaluator

        results = []
        for batch in (2, 3):
            feeds = {}
            for x, v in zip(node.input, values):
                if x and v is not None:
                    if v.dtype == object:
                        v = np.array([batch if isinstance(d, str) else d for d in v.reshape(-1)],
                                     np.int64).reshape(v.shape)
                    feeds[x] = v
            try:
                (out,) = ReferenceEvaluator(node).run(None, feeds)
            except Exception:
                return None
            results.append(np.asarray(out))
        two, three = results
        if two.shape != three.shape:
            return None
        if np.array_equal(two, three):
            return two
        if two.ndim != 1 or two.dtype.kind not in "iu":
            return None
        merged = []
        for a, b in zip(two.tolist(), three.tolist()):
            if a == b:
                merged.append(a)
            elif (a, b) == (2, 3):
                merged.append("?")
            else:
                return None
        return np.array(merged, dtype=object)

    def visit(self, node) -> None:
        if node.output and node.output[0] in self.matched:
            self.add(self.matched[node.output[0]])
            return
        if node.output and node.output[0] in self.gelus:
            x, name = self.gelus[node.output[0]]
            self.add(Layer("gelu", [], [x], node.output[0], name))
            return
        if self.fold(node):
            return
        op = node.op_type
        if all(x in self.consts and not self._state(x) for x in node.input if x) and \
                any(self.consts[x].dtype == object for x in node.input if x):
            self.unsupported_node(node, "shape arithmetic of the batch size that netspec cannot follow")
            return
        if op in _OWNED_READERS and self._state(node.input[0]):
            self.own(node.input[0])
        handler = getattr(self, "op_" + op, None)
        if handler is None:
            self.unsupported_node(node)
            return
        tensor_inputs = [x for x in node.input if x and x not in self.consts]
        if any(not self.is_tensor(x) for x in tensor_inputs):
            self.unsupported_node(node, "reads a value that is not a tensor")
            return
        try:
            why = handler(node, {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute})
        except _Refused as exc:
            why = str(exc)
        if why:
            self.unsupported_node(node, why)

    # ------------------------------------------------------------ op by op

    def op_Relu(self, node, attrs):
        self.add(Layer("relu", [], [node.input[0]], node.output[0], node.name))

    def op_Sigmoid(self, node, attrs):
        self.add(Layer("sigmoid", [], [node.input[0]], node.output[0], node.name))

    def op_Tanh(self, node, attrs):
        self.add(Layer("tanh", [], [node.input[0]], node.output[0], node.name))

    def op_Gelu(self, node, attrs):
        approximate = attrs.get("approximate", b"none")
        approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
        if approximate not in ("none", "tanh"):
            return f"approximate={approximate}"
        args = [] if approximate == "none" else ['approximate="tanh"']
        self.add(Layer("gelu", args, [node.input[0]], node.output[0], node.name))

    def op_Exp(self, node, attrs):
        self.add(Layer("exp", [], [node.input[0]], node.output[0], node.name))

    def op_HardSwish(self, node, attrs):
        self.add(Layer("hardswish", [], [node.input[0]], node.output[0], node.name))

    def op_Elu(self, node, attrs):
        alpha = attrs.get("alpha", 1.0)
        args = [] if abs(alpha - 1.0) < 1e-7 else [_num(alpha)]
        self.add(Layer("elu", args, [node.input[0]], node.output[0], node.name))

    def op_LeakyRelu(self, node, attrs):
        alpha = attrs.get("alpha", 0.01)
        args = [] if abs(alpha - 0.01) < 1e-9 else [_num(alpha)]
        self.add(Layer("leaky_relu", args, [node.input[0]], node.output[0], node.name))

    def op_HardSigmoid(self, node, attrs):
        if abs(attrs.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(attrs.get("beta", 0.5) - 0.5) > 1e-6:
            return "alpha and beta other than 1/6 and 0.5"
        self.add(Layer("hardsigmoid", [], [node.input[0]], node.output[0], node.name))

    def op_Clip(self, node, attrs):
        low = self.const(node.input[1]) if len(node.input) > 1 else None
        high = self.const(node.input[2]) if len(node.input) > 2 else None
        low = attrs.get("min") if low is None and "min" in attrs else low
        high = attrs.get("max") if high is None and "max" in attrs else high
        lo = None if low is None else float(np.asarray(low).reshape(-1)[0])
        hi = None if high is None else float(np.asarray(high).reshape(-1)[0])
        if lo == 0.0 and hi == 6.0:
            kind, args = "relu6", []
        elif lo is not None and hi is not None:
            kind, args = "hardtanh", [_num(lo), _num(hi)]
        elif lo is None and hi is None:
            self.alias[node.output[0]] = self.real(node.input[0])
            return None
        else:
            kind, args = "clamp", ([f"min={_num(lo)}"] if lo is not None else []) + \
                ([f"max={_num(hi)}"] if hi is not None else [])
        self.add(Layer(kind, args, [node.input[0]], node.output[0], node.name))

    def op_Softmax(self, node, attrs):
        return self._softmax(node, attrs, "softmax")

    def op_LogSoftmax(self, node, attrs):
        return self._softmax(node, attrs, "log_softmax")

    def _softmax(self, node, attrs, kind):
        rank = len(self.shape(node.input[0]))
        # before opset 13 the default axis is 1 and the input is flattened to 2-D there: a
        # softmax over every axis from `axis` on, one axis only where the ones after are 1
        axis = attrs.get("axis", -1 if self.opset >= 13 else 1)
        axis = axis + rank if axis < 0 else axis
        if self.opset < 13 and any(d != 1 for d in self.shape(node.input[0])[axis + 1:]):
            return f"a softmax over axes {axis} to {rank - 1} together (opset {self.opset}'s coercion to 2-D)"
        args = [] if axis == 1 else [str(axis)]
        self.add(Layer(kind, args, [node.input[0]], node.output[0], node.name))

    def op_Identity(self, node, attrs):
        self.alias[node.output[0]] = self.real(node.input[0])

    def op_Dropout(self, node, attrs):
        self.alias[node.output[0]] = self.real(node.input[0])

    def op_Conv(self, node, attrs):
        w = self.const(node.input[1])
        if w is None:
            return "weights that are not an initializer"
        rank = w.ndim - 2
        kernel = attrs.get("kernel_shape", list(w.shape[2:]))
        args = [str(w.shape[0]), _size(kernel)]
        stride = attrs.get("strides", [1] * rank)
        if any(s != 1 for s in stride):
            args.append(f"stride={_size(stride)}")
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER",):
            args.append('padding="same"')
        elif auto == "SAME_LOWER":
            return "auto_pad SAME_LOWER"
        elif auto != "VALID":
            padding = _padding(attrs.get("pads", []), rank)
            if padding:
                args.append(f"padding={padding}")
        self._convolution("conv", node, attrs, args, w, rank)

    def _convolution(self, kind, node, attrs, args, w, rank):
        """The attributes Conv and ConvTranspose share (dilation, groups, the bias) and the layer."""
        dilation = attrs.get("dilations", [1] * rank)
        if any(d != 1 for d in dilation):
            args.append(f"dilation={_size(dilation)}")
        group = attrs.get("group", 1)
        if group != 1:
            args.append(f"groups={group}")
        params = {"weight": (node.input[1], w)}
        b = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if b is not None:
            params["bias"] = (node.input[2], b)
        else:
            args.append("bias=false")
        self.add(Layer(kind, args, [node.input[0]], node.output[0], node.name, params))

    def op_ConvTranspose(self, node, attrs):
        w = self.const(node.input[1])
        if w is None:
            return "weights that are not an initializer"
        if "output_shape" in attrs:
            return "output_shape"
        rank = w.ndim - 2
        group = attrs.get("group", 1)
        args = [str(w.shape[1] * group), _size(attrs.get("kernel_shape", list(w.shape[2:])))]
        stride = attrs.get("strides", [1] * rank)
        if any(s != 1 for s in stride):
            args.append(f"stride={_size(stride)}")
        pads = [int(p) for p in attrs.get("pads", [0] * 2 * rank)]
        if pads[:rank] != pads[rank:]:
            return "asymmetric pads"
        if any(pads):
            args.append(f"padding={_size(pads[:rank])}")
        out_pad = attrs.get("output_padding", [0] * rank)
        if any(out_pad):
            args.append(f"output_padding={_size(out_pad)}")
        self._convolution("conv_transpose", node, attrs, args, w, rank)

    def _window(self, node, attrs, kind):
        kernel = attrs["kernel_shape"]
        rank = len(kernel)
        args = [_size(kernel)]
        stride = attrs.get("strides", [1] * rank)
        if list(stride) != list(kernel):
            args.append(f"stride={_size(stride)}")
        padding = _padding(attrs.get("pads", []), rank)
        if padding:
            args.append(f"padding={padding}")
        if attrs.get("ceil_mode", 0):
            args.append("ceil_mode=true")
        if kind == "maxpool":
            dilation = attrs.get("dilations", [1] * rank)
            if any(d != 1 for d in dilation):
                args.append(f"dilation={_size(dilation)}")
        elif padding and not attrs.get("count_include_pad", 0):
            args.append("count_include_pad=false")
        return args

    def op_MaxPool(self, node, attrs):
        if len(node.output) > 1 and node.output[1]:
            return "indices output"
        if attrs.get("storage_order", 0):
            return "storage_order"
        self.add(Layer("maxpool", self._window(node, attrs, "maxpool"), [node.input[0]], node.output[0], node.name))

    def op_AveragePool(self, node, attrs):
        self.add(Layer("avgpool", self._window(node, attrs, "avgpool"), [node.input[0]], node.output[0], node.name))

    def op_GlobalAveragePool(self, node, attrs):
        self.add(Layer("global_avgpool", [], [node.input[0]], node.output[0], node.name))

    def op_ReduceMean(self, node, attrs):
        """The mean over every spatial axis (the dynamo exporter's adaptive_avg_pool(1)): global_avgpool,
        then flatten where the axes are not kept."""
        rank = len(self.shape(node.input[0]))
        axes = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs.get("axes")
        if axes is None or rank < 3:
            return "a mean over axes that are not known"
        if sorted(int(a) % rank for a in np.asarray(axes).reshape(-1)) != list(range(2, rank)):
            return "a mean over other axes than every spatial one"
        if attrs.get("keepdims", 1):
            self.add(Layer("global_avgpool", [], [node.input[0]], node.output[0], node.name))
            return None
        pooled = node.output[0] + "/pooled"
        self.shapes[pooled] = self.shape(node.input[0])[:2] + [1] * (rank - 2)
        self.add(Layer("global_avgpool", [], [node.input[0]], pooled, node.name))
        self.add(Layer("flatten", [], [pooled], node.output[0], node.name + "/flatten"))

    def op_GlobalMaxPool(self, node, attrs):
        self.add(Layer("global_maxpool", [], [node.input[0]], node.output[0], node.name))

    def op_BatchNormalization(self, node, attrs):
        values = [self.const(x) for x in node.input[1:5]]
        if any(v is None for v in values) or (len(node.output) > 1 and any(node.output[1:])):
            return "statistics that are not initializers, or training outputs"
        scale, shift, mean, var = values
        args = []
        eps = attrs.get("epsilon", 1e-5)
        if abs(eps - 1e-5) > 1e-12:
            args.append(f"eps={_num(eps)}")
        if "momentum" in attrs and abs((1 - attrs["momentum"]) - 0.1) > 1e-6:
            # ONNX keeps 1 - momentum in float32 (0.99 for 0.01): the shortest momentum whose
            # 1 - momentum is that float32 is PyTorch's
            stored = np.float32(attrs["momentum"])
            momentum = next((m for m in (float(f"{1 - float(stored):.{digits}g}") for digits in range(1, 10))
                             if np.float32(1 - m) == stored), 1 - float(stored))
            args.append(f"momentum={_num(momentum)}")
        params = {}
        named = node.input[1].endswith(".weight")
        if not named and np.all(scale == 1) and np.all(shift == 0):
            args.append("affine=false")
        else:
            params["weight"] = (node.input[1], scale)
            params["bias"] = (node.input[2], shift)
        params["running_mean"] = (node.input[3], mean)
        params["running_var"] = (node.input[4], var)
        layer = Layer("batchnorm", args, [node.input[0]], node.output[0], node.name, params)
        layer.buffers["num_batches_tracked"] = np.array(0, dtype=np.int64)
        self.add(layer)

    def op_LayerNormalization(self, node, attrs):
        rank = len(self.shape(node.input[0]))
        axis = attrs.get("axis", -1)
        if axis not in (-1, rank - 1):
            return "normalising over more than the last axis"
        if len(node.output) > 1 and any(node.output[1:]):
            return "mean and inverse deviation outputs"
        scale = self.const(node.input[1])
        bias = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale is None:
            return "a scale that is not an initializer"
        args = []
        eps = attrs.get("epsilon", 1e-5)
        if abs(eps - 1e-5) > 1e-12:
            args.append(f"eps={_num(eps)}")
        params = {}
        if not node.input[1].endswith(".weight") and np.all(scale == 1) and bias is None:
            args.append("elementwise_affine=false")
        else:
            params["weight"] = (node.input[1], scale)
            if bias is not None:
                params["bias"] = (node.input[2], bias)
            else:
                args.append("bias=false")
        self.add(Layer("layernorm", args, [node.input[0]], node.output[0], node.name, params))

    def op_Gemm(self, node, attrs):
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            return "transA, alpha or beta"
        w = self.const(node.input[1])
        if w is None or w.ndim != 2:
            return "weights that are not an initializer"
        if not attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        args = [str(w.shape[0])]
        params = {"weight": (node.input[1], w)}
        b = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if b is not None:
            if b.size != w.shape[0]:
                return "a bias that broadcasts"
            params["bias"] = (node.input[2], b.reshape(-1))
        else:
            args.append("bias=false")
        self.add(Layer("linear", args, [node.input[0]], node.output[0], node.name, params))

    def op_MatMul(self, node, attrs):
        if not self.is_tensor(node.input[0]):
            return "a constant first operand"
        w = self.const(node.input[1])
        if w is None:
            if self.is_tensor(node.input[1]):
                self.add(Layer("matmul", [], [node.input[0], node.input[1]], node.output[0], node.name))
                return None
            return "a constant first operand"
        if w.ndim != 2:
            return "weights of more than two axes"
        weight = np.ascontiguousarray(w.T)
        # the dynamo exporter's `val_5` ([in, out]) is `features.1.0.block.3.weight` transposed:
        # the layer's weight is stored under that name, in its [out, in] layout
        name = self.folded_from.get(node.input[1], node.input[1])
        layer = Layer("linear", [str(weight.shape[0]), "bias=false"], [node.input[0]], node.output[0],
                      node.name, {"weight": (name, weight)})
        self.add(layer)

    def _scalar(self, node, kind, invert=False, negate=False):
        x, c = node.input
        value = self.const(c)
        if value is None:
            x, c = c, x
            value = self.const(c)
            if node.op_type in ("Sub", "Div"):
                return f"a constant {'divided' if node.op_type == 'Div' else 'minus a tensor'}"
        if value.size != 1:
            return "a constant tensor operand (not a scalar)"
        v = float(value.reshape(-1)[0])
        v = 1.0 / v if invert else (-v if negate else v)
        self.add(Layer(kind, [f"scalar={_num(v)}"], [x], node.output[0], node.name))

    def op_Add(self, node, attrs):
        a, b = node.input
        if self.is_tensor(a) and self.is_tensor(b):
            self.add(Layer("add", [], [a, b], node.output[0], node.name))
            return None
        x, c = (a, b) if self.is_tensor(a) else (b, a)
        bias = self.const(c)
        layer = self.producer.get(self.real(x))
        if (layer is not None and layer.kind == "linear" and "bias" not in layer.params
                and bias.ndim == 1 and bias.size == int(layer.args[0])
                and len(self.consumers.get(x, [])) == 1 and x not in self.output_names):
            layer.args.remove("bias=false")
            layer.params["bias"] = (c, bias)
            layer.node = node.name or layer.node  # the node that makes the layer's value
            self.tensors[node.output[0]] = self.tensors[layer.output]
            del self.producer[layer.output]
            if layer.output in self.order:
                self.order[node.output[0]] = self.order[layer.output]
            layer.output = node.output[0]
            self.producer[layer.output] = layer
            return None
        if bias.size != 1 and self.is_tensor(x) and self.own(c):  # a position embedding
            self.add(Layer("add", [], [x, c], node.output[0], node.name))
            return None
        return self._scalar(node, "add")

    def op_Sub(self, node, attrs):
        return self._scalar(node, "add", negate=True)

    def op_Mul(self, node, attrs):
        a, b = node.input
        if self.is_tensor(a) and self.is_tensor(b):
            # x * sigmoid(x): silu
            for x, s in ((a, b), (b, a)):
                layer = self.producer.get(self.real(s))
                if (layer is not None and layer.kind == "sigmoid" and layer.inputs == [self.real(x)]
                        and len(self.consumers.get(s, [])) == 1 and s not in self.output_names):
                    layer.kind = "silu"
                    self._retarget(layer, node)
                    return None
                if (layer is not None and layer.kind == "hardsigmoid" and layer.inputs == [self.real(x)]
                        and len(self.consumers.get(s, [])) == 1 and s not in self.output_names):
                    layer.kind = "hardswish"
                    self._retarget(layer, node)
                    return None
            self.add(Layer("mul", [], [a, b], node.output[0], node.name))
            return None
        x, c = (a, b) if self.is_tensor(a) else (b, a)
        if self.is_tensor(x) and self.const(c) is not None and self.const(c).size != 1 and self.own(c):  # a layer scale
            self.add(Layer("mul", [], [x, c], node.output[0], node.name))
            return None
        return self._scalar(node, "mul")

    def _retarget(self, layer: Layer, node) -> None:
        del self.producer[layer.output]
        if layer.output in self.order:
            self.order[node.output[0]] = self.order[layer.output]
        layer.output, layer.node = node.output[0], node.name
        self.producer[layer.output] = layer
        self.tensors[layer.output] = _Tensor(self.shape(layer.output))

    def op_Div(self, node, attrs):
        return self._scalar(node, "mul", invert=True)

    def op_Concat(self, node, attrs):
        if any(not self.is_tensor(x) and not self.own(x) for x in node.input):
            return "a constant operand"
        if len(node.input) == 1:  # torch.cat of one tensor (DenseNet's first layer): the tensor
            self.alias[node.output[0]] = self.real(node.input[0])
            return None
        rank = len(self.shape(node.input[0]))
        axis = attrs["axis"] + (rank if attrs["axis"] < 0 else 0)
        if self._roll(node, axis):
            return None
        args = [] if axis == 1 and rank != 3 else [f"axis={axis}"]  # tokens' axis 1 is L, not C
        self.add(Layer("concat", args, list(node.input), node.output[0], node.name))

    def op_Gather(self, node, attrs):
        """`select(axis, i)` for a scalar index (ViT's class token, `x[:, 0]`); `gather` of a
        table (an activation or a param) by an index buffer (Swin's relative position bias)."""
        x, index = node.input
        rank = len(self.shape(x))
        axis = attrs.get("axis", 0)
        axis += rank if axis < 0 else 0
        value = self.const(index)
        if not self.is_tensor(x) and not self.own(x):
            return "a table that is no initializer"
        if value is not None and value.ndim == 0:
            if axis == 0 and self.real(x) not in self.owned:
                return "a pick along the batch"
            self.add(Layer("select", [str(axis), str(int(value))], [x], node.output[0], node.name))
            return None
        if value is None or not self.own(index):
            return "an index that is no initializer"
        args = [] if axis == 0 else [f"axis={axis}"]
        self.add(Layer("gather", args, [x, index], node.output[0], node.name))

    def op_Slice(self, node, attrs):
        """`slice(axis, start, end, step)` of one axis; the two Slices and the Concat of a roll
        become `roll` where the Concat reads them (op_Concat)."""
        x = node.input[0]
        if not self.is_tensor(x) and not self.own(x):
            return "a constant that is no initializer"
        values = [self.const(i) if i else None for i in node.input[1:]]
        if any(v is None for v, i in zip(values, node.input[1:]) if i):
            return "bounds that are not constant"
        starts, ends = values[0], values[1]
        axes = values[2] if len(values) > 2 and values[2] is not None else np.arange(len(starts))
        steps = values[3] if len(values) > 3 and values[3] is not None else np.ones(len(starts), np.int64)
        if len(starts) != 1:
            return "more than one axis"
        shape = self.shape(x)
        axis = int(axes[0]) + (len(shape) if int(axes[0]) < 0 else 0)
        size = shape[axis] if axis < len(shape) else None
        step = int(steps[0])
        if not isinstance(size, int) or size <= 0 or step < 1 or axis == 0 and self.real(x) not in self.owned:
            return "a slice of the batch, an axis of unknown size or a negative step"
        start, end = (int(v) + (size if int(v) < 0 else 0) for v in (starts[0], ends[0]))
        start, end = max(0, min(start, size)), max(0, min(end, size))
        if end <= start:
            return "an empty slice"
        args = [str(axis), str(start)] + ([str(end)] if end < size or step != 1 else []) + \
            ([str(step)] if step != 1 else [])
        self.add(Layer("slice", args, [x], node.output[0], node.name))

    def _roll(self, node, axis) -> bool:
        """Concat(x[n - s:], x[:n - s]) along `axis`, both slices read only here: roll(s)."""
        if len(node.input) != 2:
            return False
        tail, head = (self.producer.get(self.real(i)) for i in node.input)
        if tail is None or head is None or tail.kind != "slice" or head.kind != "slice" or \
                tail.inputs != head.inputs or any(len(self.consumers.get(i, [])) != 1 for i in node.input):
            return False
        size = self.shape(tail.inputs[0])[axis]
        if len(head.args) != 3 or head.args[:2] != [str(axis), "0"] or tail.args != [str(axis), head.args[2]]:
            return False
        shift = size - int(head.args[2])
        shift = shift - size if 2 * shift > size else shift
        for layer in (tail, head):
            self.layers.remove(layer)
            del self.producer[layer.output]
        shifts, axes, source = [str(shift)], [str(axis)], tail.inputs
        inner = self.producer.get(source[0])
        if inner is not None and inner.kind == "roll" and source[0] not in self.output_names and \
                len(self.consumers.get(source[0], [])) == 2:  # read by the two slices only
            self.layers.remove(inner)   # a roll of several axes: Swin's (H, W), one layer
            del self.producer[inner.output]
            source = inner.inputs
            shifts = inner.args[0].strip("()").split(", ") + shifts
            axes = inner.args[1].strip("()").split(", ") + axes
        args = [str(shifts[0]), str(axes[0])] if len(shifts) == 1 else \
            ["(" + ", ".join(shifts) + ")", "(" + ", ".join(axes) + ")"]
        self.add(Layer("roll", args, source, node.output[0], node.name))
        return True

    def op_Expand(self, node, attrs):
        """A class token expanded over the batch before its concat: netspec's concat expands a
        param of batch size 1 itself, so the param is read as it is."""
        x, target = node.input[0], self.const(node.input[1])
        if target is None:
            return "a shape that is not constant"
        if not self.own(x):
            return "a tensor that is no initializer"
        shape, dims = self.shape(x), list(np.asarray(target).reshape(-1))
        if len(dims) != len(shape) or not shape or shape[0] != 1 or isinstance(dims[0], int) and dims[0] > 1 or \
                any(not isinstance(d, (int, np.integer)) or d not in (1, s) for d, s in zip(dims[1:], shape[1:])):
            return "an expand other than a param's over the batch"
        if any(r.op_type != "Concat" for r in self.consumers.get(node.output[0], [])):
            return "an expanded param read by other than a concat"
        self.alias[node.output[0]] = self.real(x)

    def op_Flatten(self, node, attrs):
        if attrs.get("axis", 1) != 1:
            return "an axis other than 1"
        self.add(Layer("flatten", [], [node.input[0]], node.output[0], node.name))

    def op_Reshape(self, node, attrs):
        target = self.const(node.input[1])
        if target is None:
            return "a shape that is not constant"
        out = self.shape(node.output[0])
        if self.unlaid(node.input[0]) and out and all(isinstance(d, int) and d > 0 for d in out):
            sizes = ", ".join(map(str, out)) + ("," if len(out) == 1 else "")
            self.add(Layer("reshape", [f"({sizes})"], [node.input[0]], node.output[0], node.name))
            return None
        if not out or any(not isinstance(d, int) or d <= 0 for d in out[1:]):
            return "a result whose sizes are not known"
        source = self.shape(node.input[0])
        if source and out[0] != source[0]:
            return "a reshape of the batch axis"
        if len(out) == 2:
            self.add(Layer("flatten", [], [node.input[0]], node.output[0], node.name))
        else:
            sizes = ", ".join(map(str, out[1:])) + ("," if len(out) == 2 else "")
            layout = self._reshaped_layout(node.output[0], len(out), node.input[0], source)
            self.add(Layer("reshape", [f"({sizes})"] + ([f'layout="{layout}"'] if layout else []),
                           [node.input[0]], node.output[0], node.name))

    def channel_axis(self, value: str) -> int | None:
        """Where the channels of the value are, in ONNX's axis order (netspec keeps the declared
        order in the graph): 1 for a map, the last axis for tokens, None where no axis is the
        channels (a reshape that split them, a param's value). Reshapes record theirs."""
        done = self._channels
        for layer in self.layers[self._channels_upto:]:
            ins = [done.get(x) for x in layer.inputs if not self.unlaid(x)]
            c = ins[0] if ins else None
            rank = len(self.shape(layer.output))
            if layer.output in done:  # a reshape
                continue
            if layer.kind in _CHANNELS_AT_1:
                c = 1
            elif layer.kind in ("linear", "multihead_attention"):
                c = rank - 1
            elif layer.kind == "permute":
                perm = [int(v) for v in layer.args[0].split(",")]
                c = perm.index(c) if c in perm else None
            elif layer.kind == "select":
                axis = int(layer.args[0])
                c = None if c is None or c == axis else c - (axis < c)
            done[layer.output] = c
        self._channels_upto = len(self.layers)
        name = self.real(value)
        if name in done:
            return done[name]
        if name in self.tensors and not self.unlaid(name):  # an input
            return len(self.shape(name)) - 1 if self.layouts.get(name, "").endswith("C") else 1
        return None

    def _reshaped_layout(self, value: str, rank: int, source: str, before: list) -> str | None:
        """The `layout=` a reshape's result needs, which ONNX does not record: the channels kept
        last (window partitions, "NHWC", "NabcC") or at 1 (a map put back, "NCHW") where the
        reshape keeps them whole there; else as its readers need: channels last where a linear
        (MatMul by a weight) or a LayerNormalization reads it (merged heads), first where a Conv
        or a BatchNormalization does; None where its readers read no axis by role."""
        c = self.channel_axis(source)
        out = self.shape(value)
        # a square [N, H, W, C] is a map put back (Swin's windows merged: "NHWC", as the map it is
        # added to); other channels-last results have axes without roles ("NabC": windows and
        # their positions, which MaxViT's grid swaps)
        roleless = "N" + "abcdefgh"[:rank - 2] + "C"
        last = {3: "NLC", 4: "NHWC" if out[1] == out[2] else roleless, 5: "NDHWC"}.get(rank) or roleless
        first = {3: "NCL", 4: "NCHW", 5: "NCDHW"}.get(rank)
        kept = None
        if c is not None and before and c == len(before) - 1 and out[-1] == before[-1]:
            kept = rank - 1
        elif c == 1 and before and len(before) > 1 and out[1] == before[1]:
            kept = 1
        if kept is not None:
            self._channels[value] = kept
            return last if kept == rank - 1 else first
        self._channels[value] = None
        readers, seen = list(self.consumers.get(value, [])), []
        while readers:
            n = readers.pop()
            if n.op_type in ("Identity", "Dropout"):
                readers.extend(self.consumers.get(n.output[0], []))
            else:
                seen.append(n)
        weights = {o for n in self.graph.node if n.op_type == "Transpose" and n.input[0] in self.const_names
                   for o in n.output} | self.const_names
        if any(n.op_type == "LayerNormalization" or n.op_type == "MatMul" and n.input[0] == value
               and n.input[1] in weights for n in seen):
            self._channels[value] = rank - 1
            return "NLC" if rank == 3 else roleless
        if any(n.op_type in ("Conv", "ConvTranspose", "BatchNormalization", "MaxPool", "AveragePool",
                             "GlobalAveragePool", "GlobalMaxPool", "Resize") for n in seen):
            self._channels[value] = 1
            return first
        return None

    def channels_first_order(self, name: str) -> bool:
        return self.order.get(name) == "first"

    def op_Transpose(self, node, attrs):
        perm = attrs.get("perm")
        x = node.input[0]
        rank = len(perm or [])
        if x in self.order and perm is not None:  # the lowering's Transposes around a channels-first op
            order = self.order[x]
            if order == "declared" and list(perm) == _TO_FIRST.get(rank):
                self.alias[node.output[0]] = self.real(x)
                self.order[node.output[0]] = "first"
                return None
            if order == "first" and list(perm) == _TO_LAST.get(rank):
                self.alias[node.output[0]] = self.real(x)
                self.order[node.output[0]] = "declared"
                return None
        if perm is None or perm[0] != 0 and not self.unlaid(x):
            return "a permutation that moves the batch"
        self.add(Layer("permute", [", ".join(map(str, perm))], [node.input[0]], node.output[0], node.name))

    def op_Pad(self, node, attrs):
        pads = self.const(node.input[1]) if len(node.input) > 1 else np.array(attrs.get("pads", []))
        if pads is None:
            return "pads that are not constant"
        if len(node.input) > 3 and node.input[3]:
            return "an axes input"
        pads = [int(p) for p in pads]
        rank = len(pads) // 2
        if any(pads[i] for i in (0, 1, rank, rank + 1)):
            return "padding of the batch or channel axes"
        spatial = rank - 2
        begins, ends = pads[2:rank], pads[rank + 2:]
        padding = _size(begins) if begins == ends else "(" + ", ".join(map(str, begins + ends)) + ")"
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
        if mode not in modes:
            return f"mode {mode}"
        args = [padding] if spatial else []
        if modes[mode] != "constant":
            args.append(f'mode="{modes[mode]}"')
        value = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if value is not None and float(value.reshape(-1)[0]) != 0.0:
            args.append(f"value={_num(float(value.reshape(-1)[0]))}")
        self.add(Layer("pad", args, [node.input[0]], node.output[0], node.name))

    def op_Resize(self, node, attrs):
        source, out = self.shape(node.input[0]), self.shape(node.output[0])
        if not source or not out or any(not isinstance(d, int) or d <= 0 for d in source[2:] + out[2:]):
            return "sizes that are not known"
        mode = attrs.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        # Upsample (opset 9) and Resize-10 map coordinates asymmetrically and take the floor
        old = self.opset < 11 or node.op_type == "Upsample"
        ctm = attrs.get("coordinate_transformation_mode", b"asymmetric" if old else b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        if old:
            attrs = {**attrs, "nearest_mode": b"floor"}
        spatial = len(source) - 2
        args = []
        ins, outs = source[2:], out[2:]
        if all(o % i == 0 for i, o in zip(ins, outs)) and len({o // i for i, o in zip(ins, outs)}) == 1:
            args.append(str(outs[0] // ins[0]))
        else:
            args.append(f"size={_size(outs)}")
        if mode == "nearest":
            if ctm not in ("asymmetric",) or attrs.get("nearest_mode", b"round_prefer_floor") not in (b"floor", "floor"):
                return f"nearest resampling with {ctm} coordinates (netspec's is PyTorch's: asymmetric, floor)"
        elif mode == "linear":
            args.append(f'mode="{ {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial] }"')
            if ctm == "align_corners":
                args.append("align_corners=true")
            elif ctm not in ("half_pixel", "pytorch_half_pixel"):
                return f"linear resampling with {ctm} coordinates"
        else:
            return f"mode {mode}"
        self.add(Layer("upsample", args, [node.input[0]], node.output[0], node.name))

    op_Upsample = op_Resize

    # ------------------------------------------------------------ names and text

    @property
    def output_names(self) -> set[str]:
        return {o.name for o in self.graph.output}

    def write(self, structured: bool = True) -> Imported:
        """The spec: input declarations, the layers (netspec.spec_writer), the outputs."""
        outputs = [o.name for o in self.graph.output]
        inputs = [i for i in self.inputs if i.name not in self.owned]
        input_names = [i.name for i in inputs]
        for o in outputs:
            r = self.real(o)
            if r in input_names:
                raise _error(f"output `{o}` is the input `{r}` itself: a network computes its outputs")
            if not o.isidentifier() or keyword.iskeyword(o):
                raise _error(f"output `{o}`: netspec names a tensor with a name (letters, digits, `_`)",
                             hint="rename the model's output, e.g. with onnx.compose.add_prefix or by editing graph.output")
            if r not in self.producer:
                raise _error(f"output {o} is not computed by the layers imported")
        for name in input_names:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise _error(f"input `{name}`: netspec names a tensor with a name (letters, digits, `_`)",
                             hint="rename the model's input")
        text = write_spec(self.name, self.labelled, [self.declaration(info) for info in inputs], input_names,
                          {self.real(o): o for o in outputs}, structured=structured, classes=self.classes)
        return Imported(text, self.weights, len(self.layers))

    def declaration(self, info) -> str:
        """`input image: f32[N, 3, 224, 224]` for a graph input."""
        ttype = info.type.tensor_type
        dtype = _DTYPES.get(ttype.elem_type)
        if dtype is None:
            raise _error(f"input `{info.name}`: element type {ttype.elem_type} has no netspec dtype")
        dims = self.shape(info.name)
        if not dims:
            raise _error(f"input `{info.name}` has no declared shape", hint="netspec needs every input's sizes")
        shown = []
        for i, d in enumerate(dims):
            if isinstance(d, int) and d > 0:
                shown.append(str(d))
            elif i == 0:
                shown.append(d if isinstance(d, str) and d.isidentifier() else "N")
            else:
                raise _error(f"input `{info.name}`: axis {i} has no fixed size ({d or '?'}); netspec "
                             "allows a symbolic size on the batch axis only")
        layout = f" {self.layouts[info.name]}" if info.name in self.layouts else ""
        return f"input {info.name}: {dtype}[{', '.join(shown)}]{layout}"


def import_model(model, name: str, structured: bool = True) -> Imported:
    """An onnx.ModelProto as a netspec spec named `name` and its weights by parameter name, with
    blocks and repeats where `structured` (netspec.spec_writer), else every layer written out.
    Raises NetspecError for a model netspec cannot express."""
    importer = _Importer(model, name)
    importer.run()
    if structured:
        imported = importer.write(structured=True)
        if not _problems(imported):
            return imported
        # a structure the writer got wrong: the flat spec, every layer written out, checked too
        imported = importer.write(structured=False)
        problems = _problems(imported)
        if problems:
            raise _error("netspec import read every node but wrote a spec whose names or layers differ "
                         "from the model's: a gap in netspec import, not in the model", notes=problems[:5],
                         hint="please report it with the model; `netspec run MODEL.onnx` runs the model as it is")
        return imported
    return importer.write(structured=False)


def _problems(imported: Imported) -> list[str]:
    """Why the spec does not come back as the model (its errors, or a state_dict whose names are
    not the weights'); none where it compiles clean with exactly the weights' names."""
    compilation = compile_file("imported.net", text=imported.text)
    if not compilation.ok:
        return [d.message for d in compilation.diagnostics.errors] or ["the spec does not compile"]
    if set(compilation.graph.state_dict_specs()) != set(imported.weights):
        return ["its state_dict's names are not the weights' names"]
    return []


def read_model(path) -> Any:
    """The onnx.ModelProto in `path`, with its external data; an unreadable file, one that is
    not ONNX, or external data that is missing is a NetspecError."""
    from pathlib import Path

    import onnx
    from onnx import external_data_helper

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError, OSError: not an ONNX model
        raise _error(f"cannot read `{path}` as an ONNX model: {type(exc).__name__}: {exc}".rstrip(": ")) from None
    missing = []
    for tensor in external_data_helper._get_all_tensors(model):
        if external_data_helper.uses_external_data(tensor):
            info = external_data_helper.ExternalDataInfo(tensor)
            location = path.parent / info.location
            if not location.is_file():
                missing.append(f"`{tensor.name}` is stored in `{info.location}`, which is not beside "
                               f"the model ({location})")
    if missing:
        raise _error(f"`{path}`: {len(missing)} tensor(s) keep their data in files that are missing",
                     notes=missing[:10], hint="copy the model's external data files beside it")
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as exc:
        raise _error(f"`{path}`: cannot read its external data: {type(exc).__name__}: {exc}") from None
    return model
