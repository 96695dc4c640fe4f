"""`netspec lsp` driven by a real LSP client over stdio (pytest-lsp starts `python -m netspec
lsp` in a subprocess): diagnostics, hover, inlay hints, definition, symbols, completion, `use`d
files edited in the editor, settings, and bad input that must not stop the server.

One server serves the whole module; each test opens its own documents in its own folder.
Nothing sleeps for a fixed time: tests wait for the notifications they expect.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, make_test_lsp_client  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20.0

LIB = """\
# a library of blocks
block unit(x, planes, stride = 1) {
    y = x -> conv(planes, 3, stride=stride, padding=1) -> relu
    return y
}
"""

GOOD = """\
network small(classes = 10)

use "lib.net"

input image: f32[N, 3, 32, 32]

features = image -> c1: conv(16, kernel=3, padding=1) -> relu -> maxpool(2)
    -> unit(32, stride=2)
pooled = features -> adaptive_avgpool(1) -> flatten
logits = pooled -> linear(classes)

output logits
"""

# line 7 (from 1): a misspelt attribute; line 10: a linear that does not exist
BAD = GOOD.replace("conv(16, kernel=3, padding=1)", "conv(16, kernal=3, padding=1)") \
          .replace("linear(classes)", "lineer(classes)")


def make_client() -> LanguageClient:
    """pytest-lsp's client, keeping every publishDiagnostics in order (`client.published`), so
    a test waits for one without missing it and sees the versions they were for."""
    client = make_test_lsp_client()
    client.published = []
    handle = client.protocol._handle_notification

    def record(method, params):
        if method == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS:
            client.published.append(params)
        return handle(method, params)

    client.protocol._handle_notification = record
    return client


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "netspec", "lsp"], client_factory=make_client))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
                completion=types.CompletionClientCapabilities(
                    completion_item=types.ClientCompletionItemOptions(
                        documentation_format=[types.MarkupKind.Markdown])),
                publish_diagnostics=types.PublishDiagnosticsClientCapabilities(
                    related_information=True, version_support=True),
                inlay_hint=types.InlayHintClientCapabilities(),
                document_symbol=types.DocumentSymbolClientCapabilities(
                    hierarchical_document_symbol_support=True)),
            workspace=types.WorkspaceClientCapabilities(configuration=False)),
        root_uri=ROOT.as_uri(),
        initialization_options={"debounce": 20}))
    yield
    await lsp_client.shutdown_session()


async def wait_published(client: LanguageClient, uri: str, mark: int,
                         until=lambda p: True) -> types.PublishDiagnosticsParams:
    """The first diagnostics published for `uri` after the `mark`-th publication that satisfy
    `until` (given the PublishDiagnosticsParams)."""
    async def wait() -> types.PublishDiagnosticsParams:
        seen = mark
        while True:
            future = client.protocol.wait_for_notification_async(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
            while seen < len(client.published):
                params = client.published[seen]
                seen += 1
                if params.uri == uri and until(params):
                    return params
            await future
    return await asyncio.wait_for(wait(), TIMEOUT)


async def wait_diagnostics(client: LanguageClient, uri: str, until=lambda d: True,
                           mark: int | None = None) -> list[types.Diagnostic]:
    """The document's diagnostics, from the first publication (after `mark`, by default the
    last open or change) that satisfies `until` (given the list of diagnostics)."""
    mark = client.marks.get(uri, 0) if mark is None else mark
    params = await wait_published(client, uri, mark, lambda p: until(list(p.diagnostics)))
    return list(params.diagnostics)


def open_doc(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.marks = getattr(client, "marks", {})
    client.marks[uri] = len(client.published)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="netspec", version=version, text=text)))
    return uri


def change_doc(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.marks[uri] = len(client.published)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


def position_of(text: str, needle: str, offset: int = 0) -> types.Position:
    """The LSP position (from 0) of `needle`'s first character plus `offset`."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return types.Position(line=line, character=index - (text.rfind("\n", 0, index) + 1))


def project(tmp_path: Path, main: str = GOOD) -> tuple[Path, Path]:
    (tmp_path / "lib.net").write_text(LIB)
    spec = tmp_path / "small.net"
    spec.write_text("# on disk: not what the editor shows\n")  # the server must read the buffer
    return spec, tmp_path / "lib.net"


