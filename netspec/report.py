"""Reports of a typed graph: table rows (with blocks folded past a depth), totals, JSON, and the
rich table. The figures are computed once here and shared by every output format.

Counting conventions (also in the README and `netspec check --help`):
- params: trainable parameters (weights, biases, batch-norm affine), as torchvision and
  torchinfo count them; buffers (batch-norm running statistics and `num_batches_tracked`) are
  counted separately;
- MACs: multiply-accumulates of conv, conv_transpose and linear weights, for one sample (batch
  1); bias additions, activations, pooling, normalisation and merges count 0 (the convention of
  torchvision's published GFLOPS);
- parameter memory: parameters and buffers at their dtype's size;
- activation memory: the sum of every layer's output for one sample, at its dtype's size (the
  inputs are not counted).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from netspec.graph import BlockInstance, Graph, LayerNode, tensor_key
from netspec.memory import Fit, Memory
from netspec.receptive import receptive_fields
from netspec.receptive import show as show_field
from netspec.types import DTYPES, TensorType

JSON_SCHEMA = "netspec.check/1"


@dataclass
class Row:
    name: str
    depth: int
    kind: str                      # layer kind, "input", or "block"
    summary: str
    output: TensorType | None
    params: int = 0
    buffers: int = 0
    macs: int = 0
    inputs: list[str] = field(default_factory=list)
    folded: bool = False           # a block shown as one row, its layers summed into it
    header: bool = False           # a block's heading row, its layers listed below it
    node: LayerNode | None = None
    members: list[str] = field(default_factory=list)  # a folded row's layers


@dataclass
class Totals:
    params: int
    buffers: int
    macs: int
    param_bytes: int
    activation_bytes: int
    layers: int


def rows(graph: Graph, depth: int | None = None) -> list[Row]:
    """One row per layer in topological order; each block instance gets a heading row, and a
    block deeper than `depth` is folded into one row carrying its layers' sums."""
    out: list[Row] = []
    open_blocks: list[BlockInstance] = []
    folded: dict[int, Row] = {}
    inside: dict[int, set[str]] = {}  # the nodes folded into each row so far
    for node in graph:
        blocks = node.blocks
        shown = blocks if depth is None else blocks[:depth]
        common = 0
        while common < min(len(open_blocks), len(shown)) and open_blocks[common] is shown[common]:
            common += 1
        del open_blocks[common:]
        for level in range(common, len(shown)):
            instance = shown[level]
            open_blocks.append(instance)
            out.append(Row(instance.name, level, "block", instance.call, _block_output(graph, instance),
                           header=True))
        if depth is not None and len(blocks) > depth:
            instance = blocks[depth]
            row = folded.get(id(instance))
            if row is None:
                row = Row(instance.name, depth, "block", instance.call,
                          _block_output(graph, instance), folded=True)
                folded[id(instance)] = row
                out.append(row)
            row.params += node.trainable
            row.buffers += node.buffers
            row.macs += node.macs
            row.members.append(node.name)
            inside.setdefault(id(instance), set()).add(node.name)
            row.inputs += [n for n in node.inputs if n not in inside[id(instance)] and n not in row.inputs]
            continue
        out.append(Row(node.name, len(blocks), node.kind, node.summary, node.output,
                       node.trainable, node.buffers, node.macs, list(node.inputs), node=node))
    return out


def _block_output(graph: Graph, instance: BlockInstance) -> TensorType | None:
    return graph.node(instance.output).output if instance.output in graph else None


def totals(graph: Graph) -> Totals:
    params = buffers = macs = param_bytes = activation_bytes = 0
    layers = 0
    for node in graph:
        if node.layer is None:
            continue
        layers += 1
        itemsize = node.output.itemsize if node.output is not None else 4
        for spec in node.params.values():
            if spec.trainable:
                params += spec.elements
            elif spec.persistent:  # a constant outside the state_dict is no buffer of PyTorch's count
                buffers += spec.elements
            size = DTYPES[spec.dtype] if spec.dtype in DTYPES else itemsize
            param_bytes += spec.elements * size
        macs += node.macs
        if node.output is not None and node.inputs:  # a param's value is a weight, not an activation
            activation_bytes += node.output.sample_elements() * node.output.itemsize
    return Totals(params, buffers, macs, param_bytes, activation_bytes, layers)


# ---------------------------------------------------------------- JSON

