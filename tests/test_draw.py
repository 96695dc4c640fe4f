"""`netspec graph` and netspec.draw: DOT and Mermaid text, block clusters and --depth folding,
atomic writes, Graphviz present or missing, and the command on every spec in specs/.

Tests that render SVG, PNG or PDF run Graphviz where it is installed and otherwise check the
message that says how to install it; everything else needs no Graphviz.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bundled_specs import EXAMPLES

from netspec.commands import graph as graph_cmd
from netspec.commands.options import UsageError
from netspec.compiler import compile_file
from netspec.diagnostics import NetspecError
from netspec.draw import to_dot, to_mermaid, write_graph

ROOT = Path(__file__).resolve().parent.parent
SPECS = EXAMPLES  # the fourteen examples (tests/bundled_specs.py): drawing all 78 torchvision models would say little more
HAVE_DOT = shutil.which("dot") is not None

# An input, two branches of the stem (a conv and a pool) merged by `+`, and a block instance
# whose residual `+` reaches back outside the block.
BRANCHING = """\
    network branching(classes = 10)

    input image: f32[N, 3, 32, 32]

    block basic(x, planes) {
        y = x -> conv1: conv(planes, 3, padding=1, bias=false) -> bn1: batchnorm -> relu
        return relu(y + x)
    }

    stem = image -> conv(16, 3, padding=1) -> relu
    left = stem -> conv(16, 1)
    right = stem -> maxpool(3, stride=1, padding=1)
    merged = left + right
    body = merged -> basic(16)
    head = body -> adaptive_avgpool(1) -> flatten -> linear(classes)

    output head
"""

BRANCHING_DOT = """\
digraph "branching" {
  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.3];
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, fillcolor="#ffffff", color="#6b7280"];
  edge [fontname="Helvetica", fontsize=8, color="#4b5563", fontcolor="#374151"];
  "image" [label=<<B>image</B><BR/>input NCHW<BR/>[N, 3, 32, 32]>, shape=box, style="filled,bold", fillcolor="#dbeafe", color="#1d4ed8"];
  "stem.0" [label=<<B>stem.0</B><BR/>conv 3x3 pad 1<BR/><FONT POINT-SIZE="9" COLOR="#52525b">448 params</FONT>>, fillcolor="#fef3c7", color="#b45309"];
  "stem.1" [label=<<B>stem.1</B><BR/>relu>];
  "left" [label=<<B>left</B><BR/>conv 1x1<BR/><FONT POINT-SIZE="9" COLOR="#52525b">272 params</FONT>>, fillcolor="#fef3c7", color="#b45309"];
  "right" [label=<<B>right</B><BR/>maxpool 3x3 pad 1>];
  "merged" [label=<<B>merged</B><BR/>add>];
  subgraph "cluster_body" {
    label="body: basic(16)"; labeljust=l; style="rounded,filled"; fillcolor="#f4f4f5"; color="#a1a1aa";
    "body.conv1" [label=<<B>body.conv1</B><BR/>conv 3x3 pad 1<BR/><FONT POINT-SIZE="9" COLOR="#52525b">2,304 params</FONT>>, fillcolor="#fef3c7", color="#b45309"];
    "body.bn1" [label=<<B>body.bn1</B><BR/>batchnorm<BR/><FONT POINT-SIZE="9" COLOR="#52525b">32 params</FONT>>, fillcolor="#fef3c7", color="#b45309"];
    "body.y.2" [label=<<B>body.y.2</B><BR/>relu>];
    "body.add" [label=<<B>body.add</B><BR/>add>];
    "body.relu" [label=<<B>body.relu</B><BR/>relu>];
  }
  "head.0" [label=<<B>head.0</B><BR/>adaptive_avgpool 1x1>];
  "head.1" [label=<<B>head.1</B><BR/>flatten>];
  "head.2" [label=<<B>head.2</B><BR/>linear<BR/><FONT POINT-SIZE="9" COLOR="#52525b">170 params</FONT>>, fillcolor="#fef3c7", color="#b45309"];
  "output:head" [label=<<B>head</B><BR/>output>, shape=oval, style="filled,bold", fillcolor="#dcfce7", color="#15803d"];
  "image" -> "stem.0" [label="[N, 3, 32, 32]"];
  "stem.0" -> "stem.1" [label="[N, 16, 32, 32]"];
  "stem.1" -> "left" [label="[N, 16, 32, 32]"];
  "stem.1" -> "right" [label="[N, 16, 32, 32]"];
  "left" -> "merged" [label="[N, 16, 32, 32]"];
  "right" -> "merged" [label="[N, 16, 32, 32]"];
  "merged" -> "body.conv1" [label="[N, 16, 32, 32]"];
  "body.conv1" -> "body.bn1" [label="[N, 16, 32, 32]"];
  "body.bn1" -> "body.y.2" [label="[N, 16, 32, 32]"];
  "body.y.2" -> "body.add" [label="[N, 16, 32, 32]"];
  "merged" -> "body.add" [label="[N, 16, 32, 32]"];
  "body.add" -> "body.relu" [label="[N, 16, 32, 32]"];
  "body.relu" -> "head.0" [label="[N, 16, 32, 32]"];
  "head.0" -> "head.1" [label="[N, 16, 1, 1]"];
  "head.1" -> "head.2" [label="[N, 16]"];
  "head.2" -> "output:head" [label="[N, 10]"];
}
"""

NESTED = """\
    network nested
    input x: f32[N, 8, 16, 16]
    block unit(t, c) {
        return t -> conv(c, 3, padding=1) -> relu
    }
    block pair(t, c) {
        return t -> first: unit(c) -> second: unit(c)
    }
    a = x -> pair(8)
    b = x -> pair(8)
    y = a + b
    output y
