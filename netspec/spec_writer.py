"""Layers to spec text: the last stage of `netspec import`, after netspec.importer has read the
ONNX nodes as layers. It names the layers after the model's names, and gives the spec the
structure a person would write:

- a module instance that recurs (torchvision's `layer1.0`, `layer2.0`, ...: the layers under one
  prefix, reading one value and giving one) becomes a `block`, its arguments the attribute values
  that differ between the instances; the deepest repeats are found first, then the instances
  themselves may recur inside larger ones (a stage of blocks);
- the children `P.0`, `P.1`, ... of one module, one after the other in a chain, become the chain
  `P = src -> a -> b` (or `"P": seq { a -> b }`), whose positions give the names back, and equal
  neighbours inside it a `repeat(n) { ... }`.

Names are exact: every parameter keeps its name (`layer1.0.conv1.weight`), so the weights need no
renaming. `write_spec(..., structured=False)` writes the flat form, every layer labelled in full.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import numpy as np

from netspec.layers.base import LAYERS

_LABEL = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_FUNCTIONAL = {"add", "mul", "concat", "flatten", "reshape", "permute", "matmul"}  # never a module's own op
_KEYWORD = re.compile(r"^([A-Za-z_]\w*)=(.*)$", re.S)
_RESERVED = set(keyword.kwlist) | {"input", "output", "network", "block", "use", "return", "repeat",
                                   "seq", "param", "buffer", "true", "false", "x"}
# the order netspec.importer writes a layer's keywords in
_KEYWORD_ORDER = ["stride", "padding", "dilation", "groups", "output_padding", "ceil_mode", "count_include_pad",
                  "bias", "eps", "momentum", "affine", "elementwise_affine", "mode", "align_corners", "value"]
_CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}  # classes that say nothing of a block
MIN_BLOCK_LAYERS = 3   # a pair (conv then batchnorm) reads better written out than as a block
LINE = 100             # a chain longer than this is written one stage a line


@dataclass
class Layer:
    kind: str                       # the netspec layer, e.g. "conv"
    args: list[str]                 # positional then keyword arguments, as written
    inputs: list[str]               # the values it reads (ONNX value names)
    output: str                     # the value it makes
    node: str                       # the ONNX node it is named after
    params: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # suffix -> (initializer, array)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)            # extra state_dict entries
    label: str = ""
    named: bool = False             # the label comes from the model's names, not a counter
    value: np.ndarray | None = None  # a `param` or `buffer`'s array (None: not persistent)


SOURCES = {"param", "buffer"}  # layers that read nothing: a network's own tensors


def _module_path(node: str) -> str | None:
    """The module a torch.onnx node belongs to, from its scoped name: `/layer1/layer1.0/conv1/Conv`
    is `layer1.0.conv1` (each scope the module's name, or its full dotted path); None for a name
    of another form or a node outside every module (`/Flatten`)."""
    if not node.startswith("/"):
        return None
    scopes = [s for s in node.split("/")[1:-1] if s]
    path = last = ""
    for scope in scopes:
        # a scope is its module's name in its parent (`conv1`), or, for a container's child,
        # the container's scope and the index (`block.0` under `block`): it replaces that scope
        if last and scope.startswith(last + "."):
            path = path[:len(path) - len(last)] + scope
        else:
            path = f"{path}.{scope}" if path else scope
        last = scope
    return path if path and _LABEL.match(path) else None


def label_layers(layers: list[Layer], scopes: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Give every layer its label and return the weights under the parameter names those make:
    a layer with weights takes its initializers' prefix (`layer1.0.conv1`), any other the node's
    name where that is a label (netspec's own export), its torch.onnx module path, else a
    counter's (`relu_3`)."""
    used: set[str] = set()
    counters: dict[str, int] = {}
    weights: dict[str, np.ndarray] = {}
    scopes = scopes or {}
    for layer in layers:
        label = None
        node = scopes.get(layer.node, layer.node)
        if layer.kind in SOURCES:  # named by its state_dict key
            layer.label, layer.named = layer.node, True
            used.add(layer.label)
            if layer.value is not None:
                weights[layer.label] = np.ascontiguousarray(layer.value)
            continue
        # `layer1.0.conv1.weight`; the dynamo exporter's folded batch norm adds `...conv1.weight_bias`,
        # and its pre-transposed MatMul weights are `val_12` (the bias keeps its name)
        prefixes = {init[:-len(suffix) - 1] for suffix, (init, _) in layer.params.items()
                    if init.endswith("." + suffix) and len(init) > len(suffix) + 1}
        if len(prefixes) == 1:
            label = prefixes.pop()
        elif node and _LABEL.match(node):  # netspec's own: nodes named after layers
            label = node
        elif "/" in node and _LABEL.match(node.split("/")[0]) and \
                node.split("/")[0] not in used:  # netspec's `<layer>/<op>`
            label = node.split("/")[0]
        elif _module_path(node):  # torch.onnx's `/layer1/layer1.0/conv1/Conv`
            label = _module_path(node)
            if layer.kind in _FUNCTIONAL:  # `/layer1/layer1.0/Add`: an op inside the module
                label = f"{label}.{layer.kind}"
            base, k = label, 0
            while label in used:  # a module called again (one ReLU, three times): torch.onnx's `relu_1`
                k += 1
                label = f"{base}_{k}"
        layer.named = label is not None and bool(_LABEL.match(label)) and label not in used
        if not layer.named:
            counters[layer.kind] = counters.get(layer.kind, 0) + 1
            label = f"{layer.kind}_{counters[layer.kind]}"
            while label in used:
                counters[layer.kind] += 1
                label = f"{layer.kind}_{counters[layer.kind]}"
        used.add(label)
        layer.label = label
        for suffix, (_, array) in layer.params.items():
            weights[f"{label}.{suffix}"] = np.ascontiguousarray(array)
        for suffix, array in layer.buffers.items():
            weights[f"{label}.{suffix}"] = array
    return weights


# ---------------------------------------------------------------- steps: layers, instances, seqs

@dataclass
class Step:
    """One stage of a chain: a layer, a block instance (`kind` the block's name) or a `seq` of
    steps (`kind` "seq", `body` its children)."""
    kind: str
    args: list[str]
    inputs: list[str]
    output: str
    label: str
    named: bool
    layers: int = 1                  # how many layers it stands for
    body: list["Step"] = field(default_factory=list)
    positional: bool = True          # a seq whose children are all named by position


@dataclass
class Block:
    name: str
    params: list[str]                # after `x`
    body: list[Step]                 # labels relative to the instance
    input: str                       # the body's value `x` (the first instance's input)
    output: str                      # the body's value the block returns
    params_from: list[tuple[int, str]] = field(default_factory=list)  # (body step, attribute) of each


def number_text(value: float) -> str:
    """A float attribute as a short literal: float32's shortest repr (0.001, not 0.0010000000474974513)."""
    text = str(np.float32(value)).replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")
    return text if any(c in text for c in ".e") or text in ("inf", "-inf", "nan") else text + ".0"


def _literal(value) -> str | None:
    """A pydantic default as spec text; None where the language cannot write it (None itself)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, tuple) and value:
        parts = [_literal(v) for v in value]
        return None if None in parts else "(" + ", ".join(parts) + ")"
    return None


class _Structure:
    """Finds the blocks among the steps (instances of one module that recur) and replaces each
    instance by one step."""

    def __init__(self, outputs: set[str], classes: dict[str, str]):
        self.outputs = outputs
        self.classes = classes           # module path -> its class, where the model says
        self.blocks: list[Block] = []
        self.block_params: dict[str, list[str]] = {}

    def fields(self, step: Step) -> tuple[dict[str, str], list[str]] | None:
        """A step's arguments by attribute name, and the names given by position; None for
        arguments that cannot be told apart by name."""
        names = self.block_params.get(step.kind)
        if step.kind in SOURCES:
            names = [f"size_{i + 1}" if i else "size" for i in range(len(step.args))]
        elif names is None:
            cls = LAYERS.get(step.kind)
            names = list(cls.positional) if cls is not None else []
        values: dict[str, str] = {}
        positional: list[str] = []
        for i, arg in enumerate(step.args):
            match = _KEYWORD.match(arg)
            if match and not arg.startswith(("(", '"')):
                values[match.group(1)] = match.group(2)
            elif i < len(names):
                values[names[i]] = arg
                positional.append(names[i])
            else:
                return None
        return values, positional

    def default(self, kind: str, name: str) -> str | None:
        cls = LAYERS.get(kind)
        if cls is None or name not in cls.model_fields:
            return None
        return _literal(cls.model_fields[name].default)

    def candidates(self, steps: list[Step]) -> dict[str, tuple[int, int, str]]:
        """Each prefix P whose steps are contiguous, read one value from outside and give only
        their last one's: (first index, last index, the value read)."""
        last_read: dict[str, float] = {}
        for j, s in enumerate(steps):
            for x in s.inputs:
                last_read[x] = j
        for o in self.outputs:
            last_read[o] = float("inf")
        prefixes: dict[str, list[int]] = {}
        for i, s in enumerate(steps):
            if not s.named:
                continue
            parts = s.label.split(".")
            for depth in range(1, len(parts)):
                prefixes.setdefault(".".join(parts[:depth]), []).append(i)
        found = {}
        for prefix, indices in prefixes.items():
            lo, hi = indices[0], indices[-1]
            # two steps at least: a block of one step is a name for it, no shorter
            if hi - lo + 1 != len(indices) or len(indices) < 2 or \
                    sum(steps[i].layers for i in indices) < MIN_BLOCK_LAYERS:
                continue
            inside = {steps[i].output for i in indices}
            read = {x for i in indices for x in steps[i].inputs if x not in inside}
            if len(read) != 1 or any(last_read.get(steps[i].output, -1) > hi for i in indices[:-1]):
                continue
            found[prefix] = (lo, hi, read.pop())
        return found

    def signature(self, steps, prefix, lo, hi, x):
        """What instances of one block share (kinds, relative labels, wiring, which attributes
        are given), and the attribute values that may differ: (key, {(step, attribute): text})."""
        local: dict[str, object] = {x: "x"}
        key, values = [], {}
        for k, i in enumerate(range(lo, hi + 1)):
            s = steps[i]
            fields = self.fields(s)
            if fields is None or any(v not in local for v in s.inputs):
                return None
            given, positional = fields
            # an attribute left at a default the language can write may be compared with one given
            defaulted = tuple(sorted(n for n in given if n not in positional and self.default(s.kind, n) is None))
            key.append((s.label[len(prefix) + 1:], s.kind, tuple(local[v] for v in s.inputs), tuple(positional),
                        defaulted, s.named))
            for n, text in given.items():
                values[(k, n)] = text
            local[s.output] = k
        return tuple(key), values

    def find(self, steps: list[Step]) -> list[Step]:
        """Replace recurring instances by block calls, deepest first, until none recur."""
        while True:
            found = self.candidates(steps)
            classes: dict[tuple, list[tuple[str, dict]]] = {}
            for prefix, (lo, hi, x) in found.items():
                sig = self.signature(steps, prefix, lo, hi, x)
                if sig is not None:
                    classes.setdefault(sig[0], []).append((prefix, sig[1]))
            repeated = {k: v for k, v in classes.items() if len(v) >= 2}
            if not repeated:
                return steps
            depth = max(max(p.count(".") for p, _ in members) for members in repeated.values())
            chosen = sorted((members for members in repeated.values()
                             if max(p.count(".") for p, _ in members) == depth),
                            key=lambda members: found[members[0][0]][0])
            replace: dict[int, tuple[int, Step]] = {}
            for members in chosen:
                block = self.make_block(steps, found, members)
                for prefix, values in members:
                    lo, hi, x = found[prefix]
                    args = [values[p] for p in block.params_from]
                    replace[lo] = (hi, Step(block.name, args, [x], steps[hi].output,
                                            prefix, True, sum(s.layers for s in steps[lo:hi + 1])))
            out, i = [], 0
            while i < len(steps):
                if i in replace:
                    hi, step = replace[i]
                    out.append(step)
                    i = hi + 1
                else:
                    out.append(steps[i])
                    i += 1
            steps = out

    def make_block(self, steps, found, members):
        """One block for the instances `members`: parameters for the attribute values that
        differ (one for values that always agree, `p * k` for a constant multiple of one)."""
        first, _ = members[0]
        lo, hi, x = found[first]
        body = [Step(s.kind, list(s.args), list(s.inputs), s.output, s.label[len(first) + 1:], s.named, s.layers,
                     s.body) for s in steps[lo:hi + 1]]
        keys = list(members[0][1])
        for _, values in members[1:]:
            keys += [k for k in values if k not in keys]
        params: list[str] = []
        params_from: list[tuple] = []
        vectors: dict[tuple, str] = {}
        texts: dict[tuple, str] = {}
        taken = {re.sub(r"\W", "_", s.label) for s in body}
        for k, name in keys:
            column = []
            for _, values in members:
                text = values.get((k, name), self.default(body[k].kind, name))
                column.append(text)
            column = tuple(column)
            if len(set(column)) == 1:
                texts[(k, name)] = column[0]
                continue
            if column in vectors:
                texts[(k, name)] = vectors[column]
                continue
            multiple = None
            if all(re.fullmatch(r"\d+", c) for c in column):
                for known, pname in vectors.items():
                    if re.sub(r"_\d+$", "", pname) == re.sub(r"_\d+$", "", name) and \
                            all(re.fullmatch(r"\d+", c) and int(c) > 0 for c in known):
                        ratios = {int(a) / int(b) for a, b in zip(column, known)}
                        if len(ratios) == 1 and (r := ratios.pop()) == int(r) and r > 1:
                            multiple = f"{pname} * {int(r)}"
                            break
            if multiple:
                texts[(k, name)] = multiple
                continue
            pname = _fresh(re.sub(r"_\d+$", "", name), taken | set(params))
            params.append(pname)
            params_from.append((k, name))
            vectors[column] = pname
            texts[(k, name)] = pname
        for k, s in enumerate(body):
            fields = self.fields(s)
            given, positional = fields
            args = [texts[(k, n)] for n in positional]
            keywords = [n for n in given if n not in positional]
            # attributes other instances give and this one leaves at the default, in their usual place
            keywords += [n for (kk, n), text in texts.items()
                         if kk == k and n not in given and text != self.default(s.kind, n)]
            keywords.sort(key=lambda n: _KEYWORD_ORDER.index(n) if n in _KEYWORD_ORDER else len(_KEYWORD_ORDER))
            s.args = args + [f"{n}={texts[(k, n)]}" for n in keywords]
        name = self.block_name(body, [prefix for prefix, _ in members])
        block = Block(name, params, body, x, steps[hi].output, params_from)
        self.blocks.append(block)
        self.block_params[name] = params
        # the instances' values for each parameter (a missing one is the attribute's default)
        for prefix, values in members:
            for k, n in params_from:
                values.setdefault((k, n), self.default(body[k].kind, n))
        return block

    def block_name(self, body: list[Step], prefixes: list[str]) -> str:
        """The modules' class where the model says it (`Bottleneck`: `bottleneck`), else the
        layers' kinds where few (`conv_batchnorm_relu`), else `block1`, `block2`, ..."""
        kinds = [s.kind for s in body]
        taken = {b.name for b in self.blocks}
        classes = {self.classes.get(p, "").rsplit(".", 1)[-1] for p in prefixes}
        cls = classes.pop() if len(classes) == 1 else ""
        if cls and re.fullmatch(r"_?[A-Za-z][A-Za-z0-9_]*", cls) and cls not in _CONTAINERS:
            base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.strip("_")).lower()
        elif len(kinds) <= 3 and all(k in LAYERS for k in kinds):
            base = "_".join(kinds)
        else:
            base = f"block{len(self.blocks) + 1}"
        return _fresh(base, taken)


