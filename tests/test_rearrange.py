"""Rearrangements (netspec/layers/rearrange.py): shape rules, how the layout follows a tensor
through permutes and reshapes (README, "Layouts through permute and reshape"), multi-name
bindings of split and chunk, located errors in the user's terms, and the ONNX lowering
(checker, shape inference against netspec's shapes, no data moved by a role-keeping permute).
Numerical parity with torch for every kind is in test_parity_layers; random networks in
test_differential."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import netspec
from netspec.diagnostics import NetspecError
from cli_runner import cli
from netspec.compiler import compile_file
from netspec.lower import DEFAULT_OPSET, canonical_shape


def compiled(body: str, decl: str = "input x: f32[N, 116, 28, 28]"):
    text = textwrap.dedent(f"network t\n{decl}\n{body}\n")
    return compile_file("t.net", text=text)


def types(body: str, decl: str = "input x: f32[N, 116, 28, 28]") -> dict:
    result = compiled(body, decl)
    assert result.ok, [d.message for d in result.diagnostics.items]
    return {node.name: node.output for node in result.graph}


def errors(body: str, decl: str = "input x: f32[N, 116, 28, 28]") -> list:
    result = compiled(body, decl)
    found = [d for d in result.diagnostics.items if d.severity == "error"]
    assert found, "expected an error"
    return found


def one_error(body: str, decl: str = "input x: f32[N, 116, 28, 28]"):
    found = errors(body, decl)
    assert len(found) == 1, [d.message for d in found]
    return found[0]


def shown(t) -> tuple:
    return t.shape, t.layout.axes


# ================================================================ shape rules and layouts


def test_permute_keeps_each_axis_role():
    t = types("y = x -> permute(0, 2, 3, 1) -> layernorm -> linear(32) -> permute(\"NCHW\")\noutput y")
    assert shown(t["y.0"]) == (("N", 28, 28, 116), "NHWC")
    assert shown(t["y.2"]) == (("N", 28, 28, 32), "NHWC")   # linear over the channels, now last
    assert shown(t["y.3"]) == (("N", 32, 28, 28), "NCHW")


@pytest.mark.parametrize("dims", ['"NHWC"', '("N", "H", "W", "C")', "(0, 2, 3, 1)", "(0, -2, -1, 1)"])
def test_permute_takes_letters_indices_or_a_string(dims):
    assert shown(types(f"y = x -> permute({dims})\noutput y")["y"]) == (("N", 28, 28, 116), "NHWC")


def test_transpose_swaps_two_axes_by_letter_or_index():
    t = types('a = x -> transpose("H", "W")\nb = x -> transpose(1, -1)\noutput a, b',
              "input x: f32[N, 3, 4, 5]")
    assert shown(t["a"]) == (("N", 3, 5, 4), "NCWH")
    assert shown(t["b"]) == (("N", 5, 4, 3), "NWHC")


def test_reshape_keeps_the_roles_of_the_axes_it_leaves_unchanged():
    t = types("g = x -> reshape((2, 58, 28, 28))\nf = x -> reshape(-1)\nr = x -> reshape((116, 784))\n"
              "c = x -> reshape((116 * 28, 28))\noutput g, f, r, c")
    assert shown(t["g"]) == (("N", 2, 58, 28, 28), "NabHW")   # the channels split: no role
    assert shown(t["f"]) == (("N", 90944), "NC")              # merging the channels: the features
    assert shown(t["r"]) == (("N", 116, 784), "NCa")          # H and W merged: no role
    assert shown(t["c"]) == (("N", 3248, 28), "NCW")          # CRNN's [N, C*H, W]


def test_reshape_infers_one_size_and_keeps_the_batch_symbolic():
    t = types("y = x -> reshape((-1, 4, 7))\noutput y")
    assert t["y"].shape == ("N", 116 * 28, 4, 7)


def test_reshape_reads_a_channels_last_tensor_in_its_declared_order():
    t = types("y = x -> reshape((8, 4, 2, 3))\noutput y", "input x: f32[N, 8, 8, 3] NHWC")
    assert shown(t["y"]) == (("N", 8, 4, 2, 3), "NHabC")


def test_layout_names_the_axes_a_reshape_makes():
    t = types('y = x -> reshape((2, 58, 28, 28)) -> transpose(1, 2) -> reshape((116, 28, 28), layout="NCHW") '
              "-> conv(8, 3)\noutput y")
    assert shown(t["y.1"]) == (("N", 58, 2, 28, 28), "NbaHW")
    assert shown(t["y.2"]) == (("N", 116, 28, 28), "NCHW")
    assert t["y.3"].shape == ("N", 8, 26, 26)


def test_other_letters_in_a_layout_are_axes_without_a_role():
    t = types('y = x -> unflatten("C", (2, 58), layout="NGCHW") -> permute("NCGHW")\noutput y')
    assert shown(t["y.1"]) == (("N", 58, 2, 28, 28), "NCGHW")


def test_flatten_start_and_end_as_pytorch():
    t = types('a = x -> flatten\nb = x -> flatten(1)\nc = x -> flatten(2)\nd = x -> flatten("C", "H")\n'
              "e = x -> flatten(3, 3)\noutput a, b, c, d, e")
    assert shown(t["a"]) == (("N", 90944), "NC")
    assert shown(t["b"]) == (("N", 90944), "NC")
    assert shown(t["c"]) == (("N", 116, 784), "NCa")
    assert shown(t["d"]) == (("N", 3248, 28), "NCW")
    assert shown(t["e"]) == (("N", 116, 28, 28), "NCHW")


def test_unflatten_squeeze_unsqueeze():
    t = types('a = x -> unflatten(1, (4, -1))\nb = x -> unsqueeze(2) -> squeeze(2)\n'
              'c = x -> unsqueeze(-1)\nd = x -> select("H", 0) -> unsqueeze(2, layout="NCHW")\n'
              "output a, b, c, d")
    assert shown(t["a"]) == (("N", 4, 29, 28, 28), "NabHW")
    assert shown(t["b.1"]) == (("N", 116, 28, 28), "NCHW")
    assert shown(t["c"]) == (("N", 116, 28, 28, 1), "NCHWa")
    assert shown(t["d.1"]) == (("N", 116, 1, 28), "NCHW")


def test_slice_narrow_select_keep_roles():
    t = types('a = x -> slice("H", 2, -2, 2)\nb = x -> narrow(1, -16, 16)\nc = x -> select("W", -1)\n'
              'd = x -> slice(1, 10)\noutput a, b, c, d')
    assert shown(t["a"]) == (("N", 116, 12, 28), "NCHW")
    assert shown(t["b"]) == (("N", 16, 28, 28), "NCHW")
    assert shown(t["c"]) == (("N", 116, 28), "NCH")
    assert shown(t["d"]) == (("N", 106, 28, 28), "NCHW")


def test_chunk_follows_torch_chunk_sizes():
    t = types("a, b, c = x -> chunk(3)\noutput a, b, c")
    assert [t[n].channels for n in "abc"] == [39, 39, 38]


def test_split_by_size_and_by_sections():
    t = types('a, b, c = x -> split(40)\np, q = x -> split((16, 100), dim=1)\n'
              'h1, h2 = x -> split(14, "H")\noutput a, b, c, p, q, h1, h2')
    assert [t[n].channels for n in "abc"] == [40, 40, 36]
    assert [t[n].channels for n in "pq"] == [16, 100]
    assert t["h2"].shape == ("N", 116, 14, 28)


def test_channel_shuffle_keeps_the_type():
    t = types("y = x -> channel_shuffle(4)\noutput y")
    assert shown(t["y"]) == (("N", 116, 28, 28), "NCHW")


def test_rearrangements_take_any_dtype():
    t = types('y = x -> permute("NHWC") -> reshape(-1) -> slice(1, 0, 4)\noutput y',
              "input x: i64[N, 2, 3, 3]")
    assert t["y.2"].dtype == "i64" and t["y.2"].shape == ("N", 4)


# ================================================================ several names


def test_a_block_unpacks_and_uses_both_pieces():
    # ShuffleNet v2's unit (stride 1): half the channels pass, half go through a branch
    t = types(textwrap.dedent("""\
        block unit(x) {
            x1, x2 = x -> chunk(2, dim=1)
            branch = x2 -> conv(58, 1) -> relu
            return concat(x1, branch) -> channel_shuffle(2)
        }
        y = x -> unit
        output y"""))
    assert {"y.x1", "y.x2", "y.0"} <= set(t)
    assert t["y.x1"].channels == 58 and shown(t["y.0"]) == (("N", 116, 28, 28), "NCHW")


def test_bindings_of_pieces_may_come_in_any_order_and_a_label_names_the_nodes():
    result = compiled("y = a + b\na, b = x -> cut: split(58)\noutput y")
    assert result.ok
    assert {"cut.0", "cut.1"} <= {node.name for node in result.graph}


def test_a_piece_in_an_expression_is_taken_with_piece():
    t = types("y = (x -> chunk(2, piece=1)) + (x -> chunk(2, piece=0))\noutput y")
    assert t["y"].channels == 58


def test_the_wrong_count_of_names_is_located_at_the_names():
    d = one_error("a, b = x -> chunk(3)\noutput a")
    assert d.message == "2 names are bound, but chunk gives 3 tensors"
    assert (d.span.line, d.span.column, d.span.end_column) == (3, 1, 5)
    assert d.labels[0].message == "chunk cuts the channels (116) into 3 pieces of 38 and 39 here"


def test_fewer_chunks_than_asked_says_why():
    d = one_error("a, b, c, e = x -> chunk(4)\noutput a", "input x: f32[N, 6, 4, 4]")
    assert d.message == "4 names are bound, but chunk gives 3 tensors"
    assert "ceil(6 / 4) = 2, so 3 pieces, not 4" in d.hint


def test_a_chunk_bound_to_one_name_asks_for_names():
    d = one_error("y = x -> chunk(2)\noutput y")
    assert "but a value is one tensor" in d.message and "piece=0" in d.hint
    assert (d.span.line, d.span.column) == (3, 10)


def test_several_names_for_one_tensor_are_refused():
    d = one_error("a, b = x -> relu\noutput a")
    assert d.message == "2 names are bound, but relu gives one tensor"
    d = one_error("a, b = x\noutput a")
    assert d.message == "2 names are bound, but the value is a tensor"


def test_a_name_bound_twice_by_an_unpacking_is_refused():
    d = one_error("a = x -> relu\na, b = x -> chunk(2)\noutput a, b")
    assert d.message == "`a` is defined twice" and d.span.line == 4


# ================================================================ errors in the user's terms


@pytest.mark.parametrize("body, message", [
    ("y = x -> reshape((-1, -1))", "`shape` (-1, -1) has -1 more than once"),
    ("y = x -> reshape((2, 58, 28, 27))", "`shape` (2, 58, 28, 27) holds 87,696 elements, but each sample"),
    ("y = x -> reshape((-1, 5))", "cannot infer the -1 in (-1, 5): each sample of [N, 116, 28, 28]"),
    ("y = x -> reshape((0, -1))", "`shape` (0, -1) has a size 0"),
    ('y = x -> permute("NCHX")', '`dims` is "X", but [N, 116, 28, 28] has no such axis'),
    ("y = x -> permute(0, 2, 3)", "(0, 2, 3) names 3 axes, but [N, 116, 28, 28] has 4"),
    ("y = x -> permute(0, 1, 1, 2)", "names the channels (C, 116) twice"),
    ("y = x -> transpose(1, 4)", "`dim1` is 4, out of range for [N, 116, 28, 28]"),
    ("y = x -> flatten(0)", "include the batch N"),
    ('y = x -> flatten("W", "H")', "start_dim \"W\" (axis 3) comes after end_dim \"H\" (axis 2)"),
    ('y = x -> slice("H", 30)', "`start` 30 is out of range for the height (H, 28): from -28 to 27"),
    ('y = x -> slice("H", 0, 29)', "`end` 29 is out of range for the height (H, 28)"),
    ('y = x -> slice("W", 5, 5)', "is empty (from 5 to 5)"),
    ('y = x -> narrow("H", 20, 10)', "narrow from 20 for 10 runs past the end of the height (H, 28)"),
    ("y = x -> select(1, 116)", "`index` 116 is out of range for the channels (C, 116)"),
    ("y = x -> select(0, 0)", "cannot select the batch axis N of [N, 116, 28, 28]"),
    ('y = x -> squeeze("H")', "cannot remove the height (H, 28) of [N, 116, 28, 28]: its size is not 1"),
    ("y = x -> squeeze", "has no axis of size 1 to remove"),
    ("y = x -> unsqueeze(6)", "`axis` is 6, out of range for [N, 116, 28, 28] (4-D)"),
    ('y = x -> unflatten("C", (3, -1))', "cannot infer the -1 in (3, -1): the channels (C, 116) has 116"),
    ('y = x -> reshape(-1, layout="NCH")', '`layout` "NCH" names 3 axes, but the result [N, 90944] has 2'),
    ('y = x -> reshape(-1, layout="CN")', '`layout` "CN" must put the batch N first'),
    ('y = x -> reshape(-1, layout="NN")', '`layout` "NN" names axis N twice'),
    ("y = x -> channel_shuffle(3)", "116 channels do not divide into 3 groups"),
    ("a, b = x -> split((16, 50))", "the sizes (16, 50) add up to 66, but the channels (C, 116) has 116"),
])
def test_mistakes_are_located_errors(body, message):
    d = one_error(body + "\noutput " + body.split(" =")[0].split(",")[0])
    assert message in d.message, d.message
    assert d.span is not None and d.span.line == 3


def test_a_layer_needing_channels_after_a_reshape_names_the_reshape():
    d = one_error("g = x -> reshape((2, 58, 28, 28))\ny = g -> conv(8, 3)\noutput y")
    assert d.message == ("conv: the input has no channel axis: the reshape `g` (line 3) left its axes as "
                         "NabHW (lowercase letters are axes without a role)")
    assert d.span.line == 4 and 'layout="NCHW"' in d.hint


@pytest.mark.parametrize("layer", ["batchnorm", "linear(8)", "groupnorm(2)", "layernorm", "softmax",
                                   "channel_shuffle(2)", "chunk(2, piece=0)", "prelu(116)"])
def test_every_layer_that_needs_channels_says_which_layer_lost_them(layer):
    d = one_error(f"y = x -> select(1, 0) -> {layer}\noutput y")
    assert "no channel axis: the select `y.0` (line 3) left its axes as NHW" in d.message, d.message


def test_channels_of_a_tensor_without_channels_is_a_located_error():
    d = one_error("r = x -> reshape((2, 58, 28, 28))\nq = x -> conv(channels(r), 1)\noutput q")
    assert "`channels`: the input has no channel axis: the reshape `r` (line 3)" in d.message


def test_pytorch_s_reshape_with_the_batch_is_explained():
    d = one_error("y = x -> reshape(N, -1)\noutput y")
    assert d.message == "`N` is not defined"
    assert "`N` is the symbolic batch size of input `x`" in d.hint and "reshape((-1,))" in d.hint
    d = one_error("y = x -> reshape(4, -1)\noutput y")
    assert d.message.startswith("reshape takes the sizes after the batch as one tuple")
    assert d.hint == "the batch is kept: write `reshape((-1,))`"


def test_a_permute_may_move_the_batch_and_a_reshape_still_keeps_it():
    t = types("y = x -> permute(1, 0, 2, 3) -> reshape(-1)\noutput y")
    assert shown(t["y.0"]) == ((116, "N", 28, 28), "CNHW")
    assert shown(t["y.1"]) == (("N", 90944), "NC")


def test_pytorch_tensor_methods_are_named_with_their_arguments(tmp_path, capsys):
    spec = tmp_path / "t.net"
    spec.write_text("input x: f32[N, 4, 8, 8]\nx1, x2 = x.chunk(2, dim=1)\noutput x1\n")
    code, _, err = cli(["check", spec], capsys)
    assert code == 1 and "write `x -> chunk(2, dim=1)`" in err and "Traceback" not in err


# ================================================================ lowering


SPEC = """\
network rearranged
input x: f32[N, 116, 12, 12]
input s: f32[N, 6, 5, 7] NHWC

