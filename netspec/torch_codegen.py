"""A checked graph written as a PyTorch module: readable Python that imports only torch
(`netspec torch`, `Network.to_torch`).

The file holds one nn.Module class per block kind (a variant per different structure: a
bottleneck with a projection shortcut is another class than one without), the network's own
class, and `Model = <that class>`. Submodules are named as the spec names its layers, so the
module's state_dict keys are netspec's parameter names (torchvision's, for the zoo specs):
`layer1.0.conv1.weight` is `self.layer1[0].conv1.weight`. Where the names of a chain count its
layers (`features.0`, `features.1`, ...) the chain is an nn.Sequential; where a chain's
unnamed layers have no tensors (`y.2`, a relu), they are computed by a function in `forward`.

Each layer says how PyTorch computes it (`Layer.torch_form`, in the class that holds its shape
rule and ONNX lowering); this module only places them. A value in a block's class is written as
the block's parameter it came from where the spec says so (`conv(planes, 3, stride=stride)`:
the call site that gave both values is where the convolution's came from), or where it varies
between the instances of the class as a parameter does (`planes * 4`); the network's class
takes the network's parameters, with the spec's defaults. Text only: nothing here imports torch.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any

from netspec.graph import BlockInstance, Graph, LayerNode
from netspec.layers.base import Ctor, TorchForm
from netspec.types import Layout, TensorType

LINE_LENGTH = 88  # ruff's and black's
INDENT = "    "

# netspec's name parts as PyTorch's classes spell them (resnet50 -> ResNet50)
_WORDS = {"resnet": "ResNet", "resnext": "ResNeXt", "vgg": "VGG", "vit": "ViT", "mobilenet": "MobileNet",
          "efficientnet": "EfficientNet", "densenet": "DenseNet", "convnext": "ConvNeXt", "regnet": "RegNet",
          "lenet": "LeNet", "unet": "UNet", "fpn": "FPN", "fcn": "FCN", "deeplabv": "DeepLabV",
          "googlenet": "GoogLeNet", "maxvit": "MaxViT", "squeezenet": "SqueezeNet", "shufflenet": "ShuffleNet",
          "mnasnet": "MNASNet", "alexnet": "AlexNet", "nin": "NiN", "lraspp": "LRASPP", "swin": "Swin",
          "inception": "Inception", "mlp": "MLP", "cnn": "CNN", "se": "SE"}
# PyTorch's arguments that netspec takes from the input tensor
_INHERITED = {"in_channels", "in_features", "num_features", "normalized_shape", "num_channels", "embed_dim"}
_RESERVED = {"torch", "nn", "F", "Model", "self", "super", "range", "len", "float", "int", "tuple", "list"}


class TorchCodegenError(Exception):
    """A layer that netspec cannot write for PyTorch (its kind has no torch_form)."""

    def __init__(self, node: LayerNode, message: str):
        super().__init__(message)
        self.node, self.message = node, message


# ============================================================================ values and names


def literal(value: Any) -> str:
    """A value as formatted Python writes it (double quotes, `float("inf")`)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
        if math.isnan(value):
            return 'float("nan")'
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(map(literal, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(map(literal, value)) + "]"
    return repr(value)


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type (True is not 1, 2 is not 2.0)."""
    return type(a) is type(b) and a == b


def class_name(name: str) -> str:
    """`resnet50` -> `ResNet50`, `mobilenet_v3_large` -> `MobileNetV3Large`, `bottleneck` ->
    `Bottleneck`: a network's or a block's name as a Python class name."""
    parts = []
    for part in re.split(r"[^0-9A-Za-z]+", name):
        if not part:
            continue
        match = re.match(r"([A-Za-z]+)(.*)", part)
        if match and match.group(1).lower() in _WORDS:
            parts.append(_WORDS[match.group(1).lower()] + match.group(2))
        elif part[0].isdigit() and parts:
            parts.append("_" + part)
        else:
            parts.append(part[0].upper() + part[1:])
    text = "".join(parts) or "Network"
    return text if text[0].isalpha() else "Net" + text


def identifier(text: str) -> str:
    """A Python name for a netspec name or path (`layer1.0` -> `layer1_0`)."""
    name = re.sub(r"\W", "_", text)
    if not name or name[0].isdigit():
        name = "v" + name
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_"
    return name


def _is_attribute(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


# ============================================================================ formatting


@dataclass
class Call:
    """An expression `callee(args)` laid out as black does: on one line, its arguments on one
    indented line, or one a line with a trailing comma; arguments are text or Calls."""

    callee: str
    args: list = field(default_factory=list)
    close: str = ")"  # `})`: a ModuleDict's dict

    def flat(self) -> str:
        return f"{self.callee}{', '.join(_flat(a) for a in self.args if not isinstance(a, Note))}{self.close}"


class Note(str):
    """A comment line among a call's arguments (a layer's shape above its constructor)."""


def _flat(arg) -> str:
    return arg.flat() if isinstance(arg, Call) else arg


def _noted(expr) -> bool:
    """Whether a call holds a comment, which keeps it one argument a line, as black does."""
    return isinstance(expr, Call) and any(isinstance(a, Note) or _noted(a) for a in expr.args)


def layout(prefix: str, expr, indent: str, suffix: str = "") -> list[str]:
    """The lines of `prefix + expr + suffix` at `indent`, within LINE_LENGTH where it can be."""
    one = f"{indent}{prefix}{_flat(expr)}{suffix}"
    if isinstance(expr, str) and len(one) > LINE_LENGTH and not prefix and (chain := _chain(expr)):
        return [f"{indent}{chain[0]}", *(f"{indent}{part}" for part in chain[1:-1]), f"{indent}{chain[-1]}{suffix}"]
    if not isinstance(expr, Call) or not expr.args or (len(one) <= LINE_LENGTH and not _noted(expr)):
        return [one]
    inner = indent + INDENT
    real = [a for a in expr.args if not isinstance(a, Note)]
    own_notes = len(real) != len(expr.args)
    if len(real) == 1 and not own_notes:  # black's right-hand split: the one argument inside
        return [f"{indent}{prefix}{expr.callee}", *layout("", real[0], inner), f"{indent}{expr.close}{suffix}"]
    body = ", ".join(_flat(a) for a in expr.args)
    if len(inner + body) <= LINE_LENGTH and not _noted(expr):
        return [f"{indent}{prefix}{expr.callee}", inner + body, f"{indent}{expr.close}{suffix}"]
    lines = [f"{indent}{prefix}{expr.callee}"]
    for arg in expr.args:
        if isinstance(arg, Note):
            lines.append(f"{inner}# {arg}")
        else:
            lines.extend(layout("", arg, inner, ","))
    lines.append(f"{indent}{expr.close}{suffix}")
    return lines


def _chain(text: str) -> list[str] | None:
    """`f(x).reshape(2).to(t)` cut before each method call, as black splits a long call chain
    (one of at least two calls after the first) inside brackets; None for anything else."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    parts = []
    while isinstance(tree, ast.Call) and isinstance(tree.func, ast.Attribute):
        parts.append(tree)
        tree = tree.func.value
    if len(parts) < 2 or not isinstance(tree, ast.Call):
        return None
    head = ast.get_source_segment(text, tree)
    pieces = [head]
    for call in reversed(parts):
        whole = ast.get_source_segment(text, call)
        before = ast.get_source_segment(text, call.func.value)
        pieces.append(whole[len(before):])
    return pieces if None not in pieces else None


def expression(text: str) -> Any:
    """Forward code as a Call tree where it is a call (so that a long one is split as black
    splits it), else the text."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return text
    if not isinstance(tree, ast.Call) or tree.keywords and any(k.arg is None for k in tree.keywords):
        return text
    callee = ast.get_source_segment(text, tree.func)
    args = [ast.get_source_segment(text, a) for a in tree.args]
    args += [f"{k.arg}={ast.get_source_segment(text, k.value)}" for k in tree.keywords]
    if callee is None or None in args or text.rstrip()[-1] != ")":
        return text
    if ast.unparse(tree) != ast.unparse(ast.parse(f"{callee}({', '.join(args)})", mode="eval").body):
        return text  # `f(x)[0]`, `f(x).g()`: left as written
    return Call(callee + "(", [expression(a) for a in args])


# ============================================================================ the structure


@dataclass(eq=False)
class _Unit:
    """A line of `forward`: a value computed from others."""

    inputs: list[str]           # graph node names read
    output: str                 # the graph node it gives
    code: str                   # the expression, its inputs as {0}, {1}, ...
    comment: str
    var: str = ""
    plain: bool = True          # the module called on its one input as it is: a Sequential may call it


@dataclass(eq=False)
class _Item:
    """What a class's __init__ makes at a relative path: a module, a block's class, a tensor."""

    kind: str                   # "module", "class", "param", "buffer"
    node: LayerNode | None = None
    ctor: Ctor | None = None
    instance: "_Class | None" = None
    text: str = ""              # a tensor's creation
    persistent: bool = True
    # tensors of its own a spec adds to a module (a `param` named `qkv.bias` beside a linear `qkv`)
    children: dict[str, "_Item"] = field(default_factory=dict)


@dataclass(eq=False)
class _Tree:
    """A container of a class's submodules: the class itself, or a path inside it."""

    children: dict[str, "_Tree | _Item"] = field(default_factory=dict)
    kind: str = "attr"          # "class", "seq" (nn.Sequential), "dict" (nn.ModuleDict), "attr" (nn.Module)


@dataclass(eq=False)
class _Class:
    instance: BlockInstance | None      # None: the network
    prefix: str
    nodes: list[LayerNode] = field(default_factory=list)       # computed in its forward
    children: list["_Class"] = field(default_factory=list)     # its blocks' instances
    externals: list[str] = field(default_factory=list)         # graph values its forward takes
    output: str | None = None
    sequential: bool = False            # an nn.Sequential of its children, not a class
    name: str = ""                      # the class it is an instance of
    values: dict[str, Any] = field(default_factory=dict)       # its constructor's arguments
    origins: dict[str, Any] = field(default_factory=dict)      # where each was written
    first_channels: Any = None
    # filled by Generator.render
    init: list = field(default_factory=list)      # (comment, prefix, expression with slots)
    forward: list = field(default_factory=list)   # (comment, prefix, code)
    # (value, origin keys, name hint, node whose channels it is or None), one per slot
    slots: list[tuple] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)   # its forward's parameters
    results: list[str] = field(default_factory=list)     # what its forward returns
    channel_slots: dict[str, int] = field(default_factory=dict)  # node -> slot of its output channels
    defaults: dict[int, str] = field(default_factory=dict)  # slot -> PyTorch's default: left out if it is that
    variables: dict[str, str] = field(default_factory=dict)  # forward's variable -> its node (from prefix)


