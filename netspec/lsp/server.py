"""`netspec lsp`: a Language Server Protocol server over stdio (pygls, lsprotocol).

Diagnostics on open and change (debounced; a result older than the document's latest check is
dropped, never published over a newer one), hover (output shape, parameters, MACs, the
`--explain` arithmetic), inlay hints (the shape after each chain stage), go to definition,
document symbols, completion, quick fixes for "did you mean" hints. Every check compiles the editor's text: the document's own, and
that of every open file it `use`s; a change to a used file re-checks the documents that use it.

A handler that fails logs the error to the client (window/logMessage) and answers nothing: a
bad input never stops the server.

Settings (initializationOptions, or workspace/didChangeConfiguration under `netspec`):
`inlayHints` (true, or {"enabled": false} / false to turn them off) and `debounce` (the
milliseconds a change waits for the next one before it is checked; 150 by default).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from netspec.diagnostics import Diagnostic, Span
from netspec.lsp.analysis import Analysis, analyze, completions

__all__ = ["NetspecServer", "build", "quiet_logging"]

DEFAULT_DEBOUNCE_MS = 150
PARSED_CACHE_LIMIT = 64

log = logging.getLogger(__name__)


def _path_of(uri: str) -> str:
    path = to_fs_path(uri)
    return os.path.normpath(path) if path else uri


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


class NetspecServer(LanguageServer):
    def __init__(self) -> None:
        from netspec import __version__

        super().__init__("netspec", __version__)
        self.debounce = DEFAULT_DEBOUNCE_MS / 1000
        self.inlay_hints_enabled = True
        self.analyses: dict[str, Analysis] = {}      # uri -> the latest published analysis
        self.last_parsed: dict[str, Analysis] = {}   # uri -> the latest one whose text parsed
        self.generation: dict[str, int] = {}         # uri -> the latest check asked for
        self.pending: dict[str, asyncio.Task] = {}
        self.parsed: dict = {}                        # parsed `use`d files, by (name, text)
        self.published: dict[str, list] = {}          # uri -> the diagnostics last sent
        # one check at a time: compiling pauses the garbage collector process-wide
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netspec-check")
        self.timings: list[float] = []                # seconds from a change to its diagnostics

    # ------------------------------------------------------------ settings

    def configure(self, options: Any) -> None:
        if not isinstance(options, dict):
            return
        if "netspec" in options and isinstance(options["netspec"], dict):
            options = options["netspec"]
        hints = options.get("inlayHints", options.get("inlay_hints"))
        if isinstance(hints, dict):
            hints = hints.get("enabled")
        if isinstance(hints, bool):
            self.inlay_hints_enabled = hints
        debounce = options.get("debounce", options.get("debounceMs"))
        if isinstance(debounce, (int, float)) and not isinstance(debounce, bool) and debounce >= 0:
            self.debounce = debounce / 1000

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A message the server could not read or answer: logged (pygls would show a pop-up)."""
        self.log(f"netspec lsp: {source.__name__ if isinstance(source, type) else source}: "
                 f"{type(error).__name__}: {error}", types.MessageType.Error)

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        try:
            self.window_log_message(types.LogMessageParams(type=kind, message=message))
        except Exception:  # no client to tell: stderr
            log.error(message)

    # ------------------------------------------------------------ checking

    def reader(self) -> Callable[[Path], str | None]:
        """The texts of the open documents, by path, as of now (checks run in another thread)."""
        texts = {}
        for uri, document in list(self.workspace.text_documents.items()):
            texts[_key(_path_of(uri))] = document.source
        return lambda file: texts.get(_key(str(file)))

    def schedule(self, uri: str, delay: float | None = None, changed_at: float | None = None) -> None:
        self.generation[uri] = self.generation.get(uri, 0) + 1
        previous = self.pending.pop(uri, None)
        if previous is not None and not previous.done():
            previous.cancel()
        self.pending[uri] = asyncio.ensure_future(
            self._check(uri, self.generation[uri], self.debounce if delay is None else delay,
                        changed_at if changed_at is not None else time.perf_counter()))

    async def _check(self, uri: str, generation: int, delay: float, changed_at: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            if uri not in self.workspace.text_documents or self.generation.get(uri) != generation:
                return
            document = self.workspace.get_text_document(uri)
            text, version, path = document.source, document.version, _path_of(uri)
            if len(self.parsed) > PARSED_CACHE_LIMIT:
                self.parsed.clear()
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            analysis = await loop.run_in_executor(
                self.executor, functools.partial(analyze, path, text, version, self.reader(), self.parsed))
            # a newer check was asked for meanwhile (another change, a used file edited): this
            # result is stale and must not overwrite what that one publishes
            if self.generation.get(uri) != generation or uri not in self.workspace.text_documents:
                return
            self.analyses[uri] = analysis
            if analysis.module is not None:
                self.last_parsed[uri] = analysis
            self.publish(uri, analysis)
            done = time.perf_counter()
            self.timings = self.timings[-999:] + [done - changed_at]
            self.log(f"checked {Path(path).name} (version {version}) in {(done - started) * 1000:.1f} ms")
            # the open files this one uses show what this check found in them
            for other, known in list(self.analyses.items()):
                if other != uri and any(_key(d) == _key(known.path) for d in analysis.depends):
                    self.publish(other, known)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in netspec: logged, the server carries on
            self.log(_failure(f"checking {uri}", exc), types.MessageType.Error)

    def dependents_of(self, path: str) -> list[str]:
        """Open documents whose last check read `path` (through `use`)."""
        key = _key(path)
        return [uri for uri, analysis in self.analyses.items()
                if any(_key(d) == key for d in analysis.depends)]

    def recheck_dependents(self, path: str, changed_at: float | None = None) -> None:
        for uri in self.dependents_of(path):
            if uri in self.workspace.text_documents:
                self.schedule(uri, changed_at=changed_at)

    # ------------------------------------------------------------ diagnostics

    def publish(self, uri: str, analysis: Analysis) -> None:
        path = analysis.path
        items = [self.to_lsp(d, analysis, path) for d in self._diagnostics_for(analysis)]
        # errors other open documents found in this file (a library's blocks, checked as an
        # importer instantiates them)
        seen = {(d.message, d.range.start.line, d.range.start.character) for d in items}
        for other_uri, other in self.analyses.items():
            if other_uri == uri or not any(_key(d) == _key(path) for d in other.depends):
                continue
            for d in other.compilation.diagnostics.items:
                if d.span is not None and _key(d.span.file) == _key(path):
                    converted = self.to_lsp(d, other, path)
                    mark = (converted.message, converted.range.start.line, converted.range.start.character)
                    if mark not in seen:
                        seen.add(mark)
                        items.append(converted)
        self.published[uri] = items
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=items, version=analysis.version))

    @staticmethod
    def _diagnostics_for(analysis: Analysis) -> list[Diagnostic]:
        from netspec import syntax as S

        items = analysis.compilation.diagnostics.items
        module = analysis.module
        # a library (blocks and `use`s only) is no network: it needs no input and no output
        if module is not None and all(isinstance(s, (S.BlockDef, S.Use)) for s in module.statements):
            items = [d for d in items if not d.message.startswith(("the network has no input",
                                                                    "the network has no output"))]
        return items

    def position(self, analysis: Analysis, file: str, line: int, column: int) -> types.Position:
        """netspec's (line, column) from 1, in characters, as the client counts."""
        text = analysis.compilation.diagnostics.sources.line(file, line)
        if text is None and _key(file) == _key(analysis.path):
            lines = analysis.text.split("\n")
            text = lines[line - 1] if 0 < line <= len(lines) else ""
        text = text or ""
        character = max(0, column - 1)
        if character and not text.isascii():
            character = self.workspace.position_codec.client_num_units(text[:character])
        return types.Position(line=max(0, line - 1), character=character)

    def range(self, analysis: Analysis, span: Span) -> types.Range:
        return types.Range(start=self.position(analysis, span.file, span.line, span.column),
                           end=self.position(analysis, span.file, span.end_line, span.end_column))

    def location(self, analysis: Analysis, span: Span) -> types.Location:
        return types.Location(uri=from_fs_path(os.path.abspath(span.file)) or span.file,
                              range=self.range(analysis, span))

    def to_lsp(self, d: Diagnostic, analysis: Analysis, path: str) -> types.Diagnostic:
        related = []
        span = d.span
        if span is not None and _key(span.file) != _key(path):
            # the mistake is in another file: shown where this document leads to it (the
            # `use`, a block's call site), with the place itself as related information
            related.append(types.DiagnosticRelatedInformation(self.location(analysis, span), d.label or d.message))
            here = [label.span for label in d.labels if _key(label.span.file) == _key(path)]
            here += [instance.span for instance in d.chain if _key(instance.span.file) == _key(path)]
            span = here[0] if here else None
        for label in d.labels:
            related.append(types.DiagnosticRelatedInformation(self.location(analysis, label.span),
                                                              label.message or "here"))
        for instance in d.chain:
            related.append(types.DiagnosticRelatedInformation(
                self.location(analysis, instance.span), f"in `{instance.name}` = `{instance.call}`"))
        message = d.message + (f" ({d.label})" if d.label else "")
        extra = [f"note: {n}" for n in d.notes]
        if d.layer:
            extra.append(f"layer: {d.layer}")
        if d.rule:
            extra.append(f"rule: {d.rule}")
        if d.hint:
            extra.append(f"hint: {d.hint}")
        if extra:
            message += "\n" + "\n".join(extra)
        where = self.range(analysis, span) if span is not None else types.Range(
            start=types.Position(line=0, character=0), end=types.Position(line=0, character=1))
        return types.Diagnostic(
            range=where, message=message, source="netspec",
            severity=types.DiagnosticSeverity.Warning if d.severity == "warning" else types.DiagnosticSeverity.Error,
            related_information=related or None)

    # ------------------------------------------------------------ the document at a position

    def current(self, uri: str) -> Analysis | None:
        """The latest analysis of the document (checked synchronously when there is none yet)."""
        analysis = self.analyses.get(uri)
        if analysis is None and uri in self.workspace.text_documents:
            document = self.workspace.get_text_document(uri)
            analysis = analyze(_path_of(uri), document.source, document.version, self.reader(), self.parsed)
            self.analyses[uri] = analysis
            if analysis.module is not None:
                self.last_parsed[uri] = analysis
        return analysis

    def markup(self, text: str, where: str) -> types.MarkupContent:
        """Markdown where the client renders it (`where`: hover or completion), else plain text."""
        document = self.client_capabilities.text_document
        formats = None
        if document is not None and where == "hover" and document.hover is not None:
            formats = document.hover.content_format
        elif document is not None and where == "completion" and document.completion is not None \
                and document.completion.completion_item is not None:
            formats = document.completion.completion_item.documentation_format
        if formats and types.MarkupKind.Markdown in formats:
            return types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
        return types.MarkupContent(kind=types.MarkupKind.PlainText, value=text.replace("**", "").replace("`", ""))

    def view(self, uri: str) -> Analysis | None:
        """The analysis to answer questions about positions with. A library (blocks only) has
        no graph of its own: its shapes are those of an open document that uses it and was
        checked with its current text, seen from this file."""
        analysis = self.current(uri)
        if analysis is None or analysis.module is None or analysis.graph is None:
            return analysis
        if any(_key(span.file) == _key(analysis.path) for span in analysis.by_span):
            return analysis
        for other in list(self.analyses.values()):
            if other is analysis or other.graph is None:
                continue
            name = next((n for n in other.compilation.modules if _key(n) == _key(analysis.path)), None)
            if name is None:
                continue
            texts = getattr(other.compilation.diagnostics.sources, "_text", {})
            if texts.get(name) == analysis.text:
                return Analysis(name, analysis.text, other.compilation, analysis.version)
        return analysis

    def netspec_position(self, uri: str, position: types.Position) -> tuple[int, int]:
        document = self.workspace.get_text_document(uri)
        server = document.position_from_client_units(position)
        return server.line + 1, server.character + 1


