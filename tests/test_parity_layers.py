"""Numerical parity of every layer kind's ONNX lowering with PyTorch.

Each case is a one-layer network written to a spec file in tmp_path, loaded with
`netspec.load`, exported and run with onnxruntime (`Network.run`, CPU) on a random input of
batch 2 (the batch stays symbolic in the model), with the weights taken from the equivalent
torch module's `state_dict` (passed as a dict of numpy arrays). The result is compared with
the torch module / functional on the same input.

Tolerance: max |onnx - torch| <= 1e-5 * max(1, max |torch|), i.e. 1e-5 relative to the
scale of the reference output (absolute 1e-5 for outputs of magnitude <= 1).

`test_every_layer_kind_has_a_parity_case` makes a new layer kind fail until it gets a case here.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
import math
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netspec
from netspec.diagnostics import NetspecError
from netspec.layers import LAYERS

torch.set_grad_enabled(False)

RTOL = 1e-5
BATCH = 2


def assert_parity(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != torch {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != torch {want.dtype}"
    assert np.all(np.isfinite(got)), f"{what}: non-finite values in the ONNX result"
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if want.size else 0.0
    assert err <= RTOL * scale, f"{what}: max |onnx - torch| = {err:.3g} > {RTOL:g} * {scale:.3g}"


# ================================================================ cases


@dataclass
class Case:
    id: str
    kind: str
    body: str                      # binds `y` (the single output) from the inputs
    ref: Callable                  # (dict of torch inputs in declared layout) -> (tensor, weights)
    inputs: dict = field(default_factory=lambda: {"x": "f32[N, 4, 8, 8]"})
    opset: int | None = None
    scale: float = 1.0             # input values ~ N(0, scale^2)

    def text(self) -> str:
        decls = "\n".join(f"input {name}: {decl}" for name, decl in self.inputs.items())
        return f"network t\n{decls}\n{self.body}\noutput y\n"

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        out = {}
        for name, decl in self.inputs.items():
            dims = re.search(r"\[(.*)\]", decl).group(1).split(",")
            shape = [BATCH if d.strip() == "N" else int(d) for d in dims]
            out[name] = (rng.standard_normal(shape) * self.scale).astype(np.float32)
        return out


def state(module: nn.Module, prefix: str = "y") -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v.detach().numpy().copy() for k, v in module.state_dict().items()}


def randomize(module: nn.Module) -> nn.Module:
    """Non-default values for norm scales/shifts, running statistics and PReLU slopes (conv and
    linear weights keep torch's seeded default initialisation, which is already random)."""
    g = torch.Generator().manual_seed(1)
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            continue
        if name.endswith("running_var"):
            t.copy_(torch.rand(t.shape, generator=g) + 0.5)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
                                   nn.PReLU)):
            t.copy_(torch.randn(t.shape, generator=g) * 0.5 + (1.0 if name == "weight" else 0.0))
    return module


def to_first(x: torch.Tensor) -> torch.Tensor:
    """Channels last (NLC, NHWC, NDHWC) to channels first (NCL, NCHW, NCDHW)."""
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def to_last(y: torch.Tensor) -> torch.Tensor:
    """Channels first to channels last; a flat [N, C] result stays as it is."""
    return y.permute(0, *range(2, y.ndim), 1) if y.ndim > 2 else y


def mod(factory: Callable[[], nn.Module], prefix: str = "y", nhwc: bool = False) -> Callable:
    """A reference from a torch module: seeded construction, randomized, eval mode.
    nhwc: the spec's input/output are channels last (NLC, NHWC, NDHWC) while the module works
    channels first."""
    def ref(xs):
        torch.manual_seed(0)
        m = randomize(factory()).eval()
        (x,) = xs.values()
        y = to_last(m(to_first(x))) if nhwc else m(x)
        return y, state(m, prefix)
    return ref


def fn(f: Callable) -> Callable:
    """A reference from a function of the inputs (in declaration order), no weights."""
    return lambda xs: (f(*xs.values()), {})


def nhwc_fn(f: Callable) -> Callable:
    """f works channels first; the spec's single input and output are channels last (NLC, NHWC,
    NDHWC)."""
    return lambda xs: (to_last(f(to_first(next(iter(xs.values()))))), {})


def padded(conv: Callable[[], nn.Module], pad: tuple) -> Callable:
    """A torch conv after an explicit F.pad (`pad` in torch's order: last axis first)."""
    def ref(xs):
        torch.manual_seed(0)
        m = conv()
        (x,) = xs.values()
        return m(F.pad(x, pad)), state(m)
    return ref


def channels_norm(c: int) -> Callable:
    """nn.LayerNorm(C) at each position of a channels-first tensor of any rank."""
    def ref(xs):
        torch.manual_seed(0)
        m = randomize(nn.LayerNorm(c)).eval()
        (x,) = xs.values()
        return to_first(m(to_last(x))), state(m)
    return ref


