"""What the language server knows about one document: its compilation (from the editor's text,
not the file on disk), and the questions an editor asks of it, answered in netspec's own
coordinates (lines and columns from 1, columns in characters, as `Span`).

This module knows nothing of the protocol: netspec.lsp.server turns its answers into LSP
messages. It imports only netspec, so it can be tested and timed on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from netspec import syntax as S
from netspec.compiler import Compilation, compile_file
from netspec.diagnostics import Span
from netspec.graph import BlockInstance, Graph, LayerNode
from netspec.types import TensorType

__all__ = ["Analysis", "Occurrence", "analyze", "completions", "Completion", "Symbol"]


def _contains(span: Span, line: int, column: int) -> bool:
    """Whether the position (a cursor, between characters) touches the span: its end counts,
    so a cursor just past a name is on it."""
    if (line, column) < (span.line, span.column):
        return False
    return (line, column) <= (span.end_line, span.end_column)


def _within(inner: Span, outer: Span) -> bool:
    return (inner.file == outer.file and (inner.line, inner.column) >= (outer.line, outer.column)
            and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column))


def _size(span: Span) -> tuple[int, int]:
    return (span.end_line - span.line, span.end_column - span.column if span.end_line == span.line else 10**6)


@dataclass
class Occurrence:
    """A name written in the document: what it is (`kind`), the node around it and the block
    definition it is in (None at the top level).

    kinds: layer (a layer's name in a call), call (a block's name in a call), unknown-call,
    label, binding, input, param (a parameter's declaration), block (a block's definition),
    ref (a name read), output, keyword (an argument's name)."""

    kind: str
    name: str
    span: Span
    node: S.Node
    block: S.BlockDef | None = None


@dataclass
class Symbol:
    name: str
    kind: str          # network, input, binding, output, block, param, use
    span: Span         # the whole statement
    selection: Span    # the name
    detail: str = ""
    children: list["Symbol"] = field(default_factory=list)


@dataclass
class Completion:
    label: str
    kind: str          # layer, block, attribute, variable, param, value
    detail: str = ""
    documentation: str = ""
    insert_text: str | None = None
    sort: str = "5"


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


class Analysis:
    """One document's compilation and its index: layer nodes and block instances by the span
    of the call that made them, names written by position."""

    def __init__(self, path: str, text: str, compilation: Compilation, version: Any = None):
        self.path = path
        self.text = text
        self.version = version
        self.compilation = compilation
        self.module: S.Module | None = compilation.modules.get(path)
        self.graph: Graph | None = compilation.graph
        self.by_span: dict[Span, list[LayerNode]] = {}
        self.instances_by_span: dict[Span, list[BlockInstance]] = {}
        self.order: dict[str, int] = {}
        if self.graph is not None:
            seen: set[int] = set()
            for index, node in enumerate(self.graph):
                self.order[node.name] = index
                self.by_span.setdefault(node.span, []).append(node)
                for instance in node.blocks:
                    if id(instance) not in seen:
                        seen.add(id(instance))
                        self.instances_by_span.setdefault(instance.span, []).append(instance)
        self.occurrences: list[Occurrence] = list(self._occurrences()) if self.module is not None else []
        # the files this one reads (its `use`s, theirs in turn), those that could not be read or
        # parsed too: fixing one must re-check this document
        self.depends: set[str] = set(compilation.modules)
        for module in compilation.modules.values():
            for statement in module.statements:
                if isinstance(statement, S.Use) and statement.path.value and "\0" not in statement.path.value:
                    self.depends.add(os.path.normpath(Path(module.path).parent / statement.path.value))
        self.depends = {name for name in self.depends if not _same_file(name, path)}

    # ------------------------------------------------------------ what the document holds

    def blocks(self) -> dict[str, S.BlockDef]:
        """Every block this document can call: its own and those of the files it uses."""
        out: dict[str, S.BlockDef] = {}
        modules = list(self.compilation.modules.values())
        for module in modules:
            for statement in module.statements:
                if isinstance(statement, S.BlockDef):
                    out.setdefault(statement.name.name, statement)
        return out

    def _occurrences(self) -> Iterator[Occurrence]:
        from netspec.layers import LAYERS

        blocks = self.blocks()
        stack: list[tuple[S.Node, S.BlockDef | None]] = [(s, None) for s in reversed(self.module.statements)]
        while stack:
            node, block = stack.pop()
            if isinstance(node, S.BlockDef):
                block = node
                yield Occurrence("block", node.name.name, node.name.span, node, None)
                for p in node.params:
                    yield Occurrence("param", p.name.name, p.name.span, p, block)
            elif isinstance(node, S.NetworkHeader):
                for p in node.params:
                    yield Occurrence("param", p.name.name, p.name.span, p, None)
            elif isinstance(node, S.InputDecl):
                yield Occurrence("input", node.name.name, node.name.span, node, None)
            elif isinstance(node, S.Binding):
                yield Occurrence("binding", node.name.name, node.name.span, node, block)
            elif isinstance(node, S.Unpack):
                for ident in node.names:
                    yield Occurrence("binding", ident.name, ident.span, node, block)
            elif isinstance(node, S.Output):
                for ident in node.names:
                    yield Occurrence("output", ident.name, ident.span, node, None)
            elif isinstance(node, S.Call):
                callee = node.callee.name
                kind = "layer" if callee in LAYERS else "call" if callee in blocks else "unknown-call"
                yield Occurrence(kind, callee, node.callee.span, node, block)
                if node.label is not None:
                    yield Occurrence("label", node.label.name, node.label.span, node, block)
            elif isinstance(node, (S.Repeat, S.Seq)) and node.label is not None:
                yield Occurrence("label", node.label.name, node.label.span, node, block)
            elif isinstance(node, S.NameRef):
                yield Occurrence("ref", node.name, node.span, node, block)
            elif isinstance(node, S.Arg) and node.name is not None:
                yield Occurrence("keyword", node.name.name, node.name.span, node, block)
            stack.extend((child, block) for child in reversed(list(node.children())))

    def at(self, line: int, column: int) -> Occurrence | None:
        """The innermost name at the position (every occurrence is in this document)."""
        best = None
        for occurrence in self.occurrences:
            if _contains(occurrence.span, line, column):
                if best is None or _size(occurrence.span) <= _size(best.span):
                    best = occurrence
        return best

    def _enclosing_call(self, occurrence: Occurrence) -> S.Call | None:
        """For a keyword argument: the call it belongs to."""
        for other in self.occurrences:
            if other.kind in ("layer", "call") and isinstance(other.node, S.Call) \
                    and any(arg is occurrence.node for arg in other.node.args):
                return other.node
        return None

    # ------------------------------------------------------------ types of expressions

    def types_of(self, expr: S.Node, block: S.BlockDef | None = None, depth: int = 0) -> list[TensorType]:
        """The types an expression's value takes, one per time it is evaluated (a block's body
        once per instance), in creation order."""
        if depth > 50:
            return []
        if isinstance(expr, S.Chain):
            return self.types_of(expr.stages[-1], block, depth + 1) if expr.stages else []
        if isinstance(expr, (S.Repeat, S.Seq)):
            found = self._made_at(expr.span)
            if found:
                return found
            return self.types_of(expr.stages[-1], block, depth + 1) if expr.stages else []
        if isinstance(expr, S.Conditional):  # the branches taken, in the order they were made
            pairs = self._result_pairs(expr.then) + self._result_pairs(expr.otherwise)
            if pairs:
                return [t for _, t in sorted(pairs, key=lambda p: p[0])]
            return self.types_of(expr.then, block, depth + 1) + self.types_of(expr.otherwise, block, depth + 1)
        if isinstance(expr, S.NameRef):
            target = self.definition_of(expr.name, block)
            if target is None:
                return []
            kind, node = target
            if kind == "input" and self.graph is not None and expr.name in self.graph:
                output = self.graph.node(expr.name).output
                return [output] if output is not None else []
            if kind == "binding" and isinstance(node, S.Binding):
                return self.types_of(node.value, block, depth + 1)
            return []
        return self._made_at(expr.span)

    def _result_pairs(self, expr: S.Node) -> list[tuple[int, TensorType]]:
        """(creation index, type) of what an expression's last stage made, each evaluation."""
        inner = expr
        while isinstance(inner, S.Chain) and inner.stages:
            inner = inner.stages[-1]
        return self._pairs(inner.span)

    def _pairs(self, span: Span) -> list[tuple[int, TensorType]]:
        out = []
        for node in self.by_span.get(span, ()):
            if node.output is not None:
                out.append((self.order[node.name], node.output))
        for instance in self.instances_by_span.get(span, ()):
            if instance.output is not None and self.graph is not None and instance.output in self.graph:
                output = self.graph.node(instance.output).output
                if output is not None:
                    out.append((self.order[instance.output], output))
        return out

    def _made_at(self, span: Span) -> list[TensorType]:
        nodes = [n for n in self.by_span.get(span, ())]
        instances = self.instances_by_span.get(span, [])
        if instances and not nodes:
            return [t for _, t in self._pairs(span)]
        return [n.output for n in nodes if n.output is not None]

    # ------------------------------------------------------------ names

    def definition_of(self, name: str, block: S.BlockDef | None) -> tuple[str, S.Node] | None:
        """What `name` refers to where it is read: in a block, its parameters and bindings;
        at the top level (and for a block's defaults), the network's bindings, inputs and
        parameters. Returns (kind, node): kind is binding, input, param, block."""
        if self.module is None:
            return None
        if block is not None:
            for p in block.params:
                if p.name.name == name:
                    return "param", p
            for statement in block.body:
                found = _binds(statement, name)
                if found is not None:
                    return "binding", found
        for statement in self.module.statements:
            found = _binds(statement, name)
            if found is not None:
                return "binding", found
            if isinstance(statement, S.InputDecl) and statement.name.name == name:
                return "input", statement
            if isinstance(statement, S.NetworkHeader):
                for p in statement.params:
                    if p.name.name == name:
                        return "param", p
        definition = self.blocks().get(name)
        if definition is not None:
            return "block", definition
        return None

    def definition(self, line: int, column: int) -> Span | None:
        """Where the name at the position is defined: a block (in this file or one it uses),
        a binding, an input or a parameter."""
        occurrence = self.at(line, column)
        if occurrence is None:
            return None
        if occurrence.kind == "call":
            definition = self.blocks().get(occurrence.name)
            return definition.name.span if definition is not None else None
        if occurrence.kind in ("ref", "output"):
            target = self.definition_of(occurrence.name, occurrence.block)
            if target is None:
                return None
            kind, node = target
            if isinstance(node, S.Unpack):
                return next(i.span for i in node.names if i.name == occurrence.name)
            return node.name.span  # type: ignore[union-attr]
        if occurrence.kind == "keyword":
            call = self._enclosing_call(occurrence)
            definition = self.blocks().get(call.callee.name) if call is not None else None
            if definition is not None:
                for p in definition.params:
                    if p.name.name == occurrence.name:
                        return p.name.span
            return None
        if occurrence.kind in ("binding", "input", "param", "block"):
            return occurrence.span
        return None

    # ------------------------------------------------------------ hover

    def hover(self, line: int, column: int) -> tuple[str, Span] | None:
        """Markdown about the name at the position, and the span it is about."""
        occurrence = self.at(line, column)
        if occurrence is None:
            return None
        kind = occurrence.kind
        if kind in ("layer", "label", "unknown-call") and isinstance(occurrence.node, S.Call) \
                and occurrence.node.span in self.by_span:
            return self._hover_layer(occurrence.node), occurrence.span
        if kind in ("call", "label"):
            instances = self.instances_by_span.get(occurrence.node.span, [])
            if instances:
                return self._hover_instances(instances), occurrence.span
            if kind == "call":
                return self._block_doc(occurrence.name), occurrence.span
        if kind == "layer":
            return _layer_doc(occurrence.name), occurrence.span
        if kind == "unknown-call":
            from netspec.functions import DESCRIPTIONS

            if occurrence.name in DESCRIPTIONS:
                return DESCRIPTIONS[occurrence.name], occurrence.span
        if kind == "block":
            return self._block_doc(occurrence.name), occurrence.span
        if kind == "input" and self.graph is not None and occurrence.name in self.graph:
            t = self.graph.node(occurrence.name).output
            if t is not None:
                return f"**input** `{occurrence.name}`: `{t.dtype}{t}` {t.layout.axes}", occurrence.span
        if kind in ("binding", "ref", "output"):
            if kind == "binding" and isinstance(occurrence.node, S.Binding):
                value: S.Node | None = occurrence.node.value
                block = occurrence.block
            else:
                target = self.definition_of(occurrence.name, occurrence.block)
                value = None
                block = occurrence.block if kind == "ref" else None
                if target is not None:
                    what, node = target
                    if what == "binding" and isinstance(node, S.Binding):
                        value = node.value
                    elif what == "input" and self.graph is not None and occurrence.name in self.graph:
                        t = self.graph.node(occurrence.name).output
                        if t is not None:
                            return (f"**input** `{occurrence.name}`: `{t.dtype}{t}` {t.layout.axes}",
                                    occurrence.span)
                    elif what == "param":
                        return self._hover_param(occurrence.name, block), occurrence.span
                    elif what == "block":
                        return self._block_doc(occurrence.name), occurrence.span
            if value is not None:
                types = self.types_of(value, block)
                if types:
                    return self._hover_binding(occurrence.name, value, types, block), occurrence.span
                return f"**{occurrence.name}**", occurrence.span
        if kind == "param":
            return self._hover_param(occurrence.name, occurrence.block), occurrence.span
        if kind == "keyword":
            call = self._enclosing_call(occurrence)
            if call is not None:
                from netspec.layers import LAYERS

                cls = LAYERS.get(call.callee.name)
                if cls is not None:
                    return _attribute_doc(cls, occurrence.name), occurrence.span
                definition = self.blocks().get(call.callee.name)
                if definition is not None:
                    return (f"**parameter** `{occurrence.name}` of block `{self.signature(definition)}`",
                            occurrence.span)
        return None

    def _hover_param(self, name: str, block: S.BlockDef | None) -> str:
        if block is None and self.graph is not None and name in self.graph.parameters:
            from netspec.layers.base import show_value

            try:
                shown = show_value(self.graph.parameters[name])
            except Exception:  # a value netspec cannot write back: its repr
                shown = repr(self.graph.parameters[name])
            return f"**parameter** `{name}` = `{shown}`"
        where = f" of block `{block.name.name}`" if block is not None else ""
        return f"**parameter** `{name}`{where}"

    def _hover_layer(self, call: S.Call) -> str:
        nodes = self.by_span[call.span]
        first = nodes[0]
        lines = [f"**{first.kind}** `{first.name}`" + (f" — {first.summary}" if first.summary else "")]
        lines += _node_figures(first)
        explained = self._explain(first)
        if explained:
            lines += ["", "```", *explained, "```"]
        if len(nodes) > 1:
            lines += ["", f"made {len(nodes)} times (block instances, repeat rounds):"]
            for node in nodes[:8]:
                lines.append(f"- `{node.name}`: `{node.output}`" if node.output is not None else f"- `{node.name}`")
            if len(nodes) > 8:
                lines.append(f"- ... and {len(nodes) - 8} more")
        return "\n".join(lines)

    def _explain(self, node: LayerNode) -> list[str]:
        if node.layer is None or node.output is None or self.graph is None:
            return []
        try:
            inputs = [self.graph.node(n).output for n in node.inputs]
            arithmetic, notes = node.layer.explain(inputs, node.output)
        except Exception:  # a rule that cannot explain this input: no arithmetic shown
            return []
        return list(arithmetic) + [f"note: {note}" for note in notes]

    def _hover_instances(self, instances: list[BlockInstance]) -> str:
        graph = self.graph
        first = instances[0]
        lines = [f"**block** `{first.block}` — `{first.call}`"]
        for instance in instances[:8]:
            params = macs = 0
            for node in graph:
                if instance in node.blocks:
                    params += node.trainable
                    macs += node.macs
            output = graph.node(instance.output).output if instance.output in graph else None
            shape = f"`{output}` {output.layout.axes}" if output is not None else "?"
            lines.append(f"- `{instance.name}`: {shape}, params {params:,}, MACs {macs:,}")
        if len(instances) > 8:
            lines.append(f"- ... and {len(instances) - 8} more")
        return "\n".join(lines)

    def _hover_binding(self, name: str, value: S.Node, types: list[TensorType], block: S.BlockDef | None) -> str:
        head = f"**{name}**: `{types[0]}` {types[0].layout.axes}" if len(set(map(str, types))) == 1 \
            else f"**{name}**: {format_types(types)}"
        lines = [head]
        inner = value
        while isinstance(inner, S.Chain) and inner.stages:
            inner = inner.stages[-1]
        nodes = self.by_span.get(inner.span, [])
        if nodes:
            lines.append(f"from `{nodes[0].name}` ({nodes[0].kind})")
        layers, params, buffers, macs = self._inside(value.span)
        if layers:
            figures = [f"{layers:,} layer{'s' if layers != 1 else ''}", f"params: {params:,}"]
            if buffers:
                figures.append(f"buffers: {buffers:,}")
            figures.append(f"MACs: {macs:,}")
            lines.append(" · ".join(figures))
        if len(types) > 1:
            lines.append(f"{len(types)} evaluations (one per block instance or repeat round)")
        elif len(nodes) == 1:  # the arithmetic of the layer that makes it
            explained = self._explain(nodes[0])
            if explained:
                lines += ["", f"`{nodes[0].name}`:", "```", *explained, "```"]
        return "\n".join(lines)

    def _inside(self, span: Span) -> tuple[int, int, int, int]:
        """Layers made by the expression at `span` (those of the block instances it calls
        too), their parameters, buffers and MACs, summed over every evaluation."""
        layers = params = buffers = macs = 0
        if self.graph is None:
            return 0, 0, 0, 0
        for node in self.graph:
            if node.layer is None:
                continue
            if _within(node.span, span) or any(_within(b.span, span) for b in node.blocks):
                layers += 1
                params += node.trainable
                buffers += node.buffers
                macs += node.macs
        return layers, params, buffers, macs

    def _block_doc(self, name: str) -> str:
        definition = self.blocks().get(name)
        if definition is None:
            return f"`{name}`"
        signature = self.signature(definition)
        where = Path(definition.span.file).name
        return f"**block** `{signature}`\n\ndefined in {where}:{definition.span.line}"

    def signature(self, definition: S.BlockDef) -> str:
        """`basic(x, planes, stride = 1)` as written (whitespace folded)."""
        sources = self.compilation.diagnostics.sources
        pieces = []
        for number in range(definition.span.line, definition.span.end_line + 1):
            text = sources.line(definition.span.file, number) or ""
            if number == definition.span.line:
                text = text[definition.name.span.column - 1:]
            pieces.append(text)
            if "{" in text:
                break
        joined = " ".join(p.strip() for p in pieces)
        depth, end = 0, len(joined)
        for i, ch in enumerate(joined):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        return " ".join(joined[:end].split())

    # ------------------------------------------------------------ inlay hints

    def inlay_hints(self, first_line: int = 1, last_line: int = 10**9) -> list[tuple[int, int, str]]:
        """(line, column, label): the shape after each chain stage and each binding whose value
        is no chain, at the end of what it labels."""
        if self.module is None or self.graph is None:
            return []
        out: list[tuple[int, int, str]] = []
        seen: set[tuple[int, int]] = set()

        def add(span: Span, types: list[TensorType]) -> None:
            if not types or not first_line <= span.end_line <= last_line:
                return
            key = (span.end_line, span.end_column)
            if key not in seen:
                seen.add(key)
                out.append((span.end_line, span.end_column, format_types(types)))

        stack: list[tuple[S.Node, S.BlockDef | None]] = [(s, None) for s in self.module.statements]
        while stack:
            node, block = stack.pop()
            if isinstance(node, S.BlockDef):
                block = node
            if isinstance(node, S.Chain):
                for stage in node.stages:
                    add(stage.span, self.types_of(stage, block))
            elif isinstance(node, S.Binding) and not isinstance(node.value, (S.Chain, S.NameRef)):
                add(node.value.span, self.types_of(node.value, block))
            elif isinstance(node, S.Return) and not isinstance(node.value, (S.Chain, S.NameRef)):
                add(node.value.span, self.types_of(node.value, block))
            stack.extend((child, block) for child in node.children())
        out.sort()
        return out

    # ------------------------------------------------------------ symbols

    def symbols(self) -> list[Symbol]:
        if self.module is None:
            return []
        out: list[Symbol] = []
        for statement in self.module.statements:
            if isinstance(statement, S.NetworkHeader):
                out.append(Symbol(statement.name.name, "network", statement.span, statement.name.span,
                                  children=[Symbol(p.name.name, "param", p.span, p.name.span) for p in statement.params]))
            elif isinstance(statement, S.InputDecl):
                t = self.graph.node(statement.name.name).output \
                    if self.graph is not None and statement.name.name in self.graph else None
                out.append(Symbol(statement.name.name, "input", statement.span, statement.name.span,
                                  f"{t.dtype}{t} {t.layout.axes}" if t is not None else ""))
            elif isinstance(statement, (S.Binding, S.Unpack)):
                out += self._binding_symbols(statement, None)
            elif isinstance(statement, S.Output):
                for ident in statement.names:
                    out.append(Symbol(ident.name, "output", statement.span, ident.span))
            elif isinstance(statement, S.BlockDef):
                children = [Symbol(p.name.name, "param", p.span, p.name.span) for p in statement.params]
                for inner in statement.body:
                    children += self._binding_symbols(inner, statement)
                out.append(Symbol(statement.name.name, "block", statement.span, statement.name.span,
                                  self.signature(statement), children))
            elif isinstance(statement, S.Use):
                out.append(Symbol(statement.path.value, "use", statement.span, statement.path.span))
        return out

    def _binding_symbols(self, statement: S.Binding | S.Unpack, block: S.BlockDef | None) -> list[Symbol]:
        if isinstance(statement, S.Unpack):
            return [Symbol(i.name, "binding", statement.span, i.span) for i in statement.names]
        types = self.types_of(statement.value, block)
        return [Symbol(statement.name.name, "binding", statement.span, statement.name.span,
                       format_types(types) if types else "")]


def _binds(statement: S.Node, name: str) -> S.Node | None:
    if isinstance(statement, S.Binding) and statement.name.name == name:
        return statement
    if isinstance(statement, S.Unpack) and any(i.name == name for i in statement.names):
        return statement
    return None


def format_types(types: list[TensorType]) -> str:
    """One shape, or the distinct shapes of several evaluations (a block's instances, a repeat's
    rounds): `[N, 64, 56, 56] | [N, 128, 28, 28]`, beyond two `... | +3 more`."""
    distinct: list[str] = []
    for t in types:
        if str(t) not in distinct:
            distinct.append(str(t))
    if len(distinct) <= 2:
        return " | ".join(distinct)
    return " | ".join(distinct[:2]) + f" | +{len(distinct) - 2} more"


def _node_figures(node: LayerNode) -> list[str]:
    out = []
    if node.output is not None:
        out.append(f"output: `{node.output}` {node.output.layout.axes} ({node.output.dtype})")
    figures = [f"params: {node.trainable:,}"]
    if node.buffers:
        figures.append(f"buffers: {node.buffers:,}")
    figures.append(f"MACs: {node.macs:,}")
    out.append(" · ".join(figures))
    return out


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _attributes(cls) -> list[str]:
    from netspec.layers.base import show_value

    lines = []
    for name, f in cls.model_fields.items():
        if f.is_required():
            lines.append(f"- `{name}` (required)")
        else:
            try:
                lines.append(f"- `{name}` = `{show_value(f.default)}`")
            except Exception:
                lines.append(f"- `{name}`")
    return lines


def _layer_doc(kind: str) -> str:
    from netspec.layers import LAYERS

    cls = LAYERS.get(kind)
    if cls is None:
        return f"`{kind}`"
    lines = [f"**layer** {cls.example_call()} ({cls.family})"]
    about = _first_paragraph(cls.__doc__)
    if about:
        lines += ["", about]
    attributes = _attributes(cls)
    if attributes:
        lines += ["", "attributes:", *attributes]
    return "\n".join(lines)


def _attribute_doc(cls, name: str) -> str:
    from netspec.layers.base import show_value

    field_name = cls.aliases.get(name, name)
    f = cls.model_fields.get(field_name)
    if f is None:
        return f"{cls.kind} has no attribute `{name}`"
    default = "required" if f.is_required() else f"default `{show_value(f.default)}`"
    options = cls.string_options(field_name)
    extra = f"; one of {', '.join(repr(o) for o in options)}" if options else ""
    return f"**{cls.kind}**.`{field_name}`: {default}{extra}"


# ---------------------------------------------------------------- compiling a document

def analyze(path: str, text: str, version: Any = None, reader: Callable[[Path], str | None] | None = None,
            parsed: dict | None = None) -> Analysis:
    """Compile the document's text (its `use`d files through `reader`, else from disk)."""
    compilation = compile_file(path, text=text, reader=reader, parsed=parsed)
    return Analysis(path, text, compilation, version)


# ---------------------------------------------------------------- completion

def _call_context(text: str, line: int, column: int) -> tuple[str | None, bool, str]:
    """For the cursor: the name of the innermost call whose parentheses are open, whether the
    cursor is in a keyword's value (`name=|`), and the word being typed."""
    lines = text.split("\n")
    before = "\n".join(lines[:line - 1] + [lines[line - 1][:column - 1] if line - 1 < len(lines) else ""])
    # strip comments and strings, roughly: enough to count parentheses
    cleaned = []
    for raw in before.split("\n"):
        out, quote = [], None
        for ch in raw:
            if quote:
                if ch == quote:
                    quote = None
                continue
            if ch in "\"'":
                quote = ch
                out.append("_")
                continue
            if ch == "#":
                break
            out.append(ch)
        cleaned.append("".join(out))
    flat = "\n".join(cleaned)
    i = len(flat)
    word_start = i
    while word_start > 0 and (flat[word_start - 1].isalnum() or flat[word_start - 1] == "_"):
        word_start -= 1
    word = flat[word_start:]
    j = word_start - 1
    while j >= 0 and flat[j] in " \t":
        j -= 1
    in_value = j >= 0 and flat[j] == "=" and (j == 0 or flat[j - 1] not in "=!<>")
    depth = 0
    k = word_start - 1
    while k >= 0:
        ch = flat[k]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth == 0:
                if ch == "[":
                    return None, in_value, word
                m = k
                while m > 0 and flat[m - 1] in " \t":
                    m -= 1
                end = m
                while m > 0 and (flat[m - 1].isalnum() or flat[m - 1] == "_"):
                    m -= 1
                return (flat[m:end] or None), in_value, word
            depth -= 1
        elif ch == "{" and depth == 0:
            return None, in_value, word
        k -= 1
    return None, in_value, word


def completions(text: str, line: int, column: int, analysis: Analysis | None) -> list[Completion]:
    """What may be written at the position: inside a layer's parentheses its attributes
    (`name=`, with their defaults) and, after `name=`, the strings it accepts; inside a block's,
    its parameters; everywhere, the layers, the blocks of the file and its imports, and the
    names in scope (bindings, inputs, parameters). `analysis` may be of an older version of the
    text (the last that parsed): the names it knows are still worth offering."""
    from netspec.layers import LAYERS
    from netspec.layers.base import show_value

    callee, in_value, _word = _call_context(text, line, column)
    out: list[Completion] = []
    blocks = analysis.blocks() if analysis is not None else {}
    if callee in LAYERS:
        cls = LAYERS[callee]
        if in_value:
            keyword = _keyword_before(text, line, column)
            for option in cls.string_options(cls.aliases.get(keyword, keyword)) if keyword else []:
                out.append(Completion(f'"{option}"', "value", f"{callee}.{keyword}", sort="0"))
        else:
            for name, f in cls.model_fields.items():
                default = "required" if f.is_required() else f"= {show_value(f.default)}"
                out.append(Completion(f"{name}=", "attribute", f"{callee}: {default}",
                                      _attribute_doc(cls, name), insert_text=f"{name}=", sort="0"))
    elif callee in blocks and not in_value:
        for p in blocks[callee].params[1:]:
            out.append(Completion(f"{p.name.name}=", "attribute", f"parameter of {callee}",
                                  insert_text=f"{p.name.name}=", sort="0"))
    for kind, cls in LAYERS.items():
        out.append(Completion(kind, "layer", cls.example_call().strip("`"), _layer_doc(kind), sort="3"))
    from netspec.functions import DESCRIPTIONS
    from netspec.owned import OWNED

    for name in OWNED:
        out.append(Completion(name, "layer", f"{name}(...): a tensor the network owns",
                              _first_paragraph(OWNED[name].__doc__), sort="4"))
    for name, description in DESCRIPTIONS.items():
        out.append(Completion(name, "function", description.split(":")[0].strip("`"), description, sort="4"))
    for name, definition in blocks.items():
        out.append(Completion(name, "block", analysis.signature(definition) if analysis else name,
                              analysis._block_doc(name) if analysis else "", sort="2"))
    if analysis is not None and analysis.module is not None:
        block = _block_at(analysis.module, line)
        names: list[tuple[str, str]] = []
        if block is not None:
            names += [(p.name.name, "param") for p in block.params]
            for statement in block.body:
                names += [(n, "variable") for n in _bound_names(statement)]
        for statement in analysis.module.statements:
            if isinstance(statement, S.NetworkHeader):
                names += [(p.name.name, "param") for p in statement.params]
            elif isinstance(statement, S.InputDecl):
                names.append((statement.name.name, "variable"))
            elif block is None:
                names += [(n, "variable") for n in _bound_names(statement)]
        seen: set[str] = set()
        for name, kind in names:
            if name not in seen:
                seen.add(name)
                out.append(Completion(name, kind, "parameter" if kind == "param" else "tensor", sort="1"))
    return out


def _keyword_before(text: str, line: int, column: int) -> str | None:
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    before = lines[line - 1][:column - 1].rstrip()
    before = before.rstrip("\"'")
    if before.endswith("="):
        before = before[:-1].rstrip()
    end = len(before)
    start = end
    while start > 0 and (before[start - 1].isalnum() or before[start - 1] == "_"):
        start -= 1
    return before[start:end] or None


def _bound_names(statement: S.Node) -> list[str]:
    if isinstance(statement, S.Binding):
        return [statement.name.name]
    if isinstance(statement, S.Unpack):
        return [i.name for i in statement.names]
    return []


def _block_at(module: S.Module, line: int) -> S.BlockDef | None:
    for statement in module.statements:
        if isinstance(statement, S.BlockDef) and statement.span.line <= line <= statement.span.end_line:
            return statement
    return None
