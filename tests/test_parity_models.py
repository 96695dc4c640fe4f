"""Numerical parity: netspec's ONNX, run by onnxruntime, computes what an independently written
PyTorch module computes with the same weights.

For lenet5, alexnet, resnet18, mobilenet_v2, squeezenet1_1, unet and fpn, a hand-written module
(tests/torch_models.py, written from the architectures, not generated from the specs) is built
under torch.manual_seed, its convolution and linear weights drawn with He (Kaiming) scaling so
activations keep an O(1) scale through the depth (the comparison is then effectively relative),
its batch-norm scales, shifts, running means and running variances randomised (so batch norm in
inference mode is really tested, not the identity of fresh statistics), and put in eval() mode.
Its state_dict, converted to numpy, is given to netspec as `weights`; both run on the same
random input.

Tolerance (all comparisons): max |netspec - torch| <= 1e-4 * max(1, max |torch|), i.e. a max abs
difference below 1e-4 relative to the output's scale (its largest magnitude, at least 1). Float32
convolution in two libraries differs only in summation order, which stays orders of magnitude
below this.

Also here: seeded initialisation is deterministic; an NHWC spec equals its NCHW twin (flatten
included, whose feature order follows the declared layout); weights saved by PyTorch and
converted to .npz and .safetensors run through `netspec run --weights` unchanged; and two
lowering cases found while writing these (an NHWC output bound to a single layer; ceil_mode
pooling whose last window would start in the padding).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import netspec  # noqa: E402
import torch_models as tm  # noqa: E402  (tests/ is on sys.path: pytest's default import mode)

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

RTOL = 1e-4  # max abs difference allowed, relative to max(1, the output's largest magnitude)


# ----------------------------------------------------------------------------- helpers


def assert_parity(actual, expected, what: str = "output") -> None:
    """max |actual - expected| <= 1e-4 * max(1, max |expected|); shapes equal; all finite."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
    assert np.isfinite(expected).all(), f"{what}: the torch reference is not finite"
    assert np.isfinite(actual).all(), f"{what}: netspec's output is not finite"
    scale = float(np.abs(expected).max())
    err = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max())
    tol = RTOL * max(1.0, scale)
    assert err <= tol, (f"{what}: max |netspec - torch| = {err:.3g} > {tol:.3g} "
                        f"(output scale {scale:.3g})")


