"""Issue 18: `netspec torch` writes a spec as a PyTorch module you can train.

- every network under specs/: the generated module, built on the meta device (no memory, no
  time), has netspec's state_dict keys and shapes, parameter and buffer counts;
- a set of networks that between them use every layer kind the zoo uses (and every layer kind
  through tests/test_parity_layers.py's one-layer cases): the module's output equals netspec's
  ONNX in onnxruntime with the same weights, within 1e-4 of the output's scale, and the shape
  of every value its forward computes equals the table's, layer by layer;
- training: lenet5 learns a small synthetic task (the loss falls), torch.compile takes the
  module whole (fullgraph, AOT autograd), batch norm and dropout behave as PyTorch's own in
  train and eval mode, and weights go both ways (a torch.save state_dict loads into
  `netspec export --weights`; netspec's seeded weights are the module's);
- the command: the file it writes passes `ruff check` and `ruff format --check`, imports only
  torch, and bad usage or a bad spec is a clear error with its exit code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bundled_specs import SPECS, networks
from cli_runner import cli

import netspec
from netspec.torch_codegen import codegen, instantiate, state_dict

RTOL = 1e-4
ROOT = Path(__file__).resolve().parent.parent

# Networks run in both torch and onnxruntime: between them every layer kind the zoo uses (NCHW
# and NHWC convolutions and norms, 3-D convolutions and pools, window attention with its rolls,
# gathers and masks, Swin V2's cosine attention and position MLP, squeeze-excitation, channel
# shuffle, upsampling), at input sizes that keep each to a second or two; input_shapes where a
# smaller image works as well.
NUMERIC = {
    "lenet5": None,
    "resnet18": {"image": [1, 3, 64, 64]},
    "mobilenet_v3_small": {"image": [1, 3, 64, 64]},
    "efficientnet_b0": {"image": [1, 3, 64, 64]},
    "convnext_tiny": {"image": [1, 3, 64, 64]},
    "shufflenet_v2_x0_5": {"image": [1, 3, 64, 64]},
    "squeezenet1_1": {"image": [1, 3, 64, 64]},
    "googlenet": {"image": [1, 3, 64, 64]},
    "densenet121": {"image": [1, 3, 64, 64]},
    "mnasnet0_5": {"image": [1, 3, 64, 64]},
    "regnet_y_400mf": {"image": [1, 3, 64, 64]},
    "nin": None,
    "fpn": None,
    "unet": None,
    "lraspp_mobilenet_v3_large": {"image": [1, 3, 64, 64]},
    "maxvit_t": None,
    "swin_t": None,
    "swin_v2_t": None,
    "r2plus1d_18": {"clip": [1, 3, 4, 32, 32]},
}


@pytest.fixture
def one_thread():
    """Training loops on one thread: on two shared cores, torch's own threads wait on each other
    (lenet5's 300 steps take 2 s on one thread, over a minute on two under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _module(net, weights=None):
    generated = codegen(net.check().graph, str(net.compilation.path))
    model = instantiate(generated.source, net.name)
    model.load_state_dict(state_dict(net.graph, net.weights(weights)), strict=True)
    return generated, model.eval()


def _traced(model, inputs: list, variables: dict, nodes) -> tuple:
    """The module's outputs, and the shape of every variable of every forward (by graph node),
    read from the frames as each forward returns."""
    names = {id(m): n for n, m in model.named_modules()}
    shapes: dict[str, tuple] = {}

    def profile(frame, event, arg):
        if event != "return" or frame.f_code.co_name != "forward":
            return
        me = frame.f_locals.get("self")
        table = variables.get(type(me).__name__)
        if table is None or id(me) not in names:
            return
        prefix = names[id(me)]
        for var, rel in table.items():
            value = frame.f_locals.get(var)
            if isinstance(value, torch.Tensor):
                shapes[f"{prefix}.{rel}" if prefix else rel] = tuple(value.shape)

    def hook(name):
        def record(module, args, output):
            if isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape)
        return record

    # a module named as a layer gives that layer's value (nn.Sequential's layers among them)
    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n in nodes]
    sys.setprofile(profile)
    try:
        with torch.no_grad():
            out = model(*inputs)
    finally:
        sys.setprofile(None)
        for handle in handles:
            handle.remove()
    return (out if isinstance(out, tuple) else (out,)), shapes


def _scaled_error(got: np.ndarray, want: np.ndarray) -> float:
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) / scale if want.size else 0.0


# ================================================================ every network: keys and counts


