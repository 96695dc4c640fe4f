"""The parser: every grammar construct becomes the right AST node, with the right span."""

from __future__ import annotations

import ast as pyast
import textwrap

import pytest
from hypothesis import given, settings, strategies as st

from netspec import syntax as S
from netspec.parser import parse


def statements(text: str, file: str = "t.net") -> list:
    module = parse(textwrap.dedent(text), file)
    assert isinstance(module, S.Module)
    return module.statements


def only(text: str):
    (statement,) = statements(text)
    return statement


def value_of(text: str):
    """The right-hand side of a single binding `v = <text>`."""
    binding = only(f"v = {text}\n")
    assert isinstance(binding, S.Binding)
    assert binding.name.name == "v"
    return binding.value


def callee_names(chain: S.Chain) -> list[str]:
    return [stage.callee.name for stage in chain.stages]


def kwargs(call: S.Call) -> dict:
    return {a.name.name: a.value for a in call.args if a.name is not None}


def positional(call: S.Call) -> list:
    return [a.value for a in call.args if a.name is None]


# ---------------------------------------------------------------- whole files


def test_parse_returns_a_module_with_the_file_name():
    module = parse("network tiny\n", "some/dir/tiny.net")
    assert isinstance(module, S.Module)
    assert module.path == "some/dir/tiny.net"
    assert len(module.statements) == 1
    assert module.statements[0].span.file == "some/dir/tiny.net"


@pytest.mark.parametrize("text", ["", "\n", "\n\n\n", "# only a comment\n", "  # indented comment\n\n"])
def test_empty_and_comment_only_files_have_no_statements(text):
    assert parse(text, "e.net").statements == []


def test_file_without_trailing_newline():
    stmts = statements("network a\noutput y")
    assert [type(s) for s in stmts] == [S.NetworkHeader, S.Output]


def test_crlf_line_endings():
    stmts = statements("network a\r\ninput x: f32[N, 3]\r\ny = x\r\n    -> relu\r\noutput y\r\n")
    assert [type(s) for s in stmts] == [S.NetworkHeader, S.InputDecl, S.Binding, S.Output]
    chain = stmts[2].value
    assert isinstance(chain, S.Chain) and callee_names(chain) == ["relu"]
    assert chain.stages[0].span.line == 4


def test_statement_kinds_in_order():
    stmts = statements("""\
        network n
        use "lib.net"
        input x: f32[N, 3, 8, 8]
        block b(t) {
            return t
        }
        y = x -> b
        output y
    """)
    assert [type(s) for s in stmts] == [S.NetworkHeader, S.Use, S.InputDecl, S.BlockDef,
                                        S.Binding, S.Output]


# ---------------------------------------------------------------- network header


def test_network_header_without_params():
    header = only("network lenet5\n")
    assert isinstance(header, S.NetworkHeader)
    assert header.name.name == "lenet5"
    assert header.params == []


def test_network_header_with_params_and_defaults():
    header = only("network resnet(classes = 1000, depth, width = 64 * 2, drop = 0.5, name = 'r')\n")
    assert header.name.name == "resnet"
    assert [p.name.name for p in header.params] == ["classes", "depth", "width", "drop", "name"]
    classes, depth, width, drop, name = (p.default for p in header.params)
    assert isinstance(classes, S.IntLit) and classes.value == 1000
    assert depth is None
    assert isinstance(width, S.BinOp) and width.op == "*"
    assert (width.left.value, width.right.value) == (64, 2)
    assert isinstance(drop, S.FloatLit) and drop.value == 0.5
    assert isinstance(name, S.StrLit) and name.value == "r"


def test_network_header_params_over_several_lines_with_trailing_comma():
    header = only("""\
        network n(
            a = 1,   # the first
            b = 2,
        )
    """)
    assert [(p.name.name, p.default.value) for p in header.params] == [("a", 1), ("b", 2)]
    assert header.span.line == 1 and header.span.end_line == 4


def test_empty_param_list():
    header = only("network n()\n")
    assert header.params == []


# ---------------------------------------------------------------- inputs


def test_input_declaration_dtype_dims_default_layout():
    decl = only("input image: f32[N, 3, 224, 224]\n")
    assert isinstance(decl, S.InputDecl)
    assert decl.name.name == "image"
    assert decl.dtype.name == "f32"
    assert isinstance(decl.dims[0], S.NameRef) and decl.dims[0].name == "N"
    assert [d.value for d in decl.dims[1:]] == [3, 224, 224]
    assert all(isinstance(d, S.IntLit) for d in decl.dims[1:])
    assert decl.layout is None


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_input_declaration_with_layout(layout):
    decl = only(f"input image: f32[N, 224, 224, 3] {layout}\n")
    assert decl.layout is not None and decl.layout.name == layout
    # the layout's own span covers exactly the word
    assert decl.layout.span.column == len("input image: f32[N, 224, 224, 3] ") + 1
    assert decl.layout.span.end_column == decl.layout.span.column + 4


@pytest.mark.parametrize("dtype", ["f16", "bf16", "f32", "f64", "i8", "u8", "i64", "bool"])
def test_input_dtypes(dtype):
    decl = only(f"input x: {dtype}[N, 4]\n")
    assert decl.dtype.name == dtype


def test_input_symbolic_and_expression_dims():
    decl = only("input seq: f32[B, width * 2, T,]\n")  # trailing comma allowed
    assert [type(d) for d in decl.dims] == [S.NameRef, S.BinOp, S.NameRef]
    assert decl.dims[0].name == "B" and decl.dims[2].name == "T"
    assert decl.dims[1].op == "*" and decl.dims[1].left.name == "width"


def test_input_int_dims_with_underscores():
    decl = only("input x: f32[N, 1_024]\n")
    assert decl.dims[1].value == 1024


def test_several_inputs():
    stmts = statements("""\
        input c4: f32[N, 1024, 32, 32]
        input c5: f32[N, 2048, 16, 16]
    """)
    assert [s.name.name for s in stmts] == ["c4", "c5"]
    assert [s.dims[1].value for s in stmts] == [1024, 2048]


