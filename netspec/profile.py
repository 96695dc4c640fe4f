"""`netspec profile`: onnxruntime's profiler, its nodes mapped back to the spec's layers.

How a kernel is traced back to layers. onnxruntime rewrites the graph before it runs it: at the
extended level it fuses Conv + BatchNormalization (+ Relu) into one (Fused)Conv that keeps the
value names of the model, and at the highest level its NCHWc layout pass replaces that node by
`<its output value>_nchwc` (absorbing a following Add and Relu) between Reorder nodes with new
value names. So a session at the extended level saves its optimized model, whose nodes are
matched to the lowered model by data flow: a fused node covers the lowered nodes its outputs
depend on that its inputs do not. A profiled node is the extended node of its name (less
`_nchwc`), or the one producing the value of that name; an extended node that no profiled node
names (an Add absorbed by the NCHWc conv) belongs to its latest-running producer's kernel.
Nodes onnxruntime adds (ReorderInput, ReorderOutput) are rows of their own, with no layer.
Lowered node names are `<layer>` or `<layer>/<op>`, so a node's layer is the part before `/`.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SCHEMA = "netspec.profile/1"
_SUFFIXES = ("_bn_nchwc", "_nchwc")  # NCHWc's names: `<value>_nchwc`, a BatchNorm's `<value>_bn_nchwc`


def _producers(graph) -> dict:
    return {out: node for node in graph.node for out in node.output if out}


def _ancestors(graph) -> dict[str, int]:
    """Each value of `graph` -> the nodes it depends on (its producer included), as a bit mask
    over node positions. ONNX lists nodes in topological order, so one forward pass does."""
    masks: dict[str, int] = {}
    for k, node in enumerate(graph.node):
        mask = 1 << k
        for value in node.input:
            mask |= masks.get(value, 0)
        for value in node.output:
            masks[value] = mask
    return masks


def coverage(lowered, optimized) -> dict[str, list[str]]:
    """Each node of onnxruntime's optimized graph -> the nodes of the lowered model it computes,
    in the lowered model's order: those its outputs depend on that its inputs do not, less those
    an earlier node took. An input onnxruntime renamed (a value it made) stands for the values
    of the model its producer reads, walked back to them. Nodes are taken in the optimized
    graph's order, which is topological, so each lowered node is covered once."""
    masks = _ancestors(lowered.graph)
    names = [node.name for node in lowered.graph.node]
    producers = _producers(optimized.graph)
    out: dict[str, list[str]] = {}
    claimed = 0
    for node in optimized.graph.node:
        produced = consumed = 0
        for value in node.output:
            produced |= masks.get(value, 0)
        stack, seen = list(node.input), set()
        while stack:
            value = stack.pop()
            if not value or value in seen:
                continue
            seen.add(value)
            if value in masks:
                consumed |= masks[value]
            elif value in producers:  # a value onnxruntime made: what it was made from
                stack.extend(producers[value].input)
        left = produced & ~consumed & ~claimed
        claimed |= left
        out[node.name] = [names[k] for k in range(left.bit_length()) if left >> k & 1]
    return out


def _kernel_events(trace: list[dict]) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """Each profiled node's kernel durations (ms), in run order, and the args of its last event."""
    times: dict[str, list[float]] = {}
    args: dict[str, dict] = {}
    for event in trace:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        times.setdefault(node, []).append(event["dur"] / 1000.0)
        args[node] = event.get("args", {})
    return times, args