block unit(x) {
    x1, x2 = x -> chunk(2, dim=1)
    branch = x2 -> conv(58, 1) -> relu
    return concat(x1, branch) -> channel_shuffle(2)
}

a = x -> unit
g = a -> reshape((2, 58, 12, 12)) -> transpose(1, 2)
back = g -> reshape((116, 12, 12), layout="NCHW") -> conv(4, 3)
mlp = a -> permute(0, 2, 3, 1) -> layernorm -> linear(32) -> gelu -> permute("NCHW")
p, q, r = a -> split((16, 50, 50))
cut = a -> slice("H", 2, -2, 2) -> narrow("W", 0, 4) -> select("W", 1) -> unsqueeze(-1, layout="NCHW")
f = a -> flatten(2) -> unflatten(2, (12, 12), layout="NCHW") -> unsqueeze(2) -> squeeze(2)
t = s -> reshape((35, 6)) -> transpose(1, 2) -> flatten(1)
u = s -> unsqueeze(1) -> permute(0, 2, 3, 4, 1)
output back, mlp, p, r, cut, f, t, u, g
"""


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    path = tmp_path_factory.mktemp("rearrange") / "rearranged.net"
    path.write_text(SPEC)
    return netspec.load(path).check()


def test_the_lowered_model_passes_the_full_check_and_infers_netspec_s_shapes(network):
    import onnx

    from test_export import inferred_shapes, light_model

    model = network.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    for batch in (2, None):
        shapes = inferred_shapes(light_model(network, batch))
        for node in network.graph:
            if node.layer is None:
                continue   # a graph input: its declared layout
            want = [d if isinstance(d, int) else batch for d in canonical_shape(node.output)]
            got = shapes.get(node.name)
            assert isinstance(got, list) and len(got) == len(want), (node.name, got, want)
            for axis, (g, w) in enumerate(zip(got, want)):
                assert g == w if w is not None else not isinstance(g, int), (node.name, got, want)
        for name, node_name in network.graph.outputs:
            t = network.graph.node(node_name).output
            want = [d if isinstance(d, int) else batch for d in t.shape]
            got = shapes[name]
            assert [g if isinstance(w, int) else None for g, w in zip(got, want)] == \
                [w if isinstance(w, int) else None for w in want], (name, got, want)


def test_a_permute_moves_the_data_as_pytorch_does(network):
    """Values keep their declared layouts inside ONNX: NCHW -> NHWC is a Transpose, as in
    PyTorch's export, and so is a swap of two axes without a role."""
    model = network.to_onnx()
    nodes = {n.name: n for n in model.graph.node}
    assert nodes["mlp.0"].op_type == "Transpose" and list(nodes["mlp.0"].attribute[0].ints) == [0, 2, 3, 1]
    assert nodes["mlp.4"].op_type == "Transpose" and list(nodes["mlp.4"].attribute[0].ints) == [0, 3, 1, 2]
    assert nodes["g.1"].op_type == "Transpose"