# ---------------------------------------------------------------- bindings and chains


def test_binding_of_a_name():
    binding = only("y = x\n")
    assert isinstance(binding, S.Binding)
    assert binding.name.name == "y"
    assert isinstance(binding.value, S.NameRef) and binding.value.name == "x"


def test_simple_chain():
    chain = value_of("x -> conv(6, kernel=5) -> relu -> maxpool(2)")
    assert isinstance(chain, S.Chain)
    assert isinstance(chain.head, S.NameRef) and chain.head.name == "x"
    assert callee_names(chain) == ["conv", "relu", "maxpool"]
    relu = chain.stages[1]
    assert relu.args == [] and relu.label is None


def test_chain_spanning_lines_with_comments_and_blank_lines():
    stmts = statements("""\
        features = digits
            -> conv(6, kernel=5) -> relu   # first stage
            # a whole-line comment between stages

            -> maxpool(2)

              # indented comment, then a blank line

            -> conv(16, kernel=5)
        output features
    """)
    assert len(stmts) == 2
    binding, output = stmts
    chain = binding.value
    assert callee_names(chain) == ["conv", "relu", "maxpool", "conv"]
    assert [s.span.line for s in chain.stages] == [2, 2, 5, 9]
    assert binding.span.line == 1 and binding.span.end_line == 9
    assert isinstance(output, S.Output) and output.span.line == 10


def test_chain_continued_after_a_trailing_arrow():
    stmts = statements("""\
        y = x ->
            relu ->
            sigmoid
        output y
    """)
    assert callee_names(stmts[0].value) == ["relu", "sigmoid"]
    assert isinstance(stmts[1], S.Output)


def test_a_conditional_continues_before_else():
    stmts = statements("""\
        y = x -> conv(8, 1) if down
            # the other branch
            else x
        output y
    """)
    assert isinstance(stmts[0].value, S.Conditional) and len(stmts) == 2
    assert isinstance(stmts[1], S.Output)


def test_argument_list_spanning_lines():
    call = value_of("x -> conv(\n    64,      # channels\n    3,\n    stride=2,\n)").stages[0]
    assert [v.value for v in positional(call)] == [64, 3]
    assert kwargs(call)["stride"].value == 2


def test_a_new_statement_after_a_chain_is_not_a_continuation():
    stmts = statements("""\
        a = x -> relu
        b = a -> relu
    """)
    assert [s.name.name for s in stmts] == ["a", "b"]
    assert stmts[1].value.head.name == "a"


def test_head_can_be_a_call():
    call = value_of("conv(x, 8, 3)")
    assert isinstance(call, S.Call)
    assert call.callee.name == "conv" and call.label is None
    assert positional(call)[0].name == "x"
    assert [v.value for v in positional(call)[1:]] == [8, 3]


def test_labelled_call_as_head_of_chain():
    chain = value_of("lat: conv(x, 256, 1) -> relu")
    assert isinstance(chain.head, S.Call)
    assert chain.head.label.name == "lat" and chain.head.callee.name == "conv"


# ---------------------------------------------------------------- calls and literals


def test_positional_and_keyword_arguments():
    call = value_of("x -> conv(64, 3, stride=2, padding=1)").stages[0]
    assert isinstance(call, S.Call)
    assert [a.name for a in call.args[:2]] == [None, None]
    assert [v.value for v in positional(call)] == [64, 3]
    kw = kwargs(call)
    assert list(kw) == ["stride", "padding"]
    assert kw["stride"].value == 2 and kw["padding"].value == 1


def test_tuple_argument():
    call = value_of("x -> conv(8, kernel=(3, 5), padding=(1, 2, 1, 2))").stages[0]
    kernel = kwargs(call)["kernel"]
    assert isinstance(kernel, S.TupleExpr)
    assert [i.value for i in kernel.items] == [3, 5]
    assert [i.value for i in kwargs(call)["padding"].items] == [1, 2, 1, 2]


def test_one_element_tuple_needs_a_comma():
    call = value_of("x -> f(a=(3,), b=(3))").stages[0]
    a, b = kwargs(call)["a"], kwargs(call)["b"]
    assert isinstance(a, S.TupleExpr) and [i.value for i in a.items] == [3]
    assert isinstance(b, S.IntLit) and b.value == 3  # plain parentheses


def test_strings_with_both_quote_kinds():
    call = value_of("""x -> conv(8, 3, padding="same", mode='valid', q="it's", d='say "hi"')""").stages[0]
    kw = kwargs(call)
    assert all(isinstance(v, S.StrLit) for v in kw.values())
    assert kw["padding"].value == "same"
    assert kw["mode"].value == "valid"
    assert kw["q"].value == "it's"
    assert kw["d"].value == 'say "hi"'


def test_string_escapes():
    call = value_of(r'''x -> f(a="x\"y", b='p\'q', c="tab\there", d="back\\slash")''').stages[0]
    kw = kwargs(call)
    assert kw["a"].value == 'x"y'
    assert kw["b"].value == "p'q"
    assert kw["c"].value == "tab\there"
    assert kw["d"].value == "back\\slash"


def test_booleans():
    call = value_of("x -> conv(8, 3, bias=false, inplace=true)").stages[0]
    kw = kwargs(call)
    assert isinstance(kw["bias"], S.BoolLit) and kw["bias"].value is False
    assert isinstance(kw["inplace"], S.BoolLit) and kw["inplace"].value is True


@pytest.mark.parametrize("text, expected", [
    ("0.5", 0.5), ("1.", 1.0), (".25", 0.25), ("1e-5", 1e-5), ("2.5E3", 2500.0), ("3e2", 300.0),
])
def test_floats(text, expected):
    call = value_of(f"x -> f(p={text})").stages[0]
    p = kwargs(call)["p"]
    assert isinstance(p, S.FloatLit)
    assert p.value == pytest.approx(expected)


@pytest.mark.parametrize("text, expected", [("0", 0), ("42", 42), ("1_000", 1000),
                                            ("1_000_000", 1_000_000)])
def test_ints(text, expected):
    lit = value_of(text)
    assert isinstance(lit, S.IntLit) and lit.value == expected


