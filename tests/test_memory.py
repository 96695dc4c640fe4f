"""`netspec check --memory`: the inference peak by liveness, what autograd keeps for the backward
pass (checked against PyTorch's own saved tensors, and against figures recorded from the real
torchvision by tests/reference/record_memory.py), the training totals, --fit and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch_models as tm
from cli_runner import cli
from torch import nn

import netspec
from netspec.memory import MASK_BYTES, largest_batch, memory, parse_size

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
REFERENCE = json.loads((ROOT / "tests" / "data" / "memory_reference.json").read_text())
TOLERANCE = 0.10  # the bound; the rules meet the recorded models to within 1.2%


def saved_by_torch(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Bytes of the unique storages autograd saves in one forward pass in train mode,
    parameters and buffers excluded (the same measure as record_memory.py)."""
    state = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    storages: dict[int, int] = {}
    held = []  # keep every packed tensor, so that no freed storage's address is reused

    def pack(t: torch.Tensor):
        held.append(t)
        if t.untyped_storage().data_ptr() not in state:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    module.train()
    # grad mode on whatever an earlier test left it at (a global torch.set_grad_enabled(False))
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*inputs)
    return sum(storages.values())


def saved_by_netspec(spec: Path | str, batch: int, **options) -> int:
    graph = netspec.load(spec, **options).check().graph
    return memory(graph, batch).saved_activations_bytes


def assert_close(netspec_bytes: int, torch_bytes: int, what: str) -> None:
    assert abs(netspec_bytes - torch_bytes) <= TOLERANCE * torch_bytes, \
        f"{what}: netspec {netspec_bytes:,} B, PyTorch {torch_bytes:,} B ({netspec_bytes / torch_bytes:.3f})"


# ------------------------------------------------------------------ against PyTorch, in the test

TWINS = [  # (spec, torch twin, spec parameters, input name, input shape)
    ("lenet5", lambda: tm.LeNet5(10), {}, "digits", [3, 1, 32, 32]),
    ("resnet18", lambda: tm.ResNet18(10), {"classes": 10}, "image", [2, 3, 64, 64]),
    ("mobilenet_v2", lambda: tm.MobileNetV2(1000), {}, "image", [2, 3, 64, 64]),
    ("squeezenet1_1", lambda: tm.SqueezeNet11(100), {"classes": 100}, "image", [2, 3, 66, 70]),
    ("unet", lambda: tm.UNet(1, 3, 8), {"size": 48, "channels": 1, "classes": 3, "base": 8}, "image",
     [2, 1, 48, 48]),
]


@pytest.mark.parametrize("case", TWINS, ids=[c[0] for c in TWINS])
def test_saved_activations_agree_with_torch_twins(case):
    spec, factory, params, input_name, shape = case
    torch.manual_seed(0)
    expected = saved_by_torch(factory(), torch.randn(*shape))
    actual = saved_by_netspec(SPECS / f"{spec}.net", shape[0], input_shapes={input_name: ["N", *shape[1:]]},
                              **params)
    assert_close(actual, expected, spec)


MIXED = """\
network mixed(classes = 5)

input image: f32[N, 3, 32, 32]

stem = image -> conv(8, 3, padding=1, bias=false) -> batchnorm -> relu -> maxpool(2)
a = stem -> conv(8, 3, padding=1) -> sigmoid
b = stem -> conv(8, 1) -> silu
pooled = concat(a + b, stem) -> avgpool(2) -> dropout(0.5)
tokens = pooled -> flatten(2, layout="NCL") -> permute(0, 2, 1)
attended = tokens -> layernorm -> multihead_attention(2)
h = attended + tokens
m = h -> linear(32) -> gelu -> linear(16)
logits = (m * h) -> flatten -> linear(classes)

output logits
"""


class Mixed(nn.Module):
    """MIXED in PyTorch, layer for layer."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.a = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Sigmoid())
        self.b = nn.Sequential(nn.Conv2d(8, 8, 1), nn.SiLU())
        self.pool = nn.Sequential(nn.AvgPool2d(2), nn.Dropout(0.5))
        self.norm = nn.LayerNorm(16)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(64 * 16, classes)

    def forward(self, x):
        stem = self.stem(x)
        pooled = self.pool(torch.cat([self.a(stem) + self.b(stem), stem], 1))
        tokens = pooled.flatten(2).permute(0, 2, 1)
        y = self.norm(tokens)
        h = self.attention(y, y, y, need_weights=False)[0] + tokens
        return self.head((self.mlp(h) * h).flatten(1))


def test_saved_activations_agree_with_torch_layer_by_layer(tmp_path):
    spec = tmp_path / "mixed.net"
    spec.write_text(MIXED)
    batch = 4
    torch.manual_seed(0)
    expected = saved_by_torch(Mixed(), torch.randn(batch, 3, 32, 32))
    actual = saved_by_netspec(spec, batch)
    # the CPU's dropout keeps a float mask where CUDA's keeps a bool one (netspec's figure)
    cpu_mask = batch * 16 * 8 * 8 * (4 - MASK_BYTES)
    assert_close(actual, expected, "mixed")
    assert abs(actual + cpu_mask - expected) <= 0.01 * expected


# ------------------------------------------------------------------ against the real torchvision

@pytest.mark.parametrize("model", sorted(REFERENCE))
def test_saved_activations_agree_with_torchvision(model):
    record = REFERENCE[model]
    actual = saved_by_netspec(SPECS / f"{model}.net", record["batch"])
    assert_close(actual, record["saved_activations_bytes"], model)


# ------------------------------------------------------------------ the liveness walk

BRANCHY = """\
network branchy

