"""AST to graph: resolve parameters, follow imports, expand blocks and repeats, name every layer.

Naming follows PyTorch's state_dict so that trained weights load without renaming:
- a labelled layer `conv1: conv(...)` is `<scope>.conv1`;
- the unlabelled layers of a chain bound to `name` are `<scope>.name.<i>`, counting every layer
  of the chain (and every repetition) as `nn.Sequential` does; a chain of one layer is `name`;
- the layer that produces a binding's value is `<scope>.name`;
- anything else is `<scope>.<kind>` (then `<kind>_2`, ...);
- a block instance is a scope: its layers are `<instance>.<inner name>`.

Bindings may be written in any order: they are evaluated in dependency order, and a cycle is an
error. Errors are collected and evaluation continues with a poisoned value, so one run reports
every independent mistake.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from graphlib import CycleError, TopologicalSorter

from netspec import habits, syntax as S
from netspec.diagnostics import Diagnostics, Label, NetspecError, Span, did_you_mean
from netspec.evaluate import (POISON, Argument, Evaluator, Origin, Scope, Tensor, division_hint, free_names,
                              is_plain, kind_name, origin_of)
from netspec.functions import DESCRIPTIONS, FUNCTIONS, QUERIES
from netspec.graph import BlockInstance, Graph, LayerNode
from netspec.layers import LAYERS, ArgumentError, Layer
from netspec.layers.base import show_value
from netspec.infer import output_type
from netspec.constants import Constant
from netspec.owned import OWNED, Owned
from netspec.types import DTYPES, FLOATS, MAX_SIZE, Layout, ShapeError, TensorType, representable


# A repeat unrolls its rounds into layers; a count beyond this is a typo, not a network.
MAX_REPEAT = 100_000


class OverrideError(Exception):
    """A parameter or input override that names nothing in the spec, or an input shape of the
    wrong rank: the caller's mistake, not the spec's. The message is neutral (no flag or
    keyword): the command line and the Python API each say it in their own terms.

    `kind` is "parameter" or "input"; `name` is the name given."""

    def __init__(self, kind: str, name: str, message: str):
        super().__init__(message)
        self.kind, self.name = kind, name


@dataclass
class _BlockSource:
    definition: S.BlockDef
    file_scope: Scope


def _stage_layers(stage: S.Node, count_of: Callable[[S.Expr], int | None]) -> int:
    """How many layers (or block instances) a chain stage contributes to the chain's indices."""
    if isinstance(stage, S.Repeat) and stage.label is None:  # a labelled repeat is one submodule
        count = count_of(stage.count)
        return (count or 0) * sum(_stage_layers(s, count_of) for s in stage.stages)
    return 1