def test_no_arguments_with_and_without_parentheses():
    chain = value_of("x -> relu() -> flatten")
    assert [s.args for s in chain.stages] == [[], []]


def test_trailing_comma_in_arguments():
    call = value_of("x -> conv(8, 3,)").stages[0]
    assert [v.value for v in positional(call)] == [8, 3]


def test_labels_on_stages():
    chain = value_of("x -> conv1: conv(64, 3) -> bn1: batchnorm -> relu")
    labels = [s.label.name if s.label else None for s in chain.stages]
    assert labels == ["conv1", "bn1", None]
    assert callee_names(chain) == ["conv", "batchnorm", "relu"]
    conv1 = chain.stages[0]
    # the label and the callee each have their own span
    line = "v = x -> conv1: conv(64, 3) -> bn1: batchnorm -> relu"
    assert conv1.label.span.column == line.index("conv1") + 1
    assert conv1.callee.span.column == line.index("conv(") + 1
    assert conv1.span.column == line.index("conv1") + 1  # the call's span starts at its label


def test_keyword_argument_value_can_be_an_expression():
    call = value_of("x -> conv(planes * 4, 3, stride=s + 1)").stages[0]
    first = positional(call)[0]
    assert isinstance(first, S.BinOp) and first.op == "*"
    assert first.left.name == "planes" and first.right.value == 4
    stride = kwargs(call)["stride"]
    assert stride.op == "+" and stride.left.name == "s"


def test_tensor_arguments_in_calls():
    call = value_of("concat(a, b, c, axis=\"C\")")
    assert [v.name for v in positional(call)] == ["a", "b", "c"]
    assert kwargs(call)["axis"].value == "C"


# ---------------------------------------------------------------- sub-chains and tensor operators


def test_parenthesised_sub_chain_added():
    expr = value_of("(c4 -> lat4: conv(256, 1)) + upsample(p5, 2)")
    assert isinstance(expr, S.BinOp) and expr.op == "+"
    assert isinstance(expr.left, S.Chain)
    assert expr.left.head.name == "c4" and expr.left.stages[0].label.name == "lat4"
    assert isinstance(expr.right, S.Call) and expr.right.callee.name == "upsample"


def test_parenthesised_sub_chain_as_head_and_argument():
    chain = value_of("(x -> relu) -> concat((x -> sigmoid), y)")
    assert isinstance(chain, S.Chain)
    assert isinstance(chain.head, S.Chain) and callee_names(chain.head) == ["relu"]
    concat = chain.stages[0]
    inner = positional(concat)[0]
    assert isinstance(inner, S.Chain) and callee_names(inner) == ["sigmoid"]
    assert positional(concat)[1].name == "y"


def test_nested_sub_chains():
    chain = value_of("((x -> relu) -> tanh) -> sigmoid")
    assert callee_names(chain) == ["sigmoid"]
    assert callee_names(chain.head) == ["tanh"]
    assert callee_names(chain.head.head) == ["relu"]


def test_arrow_binds_loosest():
    chain = value_of("a + b -> relu")
    assert isinstance(chain, S.Chain)
    assert isinstance(chain.head, S.BinOp) and chain.head.op == "+"
    assert (chain.head.left.name, chain.head.right.name) == ("a", "b")


def test_add_and_multiply_between_tensors():
    expr = value_of("a + b * gate")
    assert expr.op == "+" and expr.left.name == "a"
    assert expr.right.op == "*"
    assert (expr.right.left.name, expr.right.right.name) == ("b", "gate")


def test_residual_call_of_a_sum():
    call = value_of("relu(y + x)")
    assert isinstance(call, S.Call) and call.callee.name == "relu"
    (arg,) = positional(call)
    assert isinstance(arg, S.BinOp) and arg.op == "+"


# ---------------------------------------------------------------- arithmetic


def test_arithmetic_precedence_and_associativity():
    # 1 + 2 * 3 - 4 // 2 % 3  ==  (1 + (2 * 3)) - ((4 // 2) % 3)
    e = value_of("1 + 2 * 3 - 4 // 2 % 3")
    assert e.op == "-"
    assert e.left.op == "+" and e.left.left.value == 1
    assert e.left.right.op == "*"
    assert e.right.op == "%" and e.right.right.value == 3
    assert e.right.left.op == "//" and (e.right.left.left.value, e.right.left.right.value) == (4, 2)


def test_left_associative_subtraction_and_division():
    e = value_of("8 - 3 - 2")
    assert e.op == "-" and e.left.op == "-" and e.right.value == 2
    e = value_of("8 / 4 / 2")
    assert e.op == "/" and e.left.op == "/" and e.right.value == 2


def test_parentheses_override_precedence():
    e = value_of("(planes + 1) * 4")
    assert e.op == "*" and e.left.op == "+" and e.left.left.name == "planes"
    assert e.right.value == 4


def test_unary_minus():
    e = value_of("-a * 2")
    assert e.op == "*" and isinstance(e.left, S.Neg) and e.left.operand.name == "a"
    e = value_of("--3")
    assert isinstance(e, S.Neg) and isinstance(e.operand, S.Neg) and e.operand.operand.value == 3
    e = value_of("-(a + b)")
    assert isinstance(e, S.Neg) and e.operand.op == "+"
    e = value_of("4 - -1")
    assert e.op == "-" and isinstance(e.right, S.Neg)


def test_power_binds_tighter_than_unary_minus_and_groups_to_the_right():
    e = value_of("-2 ** 2")  # -(2 ** 2), as in Python
    assert isinstance(e, S.Neg) and e.operand.op == "**"
    e = value_of("2 ** 3 ** 2")  # 2 ** (3 ** 2)
    assert e.op == "**" and e.left.value == 2 and e.right.op == "**"
    e = value_of("d ** -0.5")
    assert e.op == "**" and e.left.name == "d" and isinstance(e.right, S.Neg)
    e = value_of("2 * k ** 2")  # 2 * (k ** 2)
    assert e.op == "*" and e.right.op == "**"


def test_power_continues_a_line():
    e = value_of("2 **\n    3")
    assert e.op == "**" and e.right.value == 3