def _type_json(t: TensorType | None) -> dict | None:
    if t is None:
        return None
    return {"shape": list(t.shape), "layout": t.layout.axes, "dtype": t.dtype}


def to_json(graph: Graph | None, diagnostics: list, path: str, depth: int | None = None,
            explain: bool = False, flops: bool = False, memory: Memory | None = None,
            fit: Fit | None = None) -> dict[str, Any]:
    """The stable `netspec.check/1` document (documented in the README). `flops` adds each
    layer's and the total's `flops` (2 x MACs); `memory` (netspec.memory) a `memory` object and
    each layer's `saved_bytes` and `live_bytes`, `fit` the largest batch that fits."""
    doc: dict[str, Any] = {"schema": JSON_SCHEMA, "file": path,
                           "ok": not any(d.severity == "error" for d in diagnostics)}
    if graph is not None:
        t = totals(graph)
        doc["network"] = graph.name
        doc["parameters"] = {k: v for k, v in graph.parameters.items() if _is_json(v)}
        doc["inputs"] = [{"name": n, **_type_json(graph.node(n).output)} for n in graph.inputs
                         if graph.node(n).output is not None]
        doc["outputs"] = [{"name": name, "layer": node, **(_type_json(graph.node(node).output) or {})}
                          for name, node in graph.outputs]
        fields = receptive_fields(graph)
        shown = [r for r in rows(graph, depth) if not r.header]
        doc["layers"] = [_row_json(r) for r in shown]
        for row, layer in zip(shown, doc["layers"]):
            if row.node is None:
                continue
            if row.node.name in fields:
                layer["receptive_field"] = fields[row.node.name].to_json()
            if explain:
                layer["explain"], layer["notes"] = explanation(graph, row.node)
        if flops:
            for layer in doc["layers"]:
                layer["flops"] = 2 * layer["macs"]
        if memory is not None:
            for row, layer in zip(shown, doc["layers"]):
                layer["saved_bytes"], layer["live_bytes"] = memory_cells(row, memory)
        doc["totals"] = {"params": t.params, "buffers": t.buffers, "macs": t.macs,
                         "param_bytes": t.param_bytes, "activation_bytes": t.activation_bytes,
                         "layers": t.layers, "uncounted_kinds": uncounted_kinds(graph)}
        if flops:
            doc["totals"]["flops"] = 2 * t.macs
        if memory is not None:
            doc["memory"] = memory.to_json()
            if fit is not None:
                doc["memory"]["fit"] = fit.to_json()
    doc["diagnostics"] = [d.to_json() for d in diagnostics]
    return doc


def memory_cells(row: Row, memory: Memory) -> tuple[int, int]:
    """A row's saved bytes (training: what its layers keep first) and live bytes (inference:
    live while it runs; a folded block's most)."""
    names = row.members if row.folded else [row.node.name] if row.node is not None else []
    return (sum(memory.saved_bytes.get(n, 0) for n in names),
            max((memory.live_bytes.get(n, 0) for n in names), default=0))


def _row_json(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"name": row.name, "kind": row.kind, "summary": row.summary,
                           "depth": row.depth, "output": _type_json(row.output),
                           "params": row.params, "buffers": row.buffers, "macs": row.macs}
    if row.node is not None:
        out["inputs"] = row.inputs
        if row.node.layer is not None:
            out["attributes"] = row.node.layer.attributes()
        out["tensors"] = {tensor_key(row.name, suffix): {"shape": list(spec.shape),
                                                   "trainable": spec.trainable}
                          for suffix, spec in row.node.params.items()}
        if row.node.blocks:
            out["block"] = row.node.blocks[-1].name
    return out


def _is_json(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool, tuple, list))


# ---------------------------------------------------------------- human formats

def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M' (SI prefixes, three significant figures)."""
    for size, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def human_bytes(n: int) -> str:
    for size, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


OPTIONAL_COLUMNS = {"rf": "RF", "jump": "Jump", "start": "Start", "from": "From"}


def branches(graph: Graph) -> bool:
    """Whether the graph is more than one chain: a merge, a fork, or several inputs."""
    consumers: dict[str, int] = {}
    for node in graph:
        if len(node.inputs) > 1:
            return True
        for name in node.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    return len(graph.inputs) > 1 or any(count > 1 for count in consumers.values())