# ---------------------------------------------------------------- runs of a module's children

_CHILD = re.compile(r"^(?:(.*)\.)?([A-Za-z0-9_-]+)$")


def _runs(steps: list[Step], single_use, returned: str | None) -> list[Step]:
    """Group the children of one module P that follow one another in a chain (`P.0`, `P.1`, ...
    or `P.denselayer1`, ...) into one `seq` step labelled P, deepest P first, until none are
    left. In a block's body (`returned` its value), the instance's own children `0`, `1`, ...
    ending at that value are one `seq` labelled ""."""
    def child(k: int, position: int):
        match = _CHILD.match(steps[k].label) if steps[k].named and steps[k].inputs else None
        if not match or (match.group(2).isdigit() and int(match.group(2)) != position):
            return None
        return match.group(1) or ""

    while True:
        groups = []
        i = 0
        while i < len(steps):
            parent = child(i, 0)
            if parent is None:
                i += 1
                continue
            j = i
            while j + 1 < len(steps) and child(j + 1, j + 1 - i) == parent and \
                    steps[j + 1].inputs[:1] == [steps[j].output] and single_use(steps[j].output):
                j += 1
            positional = all(_CHILD.match(t.label).group(2).isdigit() for t in steps[i:j + 1])
            if parent == "":
                if positional and returned is not None and steps[j].output == returned:
                    groups.append((parent, i, j, True))
            elif j > i:
                groups.append((parent, i, j, positional))
            i = j + 1
        if not groups:
            return steps
        depth = max(p.count(".") + bool(p) for p, *_ in groups)
        chosen = {i: (p, j, positional) for p, i, j, positional in groups if p.count(".") + bool(p) == depth}
        out, i = [], 0
        while i < len(steps):
            if i in chosen:
                parent, j, positional = chosen[i]
                members = steps[i:j + 1]
                extra = [x for s in members for x in s.inputs[1:]]
                out.append(Step("seq", [], [members[0].inputs[0], *extra], members[-1].output, parent, True,
                                sum(s.layers for s in members), members, positional))
                i = j + 1
            else:
                out.append(steps[i])
                i += 1
        steps = out