def test_negative_keyword_value():
    call = value_of("x -> softmax(axis=-1)").stages[0]
    axis = kwargs(call)["axis"]
    assert isinstance(axis, S.Neg) and axis.operand.value == 1


def _from_netspec(node) -> tuple:
    if isinstance(node, S.IntLit):
        return ("int", node.value)
    if isinstance(node, S.NameRef):
        return ("name", node.name)
    if isinstance(node, S.Neg):
        return ("neg", _from_netspec(node.operand))
    if isinstance(node, S.BinOp):
        return (node.op, _from_netspec(node.left), _from_netspec(node.right))
    raise AssertionError(f"unexpected node {node!r}")


_PY_OPS = {pyast.Add: "+", pyast.Sub: "-", pyast.Mult: "*", pyast.Div: "/",
           pyast.FloorDiv: "//", pyast.Mod: "%", pyast.Pow: "**"}


def _from_python(node) -> tuple:
    if isinstance(node, pyast.Constant):
        return ("int", node.value)
    if isinstance(node, pyast.Name):
        return ("name", node.id)
    if isinstance(node, pyast.UnaryOp) and isinstance(node.op, pyast.USub):
        return ("neg", _from_python(node.operand))
    if isinstance(node, pyast.BinOp):
        return (_PY_OPS[type(node.op)], _from_python(node.left), _from_python(node.right))
    raise AssertionError(f"unexpected node {pyast.dump(node)}")


_atoms = st.one_of(st.integers(0, 999).map(str), st.sampled_from(["a", "b", "planes", "k"]))


def _compose(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]), children)
        .map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        children.map(lambda s: f"-{s}"),
        children.map(lambda s: f"({s})"),
    )


@settings(max_examples=60, deadline=None)
@given(st.recursive(_atoms, _compose, max_leaves=8))
def test_arithmetic_parses_like_python(expr):
    """Scalar arithmetic has Python's precedence and associativity (Python's parser is the oracle)."""
    ours = _from_netspec(value_of(expr))
    theirs = _from_python(pyast.parse(expr, mode="eval").body)
    assert ours == theirs


# ---------------------------------------------------------------- blocks


def test_block_with_params_defaults_body_and_return():
    block = only("""\
        block basic(x, planes, stride = 1, expansion = planes * 4) {
            y = x -> conv1: conv(planes, 3, stride=stride, padding=1, bias=false) -> bn1: batchnorm -> relu
                  -> conv2: conv(planes, 3, padding=1, bias=false) -> bn2: batchnorm
            # a comment inside the block

            return relu(y + x)
        }
    """)
    assert isinstance(block, S.BlockDef)
    assert block.name.name == "basic"
    assert [p.name.name for p in block.params] == ["x", "planes", "stride", "expansion"]
    assert block.params[0].default is None and block.params[1].default is None
    assert block.params[2].default.value == 1
    assert block.params[3].default.op == "*"
    (binding,) = block.body
    assert binding.name.name == "y"
    assert [s.label.name for s in binding.value.stages if s.label] == ["conv1", "bn1", "conv2", "bn2"]
    (ret,) = block.returns
    assert isinstance(ret, S.Return) and ret.span.line == 6
    assert isinstance(ret.value, S.Call) and ret.value.callee.name == "relu"
    assert block.span.line == 1 and block.span.end_line == 7


def test_one_line_block():
    block = only("block ident(t) { return t }\n")
    assert block.body == [] and block.returns[0].value.name == "t"


def test_block_with_several_bindings():
    block = only("""\
        block se(x, c, r = 16) {
            s = x -> global_avgpool -> conv(c // r, 1) -> relu -> conv(c, 1) -> sigmoid
            g = x * s
            return g
        }
    """)
    assert [b.name.name for b in block.body] == ["s", "g"]
    assert block.body[1].value.op == "*"
    reduced = positional(block.body[0].value.stages[1])[0]
    assert reduced.op == "//" and reduced.left.name == "c" and reduced.right.name == "r"


def test_block_without_params_list_is_a_syntax_error():
    from netspec.diagnostics import NetspecError
    with pytest.raises(NetspecError):
        parse("block b {\n return x\n}\n", "t.net")


# ---------------------------------------------------------------- repeat


def test_repeat_stage():
    chain = value_of("x -> repeat(3) { conv(64, 3, padding=1) -> relu } -> maxpool(2)")
    repeat = chain.stages[0]
    assert isinstance(repeat, S.Repeat)
    assert repeat.label is None
    assert repeat.count.value == 3
    assert [s.callee.name for s in repeat.stages] == ["conv", "relu"]
    assert chain.stages[1].callee.name == "maxpool"


def test_labelled_repeat_with_expression_count():
    chain = value_of("stem -> layer1: repeat(blocks - 1) { basic(64) }")
    repeat = chain.stages[0]
    assert isinstance(repeat, S.Repeat)
    assert repeat.label.name == "layer1"
    assert repeat.count.op == "-" and repeat.count.left.name == "blocks"
    assert repeat.stages[0].callee.name == "basic"


def test_repeat_spanning_lines_and_nested():
    chain = value_of("x -> repeat(2) {\n    conv(8, 3)\n    -> repeat(2) { relu }\n    -> c: tanh\n}")
    outer = chain.stages[0]
    assert [type(s) for s in outer.stages] == [S.Call, S.Repeat, S.Call]
    assert outer.stages[1].count.value == 2 and outer.stages[1].stages[0].callee.name == "relu"
    assert outer.stages[2].label.name == "c"
    assert outer.span.line == 1 and outer.span.end_line == 5


# ---------------------------------------------------------------- use and output


def test_use():
    use = only('use "blocks/resnet.net"\n')
    assert isinstance(use, S.Use)
    assert isinstance(use.path, S.StrLit) and use.path.value == "blocks/resnet.net"
    assert (use.path.span.line, use.path.span.column) == (1, 5)


def test_use_with_single_quotes():
    assert only("use 'other.net'\n").path.value == "other.net"