"""


def write_spec(tmp_path: Path, text: str, name: str = "t.net") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def compiled(tmp_path: Path, text: str):
    result = compile_file(write_spec(tmp_path, text))
    assert result.ok, result.diagnostics.items
    return result.graph


def graph_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netspec")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    graph_cmd.register(commands)
    return parser


def graph_command(argv: list[str]) -> int:
    return graph_cmd.run(graph_parser().parse_args(["graph", *argv]))


def node_ids(dot: str) -> list[str]:
    """The IDs of the node statements of a DOT text (not edges, not subgraphs)."""
    return re.findall(r'^\s*"((?:[^"\\]|\\.)*)" \[label=', dot, re.M)


def edges(dot: str) -> list[tuple[str, str, str]]:
    return re.findall(r'^\s*"([^"]*)" -> "([^"]*)" \[label="([^"]*)"\];$', dot, re.M)


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders a write left behind (they start with a dot)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ================================================================ DOT text


def test_dot_text_of_a_small_branching_spec(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    assert to_dot(graph) == BRANCHING_DOT


def test_dot_text_is_valid_graphviz(tmp_path):
    if not HAVE_DOT:
        pytest.skip("Graphviz is not installed")
    graph = compiled(tmp_path, BRANCHING)
    for depth in (None, 0):
        result = subprocess.run(["dot", "-Tcanon"], input=to_dot(graph, depth), text=True,
                                capture_output=True)
        assert result.returncode == 0 and result.stderr == "", result.stderr


def test_dot_one_node_per_layer_and_one_edge_per_input_and_output(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    dot = to_dot(graph)
    names = [node.name for node in graph]
    assert node_ids(dot) == names + ["output:head"]
    expected = [(source, node.name) for node in graph for source in node.inputs]
    expected.append(("head.2", "output:head"))
    assert [(a, b) for a, b, _ in edges(dot)] == expected
    # the residual edge skips the branch inside the block and carries the merged shape
    assert ("merged", "body.add", "[N, 16, 32, 32]") in edges(dot)


def test_dot_clusters_nest_block_instances(tmp_path):
    graph = compiled(tmp_path, NESTED)
    dot = to_dot(graph)
    lines = dot.splitlines()
    # a: pair(8) holds a.first: unit(8) and a.second: unit(8), one level deeper
    outer = lines.index('  subgraph "cluster_a" {')
    assert lines[outer + 1].startswith('    label="a: pair(8)"; labeljust=l;')
    inner = lines.index('    subgraph "cluster_a.first" {')
    assert outer < inner
    assert lines[inner + 1].startswith('      label="a.first: unit(8)";')
    assert '      "a.first.0" [label=<<B>a.first.0</B><BR/>conv 3x3 pad 1' in dot
    # nesting levels alternate the fill
    assert 'fillcolor="#f4f4f5"' in lines[outer + 1] and 'fillcolor="#e4e4e7"' in lines[inner + 1]
    assert dot.count("subgraph ") == 6   # a, a.first, a.second, b, b.first, b.second
    assert dot.count("{") == dot.count("}") == 7


# ================================================================ --depth folding


def test_depth_0_folds_every_block_into_one_box(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    dot = to_dot(graph, depth=0)
    assert "subgraph" not in dot
    assert ('  "body" [label=<<B>body</B><BR/>basic(16)<BR/><FONT POINT-SIZE="9" COLOR="#52525b">'
            '2,336 params</FONT>>, shape=box, style="filled", peripheries=2, '
            'fillcolor="#ede9fe", color="#6d28d9"];') in dot
    assert not any(name.startswith("body.") for name in node_ids(dot))
    # `merged` feeds body.conv1 and body.add: one edge into the folded box
    assert [e for e in edges(dot) if "body" in e[:2]] == [
        ("merged", "body", "[N, 16, 32, 32]"), ("body", "head.0", "[N, 16, 32, 32]")]


def test_depth_folds_only_deeper_blocks(tmp_path):
    graph = compiled(tmp_path, NESTED)
    shallow = to_dot(graph, depth=1)
    assert shallow.count("subgraph ") == 2          # a and b stay clusters
    assert '"cluster_a.first"' not in shallow
    assert "    \"a.first\" [label=<<B>a.first</B><BR/>unit(8)<BR/>" in shallow
    assert ("a.first", "a.second", "[N, 8, 16, 16]") in edges(shallow)
    top = to_dot(graph, depth=0)
    assert "subgraph" not in top
    assert node_ids(top) == ["x", "a", "b", "y", "output:y"]
    assert to_dot(graph, depth=5) == to_dot(graph)   # deeper than the nesting: nothing folds


def test_resnet18_depths():
    graph = compile_file(ROOT / "specs" / "resnet18.net").graph
    full = to_dot(graph)
    assert '"cluster_layer1"' in full and '"cluster_layer2.0"' in full
    assert 'label="layer2.0: basic(128, 2, down=true)"' in full
    assert '"layer2.0.downsample.0"' in full
    one = to_dot(graph, depth=1)
    assert '"cluster_layer1"' in one and '"cluster_layer1.0"' not in one
    assert "<B>layer1.0</B><BR/>basic(64, 1, down=false)" in one
    zero = to_dot(graph, depth=0)
    assert node_ids(zero) == ["image", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                              "layer3", "layer4", "avgpool", "flat", "fc", "output:fc"]
    # a folded stage carries the sum of its parameters
    layer1 = sum(node.trainable for node in graph if node.name.startswith("layer1."))
    assert f"<B>layer1</B><BR/>stage(64, 2)<BR/><FONT POINT-SIZE=\"9\" COLOR=\"#52525b\">{layer1:,} params" in zero


def test_negative_depth_is_refused(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    with pytest.raises(ValueError):
        to_dot(graph, depth=-1)
    with pytest.raises(UsageError, match="--depth"):
        graph_command([str(write_spec(tmp_path, BRANCHING)), "-o", str(tmp_path / "g.dot"),
                       "--depth", "-1"])


# ================================================================ Mermaid


def test_mermaid_text(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    text = to_mermaid(graph)
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert '  i_image(["image<br/>input NCHW<br/>[N, 3, 32, 32]"]):::input' in lines
    assert '  n_stem_0["stem.0<br/>conv 3x3 pad 1<br/>448 params"]:::params' in lines
    assert '  n_right["right<br/>maxpool 3x3 pad 1"]:::layer' in lines
    assert '  o_head(["head<br/>output"]):::output' in lines
    start = lines.index('  subgraph c_body ["body: basic(16)"]')
    end = lines.index("  end")
    assert lines[start + 1] == '    n_body_conv1["body.conv1<br/>conv 3x3 pad 1<br/>2,304 params"]:::params'
    assert lines[end - 1] == '    n_body_relu["body.relu<br/>relu"]:::layer'
    assert '  n_stem_1 -->|"[N, 16, 32, 32]"| n_left' in lines
    assert '  n_stem_1 -->|"[N, 16, 32, 32]"| n_right' in lines
    assert '  n_merged -->|"[N, 16, 32, 32]"| n_body_add' in lines
    assert '  n_head_2 -->|"[N, 10]"| o_head' in lines
    assert sum("-->|" in line for line in lines) == 16   # 15 layer inputs and the output
    assert "classDef input " in text and "classDef output " in text


def test_mermaid_ids_are_safe_and_unique():
    for path in SPECS:
        graph = compile_file(path).graph
        for depth in (None, 0, 1):
            text = to_mermaid(graph, depth)
            defined = re.findall(r"^\s*([^\s\[(]+)[\[(]", text, re.M)
            defined = [d for d in defined if d != "subgraph"]
            assert len(defined) == len(set(defined)), path
            for ident in defined:
                assert re.fullmatch(r"[a-z]_[A-Za-z0-9_]+", ident), ident
            assert text.count("subgraph ") == sum(1 for line in text.splitlines()
                                                  if line.strip() == "end"), path


def test_mermaid_depth_folds_into_a_subroutine_box(tmp_path):
    text = to_mermaid(compiled(tmp_path, BRANCHING), depth=0)
    assert "subgraph" not in text
    assert '  b_body[["body<br/>basic(16)<br/>2,336 params"]]:::block' in text
    assert text.count('-->|"[N, 16, 32, 32]"| b_body') == 1


def test_escaping_of_quotes_and_markup():
    from netspec.draw import _dot_id, _html, _mermaid_text

    assert _dot_id('a.b"c\\d') == '"a.b\\"c\\\\d"'
    assert _html('<a & "b">') == "&lt;a &amp; &quot;b&quot;&gt;"
    assert _mermaid_text('say "hi" <b> #1') == "say #quot;hi#quot; #lt;b#gt; #35;1"


# ================================================================ files


def test_write_dot_and_mermaid(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    for name, expected in [("g.dot", to_dot(graph)), ("g.gv", to_dot(graph)),
                           ("g.mmd", to_mermaid(graph)), ("G.DOT", to_dot(graph))]:
        assert write_graph(graph, tmp_path / name) == tmp_path / name
        assert (tmp_path / name).read_text(encoding="utf-8") == expected
    assert write_graph(graph, str(tmp_path / "d.dot"), depth=0).read_text() == to_dot(graph, 0)
    assert leftovers(tmp_path) == []


def test_unknown_suffix_lists_the_formats(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    for name in ("g.jpg", "graph"):
        with pytest.raises(NetspecError) as info:
            write_graph(graph, tmp_path / name)
        message = info.value.diagnostics[0].message + " " + info.value.diagnostics[0].hint
        assert "unknown format" in message
        for suffix in (".svg", ".png", ".pdf", ".dot", ".gv", ".mmd"):
            assert suffix in message
        assert not (tmp_path / name).exists()


def test_missing_folder_and_directory_target(tmp_path):
    graph = compiled(tmp_path, BRANCHING)
    with pytest.raises(NetspecError, match="does not exist"):
        write_graph(graph, tmp_path / "nowhere" / "g.dot")
    (tmp_path / "taken.dot").mkdir()
    with pytest.raises(NetspecError, match="it is a directory"):
        write_graph(graph, tmp_path / "taken.dot")


def test_failed_text_write_leaves_no_file(tmp_path, monkeypatch):
    graph = compiled(tmp_path, BRANCHING)
    out = tmp_path / "out"
    out.mkdir()

    def full_disk(self, data):
        with open(self, "wb") as handle:
            handle.write(data[:10])   # a partial file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(NetspecError, match="No space left on device"):
        write_graph(graph, out / "g.dot")
    assert list(out.iterdir()) == []
    (out / "keep.mmd").write_text("old", encoding="utf-8")
    with pytest.raises(NetspecError):
        write_graph(graph, out / "keep.mmd")
    assert (out / "keep.mmd").read_text(encoding="utf-8") == "old"
    assert [p.name for p in out.iterdir()] == ["keep.mmd"]


def fake_dot(tmp_path: Path, body: str) -> str:
    """A stand-in for Graphviz's `dot`: a script run with the same arguments."""
    script = tmp_path / "bin" / "dot"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\n"
                      "out = args[args.index('-o') + 1]\n" + body, encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def test_failed_render_leaves_no_file_and_an_existing_one_untouched(tmp_path, monkeypatch):
    graph = compiled(tmp_path, BRANCHING)
    out = tmp_path / "out"
    out.mkdir()
    dot = fake_dot(tmp_path, "open(out, 'w').write('<svg partial')\n"
                             "sys.stderr.write('Error: something broke\\n')\nsys.exit(1)\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: dot if name == "dot" else None)
    with pytest.raises(NetspecError, match="something broke"):
        write_graph(graph, out / "g.svg")
    assert list(out.iterdir()) == []
    (out / "old.png").write_bytes(b"old picture")
    with pytest.raises(NetspecError, match=r"dot -Tpng"):
        write_graph(graph, out / "old.png")
    assert (out / "old.png").read_bytes() == b"old picture"
    assert [p.name for p in out.iterdir()] == ["old.png"]


def test_render_passes_the_dot_text_and_format(tmp_path, monkeypatch):
    graph = compiled(tmp_path, BRANCHING)
    dot = fake_dot(tmp_path, "open(out, 'w').write(repr(args) + '\\n' + sys.stdin.read())\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: dot if name == "dot" else None)
    (tmp_path / "g.pdf").write_text("old", encoding="utf-8")
    write_graph(graph, tmp_path / "g.pdf", depth=0)
    first, rest = (tmp_path / "g.pdf").read_text(encoding="utf-8").split("\n", 1)
    assert "'-Tpdf'" in first
    assert rest == to_dot(graph, 0)
    write_graph(graph, tmp_path / "g.png")
    assert "'-Gdpi=144'" in (tmp_path / "g.png").read_text(encoding="utf-8").split("\n")[0]
    assert leftovers(tmp_path) == []


def test_missing_graphviz_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    graph = compiled(tmp_path, BRANCHING)
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    for name in ("g.svg", "g.png", "g.pdf"):
        with pytest.raises(NetspecError) as info:
            write_graph(graph, tmp_path / name)
        diagnostic = info.value.diagnostics[0]
        assert "Graphviz is not installed" in diagnostic.message
        assert name in diagnostic.message
        assert "apt-get install graphviz" in diagnostic.hint
        assert "brew install graphviz" in diagnostic.hint
        assert "`.dot` and `.mmd` outputs work without it" in diagnostic.hint
        assert "apt-get install graphviz" in str(info.value)   # for callers of the Python API
        assert not (tmp_path / name).exists()
    # the text formats need no Graphviz
    write_graph(graph, tmp_path / "g.dot")
    write_graph(graph, tmp_path / "g.mmd")
    # the command fails before compiling the spec
    spec = write_spec(tmp_path, BRANCHING)
    with pytest.raises(NetspecError, match="Graphviz is not installed"):
        graph_command([str(spec), "-o", str(tmp_path / "c.svg")])
    assert capsys.readouterr().out == ""
    assert graph_command([str(spec), "-o", str(tmp_path / "c.mmd")]) == 0


@pytest.mark.parametrize("suffix, signature", [
    ("svg", b"<svg"), ("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF-")])
def test_render_with_graphviz_or_a_clear_error(tmp_path, suffix, signature):
    graph = compiled(tmp_path, BRANCHING)
    path = tmp_path / f"g.{suffix}"
    if not HAVE_DOT:
        with pytest.raises(NetspecError, match="Graphviz is not installed"):
            write_graph(graph, path)
        assert not path.exists()
        return
    write_graph(graph, path, depth=0 if suffix == "pdf" else None)
    data = path.read_bytes()
    if suffix == "svg":
        assert signature in data[:400]
        text = data.decode("utf-8")
        assert "body: basic(16)" in text and "[N, 16, 32, 32]" in text and "body.conv1" in text
    else:
        assert data.startswith(signature)
    assert leftovers(tmp_path) == []


# ================================================================ the command


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_graph_command_on_every_spec(spec, tmp_path, capsys):
    out = tmp_path / f"{spec.stem}.dot"
    assert graph_command([str(spec), "-o", str(out)]) == 0
    graph = compile_file(spec).graph
    layers = sum(1 for node in graph if node.layer is not None)
    stdout = capsys.readouterr().out
    assert stdout == f"wrote {out} ({layers} layers)\n"
    dot = out.read_text(encoding="utf-8")
    assert dot.startswith(f'digraph "{graph.name}" {{\n') and dot.endswith("}\n")
    assert node_ids(dot) == [node.name for node in graph] + [f"output:{n}" for n, _ in graph.outputs]
    assert len(edges(dot)) == sum(len(node.inputs) for node in graph) + len(graph.outputs)
    blocks = {b.name for node in graph for b in node.blocks}
    assert dot.count("subgraph ") == len(blocks)


def test_graph_command_options(tmp_path, capsys):
    lenet = str(ROOT / "specs" / "lenet5.net")
    out = tmp_path / "lenet.mmd"
    assert graph_command([lenet, "-o", str(out), "--set", "classes=7",
                          "--input", "digits=2,1,32,32"]) == 0
    assert capsys.readouterr().out == f"wrote {out} (12 layers)\n"
    text = out.read_text(encoding="utf-8")
    assert '-->|"[2, 7]"| o_logits' in text
    assert "[2, 1, 32, 32]" in text
    resnet = str(ROOT / "specs" / "resnet18.net")
    assert graph_command([resnet, "-o", str(tmp_path / "r.gv"), "--depth", "0"]) == 0
    assert "subgraph" not in (tmp_path / "r.gv").read_text(encoding="utf-8")


def test_graph_command_usage_errors(tmp_path):
    lenet = str(ROOT / "specs" / "lenet5.net")
    with pytest.raises(UsageError, match=r"unknown format `\.jpg`.*\.svg.*\.mmd"):
        graph_command([lenet, "-o", str(tmp_path / "g.jpg")])
    with pytest.raises(UsageError, match="no such file"):
        graph_command([str(tmp_path / "missing.net"), "-o", str(tmp_path / "g.dot")])
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        graph_command([lenet, "-o", str(tmp_path / "g.dot"), "--set", "classes"])
    with pytest.raises(SystemExit) as info:   # argparse: -o is required
        graph_parser().parse_args(["graph", lenet])
    assert info.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_graph_command_spec_error_prints_it_and_writes_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path, """\
        network bad
        input x: f32[N, 3, 8, 8]
        y = x -> conv(4, 3, strid=2)
        output y
    """)
    with pytest.raises(SystemExit) as info:
        graph_command([str(spec), "-o", str(tmp_path / "g.dot")])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "error: conv has no attribute `strid`" in err and "did you mean `stride`?" in err
    assert not (tmp_path / "g.dot").exists()


def test_graph_help(capsys):
    with pytest.raises(SystemExit) as info:
        graph_parser().parse_args(["graph", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("-o FILE", "--set NAME=VALUE", "--input NAME=DIMS", "--depth N", ".mmd",
                 "apt-get install", "brew install graphviz"):
        assert word in out


def test_importing_draw_is_light():
    code = ("import sys, netspec.draw; "
            "print(sorted(m for m in ('networkx', 'lark', 'pydantic', 'rich', 'onnx', 'numpy', "
            "'subprocess', 'tempfile') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