def prepare(module: nn.Module, seed: int) -> nn.Module:
    """He-scaled conv/linear weights, randomised batch norm (affine and running statistics),
    eval mode. Deterministic in `seed`."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                # inputs summed into one output: in/groups * kh * kw (a conv's weight[0]); for a
                # transposed conv, weight is (in, out/groups, kh, kw), so in/groups * kh * kw too
                if isinstance(m, nn.ConvTranspose2d):
                    fan_in = m.weight.shape[0] // m.groups * m.weight[0, 0].numel()
                else:
                    fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, ())))
    return module.eval()


def state_dict_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def random_input(shape, seed: int = 1234) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def run_torch(module: nn.Module, *arrays: np.ndarray):
    with torch.no_grad():
        out = module(*(torch.from_numpy(a) for a in arrays))
    if isinstance(out, dict):
        return {k: v.numpy() for k, v in out.items()}
    if isinstance(out, tuple):
        return tuple(v.numpy() for v in out)
    return out.numpy()


# ----------------------------------------------------------------------------- the seven models

# (id, spec, torch module factory, load() keyword arguments, input shape, output name)
CASES = [
    ("lenet5", "lenet5", lambda: tm.LeNet5(10), {}, [4, 1, 32, 32], "logits"),
    ("alexnet-224", "alexnet", lambda: tm.AlexNet(1000), {}, [1, 3, 224, 224], "classifier"),
    ("resnet18-224", "resnet18", lambda: tm.ResNet18(1000), {}, [1, 3, 224, 224], "fc"),
    # non-square input and fewer classes: catches any H/W mix-up
    ("resnet18-64x96", "resnet18", lambda: tm.ResNet18(10), {"classes": 10}, [2, 3, 64, 96], "fc"),
    # odd sizes: stride-2 convolutions round down differently on each axis
    ("mobilenet_v2-75x100", "mobilenet_v2", lambda: tm.MobileNetV2(1000), {}, [2, 3, 75, 100],
     "classifier"),
    ("squeezenet1_1-224", "squeezenet1_1", lambda: tm.SqueezeNet11(1000), {}, [1, 3, 224, 224], "logits"),
    # 66x70: every ceil_mode max pool rounds up here (at 224 none does), so ceil_mode is tested
    ("squeezenet1_1-66x70", "squeezenet1_1", lambda: tm.SqueezeNet11(100), {"classes": 100},
     [2, 3, 66, 70], "logits"),
    ("unet-32", "unet", lambda: tm.UNet(3, 2, 64), {"size": 32}, [2, 3, 32, 32], "outc"),
    ("unet-48-small", "unet", lambda: tm.UNet(1, 3, 8), {"size": 48, "channels": 1, "classes": 3, "base": 8},
     [2, 1, 48, 48], "outc"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_model_parity(case):
    _, spec, factory, params, shape, output = case
    module = prepare(factory(), seed=zlib.crc32(case[0].encode()))
    weights = state_dict_numpy(module)
    x = random_input(shape)
    input_name = {"lenet5": "digits"}.get(spec, "image")
    net = netspec.load(SPECS / f"{spec}.net", input_shapes={input_name: shape}, **params)
    outputs = net.run(x, weights=weights)
    assert list(outputs) == [output]
    expected = run_torch(module, x)
    assert float(np.abs(expected).max()) > 0.1, "the reference output is too small to compare"
    assert_parity(outputs[output], expected, spec)


@pytest.mark.parametrize("size, width, batch", [(64, 256, 2), (96, 32, 1)])
def test_fpn_parity(size, width, batch):
    module = prepare(tm.FPN(width), seed=7)
    weights = state_dict_numpy(module)
    inputs = {f"c{i}": random_input([batch, c, size // s, size // s], seed=i)
              for i, c, s in ((2, 256, 4), (3, 512, 8), (4, 1024, 16), (5, 2048, 32))}
    net = netspec.load(SPECS / "fpn.net", size=size, width=width)
    outputs = net.run(inputs, weights=weights)
    expected = run_torch(module, *(inputs[f"c{i}"] for i in (2, 3, 4, 5)))
    assert sorted(outputs) == sorted(expected) == ["p2", "p3", "p4", "p5", "p6"]
    for name in expected:
        assert_parity(outputs[name], expected[name], f"fpn {name}")


def test_weights_are_the_state_dict():
    """The state_dict goes in unchanged: netspec's ONNX initializers are the torch tensors."""
    from onnx import numpy_helper

    module = prepare(tm.ResNet18(10), seed=3)
    weights = state_dict_numpy(module)
    model = netspec.load(SPECS / "resnet18.net", classes=10).to_onnx(weights=weights)
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for name in ("conv1.weight", "bn1.running_var", "layer2.0.downsample.1.running_mean", "fc.weight"):
        np.testing.assert_array_equal(initializers[name], weights[name])


# ----------------------------------------------------------------------------- seeded initialisation


def test_seeded_initialisation_is_deterministic():
    x = random_input([2, 3, 64, 64])
    spec = SPECS / "resnet18.net"
    shapes = {"input_shapes": {"image": [2, 3, 64, 64]}, "classes": 10}

    def run(seed=None):  # a fresh Network each time: no cached session
        options = {} if seed is None else {"seed": seed}
        return netspec.load(spec, **shapes).run(x, **options)["fc"]

    first, again, default = run(0), run(0), run()
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, default)  # the default seed is 0
    other = run(1)
    assert np.abs(first - other).max() > 1e-3 * max(1.0, float(np.abs(first).max()))

    # the weights themselves: equal for equal seeds, different otherwise, PyTorch's fresh BN stats
    a = netspec.load(spec, classes=10).weights(seed=5)
    b = netspec.load(spec, classes=10).weights(seed=5)
    c = netspec.load(spec, classes=10).weights(seed=6)
    assert list(a) == list(b) == list(c)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])
    np.testing.assert_array_equal(a["bn1.running_var"], np.ones(64, np.float32))
    np.testing.assert_array_equal(a["bn1.running_mean"], np.zeros(64, np.float32))
    # conv weights from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 3 * 7 * 7
    bound = 1 / np.sqrt(3 * 7 * 7)
    assert np.abs(a["conv1.weight"]).max() <= bound
    assert np.abs(a["conv1.weight"]).max() > 0.9 * bound


# ----------------------------------------------------------------------------- layouts

