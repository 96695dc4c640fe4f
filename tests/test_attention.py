"""Attention and tokens: multihead_attention's rules, the class token's concat, and a tiny ViT
(examples/tiny_vit.net) against torchvision's ViT structure re-implemented in plain torch, its
state_dict loaded unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import netspec
from netspec.diagnostics import NetspecError
from netspec.lower import DEFAULT_OPSET, canonical_shape, lower

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_export import inferred_shapes, light_model, zero_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY_VIT = ROOT / "examples" / "tiny_vit.net"


def compile_text(tmp_path, text: str):
    spec = tmp_path / "t.net"
    spec.write_text(text)
    return netspec.load(spec)


def test_attention_shapes_params_and_macs(tmp_path):
    net = compile_text(tmp_path, "network t\ninput x: f32[N, 7, 16] NLC\ny = x -> multihead_attention(4)\noutput y\n")
    node = net.check().graph.node("y")
    assert node.output.shape == ("N", 7, 16)
    specs = {k: v.shape for k, v in net.graph.parameter_specs().items()}
    assert specs == {"y.in_proj_weight": (48, 16), "y.in_proj_bias": (48,),
                     "y.out_proj.weight": (16, 16), "y.out_proj.bias": (16,)}
    assert net.totals().params == 4 * 16 * 16 + 4 * 16
    assert net.totals().macs == 7 * 16 * 48 + 2 * 7 * 7 * 16 + 7 * 16 * 16


def test_attention_heads_must_divide_the_width(tmp_path):
    net = compile_text(tmp_path, "network t\ninput x: f32[N, 7, 16] NLC\ny = x -> multihead_attention(3)\noutput y\n")
    with pytest.raises(NetspecError, match="embedding width 16 does not divide into 3 heads"):
        net.check()


def test_class_token_of_the_wrong_width(tmp_path):
    net = compile_text(tmp_path, "network t\ninput x: f32[N, 4, 32] NLC\nclass_token = param(1, 1, 64)\n"
                                 'y = concat(class_token, x, axis="L")\noutput y\n')
    with pytest.raises(NetspecError, match=r"shapes do not match along the other axes: \[N, 4, 32\] and \[N, 1, 64\]"):
        net.check()


def test_class_token_with_a_batch_size(tmp_path):
    net = compile_text(tmp_path, "network t\ninput x: f32[N, 4, 32] NLC\nclass_token = param(2, 1, 32)\n"
                                 'y = concat(class_token, x, axis="L")\noutput y\n')
    with pytest.raises(NetspecError, match="size 2 on the batch axis"):
        net.check()


# ================================================================ against torch

torch = pytest.importorskip("torch")
nn = torch.nn
import torch_models as tm  # noqa: E402  (tests/ is on sys.path)


def TinyViT():
    """torchvision's VisionTransformer in plain torch (tests/torch_models.py), at 32x32, patch 8,
    2 layers of 4 heads, width 32: examples/tiny_vit.net's twin."""
    return tm.VisionTransformer(image=32, patch=8, layers=2, heads=4, d=32, mlp=64, classes=10)


def test_tiny_vit_matches_torch():
    torch.manual_seed(0)
    model = TinyViT().eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():  # nothing left at torch's zeros and ones
            t.copy_(torch.randn(t.shape) * (0.3 if "weight" in name else 0.5))
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    net = netspec.load(TINY_VIT)
    assert set(net.graph.parameter_specs()) == set(state)
    assert net.totals().params == sum(v.numel() for v in model.parameters())
    assert_runs_as_torch(net, model, state, (3, 3, 32, 32))


def assert_runs_as_torch(net, model, state: dict, shape: tuple) -> None:
    """netspec's `logits` for a seeded `image` of `shape`, with `state` as weights, are the torch
    model's within 1e-4 of their scale."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = net.run({"image": x}, weights=state)["logits"]
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 1e-4 * scale


def test_tiny_vit_macs_count_every_product():
    net = netspec.load(TINY_VIT)
    length, d, mlp = 17, 32, 64
    attention = length * d * 3 * d + 2 * length * length * d + length * d * d
    per_layer = attention + 2 * length * d * mlp
    assert net.totals().macs == 16 * d * 3 * 64 + 2 * per_layer + d * 10


def assert_onnx_checks_and_shapes_agree(net) -> None:
    """The lowered model passes onnx's full check, and the shape onnx infers for every layer's
    value (at batch 2) is netspec's."""
    model = lower(net.graph, zero_weights(net), DEFAULT_OPSET, None)
    onnx.checker.check_model(model, full_check=True)
    shapes = inferred_shapes(light_model(net, 2))
    problems = []
    for node in net.graph:
        want = [d if isinstance(d, int) else 2 for d in canonical_shape(node.output)]
        if shapes.get(node.name) != want:
            problems.append(f"{node.name} ({node.kind}): onnx {shapes.get(node.name)}, netspec {want}")
    assert not problems, "\n".join(problems)


def test_tiny_vit_onnx_passes_full_check_and_shape_inference():
    assert_onnx_checks_and_shapes_agree(netspec.load(TINY_VIT).check())


def test_tiny_vit_onnx_keeps_tokens_nlc_for_linears():
    """Tokens stay [N, L, C] inside the graph: the MLP's linears lower to MatMul, not to 1x1
    convolutions, and no Transpose surrounds the residual adds or the layer norms (onnxruntime
    then fuses Gemms as for torch.onnx.export's ViT; bench/run_all.py section 4)."""
    net = netspec.load(TINY_VIT).check()
    model = lower(net.graph, zero_weights(net), DEFAULT_OPSET, None)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 1  # conv_proj only
    assert ops.count("MatMul") == 2 * (4 + 2)  # per layer: in_proj, QK^T, AV, out_proj, mlp.0, mlp.3
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type in ("Add", "LayerNormalization") and "mlp" not in node.name and "attention" not in node.name:
            assert all(producers[i].op_type != "Transpose" for i in node.input if i in producers), node.name