class Elaborator(Evaluator):
    """Builds the graph of one network: the evaluator of plain values, plus what makes layers
    (calls of layers and blocks, chains, repeats, `+` and `*` between tensors)."""

    def __init__(self, diagnostics: Diagnostics, loader: Callable[[Path, Span | None], S.Module]):
        super().__init__(diagnostics)
        self.load = loader
        self.graph = Graph("network")
        self.blocks: dict[str, _BlockSource] = {}
        self.expanding: list[str] = []          # blocks being expanded, for recursion errors
        self.warned_unused: set = set()         # block bindings warned as unused (once per place)
        self.auto_names: dict[str, int] = {}
        self.instances: set[str] = set()        # block instance names (scopes, not graph nodes)
        self.imported: set[Path] = set()        # files whose blocks are collected already
        # `use`s that failed, with their diagnostic: the blocks those files define are unknown,
        # so a call of an unknown name is not an error of its own (one mistake, one error)
        self.reads: dict[int, set[str]] = {}    # id of a binding -> the names its value reads
        self.types: dict[str, TensorType | None] = {}  # nodes typed early, for channels(x) and the like
        self.failed_imports: list[tuple[S.Use, Any]] = []
        self.unchecked: dict[str, list[Span]] = {}  # those calls, by name

    # ================================================================ entry point

    def run(self, module: S.Module, params: dict[str, Any], inputs: dict[str, list]) -> Graph:
        header = self._header(module)
        self.graph.name = header.name.name if header else Path(module.path).stem
        file_scope = self._network_parameters(header, params)
        self.graph.parameters = {k: v for k, v in file_scope.values.items()}
        self.graph.parameter_origins = {k: file_scope.origins.get(k) for k in file_scope.values}
        self.imported.add(Path(module.path).resolve())
        self._collect_blocks(module, file_scope, [Path(module.path).resolve()])
        top = Scope({}, file_scope)
        self._inputs(module, top, inputs)
        bindings = [s for s in module.statements if isinstance(s, (S.Binding, S.Unpack))]
        self._bindings(bindings, top)
        self._outputs(module, top)
        self._note_unchecked()
        return self.graph

    def _note_unchecked(self) -> None:
        """One note on the failed `use`, naming the calls it leaves unchecked."""
        if not self.unchecked or not self.failed_imports or self.failed_imports[0][1] is None:
            return
        calls = []
        for callee, spans in self.unchecked.items():
            places = sorted({f"{Path(span.file).name}:{span.line}" for span in spans})
            calls.append(f"`{callee}` ({', '.join(places)})")
        self.failed_imports[0][1].notes.append(
            f"not checked, as they may be blocks of the file that failed: {', '.join(calls)}")

    # ================================================================ header and parameters

    def _header(self, module: S.Module) -> S.NetworkHeader | None:
        headers = [s for s in module.statements if isinstance(s, S.NetworkHeader)]
        for extra in headers[1:]:
            self.diag.error("a file declares one network; this is a second `network` line",
                            extra.span, rule="one network per file",
                            hint=f"the first is at line {headers[0].span.line}")
        return headers[0] if headers else None

    def _network_parameters(self, header: S.NetworkHeader | None, overrides: dict[str, Any],
                            strict: bool = True) -> Scope:
        scope = Scope({}, None)
        declared = header.params if header else []
        names = [p.name.name for p in declared]
        if strict:
            unknown = [n for n in overrides if n not in names]
            if unknown:
                hint = did_you_mean(unknown[0], names)
                known = ", ".join(names) if names else "none"
                raise OverrideError("parameter", unknown[0],
                                    f"the network has no parameter `{unknown[0]}` (its parameters: "
                                    f"{known})" + (f"; {hint}" if hint else ""))
        for param in declared:
            name = param.name.name
            if name in scope.values:
                self.diag.error(f"network parameter `{name}` is declared twice", param.name.span,
                                rule="parameter names are unique")
                continue
            if name in overrides:
                scope.values[name] = overrides[name]
                scope.origins[name] = Origin.override(name)
            elif param.default is not None:
                if self.reads_later_parameter(param, declared, scope.values, "the network"):
                    scope.values[name] = POISON
                else:
                    scope.values[name] = self.scalar(param.default, scope)
                    scope.origins[name] = origin_of(param.default, scope)
            else:
                self.diag.error(f"network parameter `{name}` has no default and was not given",
                                param.name.span, rule="every parameter needs a value",
                                hint=f"give it a default (`{name} = ...`), or a value when the spec is "
                                     f"compiled: `{name}=...`")
                scope.values[name] = POISON
            scope.spans[name] = param.name.span
        return scope

    # ================================================================ imports and blocks

    def _collect_blocks(self, module: S.Module, file_scope: Scope, chain: list[Path]) -> None:
        for statement in module.statements:
            if isinstance(statement, S.BlockDef):
                self._add_block(statement, file_scope)
            elif isinstance(statement, S.Use):
                self._import(statement, Path(module.path), chain)

    def _add_block(self, definition: S.BlockDef, file_scope: Scope) -> None:
        name = definition.name.name
        previous = self.blocks.get(name)
        if previous is not None:
            if previous.definition.span == definition.span:
                return  # the same file reached twice through imports
            where = previous.definition.name.span
            self.diag.error(f"block `{name}` is defined twice", definition.name.span,
                            rule="block names are unique across a network and its imports",
                            labels=[Label(where, "the other definition")])
            return
        if name in LAYERS or name in OWNED:
            self.diag.error(f"block `{name}` has the name of a built-in layer", definition.name.span,
                            rule="a block cannot hide a layer", hint="rename the block")
            return
        self.blocks[name] = _BlockSource(definition, file_scope)

    def _import(self, use: S.Use, importer: Path, chain: list[Path]) -> None:
        if "\0" in use.path.value or not use.path.value:
            self.diag.error("an import path cannot be empty or contain a NUL character",
                            use.path.span, rule='use "relative/path.net"')
            self.failed_imports.append((use, self.diag.items[-1]))
            return
        if "\\" in use.path.value:  # a Windows habit: netspec's paths are the same everywhere
            fixed = use.path.value.replace("\\", "/")
            self.diag.error("`use` paths are written with `/`, not `\\`", use.path.span,
                            rule='use "relative/path.net": `/` on every system',
                            hint=f'write `use "{fixed}"`')
            self.failed_imports.append((use, self.diag.items[-1]))
            return
        target = (importer.parent / use.path.value).resolve()
        if target in chain:
            cycle = " -> ".join(p.name for p in chain[chain.index(target):] + [target])
            self.diag.error(f"import cycle: {cycle}", use.path.span, rule="imports form no cycle")
            return
        if target in self.imported:
            return  # reached again through another import: its blocks are already known
        self.imported.add(target)
        shown = Path(os.path.normpath(importer.parent / use.path.value))
        try:
            module = self.load(shown, use.path.span)
        except NetspecError as exc:
            for diagnostic in exc.diagnostics:
                if diagnostic.span is not None and diagnostic.span.file != use.span.file:
                    diagnostic.labels.append(Label(use.path.span, "imported here"))
                elif diagnostic.hint is None:
                    diagnostic.hint = _nearby_file(target, use.path.value)
            self.diag.extend(exc.diagnostics)
            self.failed_imports.append((use, exc.diagnostics[0] if exc.diagnostics else None))
            return
        header = self._header(module)
        scope = self._network_parameters(header, {}, strict=False)
        self._collect_blocks(module, scope, chain + [target])

    # ================================================================ inputs and outputs

    def _inputs(self, module: S.Module, scope: Scope, overrides: dict[str, list]) -> None:
        declared = [s for s in module.statements if isinstance(s, S.InputDecl)]
        names = [d.name.name for d in declared]
        for name in overrides:
            if name not in names:
                hint = did_you_mean(name, names)
                raise OverrideError("input", name, f"the network has no input `{name}` (its inputs: "
                                    f"{', '.join(names) or 'none'})" + (f"; {hint}" if hint else ""))
        for decl in declared:
            name = decl.name.name
            if self._defined_twice(name, decl.name.span, scope):
                continue
            tensor_type = self._input_type(decl, scope, overrides.get(name))
            if tensor_type is None:
                scope.values[name] = POISON
                continue
            node = LayerNode(name=name, layer=None, inputs=[], span=decl.span, declared=tensor_type)
            self.graph.add(node)
            scope.values[name] = Tensor(name)
        if not declared:
            self.diag.error("the network has no input", Span(module.path, 1, 1, 1, 2),
                            rule="a network needs at least one `input`",
                            hint="declare one, e.g. `input image: f32[N, 3, 224, 224]`")

    def _input_type(self, decl: S.InputDecl, scope: Scope, override: list | None) -> TensorType | None:
        dtype = decl.dtype.name
        if dtype not in DTYPES:
            self.diag.error(f"unknown dtype `{dtype}`", decl.dtype.span, rule="dtypes: " + ", ".join(DTYPES),
                            hint=did_you_mean(dtype, DTYPES))
            return None
        dims: list[Any] = []
        for expr in decl.dims:
            if isinstance(expr, S.NameRef) and not scope.lookup(expr.name)[0]:
                dims.append(expr.name)  # a symbol, such as the batch size N
            else:
                dims.append(self.scalar(expr, scope))
        if override is not None:
            if len(override) != len(dims):
                raise OverrideError("input", decl.name.name,
                                    f"{len(override)} sizes given, but the input is declared with "
                                    f"{len(dims)} ({', '.join(map(str, dims))})")
            dims = list(override)
            spans = [decl.span] * len(dims)
        else:
            spans = [e.span for e in decl.dims]
        if any(d is POISON for d in dims):
            return None
        layout_text = decl.layout.name if decl.layout else Layout.default(len(dims)).axes
        problem = Layout.check(layout_text, len(dims))
        if problem:
            where = decl.layout.span if decl.layout else decl.span
            self.diag.error(problem, where, rule="layouts: NCHW (default for 4-D), NHWC, NC, ...",
                            hint="for an image batch write NCHW or NHWC")
            return None
        layout = Layout(layout_text)
        ok = True
        for index, (dim, span) in enumerate(zip(dims, spans)):
            if isinstance(dim, bool) or not isinstance(dim, (int, str)):
                self.diag.error(f"dimension {index} of `{decl.name.name}` is {kind_name(dim)}, not a size",
                                span, rule="sizes are positive integers")
                ok = False
            elif isinstance(dim, str) and index != layout.batch:
                self.diag.error(f"dimension `{dim}` of `{decl.name.name}` has no size; only the batch "
                                f"axis may be symbolic", span, rule="channel and spatial sizes are integers",
                                hint=f"declare `{dim}` as a network parameter or write a number")
                ok = False
            elif isinstance(dim, int) and dim < 1:
                self.diag.error(f"dimension {index} of `{decl.name.name}` is {dim}", span,
                                rule="sizes are at least 1")
                ok = False
            elif isinstance(dim, int) and dim > MAX_SIZE:
                shown = f"{dim:,}" if dim < 10 ** 30 else f"a number of {len(str(dim)):,} digits"
                self.diag.error(f"dimension {index} of `{decl.name.name}` is {shown}, more than "
                                f"2^63 - 1", span, rule="sizes fit ONNX's 64-bit dimensions")
                ok = False
        return TensorType(dtype, tuple(dims), layout) if ok else None

    def _outputs(self, module: S.Module, scope: Scope) -> None:
        outputs = [s for s in module.statements if isinstance(s, S.Output)]
        seen: set[str] = set()
        for statement in outputs:
            for ident in statement.names:
                found, value = scope.lookup(ident.name)
                if not found:
                    self.diag.error(f"output `{ident.name}` is not defined", ident.span,
                                    rule="outputs name bindings or inputs",
                                    hint=did_you_mean(ident.name, scope.values))
                elif ident.name in seen:
                    self.diag.error(f"`{ident.name}` is listed as an output twice", ident.span,
                                    rule="outputs are unique")
                elif isinstance(value, Tensor) and isinstance(self.graph.node(value.node).layer, Owned):
                    kind = self.graph.node(value.node).kind
                    self.diag.error(f"output `{ident.name}` is a {kind} of the network's own, not a value "
                                    f"it computes", ident.span, rule="outputs are computed from the inputs",
                                    hint=f"a {kind} is in the weights (`{value.node}`); an output is what "
                                         f"the network makes of its inputs")
                elif isinstance(value, Tensor) and self._from_owned_alone(value.node):
                    self.diag.error(f"output `{ident.name}` is computed from the network's own tensors "
                                    f"alone, not from an input", ident.span,
                                    rule="outputs are computed from the inputs",
                                    hint="combine it with an activation: `x * scale`")
                elif isinstance(value, Tensor):
                    self.graph.outputs.append((ident.name, value.node))
                elif value is not POISON:
                    self.diag.error(f"output `{ident.name}` is {kind_name(value)}, not a tensor",
                                    ident.span, rule="outputs are tensors")
                seen.add(ident.name)
        if not outputs:
            last = next((s for s in reversed(module.statements) if isinstance(s, S.Binding)), None)
            header = next((s for s in module.statements if isinstance(s, S.NetworkHeader)), None)
            where = (Span(module.path, header.span.line, header.span.column, header.span.line,
                          header.span.column + len("network")) if header
                     else Span(module.path, 1, 1, 1, 2))
            self.diag.error("the network has no output", where,
                            rule="a network needs an `output` line",
                            hint=f"add `output {last.name.name}`" if last else "add `output <name>`")
        if self.graph.outputs:
            self._unused(module, scope)

    def _from_owned_alone(self, node: str) -> bool:
        """Whether a node reads no graph input: made from params and buffers only."""
        layer = self.graph.node(node).layer
        if layer is None or not layer.unlaid_inputs:
            return False  # a layer that needs a layout refuses such an input itself
        if not any(isinstance(n.layer, Owned) for n in self.graph):
            return False
        return not (self.graph.ancestors([node]) & set(self.graph.inputs))

    def _unused(self, module: S.Module, scope: Scope) -> None:
        """Warn about inputs and bindings that no output depends on (usually a forgotten name)."""
        used = self.graph.ancestors([node for _, node in self.graph.outputs])
        for name in self.graph.inputs:
            if name not in used:
                self.diag.warning(f"input `{name}` is never used by an output",
                                  self.graph.node(name).span, rule="unused input")
        for statement in module.statements:
            idents = [statement.name] if isinstance(statement, S.Binding) else \
                statement.names if isinstance(statement, S.Unpack) else []
            for ident in idents:
                value = scope.values.get(ident.name)
                if isinstance(value, Tensor) and value.node not in used and value.node in self.graph \
                        and self.graph.node(value.node).layer is not None \
                        and not isinstance(self.graph.node(value.node).layer, Owned):
                    self.diag.warning(f"`{ident.name}` is computed but no output uses it",
                                      ident.span, rule="unused binding",
                                      hint="list it in `output`, or remove it")
        warned: set = set()
        for node in self.graph:  # a param or a buffer no output reads: once per place written
            if isinstance(node.layer, Owned) and node.name not in used and node.span not in warned:
                warned.add(node.span)
                self.diag.warning(f"{node.kind} `{node.name}` is never used by an output", node.span,
                                  rule=f"unused {node.kind}", layer=node.name,
                                  chain=tuple(b.describe() for b in node.blocks),
                                  hint=f"combine it with an activation (`x * {node.name.rsplit('.', 1)[-1]}`), "
                                       f"or remove it: unused, it is still a state_dict key")

    # ================================================================ bindings

    def _defined_twice(self, name: str, span: Span, scope: Scope) -> bool:
        if name in scope.values or name in scope.spans:
            previous = scope.spans.get(name)
            self.diag.error(f"`{name}` is defined twice", span, rule="names are bound once",
                            labels=[Label(previous, "first defined here")] if previous else [])
            return True
        scope.spans[name] = span
        return False

    def _bindings(self, bindings: list[S.Binding | S.Unpack], scope: Scope) -> None:
        """Evaluate bindings in dependency order (any written order works); report cycles. An
        unpacking `a, b = ...` is evaluated once, when the first of its names is due."""
        by_name: dict[str, S.Binding | S.Unpack] = {}
        for binding in bindings:
            for ident in (binding.names if isinstance(binding, S.Unpack) else [binding.name]):
                if not self._defined_twice(ident.name, ident.span, scope):
                    by_name[ident.name] = binding
        order = {name: i for i, name in enumerate(by_name)}
        deps = {name: self._reads(binding) & by_name.keys() for name, binding in by_name.items()}
        unpacked: set[int] = set()
        for name in self._dependency_order(deps, order, by_name, scope):
            if isinstance(by_name[name], S.Unpack):
                if id(by_name[name]) not in unpacked:
                    unpacked.add(id(by_name[name]))
                    self._unpack(by_name[name], scope, [n for n, b in by_name.items() if b is by_name[name]])
                continue
            expr = by_name[name].value
            value = scope.values[name] = self.expr(expr, scope, bound=scope.qualify(name))
            if value is not POISON and not isinstance(value, Tensor):
                scope.origins[name] = origin_of(expr, scope)

    def _unpack(self, statement: S.Unpack, scope: Scope, bound: list[str]) -> None:
        """`a, b = x -> chunk(2)`: the layer that ends the value (split, chunk) makes one node
        per name; anything else is a located error, and the names are poisoned."""
        if len(bound) != len(statement.names):  # a name defined twice: reported, the others poisoned
            for name in bound:
                scope.values[name] = POISON
            return
        first, last = statement.names[0].span, statement.names[-1].span
        names = _Names([scope.qualify(i.name) for i in statement.names],
                       Span(first.file, first.line, first.column, last.end_line, last.end_column))
        value = statement.value
        if isinstance(value, S.Chain):
            result = self._chain(value, scope, None, unpack=names)
        elif isinstance(value, S.Call):
            if value.label is not None:
                label = self.label(value.label, value.label_index, scope)
                if label is POISON:
                    result = POISON
                names.label = scope.qualify(label) if label is not POISON else None
            result = POISON if value.label is not None and names.label is None else \
                self._call(value, scope, None, names, value.args)
        else:
            result = self.expr(value, scope, None)
        if isinstance(result, tuple) and len(result) == len(names) and all(isinstance(v, Tensor) for v in result):
            pieces = dict(zip((i.name for i in statement.names), result))
        else:
            if result is not POISON and not isinstance(result, tuple):
                self.diag.error(f"{len(names)} names are bound, but the value is {kind_name(result)}",
                                names.span, rule="several names take the pieces of a layer that gives "
                                "several tensors (split, chunk)",
                                hint="end the value with the layer that cuts it, e.g. `-> chunk(2)`")
            pieces = {}
        for name in bound:
            scope.values[name] = pieces.get(name, POISON)

    def _reads(self, binding: S.Binding) -> set[str]:
        """The names a binding's value reads; a block's bindings are read once, not once per
        instance (the AST does not change)."""
        found = self.reads.get(id(binding))
        if found is None:
            found = self.reads[id(binding)] = {ref.name for ref in free_names(binding.value)}
        return found

    def _dependency_order(self, deps: dict[str, set[str]], order: dict[str, int],
                          by_name: dict[str, S.Binding], scope: Scope) -> list[str]:
        """Names in an order where each comes after what it reads, ties in source order. Each
        cycle is reported, its members poisoned, and the rest still ordered."""
        while True:
            sorter = TopologicalSorter(deps)
            try:
                sorter.prepare()
                break
            except CycleError as exc:
                members = list(dict.fromkeys(exc.args[1]))
                first = min(members, key=order.get)
                start = members.index(first)
                ring = members[start:] + members[:start]
                self.diag.error(f"these bindings depend on each other in a cycle: "
                                f"{' -> '.join(ring + [first])}", _name_span(by_name[first], first),
                                rule="a network is acyclic", hint="a value cannot be computed from itself")
                for name in members:
                    scope.values[name] = POISON
                    del deps[name]
                for needs in deps.values():
                    needs.difference_update(members)
        result: list[str] = []
        ready = [(order[name], name) for name in sorter.get_ready()]
        heapq.heapify(ready)
        while ready:
            _, name = heapq.heappop(ready)
            result.append(name)
            sorter.done(name)
            for unblocked in sorter.get_ready():
                heapq.heappush(ready, (order[unblocked], unblocked))
        return result

    # ================================================================ expressions

    # ================================================================ what makes layers

    def input_hint(self, scope: Scope) -> str:
        if scope.blocks:  # inside a block, its input is its first parameter
            params = self.blocks[scope.blocks[-1].block].definition.params
            return (f"inside a block its input is a parameter: write `{params[0].name.name}`" if params
                    else "give the block a parameter for its input: `block name(x) { ... }`")
        inputs = self.graph.inputs
        if len(inputs) == 1:
            return f"the network's input is `{inputs[0]}`: write `{inputs[0]}`"
        if inputs:
            return "the inputs declared here are " + ", ".join(f"`{n}`" for n in inputs) + ": write the one meant"
        return super().input_hint(scope)

    def undefined_hint(self, name: str) -> str | None:
        """`reshape((N, -1))`: `N` is an input's symbolic batch size, which has no value."""
        for node in self.graph:
            if node.layer is None and node.declared is not None and name in node.declared.shape:
                return (f"`{name}` is the symbolic batch size of input `{node.name}`; it has no value. "
                        f"reshape and unflatten keep the batch: give the sizes after it, e.g. `reshape((-1,))`")
            if node.layer is not None:
                break
        return None

    def callable_kind(self, name: str) -> str | None:
        return "layer" if name in LAYERS else "block" if name in self.blocks else None

    def call(self, call: S.Call, scope: Scope, bound: str | None) -> Any:
        if call.label is None:
            return self._call(call, scope, None, bound, call.args)
        label = self.label(call.label, call.label_parts, scope)
        return POISON if label is POISON else self._call(call, scope, None, scope.qualify(label), call.args)

    def chain(self, chain: S.Chain, scope: Scope, bound: str | None) -> Any:
        return self._chain(chain, scope, bound)

    def tensor_op(self, kind: str, operands: list[Tensor], sides: list[S.Expr], span: Span, scope: Scope,
                  bound: str | None, scalar: float | None = None) -> Any:
        inputs = [Argument(operand, side.span, side) for operand, side in zip(operands, sides)]
        layer = LAYERS[kind]() if scalar is None else LAYERS[kind](scalar=scalar)
        return self._layer_node(layer, inputs, span, scope, bound)

    # ================================================================ chains and repeats

    def _chain(self, chain: S.Chain, scope: Scope, bound: str | None, sequential: bool = False,
               unpack: "_Names | None" = None) -> Any:
        """`sequential`: name the stages `bound.<i>` even when there is only one (a block's
        returned chain is its nn.Sequential body)."""
        value = self.expr(chain.head, scope, None)
        total = sum(_stage_layers(s, self._peek_count(scope)) for s in chain.stages)
        names = _ChainNames(bound, total, sequential)
        piped = Argument(value, chain.head.span, chain.head)
        for i, stage in enumerate(chain.stages):
            last = unpack if i == len(chain.stages) - 1 else None
            piped = self._stage(stage, piped, scope, names, last)
        return piped.value

    def _peek_count(self, scope: Scope) -> Callable[[S.Expr], int | None]:
        """Evaluates a repeat count quietly (its errors are reported when the repeat runs)."""
        def count(expr: S.Expr) -> int | None:
            if not is_plain(expr):
                return None  # evaluating it would create layers; the repeat reports the error
            quiet = Diagnostics()
            saved, self.diag = self.diag, quiet
            try:
                value = self.scalar(expr, scope)
            finally:
                self.diag = saved
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
        return count

    def _stage(self, stage: S.Node, piped: Argument, scope: Scope, names: "_ChainNames",
               unpack: "_Names | None" = None) -> Argument:
        """Apply one chain stage to the value piped in; the result, written at the stage.
        `unpack`: the names the stage's tensors are bound to (the last stage of `a, b = ...`)."""
        if isinstance(stage, S.Repeat):
            return self._repeat(stage, piped, scope, names)
        if isinstance(stage, S.Seq):
            return self._seq(stage, piped, scope, names)
        name = self._labelled_name(stage, scope, names) if stage.label is not None else names.next()
        if name is POISON:
            return Argument(POISON, stage.span)
        if unpack is not None:
            unpack.label = name if stage.label is not None else None
            name = unpack
        return Argument(self._call(stage, scope, piped, name, stage.args), stage.span)

    def _repeat(self, stage: S.Repeat, piped: Argument, scope: Scope, names: "_ChainNames") -> Argument:
        count = self.scalar(stage.count, scope)
        failed = Argument(POISON, stage.span)
        if count is POISON:
            return failed
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.diag.error(f"repeat count must be a non-negative integer, got {show_value(count)}",
                            stage.count.span, rule="repeat(n) with n >= 0",
                            hint=division_hint(count, origin_of(stage.count, scope).expr))
            return failed
        if count > MAX_REPEAT:
            self.diag.error(f"repeat count {count:,} is more than netspec unrolls ({MAX_REPEAT:,})",
                            stage.count.span, rule=f"repeat(n) with n <= {MAX_REPEAT:,}")
            return failed
        if stage.label is not None:
            label = self.label(stage.label, stage.label_parts, scope)
            if label is POISON:
                return failed
            per_round = sum(_stage_layers(s, self._peek_count(scope)) for s in stage.stages)
            inner = _ChainNames(names.qualify(scope, names.labelled(label, exact=_computed(stage))),
                                count * per_round)
        else:
            inner = names
        for round_index in range(count):
            body = scope
            if stage.index is not None:  # `repeat(n, i)`: `i` is this round's index in the body
                body = Scope({stage.index.name: round_index}, scope, scope.prefix, scope.blocks)
            if count > 1:
                inner.rounds.append(round_index)
            try:
                for sub in stage.stages:
                    piped = self._stage(sub, piped, body, inner)
            finally:
                if count > 1:
                    inner.rounds.pop()
        return piped

    def _labelled_name(self, stage, scope: Scope, names: "_ChainNames"):
        """The full name of a labelled chain stage (a call or a `seq`), or POISON when its label
        could not be evaluated (that error is already reported)."""
        label = self.label(stage.label, stage.label_parts, scope)
        if label is POISON:
            return POISON
        return names.qualify(scope, names.labelled(label, exact=_computed(stage)))

    def _seq(self, stage: S.Seq, piped: Argument, scope: Scope, names: "_ChainNames") -> Argument:
        """`seq { ... }`: one stage of the chain (one submodule), its own stages named inside it
        as an nn.Sequential: `<seq>.0`, `<seq>.1`, ... even for one, `<seq>.<label>`."""
        name = (self._labelled_name(stage, scope, names) if stage.label is not None
                else names.next() or self._auto_name(scope, "seq"))
        if name is POISON:
            return Argument(POISON, stage.span)
        self.instances.add(name)  # a submodule's name: no automatic name takes it
        total = sum(_stage_layers(s, self._peek_count(scope)) for s in stage.stages)
        inner = _ChainNames(name, total, sequential=True, owner=name)
        for sub in stage.stages:
            piped = self._stage(sub, piped, scope, inner)
        return Argument(piped.value, stage.span)

    # ================================================================ calls

    def _call(self, call: S.Call, scope: Scope, piped: Argument | None, name: str | None,
              args: list[S.Arg]) -> Any:
        callee = call.callee.name
        found, bound_value = scope.lookup(callee)
        if found and callee not in self.blocks and callee not in LAYERS:
            self.diag.error(f"`{callee}` is {kind_name(bound_value)}, not a layer or a block",
                            call.callee.span, rule="only layers and blocks can be applied",
                            hint=did_you_mean(callee, [*LAYERS, *OWNED, *self.blocks]))
            return POISON
        container = callee not in self.blocks and callee not in LAYERS and \
            habits.sequential_call(callee, args, self.diag.sources)
        if container:  # nn.Sequential(...): its arguments are layers, so they are not evaluated
            self.diag.error(container[0], call.callee.span, rule="a call names a built-in layer, a "
                            "block or a function", hint=container[1])
            return POISON
        positional: list[Argument] = [] if piped is None else [piped]
        keywords: dict[str, Argument] = {}
        piped_failed = piped is not None and piped.value is POISON
        poisoned = piped_failed
        for arg in args:
            value = self._unquoted_option(callee, arg, scope)
            if value is None:
                value = self.expr(arg.value, scope, None)
            poisoned |= value is POISON
            if arg.name is None:
                if keywords:
                    self.diag.error("a positional argument follows a keyword argument", arg.span,
                                    rule="positional arguments come first")
                    poisoned = True
                    continue  # dropped, so it cannot also collide with a keyword
                positional.append(Argument(value, arg.value.span, arg.value))
            elif arg.name.name in keywords:
                self.diag.error(f"`{arg.name.name}` is given twice", arg.name.span,
                                rule="each argument is given once",
                                labels=[Label(keywords[arg.name.name].span, "first given here")])
                poisoned = True
            else:
                keywords[arg.name.name] = Argument(value, arg.span, arg.value)
        if callee in self.blocks:
            arguments_failed = any(a.value is POISON for a in positional[1 if piped else 0:]) or \
                any(a.value is POISON for a in keywords.values())
            if arguments_failed or (poisoned and not piped_failed):
                return POISON
            # a failed piped tensor still expands the block: its mistakes that do not depend on
            # the input are reported (once, with every instance counted), the rest is poisoned
            value = self._instantiate(call, scope, positional, keywords, name)
            return POISON if piped_failed else value
        if callee in OWNED:
            return self._owned(OWNED[callee], call, scope, positional, keywords, name, piped, poisoned)
        if callee in LAYERS:
            return self._apply_layer(LAYERS[callee], call, scope, positional, keywords, name, poisoned,
                                     piped_failed, piped is not None)
        if callee in QUERIES:
            return self._query(call, positional, keywords, poisoned)
        if callee in FUNCTIONS:
            return self.function(call, positional, keywords, poisoned)
        if self.failed_imports:  # the block may be defined in the file that could not be read
            self.unchecked.setdefault(callee, []).append(call.callee.span)
            return POISON
        foreign = habits.unknown_callee(callee, positional, keywords, piped is not None, self.diag.sources)
        if foreign is not None:  # PyTorch's or Keras's name for a netspec layer
            message, hint, notes = foreign
            self.diag.error(message, call.callee.span, rule="a call names a built-in layer, a block or "
                            "a function", hint=hint, notes=notes)
            return POISON
        self.diag.error(f"unknown layer or block `{callee}`", call.callee.span,
                        rule="a call names a built-in layer, a block or a function",
                        hint=did_you_mean(callee, [*LAYERS, *OWNED, *self.blocks, *FUNCTIONS, *QUERIES]))
        return POISON

    def _owned(self, cls: type[Owned], call: S.Call, scope: Scope, positional: list[Argument],
               keywords: dict[str, Argument], name: str | None, piped: Argument | None,
               poisoned: bool) -> Any:
        """`param(c, 1, 1, init=1e-6)`, `buffer(49, dtype=i64)`: a tensor of the network's own,
        a node named by its binding or label (its state_dict key)."""
        kind = cls.kind
        rule = f"{kind}(sizes..., init=..., dtype=...) makes a tensor of the network's own"
        if piped is not None:
            self.diag.error(f"`{kind}` makes a tensor of the network's own; it takes no input", call.callee.span,
                            rule=rule, hint=f"bind it, `scale = {kind}(...)`, and combine it with the "
                                            f"activation: `y * scale`")
            return POISON
        if poisoned:
            return POISON
        shape: list[int] = []
        for arg in positional:
            sizes = arg.value if isinstance(arg.value, tuple) else (arg.value,)
            for size in sizes:
                if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size > MAX_SIZE:
                    what = (f"{kind_name(size)}" if isinstance(size, bool) or not isinstance(size, int)
                            else f"{size:,}" if size < 10 ** 30 else "too large")
                    self.diag.error(f"a {kind}'s sizes are positive integers; this is {what}", arg.span,
                                    rule=rule, hint=division_hint(size, arg.expr))
                    return POISON
                shape.append(size)
        known = ["init", "dtype"] + (["persistent"] if not cls.trainable else [])
        for key, arg in keywords.items():
            if key not in known:
                hint = did_you_mean(key, known) or f"{kind} takes sizes, " + ", ".join(f"`{k}=`" for k in known)
                if key == "persistent":
                    hint = "a param is always in the state_dict; a constant outside it is a `buffer(..., persistent=false)`"
                elif key == "requires_grad":
                    hint = ("a tensor that is not trained is a `buffer(...)`" if kind == "param"
                            else "a buffer is never trained; a trained tensor is a `param(...)`")
                elif key in ("shape", "size"):
                    hint = f"give the sizes by position: `{kind}(c, 1, 1)`"
                self.diag.error(f"`{kind}` has no argument `{key}`", arg.span, rule=rule, hint=hint)
                return POISON
        dtype = self._owned_dtype(cls, keywords.get("dtype"), rule)
        if dtype is POISON:
            return POISON
        init = self._owned_init(cls, keywords.get("init"), dtype, shape, rule)
        if init is POISON:
            return POISON
        persistent = keywords["persistent"] if "persistent" in keywords else None
        if persistent is not None and not isinstance(persistent.value, bool):
            self.diag.error(f"`persistent` is true or false, got {kind_name(persistent.value)}", persistent.span,
                            rule="persistent=false keeps a buffer out of the state_dict")
            return POISON
        if name is None:
            self.diag.error(f"a {kind} needs a name: it is a state_dict key", call.span, rule=rule,
                            hint=f"bind it, `scale = {kind}(...)`, or label it, `scale: {kind}(...)`")
            return POISON
        layer = cls.model_construct(shape=tuple(shape), dtype=dtype, init=init,
                                    persistent=True if persistent is None else persistent.value)
        return self._layer_node(layer, [], call.span, scope, name)

    def _owned_dtype(self, cls: type[Owned], arg: Argument | None, rule: str) -> Any:
        """A param's or a buffer's dtype: given, or the network's floating-point dtype (its first
        floating-point input's, f32 where it has none), so it meets that data as its layers'
        weights do. A param is trained, so it is floating point; a buffer may be any dtype."""
        if arg is None:
            declared = (self.graph.node(n).declared for n in self.graph.inputs)
            return next((t.dtype for t in declared if t is not None and t.dtype in FLOATS), "f32")
        value = arg.value
        if not isinstance(value, str) or value not in DTYPES:
            self.diag.error(f"`dtype` of {cls.kind} must be a dtype, got {show_value(value)}", arg.span,
                            rule="dtypes: " + ", ".join(DTYPES),
                            hint=did_you_mean(value, DTYPES) if isinstance(value, str) else None)
            return POISON
        if cls.trainable and value not in FLOATS:
            self.diag.error(f"a param is trained, so it is floating point, not {value}", arg.span, rule=rule,
                            hint=f"a constant {value} tensor (an index, a mask) is a `buffer(..., dtype={value})`")
            return POISON
        return value

    def _owned_init(self, cls: type[Owned], arg: Argument | None, dtype: str, shape: list[int],
                    rule: str) -> Any:
        """`init=`: a number for every element, a tuple of all the values (row-major), or
        "normal" (seeded N(0, 0.02^2)); "zeros" and "ones" are 0 and 1. By default a param is
        "normal", a buffer 0."""
        if arg is None:
            return "normal" if cls.trainable else (False if dtype == "bool" else 0)
        value = {"zeros": 0, "ones": 1}.get(arg.value, arg.value) if isinstance(arg.value, str) else arg.value
        elements = 1
        for size in shape:
            elements *= size
        if isinstance(value, Constant):  # computed values (netspec.constants): their kind and count
            if not value.integral and dtype not in FLOATS:
                self.diag.error(f"`{value.call}` is real numbers; this {cls.kind} is {dtype}", arg.span, rule=rule,
                                hint="give it a floating-point dtype, e.g. `dtype=f32`")
                return POISON
            if len(value) != elements:
                self.diag.error(f"`{value.call}` gives {len(value):,} values, but the {cls.kind} "
                                f"[{', '.join(map(str, shape))}] has {elements:,} elements", arg.span, rule=rule,
                                hint="give the buffer as many elements as the function computes")
                return POISON
            return value
        if value == "normal" and isinstance(value, str):
            if dtype not in FLOATS:
                self.diag.error(f"`init=\"normal\"` draws floating-point values; this {cls.kind} is {dtype}",
                                arg.span, rule=rule, hint="give a number, or every value as a tuple")
                return POISON
            return "normal"
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if not isinstance(item, (int, float)) or (isinstance(item, bool) and dtype != "bool"):
                self.diag.error(f"`init` of {cls.kind} is a number, a tuple of numbers or \"normal\", got "
                                f"{show_value(value) if isinstance(value, str) else kind_name(item)}",
                                arg.span, rule=rule, hint=did_you_mean(value, ["normal", "zeros", "ones"])
                                if isinstance(value, str) else "e.g. `init=1e-6` or `init=0`")
                return POISON
            if not representable(item, dtype) or (dtype == "bool" and item not in (0, 1)):
                self.diag.error(f"`init` value {show_value(item)} is not a value of this {cls.kind}'s dtype {dtype}",
                                arg.span, rule=f"{dtype} holds " + ("integers" if dtype not in FLOATS else "finite numbers")
                                + " within its range", hint="give it another dtype with `dtype=`"
                                if dtype not in FLOATS else None)
                return POISON
        if isinstance(value, tuple):
            if len(value) != elements:
                self.diag.error(f"`init` gives {len(value)} values, but the {cls.kind} "
                                f"[{', '.join(map(str, shape))}] has {elements:,} elements", arg.span, rule=rule,
                                hint="give every value, row-major, or one number for them all")
                return POISON
            return tuple(bool(v) if dtype == "bool" else v for v in value)
        return bool(value) if dtype == "bool" else value

    def _query(self, call: S.Call, positional: list[Argument], keywords: dict[str, Argument],
               poisoned: bool) -> Any:
        """`channels(x)`, `spatial(x)`, `size(x, "H")`: a plain value read from the type of a
        tensor made so far (netspec.functions.QUERIES)."""
        name = call.callee.name
        if poisoned:
            return POISON
        if not positional or not isinstance(positional[0].value, Tensor):
            where = positional[0].span if positional else call.span
            self.diag.error(f"`{name}` reads a tensor's type: its first argument is a tensor", where,
                            rule=DESCRIPTIONS[name], hint=f"e.g. `{name}(x)`")
            return POISON
        if any(isinstance(a.value, Tensor) for a in [*positional[1:], *keywords.values()]):
            self.diag.error(f"`{name}` takes one tensor", call.span, rule=DESCRIPTIONS[name])
            return POISON
        t = self._type_of(positional[0].value.node)
        if t is None:
            return POISON  # a layer before it failed: inference reports that
        by_index = name == "size" and len(positional) > 1 and isinstance(positional[1].value, int)
        if t.layout.is_unlaid and not by_index:  # a param's sizes by index are known: `size(table, 1)`
            self.diag.error(f"`{name}` reads an activation's axes; `{positional[0].value.node}` is a tensor "
                            f"of the network's own, {t}, with no layout", positional[0].span,
                            rule=DESCRIPTIONS[name], hint="ask the activation it meets instead")
            return POISON
        try:
            return QUERIES[name](t, *(a.value for a in positional[1:]), **{k: a.value for k, a in keywords.items()})
        except (TypeError, ValueError) as exc:
            self.diag.error(f"`{name}`: {exc}", call.span, rule=DESCRIPTIONS[name])
            return POISON
        except ShapeError as exc:  # channels(x) of a tensor whose reshape left no channel axis
            self.diag.error(f"`{name}`: {exc.message}", call.span, rule=exc.rule or DESCRIPTIONS[name],
                            hint=exc.hint)
            return POISON

    def _type_of(self, name: str) -> TensorType | None:
        """The type of a node made so far, inferred now (each node after its inputs, once): None
        where a rule refuses its inputs, which inference reports when the graph is done."""
        stack = [name]
        while stack:
            current = stack[-1]
            if current in self.types:
                stack.pop()
                continue
            node = self.graph.node(current)
            pending = [i for i in node.inputs if i not in self.types]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if node.layer is None:
                self.types[current] = node.declared
                continue
            inputs = [self.types[i] for i in node.inputs]
            try:
                self.types[current] = None if None in inputs else output_type(node, inputs)
            except ShapeError:
                self.types[current] = None
        return self.types[name]

    def _unquoted_option(self, callee: str, arg: S.Arg, scope: Scope) -> Any:
        """`padding=same`: an undefined name where the layer's attribute takes that string is an
        unquoted string (reported as such, POISON); None for anything else."""
        if (arg.name is None or callee not in LAYERS or not isinstance(arg.value, S.NameRef)
                or scope.lookup(arg.value.name)[0]):
            return None
        cls = LAYERS[callee]
        options = cls.string_options(cls.aliases.get(arg.name.name, arg.name.name))
        word = arg.value.name
        match = next((o for o in options if o.lower() == word.lower()), None)
        if match is None:
            return None
        self.diag.error(f"`{word}` is not defined: `{arg.name.name}` of {cls.kind} takes the string "
                        f'"{match}", which is written in quotes', arg.value.span,
                        rule="strings are quoted", hint=f'write `{arg.name.name}="{match}"`')
        return POISON

    def _apply_layer(self, cls: type[Layer], call: S.Call, scope: Scope, positional: list[Argument],
                     keywords: dict[str, Argument], name: str | None, poisoned: bool,
                     piped_failed: bool, piped_given: bool = False) -> Any:
        # Leading tensors are the inputs; a failed piped input still counts as one, so the
        # attributes are checked (and their errors reported) even when the input failed.
        tensors: list[Argument] = []
        while positional and (isinstance(positional[0].value, Tensor)
                              or (positional[0].value is POISON and piped_failed and not tensors)):
            tensors.append(positional.pop(0))
        for arg in positional:
            if isinstance(arg.value, Tensor):
                if not self._tensor_from_a_call(arg, cls, scope):
                    self.diag.error(f"a tensor is given where {cls.kind} expects an attribute", arg.span,
                                    rule="tensor inputs come first: `x -> f(attrs)` or `f(x, attrs)`")
                return POISON
        for key, arg in keywords.items():
            if isinstance(arg.value, Tensor):
                if not self._tensor_from_a_call(arg, cls, scope):
                    self.diag.error(f"`{key}` is given a tensor, but it is an attribute of {cls.kind}",
                                    arg.span, rule="attributes are plain values")
                return POISON
        if any(a.value is POISON for a in positional) or any(a.value is POISON for a in keywords.values()):
            return POISON  # an attribute failed; that is already reported
        if cls.arity == 1 and len(tensors) > 1 and piped_given:
            extra = tensors[1]
            if self._tensor_from_a_call(extra, cls, scope):
                return POISON
            named = f"`{extra.expr.name}`" if isinstance(extra.expr, S.NameRef) else "this argument"
            self.diag.error(f"{named} is a tensor, but the chain already gives {cls.kind} its input",
                            extra.span, rule="`a -> f(b)` is `f(a, b)`: in a chain the piped tensor "
                            "is the input, and the arguments are the attributes",
                            hint=f"give {cls.kind}'s attributes only, e.g. {cls.example_call()}",
                            labels=[Label(tensors[0].span, f"this is {cls.kind}'s input")])
            return POISON
        if cls.arity == 1 and len(tensors) != 1:
            self.diag.error(f"{cls.kind} takes one input tensor but got {len(tensors)}"
                            if tensors else f"{cls.kind} has no input tensor", call.span,
                            rule=f"{cls.kind} applies to one tensor",
                            hint=f"write `x -> {cls.kind}` or `{cls.kind}(x)`")
            return POISON
        # `x -> mul(scalar=0.5)`: the call form of `x * 0.5` (what `netspec import` writes in a chain)
        scaled = len(tensors) == 1 and "scalar" in keywords and "scalar" in getattr(cls, "model_fields", {})
        if cls.arity is None and len(tensors) < 2 and not scaled:
            self.diag.error(f"{cls.kind} needs at least two tensors, got {len(tensors)}", call.span,
                            rule=f"{cls.kind} combines two or more tensors",
                            hint=f"e.g. `a -> {cls.kind}(b)` or `{cls.kind}(a, b)`")
            return POISON
        values, named = [a.value for a in positional], {k: a.value for k, a in keywords.items()}
        try:
            layer = cls.from_arguments(values, named)
        except ArgumentError as refused:
            exc = habits.reread(cls, values, named, refused)  # in PyTorch's or Keras's words
            if isinstance(exc.arg, int) and exc.arg < len(positional):
                culprit = positional[exc.arg]  # a layer may take no attribute by position (batchnorm)
                attribute = cls.positional[min(exc.arg, len(cls.positional) - 1)] if cls.positional else None
            elif isinstance(exc.arg, str) and exc.arg in keywords:
                culprit, attribute = keywords[exc.arg], cls.aliases.get(exc.arg, exc.arg)
            else:
                culprit, attribute = None, None
            source_of = habits.argument_source(self.diag.sources, positional, keywords)
            self._attribute_error(exc, cls, call, scope, culprit, attribute, name, source_of)
            return POISON
        if poisoned:
            return POISON
        attributes = {**dict(zip(cls.positional, positional)),
                      **{cls.aliases.get(k, k): a for k, a in keywords.items()}}
        written = {key: origin.span for key, arg in attributes.items() if arg.expr is not None
                   and (origin := origin_of(arg.expr, scope)).span not in (None, arg.expr.span)}
        # attributes that are a network parameter given when compiling (no span to point at)
        given = {key: origin.given for key, arg in attributes.items() if arg.expr is not None
                 and (origin := origin_of(arg.expr, scope)).given}
        if getattr(layer, "several", False) and layer.piece is None:
            made = self._pieces(layer, tensors, call, scope, name, written)
            for piece in made if isinstance(made, tuple) and given else ():
                self.graph.node(piece.node).given = given
            return made
        if isinstance(name, _Names):
            self.diag.error(f"{len(name)} names are bound, but {cls.kind} gives one tensor", name.span,
                            rule="several names take the pieces of a layer that gives several tensors "
                                 "(split, chunk)", labels=[Label(call.span, f"{cls.kind} gives one tensor here")],
                            hint="bind one name, or end the value with the layer that cuts it, e.g. `-> chunk(2)`")
            return POISON
        made = self._layer_node(layer, tensors, call.span, scope, name, written)
        if given:
            self.graph.node(made.node).given = given
        return made

    def _pieces(self, layer: Layer, tensors: list[Argument], call: S.Call, scope: Scope, name: Any,
                written: dict[str, Span]) -> Any:
        """split or chunk without `piece`: one node per piece, each named after its name in
        `a, b = ...` (or `label.0`, `label.1` when the layer is labelled)."""
        t = self._type_of(tensors[0].value.node)
        if t is None:
            return POISON  # the layer before it failed: inference reports it
        try:
            pieces = layer.pieces(t)
        except ShapeError as exc:
            self.diag.error(f"{layer.kind}: {exc.message}", call.span, rule=exc.rule, hint=exc.hint,
                            notes=[f"input shape: {t}"], layer=name if isinstance(name, str) else None)
            return POISON
        sizes = sorted({size for _, size in pieces})
        what = " and ".join(map(str, sizes))
        axis = t.layout.role(layer._axis(t))
        made = f"{layer.kind} cuts the {axis} ({t.shape[layer._axis(t)]}) into {len(pieces)} pieces of {what}"
        if not isinstance(name, _Names):
            letters = ", ".join("abcdefgh"[:min(len(pieces), 8)])
            self.diag.error(f"{made}, but a value is one tensor", call.span, layer=name,
                            rule="split and chunk give several tensors: bind one name to each",
                            hint=f"write `{letters}{', ...' if len(pieces) > 8 else ''} = ... -> {layer.kind}(...)`, "
                                 f"or take one piece: `{layer.kind}(..., piece=0)`")
            return POISON
        if len(name) != len(pieces):
            hint = None
            if layer.kind == "chunk" and len(pieces) != layer.chunks:
                hint = (f"as torch.chunk, chunk({layer.chunks}) makes pieces of ceil({t.shape[layer._axis(t)]} / "
                        f"{layer.chunks}) = {sizes[-1]}, so {len(pieces)} pieces, not {layer.chunks}")
            self.diag.error(f"{len(name)} names are bound, but {layer.kind} gives {len(pieces)} tensors",
                            name.span, rule="one name per piece", labels=[Label(call.span, f"{made} here")],
                            hint=hint or f"bind {len(pieces)} names")
            return POISON
        nodes = []
        for i, node_name in enumerate(name.node_names()):
            piece = layer.model_copy(update={"piece": i})
            nodes.append(self._layer_node(piece, tensors, call.span, scope, node_name, written))
        return tuple(nodes)

    def _tensor_from_a_call(self, arg: Argument, cls: type[Layer], scope: Scope) -> bool:
        """A block parameter used as a layer's attribute but given a tensor at the block's call
        (`stage(a, a)`): reported at that call's argument, the use as a label. False when the
        tensor was not given by a call (the caller reports it where it is)."""
        origin = origin_of(arg.expr, scope) if isinstance(arg.expr, S.NameRef) else None
        if origin is None or origin.span in (None, arg.expr.span):
            return False
        name = arg.expr.name
        self.diag.error(f"`{name}` is given a tensor here, but it is used as an attribute of {cls.kind}",
                        origin.span, rule="tensor inputs come first: a block's tensor parameters feed "
                        "its layers, its other parameters are plain values",
                        hint="give a number (or whatever the attribute takes) for it",
                        labels=[Label(arg.span, f"`{name}` is used as an attribute of {cls.kind} here")])
        return True

    def _attribute_error(self, exc: ArgumentError, cls: type[Layer], call: S.Call, scope: Scope,
                         culprit: Argument | None, attribute: str | None, name: str | None,
                         source_of=None) -> None:
        """A bad attribute value, reported where it was written: at the argument, or, when the
        argument is a name, where that name got its value (a block's call site, a binding).
        `source_of` gives the arguments' text, for a hint that shows the call corrected."""
        span, labels, notes, hint = call.span, [], [], exc.hint_with(source_of)
        if culprit is not None:
            span = culprit.span
            # a call written in another framework's way is fixed at the call, not where a value came from
            origin = origin_of(culprit.expr, scope) if culprit.expr is not None and exc.call is None else None
            if origin is not None and origin.given is not None:  # not in the spec: given when compiling
                notes.append(f"`{origin.given}` = {show_value(culprit.value)} is given when the spec is "
                             f"compiled (`{origin.given}=...`), in place of its default")
            elif origin is not None and origin.span != culprit.expr.span:
                span = origin.span
                labels.append(Label(culprit.span, f"`{culprit.expr.name}` is {show_value(culprit.value)}, "
                                                  f"given as `{attribute}` of {cls.kind} here"))
            hint = hint or division_hint(culprit.value, origin.expr if origin is not None else None)
        self.diag.error(exc.message, span, rule=f"{cls.kind} attributes", hint=hint, layer=name,
                        labels=labels, notes=notes)

    def _layer_node(self, layer: Layer, inputs: list[Argument], span: Span, scope: Scope,
                    name: str | None, written: dict[str, Span] | None = None) -> Tensor:
        if name is None:
            name = self._auto_name(scope, layer.kind)
        elif name in self.graph:
            other = self.graph.node(name).span
            if other == span:  # one label, evaluated twice: two rounds of a repeat
                self.diag.error(f"the layer name `{name}` is used twice: this label gives it in two "
                                "rounds of the repeat", span,
                                rule="layer names (and so parameter names) are unique",
                                hint="make the label differ in every round, e.g. `name{i}:` with the "
                                     "round index of `repeat(n, i)`")
            else:
                self.diag.error(f"the layer name `{name}` is used twice", span,
                                rule="layer names (and so parameter names) are unique",
                                hint="rename one of the labels",
                                labels=[Label(other, f"`{name}` is first made here")])
            name = self._auto_name(scope, layer.kind)
        node = LayerNode(name=name, layer=layer, inputs=[t.value.node for t in inputs], span=span,
                         blocks=scope.blocks, input_spans=[t.span for t in inputs],
                         written=written or {})
        self.graph.add(node)
        return Tensor(name)

    def _auto_name(self, scope: Scope, kind: str) -> str:
        base = scope.qualify(kind)
        name, n = base, self.auto_names.get(base, 1)
        while name in self.graph or name in self.instances:
            n += 1
            name = f"{base}_{n}"
        self.auto_names[base] = n
        return name

    # ================================================================ blocks

    def _instantiate(self, call: S.Call, scope: Scope, positional: list[Argument],
                     keywords: dict[str, Argument], name: str | None) -> Any:
        source = self.blocks[call.callee.name]
        definition = source.definition
        block_name = definition.name.name
        defined = Label(definition.name.span, f"`{block_name}` is defined here")
        if block_name in self.expanding:
            path = " -> ".join(self.expanding[self.expanding.index(block_name):] + [block_name])
            self.diag.error(f"block `{block_name}` calls itself: {path}", call.span,
                            rule="blocks cannot be recursive",
                            hint="use repeat(n) { ... } to apply a block several times")
            return POISON
        params = [p.name.name for p in definition.params]
        if len(positional) > len(params):
            self.diag.error(f"block `{block_name}` takes {len(params)} argument"
                            f"{'s' if len(params) != 1 else ''} ({', '.join(params)}) but got "
                            f"{len(positional)}", positional[len(params)].span,
                            rule="arguments match the block's parameters", labels=[defined])
            return POISON
        if isinstance(name, _Names):
            self.diag.error(f"{len(name)} names are bound, but block `{block_name}` returns one tensor",
                            name.span, rule="a block returns one tensor; several names take the pieces "
                            "of split or chunk", labels=[Label(call.span, f"`{block_name}` is called here")],
                            hint="bind one name to the block's result, then cut it: `-> chunk(2)`")
            return POISON
        instance_name = name or self._auto_name(scope, block_name)
        self.instances.add(instance_name)
        shown = [_shown_argument(a.value) for a in positional if not isinstance(a.value, Tensor)] + \
            [f"{k}={_shown_argument(a.value)}" for k, a in keywords.items() if not isinstance(a.value, Tensor)]
        instance = BlockInstance(instance_name, block_name, f"{block_name}({', '.join(shown)})", call.span)
        inner = Scope({}, source.file_scope, prefix=instance_name, blocks=scope.blocks + (instance,))
        given = list(zip(params, positional))
        for key, arg in keywords.items():
            if key not in params:
                self.diag.error(f"block `{block_name}` has no parameter `{key}`", arg.span,
                                rule="arguments match the block's parameters", labels=[defined],
                                hint=did_you_mean(key, params) or f"its parameters: {', '.join(params)}")
                return POISON
            if key in dict(given):
                self.diag.error(f"`{key}` is given twice (by position and by name)", arg.span,
                                rule="each argument is given once",
                                labels=[Label(dict(given)[key].span, f"`{key}` is given here by position")])
                return POISON
            given.append((key, arg))
        for key, arg in given:
            inner.values[key] = arg.value
            if arg.expr is not None:
                inner.origins[key] = origin_of(arg.expr, scope)  # a mistake in it is fixed there
        with self.diag.within(tuple(b.describe() for b in inner.blocks)):
            for param in definition.params:
                if param.name.name in inner.values:
                    continue
                if param.default is None:
                    self.diag.error(f"block `{block_name}` needs an argument for `{param.name.name}`",
                                    call.span, rule="parameters without a default must be given",
                                    labels=[Label(param.name.span, "this parameter has no default")])
                    return POISON
                if self.reads_later_parameter(param, definition.params, inner.values, f"block `{block_name}`"):
                    return POISON
                inner.values[param.name.name] = self.expr(param.default, inner, None)
                inner.origins[param.name.name] = origin_of(param.default, inner)
            for name_ in inner.values:
                inner.spans[name_] = definition.span
            instance.arguments = dict(inner.values)
            instance.origins = dict(inner.origins)
            self.expanding.append(block_name)
            try:
                return self._block_body(definition, inner, instance)
            finally:
                self.expanding.pop()

    def _unused_in_block(self, definition: S.BlockDef, scope: Scope, mark: int, returned: str) -> None:
        """Warn, once per binding of a block (however many instances), of a tensor the block
        computes but its `return` does not use: its layers are still built and counted (a
        `branch1` left over from another variant of the block adds parameters and MACs)."""
        made = set(self.graph.added_since(mark))
        reached, stack = set(), [returned]
        while stack:  # what the return depends on, within this instance
            name = stack.pop()
            if name in made and name not in reached:
                reached.add(name)
                stack.extend(self.graph.node(name).inputs)
        for statement in definition.body:
            idents = [statement.name] if isinstance(statement, S.Binding) else \
                statement.names if isinstance(statement, S.Unpack) else []
            for ident in idents:
                value = scope.values.get(ident.name)
                if (isinstance(value, Tensor) and value.node in made and value.node not in reached
                        and not isinstance(self.graph.node(value.node).layer, Owned)
                        and ident.span not in self.warned_unused):
                    self.warned_unused.add(ident.span)
                    self.diag.warning(f"`{ident.name}` is computed in block `{definition.name.name}` but "
                                      f"its `return` does not use it", ident.span, rule="unused binding",
                                      hint="its layers are still built and counted: use it, remove it, "
                                           "or choose it with `... if test else ...`")

    def _block_body(self, definition: S.BlockDef, scope: Scope, instance: BlockInstance) -> Any:
        mark = len(self.graph)
        self._bindings(definition.body, scope)
        if not definition.returns:
            self.diag.error(f"block `{definition.name.name}` has no `return`", definition.name.span,
                            rule="a block returns a tensor", hint="end it with `return <expression>`")
            return POISON
        for extra in definition.returns[1:]:
            self.diag.error("a block has one `return`", extra.span, rule="one return per block",
                            labels=[Label(definition.returns[0].span, "the first `return`")])
        returned = definition.returns[0].value
        while isinstance(returned, S.Conditional):  # the chosen branch is what is returned
            test = self.truth(returned.test, scope)
            if test is POISON:
                return POISON
            returned = returned.then if test else returned.otherwise
        if isinstance(returned, S.Chain):
            value = self._chain(returned, scope, instance.name, sequential=True)
        else:
            value = self.expr(returned, scope, None)
        if isinstance(value, Tensor):
            instance.output = value.node
            self._unused_in_block(definition, scope, mark, value.node)
        elif value is not POISON:
            self.diag.error(f"block `{definition.name.name}` returns {kind_name(value)}, not a tensor",
                            definition.returns[0].value.span, rule="a block returns a tensor")
            return POISON
        return value