class _Permute(nn.Module):
    """torchvision.ops.Permute, without torchvision."""

    def __init__(self, *dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


def lp_pool(p, k, s=None, ceil_mode=False):
    return fn(lambda x: F.lp_pool2d(x, p, k, s, ceil_mode=ceil_mode))


X = "f32[N, 4, 8, 8]"
X9 = "f32[N, 4, 9, 9]"
L1 = "f32[N, 4, 16]"          # 1-D: NCL
L3 = "f32[N, 4, 6, 7, 8]"     # 3-D: NCDHW
NLC = "f32[N, 16, 3] NLC"
NDHWC = "f32[N, 5, 6, 7, 3] NDHWC"
X2 = "f32[N, 12]"
NHWC = "f32[N, 8, 8, 3] NHWC"

CASES: list[Case] = [
    # ---------------------------------------------------------------- conv
    Case("conv-basic", "conv", "y = x -> conv(8, 3)", mod(lambda: nn.Conv2d(4, 8, 3))),
    Case("conv-stride-pad-nobias", "conv", "y = x -> conv(8, 3, stride=2, padding=1, bias=false)",
         mod(lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False))),
    Case("conv-rect-dilation", "conv", "y = x -> conv(6, (3, 5), stride=(2, 1), padding=(1, 2), dilation=2)",
         mod(lambda: nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2), dilation=2)), inputs={"x": X9}),
    Case("conv-groups", "conv", "y = x -> conv(8, 3, groups=2, padding=1)",
         mod(lambda: nn.Conv2d(4, 8, 3, groups=2, padding=1))),
    Case("conv-depthwise", "conv", "y = x -> conv(4, 3, groups=4, padding=1)",
         mod(lambda: nn.Conv2d(4, 4, 3, groups=4, padding=1))),
    Case("conv-same-stride2", "conv", 'y = x -> conv(6, 4, stride=2, padding="same")',
         # out = ceil(9/2) = 5, total pad (5-1)*2 + 4 - 9 = 3: 1 before, 2 after
         lambda xs: _padded_conv(xs, (1, 2, 1, 2), stride=2), inputs={"x": X9}),
    Case("conv-four-pads", "conv", "y = x -> conv(6, 4, padding=(1, 0, 2, 3))",
         # (top, left, bottom, right) -> torch F.pad order (left, right, top, bottom)
         lambda xs: _padded_conv(xs, (0, 3, 1, 2), stride=1), inputs={"x": X9}),
    Case("conv_transpose-stride-outpad", "conv_transpose",
         "y = x -> conv_transpose(6, 3, stride=2, padding=1, output_padding=1)",
         mod(lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1))),
    Case("conv_transpose-groups-rect-nobias", "conv_transpose",
         "y = x -> conv_transpose(6, (2, 3), stride=(2, 1), groups=2, bias=false)",
         mod(lambda: nn.ConvTranspose2d(4, 6, (2, 3), stride=(2, 1), groups=2, bias=False))),
    Case("conv_transpose-dilation", "conv_transpose", "y = x -> conv_transpose(3, 3, dilation=2, padding=2)",
         mod(lambda: nn.ConvTranspose2d(4, 3, 3, dilation=2, padding=2))),
    # ---------------------------------------------------------------- linear
    Case("linear", "linear", "y = x -> linear(5)", mod(lambda: nn.Linear(12, 5)), inputs={"x": X2}),
    # nn.Linear over the last axis: channels-last inputs of rank 3 and 4 (ConvNeXt's MLP)
    Case("linear-nhwc", "linear", "y = x -> linear(6)", mod(lambda: nn.Linear(3, 6)), inputs={"x": NHWC}),
    Case("linear-nlc-nobias", "linear", "y = x -> linear(5, bias=false)",
         mod(lambda: nn.Linear(4, 5, bias=False)), inputs={"x": "f32[N, 10, 4] NLC"}),
    # tokens with a bias: lowered as Transpose, MatMul, Add, Transpose (not a 1x1 convolution)
    Case("linear-nlc", "linear", "y = x -> linear(6)", mod(lambda: nn.Linear(4, 6)),
         inputs={"x": "f32[N, 10, 4] NLC"}),
    Case("log_softmax", "log_softmax", "y = x -> log_softmax", fn(lambda x: F.log_softmax(x, 1)),
         inputs={"x": X2}, scale=3.0),
    Case("log_softmax-axis-w", "log_softmax", 'y = x -> log_softmax("W")', fn(lambda x: F.log_softmax(x, 3)),
         scale=3.0),
    Case("hardtanh", "hardtanh", "y = x -> hardtanh", fn(F.hardtanh), scale=2.0),
    Case("hardtanh-range", "hardtanh", "y = x -> hardtanh(-0.5, 2)", fn(lambda x: F.hardtanh(x, -0.5, 2.0)),
         scale=2.0),
    Case("stochastic_depth", "stochastic_depth", 'y = x -> stochastic_depth(0.2, "row")', fn(lambda x: x)),
    Case("linear-nobias", "linear", "y = x -> linear(7, bias=false)",
         mod(lambda: nn.Linear(12, 7, bias=False)), inputs={"x": X2}),
    # ---------------------------------------------------------------- norms
    Case("batchnorm-2d", "batchnorm", "y = x -> batchnorm(eps=0.001)", mod(lambda: nn.BatchNorm2d(4, eps=1e-3))),
    Case("batchnorm-1d", "batchnorm", "y = x -> batchnorm", mod(lambda: nn.BatchNorm1d(12)), inputs={"x": X2}),
    Case("batchnorm-noaffine", "batchnorm", "y = x -> batchnorm(affine=false)",
         mod(lambda: nn.BatchNorm2d(4, affine=False))),
    Case("layernorm-nc", "layernorm", "y = x -> layernorm", mod(lambda: nn.LayerNorm(12)), inputs={"x": X2}),
    Case("layernorm-nchw", "layernorm", "y = x -> layernorm", channels_norm(4)),  # ConvNeXt's LayerNorm2d
    Case("layernorm-nobias", "layernorm", "y = x -> layernorm(bias=false)",
         mod(lambda: nn.LayerNorm(12, bias=False)), inputs={"x": X2}),
    Case("groupnorm", "groupnorm", "y = x -> groupnorm(2)", mod(lambda: nn.GroupNorm(2, 4))),
    Case("groupnorm-noaffine-eps", "groupnorm", "y = x -> groupnorm(4, eps=0.001, affine=false)",
         mod(lambda: nn.GroupNorm(4, 8, eps=1e-3, affine=False)), inputs={"x": "f32[N, 8, 5, 7]"}),
    # ---------------------------------------------------------------- activations
    Case("relu", "relu", "y = x -> relu", fn(F.relu)),
    Case("leaky_relu", "leaky_relu", "y = x -> leaky_relu(0.2)", fn(lambda x: F.leaky_relu(x, 0.2))),
    Case("leaky_relu-default", "leaky_relu", "y = x -> leaky_relu", fn(F.leaky_relu)),
    Case("sigmoid", "sigmoid", "y = x -> sigmoid", fn(torch.sigmoid), scale=4.0),
    Case("tanh", "tanh", "y = x -> tanh", fn(torch.tanh), scale=3.0),
    Case("softmax-nc", "softmax", "y = x -> softmax", fn(lambda x: F.softmax(x, 1)), inputs={"x": X2}, scale=3.0),
    Case("softmax-nchw-c", "softmax", "y = x -> softmax", fn(lambda x: F.softmax(x, 1)), scale=3.0),
    Case("softmax-axis-w", "softmax", 'y = x -> softmax("W")', fn(lambda x: F.softmax(x, 3)), scale=3.0),
    Case("relu6", "relu6", "y = x -> relu6", fn(F.relu6), scale=5.0),
    Case("hardsigmoid", "hardsigmoid", "y = x -> hardsigmoid", fn(F.hardsigmoid), scale=5.0),
    Case("hardswish", "hardswish", "y = x -> hardswish", fn(F.hardswish), scale=5.0),
    Case("gelu-none-opset17", "gelu", "y = x -> gelu", fn(F.gelu), opset=17, scale=3.0),
    Case("gelu-tanh-opset17", "gelu", 'y = x -> gelu(approximate="tanh")',
         fn(lambda x: F.gelu(x, approximate="tanh")), opset=17, scale=3.0),
    Case("gelu-none-opset20", "gelu", "y = x -> gelu", fn(F.gelu), opset=20, scale=3.0),
    Case("gelu-tanh-opset20", "gelu", 'y = x -> gelu(approximate="tanh")',
         fn(lambda x: F.gelu(x, approximate="tanh")), opset=20, scale=3.0),
    Case("silu", "silu", "y = x -> silu", fn(F.silu), scale=3.0),
    Case("elu", "elu", "y = x -> elu(0.7)", fn(lambda x: F.elu(x, 0.7)), scale=2.0),
    Case("elu-default", "elu", "y = x -> elu", fn(F.elu), scale=2.0),
    Case("prelu-shared", "prelu", "y = x -> prelu", mod(lambda: nn.PReLU())),
    Case("prelu-per-channel", "prelu", "y = x -> prelu(4)", mod(lambda: nn.PReLU(4))),
    Case("prelu-nc", "prelu", "y = x -> prelu(12)", mod(lambda: nn.PReLU(12)), inputs={"x": X2}),
    # ---------------------------------------------------------------- pooling
    Case("maxpool-2", "maxpool", "y = x -> maxpool(2)", fn(lambda x: F.max_pool2d(x, 2))),
    Case("maxpool-pad", "maxpool", "y = x -> maxpool(3, 2, padding=1)", fn(lambda x: F.max_pool2d(x, 3, 2, 1))),
    Case("maxpool-ceil", "maxpool", "y = x -> maxpool(3, 2, ceil_mode=true)",
         fn(lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True))),
    # floor mode would give no window at all (0 rows): ceil mode's is the only one (a fuzzer find)
    Case("maxpool-ceil-only-window", "maxpool", "y = x -> maxpool(2, ceil_mode=true)",
         fn(lambda x: F.max_pool2d(x, 2, ceil_mode=True)), inputs={"x": "f32[N, 4, 1, 3]"}),
    Case("avgpool-ceil-only-window", "avgpool", "y = x -> avgpool(3, 2, ceil_mode=true)",
         fn(lambda x: F.avg_pool2d(x, 3, 2, ceil_mode=True)), inputs={"x": "f32[N, 4, 2, 5]"}),
    Case("maxpool-ceil-pad", "maxpool", "y = x -> maxpool(3, 2, padding=1, ceil_mode=true)",
         fn(lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)), inputs={"x": X9}),
    Case("maxpool-dilation", "maxpool", "y = x -> maxpool(3, 1, dilation=2)",
         fn(lambda x: F.max_pool2d(x, 3, 1, dilation=2))),
    Case("maxpool-dilation-pad-ceil", "maxpool", "y = x -> maxpool(3, 2, padding=1, dilation=2, ceil_mode=true)",
         fn(lambda x: F.max_pool2d(x, 3, 2, 1, dilation=2, ceil_mode=True)), inputs={"x": X9}),
    Case("avgpool-2", "avgpool", "y = x -> avgpool(2)", fn(lambda x: F.avg_pool2d(x, 2))),
    Case("avgpool-pad-include", "avgpool", "y = x -> avgpool(3, 2, padding=1)",
         fn(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=True))),
    Case("avgpool-pad-exclude", "avgpool", "y = x -> avgpool(3, 2, padding=1, count_include_pad=false)",
         fn(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False))),
    Case("avgpool-ceil", "avgpool", "y = x -> avgpool(3, 2, ceil_mode=true)",
         fn(lambda x: F.avg_pool2d(x, 3, 2, ceil_mode=True))),
    Case("avgpool-ceil-pad-include", "avgpool", "y = x -> avgpool(3, 2, padding=1, ceil_mode=true)",
         fn(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True))),
    Case("avgpool-ceil-pad-exclude", "avgpool",
         "y = x -> avgpool(3, 2, padding=1, ceil_mode=true, count_include_pad=false)",
         fn(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))),
    Case("lppool-p2", "lppool", "y = x -> lppool(2, 3, 2)", lp_pool(2, 3, 2)),
    Case("lppool-p2-k2", "lppool", "y = x -> lppool(2, 2)", lp_pool(2, 2)),
    # p = 1 is sum pooling (README): the signed sum, as nn.LPPool2d computes it
    Case("lppool-p1-signed", "lppool", "y = x -> lppool(1, 2)", lp_pool(1, 2)),
    Case("lppool-p2-ceil-opset18", "lppool", "y = x -> lppool(2, 3, 2, ceil_mode=true)",
         lp_pool(2, 3, 2, ceil_mode=True), opset=18),
    Case("global_avgpool", "global_avgpool", "y = x -> global_avgpool",
         fn(lambda x: F.adaptive_avg_pool2d(x, 1)), inputs={"x": "f32[N, 4, 5, 7]"}),
    Case("global_maxpool", "global_maxpool", "y = x -> global_maxpool",
         fn(lambda x: F.adaptive_max_pool2d(x, 1)), inputs={"x": "f32[N, 4, 5, 7]"}),
    Case("adaptive_avgpool-exact", "adaptive_avgpool", "y = x -> adaptive_avgpool(4)",
         fn(lambda x: F.adaptive_avg_pool2d(x, 4))),
    Case("adaptive_avgpool-rect", "adaptive_avgpool", "y = x -> adaptive_avgpool((2, 3))",
         fn(lambda x: F.adaptive_avg_pool2d(x, (2, 3))), inputs={"x": "f32[N, 4, 8, 9]"}),
    Case("adaptive_avgpool-1", "adaptive_avgpool", "y = x -> adaptive_avgpool(1)",
         fn(lambda x: F.adaptive_avg_pool2d(x, 1)), inputs={"x": "f32[N, 4, 5, 7]"}),
    # ---------------------------------------------------------------- shape
    Case("flatten", "flatten", "y = x -> flatten", fn(lambda x: torch.flatten(x, 1))),
    Case("dropout", "dropout", "y = x -> dropout(0.5)", fn(lambda x: x)),
    Case("identity", "identity", "y = x -> identity", fn(lambda x: x)),
    Case("cast-f16", "cast", "y = x -> cast(f16)", fn(lambda x: x.to(torch.float16))),
    Case("cast-i64-truncates", "cast", 'y = x -> cast("i64")', fn(lambda x: x.to(torch.int64)), scale=10.0),
    Case("cast-bool", "cast", "y = x -> relu -> cast(bool)", fn(lambda x: torch.relu(x).to(torch.bool))),
    Case("cast-to-its-own-dtype", "cast", "y = x -> cast(f32)", fn(lambda x: x)),
    Case("pad-constant", "pad", "y = x -> pad(1)", fn(lambda x: F.pad(x, (1, 1, 1, 1)))),
    Case("pad-constant-four-value", "pad", "y = x -> pad((1, 2, 0, 3), value=1.5)",
         # (top, left, bottom, right) -> (left, right, top, bottom)
         fn(lambda x: F.pad(x, (2, 3, 1, 0), value=1.5))),
    Case("pad-reflect", "pad", 'y = x -> pad(2, mode="reflect")', fn(lambda x: F.pad(x, (2, 2, 2, 2), mode="reflect"))),
    Case("pad-replicate-pair", "pad", 'y = x -> pad((1, 3), mode="replicate")',
         fn(lambda x: F.pad(x, (3, 3, 1, 1), mode="replicate"))),
    Case("pad-circular-opset19", "pad", 'y = x -> pad((1, 0, 2, 3), mode="circular")',
         fn(lambda x: F.pad(x, (0, 3, 1, 2), mode="circular")), opset=19),
    Case("upsample-nearest-2", "upsample", "y = x -> upsample(2)",
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))),
    Case("upsample-nearest-1.5", "upsample", "y = x -> upsample(1.5)",
         fn(lambda x: F.interpolate(x, scale_factor=1.5, mode="nearest")), inputs={"x": "f32[N, 4, 5, 7]"}),
    Case("upsample-nearest-rect", "upsample", "y = x -> upsample((2, 3))",
         fn(lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest")), inputs={"x": "f32[N, 4, 5, 7]"}),
    Case("upsample-nearest-size", "upsample", "y = x -> upsample(size=(7, 9))",
         fn(lambda x: F.interpolate(x, size=(7, 9), mode="nearest")), inputs={"x": "f32[N, 4, 4, 5]"}),
    Case("upsample-bilinear-2", "upsample", 'y = x -> upsample(2, mode="bilinear")',
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))),
    Case("upsample-bilinear-1.5", "upsample", 'y = x -> upsample(1.5, mode="bilinear")',
         fn(lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=False)),
         inputs={"x": "f32[N, 4, 5, 7]"}),
    Case("upsample-bilinear-align", "upsample", 'y = x -> upsample(2, mode="bilinear", align_corners=true)',
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))),
    Case("upsample-bilinear-size-align", "upsample",
         'y = x -> upsample(size=(7, 9), mode="bilinear", align_corners=true)',
         fn(lambda x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)),
         inputs={"x": "f32[N, 4, 4, 5]"}),
    Case("upsample-bilinear-size", "upsample", 'y = x -> upsample(size=(7, 9), mode="bilinear")',
         fn(lambda x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False)),
         inputs={"x": "f32[N, 4, 4, 5]"}),
    # ---------------------------------------------------------------- merge
    Case("add", "add", "y = a + b", fn(torch.add), inputs={"a": X, "b": X}),
    Case("add-three", "add", "y = add(a, b, c)", fn(lambda a, b, c: a + b + c), inputs={"a": X, "b": X, "c": X}),
    Case("add-broadcast", "add", "y = a + b", fn(torch.add), inputs={"a": X, "b": "f32[N, 4, 1, 1]"}),
    Case("mul", "mul", "y = a * b", fn(torch.mul), inputs={"a": X, "b": X}),
    Case("mul-gate", "mul", "y = a * g", fn(torch.mul), inputs={"a": X, "g": "f32[N, 4, 1, 1]"}),
    Case("mul-gate-first", "mul", "y = g * a", fn(torch.mul), inputs={"g": "f32[N, 4, 1, 1]", "a": X}),
    Case("concat-c", "concat", "y = concat(a, b)", fn(lambda a, b: torch.cat([a, b], 1)),
         inputs={"a": X, "b": "f32[N, 3, 8, 8]"}),
    Case("concat-chain-three", "concat", "y = a -> concat(b, c)", fn(lambda a, b, c: torch.cat([a, b, c], 1)),
         inputs={"a": X, "b": X, "c": "f32[N, 2, 8, 8]"}),
    Case("concat-h", "concat", 'y = concat(a, b, axis="H")', fn(lambda a, b: torch.cat([a, b], 2)),
         inputs={"a": X, "b": "f32[N, 4, 3, 8]"}),
    Case("concat-w-index", "concat", "y = concat(a, b, axis=3)", fn(lambda a, b: torch.cat([a, b], 3)),
         inputs={"a": X, "b": "f32[N, 4, 8, 5]"}),
    # ---------------------------------------------------------------- attention
    Case("mha", "multihead_attention", "y = x -> multihead_attention(4)",
         mod(lambda: _SelfAttention(nn.MultiheadAttention(16, 4, batch_first=True))),
         inputs={"x": "f32[N, 7, 16] NLC"}),
    Case("mha-no-bias", "multihead_attention", "y = x -> multihead_attention(2, bias=false, dropout=0.1)",
         mod(lambda: _SelfAttention(nn.MultiheadAttention(8, 2, dropout=0.1, bias=False, batch_first=True))),
         inputs={"x": "f32[N, 5, 8] NLC"}),
    Case("mha-one-head-opset-13", "multihead_attention", "y = x -> multihead_attention(1)",
         mod(lambda: _SelfAttention(nn.MultiheadAttention(6, 1, batch_first=True))),
         inputs={"x": "f32[N, 3, 6] NLC"}, opset=13),
    Case("matmul-broadcast", "matmul", "y = matmul(a, b)", fn(torch.matmul),
         inputs={"a": "f32[N, 2, 5, 4]", "b": "f32[N, 1, 4, 3]"}),
    Case("matmul-tokens", "matmul", "y = matmul(a, b)", fn(torch.matmul),
         inputs={"a": "f32[N, 5, 4] NLC", "b": "f32[N, 4, 6] NLC"}),
    Case("matmul-param", "matmul", "w = param(4, 3)\ny = matmul(x, w)",
         lambda xs: (lambda w: (torch.matmul(xs["x"], w), {"w": w.numpy()}))(torch.randn(4, 3)),
         inputs={"x": "f32[N, 6, 5, 4] NHWC"}),
    Case("matmul-operator-scaled", "matmul", "y = (a * 0.25) @ (b -> transpose(-2, -1)) / 2 - 1",
         fn(lambda a, b: torch.matmul(a * 0.25, b.transpose(-2, -1)) / 2 - 1),
         inputs={"a": "f32[N, 3, 5, 4]", "b": "f32[N, 3, 6, 4]"}),
    # ---------------------------------------------------------------- window attention's pieces
    Case("roll-hw", "roll", 'y = x -> roll((-3, 2), ("H", "W"))',
         fn(lambda x: torch.roll(x, (-3, 2), (2, 3))), inputs={"x": X}),
    Case("roll-nhwc", "roll", 'y = x -> roll(5, "W")',
         fn(lambda x: torch.roll(x, 5, 2)), inputs={"x": "f32[N, 6, 7, 3] NHWC"}),
    Case("gather-bias-table", "gather",
         "table = param(9, 2)\nindex = buffer(16, dtype=i64, init=relative_position_index(2))\n"
         "bias = gather(table, index) -> reshape((4, 4, 2)) -> permute(2, 0, 1)\ny = x + bias",
         lambda xs: (lambda t: (xs["x"] + _swin_bias(t, 2), {"table": t.numpy(),
                                                              "index": _swin_index(2).numpy()}))(torch.randn(9, 2)),
         inputs={"x": "f32[N, 3, 2, 4, 4]"}),
    Case("gather-activation-axis", "gather",
         "index = buffer(2, 3, dtype=i64, init=(0, 2, 2, 1, 0, 1))\ny = gather(x, index, axis=2)",
         lambda xs: (lambda i: (xs["x"][:, :, i], {"index": i.numpy()}))(torch.tensor([[0, 2, 2], [1, 0, 1]])),
         inputs={"x": "f32[N, 4, 3, 5]"}),
    Case("normalize-last", "normalize", "y = x -> normalize(-1)",
         fn(lambda x: F.normalize(x, dim=-1)), inputs={"x": "f32[N, 3, 5, 8]"}),
    Case("normalize-channels", "normalize", "y = x -> normalize",
         fn(lambda x: F.normalize(x, dim=1)), inputs={"x": X}),
    Case("clamp-both", "clamp", "y = x -> clamp(-0.5, 0.7)", fn(lambda x: torch.clamp(x, -0.5, 0.7)),
         inputs={"x": X}),
    Case("clamp-max-of-a-param", "clamp", "s = param(3, 1, 1)\ny = x * (s -> clamp(max=log(100)) -> exp)",
         lambda xs: (lambda s: (xs["x"] * torch.clamp(s, max=math.log(100)).exp(), {"s": s.numpy()}))(
             torch.rand(3, 1, 1) * 6), inputs={"x": "f32[N, 3, 5, 5]"}),
    Case("exp", "exp", "y = x -> exp", fn(torch.exp), inputs={"x": X}),
    Case("linear-of-a-buffer", "linear",
         "t = buffer(1, 3, 3, 2, init=relative_coords_table(2))\n"
         "b = t -> mlp: seq { linear(8) -> relu -> linear(4, bias=false) } -> reshape((9, 4)) -> permute(1, 0)\n"
         "y = x + 16 * (b -> sigmoid)",
         lambda xs: _cpb_reference(xs["x"]), inputs={"x": "f32[N, 2, 4, 9]"}),
    # ---------------------------------------------------------------- NHWC inputs and outputs
    # (labelled layers, so the output binding `y` differs from the layer's name; the case
    # where they coincide is test_nhwc_output_named_like_its_layer)
    Case("nhwc-conv", "conv", "y = x -> body: conv(5, 3, stride=2, padding=1)",
         mod(lambda: nn.Conv2d(3, 5, 3, stride=2, padding=1), prefix="body", nhwc=True), inputs={"x": NHWC}),
    Case("nhwc-maxpool", "maxpool", "y = x -> body: maxpool(3, 2, padding=1)",
         nhwc_fn(lambda x: F.max_pool2d(x, 3, 2, 1)), inputs={"x": NHWC}),
    Case("nhwc-concat", "concat", "y = body: concat(a, b)",
         fn(lambda a, b: torch.cat([a, b], 3)),
         inputs={"a": NHWC, "b": "f32[N, 8, 8, 2] NHWC"}),
    Case("nhwc-concat-w", "concat", 'y = body: concat(a, b, axis="W")',
         fn(lambda a, b: torch.cat([a, b], 2)),
         inputs={"a": NHWC, "b": "f32[N, 8, 4, 3] NHWC"}),
    Case("nhwc-flatten", "flatten", "y = x -> flatten",   # features in H, W, C order
         fn(lambda x: torch.flatten(x, 1)), inputs={"x": NHWC}),
    Case("nhwc-flatten-linear", "flatten", "y = x -> flatten -> fc: linear(6)",
         mod(lambda: nn.Sequential(nn.Flatten(), nn.Linear(192, 6)), prefix="y"),
         inputs={"x": NHWC}),
    Case("nhwc-softmax", "softmax", "y = x -> body: softmax", fn(lambda x: F.softmax(x, 3)),
         inputs={"x": NHWC}, scale=3.0),
    Case("nhwc-layernorm", "layernorm", "y = x -> body: layernorm",
         mod(lambda: nn.LayerNorm(3), prefix="body"), inputs={"x": NHWC}),
    # ---------------------------------------------------------------- 1-D and 3-D (one class per kind, any rank)
    Case("conv-1d", "conv", "y = x -> conv(8, 3)", mod(lambda: nn.Conv1d(4, 8, 3)), inputs={"x": L1}),
    Case("conv-1d-stride-pad-dilation-nobias", "conv", "y = x -> conv(6, 5, stride=2, padding=2, dilation=2, bias=false)",
         mod(lambda: nn.Conv1d(4, 6, 5, stride=2, padding=2, dilation=2, bias=False)), inputs={"x": L1}),
    Case("conv-1d-same", "conv", 'y = x -> conv(6, 4, padding="same")',
         mod(lambda: nn.Conv1d(4, 6, 4, padding="same")), inputs={"x": L1}),
    Case("conv-1d-begin-end", "conv", "y = x -> conv(6, 3, padding=(1, 2))",   # (left, right)
         padded(lambda: nn.Conv1d(4, 6, 3), (1, 2)), inputs={"x": L1}),
    Case("conv-1d-groups", "conv", "y = x -> conv(8, 3, groups=4, padding=1)",
         mod(lambda: nn.Conv1d(4, 8, 3, groups=4, padding=1)), inputs={"x": L1}),
    Case("conv-3d", "conv", "y = x -> conv(8, 3, padding=1)", mod(lambda: nn.Conv3d(4, 8, 3, padding=1)),
         inputs={"x": L3}),
    Case("conv-3d-spatial-1x3x3", "conv", "y = x -> conv(6, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))",
         mod(lambda: nn.Conv3d(4, 6, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))), inputs={"x": L3}),
    Case("conv-3d-temporal-3x1x1", "conv", "y = x -> conv(5, (3, 1, 1), padding=(1, 0, 0), bias=false)",
         mod(lambda: nn.Conv3d(4, 5, (3, 1, 1), padding=(1, 0, 0), bias=False)), inputs={"x": L3}),
    Case("conv-3d-six-pads", "conv", "y = x -> conv(4, 2, padding=(1, 0, 2, 0, 1, 1))",
         # (front, top, left, back, bottom, right) -> torch's (left, right, top, bottom, front, back)
         padded(lambda: nn.Conv3d(4, 4, 2), (2, 1, 0, 1, 1, 0)), inputs={"x": L3}),
    Case("conv-3d-same-stride2", "conv", 'y = x -> conv(4, 3, stride=2, padding="same")',
         # D 6 -> 3: pads (0, 1); H 7 -> 4: (1, 1); W 8 -> 4: (0, 1)
         padded(lambda: nn.Conv3d(4, 4, 3, stride=2), (0, 1, 1, 1, 0, 1)), inputs={"x": L3}),
    Case("conv-3d-depthwise-dilation", "conv", "y = x -> conv(4, 3, groups=4, dilation=(1, 2, 2), padding=(1, 2, 2))",
         mod(lambda: nn.Conv3d(4, 4, 3, groups=4, dilation=(1, 2, 2), padding=(1, 2, 2))), inputs={"x": L3}),
    Case("conv_transpose-1d", "conv_transpose", "y = x -> conv_transpose(6, 3, stride=2, padding=1, output_padding=1)",
         mod(lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1)), inputs={"x": L1}),
    Case("conv_transpose-3d-groups", "conv_transpose", "y = x -> conv_transpose(6, (1, 2, 2), stride=(1, 2, 2), groups=2)",
         mod(lambda: nn.ConvTranspose3d(4, 6, (1, 2, 2), stride=(1, 2, 2), groups=2)), inputs={"x": L3}),
    Case("conv_transpose-3d-dilation-outpad", "conv_transpose",
         "y = x -> conv_transpose(3, 3, stride=(2, 1, 2), padding=(1, 0, 2), output_padding=(1, 0, 0), dilation=2)",
         mod(lambda: nn.ConvTranspose3d(4, 3, 3, stride=(2, 1, 2), padding=(1, 0, 2), output_padding=(1, 0, 0),
                                        dilation=2)), inputs={"x": L3}),
    Case("batchnorm-1d-ncl", "batchnorm", "y = x -> batchnorm", mod(lambda: nn.BatchNorm1d(4)), inputs={"x": L1}),
    Case("batchnorm-3d", "batchnorm", "y = x -> batchnorm(eps=0.001)", mod(lambda: nn.BatchNorm3d(4, eps=1e-3)),
         inputs={"x": L3}),
    Case("layernorm-ncl", "layernorm", "y = x -> layernorm", channels_norm(4), inputs={"x": L1}),
    Case("layernorm-ncdhw", "layernorm", "y = x -> layernorm", channels_norm(4), inputs={"x": L3}),
    Case("groupnorm-3d", "groupnorm", "y = x -> groupnorm(2)", mod(lambda: nn.GroupNorm(2, 4)), inputs={"x": L3}),
    Case("maxpool-1d", "maxpool", "y = x -> maxpool(3, 2, padding=1)", fn(lambda x: F.max_pool1d(x, 3, 2, 1)),
         inputs={"x": L1}),
    Case("maxpool-1d-ceil-dilation", "maxpool", "y = x -> maxpool(3, 2, dilation=2, ceil_mode=true)",
         fn(lambda x: F.max_pool1d(x, 3, 2, 0, 2, ceil_mode=True)), inputs={"x": L1}),
    Case("maxpool-3d", "maxpool", "y = x -> maxpool(2)", fn(lambda x: F.max_pool3d(x, 2)), inputs={"x": L3}),
    Case("maxpool-3d-1x3x3", "maxpool", "y = x -> maxpool((1, 3, 3), (1, 2, 2), padding=(0, 1, 1))",
         fn(lambda x: F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))), inputs={"x": L3}),
    Case("maxpool-3d-ceil-dilation-opset22", "maxpool", "y = x -> maxpool(2, 2, padding=1, dilation=(1, 2, 1), ceil_mode=true)",
         fn(lambda x: F.max_pool3d(x, 2, 2, 1, (1, 2, 1), ceil_mode=True)), inputs={"x": L3}, opset=22),
    Case("avgpool-1d", "avgpool", "y = x -> avgpool(4)", fn(lambda x: F.avg_pool1d(x, 4)), inputs={"x": L1}),
    Case("avgpool-1d-ceil-pad-exclude", "avgpool", "y = x -> avgpool(3, 2, padding=1, ceil_mode=true, count_include_pad=false)",
         fn(lambda x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)), inputs={"x": "f32[N, 4, 15]"}),
    Case("avgpool-1d-ceil-pad-include", "avgpool", "y = x -> avgpool(3, 2, padding=1, ceil_mode=true)",
         fn(lambda x: F.avg_pool1d(x, 3, 2, 1, ceil_mode=True)), inputs={"x": "f32[N, 4, 15]"}),
    Case("avgpool-3d", "avgpool", "y = x -> avgpool((2, 2, 3), 2)", fn(lambda x: F.avg_pool3d(x, (2, 2, 3), 2)),
         inputs={"x": L3}),
    Case("avgpool-3d-pad-exclude", "avgpool", "y = x -> avgpool(3, 2, padding=1, count_include_pad=false)",
         fn(lambda x: F.avg_pool3d(x, 3, 2, 1, count_include_pad=False)), inputs={"x": L3}),
    Case("avgpool-3d-ceil-pad-include", "avgpool", "y = x -> avgpool(3, 2, padding=1, ceil_mode=true)",
         fn(lambda x: F.avg_pool3d(x, 3, 2, 1, ceil_mode=True)), inputs={"x": "f32[N, 4, 7, 7, 9]"}),
    Case("lppool-1d-p2", "lppool", "y = x -> lppool(2, 3, 2)", fn(lambda x: F.lp_pool1d(x, 2, 3, 2)), inputs={"x": L1}),
    Case("lppool-3d-p2", "lppool", "y = x -> lppool(2, 2)", fn(lambda x: F.lp_pool3d(x, 2, 2)), inputs={"x": L3}),
    Case("lppool-3d-p1-rect", "lppool", "y = x -> lppool(1, (1, 2, 3), (1, 2, 2))",
         fn(lambda x: F.lp_pool3d(x, 1, (1, 2, 3), (1, 2, 2))), inputs={"x": L3}),
    Case("lppool-3d-p2-ceil", "lppool", "y = x -> lppool(2, 3, 2, ceil_mode=true)",
         fn(lambda x: F.lp_pool3d(x, 2, 3, 2, ceil_mode=True)), inputs={"x": "f32[N, 4, 6, 7, 7]"}),
    Case("global_avgpool-1d", "global_avgpool", "y = x -> global_avgpool",
         fn(lambda x: F.adaptive_avg_pool1d(x, 1)), inputs={"x": L1}),
    Case("global_avgpool-3d", "global_avgpool", "y = x -> global_avgpool",
         fn(lambda x: F.adaptive_avg_pool3d(x, 1)), inputs={"x": L3}),
    Case("global_maxpool-1d", "global_maxpool", "y = x -> global_maxpool",
         fn(lambda x: F.adaptive_max_pool1d(x, 1)), inputs={"x": L1}),
    Case("global_maxpool-3d", "global_maxpool", "y = x -> global_maxpool",
         fn(lambda x: F.adaptive_max_pool3d(x, 1)), inputs={"x": L3}),
    Case("adaptive_avgpool-1d", "adaptive_avgpool", "y = x -> adaptive_avgpool(4)",
         fn(lambda x: F.adaptive_avg_pool1d(x, 4)), inputs={"x": L1}),
    Case("adaptive_avgpool-3d", "adaptive_avgpool", "y = x -> adaptive_avgpool((3, 7, 2))",
         fn(lambda x: F.adaptive_avg_pool3d(x, (3, 7, 2))), inputs={"x": L3}),
    Case("adaptive_avgpool-3d-1", "adaptive_avgpool", "y = x -> adaptive_avgpool(1)",
         fn(lambda x: F.adaptive_avg_pool3d(x, 1)), inputs={"x": L3}),
    Case("adaptive_maxpool-exact", "adaptive_maxpool", "y = x -> adaptive_maxpool(4)",
         fn(lambda x: F.adaptive_max_pool2d(x, 4))),
    Case("adaptive_maxpool-rect", "adaptive_maxpool", "y = x -> adaptive_maxpool((2, 3))",
         fn(lambda x: F.adaptive_max_pool2d(x, (2, 3))), inputs={"x": "f32[N, 4, 8, 9]"}),
    Case("adaptive_maxpool-1", "adaptive_maxpool", "y = x -> adaptive_maxpool(1)",
         fn(lambda x: F.adaptive_max_pool2d(x, 1)), inputs={"x": "f32[N, 4, 5, 7]"}),
    Case("adaptive_maxpool-1d", "adaptive_maxpool", "y = x -> adaptive_maxpool(8)",
         fn(lambda x: F.adaptive_max_pool1d(x, 8)), inputs={"x": L1}),
    Case("adaptive_maxpool-3d", "adaptive_maxpool", "y = x -> adaptive_maxpool((2, 1, 4))",
         fn(lambda x: F.adaptive_max_pool3d(x, (2, 1, 4))), inputs={"x": L3}),
    Case("pad-1d-constant", "pad", "y = x -> pad((1, 2), value=0.5)",   # (left, right)
         fn(lambda x: F.pad(x, (1, 2), value=0.5)), inputs={"x": L1}),
    Case("pad-1d-reflect", "pad", 'y = x -> pad(3, mode="reflect")', fn(lambda x: F.pad(x, (3, 3), mode="reflect")),
         inputs={"x": L1}),
    Case("pad-1d-replicate", "pad", 'y = x -> pad((0, 4), mode="replicate")',
         fn(lambda x: F.pad(x, (0, 4), mode="replicate")), inputs={"x": L1}),
    Case("pad-1d-circular-opset19", "pad", 'y = x -> pad((2, 1), mode="circular")',
         fn(lambda x: F.pad(x, (2, 1), mode="circular")), inputs={"x": L1}, opset=19),
    Case("pad-3d-constant-six", "pad", "y = x -> pad((1, 0, 2, 0, 3, 1))",
         # (front, top, left, back, bottom, right) -> (left, right, top, bottom, front, back)
         fn(lambda x: F.pad(x, (2, 1, 0, 3, 1, 0))), inputs={"x": L3}),
    Case("pad-3d-reflect-per-axis", "pad", 'y = x -> pad((1, 2, 3), mode="reflect")',
         fn(lambda x: F.pad(x, (3, 3, 2, 2, 1, 1), mode="reflect")), inputs={"x": L3}),
    Case("pad-3d-replicate", "pad", 'y = x -> pad(2, mode="replicate")',
         fn(lambda x: F.pad(x, (2,) * 6, mode="replicate")), inputs={"x": L3}),
    Case("pad-3d-circular-opset19", "pad", 'y = x -> pad((1, 0, 2, 2, 1, 0), mode="circular")',
         fn(lambda x: F.pad(x, (2, 0, 0, 1, 1, 2), mode="circular")), inputs={"x": L3}, opset=19),
    Case("upsample-1d-nearest-2", "upsample", "y = x -> upsample(2)",
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="nearest")), inputs={"x": L1}),
    Case("upsample-1d-nearest-1.5", "upsample", "y = x -> upsample(1.5)",
         fn(lambda x: F.interpolate(x, scale_factor=1.5, mode="nearest")), inputs={"x": "f32[N, 4, 7]"}),
    Case("upsample-1d-nearest-1.05-keeps-size", "upsample", "y = x -> upsample(1.05)",
         fn(lambda x: F.interpolate(x, scale_factor=1.05, mode="nearest")), inputs={"x": "f32[N, 4, 5]"}),
    Case("upsample-1d-nearest-2.1", "upsample", "y = x -> upsample(2.1)",   # 21 rows from 10, none by i >> 1
         fn(lambda x: F.interpolate(x, scale_factor=2.1, mode="nearest")), inputs={"x": "f32[N, 4, 10]"}),
    Case("upsample-1d-nearest-size", "upsample", "y = x -> upsample(size=11)",
         fn(lambda x: F.interpolate(x, size=11, mode="nearest")), inputs={"x": "f32[N, 4, 7]"}),
    Case("upsample-1d-linear-2", "upsample", 'y = x -> upsample(2, mode="linear")',
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="linear", align_corners=False)), inputs={"x": L1}),
    Case("upsample-1d-linear-1.5", "upsample", 'y = x -> upsample(1.5, mode="linear")',
         fn(lambda x: F.interpolate(x, scale_factor=1.5, mode="linear", align_corners=False)),
         inputs={"x": "f32[N, 4, 7]"}),
    Case("upsample-1d-linear-size-align", "upsample", 'y = x -> upsample(size=9, mode="linear", align_corners=true)',
         fn(lambda x: F.interpolate(x, size=9, mode="linear", align_corners=True)), inputs={"x": "f32[N, 4, 5]"}),
    Case("upsample-3d-nearest-2", "upsample", "y = x -> upsample(2)",
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="nearest")), inputs={"x": L3}),
    Case("upsample-3d-nearest-1x2x2", "upsample", "y = x -> upsample((1, 2, 2))",
         fn(lambda x: F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")), inputs={"x": L3}),
    Case("upsample-3d-nearest-size", "upsample", "y = x -> upsample(size=(7, 9, 5))",
         fn(lambda x: F.interpolate(x, size=(7, 9, 5), mode="nearest")), inputs={"x": L3}),
    Case("upsample-3d-nearest-2.1", "upsample", "y = x -> upsample((2.1, 1.05, 2))",
         fn(lambda x: F.interpolate(x, scale_factor=(2.1, 1.05, 2), mode="nearest")), inputs={"x": "f32[N, 2, 10, 5, 3]"}),
    Case("upsample-3d-trilinear-2", "upsample", 'y = x -> upsample(2, mode="trilinear")',
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)), inputs={"x": L3}),
    Case("upsample-3d-trilinear-1.5", "upsample", 'y = x -> upsample((1.5, 1.25, 2), mode="trilinear")',
         fn(lambda x: F.interpolate(x, scale_factor=(1.5, 1.25, 2), mode="trilinear", align_corners=False)),
         inputs={"x": L3}),
    Case("upsample-3d-trilinear-align", "upsample", 'y = x -> upsample(2, mode="trilinear", align_corners=true)',
         fn(lambda x: F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=True)), inputs={"x": L3}),
    Case("upsample-3d-trilinear-size", "upsample", 'y = x -> upsample(size=(3, 9, 11), mode="trilinear")',
         fn(lambda x: F.interpolate(x, size=(3, 9, 11), mode="trilinear", align_corners=False)), inputs={"x": L3}),
    Case("nlc-conv", "conv", "y = x -> body: conv(5, 3, stride=2, padding=1)",
         mod(lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1), prefix="body", nhwc=True), inputs={"x": NLC}),
    Case("nlc-upsample-linear", "upsample", 'y = x -> body: upsample(1.5, mode="linear")',
         nhwc_fn(lambda x: F.interpolate(x, scale_factor=1.5, mode="linear", align_corners=False)), inputs={"x": NLC}),
    Case("nlc-flatten", "flatten", "y = x -> flatten", fn(lambda x: torch.flatten(x, 1)), inputs={"x": NLC}),
    Case("ndhwc-conv", "conv", "y = x -> body: conv(4, (3, 1, 1), padding=(1, 0, 0))",
         mod(lambda: nn.Conv3d(3, 4, (3, 1, 1), padding=(1, 0, 0)), prefix="body", nhwc=True), inputs={"x": NDHWC}),
    Case("ndhwc-maxpool", "maxpool", "y = x -> body: maxpool(2, ceil_mode=true)",
         nhwc_fn(lambda x: F.max_pool3d(x, 2, ceil_mode=True)), inputs={"x": NDHWC}),
    Case("ndhwc-batchnorm", "batchnorm", "y = x -> body: batchnorm",
         mod(lambda: nn.BatchNorm3d(3), prefix="body", nhwc=True), inputs={"x": NDHWC}),
    Case("ndhwc-global_avgpool", "global_avgpool", "y = x -> body: global_avgpool",
         nhwc_fn(lambda x: F.adaptive_avg_pool3d(x, 1)), inputs={"x": NDHWC}),
    # ---------------------------------------------------------------- rearrangements (netspec/layers/rearrange.py)
    Case("reshape", "reshape", "y = x -> reshape((2, 2, 64))", fn(lambda x: x.reshape(x.shape[0], 2, 2, 64))),
    Case("reshape-infer", "reshape", "y = x -> reshape((-1, 16))", fn(lambda x: x.reshape(x.shape[0], -1, 16))),
    Case("reshape-nhwc-flat", "reshape", "y = x -> reshape(-1)",   # read in H, W, C order
         fn(lambda x: x.reshape(x.shape[0], -1)), inputs={"x": NHWC}),
    Case("reshape-nhwc-split", "reshape", "y = x -> reshape((8, 4, 2, 3))",
         fn(lambda x: x.reshape(x.shape[0], 8, 4, 2, 3)), inputs={"x": NHWC}),
    Case("reshape-layout-back", "reshape",
         'y = x -> reshape((2, 2, 8, 8)) -> transpose(1, 2) -> reshape((4, 8, 8), layout="NCHW") -> relu',
         fn(lambda x: F.relu(x.reshape(-1, 2, 2, 8, 8).transpose(1, 2).reshape(-1, 4, 8, 8)))),
    Case("flatten-start", "flatten", "y = x -> flatten(2)", fn(lambda x: torch.flatten(x, 2))),
    Case("flatten-letters", "flatten", 'y = x -> flatten("C", "H")', fn(lambda x: torch.flatten(x, 1, 2))),
    Case("flatten-nhwc-range", "flatten", "y = x -> flatten(1, 2)", fn(lambda x: torch.flatten(x, 1, 2)),
         inputs={"x": NHWC}),
    Case("unflatten", "unflatten", 'y = x -> unflatten("C", (2, 2))', fn(lambda x: x.unflatten(1, (2, 2)))),
    Case("unflatten-last", "unflatten", "y = x -> unflatten(-1, (2, -1))", fn(lambda x: x.unflatten(3, (2, -1)))),
    Case("flatten-unflatten-conv", "unflatten",
         'y = x -> flatten(2) -> unflatten(2, (8, 8), layout="NCHW") -> c: conv(5, 3)',
         mod(lambda: nn.Conv2d(4, 5, 3), prefix="c")),
    Case("squeeze", "squeeze", 'y = x -> squeeze("H")', fn(lambda x: x.squeeze(2)),
         inputs={"x": "f32[N, 4, 1, 8]"}),
    Case("squeeze-all", "squeeze", "y = x -> squeeze", fn(lambda x: x.squeeze(3).squeeze(1)),
         inputs={"x": "f32[N, 1, 5, 1]"}),
    Case("unsqueeze", "unsqueeze", "y = x -> unsqueeze(2)", fn(lambda x: x.unsqueeze(2))),
    Case("unsqueeze-last-named", "unsqueeze", 'y = x -> unsqueeze(-1, layout="NCHW") -> maxpool((2, 1))',
         fn(lambda x: F.max_pool2d(x.unsqueeze(-1), (2, 1))), inputs={"x": L1}),
    Case("permute", "permute", "y = x -> permute(0, 2, 3, 1)", fn(lambda x: x.permute(0, 2, 3, 1))),
    Case("permute-letters", "permute", 'y = x -> permute("NWHC")', fn(lambda x: x.permute(0, 3, 2, 1))),
    Case("permute-nhwc", "permute", 'y = x -> permute("NCHW")', fn(lambda x: x.permute(0, 3, 1, 2)),
         inputs={"x": NHWC}),
    Case("permute-convnext", "permute",   # ConvNeXt's block: the MLP channels last, then back
         "y = x -> permute(0, 2, 3, 1) -> layernorm -> linear(6) -> gelu -> linear(4) -> permute(0, 3, 1, 2)",
         mod(lambda: nn.Sequential(_Permute(0, 2, 3, 1), nn.LayerNorm(4), nn.Linear(4, 6), nn.GELU(),
                                   nn.Linear(6, 4), _Permute(0, 3, 1, 2)))),
    Case("permute-roleless", "permute", "y = x -> reshape((2, 2, 64)) -> permute(0, 3, 2, 1)",
         fn(lambda x: x.reshape(x.shape[0], 2, 2, 64).permute(0, 3, 2, 1))),
    Case("transpose", "transpose", 'y = x -> transpose("H", "W")', fn(lambda x: x.transpose(2, 3))),
    Case("transpose-batch", "transpose", "y = x -> transpose(0, 1)", fn(lambda x: x.transpose(0, 1))),
    Case("slice", "slice", 'y = x -> slice("W", 1, -1, 2)', fn(lambda x: x[:, :, :, 1:-1:2])),
    Case("slice-channels", "slice", "y = x -> slice(1, 1, 3)", fn(lambda x: x[:, 1:3])),
    Case("slice-nhwc", "slice", 'y = x -> slice("C", 1)', fn(lambda x: x[..., 1:]), inputs={"x": NHWC}),
    Case("narrow", "narrow", 'y = x -> narrow("H", 2, 4)', fn(lambda x: x.narrow(2, 2, 4))),
    Case("narrow-negative", "narrow", "y = x -> narrow(dim=1, start=-2, length=2)", fn(lambda x: x.narrow(1, -2, 2))),
    Case("select", "select", 'y = x -> select("H", 3)', fn(lambda x: x.select(2, 3))),
    Case("select-last", "select", "y = x -> select(-1, -1)", fn(lambda x: x.select(3, -1))),
    Case("chunk", "chunk", "a, b = x -> chunk(2)\ny = concat(b, a)",
         fn(lambda x: torch.cat(torch.chunk(x, 2, 1)[::-1], 1))),
    Case("chunk-uneven-h", "chunk", 'a, b, c = x -> chunk(3, dim="H")\ny = concat(c, a, b, axis="H")',
         fn(lambda x: (lambda p: torch.cat([p[2], p[0], p[1]], 2))(torch.chunk(x, 3, 2)))),
    Case("chunk-piece", "chunk", "y = x -> chunk(2, piece=1)", fn(lambda x: torch.chunk(x, 2, 1)[1])),
    Case("split-sections", "split", "a, b = x -> split((1, 3))\ny = concat(b, a)",
         fn(lambda x: torch.cat(torch.split(x, (1, 3), 1)[::-1], 1))),
    Case("split-size-piece", "split", 'y = x -> split(3, "W", piece=-1)', fn(lambda x: torch.split(x, 3, 3)[-1])),
    Case("chunk-in-block", "chunk",   # ShuffleNet v2's unit: half the channels through a branch
         "block unit(x) {\n    x1, x2 = x -> chunk(2, dim=1)\n    return concat(x1, x2 -> relu) -> channel_shuffle(2)\n}\n"
         "y = x -> unit",
         fn(lambda x: nn.ChannelShuffle(2)(torch.cat([x[:, :2], F.relu(x[:, 2:])], 1)))),
    Case("channel_shuffle", "channel_shuffle", "y = x -> channel_shuffle(2)", fn(lambda x: nn.ChannelShuffle(2)(x))),
    Case("channel_shuffle-nhwc", "channel_shuffle", "y = x -> channel_shuffle(3)",
         nhwc_fn(lambda x: nn.ChannelShuffle(3)(x)), inputs={"x": "f32[N, 5, 5, 6] NHWC"}),
    Case("channel_shuffle-by-hand", "channel_shuffle",   # torchvision's channel_shuffle, step by step
         'y = x -> reshape((2, 2, 8, 8)) -> transpose(1, 2) -> reshape((4, 8, 8), layout="NCHW") '
         "-> channel_shuffle(2)",
         fn(lambda x: nn.ChannelShuffle(2)(nn.ChannelShuffle(2)(x)))),   # the two shuffles in turn

]


class _SelfAttention(nn.Module):
    """nn.MultiheadAttention(x, x, x, need_weights=False), its state_dict keys unchanged."""

    def __init__(self, attention: nn.MultiheadAttention):
        super().__init__()
        self.attention = attention
        for name, t in attention.state_dict().items():   # torch's biases start at 0: make them count
            if name.endswith("bias"):
                t.copy_(torch.randn(t.shape))

    def forward(self, x):
        return self.attention(x, x, x, need_weights=False)[0]

    def state_dict(self, *args, **kwargs):
        return self.attention.state_dict(*args, **kwargs)


def _swin_index(window: int) -> torch.Tensor:
    """torchvision's ShiftedWindowAttention.define_relative_position_index, for a square window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = torch.flatten(coords, 1)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window - 1
    relative[:, :, 1] += window - 1
    relative[:, :, 0] *= 2 * window - 1
    return relative.sum(-1).flatten()


def _swin_bias(table: torch.Tensor, window: int) -> torch.Tensor:
    area = window * window
    return table[_swin_index(window)].view(area, area, -1).permute(2, 0, 1)


def _cpb_reference(x: torch.Tensor):
    """Swin V2's continuous position bias for a 2x2 window: an MLP over torchvision's log-spaced
    relative_coords_table, 16 * sigmoid of it, added to x."""
    torch.manual_seed(0)
    h = torch.arange(-1, 2, dtype=torch.float32)
    table = torch.stack(torch.meshgrid([h, h], indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
    table = table * 8
    table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
    mlp = randomize(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4, bias=False)))
    bias = mlp(table).view(9, 4).permute(1, 0)
    weights = {"t": table.numpy(), **{f"mlp.{k}": v.numpy() for k, v in mlp.state_dict().items()}}
    return x + 16 * torch.sigmoid(bias), weights


def _padded_conv(xs, pad, stride):
    """conv(6, 4) after explicit padding, given in torch's F.pad order (left, right, top, bottom)."""
    torch.manual_seed(0)
    m = nn.Conv2d(4, 6, 4, stride=stride)
    (x,) = xs.values()
    return m(F.pad(x, pad)), state(m)


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parity_with_torch(case: Case, tmp_path):
    spec = tmp_path / "t.net"
    spec.write_text(case.text())
    net = netspec.load(spec)
    arrays = case.arrays()
    want, weights = case.ref({k: torch.from_numpy(v.copy()) for k, v in arrays.items()})
    if case.id == "nhwc-flatten-linear":  # torch's Sequential calls the linear `1`, the spec `fc`
        weights = {k.replace("y.1.", "fc."): v for k, v in weights.items()}
    options = {"opset": case.opset} if case.opset else {}
    got = net.run(arrays, weights=weights, **options)
    assert list(got) == ["y"]
    assert_parity(got["y"], want.numpy(), case.id)


