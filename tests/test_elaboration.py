"""Elaboration: layer naming (PyTorch state_dict style), blocks, repeats, binding order,
imports, network parameters and input overrides, several inputs and outputs.

Expected names are written out by hand from the naming rules (nn.Sequential indices, labels,
block scopes) and, for the ResNet block, from torchvision's resnet18 state_dict keys.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netspec.compiler import compile_file
from netspec.elaborate import OverrideError


def compile_text(text: str, path: str | Path = "t.net", **kw):
    return compile_file(path, text=textwrap.dedent(text), **kw)


def errors(result) -> list[str]:
    return [d.message for d in result.diagnostics.items if d.severity == "error"]


def ok(text: str, path: str | Path = "t.net", **kw):
    result = compile_text(text, path, **kw)
    assert result.ok and not errors(result), errors(result)
    return result.graph


def names(graph) -> list[str]:
    return [node.name for node in graph]


def layer_names(graph) -> list[str]:
    return [node.name for node in graph if node.kind != "input"]


HEAD = "network t\ninput x: f32[N, 3, 32, 32]\n"


# ================================================================ chains


def test_chain_indices_count_every_layer_like_nn_sequential():
    g = ok("""\
        network alex
        input image: f32[N, 3, 224, 224]
        features = image
            -> conv(64, 11, stride=4, padding=2) -> relu -> maxpool(3, stride=2)
            -> conv(192, 5, padding=2) -> relu -> maxpool(3, stride=2)
            -> conv(384, 3, padding=1) -> relu
            -> conv(256, 3, padding=1) -> relu
            -> conv(256, 3, padding=1) -> relu -> maxpool(3, stride=2)
        output features
        """)
    assert names(g) == ["image"] + [f"features.{i}" for i in range(13)]
    kinds = [g.node(f"features.{i}").kind for i in range(13)]
    assert kinds == ["conv", "relu", "maxpool", "conv", "relu", "maxpool", "conv", "relu", "conv", "relu",
                     "conv", "relu", "maxpool"]
    convs = [k for k in g.parameter_specs() if k.endswith(".weight")]
    assert convs == ["features.0.weight", "features.3.weight", "features.6.weight", "features.8.weight",
                     "features.10.weight"]
    assert g.outputs == [("features", "features.12")]


@pytest.mark.parametrize("rhs", ["x -> conv(4, 1)", "conv(x, 4, 1)", "x -> conv(4, kernel=1)"])
def test_a_chain_of_one_layer_is_just_the_binding_name(rhs):
    g = ok(HEAD + f"y = {rhs}\noutput y\n")
    assert layer_names(g) == ["y"]
    assert list(g.parameter_specs()) == ["y.weight", "y.bias"]


def test_labels_name_a_layer_and_still_take_their_place_in_the_chain():
    g = ok(HEAD + "y = x -> c1: conv(8, 3) -> relu -> c2: conv(8, 3) -> relu\noutput y\n")
    assert layer_names(g) == ["c1", "y.1", "c2", "y.3"]
    assert list(g.parameter_specs()) == ["c1.weight", "c1.bias", "c2.weight", "c2.bias"]


def test_a_labelled_call_outside_a_chain():
    g = ok(HEAD + "y = head: conv(x, 4, 1)\noutput y\n")
    assert layer_names(g) == ["head"]
    assert g.outputs == [("y", "head")]


def test_two_chains_use_their_own_indices():
    g = ok(HEAD + "a = x -> conv(4, 3) -> relu\nb = a -> conv(4, 3) -> relu\noutput b\n")
    assert layer_names(g) == ["a.0", "a.1", "b.0", "b.1"]


# ================================================================ repeat


def test_repeat_expands_inline_and_continues_the_indices():
    g = ok(HEAD + "y = x -> conv(8, 3, padding=1) -> repeat(2) { conv(8, 3, padding=1) -> relu } "
                  "-> maxpool(2)\noutput y\n")
    assert layer_names(g) == [f"y.{i}" for i in range(6)]
    assert [n.kind for n in g if n.kind != "input"] == ["conv", "conv", "relu", "conv", "relu", "maxpool"]
    assert g.node("y.5").output.shape == ("N", 8, 16, 16)


def test_vgg_style_repeats():
    g = ok(HEAD + "f = x -> repeat(2) { conv(8, 3, padding=1) -> relu } -> maxpool(2)\n"
                  "    -> repeat(3) { conv(16, 3, padding=1) -> relu } -> maxpool(2)\noutput f\n")
    weights = [k for k in g.parameter_specs() if k.endswith("weight")]
    assert weights == ["f.0.weight", "f.2.weight", "f.5.weight", "f.7.weight", "f.9.weight"]
    assert g.node("f.11").kind == "maxpool"
    assert g.node("f.11").output.shape == ("N", 16, 8, 8)


def test_a_repeat_of_one_layer_once_is_a_chain_of_one():
    g = ok(HEAD + "y = x -> repeat(1) { relu }\noutput y\n")
    assert layer_names(g) == ["y"]


def test_repeat_count_from_a_parameter():
    g = ok("network t(n = 3)\ninput x: f32[N, 3, 32, 32]\ny = x -> repeat(n - 1) { relu } -> tanh\noutput y\n")
    assert layer_names(g) == ["y.0", "y.1", "y.2"]


def test_labelled_repeat_names_its_layers_label_dot_index():
    g = ok(HEAD + "y = x -> conv(8, 3) -> stage: repeat(2) { conv(8, 3) -> relu } -> maxpool(2)\noutput y\n")
    assert layer_names(g) == ["y.0", "stage.0", "stage.1", "stage.2", "stage.3", "y.2"]
    assert [k for k in g.parameter_specs() if k.endswith("weight")] == \
        ["y.0.weight", "stage.0.weight", "stage.2.weight"]


def test_a_label_inside_a_repeated_body_gets_the_round_index():
    g = ok(HEAD + "y = x -> conv(8, 3) -> repeat(2) { b: conv(8, 3) -> relu } -> maxpool(2)\noutput y\n")
    assert layer_names(g) == ["y.0", "b.0", "y.2", "b.1", "y.4", "y.5"]


def test_nested_repeat_keeps_the_outer_round_for_a_label_after_it():
    """The inner repeat must not reset the outer round: the label is `c.0` then `c.1`."""
    g = ok(HEAD + "y = x -> repeat(2) { repeat(2) { relu } -> c: tanh }\noutput y\n")
    assert layer_names(g) == ["y.0", "y.1", "c.0", "y.3", "y.4", "c.1"]


# ================================================================ blocks


BASIC = """\
    block basic(x, planes, stride = 1) {
        y = x -> conv1: conv(planes, 3, stride=stride, padding=1, bias=false) -> bn1: batchnorm -> relu
              -> conv2: conv(planes, 3, padding=1, bias=false) -> bn2: batchnorm
        return relu(y + x)
    }