def _strip(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _shape_macs(op: str, args: dict) -> int:
    """MACs of a profiled Conv, Gemm or MatMul from its shapes (for an .onnx model: no spec)."""
    ins = [next(iter(t.values())) for t in args.get("input_type_shape", [])]
    outs = [next(iter(t.values())) for t in args.get("output_type_shape", [])]
    if not ins or not outs:
        return 0
    out = int(np.prod(outs[0], dtype=np.int64))
    if op in ("Conv", "FusedConv") and len(ins) > 1 and len(ins[1]) == len(outs[0]):
        return out * int(np.prod(ins[1][1:], dtype=np.int64))
    if op in ("Gemm", "MatMul", "FusedGemm", "FusedMatMul") and ins[0]:
        return out * int(ins[0][-1])
    return 0


METHOD = "onnxruntime float32 MatMul 2048^3; numpy copy of 128 MiB (read + write); best of 5"
def measure(session, feeds: dict, repeat: int, warmup: int, run) -> dict:
    """Run a profiling session: `warmup` runs, then `repeat` timed ones. Returns the wall times
    (ms) and the profiled nodes' kernel times of the timed runs (the last `repeat` of each)."""
    for _ in range(warmup):
        run(session, feeds)
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(session, feeds)
        walls.append((time.perf_counter() - start) * 1000.0)
    path = session.end_profiling()
    try:
        trace = json.loads(Path(path).read_text(encoding="utf-8"))
    finally:
        Path(path).unlink(missing_ok=True)
    times, args = _kernel_events(trace)
    times = {node: values[-repeat:] for node, values in times.items()}
    return {"walls": walls, "times": times, "args": args}


def build_rows(lowered, optimized, measured: dict, repeat: int, layer_info: Callable | None,
               batch: int, roof: dict | None) -> dict:
    """The profile document: per kernel, the layers it covers, its median time and figures."""
    covers = coverage(lowered, optimized)
    by_output = {v: node.name for node in optimized.graph.node for v in node.output}
    optimized_order = {node.name: k for k, node in enumerate(optimized.graph.node)}
    producers = _producers(optimized.graph)
    times, args = measured["times"], measured["args"]
    # the extended node each profiled node stands for
    stands: dict[str, str | None] = {}
    for node in times:
        base = _strip(node)
        stands[node] = base if base in covers else by_output.get(base)
    claimed = {name for name in stands.values() if name}
    run_order = {name: k for k, name in enumerate(times)}
    owner: dict[str, str] = {name: node for node, name in stands.items() if name}
    for node in optimized.graph.node:  # absorbed nodes: their latest-running producer's kernel
        if node.name in claimed or node.name in owner:
            continue
        sources = [owner[producers[i].name] for i in node.input if i in producers and producers[i].name in owner]
        if sources:
            owner[node.name] = max(sources, key=run_order.__getitem__)
    lowered_nodes: dict[str, list[str]] = {node: [] for node in times}
    for ext, kernel in sorted(owner.items(), key=lambda item: optimized_order.get(item[0], 0)):
        lowered_nodes[kernel].extend(covers.get(ext, []))
    known = {n.name.split("/")[0] for n in lowered.graph.node}
    rows = []
    for node, values in times.items():
        a = args.get(node, {})
        layers: list[str] = []
        for lowered_node in lowered_nodes[node]:
            layer = lowered_node.split("/")[0]
            if layer not in layers:
                layers.append(layer)
        if not layers and node.split("/")[0] in known:  # a node onnxruntime made of a layer's,
            layers.append(node.split("/")[0])           # named after it (GatherSliceToSplitFusion)
        # bytes moved: the input activations and outputs onnxruntime records, and the weights
        # (it leaves out those it has prepacked, as Gemm's, so a spec's own count is used)
        moved = int(a.get("activation_size", 0) or 0) + int(a.get("output_size", 0) or 0)
        op = a.get("op_name", "?")
        rows.append({"name": " + ".join(layers) if layers else f"({op})", "layers": layers, "node": node,
                     "op": op, "provider": a.get("provider"), "line": None,
                     "time_ms": statistics.median(values), "macs": 0, "bytes": moved,
                     "_own": _shape_macs(op, a)})
    if layer_info is None:
        for row, node in zip(rows, times):
            row["macs"] = row["_own"]
            row["bytes"] += int(args.get(node, {}).get("parameter_size", 0) or 0)
    else:
        _share_layers(rows, layer_info, batch)
    for row in rows:
        del row["_own"]
        median, macs = row["time_ms"], row["macs"]
        row["gflops"] = (2 * macs / (median / 1000.0) / 1e9) if median > 0 else 0.0
        row["bound"] = _bound(macs, row["bytes"], roof)
    total = statistics.median(measured["walls"])
    layer_sum = sum(r["time_ms"] for r in rows)
    for r in rows:
        r["share"] = r["time_ms"] / layer_sum if layer_sum else 0.0
    rows.sort(key=lambda r: -r["time_ms"])
    return {"total_ms": total, "layers_ms": layer_sum, "layers_over_total": layer_sum / total if total else 0.0,
            "runs": repeat, "layers": rows}


def _share_layers(rows: list[dict], layer_info: Callable, batch: int) -> None:
    """Each row's source line (its first layer's) and the MACs and weight bytes of its layers.
    A layer lowered to several nodes that run as several kernels (attention: its MatMuls,
    Softmax, Transposes) is in each of their rows; its MACs and weights are split between them
    by the MACs the kernels' shapes give (Conv, Gemm, MatMul), else go to its first kernel."""
    holders: dict[str, list[dict]] = {}
    for row in rows:
        for layer in row["layers"]:
            holders.setdefault(layer, []).append(row)
    for layer, held in holders.items():
        info = layer_info(layer)
        if info is None:
            continue
        line, macs, weights = info
        for row in held:
            if row["line"] is None:
                row["line"] = line
        weights_of = [row["_own"] for row in held]
        total = sum(weights_of)
        if len(held) == 1 or not total:
            weights_of, total = [1] + [0] * (len(held) - 1), 1
        given_macs = given_bytes = 0
        for k, (row, weight) in enumerate(zip(held, weights_of)):
            last = k == len(held) - 1
            part_macs = macs * batch - given_macs if last else macs * batch * weight // total
            part_bytes = weights - given_bytes if last else weights * weight // total
            row["macs"] += part_macs
            row["bytes"] += part_bytes
            given_macs += part_macs
            given_bytes += part_bytes


def _bound(macs: int, moved: int, roof: dict | None) -> str | None:
    """`compute` when the kernel's arithmetic intensity (MACs per byte moved) reaches the
    machine's ridge point (peak MAC/s over bandwidth), else `memory`; None without a roofline."""
    if roof is None:
        return None
    if not moved:
        return "compute" if macs else "memory"
    ridge = roof["peak_macs_per_s"] / roof["bandwidth_bytes_per_s"]
    return "compute" if macs / moved >= ridge else "memory"


# -- the roofline ---------------------------------------------------------------------------

def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netspec" / "roofline.json"


def measure_roofline() -> dict:
    """This machine's CPU peak: float32 MAC/s of a 2048^3 MatMul in onnxruntime (MLAS, the
    library whose kernels are profiled; its default threads) and the bandwidth of copying
    128 MiB with numpy (bytes read plus written), each the best of 5."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    n = 2048
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n), dtype=np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "peak",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
                              [numpy_helper.from_array(x, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    session.run(None, {"x": x})
    best = min(_timed(lambda: session.run(None, {"x": x})) for _ in range(5))
    peak = n ** 3 / best
    src = np.ones(32 * 1024 * 1024, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    copy = min(_timed(lambda: np.copyto(dst, src)) for _ in range(5))
    return {"device": "cpu", "peak_macs_per_s": peak, "bandwidth_bytes_per_s": 2 * src.nbytes / copy,
            "method": METHOD,
            "cpus": os.cpu_count()}


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def roofline(device: str, remeasure: bool = False) -> dict | None:
    """The cached roofline of `device` (measured once, then read from cache_path()); None for
    cuda, which this version does not measure."""
    if device != "cpu":
        return None
    path = cache_path()
    if not remeasure and path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            mine = cached["cpu"]
            if mine["cpus"] == os.cpu_count() and mine["method"] == METHOD and mine["peak_macs_per_s"] > 0 \
                    and mine["bandwidth_bytes_per_s"] > 0:
                return mine
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # unreadable or stale: measure again
    roof = measure_roofline()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump({"cpu": roof}, handle, indent=1)
        os.replace(handle.name, path)
    except OSError:
        pass  # a read-only home: measure every time rather than fail
    return roof