def test_single_and_several_outputs():
    out = only("output logits\n")
    assert isinstance(out, S.Output) and [n.name for n in out.names] == ["logits"]
    out = only("output p4, p5, p6\n")
    assert [n.name for n in out.names] == ["p4", "p5", "p6"]
    assert [n.span.column for n in out.names] == [8, 12, 16]


# ---------------------------------------------------------------- comments


def test_comments_everywhere():
    stmts = statements("""\
        # header comment
        network n(c = 10)   # trailing
        input x: f32[N, 3, 8, 8]  # N is symbolic
        y = x -> conv(   # inside an argument list
            c, 3)       # after
        output y
        # final comment""")
    assert [type(s) for s in stmts] == [S.NetworkHeader, S.InputDecl, S.Binding, S.Output]
    call = stmts[2].value.stages[0]
    assert positional(call)[0].name == "c" and positional(call)[1].value == 3


def test_hash_inside_a_string_is_not_a_comment():
    call = value_of('x -> f(s="a # b")').stages[0]
    assert kwargs(call)["s"].value == "a # b"


# ---------------------------------------------------------------- spans


def test_spans_of_a_binding_and_its_parts():
    text = "    y = x -> conv(64, kernel=3) -> relu\n"
    (binding,) = parse(text, "t.net").statements  # not dedented: the indent counts
    assert (binding.span.line, binding.span.column) == (1, 5)
    assert (binding.name.span.column, binding.name.span.end_column) == (5, 6)
    chain = binding.value
    assert (chain.head.span.column, chain.head.span.end_column) == (9, 10)
    conv = chain.stages[0]
    col = text.index("conv") + 1
    assert (conv.span.line, conv.span.column) == (1, col)
    assert conv.span.end_column == text.index(") ->") + 2  # exclusive, past `)`
    assert (conv.callee.span.column, conv.callee.span.end_column) == (col, col + 4)
    kernel = conv.args[1]
    assert kernel.name.name == "kernel"
    assert kernel.name.span.column == text.index("kernel") + 1
    assert kernel.value.span.column == text.index("3)") + 1
    relu = chain.stages[1]
    assert (relu.span.column, relu.span.end_column) == (text.index("relu") + 1, text.index("relu") + 5)
    assert binding.span.end_column == len(text.rstrip("\n")) + 1


def test_spans_across_lines():
    text = "network n\n\ninput x: f32[N, 3, 8, 8]\nfeat = x\n    -> conv(8, 3)\n\n    -> relu\noutput feat\n"
    stmts = statements(text)
    header, decl, binding, out = stmts
    assert header.span.line == 1
    assert (decl.span.line, decl.span.column) == (3, 1)
    assert decl.name.span == decl.name.span.__class__("t.net", 3, 7, 3, 8)
    assert [d.span.column for d in decl.dims] == [14, 17, 20, 23]
    assert (binding.span.line, binding.span.end_line) == (4, 7)
    conv, relu = binding.value.stages
    assert (conv.span.line, conv.span.column) == (5, 8)
    assert (relu.span.line, relu.span.column) == (7, 8)
    assert out.span.line == 8 and out.names[0].span.column == 8


def test_spans_of_literals_and_operators():
    text = "v = (a + 12) * -b\n"
    e = only(text).value
    assert e.span.column == 5 and e.span.end_column == len(text)
    plus = e.left
    assert (plus.span.column, plus.span.end_column) == (6, 12)
    assert (plus.right.span.column, plus.right.span.end_column) == (10, 12)
    neg = e.right
    assert (neg.span.column, neg.span.end_column) == (16, 18)


def test_spans_in_a_block_and_a_repeat():
    text = "block b(t, p = 2) {\n  return t -> repeat(p) { relu }\n}\n"
    block = only(text)
    assert block.name.span.column == 7
    assert [(p.name.span.column) for p in block.params] == [9, 12]
    ret = block.returns[0]
    assert (ret.span.line, ret.span.column) == (2, 3)
    repeat = ret.value.stages[0]
    line = text.splitlines()[1]
    assert (repeat.span.line, repeat.span.column) == (2, line.index("repeat") + 1)
    assert repeat.count.span.column == line.index("p)") + 1
    assert repeat.stages[0].span.column == line.index("relu") + 1


def test_columns_count_characters_not_bytes():
    text = 'v = f(s="été", t=x)\n'
    call = only(text).value
    t = kwargs(call)["t"]
    assert t.span.column == text.index("x)") + 1


def test_arrow_inside_a_comment_line_is_not_code():
    """A full-line comment that contains `->` neither continues a chain nor breaks the parse."""
    from netspec.compiler import compile_file

    text = ("network t\ninput x: f32[N, 3, 8, 8]\n# a -> b\ny = x -> relu\n# note -> sigmoid\n"
            "    # indented -> tanh\n  -> conv(4, 1)  # trailing -> comment\noutput y\n")
    result = compile_file("t.net", text=text)
    assert result.ok, [d.message for d in result.diagnostics.items]
    assert [n.kind for n in result.graph if n.layer is not None] == ["relu", "conv"]


# ---------------------------------------------------------------- look-alike characters


def syntax_errors(text: str) -> list:
    from netspec.diagnostics import NetspecError

    with pytest.raises(NetspecError) as caught:
        parse(textwrap.dedent(text), "t.net")
    return caught.value.diagnostics


def test_lookalikes_are_all_found_before_parsing_one_error_per_kind():
    found = syntax_errors("y = x \u2013> relu\nz = conv(8\uff0c 3)\nw = y \u2014> relu\n")
    assert len(found) == 2  # the dashes are one mistake, the full-width comma another
    dash, comma = found
    assert (dash.span.line, dash.span.column, dash.span.end_column) == (1, 7, 8)
    assert "en dash `\u2013` (U+2013)" in dash.message and dash.hint == "write `->`"
    assert dash.notes == ["the same mistake is also at 3:7 (`\u2014`) (2 in all)"]
    assert (comma.span.line, comma.span.column) == (2, 11)
    assert "U+FF0C" in comma.message and comma.hint == "write `,`"