@pytest.mark.parametrize("spec", networks(), ids=lambda p: p.stem)
def test_state_dict_keys_shapes_and_counts_equal_netspecs(spec):
    net = netspec.load(spec).check()
    generated = codegen(net.graph, str(spec))
    with torch.device("meta"):
        model = instantiate(generated.source, net.name)
    want = net.graph.state_dict_specs()
    got = model.state_dict()
    assert sorted(got) == sorted(want)
    assert {k: tuple(v.shape) for k, v in got.items()} == {k: s.shape for k, s in want.items()}
    totals = net.totals()
    assert sum(p.numel() for p in model.parameters()) == totals.params
    assert sum(b.numel() for n, b in model.named_buffers() if n in want) == totals.buffers
    assert all(p.requires_grad for p in model.parameters())
    assert generated.source.rstrip().endswith(f"Model = {generated.network_class}")


# ================================================================ outputs and shapes against ONNX


@pytest.mark.parametrize("name", list(NUMERIC))
def test_output_equals_onnx_and_shapes_equal_the_table(name):
    net = netspec.load(SPECS / f"{name}.net", input_shapes=NUMERIC[name]).check()
    generated, model = _module(net)
    feeds = net.feeds(seed=1)
    want = net.run(feeds)
    outputs, shapes = _traced(model, [torch.from_numpy(np.asarray(feeds[n]).copy()) for n in net.graph.inputs],
                              generated.variables, net.graph)
    for (output, _), got in zip(net.graph.outputs, outputs):
        assert got.shape == want[output].shape, output
        assert _scaled_error(got.numpy(), want[output]) <= RTOL, output
    batch = next(iter(feeds.values())).shape[0]
    wrong = {node: (shape, net.graph.node(node).output.shape) for node, shape in shapes.items()
             if shape != tuple(batch if d == "N" else d for d in net.graph.node(node).output.shape)}
    assert not wrong, wrong
    layers = [n.name for n in net.graph if n.layer is not None]
    assert len(shapes) >= 0.5 * len(layers), sorted(set(layers) - set(shapes))[:20]


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_every_parity_case_runs_as_onnx_does(tmp_path):
    """tests/test_parity_layers.py's one-layer networks (every layer kind, in every layout they
    are written in) give through the generated module what they give in onnxruntime, with the
    weights of their torch references."""
    from test_parity_layers import CASES

    failures = []
    for case in CASES:
        spec = tmp_path / f"{case.id}.net"
        spec.write_text(case.text())
        net = netspec.load(spec).check()
        arrays = case.arrays()
        _, weights = case.ref({k: torch.from_numpy(v.copy()) for k, v in arrays.items()})
        if case.id == "nhwc-flatten-linear":
            weights = {k.replace("y.1.", "fc."): v for k, v in weights.items()}
        options = {"opset": case.opset} if case.opset else {}
        want = net.run(arrays, weights=weights, **options)["y"]
        _, model = _module(net, weights)
        with torch.no_grad():
            got = model(*[torch.from_numpy(arrays[n].copy()) for n in net.graph.inputs]).numpy()
        if got.shape != want.shape or _scaled_error(got, want) > RTOL:
            failures.append(f"{case.id}: {got.shape} vs {want.shape}, error {_scaled_error(got, want):.3g}"
                            if got.shape == want.shape else f"{case.id}: shape {got.shape} vs {want.shape}")
    assert not failures, failures


# ================================================================ training


def test_lenet5_trains_on_a_synthetic_task(one_thread):
    torch.manual_seed(0)
    model = netspec.load(SPECS / "lenet5.net").to_torch()
    assert model.training
    prototypes = torch.randn(10, 1, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    with torch.enable_grad():
        for _ in range(300):
            labels = torch.randint(0, 10, (32,))
            images = prototypes[labels] + 0.8 * torch.randn(32, 1, 32, 32)
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert first > 2.0 and last < 0.25 * first, (first, last)


def test_torch_compile_takes_the_whole_module(one_thread):
    for name, shape in (("lenet5", (2, 1, 32, 32)), ("resnet18", (2, 3, 32, 32))):
        model = netspec.load(SPECS / f"{name}.net").to_torch()
        compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
        x = torch.randn(*shape)
        with torch.enable_grad():
            y = compiled(x)
            y.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x))


def test_batchnorm_and_dropout_behave_as_pytorchs_own(tmp_path):
    spec = tmp_path / "t.net"
    spec.write_text("network t\ninput x: f32[N, 3, 8, 8]\n"
                    "y = x -> conv(4, 3, padding=1) -> batchnorm -> relu -> flatten -> dropout(0.5) -> linear(2)\n"
                    "output y\n")
    model = netspec.load(spec).to_torch()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"BatchNorm2d", "Dropout"} <= kinds
    x = torch.randn(8, 3, 8, 8)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        model.train()
        torch.manual_seed(1)
        a = model(x)
        torch.manual_seed(2)
        b = model(x)
        assert not torch.equal(a, b)  # dropout draws anew in train mode
        assert int(bn.num_batches_tracked) == 2 and not torch.equal(bn.running_mean, torch.zeros(4))
        model.eval()
        torch.testing.assert_close(model(x), model(x))
    want = netspec.load(spec).run({"x": x.numpy()}, weights={k: v.numpy() for k, v in model.state_dict().items()})
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), want["y"], atol=1e-5)