def _channels_first(t: TensorType) -> tuple[list[int], TensorType]:
    """The order ONNX's (and PyTorch's) channels-first operators read `t`'s axes in, and `t` so
    laid out (as netspec.lower does)."""
    order = list(t.layout.channels_first)
    laid = Layout("".join(t.layout.axes[i] for i in order), t.layout.origin)
    return order, TensorType(t.dtype, tuple(t.shape[i] for i in order), laid)


def _origin_key(origin) -> Any:
    if origin is None:
        return None
    span = getattr(origin, "span", None)
    if span is not None:
        return span
    given = getattr(origin, "given", None)
    return ("given", given) if given else None


def _simple(code: str) -> bool:
    """Whether `code` needs no parentheses before `.permute(...)`."""
    try:
        tree = ast.parse(code, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(tree, (ast.Call, ast.Attribute, ast.Subscript, ast.Name))


class Generator:
    """The structure of one checked graph as classes, and each class's body (`generate` names
    and writes them)."""

    def __init__(self, graph: Graph, path: str = "") -> None:
        self.graph, self.path = graph, path
        self.helpers: dict[str, str] = {}
        self.forms: dict[str, tuple[TorchForm, list, list | None]] = {}
        self.consumers: dict[str, list[str]] = {}
        for node in graph:
            for source in node.inputs:
                self.consumers.setdefault(source, []).append(node.name)
        self.outputs = {node for _, node in graph.outputs}
        self.position = {node.name: i for i, node in enumerate(graph)}

    # ------------------------------------------------------------ forms

    def form(self, node: LayerNode) -> tuple[TorchForm, list, list | None]:
        """The layer's TorchForm, the permutation of each input (None: as it is) and of the result."""
        if node.name in self.forms:
            return self.forms[node.name]
        types = [self.graph.node(n).output for n in node.inputs]
        layer = node.layer
        perms: list = [None] * len(types)
        back = None
        try:
            if layer.channels_first:
                laid = []
                for i, t in enumerate(types):
                    order, first = _channels_first(t)
                    laid.append(first)
                    if order != sorted(order):
                        perms[i] = order
                order, first = _channels_first(node.output)
                if order != sorted(order):
                    back = [order.index(i) for i in range(len(order))]
                form = layer.torch_form(laid, first)
            else:
                form = layer.torch_form(types, node.output)
        except NotImplementedError as exc:
            raise TorchCodegenError(node, str(exc)) from None
        self.helpers.update(form.helpers)
        self.forms[node.name] = (form, perms, back)
        return self.forms[node.name]

    # ------------------------------------------------------------ classes

    def structure(self) -> _Class:
        graph = self.graph
        instances: dict[int, BlockInstance] = {}
        members: dict[int, list[LayerNode]] = {}
        parents: dict[int, BlockInstance | None] = {}
        for node in graph:
            for depth, inst in enumerate(node.blocks):
                if id(inst) not in instances:
                    instances[id(inst)] = inst
                    parents[id(inst)] = node.blocks[depth - 1] if depth else None
                members.setdefault(id(inst), []).append(node)
        kept = {}
        for key, inst in instances.items():
            names = {n.name for n in members[key]}
            leaky = inst.output not in names or any(
                n.name != inst.output and (n.name in self.outputs or
                                           any(c not in names for c in self.consumers.get(n.name, [])))
                for n in members[key])
            if not leaky:
                kept[key] = inst
        root = _Class(None, "")
        classes = {key: _Class(inst, inst.name) for key, inst in kept.items()}

        def owner(blocks) -> _Class:
            for inst in reversed(blocks):
                if id(inst) in classes:
                    return classes[id(inst)]
            return root

        for key, cls in classes.items():
            inst = cls.instance
            parent = parents[key]
            chain = []
            while parent is not None:
                chain.append(parent)
                parent = parents[id(parent)]
            owner(list(reversed(chain))).children.append(cls)
            names = {n.name for n in members[key]}
            for n in members[key]:
                for source in n.inputs:
                    if source not in names and source not in cls.externals:
                        cls.externals.append(source)
            cls.output = inst.output
            cls.values, cls.origins = dict(inst.arguments), dict(inst.origins)
            if cls.externals:
                t = graph.node(cls.externals[0]).output
                cls.first_channels = t.channels if t is not None and t.layout.has_channels else None
        for node in graph:
            if node.layer is not None:
                owner(node.blocks).nodes.append(node)
        for cls in classes.values():
            kids = cls.children
            cls.sequential = (not cls.nodes and len(kids) >= 1 and len(cls.externals) == 1
                              and [k.prefix for k in kids] == [f"{cls.prefix}.{i}" for i in range(len(kids))]
                              and kids[0].externals == cls.externals
                              and all(k.externals == [p.output] for p, k in zip(kids, kids[1:]))
                              and kids[-1].output == cls.output)
        return root

    # ------------------------------------------------------------ one class's body

    def render(self, cls: _Class) -> None:
        """Fill cls.init and cls.forward: its __init__ lines (values as slots) and forward."""
        prefix = cls.prefix + "." if cls.prefix else ""
        tree = _Tree(kind="class")
        items: dict[str, _Item] = {}
        maybe: dict[str, _Item] = {}
        functional: set[str] = set()
        for node in cls.nodes:
            rel = node.name[len(prefix):]
            if node.layer.family == "owned":
                form, _, _ = self.form(node)
                items[rel] = _Item("param" if node.layer.trainable else "buffer", node, text=form.function,
                                   persistent=node.layer.persistent)
                continue
            form, _, _ = self.form(node)
            if form.module is not None and (node.params or form.function is None):
                items[rel] = _Item("module", node, form.module)
            elif form.module is not None:
                maybe[rel] = _Item("module", node, form.module)
            else:
                functional.add(rel)
        for child in cls.children:
            items[child.prefix[len(prefix):]] = _Item("class", instance=child)

        def insert(rel: str, item) -> None:
            parts = rel.split(".")
            at = tree
            for part in parts[:-1]:
                nxt = at.children.get(part)
                if nxt is None:
                    nxt = at.children[part] = _Tree()
                at = nxt
            before = at.children.get(parts[-1])
            if isinstance(before, _Tree) and isinstance(item, _Item):  # its own tensors came first
                item.children.update(before.children)
            at.children[parts[-1]] = item

        # a chain whose every layer is a module is an nn.Sequential: the others then are too
        everything = {**items, **maybe, **{rel: None for rel in functional}}
        sequential = _sequential_paths(everything)
        for rel, item in maybe.items():
            if rel.rsplit(".", 1)[0] in sequential and "." in rel:
                items[rel] = item
            else:
                functional.add(rel)
        position = self.position

        def placed(rel: str) -> int:
            item = items[rel]
            if item.kind == "class":
                return min(position[n] for n in _member_names(item.instance))
            return position[item.node.name]
        for rel in sorted(items, key=placed):
            insert(rel, items[rel])
        _kinds(tree, sequential, "")
        self._init(cls, tree)
        self._forward(cls, tree, items, functional, prefix)

    def _access(self, tree: _Tree, rel: str) -> str:
        expr, at = "self", tree
        for part in rel.split("."):
            child = at.children.get(part)
            if isinstance(at, _Item):
                expr = f"{expr}.{part}" if _is_attribute(part) else f'getattr({expr}, "{part}")'
            elif at.kind == "seq":
                expr += f"[{part}]"
            elif at.kind == "dict" and isinstance(child, (_Tree, _Item)) and not (
                    isinstance(child, _Item) and child.kind in ("param", "buffer")):
                expr += f'["{part}"]'
            elif _is_attribute(part):
                expr += f".{part}"
            else:
                expr = f'getattr({expr}, "{part}")'
            at = child if isinstance(child, (_Tree, _Item)) else at
        return expr

    def _ctor(self, cls: _Class, item: _Item) -> Call:
        """A module's or a child class's constructor, its values as slots."""
        if item.kind == "class":
            child = item.instance
            if child.sequential:
                return Call("nn.Sequential(", [self._ctor(cls, _Item("class", instance=k)) for k in child.children])
            args = []
            for name, value in child.values.items():
                keys = frozenset(k for k in [_origin_key(child.origins.get(name))] if k is not None)
                source = child.externals[0] if name == "in_channels" and child.externals else None
                args.append(f"{name}={self._slot(cls, value, keys, name, source)}")
            return Call(child.name + "(", args)
        ctor, node = item.ctor, item.node
        args = []
        for i, (name, value) in enumerate(ctor.values.items()):
            attribute = node.layer.aliases.get(name, name)
            keys = frozenset([node.written[attribute]] if attribute in node.written else
                             [("given", node.given[attribute])] if attribute in node.given else [])
            source = node.inputs[0] if name in _INHERITED and node.inputs else None
            slot = self._slot(cls, value, keys, f"{node.name.rsplit('.', 1)[-1]}_{name}", source)
            if i >= ctor.positional and name in ctor.defaults:
                cls.defaults[len(cls.slots) - 1] = literal(ctor.defaults[name])
            if name in ("out_channels", "out_features"):
                cls.channel_slots[node.name] = len(cls.slots) - 1
            args.append(slot if i < ctor.positional else f"{name}={slot}")
        return Call(ctor.callee + "(", args)

    def _slot(self, cls: _Class, value, keys: frozenset, hint: str, source: str | None = None) -> str:
        cls.slots.append((value, keys, hint, source))
        return f"\x00{len(cls.slots) - 1}\x00"

    def _init(self, cls: _Class, tree: _Tree) -> None:
        lines: list = []

        def container(t: _Tree) -> Call:
            if t.kind == "seq":
                args: list = []
                for k in t.children:
                    if note := self._note(t.children[k]):
                        args.append(Note(note))
                    args.append(value(t.children[k]))
                return Call("nn.Sequential(", args)
            entries: list = []
            for k, v in t.children.items():
                made = value(v)
                if note := self._note(v):
                    entries.append(Note(note))
                entries.append(Call(f'"{k}": ' + made.callee, made.args, made.close) if isinstance(made, Call)
                               else f'"{k}": {made}')
            return Call("nn.ModuleDict(", [Call("{", entries, "}")])

        def value(entry):
            if isinstance(entry, _Tree):
                return container(entry)
            return self._ctor(cls, entry)

        def walk(t, path: str) -> None:
            kind = t.kind if isinstance(t, _Tree) else "attr"
            for key, entry in t.children.items():
                rel = f"{path}.{key}" if path else key
                target = self._access(tree, rel)
                owner = self._access(tree, path) if path else "self"
                if isinstance(entry, _Item) and entry.kind in ("param", "buffer"):
                    if entry.kind == "param" and _is_attribute(key) and kind != "dict":
                        lines.append(("", f"{target} = ", Call("nn.Parameter(", [entry.text])))
                    elif entry.kind == "param":
                        lines.append(("", f"{owner}.register_parameter",
                                      Call("(", [f'"{key}"', Call("nn.Parameter(", [entry.text])])))
                    else:
                        args = [f'"{key}"', entry.text] + ([] if entry.persistent else ["persistent=False"])
                        lines.append(("", f"{owner}.register_buffer", Call("(", args)))
                    continue
                if isinstance(entry, _Tree) and entry.kind == "attr":
                    lines.append(("", f"{target} = ", "nn.Module()"))
                    walk(entry, rel)
                    continue
                note = self._note(entry) or ""
                if kind in ("class", "attr") and not _is_attribute(key):
                    lines.append((note, f"{owner}.add_module", Call("(", [f'"{key}"', value(entry)])))
                else:
                    lines.append((note, f"{target} = ", value(entry)))
                if isinstance(entry, _Item) and entry.children:
                    walk(entry, rel)

        walk(tree, "")
        cls.init = lines

    def _forward(self, cls: _Class, tree: _Tree, items: dict, functional: set, prefix: str) -> None:
        graph = self.graph
        var: dict[str, str] = {}
        used: set[str] = set()

        def fresh(base: str) -> str:
            name, n = identifier(base), 1
            while name in used:
                n += 1
                name = f"{identifier(base)}_{n}"
            used.add(name)
            return name

        arguments = []
        if cls.instance is None:
            for name in graph.inputs:
                var[name] = fresh(name)
                arguments.append(var[name])
        else:
            tensors = {getattr(v, "node", None): k for k, v in cls.values.items() if hasattr(v, "node")}
            for name in cls.externals:
                var[name] = fresh(tensors.get(name, name[len(prefix):] if name.startswith(prefix) else name))
                arguments.append(var[name])
        cls.arguments = arguments
        # the tensors the class owns read as attributes
        for rel, item in items.items():
            if item.kind in ("param", "buffer"):
                var[item.node.name] = self._access(tree, rel)
        units: list[_Unit] = []
        by_output: dict[str, _Class] = {c.output: c for c in cls.children}
        own = {node.name for node in cls.nodes}
        for name in sorted([*own, *by_output], key=self.position.__getitem__):
            node = graph.node(name)
            if node.name in by_output:
                child = by_output[node.name]
                rel = child.prefix[len(prefix):]
                code = self._access(tree, rel) + "(" + ", ".join(f"{{{i}}}" for i in range(len(child.externals))) + ")"
                units.append(_Unit(list(child.externals), node.name, code,
                                   self._comment(node.output, child.instance.span, child.instance.call),
                                   var=rel))
                continue
            if node.layer is None or node.layer.family == "owned":
                continue
            rel = node.name[len(prefix):]
            form, perms, back = self.form(node)
            inputs = [f"{{{i}}}" if p is None else f"{{{i}}}.permute{tuple(p)!r}" for i, p in enumerate(perms)]
            if rel in items:
                code = form.call.format(*inputs, m=self._access(tree, rel))
            else:
                code = form.function.format(*inputs) if form.function else \
                    f"{_flat(Call(form.module.callee + '(', []))}({', '.join(inputs)})"
            if back is not None:
                code = (code if _simple(code) else f"({code})") + f".permute{tuple(back)!r}"
            plain = rel in items and form.call == "{m}({0})" and back is None and all(p is None for p in perms)
            units.append(_Unit(list(node.inputs), node.name, code, self._comment(node.output, node.span), var=rel,
                               plain=plain))
        units = self._collapse(units, tree, prefix)
        body = []
        for unit in units:
            unit_var = fresh(unit.var)
            code = unit.code.format(*[var[i] for i in unit.inputs])
            var[unit.output] = unit_var
            cls.variables[unit_var] = unit.output[len(prefix):]
            body.append((unit.comment, f"{unit_var} = ", code))
        if cls.instance is None:
            results = [var[node] for _, node in graph.outputs]
        else:
            results = [var[cls.output]]
        cls.forward = body
        cls.results = results

    def _collapse(self, units: list[_Unit], tree: _Tree, prefix: str) -> list[_Unit]:
        """Call an nn.Sequential once where its layers follow one another and nothing else reads
        what is between them: `features = self.features(digits)`."""
        out: list[_Unit] = []
        i = 0
        while i < len(units):
            unit = units[i]
            path = unit.var.rsplit(".", 1)[0] if "." in unit.var else None
            container = _find(tree, path) if path else None
            if container is None or container.kind != "seq" or unit.var != f"{path}.0":
                out.append(unit)
                i += 1
                continue
            n = len(container.children)
            run = units[i:i + n]
            names = [f"{path}.{k}" for k in range(n)]
            chained = (len(run) == n and [u.var for u in run] == names and len(unit.inputs) == 1
                       and all(u.plain for u in run)
                       and all(u.inputs == [p.output] for p, u in zip(run, run[1:]))
                       and all(c == nxt.output for p, nxt in zip(run, run[1:])
                               for c in self.consumers.get(p.output, []))
                       and not any(p.output in self.outputs for p in run[:-1]))
            if not chained:
                out.append(unit)
                i += 1
                continue
            out.append(_Unit(unit.inputs, run[-1].output, self._access(tree, path) + "({0})", run[-1].comment,
                             var=path))
            i += n
        return out

    def _note(self, entry) -> str | None:
        """The comment above a module's constructor: its output's shape, and where it is written."""
        if not isinstance(entry, _Item):
            return None
        if entry.kind == "class":
            inst = entry.instance.instance
            return self._comment(self.graph.node(inst.output).output, inst.span, inst.call)
        if entry.kind == "module":
            return self._comment(entry.node.output, entry.node.span)
        return None

    def _where(self, span) -> str:
        """`lenet5.net:8`, `lib/resnet.net:11`: a span's file (from the spec's folder) and line."""
        import os

        base = os.path.dirname(self.path) if self.path else ""
        try:
            file = os.path.relpath(span.file, base or ".") if base or not os.path.isabs(span.file) else span.file
        except ValueError:
            file = span.file
        return f"{file}:{span.line}"

    def _comment(self, t: TensorType | None, span, call: str = "") -> str:
        where = self._where(span) if span is not None else ""
        shape = str(t) if t is not None else ""
        return "  ".join(x for x in (shape, call, where) if x)


def _member_names(cls: _Class) -> list[str]:
    names = [n.name for n in cls.nodes]
    for child in cls.children:
        names.extend(_member_names(child))
    return names


def _find(tree: _Tree, path: str) -> _Tree | None:
    at = tree
    for part in path.split("."):
        at = at.children.get(part) if isinstance(at, _Tree) else None
        if at is None:
            return None
    return at if isinstance(at, _Tree) else None


def _sequential_paths(everything: dict) -> set[str]:
    """The container paths whose children are exactly 0 .. n-1, each a module or a container
    of modules (never a function, a param or a buffer): nn.Sequential."""
    children: dict[str, set[str]] = {}
    bad: set[str] = set()
    for rel, item in everything.items():
        parts = rel.split(".")
        for k in range(1, len(parts)):
            children.setdefault(".".join(parts[:k]), set()).add(parts[k])
        if item is None or (isinstance(item, _Item) and item.kind in ("param", "buffer")):
            for k in range(1, len(parts)):
                bad.add(".".join(parts[:k]))
    return {path for path, keys in children.items() if path not in bad
            and keys == {str(i) for i in range(len(keys))} and path not in everything}


def _kinds(tree: _Tree, sequential: set[str], path: str) -> None:
    for key, entry in tree.children.items():
        if isinstance(entry, _Tree):
            rel = f"{path}.{key}" if path else key
            entry.kind = "seq" if rel in sequential and list(entry.children) == [str(i) for i in range(len(entry.children))] \
                else "attr" if all(_is_attribute(k) for k in entry.children) and tree.kind in ("class", "attr") \
                else "dict"
            _kinds(entry, sequential, rel)


# ============================================================================ naming and writing


def _substitute(expr, names: dict[int, str], dropped: frozenset = frozenset()):
    """`expr` with its slots (\\x00<i>\\x00) written as `names[i]`, the keyword arguments of
    the slots `dropped` (PyTorch's defaults) left out."""
    if isinstance(expr, Note):
        return expr
    if isinstance(expr, Call):
        kept = [a for a in expr.args if not (isinstance(a, str) and (m := re.fullmatch("\\w+=\x00(\\d+)\x00", a))
                                             and int(m.group(1)) in dropped)]
        return Call(_substitute(expr.callee, names), [_substitute(a, names, dropped) for a in kept], expr.close)
    return re.sub("\x00(\\d+)\x00", lambda m: names[int(m.group(1))], expr)


def _template(cls: _Class) -> str:
    """The class's code with its slots unfilled and no comments: equal for instances that one
    class serves."""
    init = "\n".join(f"{prefix}{_flat(expr)}" for _, prefix, expr in cls.init)
    forward = "\n".join(f"{prefix}{code}" for _, prefix, code in cls.forward)
    return "\n".join([init, "--", ", ".join(cls.arguments), forward, ", ".join(cls.results)])


def _name_slots(group: list[_Class], params: list[str], origin_of, value_of, first_channels,
                graph: Graph | None = None) -> tuple[dict[int, str], list[str]]:
    """Each slot written as a parameter (`planes`), an expression of one (`planes * 4`), the
    channels of what the layer reads (`in_channels`, or the `out_channels` of the layer before),
    the literal every instance shares, or a fresh parameter; every text is checked against
    every instance's value. Returns the slots' texts and the class's parameters in order."""
    names: dict[int, str] = {}
    used: list[str] = []
    fresh: dict[str, list] = {}
    first = group[0]

    def env(i: int) -> dict:
        c = group[i]
        out = {identifier(q): value_of(c, q) for q in params}
        if first_channels(c) is not None:
            out["in_channels"] = first_channels(c)
        out.update({name: values[i] for name, values in fresh.items()})
        return out

    def holds(text: str, values: list) -> bool:
        try:
            return all(_same(eval(text, {"__builtins__": {}}, env(i)), v) for i, v in enumerate(values))
        except Exception:
            return False

    def channels(node: str | None) -> str | None:
        """The text of a value's channels, following the layers that keep them."""
        seen = 0
        while node is not None and seen < 10_000:
            seen += 1
            if first.externals and node == first.externals[0]:
                return "in_channels"
            if node in first.channel_slots and first.channel_slots[node] in names:
                return names[first.channel_slots[node]]
            if graph is None or node not in graph:
                return None
            n = graph.node(node)
            if n.layer is None or not n.inputs or n.output is None or not n.output.layout.has_channels:
                return None
            before = graph.node(n.inputs[0]).output
            if before is None or not before.layout.has_channels or before.channels != n.output.channels:
                return None
            node = n.inputs[0]
        return None

    for j in range(len(first.slots)):
        values = [c.slots[j][0] for c in group]
        keys = [c.slots[j][1] for c in group]
        _, _, hint, source = first.slots[j]
        candidates = [q for q in params if all(origin_of(c, q) is not None and origin_of(c, q) in k
                                               for c, k in zip(group, keys))]
        texts = [identifier(q) for q in candidates]
        if source is not None:
            texts.append(channels(source))
        if all(_same(v, values[0]) for v in values):
            texts.append(literal(values[0]))
        elif source is not None:
            texts.append("in_channels")
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and len(group) > 1:
            for q in params:
                qs = [value_of(c, q) for c in group]
                if all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in qs):
                    if values[0] % qs[0] == 0:
                        k = values[0] // qs[0]
                        texts.append(identifier(q) if k == 1 else f"{identifier(q)} * {k}")
                    elif values[0] and qs[0] % values[0] == 0:
                        texts.append(f"{identifier(q)} // {qs[0] // values[0]}")
        chosen = next((t for t in texts if t is not None and (t == literal(values[0]) and
                                                              all(_same(v, values[0]) for v in values)
                                                              or holds(t, values))), None)
        if chosen is None:
            name = identifier(hint)
            while name in fresh or name in params or name == "in_channels":
                name += "_"
            fresh[name] = values
            chosen = name
        names[j] = chosen
        for q in params:
            if re.search(rf"\b{re.escape(identifier(q))}\b", chosen) and not chosen.startswith('"'):
                used.append(q)
        if re.search(r"\bin_channels\b", chosen):
            used.append("in_channels")
    for c_index, c in enumerate(group):
        for name, values in fresh.items():
            c.values[("fresh", name)] = values[c_index]
    order = (["in_channels"] if "in_channels" in used else []) + [q for q in params if q in used] + list(fresh)
    return names, list(dict.fromkeys(order))