def test_lookalikes_in_comments_and_strings_are_left_alone():
    module = parse('# ResNet \u2013 \u201cdeep\u201d\nuse "caf\u00e9.net"  # \u00d7 2\n', "t.net")
    assert len(module.statements) == 1


@pytest.mark.parametrize("text, column, words, hint", [
    ("v = 3 \u2212 1\n", 7, "minus sign `\u2212` (U+2212)", "write `-`"),
    ("v = f(\u201csame\u201d)\n", 7, "curly quotes", 'write `"same"`'),
    ("v = f('same\u2019)\n", 12, "closed with right single quotation mark", "write `'same'`"),
    ("v =\u00a0f(1)\n", 4, "no-break space (U+00A0)", "write an ordinary space (ASCII 32)"),
    ("v = f(1)\u200b\n", 9, "invisible zero width space (U+200B)", "delete it"),
    ("v = f(1)\n\ufeffw = 2\n", 1, "byte-order mark (U+FEFF) in the middle", "delete it"),
    ("v = 3 \u00d7 3\n", 7, "multiplication sign `\u00d7` (U+00D7) between two sizes", "`(3, 3)`"),
    ("v = f\uff081)\n", 6, "fullwidth left parenthesis", "write `(`"),
    ("v = r\u0435lu\n", 6, "cyrillic small letter ie", "write `e`"),
    ("v = 2\u00b2\n", 6, "superscript two", "write `** 2`"),
    ("v = \x01\n", 5, "control character (U+0001)", "delete it"),
])
def test_each_lookalike_is_named_with_its_code_point_and_the_ascii_to_write(text, column, words, hint):
    (d,) = syntax_errors(text)
    assert d.span.column == column, d
    assert words in d.message, d.message
    assert hint in d.hint, d.hint


def test_a_run_of_one_character_is_one_place():
    (d,) = syntax_errors("block b(t) {\n\u00a0\u00a0\u00a0\u00a0return t\n}\n")
    assert (d.span.line, d.span.column, d.span.end_column) == (2, 1, 5)
    assert d.message.startswith("4 no-break spaces (U+00A0)")


# ---------------------------------------------------------------- other languages' habits


@pytest.mark.parametrize("line, culprit, words, hint", [
    ("// stem", "//", "a comment starts with `#`", "write `# stem`"),
    ("v = x -> relu  // first block", "//", "a comment starts with `#`", "write `# first block`"),
    ("v = c // 2 // half the width", "// half", "a comment starts with `#`", "write `# half the width`"),
    ("/* stem */", "/*", "C comment", "write `# stem`"),
    ("v = x if a && b else y", "&&", "`&&` is written `and`", "write `and`"),
    ("v = x if a || b else y", "||", "`||` is written `or`", "write `or`"),
    ("v = x if !down else y", "!", "`!` is written `not`", "write `not down`"),
    ("v = x if s = 1 else y", "= 1", "compares with `==`", "write `s == 1`"),
    ("v = f(stride=[4, 4])", "[", "`[4, 4]` is a list", "write `(4, 4)`"),
    ("v = f(8, 3x3)", "3x3", "`3x3` is not a number", "`(3, 3)`"),
    ("v = Conv2D(64, 3)(x)", "Conv2D", "Keras's functional style", "write `x -> conv(64, 3)`"),
    ("v = x -> nn.Conv2d(3, 64, 3)", "nn.", "`nn.Conv2d` is PyTorch's name", "write `conv(64, 3)`"),
    ("v = x -> layers.Dense(10)", "layers", "`layers.Dense` is Keras's name", "write `linear(10)`"),
    ("v = F.max_pool2d(x, 2)", "F.", "PyTorch's function; netspec's layer is `maxpool`", "write `maxpool(x, 2)`"),
    ("v = x.shape", "x.", "names have no `.`", None),
    ("v = x.view(x.size(0), -1)", "x.", "a tensor method in PyTorch", "write `x -> flatten`"),
    ("self.conv1 = nn.Conv2d(3, 64, 3)", "self", "PyTorch module's attribute", "`x -> conv1: conv(64, 3)`"),
    ("v = 2 ^ 3", "^", "unexpected character `^`", "`**`"),
])
def test_habits_of_other_languages_are_named_with_the_fix(line, culprit, words, hint):
    (d,) = syntax_errors(line + "\n")
    assert d.span.column == line.index(culprit) + 1, d
    assert words in d.message, d.message
    if hint is not None:
        assert hint in d.hint, d.hint


def test_floor_division_is_still_floor_division():
    e = value_of("c // 2")
    assert e.op == "//"


# ---------------------------------------------------------------- PyTorch's parameters netspec has no use for


def reread(kind: str, positional: list, keywords: dict):
    """The ArgumentError a call's attributes get, in PyTorch's words where it reads as PyTorch's."""
    from netspec import habits
    from netspec.layers import LAYERS, ArgumentError

    with pytest.raises(ArgumentError) as caught:
        LAYERS[kind].from_arguments(positional, keywords)
    return habits.reread(LAYERS[kind], positional, keywords, caught.value)