def test_weights_go_both_ways(tmp_path, capsys):
    """netspec's seeded weights are the module's; a torch.save state_dict of a trained module
    loads into `netspec export --weights`, and the exported model computes what the module does."""
    net = netspec.load(SPECS / "lenet5.net")
    model = net.to_torch(seed=3)
    seeded = net.weights(seed=3)
    for key, tensor in model.state_dict().items():
        np.testing.assert_array_equal(tensor.numpy(), seeded[key])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with torch.enable_grad():
        for _ in range(3):
            loss = model(torch.randn(8, 1, 32, 32)).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    torch.save(model.state_dict(), tmp_path / "lenet5.pt")
    code, out, err = cli(["export", str(SPECS / "lenet5.net"), "--weights", str(tmp_path / "lenet5.pt"),
                              "-o", str(tmp_path / "lenet5.onnx")], capsys)
    assert code == 0, err
    import onnxruntime

    x = torch.randn(2, 1, 32, 32)
    session = onnxruntime.InferenceSession(str(tmp_path / "lenet5.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"digits": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-5)


# ================================================================ the command and the file


def test_command_writes_a_formatted_file_that_imports_only_torch(tmp_path, capsys):
    target = tmp_path / "model.py"
    code, out, err = cli(["torch", str(SPECS / "resnet50.net"), "-o", str(target), "--set", "classes=10"], capsys)
    assert code == 0, err
    assert f"wrote {target}" in out
    source = target.read_text()
    imports = {line for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"import torch", "import torch.nn.functional as F", "from torch import nn"}
    assert "class ResNet50(nn.Module):" in source and "def __init__(self, classes=10):" in source
    assert "self.fc = nn.Linear(2048, classes)" in source
    assert "\nclass Bottleneck" in source and "Model = ResNet50" in source
    assert "# [N, 64, 112, 112]  resnet50.net:13" in source  # each layer's shape, file and line
    namespace: dict = {}
    exec(compile(source, str(target), "exec"), namespace)
    assert namespace["Model"](classes=10).fc.out_features == 10


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed")
def test_generated_files_pass_ruff_check_and_format(tmp_path):
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    files = []
    for name in ("lenet5", "resnet50", "convnext_tiny", "swin_v2_t", "swin3d_t", "vit_b_16", "efficientnet_b0",
                 "googlenet", "maxvit_t", "lraspp_mobilenet_v3_large", "unet", "fpn", "shufflenet_v2_x1_0", "s3d"):
        path = tmp_path / f"{name}.py"
        path.write_text(netspec.load(SPECS / f"{name}.net").torch_source())
        files.append(str(path))
    isolated = ["--isolated"]  # ruff's defaults, not the repository's settings
    check = subprocess.run([ruff, "check", *isolated, *files], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    formatted = subprocess.run([ruff, "format", *isolated, "--check", "--diff", *files], capture_output=True,
                               text=True)
    assert formatted.returncode == 0, formatted.stdout[:4000]


def test_command_errors_are_clear(tmp_path, capsys):
    code, _, err = cli(["torch", str(SPECS / "lenet5.net"), "-o", str(tmp_path / "model.txt")], capsys)
    assert code == 2 and "ending in .py" in err and "model.py" in err
    code, _, err = cli(["torch", str(tmp_path / "missing.net"), "-o", str(tmp_path / "m.py")], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = cli(["torch", str(SPECS / "lenet5.net"), "-o", str(tmp_path / "no" / "m.py")], capsys)
    assert code == 1 and "does not exist" in err and "Traceback" not in err
    bad = tmp_path / "bad.net"
    bad.write_text("network bad\ninput x: f32[N, 3, 8, 8]\ny = x -> conv(4, 3, stride=0)\noutput y\n")
    code, _, err = cli(["torch", str(bad), "-o", str(tmp_path / "m.py")], capsys)
    assert code == 1 and "bad.net:3" in err and not (tmp_path / "m.py").exists()
    code, _, err = cli(["torch", str(SPECS / "lenet5.net"), "-o", str(tmp_path / "m.py"), "--set", "nope=1"], capsys)
    assert code == 2 and "nope" in err


def test_to_torch_says_how_to_install_torch_when_it_is_missing(monkeypatch):
    net = netspec.load(SPECS / "lenet5.net")
    assert "class LeNet5" in net.torch_source()  # text needs no torch
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install 'netspec\[torch\]'"):
        net.to_torch()


def test_check_does_not_import_torch():
    probe = ("import sys, netspec.cli\n"
             "netspec.cli.main(['check', %r])\n"
             "print('torch' in sys.modules)\n" % str(SPECS / "lenet5.net"))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr
