"""What other tools count for torchvision's transformers, for the README's counting conventions
(never run in CI: it needs torchvision, fvcore and torchinfo).

    tv/bin/pip install torch==2.14.1 torchvision==0.29.1 fvcore torchinfo==1.8.0
    tv/bin/python tests/reference/peer_counts.py

For each model, at batch 1 and its DEFAULT weights' input size: torchvision's published figure
(`weights.meta["_ops"]`, "GFLOPS" that are multiply-accumulates), fvcore's FlopCountAnalysis
total, torchinfo's total mult-adds, and the operators fvcore skipped. netspec's own count is
`netspec check specs/<model>.net` (tests/test_zoo.py holds it equal to the recorded reference).
"""

from __future__ import annotations

import logging
import warnings

import torch
import torchinfo
import torchvision
from fvcore.nn import FlopCountAnalysis

MODELS = {"vit_b_16": 224, "swin_t": 224, "swin_v2_t": 256, "maxvit_t": 224}


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, torchinfo {torchinfo.__version__}")
    for name, size in MODELS.items():
        model = getattr(torchvision.models, name)(weights=None).eval()
        published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
        analysis = FlopCountAnalysis(model, torch.randn(1, 3, size, size))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        fvcore_total = int(analysis.total())
        skipped = sorted(analysis.unsupported_ops())
        mult_adds = torchinfo.summary(model, input_size=(1, 3, size, size), verbose=0).total_mult_adds
        print(f"{name:10s} torchvision {published:6.2f} G  fvcore {fvcore_total:>15,}  torchinfo {mult_adds:>15,}  "
              f"fvcore skipped: {', '.join(skipped)}")


if __name__ == "__main__":
    main()
