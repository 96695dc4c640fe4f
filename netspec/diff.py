"""What changed between two typed graphs (`netspec diff A B`): layers aligned into pairs,
the pairs that differ with each field's old and new value, the layers only one side has, and
the deltas of the totals. Pure: graphs in, a Diff out; netspec.commands.diff renders it.

Alignment, in two passes:
1. by name: a layer's name is its state_dict prefix (`layer1.0.conv1`), so a layer with the
   same name on both sides is the same layer, whatever else changed about it;
2. by structure, for what is left: between two consecutive name-matched layers, the unmatched
   layers of each side are aligned as a sequence of (kind, attributes) with difflib, so a
   layer renamed in place is one changed (renamed) layer, not one removed and one added.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from netspec.graph import Graph, LayerNode
from netspec.report import Totals, totals
from netspec.types import TensorType


@dataclass(frozen=True)
class LayerFacts:
    """One layer's facts, as a diff compares them."""

    name: str
    kind: str
    summary: str
    attributes: dict[str, Any]
    output: TensorType | None
    params: int
    buffers: int
    macs: int
    blocks: tuple[tuple[str, str], ...] = ()   # enclosing block instances (name, call), outermost first

    @property
    def structure(self) -> str:
        """What a layer is, apart from its name and its input's shape: the key of pass 2."""
        return json.dumps([self.kind, self.attributes], sort_keys=True, default=str)


@dataclass
class Change:
    """One field that differs in an aligned pair: an attribute's name, or one of `name`,
    `kind`, `output`, `params`, `buffers`, `macs`."""

    field: str
    old: Any
    new: Any


@dataclass
class Entry:
    """One line of the diff, in display order: `same` and `changed` have both layers,
    `removed` only `a`, `added` only `b`."""

    status: str                     # "same", "changed", "removed" or "added"
    a: LayerFacts | None
    b: LayerFacts | None
    changes: list[Change] = field(default_factory=list)

    @property
    def layer(self) -> LayerFacts:
        return self.b if self.b is not None else self.a  # type: ignore[return-value]

    @property
    def renamed(self) -> bool:
        return self.a is not None and self.b is not None and self.a.name != self.b.name


@dataclass
class Diff:
    entries: list[Entry]
    totals_a: Totals
    totals_b: Totals
    name_a: str
    name_b: str

    def of(self, status: str) -> list[Entry]:
        return [e for e in self.entries if e.status == status]

    @property
    def same(self) -> bool:
        return all(e.status == "same" for e in self.entries)

    def delta(self, figure: str) -> int:
        return getattr(self.totals_b, figure) - getattr(self.totals_a, figure)


def layer_facts(node: LayerNode) -> LayerFacts:
    if node.layer is None:  # a graph input: its declared type is all there is to it
        attributes: dict[str, Any] = {}
    else:
        attributes = node.layer.attributes()
    return LayerFacts(node.name, node.kind, node.summary or node.kind, attributes, node.output,
                 node.trainable, node.buffers, node.macs, tuple((b.name, b.call) for b in node.blocks))


def compare(a: LayerFacts, b: LayerFacts) -> list[Change]:
    """The fields of an aligned pair that differ, name first, then kind, attributes, figures."""
    changes = []
    if a.name != b.name:
        changes.append(Change("name", a.name, b.name))
    if a.kind != b.kind:
        changes.append(Change("kind", a.kind, b.kind))
    for key in dict.fromkeys([*a.attributes, *b.attributes]):
        old, new = a.attributes.get(key), b.attributes.get(key)
        if old != new:
            changes.append(Change(key, old, new))
    if str(a.output) != str(b.output):
        changes.append(Change("output", a.output, b.output))
    for figure in ("params", "buffers", "macs"):
        if getattr(a, figure) != getattr(b, figure):
            changes.append(Change(figure, getattr(a, figure), getattr(b, figure)))
    return changes


def pair(a: LayerFacts, b: LayerFacts) -> Entry:
    changes = compare(a, b)
    return Entry("changed" if changes else "same", a, b, changes)