TWIN = """\
network twin(classes = 5)

input x: f32[{dims}] {layout}

y = x -> conv(8, (3, 5), stride=(2, 1), padding=(1, 2)) -> batchnorm -> relu
    -> maxpool(3, stride=2, padding=1, ceil_mode=true)
z = y -> conv(8, 3, padding=(0, 1, 2, 1)) -> relu
s = concat(y, z)
t = s + (s -> down: conv(16, 3, stride=2, padding="same") -> upsample(2))
feat = t -> upsample(2) -> identity
head = feat -> avgpool(2) -> flatten -> linear(classes)

output feat, head
"""
# Input 11x14 (H != W, H odd): y.0 -> [8, 6, 14]; the ceil_mode pool rounds up on both axes ->
# [8, 4, 8]; z keeps the size with padding top 0, left 1, bottom 2, right 1; "same" with stride 2
# pads only at the end (0 before, 1 after) -> [16, 2, 4], up-sampled back to [16, 4, 8];
# feat [16, 8, 16]; head: avgpool [16, 4, 8] -> flatten 512 -> linear 5. (`feat` ends in an identity
# so that its value is `feat.1`, not `feat`: see test_nhwc_output_named_like_its_layer for why.)
H, W = 11, 14


def write_twin(tmp_path: Path, layout: str) -> Path:
    dims = f"N, 3, {H}, {W}" if layout == "NCHW" else f"N, {H}, {W}, 3"
    path = tmp_path / f"twin_{layout.lower()}.net"
    path.write_text(TWIN.format(dims=dims, layout=layout), encoding="utf-8")
    return path


class Twin(nn.Module):
    """The twin spec by hand, in NCHW; `flatten_layout="NHWC"` permutes to channels-last
    before flattening, which is the feature order of the NHWC spec's flatten."""

    def __init__(self, flatten_layout: str = "NCHW", classes: int = 5):
        super().__init__()
        self.y = nn.Sequential(nn.Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2)), nn.BatchNorm2d(8))
        self.z = nn.Sequential(nn.Conv2d(8, 8, 3))  # padded by hand: top 0, left 1, bottom 2, right 1
        self.down = nn.Conv2d(16, 16, 3, stride=2)   # padded by hand: "same"
        self.head = nn.Sequential(nn.Identity(), nn.Flatten(), nn.Linear(16 * 4 * 8, classes))
        self.flatten_layout = flatten_layout

    @staticmethod
    def same(size: int, k: int = 3, s: int = 2) -> tuple[int, int]:
        total = max(0, (-(-size // s) - 1) * s + k - size)
        return total // 2, total - total // 2

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.y(x)), 3, stride=2, padding=1, ceil_mode=True)
        z = F.relu(self.z[0](F.pad(y, (1, 1, 0, 2))))  # F.pad order: left, right, top, bottom
        s = torch.cat([y, z], 1)
        top, bottom = self.same(s.shape[2])
        left, right = self.same(s.shape[3])
        t = s + F.interpolate(self.down(F.pad(s, (left, right, top, bottom))), scale_factor=2.0,
                              mode="nearest")
        feat = F.interpolate(t, scale_factor=2.0, mode="nearest")
        pooled = F.avg_pool2d(feat, 2)
        if self.flatten_layout == "NHWC":
            pooled = pooled.permute(0, 2, 3, 1)
        return feat, self.head[2](torch.flatten(pooled, 1))


def test_twin_by_hand_nchw(tmp_path):
    """The NCHW twin spec equals the hand-written module (the base the NHWC test builds on)."""
    module = prepare(Twin("NCHW"), seed=11)
    x = random_input([3, 3, H, W])
    out = netspec.load(write_twin(tmp_path, "NCHW")).run(x, weights=state_dict_numpy(module))
    feat, head = run_torch(module, x)
    assert_parity(out["feat"], feat, "feat")
    assert_parity(out["head"], head, "head")


def test_nhwc_twin_equals_nchw(tmp_path):
    """NHWC spec on the transposed input == NCHW spec, outputs transposed back; for the linear
    after flatten, the NHWC twin's weight columns are the NCHW ones permuted from (C, H, W) to
    (H, W, C) order."""
    module = prepare(Twin("NCHW"), seed=12)
    weights = state_dict_numpy(module)
    x = random_input([3, 3, H, W])
    nchw = netspec.load(write_twin(tmp_path, "NCHW")).run(x, weights=weights)

    w = weights["head.2.weight"]                                     # [5, C*h*w], (C, h, w) order
    permuted = dict(weights)
    permuted["head.2.weight"] = np.ascontiguousarray(
        w.reshape(5, 16, 4, 8).transpose(0, 2, 3, 1).reshape(5, -1))  # (h, w, C) order
    nhwc = netspec.load(write_twin(tmp_path, "NHWC")).run(x.transpose(0, 2, 3, 1), weights=permuted)

    assert nhwc["feat"].shape == (3, 8, 16, 16)                     # declared NHWC out
    assert_parity(nhwc["feat"], nchw["feat"].transpose(0, 2, 3, 1), "feat (NHWC vs NCHW)")
    assert_parity(nhwc["head"], nchw["head"], "head (NHWC vs NCHW)")
    # with the unpermuted weights the NHWC flatten order gives something else
    unpermuted = netspec.load(write_twin(tmp_path, "NHWC")).run(x.transpose(0, 2, 3, 1), weights=weights)
    assert np.abs(unpermuted["head"] - nchw["head"]).max() > 1e-2


def test_nhwc_twin_equals_channels_last_torch(tmp_path):
    """The NHWC spec, same weights as PyTorch, equals a module that permutes to NHWC before
    flattening: flatten follows the declared layout."""
    module = prepare(Twin("NHWC"), seed=13)
    x = random_input([2, 3, H, W])
    out = netspec.load(write_twin(tmp_path, "NHWC")).run(x.transpose(0, 2, 3, 1),
                                                          weights=state_dict_numpy(module))
    feat, head = run_torch(module, x)
    assert_parity(out["feat"], feat.transpose(0, 2, 3, 1), "feat")
    assert_parity(out["head"], head, "head")


def test_nhwc_output_named_like_its_layer(tmp_path):
    """A spatial NHWC output bound to a single layer (`y = x -> conv(...)`, value name `y`)
    gets its Transpose back to NHWC; the output keeps its name. (netspec bug: the Transpose
    writes `y` again, and onnx.checker rejects the graph as not in SSA form.)"""
    path = tmp_path / "nhwc_out.net"
    path.write_text("input x: f32[N, 6, 7, 3] NHWC\ny = x -> conv(4, 3, padding=1)\noutput y\n",
                    encoding="utf-8")
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1).eval()
    x = random_input([2, 3, 6, 7])
    out = netspec.load(path).run(x.transpose(0, 2, 3, 1), weights={f"y.{k}": v for k, v in
                                                                    state_dict_numpy(conv).items()})
    assert_parity(out["y"], run_torch(conv, x).transpose(0, 2, 3, 1), "y")


