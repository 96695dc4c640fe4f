"""Record what PyTorch's autograd keeps for the backward pass of real torchvision models
(never run in CI: torchvision is not installed there; see dump_torchvision.py for the venv).

    tv/bin/python tests/reference/record_memory.py             # the models in MODELS
    tv/bin/python tests/reference/record_memory.py resnet18    # some

writes tests/data/memory_reference.json: for each model, built as dump_torchvision.py builds it
(`weights=None`; googlenet and inception_v3 without their auxiliary classifiers, segmentation
models without the aux head) in train mode at batch BATCH and the input size of its DEFAULT
weights (dump_torchvision.input_shape, which the specs declare), the bytes of every
unique storage that `torch.autograd.graph.saved_tensors_hooks` sees packed during one forward
pass, parameters and buffers excluded (netspec counts those as parameters_bytes), on the CPU.
tests/test_memory.py compares `netspec check specs/<model>.net --memory --train` with them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dump_torchvision import build, input_shape  # noqa: E402  (the models as the zoo records them)

OUT = Path(__file__).resolve().parents[1] / "data" / "memory_reference.json"
MODELS = ["resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "densenet121",
          "vit_b_16", "convnext_tiny", "mobilenet_v2", "googlenet", "shufflenet_v2_x1_0", "regnet_y_400mf",
          "squeezenet1_1", "alexnet", "swin_t", "mnasnet0_5", "resnext50_32x4d",
          "inception_v3", "efficientnet_v2_s", "maxvit_t", "swin_v2_t", "vgg16_bn", "regnet_x_400mf",
          "mobilenet_v3_large", "shufflenet_v2_x0_5", "r3d_18", "mc3_18", "r2plus1d_18",
          "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"]
BATCH = 2


def saved_activation_bytes(module: torch.nn.Module, *inputs: torch.Tensor) -> int:
    """Bytes of the unique storages autograd saves in one forward pass, parameters and buffers
    excluded (a weight is saved by its layer, but it is no activation)."""
    state = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    storages: dict[int, int] = {}
    keep = []  # hold the packed tensors so that a freed storage's address is not reused

    def pack(t: torch.Tensor):
        keep.append(t)
        storage = t.untyped_storage()
        if storage.data_ptr() not in state:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*inputs)
    return sum(storages.values())


def main(names: list[str]) -> None:
    records = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in names:
        torch.manual_seed(0)
        model = build(name).train()
        shape = [BATCH, *input_shape(name)[1:]]
        image = torch.randn(*shape)
        records[name] = {"batch": BATCH, "input": shape,
                         "saved_activations_bytes": saved_activation_bytes(model, image),
                         "torch": torch.__version__, "torchvision": torchvision.__version__,
                         "device": "cpu"}
        print(name, records[name]["saved_activations_bytes"], flush=True)
    OUT.write_text(json.dumps(dict(sorted(records.items())), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or MODELS)