@pytest.mark.parametrize("kind, positional, keywords, culprit, words, hint", [
    ("relu", [], {"inplace": True}, "inplace", "nothing is computed in place", "write `relu`"),
    ("dropout", [], {"p": 0.5, "inplace": True}, "inplace", "`inplace` has no meaning", "write `dropout(p=0.5)`"),
    ("leaky_relu", [0.2], {"inplace": False}, "inplace", "`inplace`", "write `leaky_relu(0.2)`"),
    ("conv", [8, 3], {"padding_mode": "zeros"}, "padding_mode", "conv pads with zeros", "write `conv(8, 3)`"),
    ("conv", [8, 3], {"padding": 1, "padding_mode": "reflect"}, "padding_mode", "pads with zeros",
     'write `pad(1, mode="reflect") -> conv(8, 3)`'),
    ("conv", [8, 5], {"padding": "same", "padding_mode": "replicate", "dilation": 2}, "padding_mode",
     "pads with zeros", 'write `pad(4, mode="replicate") -> conv(8, 5, dilation=2)`'),
    ("conv", [8, 4], {"padding": "same", "padding_mode": "circular"}, "padding_mode", "pads with zeros",
     'write `pad((1, 1, 2, 2), mode="circular") -> conv(8, 4)`'),
    ("conv", [8, 3], {"padding_mode": "reflect"}, "padding_mode", "pads with zeros",
     "with no padding the mode changes nothing: write `conv(8, 3)`"),
    ("conv_transpose", [8, 3], {"padding_mode": "zeros"}, "padding_mode", "the one mode", "write `conv_transpose(8, 3)`"),
    ("relu", [True], {}, 0, "`true` is PyTorch's `inplace`, which has no meaning", "write `relu`"),
    ("dropout", [0.2, True], {}, 1, "PyTorch's `inplace`", "write `dropout(0.2)`"),
    ("sigmoid", [2], {}, 0, "sigmoid takes no attributes, but got `2`", "write `sigmoid`"),
    ("conv", [8, 3], {"device": "cuda", "stride": 2}, "device", "not where it runs", "write `conv(8, 3, stride=2)`"),
    ("linear", [10], {"dtype": "float16"}, "dtype", "its input's dtype", "write `cast(f16) -> linear(10)`"),
    ("maxpool", [2], {"return_indices": True}, "return_indices", "pooled values only", "write `maxpool(2)`"),
    ("pad", [], {"pad": (1, 1, 2, 0)}, "pad", "(left, right, top, bottom)", "write `pad((2, 1, 0, 1))`"),
    ("pad", [], {"pad": (1, 2), "mode": "reflect"}, "pad", "from the last axis back",
     'write `pad((0, 1, 0, 2), mode="reflect")`'),
])
def test_pytorch_parameters_netspec_has_no_use_for_are_named(kind, positional, keywords, culprit, words, hint):
    error = reread(kind, positional, keywords)
    assert error.arg == culprit
    assert words in error.message, error.message
    assert hint in error.hint, error.hint


def test_every_pytorch_keyword_of_the_kind_is_left_out_of_the_corrected_call():
    error = reread("conv", [8, 3], {"inplace": True, "device": "cpu", "padding": 1})
    assert error.arg == "inplace"
    assert error.hint == "leave it out: write `conv(8, 3, padding=1)`"


def test_netspecs_own_attributes_are_never_taken_for_pytorchs():
    from netspec import habits
    from netspec.layers import LAYERS

    assert habits.pytorch_trap(LAYERS["cast"], "dtype") is None       # cast's alias for `to`
    assert habits.pytorch_trap(LAYERS["pad"], "padding") is None
    assert habits.pytorch_trap(LAYERS["relu"], "stride") is None      # a plain unknown keyword


@pytest.mark.parametrize("value, hint", [
    ("half", "`\"half\"` is PyTorch's name for f16: write `cast(f16)`"),
    ("float", "`\"float\"` is PyTorch's name for f32 (NumPy's `float` is f64): write `cast(f32)`"),
    ("double", "name for f64: write `cast(f64)`"),
    ("long", "PyTorch's name for i64: write `cast(i64)`"),
    ("int64", "write `cast(i64)`"),
    ("float16", "write `cast(f16)`"),
    ("fp16", 'did you mean "f16"? write `cast(f16)`'),
])
def test_a_cast_to_another_tools_dtype_name_gets_netspecs(value, hint):
    error = reread("cast", [value], {})
    assert error.message.startswith("cast: `to` must be a dtype")
    assert hint in error.hint, error.hint


def test_a_cast_to_an_unknown_dtype_keeps_its_plain_message():
    error = reread("cast", ["complex64"], {})
    assert error.hint is None or "write" not in error.hint


@pytest.mark.parametrize("line, hint, note", [
    ("v = torch.flatten(x, 1)", "write `flatten(x, start_dim=1)`", None),   # netspec's flatten takes it
    ("v = F.relu(x, inplace=True)", "write `relu(x)`", None),
    ("v = F.pad(x, (1, 1, 2, 0))", "write `pad(x, (2, 1, 0, 1))`", "the sizes are reordered"),
    ("v = F.pad(x, (1, 2), \"reflect\")", "write `pad(x, (0, 1, 0, 2), mode=\"reflect\")`", "reordered"),
    ("v = x -> nn.ZeroPad2d((1, 1, 2, 0))", "write `pad((2, 1, 0, 1))`", "reordered"),
    ("v = x -> nn.Conv2d(3, 8, 3, padding=1, padding_mode=\"reflect\")",
     "write `pad(1, mode=\"reflect\") -> conv(8, 3)`", "becomes a `pad` layer before the conv"),
    ("v = x -> nn.Conv2d(3, 8, 3, padding_mode=\"zeros\")", "write `conv(8, 3)`", "conv pads with zeros"),
    ("v = x -> nn.Flatten(start_dim=1)", "write `flatten(1)`", None),
    ("v = x -> nn.Unflatten(1, (2, 8))", "write `unflatten(1, (2, 8))`", None),
    ("v = x -> nn.ChannelShuffle(2)", "write `channel_shuffle(2)`", None),
    ("v = torch.chunk(x, 2, dim=1)", "write `chunk(x, 2, axis=1)`", None),
    ("v = x -> nn.MaxPool2d(2, return_indices=True)", "write `maxpool(2)`", "pooled values only"),
])
def test_pytorch_calls_are_translated_without_what_netspec_has_no_use_for(line, hint, note):
    (d,) = syntax_errors(line + "\n")
    assert d.hint == hint, d.hint
    if note is not None:
        assert any(note in n for n in d.notes), d.notes


# ---------------------------------------------------------------- other languages' statements


