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
from dataclasses import dataclass
from typing import Any

import numpy as np

from netspec.diagnostics import Diagnostic, NetspecError
from netspec.spec_writer import Layer, label_layers, write_spec

RULE = "netspec import: an ONNX model as netspec layers"

_DTYPES = {1: "f32", 2: "u8", 3: "i8", 5: "i16", 6: "i32", 7: "i64", 9: "bool", 10: "f16", 11: "f64", 16: "bf16"}


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


def _metadata_list(node, key: str) -> list:
    import ast

    for prop in node.metadata_props:
        if prop.key == key:
            try:
                value = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return []
            return value if isinstance(value, list) else []
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


class _Refused(Exception):
    """A node that matches no layer, and why."""


_CHANNELS_FIRST = {"conv", "conv_transpose", "maxpool", "avgpool", "global_avgpool", "global_maxpool",
                   "batchnorm", "upsample", "pad"}
_ANY_ORDER = {"relu", "relu6", "sigmoid", "tanh", "leaky_relu", "hardsigmoid",
                   "hardswish", "silu", "gelu", "elu", "hardtanh", "clamp", "exp", "add", "mul"}
_TO_FIRST = {3: [0, 2, 1], 4: [0, 3, 1, 2], 5: [0, 4, 1, 2, 3]}
_TO_LAST = {3: [0, 2, 1], 4: [0, 2, 3, 1], 5: [0, 2, 3, 4, 1]}
_LAST = {3: "NLC", 4: "NHWC", 5: "NDHWC"}


class _Tensor:
    """An activation: a layer's (or an input's) output."""

    def __init__(self, shape: list):
        self.shape = shape


def _num(value: float) -> str:
    """A float attribute as a short literal: float32's shortest repr (0.001, not 0.0010000000474974513)."""
    text = str(np.float32(value))
    text = text.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")
    return text if any(c in text for c in ".e") or text in ("inf", "-inf", "nan") else text + ".0"


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
        try:
            inferred = shape_inference.infer_shapes(_light(model), data_prop=True)
        except Exception:  # a model shape inference cannot follow: the declared shapes only
            inferred = model
        g = inferred.graph
        model_graph = model.graph
        self.graph = g
        self.shapes: dict[str, list] = {}
        for info in [*g.input, *g.value_info, *g.output]:
            if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
                self.shapes[info.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                          for d in info.type.tensor_type.shape.dim]
        self.consts: dict[str, np.ndarray] = {}
        self.const_names: set[str] = set()
        for init in model_graph.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
            self.const_names.add(init.name)
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
            return False
        result = np.asarray(result, dtype=object)
        if all(not isinstance(v, str) for v in result.reshape(-1)):
            result = result.astype(np.int64)
        self.consts[node.output[0]] = result
        return True

    def visit(self, node) -> None:
        if node.output and node.output[0] in self.gelus:
            x, name = self.gelus[node.output[0]]
            self.add(Layer("gelu", [], [x], node.output[0], name))
            return
        if self.fold(node):
            return
        op = node.op_type
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
        axis = attrs.get("axis", -1)
        axis = axis + rank if axis < 0 else axis
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
            args.append(f"momentum={_num(1 - attrs['momentum'])}")
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
        w = self.const(node.input[1])
        if w is None:
            if self.is_tensor(node.input[1]):
                self.add(Layer("matmul", [], [node.input[0], node.input[1]], node.output[0], node.name))
                return None
            return "a constant first operand"
        if w.ndim != 2:
            return "weights of more than two axes"
        weight = np.ascontiguousarray(w.T)
        name = node.input[1]
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
        if any(not self.is_tensor(x) for x in node.input):
            return "a constant operand"
        if len(node.input) == 1:  # torch.cat of one tensor (DenseNet's first layer): the tensor
            self.alias[node.output[0]] = self.real(node.input[0])
            return None
        rank = len(self.shape(node.input[0]))
        axis = attrs["axis"] + (rank if attrs["axis"] < 0 else 0)
        args = [] if axis == 1 else [f"axis={axis}"]
        self.add(Layer("concat", args, list(node.input), node.output[0], node.name))

    def op_Flatten(self, node, attrs):
        if attrs.get("axis", 1) != 1:
            return "an axis other than 1"
        self.add(Layer("flatten", [], [node.input[0]], node.output[0], node.name))

    def op_Reshape(self, node, attrs):
        target = self.const(node.input[1])
        if target is None:
            return "a shape that is not constant"
        out = self.shape(node.output[0])
        if not out or any(not isinstance(d, int) or d <= 0 for d in out[1:]):
            return "a result whose sizes are not known"
        source = self.shape(node.input[0])
        if source and out[0] != source[0]:
            return "a reshape of the batch axis"
        if len(out) == 2:
            self.add(Layer("flatten", [], [node.input[0]], node.output[0], node.name))
        else:
            sizes = ", ".join(map(str, out[1:])) + ("," if len(out) == 2 else "")
            self.add(Layer("reshape", [f"({sizes})"], [node.input[0]], node.output[0], node.name))

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
        if perm is None or perm[0] != 0:
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
        ctm = attrs.get("coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
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
        if not hasattr(self, "weights"):
            self.weights = label_layers(self.layers, self.scopes)
        outputs = [o.name for o in self.graph.output]
        input_names = [i.name for i in self.inputs]
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
        text = write_spec(self.name, self.layers, [self.declaration(info) for info in self.inputs], input_names,
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
        if _same_names(imported):
            return imported
        # a structure the writer got wrong: the flat spec, every layer written out
    return importer.write(structured=False)


def _same_names(imported: Imported) -> bool:
    """Whether the spec compiles clean with exactly the weights' names as its state_dict."""
    from netspec.compiler import compile_file

    compilation = compile_file("imported.net", text=imported.text)
    if not compilation.ok:
        return False
    return set(compilation.graph.state_dict_specs()) == set(imported.weights)


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