async def test_diagnostics_of_a_bad_spec_then_fixed(client: LanguageClient, tmp_path: Path):
    spec, _ = project(tmp_path)
    uri = open_doc(client, spec, BAD)
    diagnostics = await wait_diagnostics(client, uri)
    assert sorted(d.range.start.line for d in diagnostics) == [6, 9]
    by_line = {d.range.start.line: d for d in diagnostics}
    assert "kernal" in by_line[6].message and "did you mean `kernel`?" in by_line[6].message
    assert by_line[6].severity == types.DiagnosticSeverity.Error
    assert by_line[6].source == "netspec"
    start = BAD.splitlines()[6].index("kernal")
    assert by_line[6].range.start.character == start
    assert "lineer" in by_line[9].message

    # quick fixes for both: the name meant
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=by_line[6].range,
        context=types.CodeActionContext(diagnostics=diagnostics)))
    edits = {a.title: a.edit.changes[uri][0] for a in actions}
    assert set(edits) == {"Replace with `kernel`", "Replace with `linear`"}
    kernel = edits["Replace with `kernel`"]
    assert (kernel.range.start.line, kernel.range.start.character, kernel.range.end.character) == \
        (6, start, start + len("kernal"))

    change_doc(client, uri, GOOD, 2)
    assert await wait_diagnostics(client, uri) == []


async def test_secondary_labels_become_related_information(client: LanguageClient, tmp_path: Path):
    text = ("input x: f32[N, 3, 8, 8]\n"
            "a = x -> conv(8, 1)\n"
            "b = x -> conv(4, 1)\n"
            "y = a + b\n"
            "output y\n")
    uri = open_doc(client, tmp_path / "merge.net", text)
    diagnostics = await wait_diagnostics(client, uri)
    assert len(diagnostics) == 1
    d = diagnostics[0]
    assert d.range.start.line == 3
    assert d.related_information, d
    assert all(r.location.uri == uri for r in d.related_information)
    assert "channels differ: 8 and 4" in d.message
    related = {r.message: r.location.range for r in d.related_information}
    assert related["[N, 8, 8, 8] from `a` (line 2)"].start == types.Position(line=3, character=4)
    assert related["[N, 4, 8, 8] from `b` (line 3)"].start == types.Position(line=3, character=8)


async def test_positions_count_utf16_code_units(client: LanguageClient, tmp_path: Path):
    """LSP columns count UTF-16 code units (the default encoding): an emoji is two."""
    text = ('input x: f32[N, 3, 8, 8]\n'
            'y = x -> conv(8, 1, padding="\U0001F600") -> conv(8, kernal=1)\n'
            'output y\n')
    uri = open_doc(client, tmp_path / "emoji.net", text)
    diagnostics = await wait_diagnostics(client, uri)
    kernal = next(d for d in diagnostics if "kernal" in d.message)
    assert kernal.range.start == types.Position(line=1, character=text.splitlines()[1].index("kernal") + 1)
    padding = next(d for d in diagnostics if "padding" in d.message)
    assert padding.range.end.character - padding.range.start.character == len('padding="') + 2 + 1
    # and back: a position after the emoji, from the client, is the right character
    text = text.replace("kernal", "kernel")
    change_doc(client, uri, text, 2)
    assert len(await wait_diagnostics(client, uri)) == 1
    line = text.splitlines()[1]
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=1, character=line.index("kernel") + 1 + 1)))
    assert hover is not None and "kernel" in hover.contents.value


async def test_warnings_are_warnings(client: LanguageClient, tmp_path: Path):
    text = ("input x: f32[N, 3, 8, 8]\n"
            "unused = x -> relu\n"
            "y = x -> conv(8, 1)\n"
            "output y\n")
    uri = open_doc(client, tmp_path / "warn.net", text)
    diagnostics = await wait_diagnostics(client, uri)
    assert diagnostics and all(d.severity == types.DiagnosticSeverity.Warning for d in diagnostics)
    assert diagnostics[0].range.start.line == 1


async def test_hover_layer_binding_and_block_call(client: LanguageClient, tmp_path: Path):
    spec, _ = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    assert await wait_diagnostics(client, uri) == []

    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(GOOD, "conv(16", 1)))
    text = hover.contents.value
    assert "**conv** `c1`" in text
    assert "[N, 16, 32, 32]" in text and "NCHW" in text
    assert "params: 448" in text                      # 16 * 3 * 3 * 3 + 16
    assert "MACs: 442,368" in text                    # 32 * 32 * 16 * 27
    assert "floor((32 + 2*1 - 1*(3-1) - 1) / 1) + 1 = 32" in text  # the --explain arithmetic

    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(GOOD, "pooled =")))
    assert "**pooled**: `[N, 32]`" in hover.contents.value

    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(GOOD, "unit(32", 2)))
    assert "**block** `unit`" in hover.contents.value and "[N, 32, 8, 8]" in hover.contents.value

    # nothing there: no hover, no error
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=0)))
    assert hover is None