def _signature(params: list[str], defaults: dict[str, Any] | None = None) -> str:
    if defaults is None:
        return ", ".join(["self", *map(identifier, params)])
    return ", ".join(["self", *(f"{identifier(p)}={literal(defaults[p])}" for p in params)])


def _class_text(name: str, doc: str, signature: str, init: list, arguments: list[str], forward: list,
                results: list[str], names: dict[int, str], defaults: dict[int, str]) -> str:
    dropped = frozenset(j for j, text in defaults.items() if names.get(j) == text)
    lines = [f"class {name}(nn.Module):", f'{INDENT}"""{doc}"""', "",
             *layout("", Call("def __init__(", signature.split(", "), "):"), INDENT), f"{INDENT * 2}super().__init__()"]
    for comment, prefix, expr in init:
        if comment:
            lines.append(f"{INDENT * 2}# {comment}")
        lines.extend(layout(_substitute(prefix, names), _substitute(expr, names, dropped), INDENT * 2))
    lines += ["", *layout("", Call("def forward(", ["self", *arguments], "):"), INDENT)]
    for comment, prefix, code in forward:
        if comment:
            lines.append(f"{INDENT * 2}# {comment}")
        lines.extend(layout(prefix, expression(code), INDENT * 2))
    lines.append(f"{INDENT * 2}return {', '.join(results)}")
    return "\n".join(lines)