def explanation(graph: Graph, node: LayerNode) -> tuple[list[str], list[str]]:
    """The arithmetic lines and notes of one layer (`--explain`)."""
    if node.layer is None or node.output is None:
        return [], []
    return node.layer.explain([graph.node(n).output for n in node.inputs], node.output)


def table_cells(graph: Graph, depth: int | None = None, columns: tuple[str, ...] | None = None,
                flops: bool = False, memory: Memory | None = None,
                train: bool = False) -> tuple[list[str], list[list[str]], list[Row]]:
    """The table as strings: column titles, one list of cells per row, and the rows.
    `columns` picks optional columns (rf, jump, start, from); None shows `from` when the
    graph branches. `flops` adds a FLOPs column (2 x MACs) after the MACs; `memory` a Live
    column (inference) and, with `train`, a Saved one (what autograd keeps)."""
    table_rows = rows(graph, depth)
    show_buffers = any(r.buffers for r in table_rows)
    if columns is None:
        columns = ("from",) if branches(graph) else ()
    fields = receptive_fields(graph) if set(columns) & {"rf", "jump", "start"} else {}
    titles = ["Layer", "Op", "Output shape", "Params", "MACs"] + (["FLOPs"] if flops else []) \
        + (["Buffers"] if show_buffers else [])
    if memory is not None:
        titles += ["Live"] + (["Saved"] if train else [])
    titles += [OPTIONAL_COLUMNS[c] for c in columns]
    cells = []
    for row in table_rows:
        line = ["  " * row.depth + row.name, row.summary,
                str(row.output) if row.output is not None else "?"]
        if row.header:
            line += [""] * (len(titles) - 3)
            cells.append(line)
            continue
        line += [f"{row.params:,}" if row.params else "", f"{row.macs:,}" if row.macs else ""]
        if flops:
            line.append(f"{2 * row.macs:,}" if row.macs else "")
        if show_buffers:
            line.append(f"{row.buffers:,}" if row.buffers else "")
        if memory is not None:
            saved, live = memory_cells(row, memory)
            line.append(human_bytes(live))
            if train:
                line.append(human_bytes(saved) if saved else "")
        field = fields.get(row.node.name) if row.node is not None else None
        for column in columns:
            if column == "from":
                line.append(", ".join(row.inputs))
            elif field is None:
                line.append("")
            else:
                line.append(show_field({"rf": field.size, "jump": field.jump, "start": field.start}[column]))
        cells.append(line)
    return titles, cells, table_rows


def render_table(graph: Graph, depth: int | None = None, styled: bool = False, file=None,
                 explain: bool = False, columns: tuple[str, ...] | None = None, flops: bool = False,
                 memory: Memory | None = None, train: bool = False, fit: Fit | None = None) -> None:
    """Print the per-layer table and the totals.

    Columns are laid out here: rich's Table engine costs about 0.6 ms a row, which made a
    2,000-layer table take over a second. rich styles the text on a terminal (`styled`);
    elsewhere the same text goes out plain, without importing rich (about 55 ms).
    """
    titles, cells, table_rows = table_cells(graph, depth, columns, flops, memory, train)
    right = {"Params", "MACs", "FLOPs", "Buffers", "Live", "Saved", "RF", "Jump", "Start"}
    widths = [max([len(t)] + [len(c[i]) for c in cells]) for i, t in enumerate(titles)]

    def layout(values: list[str]) -> list[str]:
        return [v.rjust(w) if t in right else v.ljust(w) for v, w, t in zip(values, widths, titles)]

    pieces: list[tuple[str, str]] = [(f"network {graph.name}\n\n", "bold"),
                                     ("  ".join(layout(titles)).rstrip() + "\n", "bold"),
                                     ("\u2500" * (sum(widths) + 2 * (len(widths) - 1)) + "\n", "dim")]
    for row, values in zip(table_rows, cells):
        padded = layout(values)
        block = row.header or row.folded
        pieces += [(padded[0], "bold" if block else ""), ("  ", ""),
                   (padded[1], "cyan" if block else ""), ("  ", ""),
                   ("  ".join(padded[2:]).rstrip() + "\n", "dim" if row.header else "")]
        if explain and row.node is not None:
            lines, notes = explanation(graph, row.node)
            indent = " " * (2 * row.depth + 4)
            pieces += [(f"{indent}{line}\n", "dim") for line in lines]
            pieces += [(f"{indent}note: {note}\n", "yellow") for note in notes]
    pieces.append(("\n", ""))
    for label, value in summary_lines(graph, flops) + memory_lines(memory, train, fit):
        pieces += [(f"{label:<19}", "bold"), (value + "\n", "")]
    if styled:
        from rich.console import Console
        from rich.text import Text

        text = Text()
        for chunk, style in pieces:
            text.append(chunk, style=style)
        Console(highlight=False, file=file).print(text, soft_wrap=True, end="")
    else:
        out = file or sys.stdout
        out.write("".join(chunk for chunk, _ in pieces))