def test_every_layer_kind_has_a_parity_case():
    covered = {c.kind for c in CASES}
    missing = sorted(set(LAYERS) - covered)
    assert not missing, f"layer kinds without a parity case: {missing}"


def test_case_kinds_match_the_compiled_layer(tmp_path):
    """The kind a case is filed under is the kind of a layer in its compiled graph."""
    for c in CASES:
        spec = tmp_path / f"{c.id}.net"
        spec.write_text(c.text())
        graph = netspec.load(spec).check().graph
        kinds = {node.kind for node in graph}
        assert c.kind in kinds, (c.id, kinds)


# ================================================================ located errors


def _spec(tmp_path, body: str, decl: str = "input x: f32[N, 4, 7, 7]") -> tuple:
    path = tmp_path / "t.net"
    path.write_text(f"network t\n{decl}\n{body}\noutput y\n")
    return path, netspec.load(path)


def test_adaptive_avgpool_non_exact_is_a_located_error_naming_the_layer(tmp_path):
    path, net = _spec(tmp_path, "y = x -> pool: adaptive_avgpool(3)")
    net.check()  # the spec itself is fine: shape inference knows the output size
    with pytest.raises(NetspecError) as info:
        net.to_onnx()
    (d,) = info.value.diagnostics
    assert d.severity == "error"
    assert d.layer == "pool"
    assert "adaptive_avgpool" in d.message and "7x7" in d.message and "3x3" in d.message
    assert d.span is not None and d.span.line == 3 and d.span.file == str(path)
    assert d.hint and "multiple" in d.hint