def diff(graph_a: Graph, graph_b: Graph) -> Diff:
    layers_a = [layer_facts(n) for n in graph_a]
    layers_b = [layer_facts(n) for n in graph_b]
    names_b = {layer.name for layer in layers_b}
    by_name_b = {layer.name: layer for layer in layers_b}
    anchors = {layer.name for layer in layers_a if layer.name in names_b}

    # The unmatched layers of each side, grouped by the anchor (name-matched layer) before them.
    gaps_a: dict[str | None, list[LayerFacts]] = {}
    gaps_b: dict[str | None, list[LayerFacts]] = {}
    for layers, gaps in ((layers_a, gaps_a), (layers_b, gaps_b)):
        previous: str | None = None
        for layer in layers:
            if layer.name in anchors:
                previous = layer.name
            else:
                gaps.setdefault(previous, []).append(layer)

    entries: list[Entry] = []
    entries += align(gaps_a.get(None, []), gaps_b.get(None, []))
    for layer in layers_a:
        if layer.name in anchors:
            entries.append(pair(layer, by_name_b[layer.name]))
            entries += align(gaps_a.get(layer.name, []), gaps_b.get(layer.name, []))
    return Diff(entries, totals(graph_a), totals(graph_b), graph_a.name, graph_b.name)


def align(side_a: list[LayerFacts], side_b: list[LayerFacts]) -> list[Entry]:
    """Two runs of unmatched layers aligned by structure: equal runs are renamed layers, a
    replaced run pairs layers of the same kind position by position (a renamed layer whose
    attributes changed too), and the rest are removed and added."""
    if not side_a or not side_b:
        return [Entry("removed", a, None) for a in side_a] + [Entry("added", None, b) for b in side_b]
    matcher = difflib.SequenceMatcher(None, [l.structure for l in side_a],
                                      [l.structure for l in side_b], autojunk=False)
    entries: list[Entry] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        olds, news = side_a[i1:i2], side_b[j1:j2]
        if tag == "equal" or (tag == "replace" and len(olds) == len(news)
                              and all(o.kind == n.kind for o, n in zip(olds, news))):
            entries += [pair(o, n) for o, n in zip(olds, news)]
        else:
            entries += [Entry("removed", o, None) for o in olds] + [Entry("added", None, n) for n in news]
    return entries


# ---------------------------------------------------------------- JSON

JSON_SCHEMA = "netspec.diff/1"
FIGURES = ("params", "buffers", "macs", "param_bytes", "activation_bytes", "layers")


def value_json(value: Any) -> Any:
    """A field's value as JSON: an output type as its shape list, as check's `output.shape`."""
    if isinstance(value, TensorType):
        return list(value.shape)
    return value


def layer_json(layer: LayerFacts) -> dict[str, Any]:
    return {"name": layer.name, "kind": layer.kind, "summary": layer.summary,
            "shape": value_json(layer.output) if layer.output is not None else None,
            "params": layer.params, "buffers": layer.buffers, "macs": layer.macs}


def to_json(result: Diff, path_a: str, path_b: str) -> dict[str, Any]:
    """The stable `netspec.diff/1` document (documented in the README)."""
    changed = []
    for entry in result.of("changed"):
        assert entry.a is not None and entry.b is not None
        item: dict[str, Any] = {"name": entry.b.name, "kind": entry.b.kind}
        if entry.renamed:
            item["a_name"], item["b_name"] = entry.a.name, entry.b.name
        item["changes"] = {c.field: [value_json(c.old), value_json(c.new)] for c in entry.changes}
        changed.append(item)
    return {
        "schema": JSON_SCHEMA, "a": path_a, "b": path_b, "ok": True, "same": result.same,
        "networks": [result.name_a, result.name_b],
        "params_delta": result.delta("params"), "buffers_delta": result.delta("buffers"),
        "macs_delta": result.delta("macs"),
        "totals": {"a": {f: getattr(result.totals_a, f) for f in FIGURES},
                   "b": {f: getattr(result.totals_b, f) for f in FIGURES}},
        "added": [layer_json(e.b) for e in result.of("added") if e.b is not None],
        "removed": [layer_json(e.a) for e in result.of("removed") if e.a is not None],
        "changed": changed,
        "unchanged": len(result.of("same")),
    }
