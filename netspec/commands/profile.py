"""`netspec profile SPEC_OR_ONNX`: where the time goes, kernel by kernel, in the spec's layers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from netspec.commands.onnx_spec import is_onnx_model
from netspec.commands.options import (
    EXIT_OK,
    UsageError,
    add_lowering_options,
    add_spec_options,
    lowering_options,
    network,
    require_file,
)


def register(commands) -> None:
    parser = commands.add_parser(
        "profile", help="profile a spec or an .onnx file in onnxruntime, layer by layer",
        description="Run SPEC (lowered on the fly) or an .onnx model with onnxruntime's profiler "
                    "and print each kernel's median time over the runs, the spec layers it "
                    "computes (onnxruntime fuses Conv + BatchNorm + Relu into one kernel: all "
                    "three are named), its share, MACs, achieved GFLOP/s and whether it is "
                    "compute- or memory-bound against this machine's roofline (measured once, "
                    "cached in $XDG_CACHE_HOME/netspec/roofline.json).")
    parser.add_argument("spec", metavar="SPEC_OR_ONNX", help="a .net spec or an .onnx model")
    add_spec_options(parser, data_input=True)
    add_lowering_options(parser, "profile")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="execution provider")
    parser.add_argument("--repeat", type=int, default=10, metavar="N",
                        help="profiled runs, after the warm-up ones (default 10)")
    parser.add_argument("--warmup", type=int, default=2, metavar="N", help="unprofiled first runs (default 2)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="onnxruntime's intra-op threads (default 0: its own choice, one per "
                             "core); with 1 the kernels' times add up to the run's")
    parser.add_argument("--json", action="store_true", help=f"print the profile as JSON ({'netspec.profile/1'})")
    parser.add_argument("--remeasure", action="store_true",
                        help="measure the roofline again instead of reading the cached one")
    parser.set_defaults(handler=profile)


def profile(args: argparse.Namespace) -> int:
    import tempfile

    import onnx
    import onnxruntime as ort

    from netspec import runtime
    from netspec.commands.run import check_spec_only_options
    from netspec.profile import SCHEMA, build_rows, measure, roofline

    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    if args.warmup < 0:
        raise UsageError("--warmup must be 0 or more")
    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch must be at least 1")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: a seed is 0 or more")
    if args.threads < 0:
        raise UsageError("--threads must be 0 (onnxruntime's choice) or more")
    runtime.providers_for(args.device)  # no CUDA: say so before compiling anything
    layer_info = None
    if is_onnx_model(args.spec):
        require_file(args.spec)
        check_spec_only_options(args)
        model = onnx.load(args.spec)
        specs = None
        locate = None
    else:
        options = lowering_options(args)
        net = network(args)
        model = net.to_onnx(**options)
        specs = net.input_specs(options["batch"])
        graph = net.graph
        locate = net.locate
        weight_bytes = _weight_bytes(graph)

        def layer_info(layer: str):
            """(source line, MACs per sample, bytes of its parameters and buffers)"""
            if layer not in graph or graph.node(layer).layer is None:
                return None
            node = graph.node(layer)
            return node.span.line, node.macs, weight_bytes.get(layer, 0)

    data = model.SerializeToString()
    with tempfile.TemporaryDirectory(prefix="netspec-profile-") as folder:
        extended_path = Path(folder) / "extended.onnx"
        extended = ort.SessionOptions()
        extended.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        extended.optimized_model_filepath = str(extended_path)

        def located(function):
            try:
                return function()
            except runtime.OnnxRuntimeError as exc:
                raise (locate(exc) if locate else exc) from None

        located(lambda: runtime.session(data, args.device, extended))
        optimized = onnx.load(str(extended_path), load_external_data=False)

        profiled = ort.SessionOptions()
        profiled.enable_profiling = True
        profiled.intra_op_num_threads = args.threads
        profiled.profile_file_prefix = str(Path(folder) / "trace")
        session = located(lambda: runtime.session(data, args.device, profiled))
        input_specs = specs if specs is not None else runtime.describe_inputs(session)
        feeds = runtime.feeds(input_specs, None, args.seed, args.batch)
        batch = _batch(input_specs, feeds)
        measured = located(lambda: measure(session, feeds, args.repeat, args.warmup,
                                           runtime.run))
    roof = roofline(args.device, args.remeasure)
    doc = build_rows(model, optimized, measured, args.repeat, layer_info, batch, roof)
    doc = {"schema": SCHEMA, "model": args.spec, "device": args.device, "batch": batch,
           "threads": args.threads, **doc,
           "roofline": roof}
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        print_table(doc)
    return EXIT_OK


def _weight_bytes(graph) -> dict[str, int]:
    """Each layer's parameters and buffers, in bytes at their dtypes."""
    import numpy as np

    from netspec.graph import tensor_key
    from netspec.lower import NUMPY_DTYPES

    dtypes = graph.parameter_dtypes()
    out: dict[str, int] = {}
    for node in graph:
        out[node.name] = sum(spec.elements * np.dtype(NUMPY_DTYPES[dtypes[tensor_key(node.name, suffix)]]).itemsize
                             for suffix, spec in node.params.items())
    return out


def _batch(specs, feeds) -> int:
    """The batch the runs use: the first input's batch axis (`N` in its layout), else 1."""
    for spec in specs:
        layout = getattr(spec, "layout", "") or ""
        if "N" in layout and spec.name in feeds:
            return int(feeds[spec.name].shape[layout.index("N")])
    return 1


def print_table(doc: dict) -> None:
    rows = doc["layers"]
    header = ("layers", "op", "line", "ms", "share", "MACs", "GFLOP/s", "bound")
    table = [header] + [(r["name"], r["op"], "" if r["line"] is None else str(r["line"]),
                         f"{r['time_ms']:.3f}", f"{100 * r['share']:.1f}%",
                         f"{r['macs']:,}" if r["macs"] else "", f"{r['gflops']:.1f}" if r["macs"] else "",
                         r["bound"] or "") for r in rows]
    widths = [max(len(row[k]) for row in table) for k in range(len(header))]
    for row in table:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + \
                [cell.rjust(width) for cell, width in zip(row[2:7], widths[2:7])] + [row[7]]
        print("  ".join(cells).rstrip())
    threads = f", {doc['threads']} thread{'s' if doc['threads'] > 1 else ''}" if doc["threads"] else ""
    print(f"total {doc['total_ms']:.2f} ms (median of {doc['runs']} runs, {doc['device']}, batch "
          f"{doc['batch']}{threads}); the kernels add up to {doc['layers_ms']:.2f} ms "
          f"({100 * doc['layers_over_total']:.0f}% of it)")
    roof = doc["roofline"]
    if roof:
        print(f"roofline: {roof['peak_macs_per_s'] / 1e9:.1f} GMAC/s peak, "
              f"{roof['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, ridge at "
              f"{roof['peak_macs_per_s'] / roof['bandwidth_bytes_per_s']:.1f} MACs per byte")
