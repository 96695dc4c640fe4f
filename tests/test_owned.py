"""Tensors a network owns (`param(...)`, `buffer(...)`), labels that join parts
(`block{s}-{i}:`) and `seq { ... }`: naming, counting, dtypes, initial values, errors,
weights loading, lowering, and parity with a PyTorch module that has an nn.Parameter layer
scale and a registered buffer."""

from __future__ import annotations

import json
import textwrap
from collections import OrderedDict

import numpy as np
import pytest

import netspec
from netspec.compiler import compile_file
from netspec.diagnostics import NetspecError


def compile_text(text: str, **kw):
    return compile_file("t.net", text=textwrap.dedent(text), **kw)


def messages(result, severity: str = "error") -> list[str]:
    return [d.message for d in result.diagnostics.items if d.severity == severity]


def ok(text: str, **kw):
    result = compile_text(text, **kw)
    assert result.ok and not messages(result), messages(result)
    return result.graph


def layer_names(graph) -> list[str]:
    return [n.name for n in graph if n.kind != "input"]


def net_from(tmp_path, text: str, name: str = "t.net"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return netspec.load(path)


LAYER_SCALE = """\
    network scaled(c = 8)
    input x: f32[N, 3, 16, 16]
    block cn(x, c) {
        layer_scale = param(c, 1, 1, init=1e-6)
        shift = buffer(c, 1, 1)
        y = x -> conv: conv(c, 3, padding=1)
        return layer_scale * y + shift + x
    }
    y = x -> stem: conv(c, 1) -> features: cn(c)
    output y
"""


# ---------------------------------------------------------------- names and counts

def test_a_param_and_a_buffer_are_state_dict_keys_in_their_block_instance():
    graph = ok(LAYER_SCALE)
    specs = graph.parameter_specs()
    assert list(specs) == ["stem.weight", "stem.bias", "features.layer_scale", "features.shift",
                           "features.conv.weight", "features.conv.bias"]
    assert specs["features.layer_scale"].shape == (8, 1, 1) and specs["features.layer_scale"].trainable
    assert specs["features.shift"].shape == (8, 1, 1) and not specs["features.shift"].trainable
    assert graph.node("features.layer_scale").kind == "param"
    assert graph.node("features.shift").kind == "buffer"


def test_params_and_buffers_are_counted_apart_in_totals_table_and_json(tmp_path):
    net = net_from(tmp_path, LAYER_SCALE)
    totals = net.totals()
    conv = 8 * 3 + 8 + 8 * 8 * 9 + 8
    assert totals.params == conv + 8 and totals.buffers == 8
    assert totals.activation_bytes == 5 * (8 * 16 * 16) * 4  # stem, conv, mul, add, add (not the param)
    table = net.table()
    assert "features.layer_scale" in table and "param f32 = 1e-06" in table and "[8, 1, 1]" in table
    assert "8 (the network's own)" in table
    from netspec.report import to_json

    doc = json.loads(json.dumps(to_json(net.graph, [], "t.net")))
    row = next(r for r in doc["layers"] if r["name"] == "features.shift")
    assert row["kind"] == "buffer" and row["buffers"] == 8 and row["params"] == 0
    assert row["tensors"] == {"features.shift": {"shape": [8, 1, 1], "trainable": False}}
    assert row["attributes"] == {"shape": [8, 1, 1], "dtype": "f32", "init": 0}
    assert doc["totals"]["buffers"] == 8


def test_the_api_lists_every_tensor_with_its_dtype_and_whether_it_is_trained(tmp_path):
    tensors = net_from(tmp_path, LAYER_SCALE).tensors()
    assert tensors["features.layer_scale"] == {"shape": (8, 1, 1), "dtype": "f32", "trainable": True}
    assert tensors["features.shift"] == {"shape": (8, 1, 1), "dtype": "f32", "trainable": False}
    assert tensors["stem.weight"]["trainable"]


def test_a_top_level_param_a_labelled_one_and_sizes_from_the_graph():
    graph = ok("""\
        input x: f32[N, 16, 4, 4]
        y = x -> conv(8, 1)
        g = param(channels(y), 1, 1, init=1)
        z = y * g + (pos: param(spatial(y), init=0))
        output z
    """)
    specs = graph.parameter_specs()
    assert specs["g"].shape == (8, 1, 1) and specs["pos"].shape == (4, 4)
    assert graph.node("z").output.shape == ("N", 8, 4, 4)


def test_a_scalar_param_has_no_axes():
    graph = ok("input x: f32[N, 4]\ntemperature = param(init=1)\ny = x * temperature\noutput y\n")
    assert graph.parameter_specs()["temperature"].shape == ()


# ---------------------------------------------------------------- dtypes and initial values

def test_dtype_follows_the_networks_floating_input_and_a_buffer_may_be_an_integer():
    graph = ok("""\
        input ids: i64[N, 4]
        input x: f16[N, 4]
        s = param(4)
        index = buffer(4, dtype=i64, init=(0, 1, 2, 3))
        mask = buffer(4, dtype=bool, init=true)
        y = x * s
        z = ids + index
        output y, z
    """)
    dtypes = graph.parameter_dtypes()
    assert dtypes == {"s": "f16", "index": "i64", "mask": "bool"}
    assert graph.node("y").output.dtype == "f16"


def test_initial_values_fill_list_and_seeded_normal(tmp_path):
    net = net_from(tmp_path, """\
        input x: f32[N, 3]
        input ids: i32[N, 2, 2]
        a = param(3, init=1e-6)
        b = param(3, init="zeros")
        c = param(3, init="ones")
        d = buffer(3, init=(0.485, 0.456, 0.406))
        e = param(1000)
        f = buffer(2, 2, dtype=i32, init=(1, 2, 3, 4))
        y = x * a + x * b + x * c + x * d
        z = (x -> linear(1000)) * e
        w = ids * f
        output y, z, w
    """)
    w = net.weights(seed=3)
    assert np.all(w["a"] == np.float32(1e-6)) and np.all(w["b"] == 0) and np.all(w["c"] == 1)
    np.testing.assert_allclose(w["d"], [0.485, 0.456, 0.406], rtol=1e-6)
    assert w["f"].dtype == np.int32 and w["f"].tolist() == [[1, 2], [3, 4]]
    assert 0.015 < w["e"].std() < 0.025 and abs(w["e"].mean()) < 0.005  # N(0, 0.02^2)
    assert np.array_equal(net.weights(seed=3)["e"], w["e"])
    assert not np.array_equal(net.weights(seed=4)["e"], w["e"])


@pytest.mark.parametrize("text, message", [
    ("a = param(4, dtype=i64)", "a param is trained, so it is floating point, not i64"),
    ("a = buffer(4, dtype=i64, init=0.5)", "`init` value 0.5 is not a value of this buffer's dtype i64"),
    ("a = buffer(4, dtype=i8, init=300)", "`init` value 300 is not a value of this buffer's dtype i8"),
    ("a = buffer(2, 2, init=(1, 2, 3))", "`init` gives 3 values, but the buffer [2, 2] has 4 elements"),
    ("a = param(4, 0)", "a param's sizes are positive integers; this is 0"),
    ("a = param(4, 2.5)", "a param's sizes are positive integers; this is a number"),
    ('a = param(4, init="normall")', 'got "normall"'),
    ('a = buffer(4, dtype=i64, init="normal")', "draws floating-point values; this buffer is i64"),
    ('a = param(4, dtype="f33")', "`dtype` of param must be a dtype"),
    ("a = param(4, shape=(4, 1))", "`param` has no argument `shape`"),
    ("a = param(4, requires_grad=false)", "`param` has no argument `requires_grad`"),
])
def test_a_param_or_buffer_written_wrongly_is_one_located_error(text, message):
    result = compile_text(f"input x: f32[N, 4]\n{text}\ny = x * a\noutput y\n")
    errors = [d for d in result.diagnostics.items if d.severity == "error"]
    assert len(errors) == 1 and message in errors[0].message, messages(result)
    assert errors[0].span.line == 2


# ---------------------------------------------------------------- where a param may be used

@pytest.mark.parametrize("text, message", [
    ("y = x * param(4)", "a param needs a name: it is a state_dict key"),
    ("y = x -> param(4)", "`param` makes a tensor of the network's own; it takes no input"),
    ("s = param(4, 2, 2)\ny = s -> conv(8, 1)", "conv: takes an activation; `s` [4, 2, 2] is a tensor"),
    ("s = param(4)\ny = s * s", "output `y` is computed from the network's own tensors alone"),
    ("s = param(4, 1, 1)\ny = x * s\noutput s", "output `s` is a param of the network's own"),
    ("s = param(1, 1, 4, 1, 1)\ny = x * s", "has more axes than the activation"),
    ("s = param(4, 1, 1)\nc = channels(s)\ny = x * s", "`channels` reads an activation's axes"),
    ("block param(x) {\n    return x\n}\ny = x", "block `param` has the name of a built-in layer"),
])
def test_a_param_used_where_it_cannot_be_is_one_error(text, message):
    result = compile_text(f"input x: f32[N, 4, 2, 2]\n{text}\noutput y\n")
    assert [m for m in messages(result)] and message in messages(result)[0], messages(result)
    assert len(messages(result)) == 1, messages(result)


def test_a_param_of_the_wrong_width_goes_through_the_merge_diagnostics():
    result = compile_text("""\
        input x: f32[N, 64, 8, 8]
        block cn(x, c) {
            layer_scale = param(c, 1, 1)
            return layer_scale * (x -> conv(64, 1))
        }
        y = x -> features: cn(32)
        output y
    """)
    [d] = result.diagnostics.items
    assert d.message == "mul: shapes do not match: [32, 1, 1] * [N, 64, 1, 1]" or "shapes do not match" in d.message
    assert d.label == "channels differ: 32 and 64"
    assert any("likely culprit" in label.message and "features.layer_scale" in label.message for label in d.labels)
    assert any(label.span.line == 3 and "channels become 32" in label.message for label in d.labels)


def test_a_param_passes_through_cast_and_elementwise_activations():
    graph = ok("""\
        input x: f32[N, 4, 2, 2]
        g = param(4, 1, 1)
        y = x * (g -> sigmoid) + x * (buffer_: buffer(4, 1, 1, dtype=i64) -> cast(f32))
        output y
    """)
    assert graph.node("y").output.shape == ("N", 4, 2, 2)


def test_an_unused_param_warns_once_for_all_instances():
    result = compile_text("""\
        input x: f32[N, 4, 2, 2]
        block b(x) {
            unused = param(4, 1, 1)
            return x -> relu
        }
        y = x -> b -> b
        output y
    """)
    warnings = messages(result, "warning")
    assert warnings == ["param `y.0.unused` is never used by an output"]
    assert set(result.graph.parameter_specs()) == {"y.0.unused", "y.1.unused"}  # as in PyTorch's state_dict


# ---------------------------------------------------------------- weights, lowering, parity

def test_missing_extra_and_wrongly_shaped_params_are_clear_errors(tmp_path):
    net = net_from(tmp_path, LAYER_SCALE)
    good = net.weights(seed=0)
    missing = {k: v for k, v in good.items() if k != "features.layer_scale"}
    with pytest.raises(NetspecError, match=r"`features.layer_scale` \[8, 1, 1\] is missing"):
        net.weights(missing)
    wrong = {**good, "features.shift": np.zeros((8,), np.float32)}
    with pytest.raises(NetspecError, match=r"`features.shift` has shape \[8\] in the given weights, expected \[8, 1, 1\]"):
        net.weights(wrong)
    extra = {**good, "features.gamma": np.zeros((8, 1, 1), np.float32)}
    with pytest.raises(NetspecError, match="has `features.gamma`, which the network does not have"):
        net.weights(extra)


def test_params_lower_to_initializers_named_by_their_keys(tmp_path):
    import onnx

    net = net_from(tmp_path, LAYER_SCALE)
    model = net.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    names = {i.name for i in model.graph.initializer}
    assert {"features.layer_scale", "features.shift"} <= names
    weights = net.weights(seed=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    got = net.run(x, weights=weights)["y"]
    assert got.shape == (2, 8, 16, 16)


@pytest.mark.parametrize("layout, shape, param", [
    ("NHWC", "[N, 5, 6, 4]", "(4)"), ("NHWC", "[N, 5, 6, 4]", "(6, 1)"),
    ("NHWC", "[N, 5, 6, 4]", "(1, 5, 1, 4)"), ("NCHW", "[N, 4, 5, 6]", "(4, 1, 1)"),
    ("NCHW", "[N, 4, 5, 6]", "(6)"), ("NLC", "[N, 7, 4]", "(4)"),
])
def test_a_param_broadcasts_in_the_declared_layout_as_numpy_does(tmp_path, layout, shape, param):
    import onnx

    sizes = param.strip("()")
    net = net_from(tmp_path, f"""\
        input x: f32{shape} {layout}
        s = param({sizes})
        b = buffer({sizes}, init=0.5)
        y = (x -> relu) * s + b
        output y
    """)
    onnx.checker.check_model(net.to_onnx(), full_check=True)
    weights = net.weights(seed=2)
    dims = [int(d) for d in shape.strip("[]").split(", ")[1:]]
    x = np.random.default_rng(1).standard_normal((2, *dims)).astype(np.float32)
    want = np.maximum(x, 0) * weights["s"] + weights["b"]
    np.testing.assert_allclose(net.run(x, weights=weights)["y"], want, rtol=1e-6, atol=1e-6)


def test_parity_with_a_torch_module_with_a_layer_scale_and_a_buffer(tmp_path):
    torch = pytest.importorskip("torch")
    import onnx
    from torch import nn

    class Scaled(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.layer_scale = nn.Parameter(torch.rand(c, 1, 1) + 0.5)
            self.register_buffer("shift", torch.randn(c, 1, 1))

        def forward(self, x):
            return self.layer_scale * self.conv(x) + self.shift + x

    class Stage(nn.Sequential):
        def __init__(self, s, depth, c):
            super().__init__()
            for i in range(depth):
                self.add_module(f"block{s}-{i}", Scaled(c))

    class Net(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.stem = nn.Conv2d(3, c, 1)
            self.trunk = nn.Sequential(OrderedDict(block1=Stage(1, 2, c), block2=Stage(2, 1, c)))
            self.classifier = nn.Sequential(nn.Linear(c, 10))

        def forward(self, x):
            y = self.trunk(self.stem(x)).mean((2, 3))
            return self.classifier(y)

    torch.manual_seed(0)
    model = Net().eval()
    net = net_from(tmp_path, """\
        network parity(c = 8)
        input x: f32[N, 3, 16, 16]
        block scaled(x, c) {
            layer_scale = param(c, 1, 1, init=1e-6)
            shift = buffer(c, 1, 1)
            y = x -> conv: conv(c, 3, padding=1)
            return layer_scale * y + shift + x
        }
        block stage(x, s, depth, c) {
            return x -> repeat(depth, i) { block{s}-{i}: scaled(c) }
        }
        features = x -> stem: conv(c, 1) -> trunk: seq { block1: stage(1, 2, c) -> block2: stage(2, 1, c) }
        pooled = features -> global_avgpool -> flatten
        classifier = pooled -> seq { linear(10) }
        output classifier
    """)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    assert set(state) == set(net.tensors())
    assert net.tensors()["trunk.block1.block1-1.shift"]["trainable"] is False
    assert "classifier.0.weight" in net.tensors()  # a seq of one layer is still a Sequential
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want = model(x).numpy()
    onnx.checker.check_model(net.to_onnx(weights=state), full_check=True)
    got = net.run(x.numpy(), weights=state)["classifier"]
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


# ---------------------------------------------------------------- labels that join parts

def test_a_label_joins_its_parts_with_hyphens_names_and_digits():
    graph = ok("""\
        input x: f32[N, 3, 8, 8]
        block stage(x, s, depth) {
            return x -> repeat(depth, i) { block{s}-{i}: conv(4, 1) }
        }
        y = x -> a: stage(2, 2) -> l{1}x-{"b"}_2-3: relu -> r{2}{3}: relu
        output y
    """)
    assert layer_names(graph) == ["a.block2-0", "a.block2-1", "l1x-b_2-3", "r23"]


def test_a_joined_label_in_an_expression_and_on_a_repeat():
    graph = ok("""\
        input x: f32[N, 3, 8, 8]
        y = x -> b{1}-{2}: repeat(2) { relu }
        z = relu(y) + (u{1}-v: relu(y))
        output z
    """)
    assert layer_names(graph) == ["b1-2.0", "b1-2.1", "relu", "u1-v", "z"]


@pytest.mark.parametrize("part, message", [
    ('"a.b"', "gives the string 'a.b', which cannot be part of a name"),
    ('"a b"', "gives the string 'a b', which cannot be part of a name"),
    ("1.5", "a label's `{...}` must be an integer or a string, got a number"),
    ("true", "a label's `{...}` must be an integer or a string, got a boolean"),
])
def test_a_label_part_that_is_no_name_is_an_error(part, message):
    result = compile_text(f"input x: f32[N, 3, 8, 8]\ny = x -> l{{{part}}}-x: relu\noutput y\n")
    assert len(messages(result)) == 1 and message in messages(result)[0], messages(result)


def test_a_hyphen_straight_after_a_labels_name_says_how_to_write_it():
    result = compile_text("input x: f32[N, 3, 8, 8]\ny = x -> block1-0: relu\noutput y\n")
    [d] = result.diagnostics.items
    assert "the label `block1-0` has a `-` straight after its first name" in d.message
    assert d.hint == ('quote it, `"block1-0":`, or write `block{1}-{0}:` to compute its parts '
                      "(`block1_0:` for a name without the `-`)")
    assert (d.span.line, d.span.column) == (2, 10)
    fixed = compile_text("input x: f32[N, 3, 8, 8]\ny = x -> block{1}-{0}: relu\noutput y\n")
    assert fixed.ok and layer_names(fixed.graph) == ["block1-0"]


def test_a_quoted_label_is_the_name_as_written_a_submodule_path_allowed():
    graph = ok("""\
        input x: f32[N, 3, 8, 8]
        block branches(x) {
            b0 = x -> "convs.0": conv(4, 1)
            b1 = x -> "convs.1": seq { conv(4, 3, padding=1) -> relu }
            return concat(b0, b1)
        }
        y = x -> head: branches -> "block2-3": relu
        z = relu(y) + ("tap.4": relu(y))
        output z
    """)
    assert layer_names(graph) == ["head.convs.0", "head.convs.1.0", "head.convs.1.1", "head.concat",
                                  "block2-3", "relu", "tap.4", "z"]
    assert list(graph.parameter_specs())[:3] == ["head.convs.0.weight", "head.convs.0.bias",
                                                 "head.convs.1.0.weight"]


@pytest.mark.parametrize("label", ['"convs..0"', '"a b"', '".x"', '"x."', '""', '"conv-1.w@"'])
def test_a_quoted_label_that_is_no_state_dict_name_is_one_located_error(label):
    result = compile_text(f"input x: f32[N, 3, 8, 8]\ny = x -> {label}: relu\noutput y\n")
    [d] = result.diagnostics.items
    assert "is not a state_dict name" in d.message and (d.span.line, d.span.column) == (2, 10)


# ---------------------------------------------------------------- seq { ... }

def test_seq_keeps_one_layer_a_sequential():
    graph = ok("""\
        input x: f32[N, 8]
        plain = x -> linear(4)
        classifier = x -> seq { linear(4) }
        output plain, classifier
    """)
    assert layer_names(graph) == ["plain", "classifier.0"]


def test_seq_is_one_stage_of_its_chain_and_labels_inside_it_are_its_children():
    graph = ok("""\
        input x: f32[N, 3, 8, 8]
        f = x -> conv(4, 1) -> seq { a: conv(4, 1) -> relu -> b: seq { conv(4, 1) } } -> relu
        g = f -> named: seq { relu -> repeat(2, i) { c{i}: relu } -> repeat(2) { relu } }
        output g
    """)
    assert layer_names(graph) == ["f.0", "f.1.a", "f.1.1", "f.1.b.0", "f.2",
                                  "named.0", "named.c0", "named.c1", "named.3", "named.4"]


def test_seq_in_a_block_and_in_a_repeat():
    graph = ok("""\
        input x: f32[N, 3, 8, 8]
        block bottleneck(x, c) {
            f = x -> seq { a: conv(c, 1) -> b: conv(c, 3, padding=1) }
            return relu(x + f)
        }
        block cba(x, c) {
            return x -> seq { conv(c, 1) } -> relu
        }
        y = x -> conv(4, 1) -> repeat(2) { bottleneck(4) } -> cba(4) -> s: repeat(2) { seq { relu } }
        output y
    """)
    assert layer_names(graph) == ["y.0", "y.1.f.a", "y.1.f.b", "y.1.add", "y.1.relu",
                                  "y.2.f.a", "y.2.f.b", "y.2.add", "y.2.relu",
                                  "y.3.0.0", "y.3.1", "s.0.0", "s.1.0"]


def test_an_unbound_seq_is_named_by_its_kind_and_seq_is_still_a_name():
    graph = ok("""\
        input x: f32[N, 8]
        seq = x -> linear(4)
        y = seq + (seq -> seq { relu })
        output y
    """)
    assert layer_names(graph) == ["seq", "seq_2.0", "y"]


def test_seq_outside_a_chain_is_a_syntax_error_with_the_fix():
    result = compile_text("input x: f32[N, 8]\ny = seq { relu }\noutput y\n")
    [d] = result.diagnostics.items
    assert d.message == "`seq { ... }` is a stage of a chain: it needs the tensor that flows into it"
    assert d.hint == "write `x -> seq { ... }`" and (d.span.line, d.span.column) == (2, 5)