def test_matmul_shape_macs_and_mismatch(tmp_path):
    net = compile_text(tmp_path, "network t\ninput a: f32[N, 2, 5, 4]\ninput b: f32[N, 1, 4, 3]\n"
                                 "y = matmul(a, b)\noutput y\n")
    assert net.check().graph.node("y").output.shape == ("N", 2, 5, 3)
    assert net.totals().macs == 2 * 5 * 3 * 4
    bad = compile_text(tmp_path, "network t\ninput a: f32[N, 5, 4] NLC\ninput b: f32[N, 5, 4] NLC\n"
                                 "y = matmul(a, b)\noutput y\n")
    with pytest.raises(NetspecError, match=r"inner sizes differ: .*a's last axis \(embedding width\) is 4, b's second-to-last \(tokens\) is 5"):
        bad.check()


# ================================================================ Swin's windows, against torch

TINY_SWIN = f"""
use "{ROOT / 'specs' / 'lib' / 'swin.net'}"
network tiny_swin
input image: f32[N, 3, 64, 64]
features = image -> features: features(8, 2, 2, 2, 2, 1, 1, 2, 2, 2, 0.0)
logits = features -> norm: layernorm -> permute(0, 3, 1, 2) -> adaptive_avgpool(1) -> flatten -> head: linear(10)
output logits
"""


def TinySwin():
    """torchvision's SwinTransformer in plain torch (tests/torch_models.py) at 64x64: width 8,
    stages of 2 blocks, 2x2 windows (maps of 16, 8, 4 and 2: the last does not shift)."""
    return tm.SwinTransformer(embed=8, depths=(2, 2, 2, 2), heads=(1, 1, 2, 2), window=2, classes=10)


def test_tiny_swin_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = TinySwin().eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:  # the relative position index keeps its values
                t.copy_(torch.randn(t.shape) * (0.3 if "weight" in name else 0.5))
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    net = compile_text(tmp_path, TINY_SWIN)
    assert list(net.tensors()) and set(net.tensors()) == set(state)
    assert net.totals().params == sum(v.numel() for v in model.parameters())
    own = net.weights()
    for key in (k for k in state if k.endswith("relative_position_index")):
        assert np.array_equal(own[key], state[key]), key
    assert_runs_as_torch(net, model, state, (2, 3, 64, 64))


def test_tiny_swin_onnx_passes_full_check_and_shape_inference(tmp_path):
    assert_onnx_checks_and_shapes_agree(compile_text(tmp_path, TINY_SWIN).check())


def test_equal_constants_outside_the_state_dict_share_one_initializer(tmp_path):
    """Swin's mask of shifted windows is the same in every shifted block of a stage: one
    initializer holds it (each block's own relative_position_index stays its own: it is a
    state_dict entry, a weight a file may give)."""
    net = compile_text(tmp_path, TINY_SWIN).check()
    model = lower(net.graph, zero_weights(net), DEFAULT_OPSET, None)
    masks = [i.name for i in model.graph.initializer if i.name.endswith("attn_mask")]
    shifted = [n.name for n in net.graph if n.name.endswith("attn_mask")]
    assert len(shifted) == 3 and len(masks) == 3  # one shifted block per stage, the last not shifted
    tiny = TINY_SWIN.replace("features(8, 2, 2, 2, 2, 1, 1, 2, 2, 2, 0.0)", "features(8, 2, 2, 6, 2, 1, 1, 2, 2, 2, 0.0)")
    net = compile_text(tmp_path, tiny).check()
    model = lower(net.graph, zero_weights(net), DEFAULT_OPSET, None)
    masks = [i.name for i in model.graph.initializer if i.name.endswith("attn_mask")]
    indices = [i.name for i in model.graph.initializer if i.name.endswith("relative_position_index")]
    assert len([n for n in net.graph if n.name.endswith("attn_mask")]) == 5 and len(masks) == 3
    assert len(indices) == 12


def test_a_class_token_concat_with_the_batch_not_first(tmp_path):
    """The class token is expanded over the batch where the layout has it ([L, N, C], LNC):
    values keep their declared layouts inside the graph, so the batch is not always axis 0."""
    net = compile_text(tmp_path, 'network t\ninput x: f32[16, N, 32] LNC\ncls = param(1, 1, 32)\n'
                                 'y = concat(cls, x, axis="L")\noutput y\n')
    x = np.random.default_rng(0).standard_normal((16, 3, 32)).astype(np.float32)
    weights = net.weights()
    y = net.run(x, weights=weights)["y"]
    assert y.shape == (17, 3, 32)
    assert np.array_equal(y[0], np.broadcast_to(weights["cls"][0], (3, 32))) and np.array_equal(y[1:], x)


def test_a_fixed_batch_is_set_on_the_batch_axis(tmp_path):
    """`batch=` fixes the batch where the layout has it: [16, N, 32] LNC becomes [16, 3, 32]."""
    net = compile_text(tmp_path, 'network t\ninput x: f32[16, N, 32] LNC\ny = x -> relu\noutput y\n')
    model = net.to_onnx(batch=3)
    dims = [[d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*model.graph.input, *model.graph.output)]
    assert dims == [[16, 3, 32], [16, 3, 32]]