def _shown_argument(value: Any) -> str:
    """A block argument as the table's Op column shows the call: a computed number to six
    significant digits (ConvNeXt's stochastic-depth rates, `cn_block(0.00588235)`), the rest as
    netspec source writes it."""
    if isinstance(value, float) and len(repr(value)) > 8:
        return f"{value:.6g}"
    return show_value(value)


def _nearby_file(target: Path, written: str) -> str | None:
    """For a `use` path that could not be read: the file meant, if one is close (the `.net`
    left off, a misspelling in the same folder). None where the path exists, or cannot even be
    looked at (a name too long for the file system)."""
    try:
        if target.exists():
            return None
        if target.with_name(target.name + ".net").is_file():
            return f'add the suffix: `use "{written}.net"`'
        if not target.parent.is_dir():
            return None
        names = sorted(p.name for p in target.parent.iterdir() if p.suffix == ".net")
    except (OSError, ValueError):
        return None
    import difflib  # only for a use that failed

    close = difflib.get_close_matches(target.name, names, n=1, cutoff=0.6)
    if not close:
        return None
    folder = written.rsplit("/", 1)[0] + "/" if "/" in written else ""
    return f'did you mean `use "{folder}{close[0]}"`?'


def _name_span(binding: S.Binding | S.Unpack, name: str) -> Span:
    if isinstance(binding, S.Unpack):
        return next(i.span for i in binding.names if i.name == name)
    return binding.name.span


