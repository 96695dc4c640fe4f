"""Record netspec's reference data from the real torchvision (never run in CI).

torchvision only installs with its matching torch build, 5.5 GB, so CI never has it. Where it is
installed (`python3 -m venv tv && tv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy`),

    tv/bin/python tests/reference/dump_torchvision.py            # every model
    tv/bin/python tests/reference/dump_torchvision.py resnet50   # some

writes, for each model:

- tests/data/<model>_state_dict.json: trainable parameters, buffer elements, MACs, the output
  shape and every state_dict key with its shape, in state_dict order, for the model built as
  torchvision builds it with `weights=None` (googlenet and inception_v3 without their auxiliary
  classifiers, segmentation models without the aux head) at the input size of its DEFAULT
  weights (224, 299 for inception_v3, 240 ... 600 for efficientnet_b1..b7, 384 and 480 for
  efficientnet_v2, 384 for regnet_y_128gf, 16 frames of 112 or 224 for video, the video Swins
  included, 520 for segmentation). The counts are taken on the meta device, so the largest
  models cost no memory.
  MACs are the multiply-accumulates of the Conv1d/2d/3d, ConvTranspose1d/2d/3d and Linear
  layers at batch 1 (forward hooks), and of nn.MultiheadAttention's projections and its two
  matrix products (Q K^T and A V), torchvision's convention for its published GFLOPS (ViT-B/16:
  17.56 G). The vision transformers are at 224 but vit_h_14, built with image_size=518 as its
  DEFAULT weights are. Swin and MaxViT (WINDOWED, at 224, the Swin V2 models at 256) compute
  their windowed attention functionally, out of the hooks' sight: F.linear with the qkv and proj
  weights, q.matmul(k^T), attn @ v, einsum; so do the video Swins (in VIDEO: swin3d_t, _s, _b
  at 16 frames of 224). Every such matrix product outside the hooked
  modules is counted too, as batch x M x K x N (a TorchFunctionMode sees the calls), and only
  those models' comment says so: no other model makes such a call, so their records are what
  the hooks alone gave. Softmax, norms and elementwise ops count 0; Swin V2's cpb_mlp, Linear
  layers applied to a constant table, counts as any Linear.
- for the models in PARITY, tests/data/parity/<model>.npz: torchvision's output, in eval mode,
  for weights drawn by tests/reference/weights.py from the recorded key list (the same function
  the test suite uses) and a seeded input of the shape given there (smaller than the default
  where the default would make the test slow), computed in float64 (the exact answer, near
  enough), with how far torchvision's own float32 run is from it (`torch_float32_error`,
  relative to the output's scale). Segmentation outputs are kept every 4th pixel. The constant
  buffers that weights.py does not draw (CONSTANT_BUFFERS: Swin's and MaxViT's
  relative_position_index, Swin V2's relative_coords_table) keep the module's own values, and
  each is stored exactly, under `constant/<state_dict key>`, so a test can check that netspec
  computes the same constants at compile time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode
from torchvision import models
from torchvision.models import segmentation, video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from weights import is_constant, seeded_input, seeded_state_dict  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data"

CLASSIFICATION = [
    "alexnet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "squeezenet1_0", "squeezenet1_1", "googlenet", "inception_v3",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    *(f"efficientnet_b{i}" for i in range(8)), "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
    *(f"regnet_y_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")),
    *(f"regnet_x_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
    "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
]
TRANSFORMERS = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]
# windowed attention, computed functionally (see `FunctionalProducts`)
WINDOWED = ["swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b", "maxvit_t"]
VIDEO = ["r3d_18", "mc3_18", "r2plus1d_18", "s3d", "swin3d_t", "swin3d_s", "swin3d_b"]
SEGMENTATION = ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
                "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]

# the resolution of each model's DEFAULT weights, where it is not 224 (checked against the
# weights' own transforms in `input_shape`)
RESOLUTION = {"inception_v3": 299, "efficientnet_b1": 240, "efficientnet_b2": 288, "efficientnet_b3": 300,
              "efficientnet_b4": 380, "efficientnet_b5": 456, "efficientnet_b6": 528, "efficientnet_b7": 600,
              "efficientnet_v2_s": 384, "efficientnet_v2_m": 480, "efficientnet_v2_l": 480,
              "regnet_y_128gf": 384, "vit_h_14": 518, "s3d": 224, "r3d_18": 112, "mc3_18": 112, "r2plus1d_18": 112,
              "swin3d_t": 224, "swin3d_s": 224, "swin3d_b": 224,
              "swin_v2_t": 256, "swin_v2_s": 256, "swin_v2_b": 256,
              **{name: 520 for name in SEGMENTATION}}

# model -> the input of its parity fixture: at least one model of every family (swin_t at 256 x 200:
# maps that need padding to whole windows, an odd one for patch merging, a shift on H alone)
PARITY = {
    "resnext50_32x4d": [1, 3, 224, 224], "wide_resnet50_2": [1, 3, 96, 128],
    "vgg11_bn": [1, 3, 224, 224], "densenet121": [1, 3, 224, 224], "squeezenet1_0": [1, 3, 224, 224],
    "googlenet": [1, 3, 224, 224], "inception_v3": [1, 3, 299, 299],
    "mobilenet_v3_large": [1, 3, 224, 224], "mnasnet0_5": [1, 3, 224, 224],
    "shufflenet_v2_x0_5": [1, 3, 224, 224], "efficientnet_b0": [1, 3, 224, 224],
    "efficientnet_b5": [1, 3, 224, 224], "efficientnet_v2_s": [1, 3, 224, 224],
    "regnet_x_400mf": [1, 3, 224, 224], "regnet_y_400mf": [1, 3, 224, 224],
    "convnext_tiny": [1, 3, 224, 224], "vit_b_32": [1, 3, 224, 224],
    "swin_t": [1, 3, 256, 200], "swin_v2_t": [1, 3, 256, 256], "maxvit_t": [1, 3, 224, 224],
    "r3d_18": [1, 3, 8, 56, 56], "mc3_18": [1, 3, 8, 56, 56], "r2plus1d_18": [1, 3, 8, 56, 56],
    "s3d": [1, 3, 16, 224, 224], "swin3d_t": [1, 3, 17, 38, 38],
    "fcn_resnet50": [1, 3, 64, 64], "deeplabv3_resnet50": [1, 3, 64, 64],
    "deeplabv3_mobilenet_v3_large": [1, 3, 64, 64], "lraspp_mobilenet_v3_large": [1, 3, 64, 64],
}
SEGMENTATION_STRIDE = 4  # segmentation fixtures keep every 4th pixel of each spatial axis


def build(name: str) -> nn.Module:
    if name in SEGMENTATION:
        return getattr(segmentation, name)(weights=None, weights_backbone=None, aux_loss=False)
    if name in VIDEO:
        return getattr(video, name)(weights=None)
    if name in ("googlenet", "inception_v3"):
        return getattr(models, name)(weights=None, aux_logits=False, init_weights=False)
    if name in TRANSFORMERS and RESOLUTION.get(name, 224) != 224:  # vit_h_14's weights are at 518
        return getattr(models, name)(weights=None, image_size=RESOLUTION[name])
    return getattr(models, name)(weights=None)


def constructor(name: str) -> str:
    module = ("torchvision.models.segmentation" if name in SEGMENTATION
              else "torchvision.models.video" if name in VIDEO else "torchvision.models")
    extra = (", weights_backbone=None, aux_loss=False" if name in SEGMENTATION
             else ", aux_logits=False, init_weights=False" if name in ("googlenet", "inception_v3")
             else f", image_size={RESOLUTION[name]}" if name in TRANSFORMERS and name in RESOLUTION else "")
    return f"{module}.{name}(weights=None{extra})"


def input_shape(name: str) -> list[int]:
    size = RESOLUTION.get(name, 224)
    weights = models.get_model_weights(name).DEFAULT
    transforms = weights.transforms()
    crop = list(getattr(transforms, "crop_size", None) or transforms.resize_size)  # segmentation: resized
    assert crop in ([size], [size, size]), f"{name}: DEFAULT weights crop {crop}, table says {size}"
    return [1, 3, 16, size, size] if name in VIDEO else [1, 3, size, size]


def output_of(out):
    return out["out"] if isinstance(out, dict) else out


class FunctionalProducts(TorchFunctionMode):
    """Multiply-accumulates of the matrix products called as functions, which no hook sees.

    Swin computes its window attention in a function (F.linear with the qkv and proj weights,
    q.matmul(k.transpose(-2, -1)), attn.matmul(v); Swin V2's cosine attention uses @) and MaxViT
    with torch.einsum. Each such call is counted as batch x M x K x N: its output's elements
    times the contracted length (for einsum, the product of every index's size). Calls made while
    a hooked module runs (`inside` > 0) are not counted: nn.Linear's own F.linear is its hook's,
    and nn.MultiheadAttention's products are in its analytic count. A mode handles one call at a
    time: what a function calls inside (einsum's own kernels) does not reach it again.
    """

    MATMULS = (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__,
               torch.bmm, torch.Tensor.bmm, torch.mm, torch.Tensor.mm)

    def __init__(self):
        super().__init__()
        self.macs = 0
        self.inside = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.inside == 0:
            if func is F.linear:  # out = x W^T: K is the weight's in_features
                weight = kwargs.get("weight", args[1] if len(args) > 1 else None)
                self.macs += out.numel() * weight.shape[-1]
            elif func in self.MATMULS:
                left = args[1] if func is torch.Tensor.__rmatmul__ else args[0]
                self.macs += out.numel() * left.shape[-1]  # K: the left operand's last axis
            elif func is torch.einsum:
                self.macs += self.einsum_macs(args[0], args[1:] if len(args) > 2 else list(args[1]))
        return out

    @staticmethod
    def einsum_macs(equation: str, operands) -> int:
        """The product of every index's size: one multiply-accumulate per combination."""
        inputs = equation.replace(" ", "").split("->")[0].split(",")
        assert len(inputs) == len(operands) == 2 and "..." not in equation, equation
        sizes = {}
        for letters, operand in zip(inputs, operands):
            for letter, size in zip(letters, operand.shape, strict=True):
                assert sizes.setdefault(letter, size) == size, equation
        return int(np.prod(list(sizes.values())))


def count_macs(model: nn.Module, x: torch.Tensor) -> tuple[int, list[int], int]:
    """Multiply-accumulates of conv / transposed-conv / linear weights for one forward pass, and
    of the functional matrix products outside those (`FunctionalProducts`); the last is returned
    on its own too, so the comment can say where there were any."""
    assert x.shape[0] == 1
    total = [0]
    functional = FunctionalProducts()

    def enter(m, inputs):
        functional.inside += 1

    def leave(m, inputs, output):
        functional.inside -= 1

    def conv_hook(m, inputs, output):
        total[0] += output.numel() * (m.in_channels // m.groups) * int(np.prod(m.kernel_size))

    def convt_hook(m, inputs, output):
        total[0] += inputs[0].numel() * (m.out_channels // m.groups) * int(np.prod(m.kernel_size))

    def linear_hook(m, inputs, output):
        total[0] += (inputs[0].numel() // m.in_features) * m.in_features * m.out_features

    def attention_hook(m, inputs, output):
        # self-attention over [N, L, E] (batch_first): the input projection, Q K^T, A V and the
        # output projection (called as F.linear inside, so its Linear hook does not fire)
        (n, length, e) = inputs[0].shape
        total[0] += n * (length * e * 3 * e + 2 * length * length * e + length * e * e)

    hooks = {nn.Conv1d: conv_hook, nn.Conv2d: conv_hook, nn.Conv3d: conv_hook,
             nn.ConvTranspose1d: convt_hook, nn.ConvTranspose2d: convt_hook,
             nn.ConvTranspose3d: convt_hook, nn.Linear: linear_hook,
             nn.MultiheadAttention: attention_hook}
    # isinstance: the video models' Conv3DSimple and Conv3DNoTemporal are subclasses of Conv3d
    handles = [m.register_forward_hook(hook) for m in model.modules()
               for kind, hook in hooks.items() if isinstance(m, kind)]
    hooked = [m for m in model.modules() if isinstance(m, tuple(hooks))]
    handles += [m.register_forward_pre_hook(enter) for m in hooked]
    handles += [m.register_forward_hook(leave) for m in hooked]
    with torch.no_grad(), functional:
        out = output_of(model(x))
    for h in handles:
        h.remove()
    assert functional.inside == 0
    return total[0] + functional.macs, list(out.shape), functional.macs


def write_reference(name: str) -> dict:
    shape = input_shape(name)
    torch.manual_seed(0)
    try:
        with torch.device("meta"):
            model = build(name).eval()
    except NotImplementedError:  # RegNet computes its widths with tensors: build on the CPU
        model = build(name).eval().to("meta")
    macs, output_shape, functional = count_macs(model, torch.empty(shape, device="meta"))
    # each phrase only where it applies, so that every record says what was counted in it (and
    # the convolutional models' records, which never had either phrase, are remade byte for byte)
    attention = (" MultiheadAttention's projections and matrix products,"
                 if any(isinstance(m, nn.MultiheadAttention) for m in model.modules()) else "")
    products = ("; and every matrix product called as a function outside those modules, F.linear, matmul/@, "
                "bmm and einsum, as batch x M x K x N, seen by a TorchFunctionMode" if functional else "")
    doc = {
        "comment": (f"Reference data for {constructor(name)}: trainable params, buffer elements, MACs "
                    "(Conv1d/2d/3d, ConvTranspose1d/2d/3d and Linear weights,"
                    f"{attention} forward hooks, batch 1{products}), "
                    "output shape and state_dict keys/shapes in state_dict order. Produced with torch "
                    f"{torch.__version__} + torchvision {torchvision.__version__}, model.eval(), input "
                    f"{'x'.join(map(str, shape))}, by tests/reference/dump_torchvision.py."),
        "model": f"torchvision.models.{name}",
        "input_shape": shape,
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "buffers": sum(b.numel() for b in model.buffers()),
        "macs": macs,
        "output_shape": output_shape,
        "state_dict": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    # one state_dict entry per line, so a diff of two recordings reads key by key
    head = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k != "state_dict")
    entries = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in doc["state_dict"].items())
    path = DATA / f"{name}_state_dict.json"
    path.write_text("{\n" + head + ',\n  "state_dict": {\n' + entries + "\n  }\n}\n", encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == doc
    return doc


def write_parity(name: str, doc: dict) -> float:
    torch.manual_seed(0)
    model = build(name).eval()
    state = seeded_state_dict(doc["state_dict"])
    own = model.state_dict()  # the module's own tensors (load_state_dict would want MNASNet's version metadata)
    # every key is drawn but the constant buffers, which keep the module's own values
    assert [key for key in own if not is_constant(key)] == list(state)
    constants = {f"constant/{key}": tensor.numpy().copy() for key, tensor in own.items() if is_constant(key)}
    with torch.no_grad():
        for key, array in state.items():
            own[key].copy_(torch.from_numpy(array))
    x = seeded_input(PARITY[name])
    with torch.no_grad():
        out32 = output_of(model(torch.from_numpy(x))).numpy()
        # the exact answer, near enough: the same weights and input in float64
        out = output_of(model.double()(torch.from_numpy(x).double())).numpy()
    stride = SEGMENTATION_STRIDE if name in SEGMENTATION else 1
    keep = (slice(None), slice(None), slice(None, None, stride), slice(None, None, stride)) if stride > 1 else ...
    kept, kept32 = out[keep], out32[keep]
    assert np.isfinite(kept).all() and float(np.abs(kept).max()) > 0.1, f"{name}: unusable output"
    # how far torchvision's own float32 run is from it, relative to the output's scale: the
    # floor any float32 implementation can be held to
    float32_error = float(np.abs(kept32 - kept).max()) / max(1.0, float(np.abs(kept).max()))
    np.savez_compressed(DATA / "parity" / f"{name}.npz", output=kept.astype(np.float64),
                        input_shape=np.array(PARITY[name]), stride=np.array(stride),
                        full_shape=np.array(out.shape), torch_float32_error=np.array(float32_error),
                        versions=np.array(f"torch {torch.__version__}, torchvision {torchvision.__version__}"),
                        **constants)
    return float32_error


def main() -> None:
    everything = CLASSIFICATION + TRANSFORMERS + WINDOWED + VIDEO + SEGMENTATION
    names = sys.argv[1:] or everything
    unknown = [n for n in names if n not in everything]
    if unknown:
        sys.exit(f"unknown model(s): {', '.join(unknown)}")
    (DATA / "parity").mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in names:
        doc = write_reference(name)
        parity = f"  parity (torch float32 off by {write_parity(name, doc):.1e})" if name in PARITY else ""
        print(f"{name:30s} params={doc['params']:>12,} buffers={doc['buffers']:>9,} "
              f"macs={doc['macs']:>16,} output={doc['output_shape']} keys={len(doc['state_dict'])}"
              + parity, flush=True)


if __name__ == "__main__":
    main()
