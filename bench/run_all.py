"""Every netspec benchmark in one command; writes bench/RESULTS.md (atomically).

    python bench/run_all.py            # the full run: about 16 minutes on 2 cores
    python bench/run_all.py --quick    # fewer repetitions: about 2 minutes
    python bench/run_all.py --output /tmp/results.md

Needs the bench extra (`pip install -e '.[bench]'`: torch, torchinfo, onnxscript). The PyTorch
peers are the hand-written twins in bench/torch_models.py, whose state_dict keys equal the specs'
parameter names, so both sides can carry the very same weights.

1. `check` latency, whole process: `netspec check specs/NAME.net` against a process that imports
   torch and torchinfo, builds the PyTorch module and prints torchinfo.summary at 1x3x224x224
   (bench/torchinfo_summary.py); both in process too, imports excluded.
   Target: netspec >= 10x faster on resnet50, whole process.
2. Scaling: generated conv/relu chains of 100, 1,000 and 10,000 layers, `netspec check` whole
   process and in process. Targets: 10,000 layers < 3 s whole process; time per layer flat
   (in process, per layer at 10,000 / per layer at 1,000 <= 1.5).
3. Export time, in process: `netspec.load(spec).export(path, weights=...)` (compile, lower,
   onnx.checker, write) against `torch.onnx.export(model, ...)` of the built twin, with both
   exporters: dynamo=True (torch 2.13's default; needs onnxscript) and dynamo=False (TorchScript).
   Target: netspec faster than each.
4. Inference: onnxruntime CPU latency of netspec's ONNX against torch.onnx.export's (dynamo=False,
   opset 17, as bench/onnx_speed.py), same weights, interleaved in one process, batch 1 and 8, for
   alexnet, resnet50, vit_b_16 and swin_t.
   Target: netspec / torch median <= 1.03.
5. Start-up, whole process: `netspec --version` and `netspec check specs/lenet5.net` against
   `python -c pass` and `python -c "import torch"`.
6. The zoo's largest specs: `netspec check` of efficientnet_b7, regnet_y_128gf, densenet201,
   resnet152 and s3d, whole process and in process. Target (issue 12): regnet_y_128gf and
   efficientnet_b7 well under a second, taken as under 0.5 s.
7. Fused attention: ONNX's Attention (opset 23) against the MatMul, Softmax, MatMul netspec
   emits, at ViT-B/16's and Swin-T's attention shapes (bench/fused_attention.py): whether netspec
   should lower to the fused operator.
8. Lower precisions (bench/precision_speed.py): `export --quantize int8` and `--dtype f16
   --f32-io` against f32 for resnet50, mobilenet_v2 and efficientnet_b0 at batch 1, onnxruntime
   on the CPU (and f16 on CUDA where onnxruntime-gpu is), interleaved in one process, with the
   accuracy of each beside its speed. Target (issue 16): int8 resnet50 at least 2x faster than
   f32, cosine >= 0.99.

`--only 8` (any subset) refreshes those sections in the existing RESULTS.md and keeps the others,
each refreshed section saying when and how it was measured.

Whole-process figures are medians of runs interleaved round-robin (the order rotates every
round, output discarded); in-process figures are medians after a warm-up call.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402

import onnx_speed  # noqa: E402  (bench/: its helpers are reused, not copied)

PYTHON = sys.executable
_SCRIPT = Path(PYTHON).parent / "netspec"
NETSPEC = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "netspec"]
CHECK_MODELS = ("alexnet", "resnet50", "efficientnet_b0")
EXPORT_MODELS = ("alexnet", "resnet50")
INFER_MODELS = ("alexnet", "resnet50", "vit_b_16", "swin_t")
SCALES = (100, 1_000, 10_000)
ALL = (1, 2, 3, 4, 5, 6, 7, 8)
# the zoo's largest specs: by layers (efficientnet_b7, densenet201, resnet152) and by parameters
# (regnet_y_128gf, 645 M), and a 3-D one (s3d)
ZOO_MODELS = ("efficientnet_b7", "regnet_y_128gf", "densenet201", "resnet152", "s3d")


@dataclass
class Settings:
    quick: bool
    check_runs: int
    startup_runs: int
    scale_runs: dict
    inproc_runs: int
    export_runs: int
    export_warmup: bool
    infer_runs: int
    infer_batch8_runs: int


def settings(quick: bool) -> Settings:
    if quick:
        return Settings(True, check_runs=2, startup_runs=3, scale_runs={100: 3, 1_000: 2, 10_000: 1},
                        inproc_runs=2, export_runs=1, export_warmup=False, infer_runs=10, infer_batch8_runs=4)
    return Settings(False, check_runs=11, startup_runs=15, scale_runs={100: 9, 1_000: 7, 10_000: 5},
                    inproc_runs=7, export_runs=5, export_warmup=True, infer_runs=300, infer_batch8_runs=60)


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Target:
    name: str
    figure: str
    ok: bool


# ----------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    value = seconds * 1e3
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def run_once(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def wall_interleaved(commands: dict[str, list[str]], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times of whole processes, run round-robin; the order rotates every round."""
    names = list(commands)
    for _ in range(warmup):
        for name in names:
            run_once(commands[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(run_once(commands[name]))
    return times


def timed(fn, runs: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- the machine


def machine() -> list[tuple[str, str]]:
    import importlib.metadata as md

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=False).stdout.strip()
        commit = (commit + (" (with uncommitted changes)" if dirty else "")) or "?"
    except OSError:
        commit = "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("CPU", f"{onnx_speed.cpu_name()} ({platform.machine()})"),
        ("cores", f"{os.cpu_count()} logical (usable by this process: {len(os.sched_getaffinity(0))})"),
        ("RAM", ram),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("torch", version("torch")),
        ("torchinfo", version("torchinfo")),
        ("onnx", version("onnx")),
        ("onnxruntime", version("onnxruntime")),
        ("onnxscript", version("onnxscript")),
        ("netspec", f"{version('netspec')} (commit {commit})"),
        ("load average at start (1, 5, 15 min)", load),
    ]


# ----------------------------------------------------------------------------- 1. check latency


def bench_check(s: Settings, targets: list[Target]) -> Section:
    import netspec
    import torch
    import torchinfo
    from torch_models import MODELS

    sec = Section("1. `check` latency: netspec against torch + torchinfo")
    commands = {}
    for name in CHECK_MODELS:
        commands[("netspec", name)] = NETSPEC + ["check", f"specs/{name}.net"]
        commands[("torchinfo", name)] = [PYTHON, str(BENCH / "torchinfo_summary.py"), name]
    log(f"[1] check latency: {len(commands)} commands x {s.check_runs} runs, whole process")
    flat = {f"{a}:{b}": c for (a, b), c in commands.items()}
    times = wall_interleaved(flat, s.check_runs, warmup=0 if s.quick else 1)
    whole = {key: median(times[f"{key[0]}:{key[1]}"]) for key in commands}

    log("[1] in process")
    inproc = {}
    for name in CHECK_MODELS:
        spec = ROOT / "specs" / f"{name}.net"
        t_load = timed(lambda: netspec.load(spec).check(), s.inproc_runs)
        net = netspec.load(spec).check()
        t_table = timed(lambda: net.table(), s.inproc_runs)
        t_both = timed(lambda: netspec.load(spec).table(), s.inproc_runs)
        t_build = timed(lambda: MODELS[name](), s.inproc_runs)
        model = MODELS[name]()
        with torch.no_grad():
            t_summary = timed(lambda: torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0),
                              s.inproc_runs)
        inproc[name] = {k: median(v) for k, v in
                        (("load", t_load), ("table", t_table), ("both", t_both), ("build", t_build),
                         ("summary", t_summary))}

    sec.lines += [
        f"Whole process, wall clock, median of {s.check_runs} interleaved runs (output discarded). "
        "The PyTorch route is `python bench/torchinfo_summary.py NAME`: import torch and torchinfo, "
        "build the twin from bench/torch_models.py, print `torchinfo.summary(model, "
        "input_size=(1, 3, 224, 224))`. (With torchvision the import would be heavier still.)",
        "",
        "| model | `netspec check` ms | torch + torchinfo ms | speed-up (torch / netspec) |",
        "|---|---:|---:|---:|",
    ]
    for name in CHECK_MODELS:
        a, b = whole[("netspec", name)], whole[("torchinfo", name)]
        sec.lines.append(f"| {name} | {ms(a)} | {ms(b)} | {b / a:.1f}x |")
    sec.lines += [
        "",
        f"In process, imports excluded, median of {s.inproc_runs} after a warm-up: netspec's "
        "`netspec.load(spec).check()` (parse, elaborate, infer) and `.table()` (the rendered table) "
        "against building the PyTorch module and `torchinfo.summary(...)` (which runs a forward pass "
        "with hooks).",
        "",
        "| model | netspec load+check ms | netspec table ms | netspec load+table ms | torch build module ms "
        "| torchinfo.summary ms | summary / (load+table) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in CHECK_MODELS:
        r = inproc[name]
        sec.lines.append(f"| {name} | {ms(r['load'])} | {ms(r['table'])} | {ms(r['both'])} | {ms(r['build'])} "
                         f"| {ms(r['summary'])} | {r['summary'] / r['both']:.1f}x |")
    speedup = whole[("torchinfo", "resnet50")] / whole[("netspec", "resnet50")]
    targets.append(Target("`netspec check resnet50` >= 10x faster than torch + torchinfo (whole process)",
                          f"{speedup:.1f}x ({ms(whole[('netspec', 'resnet50')])} ms against "
                          f"{ms(whole[('torchinfo', 'resnet50')])} ms)", speedup >= 10))
    sec.lines += ["", *breakdown(inproc["resnet50"], whole[("netspec", "resnet50")])]
    return sec


# What `check` cannot do without: the pydantic models of the layers and the AST, and lark's parser.
DEPENDENCY_IMPORTS = "from pydantic import BaseModel; import lark"


def breakdown(inproc: dict, whole_s: float) -> list[str]:
    """Where `netspec check specs/resnet50.net` spends its time: interpreter start, imports
    (python -X importtime, one run, top-level modules), compile, table."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run(NETSPEC + ["check", "specs/resnet50.net"], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    top: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _self_us, cumulative, name = line[len("import time:"):].split("|")
        if name.startswith("  "):  # nested: counted in its top-level parent
            continue
        top[name.strip()] = top.get(name.strip(), 0) + int(cumulative)
    total_imports = sum(top.values()) / 1e6
    floors = wall_interleaved({"pass": [PYTHON, "-c", "pass"], "deps": [PYTHON, "-c", DEPENDENCY_IMPORTS]}, 7)
    floor, deps = median(floors["pass"]), median(floors["deps"])
    rows = sorted(top.items(), key=lambda kv: -kv[1])[:10]
    lines = [
        f"Where `netspec check specs/resnet50.net` ({ms(whole_s)} ms whole process) spends its time: "
        f"`python -c pass` {ms(floor)} ms; imports {ms(total_imports)} ms (one run of "
        "`PYTHONPROFILEIMPORTTIME=1`, which itself inflates them a little; top-level modules, cumulative); "
        f"compile (load+check) {ms(inproc['load'])} ms and table {ms(inproc['table'])} ms in a warm process. "
        f"Python importing only the two libraries `check` is built on, `python -c \"{DEPENDENCY_IMPORTS}\"`, "
        f"takes {ms(deps)} ms (median of 7), {ms(deps - floor)} ms of it pydantic and lark: netspec's own "
        f"share of the whole process is {ms(whole_s - deps)} ms. The largest imports:",
        "",
        "| module | cumulative import ms |",
        "|---|---:|",
    ]
    lines += [f"| `{name}` | {us / 1e3:.1f} |" for name, us in rows]
    return lines


# ----------------------------------------------------------------------------- 2. scaling


def chain_spec(layers: int) -> str:
    """`layers` layers: conv(16, 3) -> relu, repeated, in one chain."""
    steps = "".join("    -> conv(16, 3, padding=1) -> relu\n" for _ in range(layers // 2))
    return f"network chain{layers}\n\ninput image: f32[N, 16, 16, 16]\n\nfeatures = image\n{steps}\noutput features\n"


def bench_scaling(s: Settings, targets: list[Target], tmp: Path) -> Section:
    import netspec

    sec = Section("2. Scaling: generated conv/relu chains")
    paths = {}
    for n in SCALES:
        paths[n] = tmp / f"chain{n}.net"
        paths[n].write_text(chain_spec(n))
        layers = len(netspec.load(paths[n]).check().graph) - 1  # less the input node
        assert layers == n, (n, layers)
    rows = {}
    for n in SCALES:
        runs = s.scale_runs[n]
        log(f"[2] {n:,} layers: whole process x {runs}, in process x {runs}")
        whole = median(wall_interleaved({"check": NETSPEC + ["check", str(paths[n])]}, runs,
                                        warmup=0 if n == max(SCALES) and s.quick else 1)["check"])
        # the layer-count check above was the warm-up
        t_load = median(timed(lambda: netspec.load(paths[n]).check(), runs, warmup=0))
        net = netspec.load(paths[n]).check()
        t_table = median(timed(lambda: net.table(), runs, warmup=0))
        rows[n] = (whole, t_load, t_load + t_table)
    sec.lines += [
        "Each spec is one chain `image -> conv(16, 3, padding=1) -> relu -> ...` of N layers "
        "(N/2 convolutions, N/2 ReLUs) on a 16x16x16 input. Whole process: `netspec check FILE` "
        "(prints the full table), median of the runs; in process: `netspec.load(FILE).check()` "
        "and `.table()` of the loaded network, medians (load+table is the sum of the two).",
        "",
        "| layers | runs | whole process ms | in process: load+check ms | per layer us "
        "| in process: load+table ms | per layer us |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in SCALES:
        whole, t_load, t_both = rows[n]
        sec.lines.append(f"| {n:,} | {s.scale_runs[n]} | {ms(whole)} | {ms(t_load)} | {t_load / n * 1e6:.0f} "
                         f"| {ms(t_both)} | {t_both / n * 1e6:.0f} |")
    big, mid = max(SCALES), sorted(SCALES)[-2]
    marginal_hi = (rows[big][0] - rows[mid][0]) / (big - mid)
    marginal_lo = (rows[mid][0] - rows[SCALES[0]][0]) / (mid - SCALES[0])
    sec.lines += ["", f"Whole process, marginal cost per layer: {marginal_lo * 1e6:.0f} us from {SCALES[0]:,} to "
                      f"{mid:,} layers, {marginal_hi * 1e6:.0f} us from {mid:,} to {big:,}."]
    targets.append(Target(f"`netspec check` of {big:,} layers < 3 s (whole process)",
                          f"{rows[big][0]:.2f} s", rows[big][0] < 3.0))
    ratio = (rows[big][2] / big) / (rows[mid][2] / mid)
    targets.append(Target(f"linear: per-layer time at {big:,} / at {mid:,} layers <= 1.5 (in process, load+table)",
                          f"{ratio:.2f} ({rows[big][2] / big * 1e6:.0f} us against "
                          f"{rows[mid][2] / mid * 1e6:.0f} us a layer)", ratio <= 1.5))
    return sec


# ----------------------------------------------------------------------------- 3. export


def bench_export(s: Settings, targets: list[Target], tmp: Path) -> Section:
    import netspec
    import torch

    sec = Section("3. Export time: netspec against torch.onnx.export")
    try:
        import onnxscript  # noqa: F401
        exporters = {"dynamo": True, "torchscript": False}
    except ImportError:
        exporters = {"torchscript": False}
    rows = {}
    for name in EXPORT_MODELS:
        spec = ROOT / "specs" / f"{name}.net"
        model = onnx_speed.twin(name)
        weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        x = torch.zeros(1, 3, 224, 224)
        out = tmp / "export"
        out.mkdir(exist_ok=True)

        def run_netspec():
            netspec.load(spec).export(out / "netspec.onnx", weights=weights, batch=1)

        def torch_export(dynamo: bool):
            def fn():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    kwargs = dict(verbose=False) if dynamo else dict(opset_version=onnx_speed.OPSET)
                    torch.onnx.export(model, (x,), str(out / f"torch_{dynamo}.onnx"), dynamo=dynamo,
                                      input_names=["image"], **kwargs)
            return fn

        fns = {"netspec": run_netspec}
        fns.update({label: torch_export(flag) for label, flag in exporters.items()})
        log(f"[3] export {name}: {', '.join(fns)} x {s.export_runs}")
        times = onnx_speed.time_round_robin(fns, s.export_runs, int(s.export_warmup), collect=True)
        sizes = {label: sum(p.stat().st_size for p in out.iterdir()
                            if p.name.startswith("netspec" if label == "netspec" else f"torch_{exporters[label]}"))
                 for label in fns}
        rows[name] = ({k: median(v) for k, v in times.items()}, sizes)
        for p in out.iterdir():
            p.unlink()
    labels = ["netspec"] + list(exporters)
    sec.lines += [
        f"In process, median of {s.export_runs} interleaved runs"
        f"{' after a warm-up round' if s.export_warmup else ' (no warm-up)'}, batch 1, the twin's weights on "
        "both sides, written to a file. netspec: `netspec.load(spec).export(path, weights=state_dict, batch=1)` "
        "— compile, lower, `onnx.checker` (full check), write. torch: `torch.onnx.export(model, (x,), path, ...)` "
        "of the already-built module; `dynamo` = dynamo=True (torch 2.13's default, via onnxscript, its default "
        "opset, weights as external data), `torchscript` = dynamo=False, opset 17.",
        "",
        "| model | " + " | ".join(f"{lab} ms" for lab in labels) + " | "
        + " | ".join(f"netspec / {lab}" for lab in exporters) + " | bytes written (netspec / "
        + " / ".join(exporters) + ") |",
        "|---|" + "---:|" * (len(labels) + len(exporters)) + "---|",
    ]
    all_ok = True
    for name in EXPORT_MODELS:
        med, sizes = rows[name]
        ratios = [med["netspec"] / med[lab] for lab in exporters]
        all_ok &= all(r < 1 for r in ratios)
        sec.lines.append(f"| {name} | " + " | ".join(ms(med[lab]) for lab in labels) + " | "
                         + " | ".join(f"{r:.2f}" for r in ratios) + " | "
                         + " / ".join(f"{sizes[lab] / 1e6:.0f} MB" for lab in labels) + " |")
    figure = "; ".join(f"{name}: " + ", ".join(f"{rows[name][0]['netspec'] / rows[name][0][lab]:.2f}x {lab}"
                                               for lab in exporters) for name in EXPORT_MODELS)
    targets.append(Target("export faster than torch.onnx.export (netspec / torch < 1, each exporter)", figure, all_ok))
    return sec


# ----------------------------------------------------------------------------- 4. inference


def bench_inference(s: Settings, targets: list[Target]) -> Section:
    import collections

    import netspec
    import onnxruntime as ort
    import torch

    sec = Section("4. Inference: netspec's ONNX against torch.onnx.export's, onnxruntime CPU")

    session_options = onnx_speed.session_options
    shared = session_options()
    rows = []
    for name in INFER_MODELS:
        net = netspec.load(ROOT / "specs" / f"{name}.net").check()
        model = onnx_speed.twin(name)
        weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        input_name = net.graph.inputs[0][0] if isinstance(net.graph.inputs[0], tuple) else "image"
        output_name = net.graph.outputs[0][0]
        for batch in (1, 8):
            runs = s.infer_runs if batch == 1 else s.infer_batch8_runs
            log(f"[4] {name} batch {batch}: {runs} interleaved runs")
            t0 = time.perf_counter()
            a_bytes = onnx_speed.netspec_onnx(net, weights, batch)
            b_bytes = onnx_speed.torch_onnx(model, batch, input_name, output_name)
            same = ""
            if batch == 1 and not s.quick:
                ga = onnx_speed.optimized_graph(a_bytes, session_options)
                gb = onnx_speed.optimized_graph(b_bytes, session_options)
                if ga == gb:
                    same = "yes"
                elif sorted(ga, key=repr) == sorted(gb, key=repr):
                    same = f"same {len(ga)} nodes, in another order"
                else:
                    same = f"no ({len(ga)} / {len(gb)} nodes)"
            sa = ort.InferenceSession(a_bytes, shared, providers=["CPUExecutionProvider"])
            sb = ort.InferenceSession(b_bytes, shared, providers=["CPUExecutionProvider"])
            log(f"[4]   set up in {time.perf_counter() - t0:.0f} s")
            x = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224), dtype=np.float32)
            feed_a, feed_b = {sa.get_inputs()[0].name: x}, {sb.get_inputs()[0].name: x}
            ya, yb = sa.run(None, feed_a)[0], sb.run(None, feed_b)[0]
            diff = float(np.max(np.abs(ya - yb)))
            assert ya.shape == yb.shape and diff <= 1e-3 * max(1.0, float(np.max(np.abs(yb)))), (name, batch, diff)
            ta, tb = onnx_speed.time_interleaved(lambda: sa.run(None, feed_a), lambda: sb.run(None, feed_b),
                                                 runs, warmup=max(2, runs // 10))
            control = float("nan")
            if batch == 1:
                sc = ort.InferenceSession(a_bytes, shared, providers=["CPUExecutionProvider"])
                tc, td = onnx_speed.time_interleaved(lambda: sa.run(None, feed_a), lambda: sc.run(None, feed_a),
                                                     runs, warmup=max(2, runs // 10))
                control = median(tc) / median(td)
                del sc
            rows.append((name, batch, runs, median(ta), median(tb), median(ta) / median(tb), control, diff, same))
            del sa, sb
    sec.lines += [
        "onnxruntime "
        f"{ort.__version__}, CPUExecutionProvider, one shared SessionOptions (default threads and graph "
        "optimization; idle threads do not spin, so one session's threads do not take the cores from the "
        "other's: see bench/onnx_speed.py's session_options); netspec's model is "
        "`net.to_onnx(opset=17, batch=B, weights=state_dict)`, torch's is "
        "`torch.onnx.export(twin, ..., dynamo=False, opset_version=17)` of the same weights (batch-norm "
        "statistics randomised, so batch norm is not an identity); the two sessions are run alternately in "
        "one process (bench/onnx_speed.py's helpers). A/A = netspec's model against a second session of "
        "itself, timed the same way: how far a ratio strays from 1.000 by noise alone.",
        "",
        "| model | batch | runs | netspec ms | torch ms | ratio (netspec / torch) | A/A | max abs diff "
        "| same graph after ORT optimisation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    worst = 0.0
    for name, batch, runs, a, b, ratio, control, diff, same in rows:
        aa = f"{control:.3f}" if control == control else "-"
        sec.lines.append(f"| {name} | {batch} | {runs} | {a * 1e3:.2f} | {b * 1e3:.2f} | {ratio:.3f} | {aa} "
                         f"| {diff:.1e} | {same or '-'} |")
        worst = max(worst, ratio)
    targets.append(Target(f"inference netspec / torch ONNX <= {onnx_speed.TARGET} (every model and batch)",
                          f"worst {worst:.3f}", worst <= onnx_speed.TARGET))
    del torch, collections
    return sec


# ----------------------------------------------------------------------------- 5. start-up


def bench_startup(s: Settings) -> Section:
    sec = Section("5. Start-up, whole process")
    commands = {
        "`python -c pass` (the floor)": [PYTHON, "-c", "pass"],
        "`netspec --version`": NETSPEC + ["--version"],
        "`netspec check specs/lenet5.net`": NETSPEC + ["check", "specs/lenet5.net"],
        "`python -c \"import torch\"`": [PYTHON, "-c", "import torch"],
    }
    log(f"[5] start-up: {len(commands)} commands x {s.startup_runs} runs")
    times = wall_interleaved(commands, s.startup_runs, warmup=0 if s.quick else 1)
    floor = median(times["`python -c pass` (the floor)"])
    lenet = median(times["`netspec check specs/lenet5.net`"])
    sec.lines += [
        f"Median of {s.startup_runs} interleaved runs, wall clock, output discarded. `netspec` is the "
        f"console script `{rel(Path(NETSPEC[0])) if len(NETSPEC) == 1 else 'python -m netspec'}`.",
        "",
        "| command | median ms | x python start-up | x `netspec check lenet5` |",
        "|---|---:|---:|---:|",
    ]
    for label, values in times.items():
        m = median(values)
        sec.lines.append(f"| {label} | {ms(m)} | {m / floor:.1f} | {m / lenet:.2f} |")
    return sec


def bench_zoo(s: Settings, targets: list[Target]) -> Section:
    import netspec
    from netspec.report import totals

    sec = Section("6. The zoo's largest specs")
    commands = {name: NETSPEC + ["check", f"specs/{name}.net"] for name in ZOO_MODELS}
    log(f"[6] zoo: {len(commands)} commands x {s.check_runs} runs, whole process")
    times = wall_interleaved(commands, s.check_runs, warmup=0 if s.quick else 1)
    sec.lines += [
        f"`netspec check` of the largest torchvision models under specs/, whole process, wall clock, "
        f"median of {s.check_runs} interleaved runs (output discarded); in process, "
        f"`netspec.load(spec).table()`, median of {s.inproc_runs} after a warm-up.",
        "",
        "| spec | layers | params | `netspec check` ms | in process ms |",
        "|---|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for name in ZOO_MODELS:
        spec = ROOT / "specs" / f"{name}.net"
        t = totals(netspec.load(spec).check().graph)
        inproc = median(timed(lambda: netspec.load(spec).table(), s.inproc_runs))
        whole = median(times[name])
        worst = max(worst, whole)
        sec.lines.append(f"| {name} | {t.layers:,} | {t.params:,} | {ms(whole)} | {ms(inproc)} |")
    largest = {name: median(times[name]) for name in ("regnet_y_128gf", "efficientnet_b7")}
    targets.append(Target("`netspec check` of regnet_y_128gf and efficientnet_b7 well under a second "
                          "(whole process)", f"{ms(largest['regnet_y_128gf'])} ms and "
                          f"{ms(largest['efficientnet_b7'])} ms", max(largest.values()) < 0.5))
    return sec


def bench_fused_attention(s: Settings) -> Section:
    import fused_attention
    import onnxruntime as ort

    sec = Section("7. Fused attention: ONNX's Attention (opset 23) against netspec's MatMul, Softmax, MatMul")
    runs = 20 if s.quick else 60
    log(f"[7] fused attention: {len(fused_attention.SHAPES)} shapes x {runs} interleaved runs")
    rows = fused_attention.measure(runs)
    sec.lines += [
        f"onnxruntime {ort.__version__}, CPU, the attention core alone (softmax(q k^T / sqrt(d)) v over "
        f"[batch, heads, tokens, d]), seeded inputs, outputs checked equal, median of {runs} interleaved runs "
        "(bench/fused_attention.py). netspec lowers attention to MatMul, Mul, Softmax, MatMul at every "
        "opset (onnxruntime fuses them into FusedMatMul, Softmax, MatMul); it would emit `Attention` at "
        "opset 23 and up only where that is faster at every shape.",
        "",
        "| attention | Attention-23 ms | netspec's ms | ratio (fused / netspec's) |",
        "|---|---:|---:|---:|",
    ]
    for name, fused, ours in rows:
        sec.lines.append(f"| {name} | {fused * 1e3:.3f} | {ours * 1e3:.3f} | {fused / ours:.3f} |")
    return sec


def bench_precision(s: Settings, targets: list[Target]) -> Section:
    import onnxruntime as ort
    import precision_speed

    from netspec.precision import devices

    sec = Section("8. Lower precisions: int8 and f16 against f32")
    runs = 20 if s.quick else 150
    tables = []
    for device in devices():
        log(f"[8] {', '.join(precision_speed.MODELS)} on {device}: {runs} interleaved runs each")
        results = {name: precision_speed.measure(name, runs, device, log) for name in precision_speed.MODELS}
        tables.append((device, results))
    sec.lines += [
        f"onnxruntime {ort.__version__}, batch 1, the models' sessions run alternately in one process, median "
        f"of {runs} runs each (bench/precision_speed.py). int8: `export --quantize int8` (onnxruntime's static "
        f"QDQ quantization, weights QInt8 per channel, activations QUInt8, MinMax), calibrated on "
        f"{precision_speed.CALIBRATION_SAMPLES} seeded inputs; f16: `export --dtype f16 --f32-io`. Accuracy "
        f"against the f32 model over {precision_speed.EVAL_SAMPLES} other seeded inputs, with two sets of "
        "weights, neither trained (this machine has no trained weights): netspec's seeded ones (PyTorch's "
        "initialisation, batch norms at mean 0 and variance 1, which leave the logits almost the same for "
        "every input: the last layer's bias dominates them, and the plain cosine is flattering), and the same "
        "with each batch norm's statistics measured on seeded inputs, layer after layer, so activations keep "
        "their scale through the depth, as a trained network's do. The input-dependent part's cosine compares "
        "each output less the f32 outputs' mean over the inputs: the differences between inputs that a "
        "classifier acts on. Top-1 agreement is of the measured-statistics models.",
    ]
    for device, results in tables:
        sec.lines += ["", f"**{device.upper() if device == 'cuda' else 'CPU'}**", "", *precision_speed.HEADER,
                      *precision_speed.rows(results)]
    cpu = dict(tables)["cpu"]["resnet50"]
    speedup = cpu["ms"]["f32"] / cpu["ms"]["int8"]
    seeded, measured = cpu["seeded"]["int8"]["cosine"], cpu["measured"]["int8"]["cosine"]
    targets.append(Target("int8 resnet50 at least 2x faster than f32 (onnxruntime CPU, batch 1)",
                          f"{speedup:.2f}x ({cpu['ms']['int8']:.1f} ms against {cpu['ms']['f32']:.1f} ms)",
                          speedup >= precision_speed.TARGET_SPEEDUP))
    targets.append(Target("int8 resnet50 cosine to f32 >= 0.99 (lowest over the inputs)",
                          f"{seeded:.5f} with seeded weights; {measured:.5f} with measured batch-norm statistics",
                          min(seeded, measured) >= precision_speed.TARGET_COSINE))
    return sec


# ----------------------------------------------------------------------------- the report


def render(s: Settings, info, targets: list[Target], sections: list[Section], elapsed: float, command: str) -> str:
    lines = [
        "# netspec benchmark results",
        "",
        f"Written by `{command}` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} "
        f"({'quick run: few repetitions, figures are rough' if s.quick else 'full run'}; took {elapsed / 60:.1f} min). "
        "Medians; see bench/run_all.py for what is timed and how. netspec's modules are byte-compiled first, "
        "as `pip install .` does. Timings on a shared 2-core machine move by several percent between runs, "
        "and much more when other work runs beside them (see the load averages below): compare ratios taken "
        "in one run rather than absolute times across runs.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info],
        "",
        "## Targets",
        "",
        "| target | figure | result |",
        "|---|---|---|",
        *[f"| {t.name} | {t.figure} | {'PASS' if t.ok else 'MISS'} |" for t in targets],
    ]
    for sec in sections:
        lines += ["", f"## {sec.title}", "", *sec.lines]
    return "\n".join(lines) + "\n"


def _section_key(title: str) -> str:
    """A section's number (`8` of `8. Lower precisions: ...`), or its whole title (`Targets`)."""
    number = title.split(".", 1)[0]
    return number if number.isdigit() else title


def refreshed(old: str, info, targets: list[Target], sections: list[Section], command: str) -> str:
    """`old` (a RESULTS.md) with `sections` put in place of those of the same number (or added
    in order), each saying when, on what commit and under what load it was measured, and the
    targets table's rows of `targets` replaced or added; the rest kept as it was."""
    facts = dict(info)
    header, *parts = old.split("\n## ")
    chunks = {_section_key(part.split("\n", 1)[0]): "## " + part for part in parts}
    table_rows = {t.name: f"| {t.name} | {t.figure} | {'PASS' if t.ok else 'MISS'} |" for t in targets}
    for key, chunk in list(chunks.items()):
        if key == "Targets":
            lines = chunk.rstrip("\n").split("\n")
            kept = [line for line in lines if line.split(" | ")[0].removeprefix("| ") not in table_rows]
            chunks[key] = "\n".join(kept + list(table_rows.values())) + "\n"
    for sec in sections:
        number = _section_key(sec.title)
        note = (f"(Refreshed alone by `{command}` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
                f"netspec {facts['netspec']}, load average {facts['load average at start (1, 5, 15 min)']} at the "
                f"start and {facts['load average at end (1, 5, 15 min)']} at the end; the other sections are from "
                "the run described at the top.)")
        chunks[number] = "\n".join([f"## {sec.title}", "", note, "", *sec.lines]) + "\n"
    order = sorted(chunks, key=lambda k: (k.isdigit(), int(k) if k.isdigit() else 0))
    return header.rstrip("\n") + "\n\n" + "\n".join(chunks[k].rstrip("\n") + "\n" for k in order)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def byte_compile_netspec() -> None:
    """Write netspec's .pyc files before any whole-process timing, as `pip install .` does: an
    editable install run with PYTHONDONTWRITEBYTECODE set would otherwise recompile every module
    from source in every run (tens of milliseconds no installed user pays). torch, torchinfo and
    the other dependencies were byte-compiled when pip installed them."""
    import compileall

    if not compileall.compile_dir(str(ROOT / "netspec"), quiet=1):
        raise SystemExit("could not byte-compile netspec/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 2 minutes)")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--only", default=",".join(map(str, ALL)),
                        help="which benchmarks, e.g. 1,5 (default: all); with a subset, the other sections "
                             "of an existing --output file are kept")
    args = parser.parse_args()
    s = settings(args.quick)
    only = {int(x) for x in args.only.split(",") if x.strip()}
    start = time.perf_counter()
    byte_compile_netspec()
    info = machine()
    targets: list[Target] = []
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="netspec-bench-") as tmp_name:
        tmp = Path(tmp_name)
        steps = {1: lambda: bench_check(s, targets), 2: lambda: bench_scaling(s, targets, tmp),
                 3: lambda: bench_export(s, targets, tmp), 4: lambda: bench_inference(s, targets),
                 5: lambda: bench_startup(s), 6: lambda: bench_zoo(s, targets), 7: lambda: bench_fused_attention(s),
                 8: lambda: bench_precision(s, targets)}
        for number, step in steps.items():
            if number in only:
                t0 = time.perf_counter()
                section = step()
                took = time.perf_counter() - t0
                section.lines.append(f"\n(This benchmark took {took:.0f} s.)")
                sections.append(section)
                log(f"[{number}] done in {took:.0f} s")
    elapsed = time.perf_counter() - start
    info.append(("load average at end (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in os.getloadavg())))
    command = "python bench/run_all.py" + (" --quick" if args.quick else "") + (
        f" --only {args.only}" if only != set(ALL) else "")
    if only != set(ALL) and args.output.exists():
        text = refreshed(args.output.read_text(encoding="utf-8"), info, targets, sections, command)
    else:
        text = render(s, info, targets, sections, elapsed, command)
    write_atomically(args.output, text)
    print(text)
    log(f"wrote {rel(args.output.resolve())} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