class _Names(list):
    """The names of `a, b = ...`, qualified, for the layer that gives several tensors; `label`
    is that layer's label, which names the pieces `label.0`, `label.1` instead."""

    def __init__(self, names: list[str], span: Span):
        super().__init__(names)
        self.span = span
        self.label: str | None = None

    def node_names(self) -> list[str]:
        return [f"{self.label}.{i}" for i in range(len(self))] if self.label else list(self)


class _ChainNames:
    """Names for the unlabelled layers of one chain: `prefix.0`, `prefix.1`, ... (or `prefix`
    alone for a chain of one layer); auto names when the chain is not bound to a name."""

    def __init__(self, prefix: str | None, total: int, sequential: bool = False,
                 owner: str | None = None):
        self.prefix, self.total, self.index = prefix, total, 0
        self.sequential = sequential
        self.owner = owner  # a `seq { ... }`: its labelled stages are `<owner>.<label>`
        self.rounds: list[int] = []  # the round of each enclosing repeat (of more than one round)

    def next(self) -> str | None:
        index, self.index = self.index, self.index + 1
        if self.prefix is None:
            return None
        return self.prefix if self.total == 1 and not self.sequential else f"{self.prefix}.{index}"

    def labelled(self, label: str, exact: bool = False) -> str:
        """A label's name; inside a repeat the rounds are appended (`b.0`, `b.1`) unless the
        label carries its own index (`denselayer{i + 1}`)."""
        self.index += 1  # a labelled layer still takes its place in the sequence
        return label if exact else ".".join([label, *map(str, self.rounds)])

    def qualify(self, scope: Scope, label: str) -> str:
        """A labelled stage's full name: inside a `seq`, the seq's child; else the scope's."""
        return f"{self.owner}.{label}" if self.owner else scope.qualify(label)


def _computed(stage: S.Node) -> bool:
    """Whether a label has parts after its name (`denselayer{i + 1}`, `block{s}-{i}`): such a
    label carries its own index, and the rounds of a repeat are not appended to it."""
    return bool(stage.label_parts)


def elaborate(module: S.Module, diagnostics: Diagnostics, loader,
              params: dict[str, Any] | None = None, inputs: dict[str, list] | None = None) -> Graph:
    return Elaborator(diagnostics, loader).run(module, params or {}, inputs or {})
