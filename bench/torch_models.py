"""PyTorch twins of the specs the benchmarks compare against (bench/run_all.py, onnx_speed.py,
torchinfo_summary.py): `MODELS[name]()` builds the module, with `state_dict()` keys equal to the
spec's parameter names (torchvision's keys).

AlexNet and ResNet-18 are not repeated here: they are imported from tests/torch_models.py (the
parity tests' hand-written references), by path, so the repository holds one copy of each.
ResNet-50 and EfficientNet-B0, which no test needs, are written here from torchvision's module
trees (torchvision.models.resnet50 and efficientnet_b0). torchvision itself is not used: the
registry's build for torch 2.13.0 is CUDA-linked and does not import next to the CPU torch.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from torch import nn

_TESTS_MODELS = Path(__file__).resolve().parent.parent / "tests" / "torch_models.py"


def _load_tests_models():
    name = "netspec_tests_torch_models"  # not `torch_models`: that is this module's own name
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _TESTS_MODELS)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_tests = _load_tests_models()
AlexNet = _tests.AlexNet
ResNet18 = _tests.ResNet18


# ----------------------------------------------------------------------------- ResNet-50


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: the stride sits in the 3x3 convolution)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, down: bool = False):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if down:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * self.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * self.expansion))

    def forward(self, x):
        # torchvision's order: the main path, then the projection shortcut (the order of the
        # ONNX nodes, and so of onnxruntime's execution, follows it)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50(nn.Module):
    def __init__(self, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        stages = []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            layers = [Bottleneck(inplanes, planes, stride, down=True)]
            inplanes = planes * Bottleneck.expansion
            layers += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


# ----------------------------------------------------------------------------- EfficientNet-B0


def _make_divisible(value: float, divisor: int = 8) -> int:
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def cba(inp: int, oup: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """torchvision's Conv2dNormActivation(..., activation_layer=nn.SiLU or None)."""
    layers: list[nn.Module] = [
        nn.Conv2d(inp, oup, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup)]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * scale


class MBConv(nn.Module):
    """torchvision's MBConv; stochastic depth is the identity at inference and is left out."""

    def __init__(self, t: int, kernel: int, stride: int, inp: int, oup: int):
        super().__init__()
        expanded = _make_divisible(inp * t)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expanded != inp:
            layers.append(cba(inp, expanded))
        layers += [cba(expanded, expanded, kernel, stride, groups=expanded),
                   SqueezeExcitation(expanded, max(1, inp // 4)),
                   cba(expanded, oup, act=False)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.use_res_connect else self.block(x)


class EfficientNetB0(nn.Module):
    # expansion t, kernel, stride, input channels, output channels, layers (torchvision's
    # MBConvConfig list for B0: width and depth multipliers 1.0)
    SETTING = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
               (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

    def __init__(self, classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [cba(3, 32, 3, stride=2)]
        for t, kernel, stride, inp, oup, n in self.SETTING:
            layers.append(nn.Sequential(*[MBConv(t, kernel, stride if i == 0 else 1, inp if i == 0 else oup, oup)
                                          for i in range(n)]))
        layers.append(cba(320, 1280))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(1280, classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


MODELS = {"alexnet": AlexNet, "resnet18": ResNet18, "resnet50": ResNet50, "efficientnet_b0": EfficientNetB0}


# ----------------------------------------------------------------------------- ViT-B/16

VisionTransformer = _tests.VisionTransformer  # its defaults are ViT-B/16's
MODELS["vit_b_16"] = VisionTransformer


# ----------------------------------------------------------------------------- Swin-T

SwinTransformer = _tests.SwinTransformer  # its defaults are Swin-T's
MODELS["swin_t"] = SwinTransformer
