"""The README's table of the torchvision models under specs/, from the recorded reference data.

    python tests/reference/zoo_table.py     # prints the table; tests/test_readme.py checks it

One row per network under specs/ that has reference data (tests/data/<name>_state_dict.json):
its input, parameters, buffers, MACs (netspec's counts, which tests/test_zoo.py holds equal to
torchvision's) and what its output is compared with in onnxruntime: torchvision's own module (a parity
fixture, tests/test_parity_torchvision.py) or an independently written PyTorch twin
(tests/test_parity_models.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
# compared instead with an independently written PyTorch module (tests/test_parity_models.py)
TWINS = {"alexnet", "resnet18", "mobilenet_v2", "squeezenet1_1"}


def rows() -> list[str]:
    specs = {p.stem: p for p in (ROOT / "specs").rglob("*.net") if "lib" not in p.relative_to(ROOT / "specs").parts}
    lines = ["| spec | input | params | buffers | GMACs | output compared with |",
             "|---|---|---:|---:|---:|---|"]
    docs = {p.name.removesuffix("_state_dict.json"): json.loads(p.read_text(encoding="utf-8"))
            for p in DATA.glob("*_state_dict.json")}
    # by family (the name up to its first digit or size word: resnet, regnet_x_, convnext), then
    # by MACs
    def family(name: str) -> str:
        return re.sub(r"(\d.*|_(tiny|small|base|large))$", "", name)

    for name in sorted(docs, key=lambda n: (family(n), docs[n]["macs"], n)):
        if name not in specs:
            continue
        doc = docs[name]
        shape = "x".join(map(str, doc["input_shape"][1:]))
        parity = ("torchvision" if (DATA / "parity" / f"{name}.npz").exists()
                  else "a PyTorch twin" if name in TWINS else "")
        lines.append(f"| `{specs[name].relative_to(ROOT).as_posix()}` | {shape} | {doc['params']:,} | "
                     f"{doc['buffers']:,} | {doc['macs'] / 1e9:.2f} | {parity} |")
    return lines


if __name__ == "__main__":
    print("\n".join(rows()))
