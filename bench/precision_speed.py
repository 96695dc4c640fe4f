"""Lower precisions against f32 in onnxruntime: `netspec export --quantize int8` (static QDQ,
per-channel weights, calibrated on seeded inputs) and `--dtype f16 --f32-io`, against the f32
export of the same spec and seeded weights, the sessions timed interleaved in one process, with
the accuracy of each beside its speed.

    python bench/precision_speed.py [--runs 100] [--models resnet50,mobilenet_v2]

Accuracy over EVAL_SAMPLES seeded inputs other than the calibration ones (see `accuracy`): the
lowest cosine similarity of an output to the f32 one, that of its input-dependent part, the
largest absolute difference as a fraction of the f32 output's largest magnitude, and top-1
agreement. On CUDA (where onnxruntime-gpu is) f16
against f32 there too. bench/run_all.py runs it as its section 8.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

MODELS = ("resnet50", "mobilenet_v2", "efficientnet_b0")
CALIBRATION_SAMPLES = 16   # what `netspec export --quantize int8` calibrates on without --calibrate
EVAL_SAMPLES = 16
TARGET_SPEEDUP, TARGET_COSINE = 2.0, 0.99  # issue 16: int8 resnet50 >= 2x faster, cosine >= 0.99


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def accuracy(reference: list[np.ndarray], got: list[np.ndarray]) -> dict:
    """Over samples: the lowest cosine to the reference; the lowest cosine of what depends on
    the input (each output less the reference's mean over the samples: with seeded, untrained
    weights the logits share a large constant part, the last layer's bias, which flatters the
    plain cosine); the largest |difference| / max |reference|; top-1 agreement."""
    reference = [a.astype(np.float64).ravel() for a in reference]
    got = [b.astype(np.float64).ravel() for b in got]
    mean = np.mean(reference, axis=0)
    return {"cosine": min(_cosine(a, b) for a, b in zip(reference, got)),
            "varying": min(_cosine(a - mean, b - mean) for a, b in zip(reference, got)),
            "error": max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(reference, got)),
            "top1": sum(int(a.argmax() == b.argmax()) for a, b in zip(reference, got)),
            "samples": len(reference)}


def signal_weights(net, samples: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded weights whose batch-norm statistics are those of the activations (each running
    mean and variance measured at its layer's input on `samples` seeded inputs, layer after
    layer): PyTorch's default initialisation leaves them 0 and 1, so activations shrink or grow
    through the depth and the logits barely depend on the input (efficientnet_b0's not at all,
    in f32 precision), which no precision could be judged by. Trained weights would be better
    still; this machine has none."""
    import onnx
    import onnxruntime as ort

    from netspec import runtime

    weights = net.weights(seed=seed)
    norms = [node for node in net.graph if node.kind == "batchnorm"]
    model = net.to_onnx(weights=weights)
    # the statistics as graph inputs (onnxruntime lets feeds override initializers), and every
    # batch norm's input as an output: one session for every layer's turn
    statistics_keys = [f"{node.name}.{k}" for node in norms for k in ("running_mean", "running_var")]
    by_name = {t.name: t for t in model.graph.initializer}
    for key in statistics_keys:
        model.graph.input.append(onnx.helper.make_tensor_value_info(key, by_name[key].data_type, by_name[key].dims))
    del model.graph.output[:]
    for node in norms:
        model.graph.output.append(onnx.helper.make_tensor_value_info(node.inputs[0], onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # not the warning that initializers are graph inputs: they are meant to be
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = runtime.feeds(net.input_specs(samples), None, seed + 500, samples)
    for i, node in enumerate(norms):
        fed = {**feeds, **{key: weights[key] for key in statistics_keys}}
        x = session.run([node.inputs[0]], fed)[0].astype(np.float64)
        axes = tuple(a for a in range(x.ndim) if a != 1)
        weights[f"{node.name}.running_mean"] = x.mean(axis=axes).astype(np.float32)
        weights[f"{node.name}.running_var"] = x.var(axis=axes).astype(np.float32) + 1e-3
    return weights


def variants(net, weights: dict, device: str) -> dict:
    """The models compared, as onnx.ModelProto at batch 1: f32, int8 (on the CPU: onnxruntime's
    QDQ kernels are its CPU's) and f16 with f32 inputs and outputs."""
    from netspec import quantize

    models = {"f32": net.to_onnx(batch=1, weights=weights)}
    if device == "cpu":
        batches = quantize.random_batches(net.input_specs(1), 100, CALIBRATION_SAMPLES)
        models["int8"] = quantize.quantize_int8(models["f32"], batches)
    models["f16"] = net.to_onnx(batch=1, weights=weights, dtype="f16", f32_io=True)
    return models


def _sessions(models: dict, device: str) -> dict:
    import onnx_speed
    import onnxruntime as ort

    from netspec import runtime

    return {variant: ort.InferenceSession(model.SerializeToString(), onnx_speed.session_options(),
                                          providers=runtime.providers_for(device))
            for variant, model in models.items()}


def measure(name: str, runs: int, device: str = "cpu", log=lambda message: None) -> dict:
    """For one spec at batch 1: {"ms": {variant: median}, "seeded": {variant: accuracy},
    "measured": {variant: accuracy}}. Accuracy with seeded weights as netspec makes them, and
    with their batch-norm statistics measured (signal_weights); the timings, which do not
    depend on the weights' values, with the latter."""
    import netspec
    from netspec import runtime

    net = netspec.load(ROOT / "specs" / f"{name}.net").check()
    samples = [runtime.feeds(net.input_specs(1), None, 1000 + i, 1) for i in range(EVAL_SAMPLES)]
    result: dict = {}
    for setting, weights in (("seeded", net.weights(seed=0)), ("measured", signal_weights(net))):
        t0 = time.perf_counter()
        sessions = _sessions(variants(net, weights, device), device)
        log(f"[8] {name} ({device}, {setting} weights): {', '.join(sessions)} made in {time.perf_counter() - t0:.0f} s")
        outputs = {variant: [s.run(None, feed)[0] for feed in samples] for variant, s in sessions.items()}
        result[setting] = {variant: accuracy(outputs["f32"], got) for variant, got in outputs.items() if variant != "f32"}
    feed = samples[0]
    import onnx_speed

    times = onnx_speed.time_round_robin({variant: (lambda s=s: s.run(None, feed)) for variant, s in sessions.items()},
                                        runs, warmup=max(2, runs // 10))
    result["ms"] = {variant: statistics.median(values) * 1e3 for variant, values in times.items()}
    return result


def rows(results: dict[str, dict]) -> list[str]:
    """Markdown rows (HEADER's columns), one per model and precision."""
    lines = []
    for name, r in results.items():
        base = r["ms"]["f32"]
        for variant, took in r["ms"].items():
            if variant == "f32":
                figures = "- | - | - | - | -"
            else:
                a, b = r["seeded"][variant], r["measured"][variant]
                figures = (f"{a['cosine']:.5f} | {b['cosine']:.5f} | {b['varying']:.4f} | {b['error']:.1e} "
                           f"| {b['top1']}/{b['samples']}")
            lines.append(f"| {name} | {variant} | {took:.2f} | {base / took:.2f}x | {figures} |")
    return lines


HEADER = ["| model | precision | median ms | speed-up over f32 | cosine to f32, seeded weights | cosine, "
          "measured statistics | input-dependent part's cosine | max abs diff / scale | top-1 agreement |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    from netspec.precision import devices

    for device in devices():
        results = {name: measure(name, args.runs, device, log=lambda m: print(m, file=sys.stderr))
                   for name in args.models.split(",")}
        print(f"\n{device}, batch 1, median of {args.runs} interleaved runs\n")
        print("\n".join([*HEADER, *rows(results)]))


if __name__ == "__main__":
    main()