def test_the_lowered_model_runs_as_torch_computes(network):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 116, 12, 12)).astype(np.float32)
    s = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    out = network.run({"x": x, "s": s})
    ts = torch.from_numpy(s)
    assert np.allclose(out["t"], ts.reshape(2, 35, 6).transpose(1, 2).flatten(1).numpy())
    assert np.allclose(out["u"], ts.unsqueeze(1).permute(0, 2, 3, 4, 1).numpy())
    assert out["g"].shape == (2, 58, 2, 12, 12) and out["cut"].shape == (2, 116, 4, 1)
    assert out["p"].shape == (2, 16, 12, 12) and out["r"].shape == (2, 50, 12, 12)


def test_rearrangements_have_no_parameters_and_no_macs(network):
    for node in network.graph:
        if node.layer is not None and node.layer.family == "rearrange":
            assert node.params == {} and node.macs == 0, node.name


def test_check_prints_the_table_with_the_layouts(tmp_path, capsys):
    spec = tmp_path / "t.net"
    spec.write_text(SPEC)
    code, out, err = cli(["check", spec], capsys)
    assert code == 0, err
    assert "permute NCHW -> NHWC" in out and "transpose NabHW -> NbaHW" in out
    assert "chunk C 0:58" in out and "slice H 2:10:2" in out


