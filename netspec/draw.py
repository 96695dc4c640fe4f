"""Drawing a typed graph: Graphviz DOT, Mermaid, and SVG / PNG / PDF rendered by Graphviz.

    netspec graph specs/resnet18.net -o resnet18.svg --depth 2

One box per layer (its name, its key attributes as `netspec check` summarises them, its
parameter count), graph inputs and outputs as boxes of their own, every edge labelled with the
shape of the tensor it carries, and block instances drawn as nested clusters titled with their
call (`layer1.0: basic(64)`). `depth` folds instances nested deeper than N into one box, as
`netspec check --depth` folds them into one row.

DOT and Mermaid are plain text, written here; SVG, PNG and PDF need Graphviz's `dot` program,
run as a subprocess where it is installed. Files are written atomically (a temporary file
beside the target, then renamed), so a failure leaves no partial file and an existing file
untouched. Only the standard library is imported, and only when a function needs it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netspec.graph import BlockInstance, Graph

TEXT_FORMATS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid"}
RENDERED_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
FORMATS = {**RENDERED_FORMATS, **TEXT_FORMATS}
PNG_DPI = 144
FORMAT_LIST = ".svg, .png, .pdf (with Graphviz), .dot, .gv (Graphviz text) or .mmd (Mermaid)"
INSTALL_HINT = ("install Graphviz with `apt-get install graphviz` (Debian, Ubuntu) or "
                "`brew install graphviz` (macOS); `.dot` and `.mmd` outputs work without it")

# Fill colours: graph inputs, layers with trainable parameters, layers without, folded blocks,
# graph outputs; clusters alternate two greys by nesting level.
_COLORS = {"input": "#dbeafe", "params": "#fef3c7", "layer": "#ffffff", "block": "#ede9fe",
           "output": "#dcfce7"}
_STROKES = {"input": "#1d4ed8", "params": "#b45309", "layer": "#6b7280", "block": "#6d28d9",
            "output": "#15803d"}
_CLUSTER_FILLS = ("#f4f4f5", "#e4e4e7")


# ---------------------------------------------------------------- the drawing, format-free

class _Box:
    """One box: a graph input, a layer, a folded block instance or a graph output."""

    __slots__ = ("key", "kind", "lines", "params")

    def __init__(self, key: str, kind: str, lines: list[str], params: int = 0) -> None:
        self.key = key          # unique among boxes: a layer's name, a folded block's, `output:<name>`
        self.kind = kind        # input | params | layer | block | output
        self.lines = lines      # the label, one entry per line: the name, then the details
        self.params = params    # trainable parameters (a folded block's sum)

    @property
    def label(self) -> list[str]:
        return self.lines + ([_count(self.params)] if self.params > 0 else [])


class _Cluster:
    """A block instance drawn as a cluster (the root: the whole graph), its boxes and clusters
    in the order they first appear."""

    __slots__ = ("instance", "key", "items")

    def __init__(self, instance: "BlockInstance | None", key: str = "") -> None:
        self.instance = instance
        self.key = key
        self.items: list[_Box | _Cluster] = []


class _Edge:
    __slots__ = ("source", "target", "label")

    def __init__(self, source: str, target: str, label: str) -> None:
        self.source, self.target, self.label = source, target, label


def _count(n: int) -> str:
    return f"{n:,} param{'s' if n != 1 else ''}"


def _shape(output) -> str:
    """A tensor's shape as `netspec check` prints it (`?` where inference could not tell)."""
    return str(output) if output is not None else "?"


def _unique(key: str, taken: set[str]) -> str:
    candidate, n = key, 2
    while candidate in taken:
        candidate, n = f"{key} ({n})", n + 1
    taken.add(candidate)
    return candidate


