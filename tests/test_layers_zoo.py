"""The model-zoo layers against the equivalent PyTorch modules: output shapes, parameter
shapes (state_dict names) and MACs, plus their error cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netspec.compiler import compile_file


def one_layer(call: str, shape=(2, 8, 12, 12), layout: str = ""):
    """Compile `y = x -> <call>` on an input of `shape`; return the node and the result."""
    dims = ", ".join(["N", *map(str, shape[1:])])
    text = f"network t\ninput x: f32[{dims}] {layout}\ny = x -> {call}\noutput y\n"
    result = compile_file("t.net", text=text)
    return (result.graph.node("y") if result.ok else None), result


def torch_state(module: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def ours_state(node) -> dict[str, tuple]:
    return {k: tuple(spec.shape) for k, spec in node.params.items()}


CASES = [
    # (netspec call, torch module, input shape)
    ("conv_transpose(4, 2, stride=2)", nn.ConvTranspose2d(8, 4, 2, stride=2), (2, 8, 12, 12)),
    ("conv_transpose(6, 3, stride=2, padding=1, output_padding=1)",
     nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1), (2, 8, 7, 9)),
    ("conv_transpose(4, (3, 5), stride=(2, 3), padding=(1, 2), dilation=2, groups=2, bias=false)",
     nn.ConvTranspose2d(8, 4, (3, 5), stride=(2, 3), padding=(1, 2), dilation=2, groups=2, bias=False),
     (1, 8, 5, 6)),
    ("relu6", nn.ReLU6(), (2, 8, 5, 5)),
    ("hardsigmoid", nn.Hardsigmoid(), (2, 8, 5, 5)),
    ("hardswish", nn.Hardswish(), (2, 8, 5, 5)),
    ('gelu(approximate="tanh")', nn.GELU(approximate="tanh"), (2, 8, 5, 5)),
    ("silu", nn.SiLU(), (2, 8, 5, 5)),
    ("elu(0.5)", nn.ELU(0.5), (2, 8, 5, 5)),
    ("prelu", nn.PReLU(), (2, 8, 5, 5)),
    ("prelu(8)", nn.PReLU(8), (2, 8, 5, 5)),
    ("lppool(2, 3)", nn.LPPool2d(2, 3), (2, 8, 11, 10)),
    ("lppool(1, 3, 2, ceil_mode=true)", nn.LPPool2d(1, 3, 2, ceil_mode=True), (2, 8, 10, 11)),
    ("global_maxpool", nn.AdaptiveMaxPool2d(1), (2, 8, 7, 5)),
    ("adaptive_avgpool((5, 3))", nn.AdaptiveAvgPool2d((5, 3)), (2, 8, 12, 7)),
    ("upsample(2)", nn.Upsample(scale_factor=2), (2, 8, 5, 7)),
    ("upsample(1.5)", nn.Upsample(scale_factor=1.5), (2, 8, 5, 7)),
    ('upsample(size=(9, 4), mode="bilinear", align_corners=true)',
     nn.Upsample(size=(9, 4), mode="bilinear", align_corners=True), (2, 8, 5, 7)),
    ("identity", nn.Identity(), (2, 8, 5, 5)),
    ("layernorm", None, (2, 8, 5, 5)),   # compared below against LayerNorm over channels
    ("groupnorm(4)", nn.GroupNorm(4, 8), (2, 8, 5, 5)),
    ("groupnorm(2, affine=false)", nn.GroupNorm(2, 8, affine=False), (2, 8, 5, 5)),
]


@pytest.mark.parametrize("call, module, shape", CASES, ids=[c[0] for c in CASES])
def test_shape_and_parameters_match_torch(call, module, shape):
    node, result = one_layer(call, shape)
    assert result.ok, [d.message for d in result.diagnostics.errors]
    x = torch.zeros(shape)
    if module is None:  # layernorm over the channel axis of NCHW = LayerNorm(C) on NHWC
        module = nn.LayerNorm(shape[1])
        out = module(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    else:
        with torch.no_grad():
            out = module(x)
    assert node.output.shape == ("N", *out.shape[1:])
    assert ours_state(node) == torch_state(module)
    trainable = sum(p.numel() for p in module.parameters())
    assert node.trainable == trainable


def test_conv_transpose_macs():
    node, _ = one_layer("conv_transpose(6, 3, stride=2, groups=2)", (1, 8, 7, 9))
    # each input element meets a 3x3 patch of out/groups = 3 output channels
    assert node.macs == 8 * 7 * 9 * 3 * 3 * 3


def test_pad_modes_match_torch():
    x = torch.zeros(1, 3, 6, 7)
    for call, pads, mode in [("pad(1)", (1, 1, 1, 1), "constant"),
                             ("pad((1, 2))", (2, 2, 1, 1), "constant"),
                             ('pad((1, 2, 3, 4), mode="reflect")', (2, 4, 1, 3), "reflect"),
                             ('pad(2, mode="replicate")', (2, 2, 2, 2), "replicate"),
                             ('pad(3, mode="circular")', (3, 3, 3, 3), "circular")]:
        node, result = one_layer(call, tuple(x.shape))
        assert result.ok, (call, [d.message for d in result.diagnostics.errors])
        # torch's pad order is (left, right, top, bottom); ours is (top, left, bottom, right)
        assert node.output.shape == ("N", *torch.nn.functional.pad(x, pads, mode=mode).shape[1:]), call


@pytest.mark.parametrize("call, shape, phrase", [
    ("conv_transpose(4, 3, stride=2, output_padding=2)", (1, 8, 5, 5), "output_padding"),
    ("conv_transpose(4, 3, padding=3)", (1, 8, 2, 2), "output size would be"),
    ("conv_transpose(3, 3, groups=2)", (1, 8, 5, 5), "not divisible by groups"),
    ("prelu(3)", (1, 8, 5, 5), "must be 1 or the channel count"),
    ("groupnorm(3)", (1, 8, 5, 5), "do not divide into 3 groups"),
    ('pad(5, mode="reflect")', (1, 8, 5, 5), "reflect padding"),
    ('pad(6, mode="circular")', (1, 8, 5, 5), "circular padding"),
    ("upsample", (1, 8, 5, 5), "exactly one of"),
    ("upsample(2, size=4)", (1, 8, 5, 5), "exactly one of"),
    ("upsample(2, align_corners=true)", (1, 8, 5, 5), "align_corners"),
    ("lppool(2, 3, padding=1)", (1, 8, 5, 5), "padding"),
])
def test_errors(call, shape, phrase):
    node, result = one_layer(call, shape)
    messages = [d.message for d in result.diagnostics.errors]
    assert any(phrase in m for m in messages), messages


def test_nhwc_conv_transpose_keeps_the_layout():
    node, result = one_layer("conv_transpose(4, 2, stride=2)", (1, 6, 5, 8), layout="NHWC")
    assert result.ok
    assert node.output.shape == ("N", 12, 10, 4) and node.output.layout.axes == "NHWC"