"""

# torchvision resnet18: the keys of layer1 (two BasicBlocks of 64 planes, no downsample)
TORCHVISION_LAYER1 = [
    f"layer1.{b}.{m}.{p}"
    for b in (0, 1)
    for m, ps in (("conv1", ["weight"]),
                  ("bn1", ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]),
                  ("conv2", ["weight"]),
                  ("bn2", ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]))
    for p in ps
]


@pytest.mark.parametrize("chain", ["stem -> basic(64) -> basic(64)", "stem -> repeat(2) { basic(64) }"])
def test_block_instances_are_scopes_named_like_torchvision(chain):
    g = ok(f"""\
        network r
        input image: f32[N, 64, 56, 56]
{textwrap.indent(textwrap.dedent(BASIC), " " * 8)}
        stem = image -> relu
        layer1 = {chain}
        output layer1
        """)
    specs = g.parameter_specs()
    assert list(specs) == TORCHVISION_LAYER1
    assert specs["layer1.0.conv1.weight"].shape == (64, 64, 3, 3)
    assert specs["layer1.1.bn2.running_var"].shape == (64,)
    assert not specs["layer1.1.bn2.running_var"].trainable
    assert specs["layer1.1.bn2.num_batches_tracked"].shape == ()
    # the unlabelled relu of the chain bound to `y` inside the block, and the auto-named merge
    assert g.node("layer1.0.y.2").kind == "relu"
    assert g.node("layer1.0.add").kind == "add"
    assert g.node("layer1.0.relu").kind == "relu"
    assert g.node("layer1.1.relu").output.shape == ("N", 64, 56, 56)
    assert g.outputs == [("layer1", "layer1.1.relu")]
    assert [b.name for b in g.node("layer1.1.conv2").blocks] == ["layer1.1"]


def test_labelled_block_instance():
    g = ok(HEAD + textwrap.dedent(BASIC) + "y = x -> conv(16, 1) -> main: basic(16)\noutput y\n")
    assert "main.conv1.weight" in g.parameter_specs()
    assert g.node("y.0").kind == "conv"


def test_block_defaults_and_keyword_arguments():
    g = ok(HEAD + textwrap.dedent("""\
        block widen(t, c, out = c * 2, stride = 1) {
            return t -> proj: conv(out, 3, stride=stride, padding=1)
        }
        a = x -> widen(4)
        b = x -> widen(4, stride=2)
        c = x -> widen(c=5, out=6)
        d = widen(x, 3, 7, 2)
        output a, b, c, d
        """))
    assert g.node("a.proj").output.shape == ("N", 8, 32, 32)
    assert g.node("b.proj").output.shape == ("N", 8, 16, 16)
    assert g.node("c.proj").output.shape == ("N", 6, 32, 32)
    assert g.node("d.proj").output.shape == ("N", 7, 16, 16)


def test_block_sees_network_parameters():
    g = ok(textwrap.dedent("""\
        network t(width = 12)
        input x: f32[N, 3, 8, 8]
        block b(t) {
            return t -> conv(width, 1)
        }
        y = x -> b
        output y
        """))
    # a returned chain is the instance's nn.Sequential body: `y.0`
    assert g.node("y.0").output.shape == ("N", 12, 8, 8)


def test_auto_names_are_scope_kind_then_kind_2():
    g = ok(HEAD + "z = (x -> relu) + (x -> relu)\nw = relu(z) * relu(z)\noutput w\n")
    assert layer_names(g) == ["relu", "relu_2", "z", "relu_3", "relu_4", "w"]


def test_auto_names_inside_a_block_and_of_unnamed_block_instances():
    g = ok(HEAD + textwrap.dedent("""\
        block two(t) {
            return (t -> conv(4, 1)) + (t -> conv(4, 1))
        }
        y = two(x) + two(x)
        output y
        """))
    assert layer_names(g) == ["two.conv", "two.conv_2", "two.add", "two_2.conv", "two_2.conv_2",
                              "two_2.add", "y"]


def test_unnamed_block_instances_in_a_return_chain_get_their_own_scopes():
    g = ok(HEAD + textwrap.dedent("""\
        block cb(t, c) {
            return t -> conv: conv(c, 1) -> bn: batchnorm
        }
        block double(t, c) {
            return t -> cb(c) -> cb(c)
        }
        y = x -> double(4)
        output y
        """))
    # the returned chain is the instance's Sequential body: its block instances are `y.0`, `y.1`
    assert layer_names(g) == ["y.0.conv", "y.0.bn", "y.1.conv", "y.1.bn"]


def test_bindings_in_any_order_are_evaluated_by_dependency():
    g = ok(textwrap.dedent("""\
        network t
        output logits
        logits = flat -> linear(10)
        flat = features -> flatten
        features = x -> conv(4, 3) -> relu
        input x: f32[N, 3, 8, 8]
        """))
    assert layer_names(g) == ["features.0", "features.1", "flat", "logits"]
    assert g.node("logits").params["weight"].shape == (10, 4 * 6 * 6)
    assert g.outputs == [("logits", "logits")]


# ================================================================ imports


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


LIB = """\
    network lib(unused = 1)
    input z: f32[N, 3]
    block conv_bn(t, c) {
        return t -> conv: conv(c, 3, padding=1, bias=false) -> bn: batchnorm
    }
    output z
    """


def test_use_imports_blocks_relative_to_the_importing_file(tmp_path):
    write(tmp_path / "lib" / "blocks.net", LIB)
    write(tmp_path / "lib" / "deeper.net", """\
        use "blocks.net"
        block double(t, c) {
            return t -> first: conv_bn(c) -> second: conv_bn(c)
        }
        """)
    main = write(tmp_path / "nets" / "main.net", """\
        network main
        use "../lib/deeper.net"
        input x: f32[N, 3, 8, 8]
        y = x -> stem: conv_bn(8) -> double(16)
        output y
        """)
    result = compile_file(main)
    assert result.ok, errors(result)
    specs = result.graph.parameter_specs()
    assert list(specs)[:2] == ["stem.conv.weight", "stem.bn.weight"]
    assert "y.1.first.conv.weight" in specs
    assert "y.1.second.bn.running_mean" in specs
    assert result.graph.node("y.1.second.bn").output.shape == ("N", 16, 8, 8)


def test_use_with_text_resolves_relative_to_the_given_path(tmp_path):
    write(tmp_path / "blocks.net", LIB)
    g = ok('network t\nuse "blocks.net"\ninput x: f32[N, 3, 8, 8]\ny = x -> conv_bn(4)\noutput y\n',
           path=tmp_path / "main.net")
    assert g.node("y.bn").params["weight"].shape == (4,)


def test_a_file_reached_twice_through_imports_is_fine(tmp_path):
    write(tmp_path / "blocks.net", LIB)
    write(tmp_path / "a.net", 'use "blocks.net"\nblock a(t) {\n    return t -> conv_bn(4)\n}\n')
    write(tmp_path / "b.net", 'use "blocks.net"\nblock b(t) {\n    return t -> conv_bn(4)\n}\n')
    main = write(tmp_path / "main.net",
                 'network m\nuse "a.net"\nuse "b.net"\nuse "blocks.net"\ninput x: f32[N, 3, 8, 8]\n'
                 "y = x -> a -> b -> conv_bn(2)\noutput y\n")
    result = compile_file(main)
    assert result.ok, errors(result)
    assert result.graph.node("y.2.bn").output.shape == ("N", 2, 8, 8)


def test_a_file_reached_twice_by_different_relative_paths_is_fine(tmp_path):
    """`lib/blocks.net` from the top and `../lib/blocks.net` from a sibling folder are one file."""
    write(tmp_path / "lib" / "blocks.net", LIB)
    write(tmp_path / "sub" / "s.net", 'use "../lib/blocks.net"\nblock s(t) {\n    return t -> conv_bn(4)\n}\n')
    main = write(tmp_path / "main.net",
                 'network m\nuse "lib/blocks.net"\nuse "sub/s.net"\ninput x: f32[N, 3, 8, 8]\n'
                 "y = x -> conv_bn(4) -> s\noutput y\n")
    result = compile_file(main)
    assert result.ok, errors(result)
    # s's returned chain is its Sequential body, so its conv_bn instance is `y.1.0`
    assert result.graph.node("y.1.0.bn").output.shape == ("N", 4, 8, 8)


# ================================================================ parameters and input overrides


def test_network_parameters_defaults_and_overrides():
    text = """\
        network t(classes = 10, hidden = classes * 4)
        input x: f32[N, 20]
        y = x -> linear(hidden) -> relu -> linear(classes)
        output y
        """
    g = ok(text)
    assert g.node("y.0").output.shape == ("N", 40)
    assert g.node("y.2").output.shape == ("N", 10)
    g = ok(text, params={"classes": 7})
    assert g.node("y.0").output.shape == ("N", 28)  # the default follows the override
    assert g.node("y.2").params["weight"].shape == (7, 28)
    g = ok(text, params={"classes": 7, "hidden": 5})
    assert g.node("y.0").output.shape == ("N", 5)
    assert g.parameters == {"classes": 7, "hidden": 5}


def test_a_parameter_without_a_default_is_given_by_set():
    text = "network t(width)\ninput x: f32[N, 3, 8, 8]\ny = x -> conv(width, 1)\noutput y\n"
    assert not compile_text(text).ok
    g = ok(text, params={"width": 6})
    assert g.node("y").output.shape == ("N", 6, 8, 8)


def test_unknown_set_name_is_a_usage_error():
    with pytest.raises(OverrideError):
        compile_text("network t(classes = 10)\ninput x: f32[N, 4]\ny = x -> linear(classes)\noutput y\n",
                     params={"clases": 3})


def test_input_override_changes_every_shape_downstream():
    text = """\
        network t(classes = 10)
        input image: f32[N, 3, 224, 224]
        f = image -> conv(64, 11, stride=4, padding=2) -> relu -> maxpool(3, stride=2)
        g = f -> adaptive_avgpool(6) -> flatten -> linear(classes)
        output g
        """
    g = ok(text, inputs={"image": [1, 3, 64, 64]})
    assert g.node("image").output.shape == (1, 3, 64, 64)
    # floor((64 + 4 - 11) / 4) + 1 = 15; floor((15 - 3) / 2) + 1 = 7
    assert g.node("f.0").output.shape == (1, 64, 15, 15)
    assert g.node("f.2").output.shape == (1, 64, 7, 7)
    assert g.node("g.2").output.shape == (1, 10)
    # the parameters do not depend on the input size
    g224 = ok(text)
    assert {k: v.shape for k, v in g.parameter_specs().items()} == \
        {k: v.shape for k, v in g224.parameter_specs().items()}
    g = ok(text, inputs={"image": ["N", 3, 100, 80]})
    assert g.node("f.0").output.shape == ("N", 64, 24, 19)


def test_unknown_input_override_is_a_usage_error():
    with pytest.raises(OverrideError):
        compile_text(HEAD + "y = x -> relu\noutput y\n", inputs={"img": [1, 3, 8, 8]})


# ================================================================ several inputs and outputs


def test_feature_pyramid_with_several_inputs_and_outputs():
    g = ok("""\
        network neck(width = 256)
        input c3: f32[N, 512, 32, 32]
        input c4: f32[N, 1024, 16, 16]

        p3 = c3 -> lat3: conv(width, 1)
        p4 = (c4 -> lat4: conv(width, 1)) + (p3 -> down3: conv(width, 3, stride=2, padding=1))
        both = concat(p4, c4 -> reduce: conv(128, 1))
        out4 = both -> smooth: conv(width, 3, padding=1) -> relu
        output p3
        output out4
        """)
    assert g.inputs == ["c3", "c4"]
    assert g.outputs == [("p3", "lat3"), ("out4", "out4.1")]
    shapes = {n.name: n.output.shape for n in g}
    assert shapes == {
        "c3": ("N", 512, 32, 32), "c4": ("N", 1024, 16, 16),
        "lat3": ("N", 256, 32, 32), "lat4": ("N", 256, 16, 16), "down3": ("N", 256, 16, 16),
        "p4": ("N", 256, 16, 16), "reduce": ("N", 128, 16, 16), "both": ("N", 384, 16, 16),
        "smooth": ("N", 256, 16, 16), "out4.1": ("N", 256, 16, 16),
    }
    assert g.node("p4").kind == "add" and g.node("both").kind == "concat"
    assert g.node("smooth").params["weight"].shape == (256, 384, 3, 3)
    assert g.node("down3").macs == 256 * 16 * 16 * 256 * 9
    assert set(g.node("p4").inputs) == {"lat4", "down3"}


def test_several_inputs_override_one_of_them():
    g = ok("""\
        network t
        input a: f32[N, 8, 16, 16]
        input b: f32[N, 8, 16, 16]
        s = a + b
        output s, a
        """, inputs={"b": ["N", 8, 1, 1]})
    assert g.node("s").output.shape == ("N", 8, 16, 16)
    assert g.outputs == [("s", "s"), ("a", "a")]


# ================================================================ queries of a tensor's type


def test_a_block_reads_its_input_s_channels():
    text = """\
        network t
        input image: f32[N, 3, 64, 64]
        block se(x, r = 4) {
            s = x -> global_avgpool -> conv(channels(x) // r, 1) -> relu -> conv(channels(x), 1) -> sigmoid
            return x * s
        }
        a = image -> conv(32, 3) -> se
        b = image -> conv(48, 3) -> se(r=8)
        output a, b
        """
    g = ok(text)
    assert g.node("a.1.s.1").output.channels == 8 and g.node("a.1.s.3").output.channels == 32
    assert g.node("b.1.s.1").output.channels == 6 and g.node("b.1.s.3").output.channels == 48


def test_a_head_upsamples_to_the_input_s_size_whatever_it_is():
    text = """\
        network t
        input image: f32[N, 3, 64, 48]
        f = image -> conv(8, 3, stride=4, padding=1)
        y = f -> upsample(size=spatial(image), mode="bilinear")
        output y
        """
    assert ok(text).node("y").output.shape == ("N", 8, 64, 48)
    assert ok(text, inputs={"image": [1, 3, 100, 80]}).node("y").output.shape == (1, 8, 100, 80)


def test_size_reads_one_axis_by_letter_or_index_and_counts_a_repeat():
    text = """\
        network t
        input x: f32[N, 6, 10, 12]
        y = x -> repeat(size(x, "C") // 2) { relu } -> conv(size(x, -1), 1)
        output y
        """
    g = ok(text)
    assert [n.name for n in g if n.layer is not None] == ["y.0", "y.1", "y.2", "y.3"]  # 3 relus, then the conv
    assert g.node("y.3").output.channels == 12


def test_a_query_of_a_plain_value_or_a_failed_tensor():
    result = compile_text("network t\ninput x: f32[N, 3, 8, 8]\ny = x -> conv(channels(3), 1)\noutput y\n")
    [d] = [d for d in result.diagnostics.items if d.severity == "error"]
    assert "`channels` reads a tensor's type: its first argument is a tensor" in d.message
    # the conv fails (a 9-wide kernel on 8 pixels): that one error, not another for the query
    result = compile_text("network t\ninput x: f32[N, 3, 8, 8]\na = x -> conv(4, 9)\n"
                          "y = x -> conv(channels(a), 1)\noutput y\n")
    assert [d.message.split(":")[0] for d in result.diagnostics.items if d.severity == "error"] == ["conv"]
    result = compile_text('network t\ninput x: f32[N, 3, 8, 8]\ny = x -> conv(size(x, "D"), 1)\noutput y\n')
    [d] = [d for d in result.diagnostics.items if d.severity == "error"]
    assert 'has no axis "D"' in d.message


def test_a_binding_a_block_computes_but_does_not_return_is_warned_once_for_every_instance():
    # ShuffleNet's stride-1 unit written over the stride-2 one: `branch1` is still built, with
    # its parameters and MACs, in every instance; the warning says so once, at the binding.
    result = compile_text("""\
        input x: f32[N, 8, 16, 16]
        block unit(x, c) {
            branch1 = x -> conv(c, 1)
            x1, x2 = x -> chunk(2)
            branch2 = x2 -> conv(c // 2, 1)
            return concat(x1, branch2) -> channel_shuffle(2)
        }
        y = x -> unit(8) -> unit(8) -> unit(8)
        output y
    """)
    assert result.ok
    warnings = [d for d in result.diagnostics.items if d.severity == "warning"]
    assert [w.message for w in warnings] == [
        "`branch1` is computed in block `unit` but its `return` does not use it"]
    assert (warnings[0].span.line, warnings[0].span.column) == (3, 5)
    assert "still built and counted" in warnings[0].hint


def test_bindings_a_block_chooses_between_or_passes_through_are_not_warned():
    result = compile_text("""\
        input x: f32[N, 8, 16, 16]
        block basic(x, c, down = false) {
            y = x -> conv(c, 3, padding=1)
            shortcut = (x -> conv(c, 1)) if down else x
            gate = y -> sigmoid
            return y * gate + shortcut
        }
        z = x -> basic(8) -> basic(16, down=true)
        output z
    """)
    assert result.ok and not [d for d in result.diagnostics.items if d.severity == "warning"]