def _layout(graph: "Graph", depth: int | None) -> tuple[_Cluster, list[_Edge]]:
    """The boxes (nested in clusters, in topological order) and the edges of a drawing."""
    if depth is not None and depth < 0:
        raise ValueError("depth must be 0 or more")
    root = _Cluster(None)
    clusters: dict[tuple[int, ...], _Cluster] = {(): root}
    taken = {node.name for node in graph}
    cluster_keys: set[str] = set()
    owner: dict[str, str] = {}              # layer name -> the key of the box that draws it
    folded: dict[int, _Box] = {}            # id(instance) -> its box

    def cluster_of(blocks: tuple) -> _Cluster:
        path = tuple(id(b) for b in blocks)
        found = clusters.get(path)
        if found is None:
            parent = cluster_of(blocks[:-1])
            instance = blocks[-1]
            found = _Cluster(instance, _unique(f"cluster_{instance.name}", cluster_keys))
            parent.items.append(found)
            clusters[path] = found
        return found

    for node in graph:
        blocks = node.blocks
        if depth is not None and len(blocks) > depth:
            instance = blocks[depth]
            box = folded.get(id(instance))
            if box is None:
                box = _Box(_unique(instance.name, taken), "block", [instance.name, instance.call])
                folded[id(instance)] = box
                cluster_of(blocks[:depth]).items.append(box)
            box.params += node.trainable
            owner[node.name] = box.key
            continue
        if node.layer is None:
            lines = [node.name, node.summary or "input", _shape(node.output)]
            kind = "input"
        else:
            lines = [node.name, node.summary or node.kind]
            kind = "params" if node.trainable > 0 else "layer"
        cluster_of(blocks).items.append(_Box(node.name, kind, lines, node.trainable))
        owner[node.name] = node.name

    edges: list[_Edge] = []
    seen: set[tuple[str, str, str]] = set()
    folded_keys = {box.key for box in folded.values()}
    for node in graph:
        for source in node.inputs:
            start, end = owner[source], owner[node.name]
            if start == end:
                continue  # inside one folded block
            edge = _Edge(start, end, _shape(graph.node(source).output))
            if start in folded_keys or end in folded_keys:
                # a folded block reached from one tensor by several of its layers: one edge
                if (start, end, edge.label) in seen:
                    continue
                seen.add((start, end, edge.label))
            edges.append(edge)
    for name, layer in graph.outputs:
        key = _unique(f"output:{name}", taken)
        root.items.append(_Box(key, "output", [name, "output"]))
        edges.append(_Edge(owner[layer], key, _shape(graph.node(layer).output)))
    return root, edges


def _boxes(cluster: _Cluster):
    for item in cluster.items:
        if isinstance(item, _Box):
            yield item
        else:
            yield from _boxes(item)


# ---------------------------------------------------------------- Graphviz DOT

def _dot_id(text: str) -> str:
    """A DOT quoted string: names hold dots (`layer1.0.conv1`), so every ID is quoted."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\n", " "))


def _dot_box_label(box: _Box) -> str:
    """An HTML-like label: the name in bold, then the summary, then the parameters in grey."""
    first, *rest = box.lines
    parts = [f"<B>{_html(first)}</B>", *map(_html, rest)]
    if box.params > 0:
        parts.append(f'<FONT POINT-SIZE="9" COLOR="#52525b">{_count(box.params)}</FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def to_dot(graph: "Graph", depth: int | None = None) -> str:
    """The graph as Graphviz DOT text: inputs, layers and outputs as boxes in topological order,
    block instances as nested `cluster_` subgraphs, edges labelled with the tensor's shape.
    `depth` folds block instances nested deeper than it into one box."""
    root, edges = _layout(graph, depth)
    out = [
        f"digraph {_dot_id(graph.name)} {{",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.3];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
        'fillcolor="#ffffff", color="#6b7280"];',
        '  edge [fontname="Helvetica", fontsize=8, color="#4b5563", fontcolor="#374151"];',
    ]

    def emit(cluster: _Cluster, level: int) -> None:
        pad = "  " * (level + 1)
        for item in cluster.items:
            if isinstance(item, _Cluster):
                instance = item.instance
                out.append(f"{pad}subgraph {_dot_id(item.key)} {{")
                out.append(f"{pad}  label={_dot_id(f'{instance.name}: {instance.call}')}; "
                           f'labeljust=l; style="rounded,filled"; '
                           f'fillcolor="{_CLUSTER_FILLS[level % 2]}"; color="#a1a1aa";')
                emit(item, level + 1)
                out.append(f"{pad}}}")
                continue
            attributes = [f"label={_dot_box_label(item)}"]
            if item.kind == "input":
                attributes.append('shape=box, style="filled,bold"')
            elif item.kind == "output":
                attributes.append('shape=oval, style="filled,bold"')
            elif item.kind == "block":
                attributes.append('shape=box, style="filled", peripheries=2')
            if item.kind != "layer":
                attributes.append(f'fillcolor="{_COLORS[item.kind]}", color="{_STROKES[item.kind]}"')
            out.append(f"{pad}{_dot_id(item.key)} [{', '.join(attributes)}];")

    emit(root, 0)
    for edge in edges:
        out.append(f"  {_dot_id(edge.source)} -> {_dot_id(edge.target)} "
                   f"[label={_dot_id(edge.label)}];")
    out.append("}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- Mermaid

def _mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: entity codes for the characters Mermaid would read."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text


def to_mermaid(graph: "Graph", depth: int | None = None) -> str:
    """The graph as a Mermaid flowchart (top to bottom): block instances as subgraphs, edges
    labelled with shapes. Node IDs are the layer names made safe (`n_layer1_0_conv1`)."""
    import re

    root, edges = _layout(graph, depth)
    ids: dict[str, str] = {}
    taken: set[str] = set()

    def safe(key: str, prefix: str) -> str:
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", key)
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        return candidate

    prefixes = {"input": "i_", "output": "o_", "block": "b_", "params": "n_", "layer": "n_"}
    for box in _boxes(root):
        key = box.key[len("output:"):] if box.kind == "output" else box.key
        ids[box.key] = safe(key, prefixes[box.kind])
    shapes = {"input": ('(["', '"])'), "output": ('(["', '"])'), "block": ('[["', '"]]'),
              "params": ('["', '"]'), "layer": ('["', '"]')}
    out = ["flowchart TD"]

    def emit(cluster: _Cluster, level: int) -> None:
        pad = "  " * (level + 1)
        for item in cluster.items:
            if isinstance(item, _Cluster):
                instance = item.instance
                title = _mermaid_text(f"{instance.name}: {instance.call}")
                out.append(f'{pad}subgraph {safe(instance.name, "c_")} ["{title}"]')
                emit(item, level + 1)
                out.append(f"{pad}end")
                continue
            opening, closing = shapes[item.kind]
            label = "<br/>".join(_mermaid_text(line) for line in item.label)
            out.append(f"{pad}{ids[item.key]}{opening}{label}{closing}:::{item.kind}")

    emit(root, 0)
    for edge in edges:
        out.append(f'  {ids[edge.source]} -->|"{_mermaid_text(edge.label)}"| {ids[edge.target]}')
    for kind in ("input", "params", "layer", "block", "output"):
        out.append(f"  classDef {kind} fill:{_COLORS[kind]},stroke:{_STROKES[kind]},color:#111827")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- files

def _error(message: str, hint: str | None = None):
    from netspec.diagnostics import Diagnostic, NetspecError

    error = NetspecError([Diagnostic(message, hint=hint)])
    if hint:  # str(error) carries the hint too, for callers of the Python API
        error.args = (f"{message} ({hint})",)
    return error


def graph_format(path: "str | os.PathLike[str]") -> str:
    """The format a file name asks for: dot, mermaid, svg, png or pdf (by its suffix)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in FORMATS:
        shown = f"`{suffix}`" if suffix else "no suffix"
        raise _error(f"cannot draw to `{os.fspath(path)}`: unknown format ({shown})",
                     hint=f"name the file with one of {FORMAT_LIST}")
    return FORMATS[suffix]