_DID_YOU_MEAN = re.compile(r"did you mean `([A-Za-z_][A-Za-z0-9_]*)`\?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quick_fix(lines, diagnostic: types.Diagnostic) -> tuple[types.Range, str] | None:
    """(range of the misspelt name, the name meant) for a diagnostic that suggests one."""
    found = _DID_YOU_MEAN.search(diagnostic.message)
    start = diagnostic.range.start
    if found is None or not 0 <= start.line < len(lines):
        return None
    line = lines[start.line]
    word = _WORD.match(line, start.character) if start.character <= len(line) else None
    # the positions are the client's units: the name is ASCII, as is what precedes it, or the
    # fix is not offered
    if word is None or not line[:word.end()].isascii() or word.group() == found.group(1):
        return None
    return (types.Range(start=start, end=types.Position(line=start.line, character=word.end())),
            found.group(1))


def _warm_up() -> None:
    try:
        analyze("<warm-up>.net", "input x: f32[N, 3, 8, 8]\ny = x -> conv(8, 3) -> relu\noutput y\n")
    except Exception:  # only a head start: the first real check reports what is wrong
        pass


def _failure(what: str, exc: BaseException) -> str:
    """One line about a failure inside the server (a bug in netspec), with the traceback only
    when NETSPEC_DEBUG is set, as the command line does."""
    line = f"netspec: internal error in {what}: {type(exc).__name__}: {exc}"
    if os.environ.get("NETSPEC_DEBUG"):
        return line + "\n" + "".join(traceback.format_exception(exc))
    return line + " (a bug in netspec; set NETSPEC_DEBUG=1 for the traceback, and report it)"


class _OneLine(logging.Formatter):
    """pygls logs a message it cannot read with its traceback: one line is enough on stderr."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.exc_info and not os.environ.get("NETSPEC_DEBUG"):
            error = record.exc_info[1]
            text += f": {type(error).__name__}: {error}"
        return text

    def formatException(self, exc_info) -> str:
        return super().formatException(exc_info) if os.environ.get("NETSPEC_DEBUG") else ""


def quiet_logging() -> None:
    """pygls's log on stderr (what an editor shows in its output panel) without tracebacks."""
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine("%(name)s: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def guarded(server: NetspecServer):
    """A handler that fails logs why and answers nothing (None) instead."""
    def wrap(handler):
        @functools.wraps(handler)
        def run(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except Exception as exc:
                server.log(_failure(handler.__name__, exc), types.MessageType.Error)
                return None
        return run
    return wrap


SYMBOL_KINDS = {
    "network": types.SymbolKind.Module, "input": types.SymbolKind.Variable,
    "binding": types.SymbolKind.Variable, "output": types.SymbolKind.Event,
    "block": types.SymbolKind.Function, "param": types.SymbolKind.TypeParameter,
    "use": types.SymbolKind.File,
}
COMPLETION_KINDS = {
    "layer": types.CompletionItemKind.Function, "block": types.CompletionItemKind.Module,
    "attribute": types.CompletionItemKind.Property, "variable": types.CompletionItemKind.Variable,
    "param": types.CompletionItemKind.TypeParameter, "value": types.CompletionItemKind.Value,
    "function": types.CompletionItemKind.Function,
}


def build() -> NetspecServer:
    server = NetspecServer()
    safe = guarded(server)

    @server.feature(types.INITIALIZE)
    @safe
    def initialize(ls: NetspecServer, params: types.InitializeParams):
        ls.configure(params.initialization_options)

    @server.feature(types.INITIALIZED)
    @safe
    def initialized(ls: NetspecServer, params: types.InitializedParams):
        # warm up while the editor opens its files: the layer classes, the grammar's tables
        ls.executor.submit(_warm_up)
        # watch the .net files on disk where the client lets the server ask for it (VS Code's
        # extension asks through its own options): a `use`d file changed outside the editor
        workspace = ls.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace is not None else None
        if watched is not None and watched.dynamic_registration:
            ls.client_register_capability(types.RegistrationParams(registrations=[types.Registration(
                id="netspec-watch", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(
                    watchers=[types.FileSystemWatcher(glob_pattern="**/*.net")]))]))

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @safe
    def did_change_configuration(ls: NetspecServer, params: types.DidChangeConfigurationParams):
        before = ls.inlay_hints_enabled
        ls.configure(params.settings)
        capabilities = ls.client_capabilities.workspace
        if before != ls.inlay_hints_enabled and capabilities is not None and capabilities.inlay_hint is not None \
                and capabilities.inlay_hint.refresh_support:
            ls.workspace_inlay_hint_refresh(None)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @safe
    def did_open(ls: NetspecServer, params: types.DidOpenTextDocumentParams):
        ls.schedule(params.text_document.uri, delay=0)
        ls.recheck_dependents(_path_of(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @safe
    def did_change(ls: NetspecServer, params: types.DidChangeTextDocumentParams):
        now = time.perf_counter()
        ls.schedule(params.text_document.uri, changed_at=now)
        ls.recheck_dependents(_path_of(params.text_document.uri), changed_at=now)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @safe
    def did_save(ls: NetspecServer, params: types.DidSaveTextDocumentParams):
        ls.schedule(params.text_document.uri, delay=0)
        ls.recheck_dependents(_path_of(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @safe
    def did_close(ls: NetspecServer, params: types.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        ls.generation[uri] = ls.generation.get(uri, 0) + 1
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        closed = ls.analyses.pop(uri, None)
        ls.last_parsed.pop(uri, None)
        if closed is not None:  # the open files it used no longer show what it found in them
            for other, known in list(ls.analyses.items()):
                if any(_key(d) == _key(known.path) for d in closed.depends):
                    ls.publish(other, known)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        # its importers now read it from disk
        ls.recheck_dependents(_path_of(uri))

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @safe
    def did_change_watched_files(ls: NetspecServer, params: types.DidChangeWatchedFilesParams):
        for change in params.changes:
            ls.recheck_dependents(_path_of(change.uri))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @safe
    def hover(ls: NetspecServer, params: types.HoverParams):
        analysis = ls.view(params.text_document.uri)
        if analysis is None:
            return None
        line, column = ls.netspec_position(params.text_document.uri, params.position)
        found = analysis.hover(line, column)
        if found is None:
            return None
        text, span = found
        return types.Hover(contents=ls.markup(text, "hover"),
                           range=ls.range(analysis, span))

    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
    @safe
    def inlay_hint(ls: NetspecServer, params: types.InlayHintParams):
        if not ls.inlay_hints_enabled:
            return []
        analysis = ls.view(params.text_document.uri)
        if analysis is None:
            return []
        first, last = params.range.start.line + 1, params.range.end.line + 1
        return [types.InlayHint(position=ls.position(analysis, analysis.path, line, column), label=label,
                                kind=types.InlayHintKind.Type, padding_left=True)
                for line, column, label in analysis.inlay_hints(first, last)]

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @safe
    def definition(ls: NetspecServer, params: types.DefinitionParams):
        analysis = ls.current(params.text_document.uri)
        if analysis is None:
            return None
        line, column = ls.netspec_position(params.text_document.uri, params.position)
        span = analysis.definition(line, column)
        return ls.location(analysis, span) if span is not None else None

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @safe
    def document_symbol(ls: NetspecServer, params: types.DocumentSymbolParams):
        analysis = ls.current(params.text_document.uri)
        if analysis is None or analysis.module is None:
            analysis = ls.last_parsed.get(params.text_document.uri)
        if analysis is None:
            return []

        def convert(symbol) -> types.DocumentSymbol:
            return types.DocumentSymbol(
                name=symbol.name, kind=SYMBOL_KINDS[symbol.kind], detail=symbol.detail or None,
                range=ls.range(analysis, symbol.span), selection_range=ls.range(analysis, symbol.selection),
                children=[convert(c) for c in symbol.children] or None)
        return [convert(s) for s in analysis.symbols()]

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=["(", ",", "=", ">"]))
    @safe
    def completion(ls: NetspecServer, params: types.CompletionParams):
        uri = params.text_document.uri
        document = ls.workspace.get_text_document(uri)
        line, column = ls.netspec_position(uri, params.position)
        analysis = ls.analyses.get(uri)
        if analysis is None or analysis.module is None:
            analysis = ls.last_parsed.get(uri) or analysis
        items = []
        for item in completions(document.source, line, column, analysis):
            items.append(types.CompletionItem(
                label=item.label, kind=COMPLETION_KINDS.get(item.kind), detail=item.detail or None,
                documentation=ls.markup(item.documentation, "completion") if item.documentation else None,
                insert_text=item.insert_text, sort_text=item.sort + item.label))
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    @safe
    def code_action(ls: NetspecServer, params: types.CodeActionParams):
        """Quick fixes: a diagnostic whose hint is `did you mean `name`?` replaces the misspelt
        name it starts at (an attribute, a layer, a binding) with that one."""
        uri = params.text_document.uri
        document = ls.workspace.get_text_document(uri)
        actions = []
        for diagnostic in params.context.diagnostics:
            if diagnostic.source != "netspec":
                continue
            fix = quick_fix(document.lines, diagnostic)
            if fix is None:
                continue
            edit_range, new = fix
            actions.append(types.CodeAction(
                title=f"Replace with `{new}`", kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                is_preferred=True,
                edit=types.WorkspaceEdit(changes={uri: [types.TextEdit(range=edit_range, new_text=new)]})))
        return actions

    @server.feature(types.SHUTDOWN)
    @safe
    def shutdown(ls: NetspecServer, params: Any):
        for task in ls.pending.values():
            task.cancel()
        ls.executor.shutdown(wait=False, cancel_futures=True)

    return server