@pytest.mark.parametrize("opset", [None, 22], ids=["default-opset", "opset22"])
@pytest.mark.parametrize("pool", ["maxpool", "avgpool"])
def test_ceil_mode_drops_a_window_that_starts_in_the_padding(tmp_path, pool, opset):
    """PyTorch's ceil_mode drops a last window that would start in the right padding: 5 wide,
    kernel 2, stride 2, padding 1 gives 3, not ceil(5/2) + 1 = 4. netspec infers 3, and
    onnxruntime computes 3 windows; but ONNX shape inference before opset 22 says 4, so
    onnx.checker rejects the lowered model at the default opset 17 (netspec bug)."""
    path = tmp_path / "ceil.net"
    path.write_text(f"input x: f32[N, 2, 5, 5]\ny = x -> {pool}(2, stride=2, padding=1, ceil_mode=true)\n"
                    "output y\n", encoding="utf-8")
    x = random_input([2, 2, 5, 5])
    reference = getattr(F, f"{pool[:3]}_pool2d")(torch.from_numpy(x), 2, 2, 1, ceil_mode=True).numpy()
    assert reference.shape == (2, 2, 3, 3)
    options = {} if opset is None else {"opset": opset}
    assert_parity(netspec.load(path).run(x, **options)["y"], reference, pool)


# ----------------------------------------------------------------------------- weight files


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_weight_file_round_trip(tmp_path, capsys, suffix):
    """torch.save -> torch.load -> .npz / .safetensors -> `netspec run --weights` == PyTorch."""
    from netspec.cli import main

    module = prepare(tm.UNet(3, 2, 8), seed=21)
    torch.save(module.state_dict(), tmp_path / "unet.pt")
    loaded = torch.load(tmp_path / "unet.pt", weights_only=True)
    arrays = {k: v.numpy().copy() for k, v in loaded.items()}  # keeps 0-d num_batches_tracked 0-d
    path = tmp_path / f"unet{suffix}"
    if suffix == ".npz":
        np.savez(path, **arrays)
    else:
        from safetensors.numpy import save_file

        save_file(arrays, str(path))
    x = random_input([2, 3, 32, 32])
    np.save(tmp_path / "x.npy", x)
    code = main(["run", str(SPECS / "unet.net"), "--set", "base=8", "--set", "size=32",
                 "--weights", str(path), "--input", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "out.npz")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with np.load(tmp_path / "out.npz") as out:
        assert out.files == ["outc"]
        assert_parity(out["outc"], run_torch(module, x), f"unet via {suffix}")