@dataclass
class Generated:
    """A generated file, and for each of its classes, the variables of its forward with the
    graph node (named from the instance's prefix) whose value each holds: a test follows the
    shapes layer by layer with them."""

    source: str
    variables: dict[str, dict[str, str]]
    network_class: str


def generate(graph: Graph, path: str = "") -> str:
    """The Python source of `graph` (a checked netspec graph) as a PyTorch module file. A layer
    with no PyTorch form raises NetspecError located at it."""
    return codegen(graph, path).source


def codegen(graph: Graph, path: str = "") -> Generated:
    """`generate`, with the variables of every class's forward."""
    try:
        return _generate(graph, path)
    except TorchCodegenError as exc:
        from netspec.diagnostics import Diagnostic, NetspecError

        raise NetspecError([Diagnostic(f"{exc.node.kind}: {exc.message}", exc.node.span, layer=exc.node.name,
                                       rule="every layer has a PyTorch form")]) from None


def _generate(graph: Graph, path: str = "") -> str:
    gen = Generator(graph, path)
    root = gen.structure()
    levels: dict[int, list[_Class]] = {}

    def collect(cls: _Class, depth: int) -> None:
        levels.setdefault(depth, []).append(cls)
        for child in cls.children:
            collect(child, depth + 1)
    collect(root, 0)
    texts: list[str] = []
    variables: dict[str, dict[str, str]] = {}
    taken: dict[str, str] = {}      # class name -> its text
    network_class = class_name(graph.name)
    reserved = {network_class}
    for depth in sorted(levels, reverse=True):
        if depth == 0:
            break
        groups: dict[tuple, list[_Class]] = {}
        for cls in levels[depth]:
            if cls.sequential:
                continue
            gen.render(cls)
            groups.setdefault((cls.instance.block, _template(cls)), []).append(cls)
        for (block, _), group in groups.items():
            params = [q for q, v in group[0].values.items() if not hasattr(v, "node")]
            names, order = _name_slots(
                group, params, lambda c, q: _origin_key(c.origins.get(q)),
                lambda c, q: c.values.get(q), lambda c: c.first_channels, graph)
            first = group[0]
            inst = first.instance
            doc = f"netspec block `{block}`; the shapes are those of `{inst.name}` ({gen._where(inst.span)})."
            body = _class_text("{name}", doc, _signature(order), first.init, first.arguments,
                               first.forward, first.results, names, first.defaults)
            base = class_name(block)
            if base in reserved or base in _RESERVED:
                base += "Block"
            name = next((n for n, t in taken.items() if t == body), None)
            if name is None:
                name, k = base, 1
                while name in taken or name in reserved:
                    k += 1
                    name = f"{base}{k}"
                taken[name] = body
                texts.append(body.replace("class {name}(", f"class {name}(", 1))
                variables[name] = dict(first.variables)
            for cls in group:
                cls.name = name
                values = {}
                for q in order:
                    if q == "in_channels" and q not in cls.values:
                        values[q] = cls.first_channels
                    elif ("fresh", q) in cls.values:
                        values[q] = cls.values[("fresh", q)]
                    else:
                        values[q] = cls.values[q]
                cls.origins = {q: cls.origins.get(q) for q in order if q in cls.origins}
                cls.values = values
    gen.render(root)
    params = list(graph.parameters)
    names, _ = _name_slots([root], params, lambda c, q: _origin_key(graph.parameter_origins.get(q)),
                           lambda c, q: graph.parameters.get(q), lambda c: None)
    for j, text in list(names.items()):  # the network's class: its parameters, or literals
        if text.isidentifier() and text not in map(identifier, params):
            names[j] = literal(root.slots[j][0])
    followed = {q for q in params if identifier(q) in names.values()}
    unfollowed = [q for q in params if q not in followed]
    doc = f"`{graph.name}` from {path or 'its spec'}, as netspec checked it."
    if unfollowed:
        doc += (f" Its value{'s' if len(unfollowed) > 1 else ''} of "
                + ", ".join(f"`{q}`" for q in unfollowed)
                + " are written into the layers: to change them, write the file again with `--set`.")
    texts.append(_class_text(network_class, doc, _signature(params, graph.parameters), root.init,
                             root.arguments, root.forward, root.results, names, root.defaults))
    body = "\n\n\n".join([*gen.helpers.values(), *texts]).replace("\n\n\n\n", "\n\n\n")
    body = "\n".join(line.rstrip() for line in body.splitlines())
    imports = ["import torch"] if re.search(r"\btorch\.", body) else []
    if re.search(r"\bF\.", body):
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    header = (f'"""{graph.name}, written as a PyTorch module by `netspec torch` from {path or "its spec"}.\n\n'
              f"The state_dict keys are netspec's parameter names. `Model` is the network's class.\n"
              '"""\n')
    variables[network_class] = dict(root.variables)
    source = f"{header}\n" + "\n".join(imports) + "\n\n\n" + body + f"\n\n\nModel = {network_class}\n"
    return Generated(source, variables, network_class)