input x: f32[N, 4, 8, 8]

a = x -> relu                 # 256 floats per sample, as every tensor here but c's
b = a -> conv(4, 1)
c = a -> conv(8, 1)           # 512 floats
d = concat(b, c)              # 768 floats
e = d -> flatten              # a view of d
y = e -> relu
output y, b
"""


def test_inference_peak_follows_liveness(tmp_path):
    spec = tmp_path / "branchy.net"
    spec.write_text(BRANCHY)
    graph = netspec.load(spec).check().graph
    m = memory(graph, batch=2)
    floats = 2 * 4  # two samples, four bytes each
    # live while each layer runs: x dies after a; a after c; b is an output (lives to the end);
    # c dies after d; d lives through its view e until y
    assert m.live_bytes == {"x": 256 * floats, "a": 512 * floats, "b": 512 * floats,
                            "c": 1024 * floats, "d": 1536 * floats, "e": 1024 * floats,
                            "y": 1792 * floats}
    assert m.inference_peak_bytes == 1792 * floats
    # training keeps a (relu's output, read by both convs: once) and y's output; nothing else
    assert m.saved_bytes["a"] == 256 * floats and m.saved_bytes["b"] == m.saved_bytes["c"] == 0
    assert m.saved_activations_bytes == (256 + 768) * floats


# ------------------------------------------------------------------ totals, JSON, --fit

def test_training_totals_and_json(capsys):
    code, out, _ = cli(["check", SPECS / "resnet18.net", "--memory", "--batch", "8", "--train",
                        "--optimizer", "momentum", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    m = doc["memory"]
    params = doc["totals"]["params"]
    assert m["batch"] == 8
    training = m["training"]
    assert training["parameters_bytes"] == doc["totals"]["param_bytes"]
    assert training["gradients_bytes"] == 4 * params
    assert training["optimizer_bytes"] == 4 * params
    assert training["total_bytes"] == (training["parameters_bytes"] + training["gradients_bytes"]
                                       + training["optimizer_bytes"] + training["saved_activations_bytes"])
    assert sum(layer["saved_bytes"] for layer in doc["layers"]) == training["saved_activations_bytes"]
    assert max(layer["live_bytes"] for layer in doc["layers"]) == m["inference_peak_bytes"]
    # activations grow by the sample; batch norm's statistics are per channel, not per sample
    graph = netspec.load(SPECS / "resnet18.net").check().graph
    one, two = memory(graph, 1), memory(graph, 2)
    statistics = 2 * 4 * sum(n.output.channels for n in graph if n.kind == "batchnorm")
    assert one.saved_activations_bytes - statistics == (two.saved_activations_bytes - statistics) // 2
    assert training["saved_activations_bytes"] - statistics == 8 * (one.saved_activations_bytes - statistics)
    assert m["inference_peak_bytes"] == 8 * one.inference_peak_bytes


@pytest.mark.parametrize("optimizer, states", [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_optimizer_state(optimizer, states):
    graph = netspec.load(SPECS / "lenet5.net").check().graph
    m = memory(graph, 1, optimizer)
    assert m.optimizer_bytes == states * m.gradients_bytes == states * 4 * 61706


def test_table_columns_and_totals(capsys):
    code, out, _ = cli(["check", SPECS / "lenet5.net", "--memory", "--train", "--batch", "4"], capsys)
    assert code == 0
    header = out.splitlines()[2]
    assert header.split()[-2:] == ["Live", "Saved"]
    assert re.search(r"^Batch +4$", out, re.M)
    assert re.search(r"^Inference peak +\S+ \S+ of activations live at once", out, re.M)
    assert re.search(r"^Training memory .* \+ gradients .* \+ Adam state .* \+ saved activations", out, re.M)
    code, plain, _ = cli(["check", SPECS / "lenet5.net"], capsys)
    assert "Live" not in plain and "Batch" not in plain


def test_folded_rows_sum_what_their_layers_keep(capsys):
    _, out, _ = cli(["check", SPECS / "resnet18.net", "--memory", "--train", "--depth", "0", "--json"], capsys)
    doc = json.loads(out)
    assert sum(layer["saved_bytes"] for layer in doc["layers"]) == doc["memory"]["training"]["saved_activations_bytes"]


@pytest.mark.parametrize("train", [False, True])
def test_fit_is_the_exact_boundary(train):
    graph = netspec.load(SPECS / "resnet18.net").check().graph

    def total(b):
        m = memory(graph, b)
        return m.training_total_bytes if train else m.inference_total_bytes

    budget = 4 * 2**30
    fit = largest_batch(graph, budget, train)
    assert fit.batch > 1
    assert total(fit.batch) <= budget < total(fit.batch + 1)
    assert fit.total_bytes == total(fit.batch)
    # exactly at a batch's total, that batch fits; a byte less, it does not
    assert largest_batch(graph, total(37), train).batch == 37
    assert largest_batch(graph, total(37) - 1, train).batch == 36
    # more memory never fits fewer samples
    batches = [largest_batch(graph, size, train).batch for size in (2**28, 2**30, 2**31, 2**33)]
    assert batches == sorted(batches)


def test_fit_on_the_command_line(capsys):
    code, out, _ = cli(["check", SPECS / "resnet18.net", "--memory", "--train", "--fit", "8GB", "--json"], capsys)
    assert code == 0
    fit = json.loads(out)["memory"]["fit"]
    assert fit["budget_bytes"] == 8 * 10**9 and fit["mode"] == "training"
    code, out, _ = cli(["check", SPECS / "resnet18.net", "--memory", "--fit", "1MiB"], capsys)
    assert code == 0
    assert re.search(r"^Fits in 1MiB +none: one sample needs .* \(inference\)$", out, re.M)


@pytest.mark.parametrize("text, size", [("16GiB", 16 * 2**30), ("512MiB", 512 * 2**20), ("8GB", 8 * 10**9),
                                        ("1.5 kB", 1500), ("4096B", 4096), ("2tib", 2 * 2**40)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("argv, message", [
    (["--batch", "4"], "--batch needs --memory"),
    (["--train"], "--train needs --memory"),
    (["--fit", "16GiB"], "--fit needs --memory"),
    (["--memory", "--batch", "0"], "--batch: `0` is not a batch size"),
    (["--memory", "--batch", "many"], "--batch: `many` is not a batch size"),
    (["--memory", "--train", "--optimizer", "rmsprop"], "unknown optimizer `rmsprop`"),
    (["--memory", "--optimizer", "sgd"], "--optimizer needs --train"),
    (["--memory", "--fit", "16"], "`16` has no unit"),
    (["--memory", "--fit", "16GiBs"], "unknown unit `GiBs`"),
    (["--memory", "--fit", "lots"], "`lots` is not a size"),
    (["--memory", "--fit", "0GB"], "more than 0 bytes"),
])
def test_usage_errors(argv, message, capsys):
    code, out, err = cli(["check", SPECS / "lenet5.net", *argv], capsys)
    assert code == 2 and out == ""
    assert message in err
    assert err.count("error") == 1


def test_the_readme_memory_output_is_real(capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "netspec check specs/resnet50.net --memory --batch 32 --train --optimizer adam --fit 16GiB --depth 0"
    quoted = re.search(r"```\n\$ " + re.escape(command) + r"\n(.*?)```", readme, re.S)
    assert quoted, "the README quotes no --memory output"
    argv = [str(ROOT / a) if a.startswith("specs/") else a for a in command.split()[1:]]
    code, out, _ = cli(argv, capsys)
    assert code == 0
    assert [line.rstrip() for line in out.splitlines()] == [line.rstrip() for line in quoted.group(1).splitlines()]


def test_without_memory_the_json_is_unchanged(capsys):
    _, out, _ = cli(["check", SPECS / "lenet5.net", "--json"], capsys)
    doc = json.loads(out)
    assert "memory" not in doc
    assert not any("saved_bytes" in layer or "live_bytes" in layer for layer in doc["layers"])


def test_the_batch_defaults_to_a_declared_one(capsys):
    _, out, _ = cli(["check", SPECS / "lenet5.net", "--input-shape", "digits=6,1,32,32", "--memory", "--json"], capsys)
    assert json.loads(out)["memory"]["batch"] == 6
    _, out, _ = cli(["check", SPECS / "lenet5.net", "--input-shape", "digits=6,1,32,32", "--memory", "--batch", "2",
                     "--json"], capsys)
    assert json.loads(out)["memory"]["batch"] == 2
    _, out, _ = cli(["check", SPECS / "lenet5.net", "--memory", "--json"], capsys)
    assert json.loads(out)["memory"]["batch"] == 1
