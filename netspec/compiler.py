"""The front half of the pipeline in one call: read, parse, elaborate, infer.

    text --parse--> AST --elaborate--> Graph --infer--> typed Graph
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from netspec.diagnostics import (Diagnostics, NetspecError, Sources, Span, normalize_newlines,
                                 read_source)
from netspec.elaborate import OverrideError
from netspec.graph import Graph
from netspec import syntax as S

__all__ = ["Compilation", "OverrideError", "compile_file"]


@dataclass
class Compilation:
    graph: Graph | None
    diagnostics: Diagnostics
    path: str
    # every file parsed, by name as spans give it (the spec's own first, then its `use`s): for
    # tools that map positions back to the syntax (netspec.lsp)
    modules: dict[str, S.Module] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.graph is not None and not self.diagnostics.has_errors()


# A reader of imported files: the text of a file (netspec.lsp: an editor's unsaved buffer), or
# None to read it from disk; `parsed` a cache of parsed imports keyed by (name, text).
Reader = Callable[[Path], "str | None"]


def compile_file(path: str | Path, params: dict[str, Any] | None = None,
                 inputs: dict[str, list] | None = None, text: str | None = None,
                 reader: Reader | None = None, parsed: dict | None = None) -> Compilation:
    """Compile one spec. Errors in the spec are collected in the result's diagnostics; a bad
    `params` or `inputs` name (or an input shape of the wrong rank) raises OverrideError.
    `text` is the spec's text (else it is read from `path`); `reader(file)` may give the text
    of an imported file (None: read it from disk), and `parsed`, a dict kept between calls,
    caches the syntax of imported files by name and text."""
    return _on_a_deep_stack(lambda: _compile(path, params, inputs, text, reader, parsed))


def _compile(path: str | Path, params: dict[str, Any] | None, inputs: dict[str, list] | None,
             text: str | None, reader: Reader | None = None, parsed: dict | None = None) -> Compilation:
    from netspec.causes import explain
    from netspec.elaborate import elaborate
    from netspec.infer import infer
    from netspec.parser import parse

    sources = Sources()
    diagnostics = Diagnostics(sources)
    name = str(path)
    modules: dict[str, S.Module] = {}

    def load(file: Path, span: Span | None) -> S.Module:
        given = reader(file) if reader is not None else None
        if given is not None:
            source = normalize_newlines(given)
            sources.add(str(file), source)
        else:
            source = read_source(file, sources, span)
        if parsed is None:
            module = parse(source, str(file))
        else:
            key = (str(file), source)
            module = parsed.get(key)
            if module is None:
                module = parsed[key] = parse(source, str(file))
        modules.setdefault(str(file), module)
        return module

    with _deep_recursion(), _collector_paused():
        try:
            if text is None:
                module = load(Path(path), None)
            else:
                text = normalize_newlines(text)
                sources.add(name, text)
                module = parse(text, name)
                modules[name] = module
        except NetspecError as exc:
            diagnostics.extend(exc.diagnostics)
            return Compilation(None, diagnostics, name, modules)
        except RecursionError:
            return _too_deep(diagnostics, name)
        try:
            graph = elaborate(module, diagnostics, load, params, inputs)
        except RecursionError:
            return _too_deep(diagnostics, name)
        failures = infer(graph, diagnostics)
        explain(graph, failures, diagnostics)
        diagnostics.coalesce()
    return Compilation(graph, diagnostics, name, modules)


# Elaboration recurses over the nesting of expressions and blocks (not over a spec's length).
# Python-to-Python calls use no C stack in CPython 3.11+, but a level that passes through C
# (a generator expression inside sum() or tuple()) does, some kilobytes each: the work runs in
# a thread whose stack has room for the whole recursion limit, so deep nesting ends in a
# RecursionError, reported as an error in the spec, never in a crash of the interpreter.
RECURSION_LIMIT = 100_000
STACK_BYTES = 1024 * 1024 * 1024  # address space, reserved; only the pages used are memory


def _on_a_deep_stack(work):
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    previous = threading.stack_size(STACK_BYTES)
    try:
        thread = threading.Thread(target=run, name="netspec-compile")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextmanager
def _deep_recursion():
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@contextmanager
def _collector_paused():
    """Compiling creates many objects and frees few, so CPython's cyclic garbage collector
    would walk the ever larger heap again and again for nothing: 40% of a 10,000-layer check,
    and a per-layer cost that grew with the spec. It is paused while compiling (process-wide;
    whoever paused it turns it back on) and runs on its usual schedule afterwards. (An earlier
    attempt was withdrawn for crashes in the mutation fuzzer's workers; their cause was the
    workers being forks of the pytest process, which freed its onnxruntime sessions.)"""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _too_deep(diagnostics: Diagnostics, name: str) -> Compilation:
    diagnostics.error("the spec nests too deeply for netspec to follow", Span(name, 1, 1, 1, 2),
                      rule=f"nesting fits netspec's recursion limit ({RECURSION_LIMIT:,} calls: "
                           "thousands of levels, depending on the construct)",
                      hint="split the deepest expression into several bindings")
    return Compilation(None, diagnostics, name)
