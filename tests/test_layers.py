"""Every layer kind, through small specs: output shape, parameters and buffers, MACs, errors.

Expected shapes and parameter shapes come from the equivalent torch.nn module built by hand
in each test (run on a zero tensor of batch 1), or from arithmetic written out in the test.
"""

from __future__ import annotations

from math import prod

import pytest
import torch
from torch import nn

from netspec.compiler import compile_file
from netspec.layers import LAYERS

torch.set_grad_enabled(False)


# ================================================================ helpers


def compile_spec(body: str, input_decl: str = "input x: f32[N, 3, 32, 32]", **kw):
    body = body.strip()
    if "\noutput " not in "\n" + body:
        body += "\noutput y"
    text = f"network t\n{input_decl}\n{body}\n"
    return compile_file("t.net", text=text, **kw)


def ok(body: str, input_decl: str = "input x: f32[N, 3, 32, 32]"):
    result = compile_spec(body, input_decl)
    errors = [d.message for d in result.diagnostics.items if d.severity == "error"]
    assert result.ok and not errors, errors
    return result.graph


def layer(body: str, input_decl: str = "input x: f32[N, 3, 32, 32]", name: str = "y"):
    """The node called `name` in a spec that must compile cleanly."""
    return ok(body, input_decl).node(name)


def error(body: str, input_decl: str = "input x: f32[N, 3, 32, 32]"):
    """The one error of a spec that must fail."""
    result = compile_spec(body, input_decl)
    errors = [d for d in result.diagnostics.items if d.severity == "error"]
    assert not result.ok
    assert len(errors) == 1, [d.message for d in errors]
    return errors[0]


def batch1(shape) -> tuple:
    return tuple(1 if d == "N" else d for d in shape)


def torch_out(module: nn.Module, shape) -> tuple:
    return tuple(module.eval()(torch.zeros(*shape)).shape)


def param_shapes(node) -> dict:
    return {k: tuple(v.shape) for k, v in node.params.items()}