def _fresh(base: str, taken) -> str:
    """`base`, or `base_2`, `base_3`, ... the first not in `taken` (nor a keyword or layer kind)."""
    name, n = base, 2
    while name in taken or name in _RESERVED or name in LAYERS:
        name, n = f"{base}_{n}", n + 1
    return name


def _quote(label: str) -> str:
    return label if label.isidentifier() and label not in _RESERVED else f'"{label}"'


class _Writer:
    """One scope's chains: the network's, or a block's body."""

    def __init__(self, steps: list[Step], sources: dict[str, str], outputs: dict[str, str], taken: set[str],
                 structured: bool, blocks: set[str], returned: str | None = None):
        self.blocks = blocks
        self.sources = dict(sources)     # bound values: inputs (and `x`)
        self.outputs = outputs           # value -> the name it must have
        self.returned = returned         # a block body's value
        self.taken = set(taken) | set(sources.values()) | set(outputs.values())
        readers: dict[str, list[int]] = {}
        for s in steps:
            for i, x in enumerate(s.inputs):
                readers.setdefault(x, []).append(i)
        self.readers = readers
        if structured:
            steps = _runs(steps, lambda v: readers.get(v) == [0] and v not in outputs, returned)
        self.steps = steps

    def bind_names(self) -> None:
        """Name every value a line binds: inputs and outputs, a run or instance written as a
        chain of its own (`layer2 = layer1 -> ...`), and a value read more than once or not
        as its reader's first input."""
        names = dict(self.sources)
        names.update(self.outputs)
        producer = {s.output: s for s in self.steps}
        first_reader = {}
        for s in self.steps:
            for x in s.inputs[:1]:
                first_reader.setdefault(x, s)
        # a run of P's children written as `P = src -> a -> b`, an instance P as `P = src -> b(...)`:
        # its source bound, its value `P`
        self.unfolded: set[int] = set()
        for s in self.steps:
            unfoldable = (s.kind == "seq" and s.positional) or s.kind in self.blocks
            if unfoldable and s.label.isidentifier() and s.label not in _RESERVED and s.label not in LAYERS \
                    and (s.label not in self.taken and s.output not in names or names.get(s.output) == s.label):
                names[s.output] = s.label
                self.taken.add(s.label)
                self.unfolded.add(id(s))
        for s in self.steps:
            v = s.output
            if v in names:
                continue
            rs = self.readers.get(v, [])
            if s.inputs and len(rs) == 1 and rs[0] == 0 and id(first_reader.get(v)) not in self.unfolded:
                continue
            base = re.sub(r"\W", "_", s.label).strip("_") or "t"
            name = _fresh("t_" + base if base[0].isdigit() else base, self.taken)
            self.taken.add(name)
            names[v] = name
        self.names = names
        self.producer = producer

    def stage(self, s: Step, label: str | None = None) -> str:
        """`label: kind(args)` (`label` None: the step's own), `seq { ... }` for a run."""
        label = s.label if label is None else label
        head = f"{_quote(label)}: " if label else ""
        if s.kind == "seq":
            items = self.inner(s)
            text = f"{head}seq {{ {' -> '.join(items)} }}"
            if len(text) <= LINE and "\n" not in text:
                return text
            body = _join(items[0], items[1:], indent="    ")
            return f"{head}seq {{\n" + "\n".join("    " + line for line in body.split("\n")) + "\n}"
        args = [self.names[x] for x in s.inputs[1:]] + s.args
        return f"{head}{s.kind}" + (f"({', '.join(args)})" if args else "")

    def inner(self, seq: Step) -> list[str]:
        """The stages of a run: a child named by its position unlabelled, one named otherwise
        labelled with its own part of the name; equal neighbours folded into `repeat(n) { ... }`
        (`repeat(n, i) { denselayer{i + 1}: ... }` for numbered names)."""
        parts = [_CHILD.match(s.label).group(2) for s in seq.body]
        labels = [None if part.isdigit() else part for part in parts]
        texts = [self.stage(s, label="") for s in seq.body]
        out, i = [], 0
        while i < len(texts):
            best = (1, 1)
            for period in range(1, 5):
                if any(labels[i:i + period]):
                    break
                times = 1
                while texts[i + times * period:i + (times + 1) * period] == texts[i:i + period] and \
                        not any(labels[i + times * period:i + (times + 1) * period]):
                    times += 1
                if times > 1 and times * period > best[0] * best[1]:
                    best = (period, times)
            period, times = best
            numbered = re.fullmatch(r"([A-Za-z_]\w*?)(\d+)", labels[i] or "")
            if times > 1:
                out.append(f"repeat({times}) {{ {' -> '.join(texts[i:i + period])} }}")
                i += period * times
            elif numbered:
                prefix, start = numbered.group(1), int(numbered.group(2))
                times = 1
                while i + times < len(texts) and texts[i + times] == texts[i] and \
                        labels[i + times] == f"{prefix}{start + times}":
                    times += 1
                if times > 1 and prefix not in _RESERVED:
                    index = "{i}" if start == 0 else f"{{i + {start}}}"
                    out.append(f"repeat({times}, i) {{ {prefix}{index}: {texts[i]} }}")
                    i += times
                else:
                    out.append(f"{_quote(labels[i])}: {texts[i]}")
                    i += 1
            else:
                out.append(texts[i] if labels[i] is None else f"{_quote(labels[i])}: {texts[i]}")
                i += 1
        return out

    def chain(self, v: str) -> list[str]:
        s = self.producer[v]
        if not s.inputs:  # a param or buffer: its label only where its binding does not name it
            return [self.stage(s, label="" if self.names.get(v) == s.label else None)]
        first = s.inputs[0]
        head = [self.names[first]] if first in self.names else self.chain(first)
        if id(s) in self.unfolded:
            return head + (self.inner(s) if s.kind == "seq" else [self.stage(s, label="")])
        return head + [self.stage(s)]

    def lines(self) -> list[str]:
        self.bind_names()
        returned = self.returned
        sources, lines = [], []  # the params and buffers first
        for s in self.steps:
            v = s.output
            if v not in self.names or (v == returned and id(s) not in self.unfolded):
                continue
            stages = self.chain(v)
            (lines if s.inputs else sources).append(_join(f"{self.names[v]} = {stages[0]}", stages[1:]))
        lines = sources + ([""] if sources and lines and returned is None else []) + lines
        if returned is not None:
            if returned in self.sources or id(self.producer[returned]) in self.unfolded:
                lines.append(f"return {self.names[returned]}")
            else:
                s = self.producer[returned]
                if s.kind == "seq" and s.label == "":  # the block's own children: its return chain
                    stages = ([self.names[s.inputs[0]]] if s.inputs[0] in self.names else self.chain(s.inputs[0])) \
                        + self.inner(s)
                else:
                    stages = self.chain(returned)
                lines.append(_join(f"return {stages[0]}", stages[1:]))
        return lines


