"""The front half of the pipeline in one call: read, parse, elaborate, infer.

    text --parse--> AST --elaborate--> Graph --infer--> typed Graph
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netspec.diagnostics import Diagnostics, NetspecError, Sources, Span, read_source
from netspec.graph import Graph
from netspec import syntax as S


@dataclass
class Compilation:
    graph: Graph | None
    diagnostics: Diagnostics
    path: str

    @property
    def ok(self) -> bool:
        return self.graph is not None and not self.diagnostics.has_errors()


def compile_file(path: str | Path, params: dict[str, Any] | None = None,
                 inputs: dict[str, list] | None = None, text: str | None = None) -> Compilation:
    """Compile one spec. Errors in the spec are collected in the result's diagnostics; a bad
    `params` or `inputs` name raises netspec.elaborate.UsageError."""
    from netspec.elaborate import elaborate
    from netspec.infer import infer
    from netspec.parser import parse

    sources = Sources()
    diagnostics = Diagnostics(sources)
    name = str(path)

    def load(file: Path, span: Span | None) -> S.Module:
        source = read_source(file, sources, span)
        return parse(source, str(file))

    try:
        if text is None:
            module = load(Path(path), None)
        else:
            sources.add(name, text)
            module = parse(text, name)
    except NetspecError as exc:
        diagnostics.extend(exc.diagnostics)
        return Compilation(None, diagnostics, name)
    graph = elaborate(module, diagnostics, load, params, inputs)
    infer(graph, diagnostics)
    return Compilation(graph, diagnostics, name)
