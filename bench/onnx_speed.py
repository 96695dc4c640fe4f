"""Is netspec's ONNX as fast as PyTorch's? onnxruntime (CPU) latency of the model netspec lowers
(`net.to_onnx(weights=..., batch=B)`) against the model `torch.onnx.export` writes for a
hand-written PyTorch twin (bench/torch_models.py) carrying the very same weights, timed
interleaved in one process. Also times the export itself (netspec's `to_onnx` + serialization
against `torch.onnx.export`).

    python bench/onnx_speed.py [--runs 80] [--models resnet18,alexnet] [--batches 1,8]

Both models use opset 17 and a fixed batch; both sessions share one SessionOptions (default
threads and graph optimization; idle threads do not spin, see `session_options`). The twin's
batch-norm statistics and affine parameters are randomised first, so batch norm is not an
identity. Target: netspec/torch <= 1.03.
For each model the script also prints the op types before and after onnxruntime's graph
optimizations, whether the optimized graphs are identical, and an A/A control (netspec's model
against a second session of itself) that shows how much of a ratio is noise on this machine.

torch.onnx.export runs with dynamo=False (the TorchScript exporter), whose opset-17 output is
directly comparable; bench/run_all.py also times the dynamo exporter (torch 2.13's default, which
needs onnxscript from the bench extra). bench/run_all.py imports this module's helpers (twin,
netspec_onnx, torch_onnx, optimized_graph, time_interleaved) for its inference benchmark.

    --models takes any of bench/torch_models.py's MODELS: alexnet, resnet18, resnet50, efficientnet_b0, vit_b_16,
    swin_t
"""

from __future__ import annotations

import argparse
import collections
import gc
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

TARGET = 1.03
OPSET = 17


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def twin(name: str, seed: int = 0):
    """The PyTorch twin in eval mode, with non-trivial batch-norm statistics."""
    import torch

    from torch_models import MODELS

    torch.manual_seed(seed)
    model = MODELS[name]()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def session_options():
    """Default threads and graph optimizations, but idle intra-op threads sleep instead of
    spinning: every session in a process has its own thread pool, and on a machine with few
    cores the threads of the session that ran last spin on the cores the timed session needs.
    With spinning, a second session of the very same model measured 20% faster than the first
    at batch 8 (an A/A ratio of 1.20); without it, 1.00 +- 0.01, and both run faster."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def netspec_onnx(net, weights: dict, batch: int) -> bytes:
    return net.to_onnx(opset=OPSET, batch=batch, weights=weights).SerializeToString()


def torch_onnx(model, batch: int, input_name: str, output_name: str) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(batch, 3, 224, 224),), buffer, dynamo=False,
                          opset_version=OPSET, input_names=[input_name], output_names=[output_name])
    return buffer.getvalue()


def op_counts(model_bytes: bytes) -> collections.Counter:
    import onnx

    return collections.Counter(n.op_type for n in onnx.load_from_string(model_bytes).graph.node)


def optimized_graph(model_bytes: bytes, options_factory) -> list[tuple]:
    """The graph onnxruntime actually runs, after its graph optimizations: per node, its op type,
    domain, attributes and the shapes of its constant inputs, in execution order."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    with tempfile.TemporaryDirectory() as tmp:
        options = options_factory()
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        model = onnx.load(options.optimized_model_filepath, load_external_data=False)
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [(n.op_type, n.domain,
             tuple(sorted((a.name, repr(helper.get_attribute_value(a))) for a in n.attribute)),
             tuple(shapes.get(i) for i in n.input))
            for n in model.graph.node]


