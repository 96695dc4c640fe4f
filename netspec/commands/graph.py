"""`netspec graph SPEC -o FILE`: the network drawn as SVG, PNG, PDF, DOT or Mermaid."""

from __future__ import annotations

import argparse
import os

from netspec.commands.options import (EXIT_OK, UsageError, add_spec_options, check_depth, network)
from netspec.files import output_path

GRAPH_EPILOG = """\
formats, by the output's suffix:
  .svg .png .pdf   rendered by Graphviz's `dot` program (Debian, Ubuntu: apt-get install
                   graphviz; macOS: brew install graphviz)
  .dot .gv         Graphviz DOT text (no Graphviz needed)
  .mmd             Mermaid flowchart text (GitHub renders it in Markdown)

exit codes: 0 written, 1 errors in the spec or Graphviz missing, 2 bad command-line usage
"""


def register(commands) -> None:
    graph = commands.add_parser(
        "graph", help="draw a spec's graph as SVG, PNG, PDF, Graphviz DOT or Mermaid",
        description="Draw SPEC (a .net file, or an .onnx model imported in memory): one box per\n"
                    "layer with its key attributes and parameters, edges labelled with the\n"
                    "tensor's shape, block instances as clusters titled with their call, graph\n"
                    "inputs and outputs marked. The format follows the output's suffix; the file\n"
                    "is written atomically.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=GRAPH_EPILOG)
    graph.add_argument("spec", metavar="SPEC",
                       help="the .net file to draw, or an .onnx model (imported in memory first)")
    graph.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE",
                       help="the file to write: .svg, .png, .pdf, .dot, .gv or .mmd")
    add_spec_options(graph)
    graph.add_argument("--depth", type=int, metavar="N",
                       help="fold blocks nested deeper than N into one box (0: top level only)")
    graph.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Compile, draw, print `wrote FILE (N layers)`."""
    from netspec.diagnostics import NetspecError
    from netspec.draw import FORMAT_LIST, find_dot, graph_format, write_graph

    check_depth(args)
    try:
        fmt = graph_format(args.output)
    except NetspecError:
        suffix = os.path.splitext(args.output)[1]
        raise UsageError(f"-o {args.output}: unknown format "
                         f"{'`' + suffix + '`' if suffix else '(no suffix)'}; use {FORMAT_LIST}"
                         ) from None
    if fmt not in ("dot", "mermaid"):
        find_dot(args.output)  # before compiling: say at once that Graphviz is missing
    net = network(args, lowering=False)
    path = write_graph(net.graph, args.output, args.depth)
    layers = sum(1 for node in net.graph if node.layer is not None)
    print(f"wrote {path} ({layers} layer{'s' if layers != 1 else ''})")
    return EXIT_OK
