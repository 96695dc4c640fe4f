"""How fast is `netspec check`? Whole-process wall time, medians over repeated runs, with peers
timed in the same run: a bare Python start-up (the floor) and `import torch` (what the PyTorch
route pays before it can print a single shape).

    python bench/check_speed.py [--runs 15]

Also times the largest torchvision models under specs/ (issue 12's target: `netspec check` on
regnet_y_128gf and efficientnet_b7 well under a second, whole process), and a generated spec of 2,000 layers (a chain of conv/batchnorm/relu blocks), both in
process (compile only) and as a whole `netspec check` process.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the largest models of the zoo, by layers (efficientnet_b7, densenet201, resnet152) and by
# parameters (regnet_y_128gf, 645 M)
ZOO_LARGEST = ("efficientnet_b7", "regnet_y_128gf", "densenet201", "resnet152")


def wall(command: list[str], runs: int) -> float:
    """Median wall time of a command, in seconds (output discarded)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def generated_spec(layers: int) -> str:
    """A chain of `layers` layers: conv -> batchnorm -> relu, repeated, with a classifier."""
    stages = []
    for i in range(-(-layers // 3)):
        stages.append(f"    -> conv{i}: conv(16, 3, padding=1, bias=false) -> bn{i}: batchnorm -> relu")
    return ("network generated\n\ninput image: f32[N, 16, 32, 32]\n\nfeatures = image\n"
            + "\n".join(stages) + "\n\noutput features\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    netspec = [python, "-m", "netspec", "check"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"medians of {args.runs} runs, whole process, wall clock\n")

    results: dict[str, float] = {}
    results["python -c pass"] = wall([python, "-c", "pass"], args.runs)
    for spec in ("lenet5", "alexnet", "vgg16"):
        results[f"netspec check {spec}"] = wall(netspec + [str(ROOT / "specs" / f"{spec}.net")], args.runs)
    for spec in ZOO_LARGEST:
        if (ROOT / "specs" / f"{spec}.net").exists():
            results[f"netspec check {spec}"] = wall(netspec + [str(ROOT / "specs" / f"{spec}.net")], args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "generated2000.net"
        big.write_text(generated_spec(2000))
        results["netspec check (2,000 layers)"] = wall(netspec + [str(big)], max(3, args.runs // 3))
        sys.path.insert(0, str(ROOT))
        from netspec.compiler import compile_file
        compile_file(big)  # warm: grammar cache, imports
        times = []
        for _ in range(5):
            start = time.perf_counter()
            result = compile_file(big)
            times.append(time.perf_counter() - start)
        assert result.ok and len(result.graph) >= 2000, "generated spec should check clean"
        in_process = statistics.median(times)
    try:
        import importlib.util
        if importlib.util.find_spec("torch") is not None:
            results["python -c 'import torch'"] = wall([python, "-c", "import torch"], max(3, args.runs // 3))
    except Exception:
        pass

    width = max(map(len, results))
    floor = results["python -c pass"]
    for name, seconds in results.items():
        print(f"  {name:<{width}}  {seconds * 1000:8.1f} ms   {seconds / floor:6.1f}x python start-up")
    print(f"\n  2,000-layer spec, in process (parse+elaborate+infer): {in_process * 1000:.1f} ms "
          f"({in_process / 2001 * 1e6:.1f} us per layer)")
    if "python -c 'import torch'" in results:
        ratio = results["python -c 'import torch'"] / results["netspec check alexnet"]
        print(f"  `import torch` alone takes {ratio:.1f}x as long as `netspec check alexnet`")


if __name__ == "__main__":
    main()