def _join(head: str, stages: list[str], indent: str = "    ") -> str:
    """`head -> a -> b ...`, filled up to LINE characters a line, the next ones indented; a
    stage of several lines (a long `seq`) starts a line and keeps its own indentation."""
    lines = [head]
    for s in stages:
        first, *rest = s.split("\n")
        if not lines[-1]:  # after a long seq
            lines[-1] = f"{indent}-> {first}"
        elif rest or len(lines[-1]) + 4 + len(first) > LINE:
            lines.append(f"{indent}-> {first}")
        else:
            lines[-1] += f" -> {first}"
        lines += [indent + line for line in rest]
        if rest:
            lines.append("")  # what follows a long seq starts its own line
    return "\n".join(line for line in lines if line)


def write_spec(name: str, layers: list[Layer], declarations: list[str], inputs: list[str],
               outputs: dict[str, str], structured: bool = True, classes: dict[str, str] | None = None) -> str:
    """The spec text: `network name`, the input `declarations`, then the layers as chains (blocks
    and runs where `structured`), then `output`. `outputs` maps each output's value to its name;
    `classes` each module path to its class, where known (blocks are named after it)."""
    steps = [Step(layer.kind, list(layer.args), list(layer.inputs), layer.output, layer.label, layer.named)
             for layer in layers]
    structure = _Structure(set(outputs), classes or {})
    if structured:
        steps = structure.find(steps)
    names = {b.name for b in structure.blocks}
    taken = names | set(inputs)
    lines = [f"network {name}", ""]
    for block in structure.blocks:
        writer = _Writer(block.body, {block.input: "x"}, {}, set(block.params) | {"x"}, structured,
                         names, returned=block.output)
        params = ", ".join(["x", *block.params])
        lines.append(f"block {block.name}({params}) {{")
        lines += ["    " + line.replace("\n", "\n    ") for line in writer.lines()]
        lines += ["}", ""]
    lines += declarations + [""]
    writer = _Writer(steps, {i: i for i in inputs}, outputs, taken, structured, names)
    lines += writer.lines()
    lines += ["", "output " + ", ".join(outputs.values())]
    return _formatted("\n".join(lines) + "\n", name)


def _formatted(text: str, name: str) -> str:
    """The spec in `netspec fmt`'s layout. Text that does not parse is returned as written: the
    importer compiles what it wrote and reports why it fails."""
    from netspec.diagnostics import NetspecError
    from netspec.formatter import FormatterError, format_text

    try:
        return format_text(text, f"{name}.net")
    except (NetspecError, FormatterError):
        return text