# ============================================================================ in memory


TORCH_MISSING = ("netspec's PyTorch module needs torch, which is not installed: "
                 "pip install 'netspec[torch]' (or pip install torch)")


def import_torch():
    """torch, or ImportError saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(TORCH_MISSING) from exc
    return torch


def instantiate(source: str, name: str, args: dict[str, Any] | None = None):
    """The `Model` class of generated `source`, run as a module of its own (registered in
    linecache, so that tracebacks, inspect and torch.compile see its lines), instantiated."""
    import linecache
    import sys
    import types

    import_torch()
    import zlib

    filename = f"<netspec torch {name}>"
    # one module name per source: two networks of one name keep their own classes
    module = types.ModuleType(identifier(f"netspec_torch_{name}_{zlib.crc32(source.encode()):08x}"))
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    sys.modules.setdefault(module.__name__, module)
    return module.Model(**(args or {}))


def state_dict(graph: Graph, weights: dict) -> dict:
    """netspec's weights (numpy arrays by state_dict key) as torch tensors, for load_state_dict."""
    import numpy as np

    torch = import_torch()
    out = {}
    for key, spec in graph.state_dict_specs().items():
        array = np.ascontiguousarray(weights[key])
        if array.dtype.name == "bfloat16":
            out[key] = torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
        else:
            out[key] = torch.from_numpy(array.copy())
    return out