def fmt_ops(counts: collections.Counter) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def time_round_robin(fns: dict, runs: int, warmup: int, collect: bool = False) -> dict[str, list[float]]:
    """Latencies of each call, run round-robin, the order rotating every round (for two, which
    goes first flips); `collect`: a garbage collection before each call, outside its time."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for i in range(runs):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            if collect:
                gc.collect()
            start = clock()
            fns[name]()
            times[name].append(clock() - start)
    return times


def time_interleaved(run_a, run_b, runs: int, warmup: int) -> tuple[list[float], list[float]]:
    """Latencies of a and b, alternated call by call (which goes first flips every round)."""
    times = time_round_robin({"a": run_a, "b": run_b}, runs, warmup)
    return times["a"], times["b"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=80, help="timed runs of each model at batch 1 "
                        "(batch 8: a quarter, at least 10)")
    parser.add_argument("--models", default="resnet18,alexnet")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--export-runs", type=int, default=5)
    parser.add_argument("--no-control", action="store_true", help="skip the A/A control (netspec vs itself)")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    batches = [int(b) for b in args.batches.split(",")]

    import onnxruntime as ort
    import torch

    import netspec

    shared_options = session_options()
    print(f"machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}")
    print(f"Python {platform.python_version()}, onnxruntime {ort.__version__} (CPUExecutionProvider, "
          f"default threads without spinning, graph optimization {shared_options.graph_optimization_level.name}), "
          f"torch {torch.__version__}, netspec {netspec.__version__}, opset {OPSET}")
    print(f"interleaved runs: {args.runs} at batch 1, {max(10, args.runs // 4)} at larger batches; "
          f"latency in ms; ratio = netspec / torch (target <= {TARGET})\n")

    summary = []
    export_rows = []
    total_start = time.perf_counter()
    for name in models:
        net = netspec.load(ROOT / "specs" / f"{name}.net").check()
        model = twin(name)
        weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        input_name = net.graph.inputs[0][0] if isinstance(net.graph.inputs[0], tuple) else "image"
        output_name = net.graph.outputs[0][0]
        print(f"== {name}")
        for batch in batches:
            a_bytes = netspec_onnx(net, weights, batch)
            b_bytes = torch_onnx(model, batch, input_name, output_name)
            if batch == batches[0]:
                print(f"  ONNX nodes   netspec {sum(op_counts(a_bytes).values()):3d}: {fmt_ops(op_counts(a_bytes))}")
                print(f"               torch   {sum(op_counts(b_bytes).values()):3d}: {fmt_ops(op_counts(b_bytes))}")
                ga, gb = optimized_graph(a_bytes, session_options), optimized_graph(b_bytes, session_options)
                oa = collections.Counter(op for op, *_ in ga)
                ob = collections.Counter(op for op, *_ in gb)
                print(f"  after ORT    netspec {sum(oa.values()):3d}: {fmt_ops(oa)}")
                print(f"               torch   {sum(ob.values()):3d}: {fmt_ops(ob)}")
                same = "yes" if ga == gb else f"NO ({sum(x != y for x, y in zip(ga, gb))} nodes differ)"
                print(f"  optimized graphs identical (ops, attributes, weight shapes, order): {same}")
                print(f"  model bytes  netspec {len(a_bytes):,}  torch {len(b_bytes):,}")
            sa = ort.InferenceSession(a_bytes, shared_options, providers=["CPUExecutionProvider"])
            sb = ort.InferenceSession(b_bytes, shared_options, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224), dtype=np.float32)
            feed_a = {sa.get_inputs()[0].name: x}
            feed_b = {sb.get_inputs()[0].name: x}
            ya, yb = sa.run(None, feed_a)[0], sb.run(None, feed_b)[0]
            with torch.no_grad():
                yt = model(torch.from_numpy(x)).numpy()
            diff = float(np.max(np.abs(ya - yb)))
            scale = float(np.max(np.abs(yb)))
            diff_t = float(np.max(np.abs(ya - yt)))
            assert ya.shape == yb.shape and diff <= 1e-3 * max(1.0, scale), (name, batch, diff, scale)
            runs = args.runs if batch == 1 else max(10, args.runs // 4)
            ta, tb = time_interleaved(lambda: sa.run(None, feed_a), lambda: sb.run(None, feed_b),
                                      runs, warmup=max(3, runs // 10))
            med_a, med_b = statistics.median(ta), statistics.median(tb)
            p90_a, p90_b = percentile(ta, 90), percentile(tb, 90)
            paired = statistics.median(a / b for a, b in zip(ta, tb))
            ratio = med_a / med_b
            print(f"  batch {batch}: max|netspec - torch ONNX| = {diff:.2e} (outputs up to {scale:.2f}; "
                  f"vs PyTorch eager {diff_t:.2e})")
            print(f"    netspec  median {med_a * 1e3:8.2f}  p90 {p90_a * 1e3:8.2f}")
            print(f"    torch    median {med_b * 1e3:8.2f}  p90 {p90_b * 1e3:8.2f}")
            print(f"    ratio    {ratio:.3f} (median of per-pair ratios {paired:.3f}) "
                  f"{'OK' if ratio <= TARGET else 'OVER TARGET'}")
            control = float("nan")
            if batch == batches[0] and not args.no_control:
                # A/A control: the same netspec model in a second session, timed the same way;
                # how far this ratio strays from 1 is the noise floor of the A/B ratio above
                sc = ort.InferenceSession(a_bytes, shared_options, providers=["CPUExecutionProvider"])
                tc, td = time_interleaved(lambda: sa.run(None, feed_a), lambda: sc.run(None, feed_a),
                                          runs, warmup=max(3, runs // 10))
                control = statistics.median(tc) / statistics.median(td)
                print(f"    A/A control (netspec vs a second netspec session): ratio {control:.3f} "
                      f"(paired {statistics.median(c / d for c, d in zip(tc, td)):.3f})")
                del sc
            summary.append((name, batch, med_a, p90_a, med_b, p90_b, ratio, paired, control, diff))
            del sa, sb

        # export time: netspec to_onnx + serialize vs torch.onnx.export (to bytes), interleaved
        ea, eb = [], []
        netspec_onnx(net, weights, 1)
        torch_onnx(model, 1, input_name, output_name)
        for i in range(args.export_runs):
            pair = [("a", lambda: netspec_onnx(net, weights, 1)), ("b", lambda: torch_onnx(model, 1, input_name, output_name))]
            for which, fn in (pair if i % 2 == 0 else pair[::-1]):
                start = time.perf_counter()
                fn()
                (ea if which == "a" else eb).append(time.perf_counter() - start)
        start = time.perf_counter()
        netspec.load(ROOT / "specs" / f"{name}.net").check()
        compile_s = time.perf_counter() - start
        export_rows.append((name, statistics.median(ea), statistics.median(eb), compile_s))
        print(f"  export (batch 1, {args.export_runs} runs): netspec to_onnx+serialize "
              f"{statistics.median(ea) * 1e3:.0f} ms, torch.onnx.export {statistics.median(eb) * 1e3:.0f} ms, "
              f"ratio {statistics.median(ea) / statistics.median(eb):.2f} "
              f"(netspec.load of the spec: {compile_s * 1e3:.0f} ms more)\n")

    print("summary: onnxruntime CPU latency, ms (ratio = netspec / torch median)")
    print(f"  {'model':<9} {'batch':>5} {'netspec med':>11} {'p90':>8} {'torch med':>10} {'p90':>8} "
          f"{'ratio':>6} {'paired':>6} {'A/A':>6} {'max|diff|':>9}  verdict")
    for name, batch, ma, pa, mb, pb, ratio, paired, control, diff in summary:
        aa = f"{control:>6.3f}" if control == control else f"{'-':>6}"
        print(f"  {name:<9} {batch:>5} {ma * 1e3:>11.2f} {pa * 1e3:>8.2f} {mb * 1e3:>10.2f} {pb * 1e3:>8.2f} "
              f"{ratio:>6.3f} {paired:>6.3f} {aa} {diff:>9.1e}  {'ok' if ratio <= TARGET else 'over ' + str(TARGET)}")
    print("  paired = median of per-round netspec/torch ratios; A/A = netspec against a second session "
          "of itself (1.000 +- noise)")
    print("\nexport time, ms (medians; ratio = netspec / torch)")
    print(f"  {'model':<9} {'netspec':>8} {'torch':>8} {'ratio':>6}")
    for name, a, b, _ in export_rows:
        print(f"  {name:<9} {a * 1e3:>8.0f} {b * 1e3:>8.0f} {a / b:>6.2f}")
    print(f"\ntotal {time.perf_counter() - total_start:.0f} s")


if __name__ == "__main__":
    main()