def test_explain_shows_a_reshape_s_layouts(tmp_path, capsys):
    spec = tmp_path / "t.net"
    spec.write_text(SPEC)
    code, out, err = cli(["check", spec, "--explain"], capsys)
    assert code == 0, err
    assert "layout: NCHW -> NabHW" in out


def test_default_opset_exports(network):
    assert network.to_onnx().opset_import[0].version == DEFAULT_OPSET


def test_axes_without_a_role_match_by_position_in_a_merge(tmp_path):
    """A transpose of two axes without a role (MaxViT's grid swap) gives NbaC; a reshape of the
    same shape NabC: they add, axis by axis, as torch adds them."""
    spec = tmp_path / "t.net"
    spec.write_text("network t\ninput x: f32[N, 6, 6, 8] NHWC\nu = x -> reshape((3, 12, 8))\n"
                    "t = u -> transpose(1, 2)\ns = u -> reshape((12, 3, 8))\ny = t + s\noutput y\n")
    net = netspec.load(spec)
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 8)).astype(np.float32)
    u = x.reshape(2, 3, 12, 8)
    assert np.allclose(net.run(x)["y"], u.transpose(0, 2, 1, 3) + u.reshape(2, 12, 3, 8), atol=1e-6)



def test_a_gather_index_out_of_range_is_a_located_error_at_export(tmp_path):
    """The spec's index values, or a weights file's, are checked against the table's axis when the
    model is lowered: one located error, not onnxruntime's failure when it runs."""
    spec = tmp_path / "t.net"
    spec.write_text("network t\ninput x: f32[N, 4, 3]\ntable = param(9, 3)\n"
                    "index = buffer(4, dtype=i64, init=(0, 3, 9, 1))\ny = x + gather(table, index)\noutput y\n")
    net = netspec.load(spec)
    with pytest.raises(NetspecError, match=r"gather: the index holds 9, out of range for axis 0 \(9\): from -9 to 8"):
        net.to_onnx()
    weights = dict(net.weights())
    weights["index"] = np.array([0, 1, -10, 2], dtype=np.int64)
    with pytest.raises(NetspecError, match="the index holds -10"):
        net.to_onnx(weights=weights)
    weights["index"] = np.array([0, 1, -9, 8], dtype=np.int64)  # negative counts from the end
    assert net.run(np.ones((2, 4, 3), np.float32), weights=weights)["y"].shape == (2, 4, 3)