def torch_shapes(module: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def trainable(node) -> int:
    return sum(prod(p.shape) for p in node.params.values() if p.trainable)


def torch_trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


KINDS = {"conv", "linear", "batchnorm", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "maxpool",
         "avgpool", "global_avgpool", "adaptive_avgpool", "flatten", "dropout", "add", "mul", "concat"}


def test_every_kind_tested_here_is_registered():
    assert KINDS <= set(LAYERS)


# ================================================================ conv


CONV_CASES = [
    # (netspec call, torch module, input C, H, W)
    ("conv(16, 3)", nn.Conv2d(3, 16, 3), (3, 32, 32)),
    ("conv(16, 3, padding=1)", nn.Conv2d(3, 16, 3, padding=1), (3, 32, 32)),
    ("conv(64, 11, stride=4, padding=2)", nn.Conv2d(3, 64, 11, stride=4, padding=2), (3, 224, 224)),
    ("conv(8, (3, 5), stride=(2, 1), padding=(1, 2))",
     nn.Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2)), (3, 17, 20)),
    ("conv(8, 3, dilation=2)", nn.Conv2d(3, 8, 3, dilation=2), (3, 20, 20)),
    ("conv(8, 3, dilation=(2, 3), padding=(2, 3))",
     nn.Conv2d(3, 8, 3, dilation=(2, 3), padding=(2, 3)), (3, 15, 16)),
    ("conv(8, 3, padding=\"same\")", nn.Conv2d(3, 8, 3, padding="same"), (3, 15, 16)),
    ("conv(8, 4, padding=\"same\")", nn.Conv2d(3, 8, 4, padding="same"), (3, 15, 16)),
    ("conv(8, (2, 5), dilation=(3, 2), padding=\"same\")",
     nn.Conv2d(3, 8, (2, 5), dilation=(3, 2), padding="same"), (3, 15, 16)),
    ("conv(8, 3, padding=\"valid\")", nn.Conv2d(3, 8, 3, padding="valid"), (3, 15, 16)),
    ("conv(32, 3, groups=4, padding=1)", nn.Conv2d(16, 32, 3, groups=4, padding=1), (16, 10, 10)),
    ("conv(16, 3, groups=16, padding=1, bias=false)",
     nn.Conv2d(16, 16, 3, groups=16, padding=1, bias=False), (16, 10, 10)),  # depthwise
    ("conv(48, 3, groups=16, stride=2)", nn.Conv2d(16, 48, 3, groups=16, stride=2), (16, 11, 11)),
    ("conv(24, 1, bias=false)", nn.Conv2d(16, 24, 1, bias=False), (16, 7, 7)),
    ("conv(out_channels=8, kernel_size=3, stride=3)", nn.Conv2d(3, 8, 3, stride=3), (3, 20, 20)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("call, module, chw", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv_matches_torch(call, module, chw):
    c, h, w = chw
    node = layer(f"y = x -> {call}", f"input x: f32[N, {c}, {h}, {w}]")
    expected = torch_out(module, (1, c, h, w))
    assert node.kind == "conv"
    assert node.output.shape == ("N",) + expected[1:]
    assert node.output.layout.axes == "NCHW"
    assert param_shapes(node) == torch_shapes(module)
    assert all(p.trainable for p in node.params.values())
    assert trainable(node) == torch_trainable(module)
    kh, kw = module.kernel_size
    assert node.macs == prod(expected[1:]) * (c // module.groups) * kh * kw


def test_conv_four_value_padding_is_top_left_bottom_right():
    # H: 10 + 1 + 3 - 3 + 1 = 12; W: 10 + 2 + 0 - 3 + 1 = 10 (read as pairs it would be 11 x 11)
    node = layer("y = x -> conv(4, 3, padding=(1, 2, 3, 0))", "input x: f32[N, 3, 10, 10]")
    x = torch.nn.functional.pad(torch.zeros(1, 3, 10, 10), (2, 0, 1, 3))  # (left, right, top, bottom)
    expected = tuple(nn.Conv2d(3, 4, 3)(x).shape)
    assert expected == (1, 4, 12, 10)
    assert node.output.shape == ("N", 4, 12, 10)


def test_conv_mac_count_by_hand():
    # AlexNet's first conv: 64 x 55 x 55 outputs, each 3 * 11 * 11 multiply-accumulates
    node = layer("y = x -> conv(64, 11, stride=4, padding=2)", "input x: f32[N, 3, 224, 224]")
    assert node.output.shape == ("N", 64, 55, 55)
    assert node.macs == 64 * 55 * 55 * 3 * 11 * 11 == 70_276_800
    assert trainable(node) == 64 * 3 * 11 * 11 + 64 == 23_296


def test_conv_grouped_macs_divide_by_groups():
    node = layer("y = x -> conv(32, 3, groups=4, padding=1)", "input x: f32[N, 16, 8, 8]")
    assert node.params["weight"].shape == (32, 4, 3, 3)
    assert node.macs == 32 * 8 * 8 * (16 // 4) * 3 * 3


def test_conv_groups_must_divide_input_channels():
    d = error("y = x -> conv(8, 3, groups=4)", "input x: f32[N, 6, 16, 16]")
    assert "6" in d.message and "groups=4" in d.message
    assert d.layer == "y"
    assert d.rule == "in_channels % groups == 0"
    with pytest.raises(ValueError):  # PyTorch refuses it too
        nn.Conv2d(6, 8, 3, groups=4)


def test_conv_groups_must_divide_output_channels():
    d = error("y = x -> conv(6, 3, groups=4)", "input x: f32[N, 8, 16, 16]")
    assert "6" in d.message and "groups=4" in d.message
    assert d.rule == "out_channels % groups == 0"
    with pytest.raises(ValueError):
        nn.Conv2d(8, 6, 3, groups=4)


def test_conv_output_size_zero_is_an_error_with_the_formula():
    d = error("y = x -> conv(4, 7)", "input x: f32[N, 3, 5, 5]")
    assert "floor((5 + 2*0 - 1*(7-1) - 1) / 1) + 1 = -1" in d.message
    assert d.layer == "y"


def test_conv_on_a_flat_input_is_an_error():
    d = error("y = x -> conv(4, 3)", "input x: f32[N, 100]")
    assert d.message == ("conv: takes a 1-D [N, C, L], 2-D [N, C, H, W] or 3-D [N, C, D, H, W] input; "
                         "[N, 100] has no spatial axes")
    assert d.hint and "flatten only after the convolutions" in d.hint


# ================================================================ linear


@pytest.mark.parametrize("call, module", [
    ("linear(10)", nn.Linear(100, 10)),
    ("linear(7, bias=false)", nn.Linear(100, 7, bias=False)),
    ("linear(out_features=256)", nn.Linear(100, 256)),
])
def test_linear_matches_torch(call, module):
    node = layer(f"y = x -> {call}", "input x: f32[N, 100]")
    expected = torch_out(module, (1, 100))
    assert node.output.shape == ("N",) + expected[1:]
    assert node.output.layout.axes == "NC"
    assert param_shapes(node) == torch_shapes(module)
    assert trainable(node) == torch_trainable(module)
    assert node.macs == 100 * module.out_features


def test_linear_on_a_4d_map_is_an_error_with_a_flatten_hint():
    d = error("y = x -> linear(10)", "input x: f32[N, 16, 5, 5]")
    assert "2-D" in d.message and "4-D" in d.message
    assert d.layer == "y"
    assert d.hint is not None and "flatten" in d.hint and "400" in d.hint


def test_linear_after_flatten_sees_every_feature():
    g = ok("y = x -> flatten -> linear(10)", "input x: f32[N, 16, 5, 5]")
    module = nn.Sequential(nn.Flatten(), nn.Linear(400, 10))
    assert g.node("y.1").output.shape == ("N",) + torch_out(module, (1, 16, 5, 5))[1:]
    assert g.node("y.1").params["weight"].shape == (10, 400)
    assert g.node("y.1").macs == 4000


# ================================================================ batchnorm


def test_batchnorm2d_parameters_and_buffers_match_torch_state_dict():
    node = layer("y = x -> batchnorm", "input x: f32[N, 16, 8, 8]")
    module = nn.BatchNorm2d(16)
    assert node.output.shape == ("N", 16, 8, 8)
    assert list(node.params) == list(module.state_dict())
    assert param_shapes(node) == torch_shapes(module)
    assert {k for k, p in node.params.items() if p.trainable} == {"weight", "bias"}
    assert {k for k, p in node.params.items() if not p.trainable} == \
        {"running_mean", "running_var", "num_batches_tracked"} == {k for k, _ in module.named_buffers()}
    assert trainable(node) == torch_trainable(module) == 32
    assert node.params["num_batches_tracked"].shape == ()
    assert node.trainable == 32 and node.buffers == 16 + 16 + 1
    assert node.macs == 0


def test_batchnorm1d_on_features():
    node = layer("y = x -> batchnorm", "input x: f32[N, 20]")
    assert param_shapes(node) == torch_shapes(nn.BatchNorm1d(20))
    assert node.output.shape == ("N", 20)


@pytest.mark.parametrize("args, module", [
    ("affine=false", nn.BatchNorm2d(8, affine=False)),
    ("track_running_stats=false", nn.BatchNorm2d(8, track_running_stats=False)),
    ("eps=1e-3, momentum=0.01", nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)),
])
def test_batchnorm_options_match_torch(args, module):
    node = layer(f"y = x -> batchnorm({args})", "input x: f32[N, 8, 4, 4]")
    assert param_shapes(node) == torch_shapes(module)
    assert trainable(node) == torch_trainable(module)


# ================================================================ activations, dropout


@pytest.mark.parametrize("call, module", [
    ("relu", nn.ReLU()),
    ("leaky_relu", nn.LeakyReLU()),
    ("leaky_relu(0.2)", nn.LeakyReLU(0.2)),
    ("sigmoid", nn.Sigmoid()),
    ("tanh", nn.Tanh()),
    ("softmax", nn.Softmax(dim=1)),
    ("dropout", nn.Dropout()),
    ("dropout(0.3)", nn.Dropout(0.3)),
])
def test_shape_preserving_layers(call, module):
    node = layer(f"y = x -> {call}", "input x: f32[N, 6, 7, 9]")
    assert node.kind == call.split("(")[0]
    assert node.output.shape == ("N",) + torch_out(module, (1, 6, 7, 9))[1:]
    assert node.output.layout.axes == "NCHW"
    assert node.params == {} and node.macs == 0


@pytest.mark.parametrize("call", ['softmax("C")', "softmax(1)", 'softmax(axis="W")', "softmax(-1)",
                                  "softmax(dim=3)", 'softmax("h")'])
def test_softmax_valid_axes(call):
    node = layer(f"y = x -> {call}", "input x: f32[N, 6, 7, 9]")
    assert node.output.shape == ("N", 6, 7, 9)


def test_softmax_over_classes():
    node = layer("y = x -> softmax", "input x: f32[N, 10]")
    assert node.output.shape == ("N", 10)


@pytest.mark.parametrize("call, input_decl, needle", [
    ("softmax(4)", "input x: f32[N, 6, 7, 9]", "out of range"),
    ("softmax(-5)", "input x: f32[N, 6, 7, 9]", "out of range"),
    ('softmax("H")', "input x: f32[N, 10]", '"H"'),
    ('softmax(axis="Q")', "input x: f32[N, 6, 7, 9]", '"Q"'),
])
def test_softmax_bad_axis_is_an_error(call, input_decl, needle):
    d = error(f"y = x -> {call}", input_decl)
    assert needle in d.message
    assert d.layer == "y"


def test_dropout_probability_out_of_range_is_an_error():
    d = error("y = x -> dropout(1.5)")
    assert "`p`" in d.message


# ================================================================ pooling


POOL_CASES = [
    ("maxpool(2)", nn.MaxPool2d(2), (4, 32, 32)),
    ("maxpool(3, 2)", nn.MaxPool2d(3, 2), (4, 55, 55)),
    ("maxpool(3, stride=2, padding=1)", nn.MaxPool2d(3, 2, padding=1), (4, 112, 112)),
    ("maxpool(3, stride=2, ceil_mode=true)", nn.MaxPool2d(3, 2, ceil_mode=True), (4, 56, 56)),
    ("maxpool(2, stride=2, padding=1, ceil_mode=true)", nn.MaxPool2d(2, 2, padding=1, ceil_mode=True),
     (4, 5, 5)),  # the last window would start in the right padding: dropped
    ("maxpool(2, stride=3, padding=1, ceil_mode=true)", nn.MaxPool2d(2, 3, padding=1, ceil_mode=True),
     (4, 8, 10)),
    ("maxpool(3, stride=1, dilation=2)", nn.MaxPool2d(3, 1, dilation=2), (4, 12, 12)),
    ("maxpool((2, 3), stride=(2, 1))", nn.MaxPool2d((2, 3), (2, 1)), (4, 9, 9)),
    ("avgpool(2)", nn.AvgPool2d(2), (4, 33, 33)),
    ("avgpool(3, stride=2, padding=1)", nn.AvgPool2d(3, 2, padding=1), (4, 14, 15)),
    ("avgpool(3, stride=2, ceil_mode=true)", nn.AvgPool2d(3, 2, ceil_mode=True), (4, 14, 15)),
    ("avgpool(2, stride=2, padding=1, ceil_mode=true)", nn.AvgPool2d(2, 2, padding=1, ceil_mode=True),
     (4, 5, 6)),
    ("avgpool(3, stride=2, padding=1, count_include_pad=false)",
     nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), (4, 9, 9)),
    ("adaptive_avgpool(6)", nn.AdaptiveAvgPool2d(6), (4, 13, 13)),
    ("adaptive_avgpool((2, 3))", nn.AdaptiveAvgPool2d((2, 3)), (4, 7, 7)),
    ("adaptive_avgpool(7)", nn.AdaptiveAvgPool2d(7), (4, 3, 3)),  # upsampling is allowed
    ("global_avgpool", nn.AdaptiveAvgPool2d(1), (4, 7, 5)),
]


@pytest.mark.parametrize("call, module, chw", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_pool_matches_torch(call, module, chw):
    c, h, w = chw
    node = layer(f"y = x -> {call}", f"input x: f32[N, {c}, {h}, {w}]")
    assert node.output.shape == ("N",) + torch_out(module, (1, c, h, w))[1:]
    assert node.params == {} and node.macs == 0


@pytest.mark.parametrize("call, kernel", [
    ("maxpool(2, padding=2)", 2),
    ("maxpool(3, padding=2)", 3),
    ("avgpool(4, padding=3)", 4),
    ("maxpool((3, 5), padding=(1, 3))", 5),
])
def test_pool_padding_more_than_half_the_kernel_is_an_error(call, kernel):
    d = error(f"y = x -> {call}")
    assert "more than half the kernel" in d.message
    assert f"({kernel})" in d.message
    assert d.layer == "y"


def test_pool_padding_more_than_half_the_kernel_is_refused_by_torch_too():
    with pytest.raises(RuntimeError):
        nn.MaxPool2d(3, padding=2)(torch.zeros(1, 1, 8, 8))


def test_pool_output_size_zero_is_an_error():
    d = error("y = x -> maxpool(3)", "input x: f32[N, 3, 2, 8]")
    assert d.message.startswith("maxpool: height: output size would be 0")


@pytest.mark.parametrize("call", ["maxpool(2)", "avgpool(2)", "adaptive_avgpool(1)", "global_avgpool"])
def test_pool_needs_a_spatial_input(call):
    error(f"y = x -> {call}", "input x: f32[N, 10]")


# ================================================================ flatten


@pytest.mark.parametrize("chw", [(16, 5, 5), (3, 1, 1), (7, 2, 9)])
def test_flatten_matches_torch(chw):
    node = layer("y = x -> flatten", "input x: f32[N, {}, {}, {}]".format(*chw))
    assert node.output.shape == ("N",) + torch_out(nn.Flatten(), (1, *chw))[1:]
    assert node.output.layout.axes == "NC"
    assert node.params == {} and node.macs == 0


# ================================================================ merges


def test_add_and_mul_of_equal_shapes():
    g = ok("a = x -> conv(8, 3, padding=1)\nb = x -> conv(8, 1)\ns = a + b\np = a * b\n"
           "y = add(s, p, a)\noutput y", "input x: f32[N, 3, 16, 16]")
    for name, kind in (("s", "add"), ("p", "mul"), ("y", "add")):
        node = g.node(name)
        assert node.kind == kind
        assert node.output.shape == ("N", 8, 16, 16)
        assert node.params == {} and node.macs == 0
    assert g.node("y").inputs == ["s", "p", "a"]


def test_mul_broadcasts_a_gate_like_squeeze_and_excitation():
    g = ok("gate = x -> global_avgpool -> conv(3, 1) -> sigmoid\ny = x * gate\noutput y",
           "input x: f32[N, 3, 16, 16]")
    expected = torch.broadcast_shapes((1, 3, 16, 16), (1, 3, 1, 1))
    assert g.node("y").output.shape == ("N",) + tuple(expected)[1:]


@pytest.mark.parametrize("op", ["+", "*"])
def test_elementwise_shape_mismatch_is_an_error(op):
    d = error(f"a = x -> conv(16, 3, padding=1)\nb = x -> conv(32, 3)\ny = a {op} b\noutput y",
              "input x: f32[N, 3, 32, 32]")
    assert "[N, 16, 32, 32]" in d.message and "[N, 32, 30, 30]" in d.message
    assert d.layer == "y"
    with pytest.raises(RuntimeError):
        torch.zeros(1, 16, 32, 32) + torch.zeros(1, 32, 30, 30)


def test_concat_default_axis_is_channels():
    g = ok("a = x -> conv(8, 1)\nb = x -> conv(4, 3, padding=1)\ny = concat(a, b, x)\noutput y",
           "input x: f32[N, 3, 16, 16]")
    expected = torch.cat([torch.zeros(1, 8, 16, 16), torch.zeros(1, 4, 16, 16), torch.zeros(1, 3, 16, 16)], 1)
    assert g.node("y").output.shape == ("N",) + tuple(expected.shape)[1:]
    assert g.node("y").inputs == ["a", "b", "x"]
    assert g.node("y").params == {} and g.node("y").macs == 0


def test_concat_piped_and_along_a_spatial_axis():
    g = ok('a = x -> conv(3, 1)\ny = x -> concat(a, axis="H")\nz = concat(x, a, dim=3)\noutput y, z',
           "input x: f32[N, 3, 16, 10]")
    assert g.node("y").output.shape == ("N", 3, 32, 10)
    assert g.node("z").output.shape == ("N", 3, 16, 20)


def test_concat_shape_mismatch_is_an_error():
    d = error("a = x -> conv(8, 3)\ny = concat(x, a)\noutput y", "input x: f32[N, 3, 16, 16]")
    assert "[N, 3, 16, 16]" in d.message and "[N, 8, 14, 14]" in d.message
    assert d.layer == "y"
    with pytest.raises(RuntimeError):
        torch.cat([torch.zeros(1, 3, 16, 16), torch.zeros(1, 8, 14, 14)], 1)


@pytest.mark.parametrize("axis, needle", [("5", "out of range"), ('"Q"', '"Q"'), ('"N"', "batch"), ("0", "batch")])
def test_concat_bad_axis_is_an_error(axis, needle):
    d = error(f"y = concat(x, x, axis={axis})\noutput y", "input x: f32[N, 3, 16, 16]")
    assert needle in d.message
    assert d.layer == "y"


def test_concat_of_a_map_and_a_flat_tensor_is_an_error():
    error("f = x -> flatten\ny = concat(x, f)\noutput y", "input x: f32[N, 3, 4, 4]")


# ================================================================ NHWC


NHWC = "input x: f32[N, 32, 32, 3] NHWC"
NCHW = "input x: f32[N, 3, 32, 32]"


def test_nhwc_conv_prints_in_nhwc_with_the_channel_last():
    g = ok("y = x -> conv(8, 3, stride=2, padding=1)\noutput y", NHWC)
    twin = ok("y = x -> conv(8, 3, stride=2, padding=1)\noutput y", NCHW)
    module = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    n, c, h, w = torch_out(module, (1, 3, 32, 32))
    out = g.node("y").output
    assert out.shape == ("N", h, w, c) == ("N", 16, 16, 8)
    assert out.layout.axes == "NHWC"
    assert out.channels == 8
    assert twin.node("y").output.shape == ("N", c, h, w)
    assert param_shapes(g.node("y")) == param_shapes(twin.node("y")) == torch_shapes(module)
    assert g.node("y").macs == twin.node("y").macs == c * h * w * 3 * 3 * 3


def test_nhwc_rectangular_input_keeps_height_and_width_apart():
    g = ok("y = x -> conv(4, (3, 1), stride=(2, 1))\noutput y", "input x: f32[N, 20, 11, 3] NHWC")
    expected = torch_out(nn.Conv2d(3, 4, (3, 1), stride=(2, 1)), (1, 3, 20, 11))
    assert g.node("y").output.shape == ("N", expected[2], expected[3], expected[1]) == ("N", 9, 11, 4)


def test_nhwc_pipeline_has_the_same_parameters_as_its_nchw_twin():
    body = ("y = x -> conv(8, 3, padding=1, groups=1) -> batchnorm -> relu -> maxpool(2)\n"
            "    -> conv(16, 3, groups=8, padding=\"same\") -> avgpool(2) -> flatten -> linear(10)\noutput y")
    g, twin = ok(body, NHWC), ok(body, NCHW)
    specs = {k: (v.shape, v.trainable) for k, v in g.parameter_specs().items()}
    twin_specs = {k: (v.shape, v.trainable) for k, v in twin.parameter_specs().items()}
    assert specs == twin_specs
    assert g.node("y.4").output.shape == ("N", 16, 16, 16)
    assert g.node("y.1").params["running_mean"].shape == (8,)
    assert g.node("y.5").output.shape == ("N", 8, 8, 16)
    assert twin.node("y.5").output.shape == ("N", 16, 8, 8)
    # flatten: the same feature count in either layout
    assert g.node("y.6").output.shape == twin.node("y.6").output.shape == ("N", 16 * 8 * 8)
    assert g.node("y.7").params["weight"].shape == (10, 1024)
    assert [n.macs for n in g] == [n.macs for n in twin]


def test_nhwc_concat_default_axis_is_the_channel_axis():
    g = ok("a = x -> conv(8, 1)\ny = concat(x, a)\noutput y", NHWC)
    assert g.node("y").output.shape == ("N", 32, 32, 11)
    assert g.node("y").output.layout.axes == "NHWC"
    twin = ok("a = x -> conv(8, 1)\ny = concat(x, a)\noutput y", NCHW)
    assert twin.node("y").output.shape == ("N", 11, 32, 32)


def test_nhwc_concat_along_a_named_spatial_axis():
    g = ok('y = concat(x, x, axis="W")\noutput y', NHWC)
    assert g.node("y").output.shape == ("N", 32, 64, 3)


def test_nhwc_softmax_default_axis_and_global_pool():
    g = ok("y = x -> global_avgpool\nz = x -> adaptive_avgpool((2, 4))\noutput y, z", NHWC)
    assert g.node("y").output.shape == ("N", 1, 1, 3)
    assert g.node("z").output.shape == ("N", 2, 4, 3)


def test_nhwc_groups_are_checked_on_the_channel_axis():
    # 32 would divide by 4, but the channels are 3
    d = error("y = x -> conv(8, 3, groups=4)", NHWC)
    assert d.rule == "in_channels % groups == 0"


def test_mixing_layouts_in_a_merge_is_an_error():
    d = error("y = concat(x, z)\noutput y",
              "input x: f32[N, 3, 8, 8]\ninput z: f32[N, 8, 8, 3] NHWC")
    assert "layouts" in d.message


def test_linear_over_the_channels_of_a_channels_last_input_counts_every_position():
    g = ok("y = x -> linear(384)", "input x: f32[N, 7, 7, 96] NHWC")
    node = g.node("y")
    assert node.output.shape == ("N", 7, 7, 384) and str(node.output.layout) == "NHWC"
    torch_linear = nn.Linear(96, 384)
    assert node.trainable == sum(p.numel() for p in torch_linear.parameters()) == 96 * 384 + 384
    assert node.macs == 7 * 7 * 96 * 384  # one dot product of 96 terms per output element


def test_the_new_small_layers_keep_the_shape():
    g = ok("y = x -> hardtanh(-2, 2) -> log_softmax -> stochastic_depth(0.1)")
    assert g.node("y.2").output.shape == ("N", 3, 32, 32)
    assert [g.node(f"y.{i}").summary for i in range(3)] == ["hardtanh -2..2", "log_softmax",
                                                            "stochastic_depth p=0.1"]


# ================================================================ 1-D and 3-D: one layer per kind, any rank
#
# The same layer classes over [N, C, L] (nn.Conv1d and friends) and [N, C, D, H, W] (nn.Conv3d),
# each checked against the torch module of that rank: output shape, state_dict shapes, counts.


def dims(shape) -> str:
    return ", ".join(map(str, shape))


CONV_RANK_CASES = [
    # (netspec call, torch module, input C, *spatial)
    ("conv(16, 3)", nn.Conv1d(3, 16, 3), (3, 50)),
    ("conv(8, 5, stride=2, padding=2, dilation=2)", nn.Conv1d(3, 8, 5, stride=2, padding=2, dilation=2), (3, 33)),
    ('conv(8, 4, padding="same")', nn.Conv1d(3, 8, 4, padding="same"), (3, 17)),
    ('conv(8, 3, padding="valid")', nn.Conv1d(3, 8, 3, padding="valid"), (3, 17)),
    ("conv(32, 3, groups=4, padding=1)", nn.Conv1d(16, 32, 3, groups=4, padding=1), (16, 20)),
    ("conv(64, 3, stride=2, padding=1)", nn.Conv3d(3, 64, 3, stride=2, padding=1), (3, 16, 56, 56)),
    ("conv(45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=false)",
     nn.Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False), (3, 8, 56, 56)),  # R(2+1)D
    ("conv(64, (3, 1, 1), padding=(1, 0, 0), bias=false)",
     nn.Conv3d(45, 64, (3, 1, 1), padding=(1, 0, 0), bias=False), (45, 8, 28, 28)),
    ('conv(8, (2, 3, 4), dilation=(1, 2, 3), padding="same")',
     nn.Conv3d(3, 8, (2, 3, 4), dilation=(1, 2, 3), padding="same"), (3, 9, 10, 11)),
    ("conv(24, 3, groups=24, padding=1)", nn.Conv3d(24, 24, 3, groups=24, padding=1), (24, 5, 6, 7)),  # depthwise
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("call, module, shape", CONV_RANK_CASES, ids=[c[0] for c in CONV_RANK_CASES])
def test_conv_of_any_rank_matches_torch(call, module, shape):
    node = layer(f"y = x -> {call}", f"input x: f32[N, {dims(shape)}]")
    expected = torch_out(module, (1, *shape))
    assert node.kind == "conv"
    assert node.output.shape == ("N",) + expected[1:]
    assert node.output.layout.axes == {2: "NCL", 4: "NCDHW"}[len(shape)]
    assert param_shapes(node) == torch_shapes(module)
    assert trainable(node) == torch_trainable(module)
    # MACs: out_elements * in/groups * prod(kernel), as torchvision counts them
    assert node.macs == prod(expected[1:]) * (shape[0] // module.groups) * prod(module.kernel_size)


CONV_TRANSPOSE_RANK_CASES = [
    ("conv_transpose(6, 4, stride=2, padding=1)", nn.ConvTranspose1d(3, 6, 4, stride=2, padding=1), (3, 20)),
    ("conv_transpose(6, 3, stride=2, output_padding=1, groups=3, bias=false)",
     nn.ConvTranspose1d(3, 6, 3, stride=2, output_padding=1, groups=3, bias=False), (3, 9)),
    ("conv_transpose(8, (1, 2, 2), stride=(1, 2, 2))", nn.ConvTranspose3d(4, 8, (1, 2, 2), stride=(1, 2, 2)),
     (4, 4, 7, 7)),
    ("conv_transpose(8, 3, stride=(2, 1, 2), padding=(1, 0, 2), output_padding=(1, 0, 0), dilation=2)",
     nn.ConvTranspose3d(4, 8, 3, stride=(2, 1, 2), padding=(1, 0, 2), output_padding=(1, 0, 0), dilation=2),
     (4, 5, 6, 7)),
]


@pytest.mark.parametrize("call, module, shape", CONV_TRANSPOSE_RANK_CASES, ids=[c[0] for c in CONV_TRANSPOSE_RANK_CASES])
def test_conv_transpose_of_any_rank_matches_torch(call, module, shape):
    node = layer(f"y = x -> {call}", f"input x: f32[N, {dims(shape)}]")
    expected = torch_out(module, (1, *shape))
    assert node.output.shape == ("N",) + expected[1:]
    assert param_shapes(node) == torch_shapes(module)
    assert trainable(node) == torch_trainable(module)
    # every input element meets a kernel-sized patch of out/groups outputs
    assert node.macs == prod(shape) * (module.out_channels // module.groups) * prod(module.kernel_size)


POOL_RANK_CASES = [
    ("maxpool(2)", nn.MaxPool1d(2), (4, 33)),
    ("maxpool(3, 2, padding=1, dilation=2, ceil_mode=true)", nn.MaxPool1d(3, 2, 1, 2, ceil_mode=True), (4, 20)),
    ("avgpool(3, 2, padding=1, ceil_mode=true, count_include_pad=false)",
     nn.AvgPool1d(3, 2, 1, ceil_mode=True, count_include_pad=False), (4, 20)),
    ("lppool(2, 3, 2)", nn.LPPool1d(2, 3, 2), (4, 21)),
    ("adaptive_avgpool(5)", nn.AdaptiveAvgPool1d(5), (4, 21)),
    ("adaptive_maxpool(7)", nn.AdaptiveMaxPool1d(7), (4, 21)),
    ("global_avgpool", nn.AdaptiveAvgPool1d(1), (4, 21)),
    ("global_maxpool", nn.AdaptiveMaxPool1d(1), (4, 21)),
    ("maxpool((1, 3, 3), (1, 2, 2), padding=(0, 1, 1))", nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), (4, 8, 56, 56)),
    ("maxpool(2, ceil_mode=true, dilation=(1, 2, 1))", nn.MaxPool3d(2, dilation=(1, 2, 1), ceil_mode=True), (4, 5, 9, 7)),
    ("avgpool((2, 2, 3), 2)", nn.AvgPool3d((2, 2, 3), 2), (4, 6, 7, 8)),
    ("avgpool(3, 2, padding=1, count_include_pad=false)", nn.AvgPool3d(3, 2, 1, count_include_pad=False), (4, 6, 7, 8)),
    ("lppool(1, (1, 2, 2))", nn.LPPool3d(1, (1, 2, 2)), (4, 6, 7, 8)),
    ("adaptive_avgpool((1, 7, 7))", nn.AdaptiveAvgPool3d((1, 7, 7)), (4, 8, 14, 14)),
    ("adaptive_maxpool((2, 3, 4))", nn.AdaptiveMaxPool3d((2, 3, 4)), (4, 5, 7, 9)),
    ("global_avgpool", nn.AdaptiveAvgPool3d(1), (4, 5, 7, 9)),
]


@pytest.mark.parametrize("call, module, shape", POOL_RANK_CASES, ids=[f"{c[0]}-{len(c[2]) - 1}d" for c in POOL_RANK_CASES])
def test_pool_of_any_rank_matches_torch(call, module, shape):
    node = layer(f"y = x -> {call}", f"input x: f32[N, {dims(shape)}]")
    assert node.output.shape == ("N",) + torch_out(module, (1, *shape))[1:]
    assert node.params == {} and node.macs == 0


@pytest.mark.parametrize("shape, module", [((16, 50), nn.BatchNorm1d(16)), ((16, 4, 5, 6), nn.BatchNorm3d(16))])
def test_batchnorm_of_any_rank_matches_torch_state_dict(shape, module):
    node = layer("y = x -> batchnorm", f"input x: f32[N, {dims(shape)}]")
    assert node.output.shape == ("N", *shape)
    assert list(node.params) == list(module.state_dict())
    assert param_shapes(node) == torch_shapes(module)
    assert node.trainable == torch_trainable(module) == 32 and node.buffers == 33


@pytest.mark.parametrize("call, kwargs, shape", [
    ("upsample(2)", dict(scale_factor=2, mode="nearest"), (4, 10)),
    ('upsample(1.5, mode="linear")', dict(scale_factor=1.5, mode="linear"), (4, 11)),
    ('upsample(size=7, mode="linear", align_corners=true)', dict(size=7, mode="linear", align_corners=True), (4, 11)),
    ("upsample((1, 2, 2))", dict(scale_factor=(1, 2, 2), mode="nearest"), (4, 3, 5, 6)),
    ('upsample(2.5, mode="trilinear")', dict(scale_factor=2.5, mode="trilinear"), (4, 3, 5, 6)),
    ('upsample(size=(4, 9, 2), mode="trilinear")', dict(size=(4, 9, 2), mode="trilinear"), (4, 3, 5, 6)),
])
def test_upsample_of_any_rank_matches_torch(call, kwargs, shape):
    node = layer(f"y = x -> {call}", f"input x: f32[N, {dims(shape)}]")
    assert node.output.shape == ("N",) + torch_out(nn.Upsample(**kwargs), (1, *shape))[1:]


@pytest.mark.parametrize("padding, torch_pad, shape", [
    ("3", (3, 3), (4, 10)),
    ("(1, 2)", (1, 2), (4, 10)),                               # 1-D: (left, right)
    ("(1, 2, 3)", (3, 3, 2, 2, 1, 1), (4, 5, 6, 7)),          # 3-D: one per axis (d, h, w)
    ("(1, 0, 2, 3, 4, 5)", (2, 5, 0, 4, 1, 3), (4, 5, 6, 7)),  # (front, top, left, back, bottom, right)
])
def test_pad_of_any_rank_matches_torch(padding, torch_pad, shape):
    node = layer(f"y = x -> pad({padding})", f"input x: f32[N, {dims(shape)}]")
    expected = tuple(torch.nn.functional.pad(torch.zeros(1, *shape), torch_pad).shape)
    assert node.output.shape == ("N",) + expected[1:]


def test_channels_last_1d_and_3d_match_their_channels_first_twins():
    for last, first in [("input x: f32[N, 40, 6] NLC", "input x: f32[N, 6, 40]"),
                        ("input x: f32[N, 8, 20, 20, 6] NDHWC", "input x: f32[N, 6, 8, 20, 20]")]:
        body = ("y = x -> conv(12, 3, stride=2, padding=1) -> batchnorm -> relu -> maxpool(2)"
                ' -> upsample(2) -> pad(1, mode="replicate") -> global_avgpool -> flatten -> linear(3)\noutput y')
        g, twin = ok(body, last), ok(body, first)
        assert str(g.node("y.0").output.layout) == last.split()[-1]
        assert g.node("y.0").output.channels == 12 and g.node("y.0").output.shape[-1] == 12
        assert [tuple(n.output.spatial) for n in g] == [tuple(n.output.spatial) for n in twin]
        assert [param_shapes(n) for n in g] == [param_shapes(n) for n in twin]
        assert [n.macs for n in g] == [n.macs for n in twin]


# ---------------------------------------------------------------- errors in the axes' words


@pytest.mark.parametrize("call, decl, message", [
    ("conv(8, (3, 3))", "f32[N, 3, 8, 8, 8]",
     "conv: `kernel` (3, 3) has 2 values, but this is a 3-D input (depth, height, width)"),
    ("maxpool(2, (1, 2))", "f32[N, 3, 16]", "maxpool: `stride` (1, 2) has 2 values, but this is a 1-D input (length)"),
    ("conv_transpose(4, 2, output_padding=(1, 0))", "f32[N, 3, 8, 8, 8]",
     "conv_transpose: `output_padding` (1, 0) has 2 values, but this is a 3-D input (depth, height, width)"),
    ("adaptive_avgpool((2, 2, 2))", "f32[N, 3, 8, 8]",
     "adaptive_avgpool: `output_size` (2, 2, 2) has 3 values, but this is a 2-D input (height, width)"),
    ("upsample((2, 2))", "f32[N, 3, 8]", "upsample: `scale_factor` (2, 2) has 2 values, but this is a 1-D input"),
    ("conv(8, 3, padding=(1, 1, 1, 1, 1, 1))", "f32[N, 3, 8, 8]",
     "conv: padding (1, 1, 1, 1, 1, 1) has 6 values; a 2-D input (height, width) takes 1, 2 (one per axis) "
     "or 4 (begins then ends: (top, left, bottom, right))"),
    ("conv(8, 3, padding=(1, 2, 3))", "f32[N, 3, 8]",
     "conv: padding (1, 2, 3) has 3 values; a 1-D input (length) takes 1 or 2 (begins then ends: (left, right))"),
    ("pad((1, 2, 3, 4))", "f32[N, 3, 5, 6, 7]",
     "pad: padding (1, 2, 3, 4) has 4 values; a 3-D input (depth, height, width) takes 1, 3 (one per axis) or 6 "
     "(begins then ends: (front, top, left, back, bottom, right))"),
    ("conv(4, 3)", "f32[N, 3, 2, 8, 8]", "conv: depth: output size would be 0: floor((2 + 2*0 - 1*(3-1) - 1) / 1) + 1 = 0"),
    ("maxpool(3)", "f32[N, 3, 2]", "maxpool: length: output size would be 0"),
    ('pad(3, mode="reflect")', "f32[N, 3, 8, 3, 8]", "pad: height: reflect padding 3 needs an input larger than it"),
    ("conv(4, 3)", "f32[N, 3, 4, 5, 6, 7] NCDHWL",
     "conv: takes a 1-D [N, C, L], 2-D [N, C, H, W] or 3-D [N, C, D, H, W] input; [N, 3, 4, 5, 6, 7] has 4 "
     "spatial axes (depth, height, width, length)"),
    ("maxpool(2)", "f32[N, 30]", "maxpool: takes a 1-D [N, C, L], 2-D [N, C, H, W] or 3-D [N, C, D, H, W] input; "
                                 "[N, 30] has no spatial axes"),
    ("global_avgpool", "f32[N, 30]", "global_avgpool: pools over the spatial axes, and [N, 30] has none"),
])
def test_rank_errors_name_the_axes(call, decl, message):
    d = error(f"y = x -> {call}", f"input x: {decl}")
    assert d.message.startswith(message), d.message
    assert d.layer == "y" and d.span is not None and d.span.line == 3


@pytest.mark.parametrize("mode, decl, fits, count", [
    ("bilinear", "f32[N, 3, 16]", "linear", "interpolates 2 spatial axes, but this is a 1-D input (length)"),
    ("trilinear", "f32[N, 3, 16, 16]", "bilinear", "interpolates 3 spatial axes, but this is a 2-D input (height, width)"),
    ("linear", "f32[N, 3, 4, 16, 16]", "trilinear",
     "interpolates 1 spatial axis, but this is a 3-D input (depth, height, width)"),
])
def test_upsample_linear_mode_must_fit_the_rank(mode, decl, fits, count):
    d = error(f'y = x -> upsample(2, mode="{mode}")', f"input x: {decl}")
    assert d.message == f'upsample: mode="{mode}" {count}'
    assert d.hint == f'write mode="{fits}"'
    with pytest.raises((NotImplementedError, ValueError, RuntimeError)):  # torch refuses it too
        torch.nn.functional.interpolate(torch.zeros(1, *batch1(tuple(int(v) for v in decl[8:-1].split(", ")))),
                                        scale_factor=2, mode=mode)


def test_align_corners_needs_a_linear_mode():
    d = error("y = x -> upsample(2, align_corners=true)", "input x: f32[N, 3, 16]")
    assert "align_corners applies to the linear modes only" in d.message


def test_3d_conv_transpose_output_padding_refused_for_onnx_names_the_axis():
    result = compile_spec("y = x -> conv_transpose(4, 3, stride=(2, 1, 2), dilation=2, output_padding=(0, 1, 0))",
                          "input x: f32[N, 3, 5, 6, 7]")
    assert result.ok
    (warning,) = [d for d in result.diagnostics.items if d.severity == "warning"]
    assert "output_padding must be smaller than the stride for ONNX's ConvTranspose (the height's is 1, its stride 1)" \
        in warning.message
