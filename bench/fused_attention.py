"""Should netspec lower attention to ONNX's fused `Attention` operator (opset 23)? onnxruntime CPU
latency of `Attention(q, k, v)` against the MatMul, Mul, Softmax, MatMul that netspec emits
(which onnxruntime fuses into FusedMatMul + Softmax + MatMul), on the same seeded inputs, timed
interleaved in one process, for the attention shapes of the zoo's transformers.

    python bench/fused_attention.py [--runs 50]

Prints the median latency of each and their ratio (fused / netspec's); the outputs are checked
equal first. bench/run_all.py runs it as its section 7; netspec lowers to the fused operator
only if it is faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (name, batch of attention problems, heads, tokens, head width): ViT-B/16 at batch 1 and 8,
# Swin-T's first stage (64 windows of 49 positions, 3 heads of 32) and its third (16 windows, 12 heads)
SHAPES = [("vit_b_16, batch 1", 1, 12, 197, 64), ("vit_b_16, batch 8", 8, 12, 197, 64),
          ("swin_t stage 1, batch 1", 64, 3, 49, 32), ("swin_t stage 3, batch 1", 4, 12, 49, 32)]


def models(b: int, h: int, length: int, d: int):
    """The two ONNX models of softmax(q k^T / sqrt(d)) v over (b, h, length, d) inputs."""
    from onnx import TensorProto, helper

    shape = [b, h, length, d]
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)]
    fused = helper.make_model(helper.make_graph([helper.make_node("Attention", ["q", "k", "v"], ["y"])],
                                                "fused", ins, out),
                              opset_imports=[helper.make_opsetid("", 23)], ir_version=11)
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [d ** -0.5])
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["scores"]),
             helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
             helper.make_node("Softmax", ["scaled"], ["weights"], axis=-1),
             helper.make_node("MatMul", ["weights", "v"], ["y"])]
    unfused = helper.make_model(helper.make_graph(nodes, "netspec", ins, out, initializer=[scale]),
                                opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return fused.SerializeToString(), unfused.SerializeToString()


def measure(runs: int) -> list[tuple[str, float, float]]:
    import onnxruntime as ort

    from onnx_speed import session_options, time_interleaved

    rows = []
    for name, b, h, length, d in SHAPES:
        fused, unfused = models(b, h, length, d)
        sa = ort.InferenceSession(fused, session_options(), providers=["CPUExecutionProvider"])
        sb = ort.InferenceSession(unfused, session_options(), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feed = {n: rng.standard_normal((b, h, length, d)).astype(np.float32) for n in "qkv"}
        ya, yb = sa.run(None, feed)[0], sb.run(None, feed)[0]
        assert np.abs(ya - yb).max() <= 1e-5 * max(1.0, float(np.abs(yb).max())), name
        ta, tb = time_interleaved(lambda: sa.run(None, feed), lambda: sb.run(None, feed), runs, warmup=5)
        rows.append((name, statistics.median(ta), statistics.median(tb)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__}, CPU; {args.runs} interleaved runs; ms, medians")
    print(f"{'attention':26s} {'Attention-23':>12s} {'netspec':>9s} {'ratio':>6s}")
    for name, fused, ours in measure(args.runs):
        print(f"{name:26s} {fused * 1e3:12.3f} {ours * 1e3:9.3f} {fused / ours:6.3f}")


if __name__ == "__main__":
    main()