def test_circular_pad_before_opset_19_is_a_located_error(tmp_path):
    path, net = _spec(tmp_path, 'y = x -> pad(1, mode="circular")')
    with pytest.raises(NetspecError) as info:
        net.to_onnx(opset=18)
    (d,) = info.value.diagnostics
    assert d.layer == "y" and "19" in d.message and d.span.line == 3
    # and at 19 it lowers
    net.to_onnx(opset=19)


def test_lppool_ceil_mode_matches_torch_at_every_opset(tmp_path):
    """lppool lowers as nn.LPPool2d computes it (Pow, AveragePool, times the window, Pow), not
    as ONNX's LpPool, so ceil_mode needs no particular opset."""
    path, net = _spec(tmp_path, "y = x -> lppool(2, 3, 2, ceil_mode=true)", "input x: f32[N, 4, 8, 8]")
    x = np.abs(np.random.default_rng(0).standard_normal((2, 4, 8, 8))).astype(np.float32)
    want = nn.LPPool2d(2, 3, 2, ceil_mode=True)(torch.from_numpy(x)).numpy()
    for opset in (13, 17, 22):
        assert_parity(net.run(x, opset=opset)["y"], want, f"lppool ceil_mode at opset {opset}")


def test_nhwc_output_named_like_its_layer(tmp_path):
    """`y = x -> conv(...)` with NHWC input: the layer is called `y` and so is the NHWC output
    (a Transpose of the layer's canonical NCHW value). Both must not be ONNX value `y`."""
    path, net = _spec(tmp_path, "y = x -> conv(5, 3, padding=1)", "input x: f32[N, 8, 8, 3] NHWC")
    torch.manual_seed(0)
    m = nn.Conv2d(3, 5, 3, padding=1)
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    want = m(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    got = net.run(x, weights=state(m))["y"]
    assert_parity(got, want, "nhwc conv output named like its layer")


# ================================================================ the README's 1-D and 3-D examples

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _stage1d(cin: int, c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, c, 3, padding=1, bias=False), nn.BatchNorm1d(c), nn.ReLU(), nn.MaxPool1d(4))