async def test_inlay_hints(client: LanguageClient, tmp_path: Path):
    spec, _ = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    await wait_diagnostics(client, uri)
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=20, character=0))))
    shown = {(h.position.line, h.label) for h in hints}
    assert (6, "[N, 16, 32, 32]") in shown            # after conv
    assert (6, "[N, 16, 16, 16]") in shown            # after maxpool
    assert (7, "[N, 32, 8, 8]") in shown              # after the block call
    assert (9, "[N, 10]") in shown
    end_of_conv = position_of(GOOD, "c1: conv(16, kernel=3, padding=1)", len("c1: conv(16, kernel=3, padding=1)"))
    assert any(h.position == end_of_conv for h in hints)


async def test_inlay_hints_can_be_turned_off(client: LanguageClient, tmp_path: Path):
    spec, _ = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    await wait_diagnostics(client, uri)
    params = types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=20, character=0)))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"netspec": {"inlayHints": {"enabled": False}}}))
    assert not await client.text_document_inlay_hint_async(params)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"netspec": {"inlayHints": {"enabled": True}}}))
    assert await client.text_document_inlay_hint_async(params)


async def test_definition_of_blocks_across_use_and_of_bindings(client: LanguageClient, tmp_path: Path):
    spec, lib = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    await wait_diagnostics(client, uri)
    found = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(GOOD, "unit(32", 1)))
    assert found.uri == lib.as_uri()
    assert found.range.start == position_of(LIB, "unit(x")

    found = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(GOOD, "features -> adaptive", 2)))
    assert found.uri == uri and found.range.start == position_of(GOOD, "features =")

    found = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(GOOD, "linear(classes", 8)))
    assert found.range.start == position_of(GOOD, "classes = 10")

    # a keyword argument of a block call: the block's parameter
    found = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(GOOD, "stride=2", 1)))
    assert found.uri == lib.as_uri() and found.range.start == position_of(LIB, "stride = 1")


async def test_document_symbols(client: LanguageClient, tmp_path: Path):
    spec, _ = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    await wait_diagnostics(client, uri)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    names = [(s.name, s.kind) for s in symbols]
    assert ("small", types.SymbolKind.Module) in names
    assert ("image", types.SymbolKind.Variable) in names
    assert ("features", types.SymbolKind.Variable) in names
    assert ("logits", types.SymbolKind.Event) in names
    features = next(s for s in symbols if s.name == "features")
    assert features.detail == "[N, 32, 8, 8]"

    lib_uri = open_doc(client, tmp_path / "lib.net", LIB)
    await wait_diagnostics(client, lib_uri)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=lib_uri)))
    unit = next(s for s in symbols if s.name == "unit")
    assert unit.kind == types.SymbolKind.Function
    assert [c.name for c in unit.children] == ["x", "planes", "stride", "y"]


async def test_completion(client: LanguageClient, tmp_path: Path):
    spec, _ = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    await wait_diagnostics(client, uri)
    # typing a new stage: the text does not parse, the names of the last good version still help
    typing = GOOD.replace("-> flatten\n", "-> flatten -> \n")
    change_doc(client, uri, typing, 2)
    await wait_diagnostics(client, uri)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(typing, "-> \n", 3)))
    labels = {item.label: item for item in result.items}
    assert "conv" in labels and "maxpool" in labels and "linear" in labels
    assert labels["conv"].kind == types.CompletionItemKind.Function
    assert "out_channels" in labels["conv"].detail
    assert "unit" in labels and labels["unit"].detail == "unit(x, planes, stride = 1)"
    assert "features" in labels and "classes" in labels
    assert "channels" in labels and "make_divisible" in labels and "param" in labels

    # inside a layer's parentheses: its attributes and their defaults
    inside = GOOD.replace("maxpool(2)", "maxpool(2, )")
    change_doc(client, uri, inside, 3)
    await wait_diagnostics(client, uri)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(inside, "maxpool(2, ", 11)))
    labels = {item.label: item for item in result.items}
    assert "stride=" in labels and "ceil_mode=" in labels
    assert labels["ceil_mode="].detail == "maxpool: = false"
    # after a keyword: the strings it takes
    typed = GOOD.replace("padding=1)", "padding=)")
    change_doc(client, uri, typed, 4)
    await wait_diagnostics(client, uri)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(typed, "padding=)", 8)))
    assert {'"same"', '"valid"'} <= {item.label for item in result.items}
    change_doc(client, uri, inside, 5)
    await wait_diagnostics(client, uri)
    # inside a block's: its parameters
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(inside, "unit(32", 5)))
    assert "stride=" in {item.label for item in result.items}