def find_dot(path: "str | os.PathLike[str] | None" = None) -> str:
    """The path of Graphviz's `dot` program, or a NetspecError saying how to install it."""
    import shutil

    dot = shutil.which("dot")
    if dot is None:
        if path is None:
            needs = "SVG, PNG and PDF output need it"
        else:
            fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").upper() or "this output"
            needs = f"writing `{os.fspath(path)}` as {fmt} needs it"
        raise _error(f"Graphviz is not installed (no `dot` program on PATH); {needs}",
                     hint=INSTALL_HINT)
    return dot


def write_graph(graph: "Graph", path: "str | os.PathLike[str]", depth: int | None = None):
    """Draw `graph` into `path`, in the format its suffix names: `.dot`/`.gv` (DOT text) and
    `.mmd` (Mermaid text) are written directly; `.svg`, `.png` and `.pdf` are rendered by
    Graphviz's `dot`, and raise a NetspecError saying how to install it where it is missing.
    The file is written atomically. Returns the path written."""
    from pathlib import Path

    from netspec.files import write_atomically

    path = Path(path)
    fmt = graph_format(path)
    if fmt in ("dot", "mermaid"):
        data = (to_dot(graph, depth) if fmt == "dot" else to_mermaid(graph, depth)).encode("utf-8")
        write_atomically(path, lambda staged: staged.write_bytes(data))
        return path
    dot = find_dot(path)
    source = to_dot(graph, depth).encode("utf-8")

    def render(staged) -> None:
        import subprocess

        command = [dot, f"-T{fmt}", "-o", str(staged)]
        if fmt == "png":
            command.append(f"-Gdpi={PNG_DPI}")  # sharper than Graphviz's 96 on today's screens
        result = subprocess.run(command, input=source, capture_output=True)
        if result.returncode != 0 or not staged.is_file():
            reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise _error(f"cannot render `{path}`: Graphviz `dot -T{fmt}` failed"
                         + (f": {reason[-1]}" if reason else f" (exit status {result.returncode})"),
                         hint="the `.dot` output shows the text it was given")

    write_atomically(path, render)
    return path