class Audio1d(nn.Module):
    """examples/audio_1d.net, written from the architecture with torch's 1-D modules."""

    def __init__(self, classes: int = 35):
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(1, 32, 80, stride=16), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(4),
                                      _stage1d(32, 32), _stage1d(32, 64))
        self.logits = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, classes))

    def forward(self, x):
        return self.logits(self.features(x))


def _conv2plus1d(cin: int, c: int, mid: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, mid, (1, 3, 3), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(mid), nn.ReLU(),
                         nn.Conv3d(mid, c, (3, 1, 1), padding=(1, 0, 0), bias=False))


class Basic2plus1d(nn.Module):
    def __init__(self, c: int, mid: int):
        super().__init__()
        self.conv1, self.bn1 = _conv2plus1d(c, c, mid), nn.BatchNorm3d(c)
        self.conv2, self.bn2 = _conv2plus1d(c, c, mid), nn.BatchNorm3d(c)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + x)


class R2plus1d(nn.Module):
    """examples/r2plus1d.net, written from R(2+1)D's stem and basic block with torch's 3-D modules."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False), nn.BatchNorm3d(45),
                                  nn.ReLU(), nn.Conv3d(45, 64, (3, 1, 1), padding=(1, 0, 0), bias=False),
                                  nn.BatchNorm3d(64), nn.ReLU())
        self.layer1 = Basic2plus1d(64, 144)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(64, classes))

    def forward(self, x):
        return self.fc(self.layer1(self.stem(x)))


@pytest.mark.parametrize("example, module, name, shape", [
    ("audio_1d.net", Audio1d, "wave", (2, 1, 8000)),
    ("r2plus1d.net", R2plus1d, "clip", (2, 3, 4, 32, 32)),   # a smaller clip than the README's, for speed
], ids=["audio_1d", "r2plus1d"])
def test_readme_examples_of_1d_and_3d_match_torch(example, module, name, shape):
    torch.manual_seed(0)
    m = module().eval()
    for sub in m.modules():
        if isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm3d)):
            randomize(sub)
    net = netspec.load(ROOT / "examples" / example, input_shapes={name: list(shape)})
    graph = net.check().graph
    weights = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in weights.items()} == \
        {k: v.shape for k, v in graph.parameter_specs().items()}
    assert sum(p.numel() for p in m.parameters()) == sum(
        v.elements for v in graph.parameter_specs().values() if v.trainable)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    (got,) = net.run(x, weights=weights).values()
    want = m(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    assert float(np.abs(got - want).max()) <= 1e-4 * scale