async def test_a_used_file_edited_in_the_editor_rechecks_its_importers(client: LanguageClient, tmp_path: Path):
    spec, lib = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    assert await wait_diagnostics(client, uri) == []
    lib_uri = open_doc(client, lib, LIB)
    await wait_diagnostics(client, lib_uri)
    # unsaved edit of the library: `unit` loses its `stride` parameter
    change_doc(client, lib_uri, LIB.replace(", stride = 1", "").replace("stride=stride", "stride=1"), 2)
    diagnostics = await wait_diagnostics(client, uri, lambda d: d != [], mark=client.marks[lib_uri])
    assert any("stride" in d.message for d in diagnostics)
    change_doc(client, lib_uri, LIB, 3)
    assert await wait_diagnostics(client, uri, lambda d: d == [], mark=client.marks[lib_uri]) == []

    # a change on disk only (workspace/didChangeWatchedFiles), with the library closed
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=lib_uri)))
    lib.write_text(LIB.replace("block unit", "block unit2"))
    mark = len(client.published)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=lib_uri, type=types.FileChangeType.Changed)]))
    diagnostics = await wait_diagnostics(client, uri, lambda d: d != [], mark=mark)
    assert any("unit" in d.message for d in diagnostics)


async def test_a_library_shows_the_shapes_of_an_open_importer(client: LanguageClient, tmp_path: Path):
    spec, lib = project(tmp_path)
    uri = open_doc(client, spec, GOOD)
    await wait_diagnostics(client, uri)
    lib_uri = open_doc(client, lib, LIB)
    # a library needs no input and no output: no diagnostics of its own
    assert await wait_diagnostics(client, lib_uri) == []
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=lib_uri), position=position_of(LIB, "conv(planes", 1)))
    assert "**conv** `features.3.y.0`" in hover.contents.value and "[N, 32, 8, 8]" in hover.contents.value
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=lib_uri),
        range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=9, character=0))))
    assert (2, "[N, 32, 8, 8]") in {(h.position.line, h.label) for h in hints}


async def test_a_library_shows_the_errors_an_importer_finds_in_it(client: LanguageClient, tmp_path: Path):
    spec, lib = project(tmp_path)
    broken = LIB.replace("padding=1)", "padding=1, kernal=3)")
    lib.write_text(broken)
    uri = open_doc(client, spec, GOOD)
    diagnostics = await wait_diagnostics(client, uri)
    assert [d.range.start.line for d in diagnostics] == [7]     # the call of `unit`
    assert diagnostics[0].related_information[0].location.uri == lib.as_uri()
    lib_uri = open_doc(client, lib, broken)
    diagnostics = await wait_diagnostics(client, lib_uri, lambda d: d != [])
    assert [d.range.start.line for d in diagnostics] == [2] and "kernal" in diagnostics[0].message
    # the importer closed: the library alone has nothing to say
    mark = len(client.published)
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert await wait_diagnostics(client, lib_uri, lambda d: d == [], mark=mark) == []
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=lib_uri)))


async def test_an_error_in_a_used_file_is_shown_at_the_use(client: LanguageClient, tmp_path: Path):
    spec, lib = project(tmp_path)
    lib.write_text(LIB.replace("return y", "return y +"))
    uri = open_doc(client, spec, GOOD)
    diagnostics = await wait_diagnostics(client, uri)
    assert diagnostics
    assert diagnostics[0].range.start.line == 2           # `use "lib.net"`
    assert diagnostics[0].related_information[0].location.uri == lib.as_uri()
    # the library, opened and fixed in the editor: its importer is checked again
    lib_uri = open_doc(client, lib, lib.read_text())
    mark = len(client.published)
    change_doc(client, lib_uri, LIB, 2)
    assert await wait_diagnostics(client, uri, lambda d: d == [], mark=mark) == []
    # a `use` of a file that does not exist yet: its creation is a change to it
    missing = GOOD.replace('use "lib.net"', 'use "later.net"')
    change_doc(client, uri, missing, 2)
    assert await wait_diagnostics(client, uri, lambda d: d != [])
    (tmp_path / "later.net").write_text(LIB)
    mark = len(client.published)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=(tmp_path / "later.net").as_uri(), type=types.FileChangeType.Created)]))
    assert await wait_diagnostics(client, uri, lambda d: d == [], mark=mark) == []


