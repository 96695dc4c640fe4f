"""The specs under specs/: every network, and the fourteen examples the slower walks cover.

specs/ holds one network per file (`netspec check specs/resnet101.net`) and, under specs/lib/,
the libraries that families share through `use` (blocks only, no inputs or outputs). Compiling
and counting every network is quick (tests/test_specs.py, tests/test_zoo.py); exporting,
drawing and mutating all 78 torchvision models would cost minutes and say little more, so
those tests walk EXAMPLES, one network of each kind the core grew up with.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
LIBRARIES = SPECS / "lib"

EXAMPLE_NAMES = ("alexnet", "densenet121", "efficientnet_b0", "fpn", "googlenet", "lenet5", "mobilenet_v2",
                 "mobilenet_v3_small", "nin", "resnet18", "resnet50", "squeezenet1_1", "unet", "vgg16")
EXAMPLES = [SPECS / f"{name}.net" for name in EXAMPLE_NAMES]


def networks() -> list[Path]:
    """Every network under specs/ (libraries under specs/lib/ excluded)."""
    return sorted(p for p in SPECS.rglob("*.net") if LIBRARIES not in p.parents)


def libraries() -> list[Path]:
    return sorted(LIBRARIES.rglob("*.net"))