# layer families whose arithmetic counts 0 MACs, as in torchvision's published figures, fvcore
# and torchinfo: only convolutions, linear layers and matrix products count
UNCOUNTED_FAMILIES = ("activation", "norm", "pool", "merge", "resample")


def uncounted_kinds(graph: Graph) -> list[str]:
    """The layer kinds of `graph` that do arithmetic counted as 0 MACs, in order of appearance."""
    kinds: list[str] = []
    for node in graph:
        if node.layer is not None and type(node.layer).family in UNCOUNTED_FAMILIES and node.kind not in kinds:
            kinds.append(node.kind)
    return kinds


def summary_lines(graph: Graph, flops: bool = False) -> list[tuple[str, str]]:
    """The totals under the table, as (label, value) pairs (`flops`: with a FLOPs line)."""
    t = totals(graph)
    inputs = ", ".join(f"{n} {graph.node(n).output}" for n in graph.inputs if graph.node(n).output)
    outputs = ", ".join(f"{name} {graph.node(node).output}" for name, node in graph.outputs)
    lines = [
        ("Parameters", f"{t.params:,} trainable ({human(t.params)})"),
        ("Buffers", f"{t.buffers:,} ({_buffer_kinds(graph)})" if t.buffers else "0"),
        ("MACs", f"{t.macs:,} per sample ({human(t.macs)})"),
        ("Parameter memory", human_bytes(t.param_bytes)),
        ("Activation memory", f"{human_bytes(t.activation_bytes)} per sample"),
        ("Inputs", inputs),
        ("Outputs", outputs),
    ]
    uncounted = uncounted_kinds(graph)
    if uncounted:
        lines.insert(3, ("Not counted", f"{', '.join(uncounted)} (0 MACs by convention)"))
    if flops:
        lines.insert(3, ("FLOPs", f"{2 * t.macs:,} per sample ({human(2 * t.macs)}: 2 x MACs)"))
    return lines


OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD momentum", "adam": "Adam"}


def memory_lines(memory: Memory | None, train: bool = False, fit: Fit | None = None) -> list[tuple[str, str]]:
    """The memory totals under the table (`--memory`), as (label, value) pairs."""
    if memory is None:
        return []
    m = memory
    lines = [("Batch", f"{m.batch}"),
             ("Inference peak", f"{human_bytes(m.inference_peak_bytes)} of activations live at once; "
                                f"{human_bytes(m.inference_total_bytes)} with the parameters")]
    if train:
        lines.append(("Training memory", f"{human_bytes(m.training_total_bytes)}: parameters "
                      f"{human_bytes(m.parameters_bytes)} + gradients {human_bytes(m.gradients_bytes)} + "
                      f"{OPTIMIZER_NAMES[m.optimizer]} state {human_bytes(m.optimizer_bytes)} + saved "
                      f"activations {human_bytes(m.saved_activations_bytes)}"))
    if fit is not None:
        what = f"training, {OPTIMIZER_NAMES[fit.memory.optimizer]}" if fit.train else "inference"
        if fit.batch == 0:
            answer = f"none: one sample needs {human_bytes(fit.total_bytes)} ({what})"
        else:
            answer = f"batch {fit.batch:,} ({what}: {human_bytes(fit.total_bytes)})"
        lines.append((f"Fits in {fit.budget_text}", answer))
    return lines


def _buffer_kinds(graph: Graph) -> str:
    """What the buffers are, for the totals: batch-norm running statistics, the network's own."""
    kinds = []
    if any(not s.trainable for n in graph if n.kind != "buffer" for s in n.params.values()):
        kinds.append("batch-norm running statistics")
    if any(n.kind == "buffer" for n in graph):
        kinds.append("the network's own")
    return " and ".join(kinds) or "none"