@pytest.mark.parametrize("text, line, culprit, words, hint", [
    ("v = x -> relu    // widen\n", 1, "//", "a comment starts with `#`", "write `# widen`"),
    ("output v  // logits\n", 1, "//", "a comment starts with `#`", "write `# logits`"),
    ("def basic(x, planes: int, stride=1) -> Tensor:\n    return x\n", 1, "def",
     "blocks are written `block basic(x, planes, stride = 1) { ... return ... }`",
     "write `block basic(x, planes, stride = 1) {` here"),
    ("def block1(self, x):\n", 1, "def", "`block block1(x) {", "`block block1(x) {`"),
    ("def forward(self, x):\n", 1, "def", "PyTorch module's method", "`output y`"),
    ("class Net(nn.Module):\n", 1, "class", "netspec has no classes", "write `network Net`"),
    ("import torch\n", 1, "import", "`import` is Python's", "delete this line"),
    ("from lib.blocks import basic\n", 1, "from", "`from` is Python's", 'write `use "lib/blocks.net"`'),
    ("v = f(1)\nreturn v\n", 2, "return", "a network names its results with `output`", "write `output v`"),
    ("v = f(1)\nreturn a, b\n", 2, "return", "with `output`", "write `output a, b`"),
    ("return x -> relu\n", 1, "return", "with `output`", "`out = x -> relu`, then `output out`"),
    ("block b(x) {\n  y = x\n}\n  return y\n}\n", 4, "return", "the `}` at line 3 ends the block",
     "move the `}` of line 3 after this line"),
    ("use lib/blocks.net\n", 1, "lib", "the path after `use` is a string", 'write `use "lib/blocks.net"`'),
    ("use <blocks.net>  # mine\n", 1, "<", "is a string", 'write `use "blocks.net"`'),
    ("network resnet-18\n", 1, "resnet", "`resnet-18` is not a name", "write `network resnet_18`"),
    ("input my-image: f32[N, 3, 8, 8]\n", 1, "my", "`my-image` is not a name", "write `input my_image`"),
    ("conv-out = x -> relu\n", 1, "conv", "letters, digits and `_`", "write `conv_out`"),
    ("v = x -> cast(torch.float32)\n", 1, "torch", "PyTorch's name for a dtype; netspec writes it `f32`",
     "write `cast(f32)`"),
    ("v = x -> cast(dtype=np.float16)\n", 1, "np", "NumPy's name for a dtype", "write `cast(f16)`"),
    ("v = x -> cast(np.float64)\n", 1, "np", "writes it `f64`", "write `cast(f64)`"),
    ("v = x -> cast(torch.int)\n", 1, "torch", "writes it `i32`", "write `cast(i32)`"),
    ("input x: torch.float16[N, 3]\n", 1, "torch", "writes it `f16`", "write `f16`"),
    ("v = x.to(torch.float16)\n", 1, "x.to", "tensor method in PyTorch", "write `x -> cast(f16)`"),
    ("v = x.to(\"half\")\n", 1, "x.to", "tensor method in PyTorch", "write `x -> cast(f16)`"),
    ("v = x.half()\n", 1, "x.half", "converts with the `cast` layer", "write `x -> cast(f16)`"),
    ("v = x.long()\n", 1, "x.long", "converts with the `cast` layer", "write `x -> cast(i64)`"),
])
def test_statements_of_other_languages_are_named_with_the_fix(text, line, culprit, words, hint):
    (d,) = syntax_errors(text)
    assert (d.span.line, d.span.column) == (line, text.splitlines()[line - 1].index(culprit) + 1), d
    assert words in d.message, d.message
    assert hint in d.hint, d.hint


@pytest.mark.parametrize("text", [
    "v = c // half\n",                  # a floor division by a name: the parser takes it
    "v = a - b\nw = a-b\n",             # subtraction, spaced or not
    "block b(input) {\n  return input -> relu\n}\n",        # a parameter named `input`
    "network n(input = 3)\nv = input * 2\n",
    "v = x -> repeat(2, input) { conv(input + 1, 3) }\n",  # a round index named `input`
    "input image: f32[N, 3, 8, 8]  # the input\nv = image  # not the input\n",
])
def test_what_only_looks_like_another_languages_habit_parses(text):
    assert parse(text, "t.net").statements


def input_errors(text: str) -> list:
    """The errors of compiling `text` whose message is about the keyword `input` (the names
    are resolved when the spec is elaborated, not parsed)."""
    from netspec.compiler import compile_file

    result = compile_file("t.net", text=textwrap.dedent(text) + "output v\n")
    return [d for d in result.diagnostics.errors if "`input`" in d.message]


@pytest.mark.parametrize("text, hint", [
    ("input image: f32[N, 3, 8, 8]\nv = input -> relu\n", "the network's input is `image`: write `image`"),
    ("input a: f32[N, 3]\ninput b: f32[N, 3]\nv = input + a\n", "the inputs declared here are `a`, `b`"),
    ("v = input -> relu\n", "declare the input with a name"),
    ("input image: f32[N, 3, 8, 8]\nblock b(x, c) {\n  return input -> conv(c, 3)\n}\nv = image -> b(4)\n",
     "inside a block its input is a parameter: write `x`"),
])
def test_the_keyword_input_used_as_a_value_names_the_inputs(text, hint):
    (d,) = input_errors(text)
    assert d.message == "`input` declares an input; it is not a value"
    assert hint in d.hint, d.hint
    line = text.splitlines()[d.span.line - 1]
    assert line[d.span.column - 1:d.span.end_column - 1] == "input"


def test_input_used_twice_as_a_value_is_an_error_at_each_place():
    found = input_errors("input image: f32[N, 3, 8, 8]\nv = input -> relu\nw = input -> tanh\n")
    assert [d.span.line for d in found] == [2, 3]


@pytest.mark.parametrize("line, comment", [
    ("v = x -> relu  // größer", True),          # one word after a stage, not ASCII: no look-alike errors
    ("v = x -> c1: conv(8, (3, 3))  // wide", True),
    ("v = x -> conv(c // half, 3)", False),       # floor division inside the arguments
    ("v = x -> relu // 2", False),                # a number: no comment is clearly meant
    ("v = c // half", False),
])
def test_a_slash_comment_after_a_chains_last_stage_is_a_comment(line, comment):
    from netspec.habits import slash_comment

    assert slash_comment(line) == (line.index("//") if comment else None)


def test_a_one_word_comment_that_is_not_ascii_is_one_error():
    (d,) = syntax_errors("v = x -> relu  // größer\n")
    assert "a comment starts with `#`" in d.message and d.hint == "write `# größer`"
