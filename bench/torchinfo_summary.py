"""The PyTorch route to a shape/parameter/MACs table, as a whole process: import torch and
torchinfo, build the model (bench/torch_models.py), print torchinfo.summary at 1x3x224x224.
bench/run_all.py times this process against `netspec check specs/NAME.net`.

    python bench/torchinfo_summary.py resnet50
"""

from __future__ import annotations

import sys

import torchinfo

from torch_models import MODELS  # bench/ is on sys.path: it is this script's directory


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "resnet50"
    model = MODELS[name]()
    print(torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0))


if __name__ == "__main__":
    main()