async def test_rapid_changes_publish_the_last_version(client: LanguageClient, tmp_path: Path):
    spec, _ = project(tmp_path)
    uri = open_doc(client, spec, BAD)
    await wait_diagnostics(client, uri)
    mark = len(client.published)
    for version in range(2, 12):
        change_doc(client, uri, BAD if version < 11 else GOOD, version)
    final = await wait_published(client, uri, mark, lambda p: p.version == 11)
    assert list(final.diagnostics) == []
    # debounced: the burst of changes is checked once or a few times, never out of order
    versions = [p.version for p in client.published[mark:] if p.uri == uri]
    assert versions == sorted(versions) and len(versions) < 10


@pytest.mark.parametrize("text", [
    "",
    "block",
    "input x: f32[N, 3, 8, 8]\ny = x -> conv(8, kernel=(\noutput y\n",
    "network n(\x00)\n",
    "input x: f32[N, 3, 8, 8]\n" + "y = " + "(" * 3000 + "x" + ")" * 3000 + "\noutput y\n",
    "use \"/nonexistent/zzz.net\"\n",
    "use \"bad\\\\path.net\"\ninput x: f32[N, 3, 8, 8]\noutput x\n",
    "\ufeffinput x: f32[N, 3, 8, 8]\noutput x\n",
    "input x: f32[N, 3, 8, 8]\ny = x -> conv(8, 3) -> conv(8, 99)\noutput y\n",
])
async def test_bad_input_never_stops_the_server(client: LanguageClient, tmp_path: Path, text: str):
    uri = open_doc(client, tmp_path / "bad.net", text)
    await wait_diagnostics(client, uri)
    for line in range(3):
        for character in (0, 3, 10):
            position = types.Position(line=line, character=character)
            ident = types.TextDocumentIdentifier(uri=uri)
            await client.text_document_hover_async(types.HoverParams(text_document=ident, position=position))
            await client.text_document_definition_async(types.DefinitionParams(text_document=ident,
                                                                                position=position))
            await client.text_document_completion_async(types.CompletionParams(text_document=ident,
                                                                                position=position))
    await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=99, character=0))))
    # a position past the end of the document
    await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=500, character=80)))
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))


async def test_no_internal_errors_were_logged(client: LanguageClient):
    """Every test above ran without a handler failing (a failure is logged as an error)."""
    errors = [m.message for m in client.log_messages if m.type == types.MessageType.Error]
    assert errors == []


async def test_unreadable_messages_do_not_stop_the_server():
    """Raw bytes over the pipes: a body that is not JSON, an unknown method, a request before
    `initialize`; then the server still initializes, answers and shuts down, and its stderr
    holds no traceback."""
    import json

    def message(body: dict) -> bytes:
        data = json.dumps(body).encode()
        return b"Content-Length: %d\r\n\r\n" % len(data) + data

    hover = {"textDocument": {"uri": "file:///nowhere.net"}, "position": {"line": 0, "character": 0}}
    stream = (b"Content-Length: 5\r\n\r\n{bad}"
              + message({"jsonrpc": "2.0", "id": 7, "method": "no/such", "params": {}})
              + message({"jsonrpc": "2.0", "id": 8, "method": "textDocument/hover", "params": hover})
              + message({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                         "params": {"processId": None, "capabilities": {}, "initializationOptions": "odd"}})
              + message({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": [1]}})
              + message({"jsonrpc": "2.0", "id": 9, "method": "textDocument/hover", "params": hover})
              + message({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
              + message({"jsonrpc": "2.0", "method": "exit"}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "netspec", "lsp", cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(stream), 60)
    assert process.returncode == 0
    out = stdout.decode()
    for ident in (1, 2, 7, 8, 9):
        assert f'"id": {ident}' in out
    assert '"capabilities"' in out
    assert "Traceback" not in stderr.decode() and "Traceback" not in out


async def test_check_does_not_import_the_language_server():
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "netspec", "check", "specs/lenet5.net", cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    imported = {line.split("|")[-1].strip() for line in stderr.decode().splitlines() if "|" in line}
    assert not {name for name in imported if name.split(".")[0] in ("pygls", "lsprotocol", "cattrs")}
    assert "netspec.lsp" not in imported and "netspec.commands.lsp" in imported


async def test_lsp_without_pygls_says_what_to_install(capsys, monkeypatch):
    from netspec.commands import main

    monkeypatch.setitem(sys.modules, "pygls", None)  # `import pygls` raises ImportError
    assert main(["lsp"]) == 1
    assert "pip install 'netspec[lsp]'" in capsys.readouterr().err
