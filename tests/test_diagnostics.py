"""Every mistake a user can make gives a located, explained diagnostic (never a traceback).

Expected lines and columns are counted on the source text itself (`col(line, needle)`), not
taken from netspec.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netspec.compiler import compile_file
from netspec.diagnostics import Diagnostic, render, render_all


def write(tmp_path: Path, text: str, name: str = "t.net") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def compile_text(tmp_path: Path, text: str, name: str = "t.net"):
    return compile_file(write(tmp_path, text, name))


def errors(result) -> list[Diagnostic]:
    return [d for d in result.diagnostics.items if d.severity == "error"]


def rendered(result) -> str:
    return render_all(result.diagnostics.items, result.diagnostics.sources)


def one_error(tmp_path: Path, text: str, name: str = "t.net") -> Diagnostic:
    result = compile_text(tmp_path, text, name)
    found = errors(result)
    assert len(found) == 1, rendered(result)
    assert not result.ok
    return found[0]


def col(line: str, needle: str, after: bool = False) -> int:
    """1-based column of `needle` in `line` (or just past its end)."""
    index = line.index(needle)
    return index + (len(needle) if after else 0) + 1


def at(d: Diagnostic, line: int, column: int) -> None:
    assert d.span is not None, d
    assert (d.span.line, d.span.column) == (line, column), d


HEAD = "network t\ninput x: f32[N, 3, 32, 32]\n"


# ================================================================ syntax errors


def test_missing_comma_between_arguments_points_just_after_previous_token(tmp_path):
    line = "y = x -> linear(4 5)"
    d = one_error(tmp_path, "network t\ninput x: f32[N, 3]\n" + line + "\noutput y\n")
    assert d.rule == "syntax"
    at(d, 3, col(line, "4", after=True))        # just after `4`
    assert "`,`" in d.message and "`4`" in d.message
    assert "5" in d.message
    assert d.hint is not None and "separated by `,`" in d.hint


def test_missing_arrow_between_stages(tmp_path):
    line = "y = x -> conv(4, 3) relu"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    assert d.rule == "syntax"
    at(d, 3, col(line, ")", after=True))
    assert "`->`" in d.message and "relu" in d.message
    assert d.hint is not None and "-> relu" in d.hint


def test_unclosed_parenthesis_at_end_of_file(tmp_path):
    line = "y = x -> conv(4, 3"
    d = one_error(tmp_path, HEAD + line + "\n")
    assert d.rule == "syntax"
    at(d, 3, col(line, "3", after=True))
    assert "end of the file" in d.message
    assert "`)`" in d.message
    assert d.hint is not None and "never closed" in d.hint
    assert f"line 3, column {col(line, '(')}" in d.hint


def test_unclosed_parenthesis_without_final_newline(tmp_path):
    path = tmp_path / "t.net"
    path.write_text(HEAD + "y = concat(x, x", encoding="utf-8")
    result = compile_file(path)
    (d,) = errors(result)
    at(d, 3, len("y = concat(x, x") + 1)
    assert "never closed" in d.hint and "column 11" in d.hint


@pytest.mark.parametrize("text, line, opener", [
    (HEAD + "y = x -> conv(4, 3\nz = y\noutput z\n", "y = x -> conv(4, 3", "("),
    ("network t\ninput x: f32[N, 3, 32, 32\ny = x\noutput y\n", "input x: f32[N, 3, 32, 32", "["),
], ids=["paren", "bracket"])
def test_unclosed_bracket_before_more_lines(tmp_path, text, line, opener):
    """The next line's first word is not a missing-comma mistake: the bracket is never closed."""
    d = one_error(tmp_path, text)
    number = text.splitlines().index(line) + 1
    at(d, number, len(line) + 1)       # just after the last token of the unfinished line
    assert d.hint is not None
    assert "never closed" in d.hint, d.hint
    assert f"line {number}, column {col(line, opener)}" in d.hint
    assert "separated by `,`" not in d.hint


def test_unclosed_block_brace(tmp_path):
    text = HEAD + "block b(t) {\n    return t\n\ny = x -> b\noutput y\n"
    result = compile_text(tmp_path, text)
    d = errors(result)[0]
    assert d.rule == "syntax"
    # the mistake is the `{` of line 3 that is never closed, not a chain continuation
    assert "`{`" in d.message and "line 3" in d.message, d.message
    assert d.hint is not None and "`}`" in d.hint, d.hint
    assert "continues a chain" not in d.hint


def test_stray_semicolon(tmp_path):
    line = "input x: f32[N, 3, 8, 8];"
    d = one_error(tmp_path, "network t\n" + line + "\ny = x -> relu\noutput y\n")
    at(d, 2, col(line, ";"))
    assert "unexpected character `;`" in d.message
    assert d.hint is not None and "no `;` is needed" in d.hint


@pytest.mark.parametrize("char", ["$", "!", "?", "~"])
def test_unexpected_character(tmp_path, char):
    line = f"y = x {char} 2"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, char))
    assert f"unexpected character `{char}`" in d.message
    assert d.rule == "syntax"


def test_unicode_arrow_gets_a_hint(tmp_path):
    line = "y = x \u2192 relu"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, 7)
    assert "\u2192" in d.message
    assert "`->`" in d.hint


def test_unterminated_string(tmp_path):
    line = 'y = x -> conv(4, 3, padding="same)'
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, '"'))
    assert "not closed" in d.hint


@pytest.mark.parametrize("continuation", ["relu", "relu()", "conv(8, 3)"])
def test_continued_chain_line_not_starting_with_arrow(tmp_path, continuation):
    d = one_error(tmp_path, HEAD + "y = x -> conv(4, 3)\n    " + continuation + "\noutput y\n")
    assert d.rule == "syntax"
    assert d.span.line == 4
    # the caret is on the offending line: at its first word or just after it
    word = continuation.split("(")[0]
    assert d.span.column in (5, 5 + len(word))
    assert word in d.message
    assert d.hint is not None and "starts with `->`" in d.hint


def test_missing_colon_in_input(tmp_path):
    line = "input x f32[N, 3, 8, 8]"
    d = one_error(tmp_path, "network t\n" + line + "\n")
    assert d.rule == "syntax"
    assert d.span.line == 2
    assert "`:`" in d.message


def test_syntax_error_is_rendered_with_location_line_and_caret(tmp_path):
    line = "y = x -> linear(4 5)"
    result = compile_text(tmp_path, "network t\ninput x: f32[N, 3]\n" + line + "\noutput y\n")
    text = rendered(result)
    path = str(tmp_path / "t.net")
    assert f"{path}:3:18" in text
    assert f"3 | {line}" in text
    assert "  | " + " " * 17 + "^\n" in text
    assert "1 error" in text


def test_only_the_first_syntax_error_is_reported_but_it_is_located(tmp_path):
    result = compile_text(tmp_path, HEAD + "y = x -> conv(4 3)\nz = x -> conv(4 3)\noutput y\n")
    found = errors(result)
    assert len(found) >= 1
    assert found[0].span.line == 3
    assert result.graph is None and not result.ok


# ================================================================ names and layers


def test_unknown_layer_did_you_mean(tmp_path):
    line = "y = x -> cnov(8, 3)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "cnov"))
    assert d.span.end_column == col(line, "cnov") + 4
    assert "unknown layer" in d.message and "`cnov`" in d.message
    assert d.hint == "did you mean `conv`?"


def test_unknown_layer_in_other_case(tmp_path):
    line = "y = x -> RELU"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "RELU"))
    assert d.hint == "did you mean `relu`?"


def test_pytorch_class_name_is_named_as_such(tmp_path):
    line = "y = x -> ReLU"  # nn.ReLU
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "ReLU"))
    assert "PyTorch's" in d.message and "`relu`" in d.message
    assert d.hint == "write `relu`"


def test_unknown_layer_with_nothing_close_has_no_misleading_hint(tmp_path):
    d = one_error(tmp_path, HEAD + "y = x -> zzzzqqq\noutput y\n")
    assert "`zzzzqqq`" in d.message
    assert d.hint is None or "did you mean" not in d.hint


def test_misspelt_attribute(tmp_path):
    line = "y = x -> conv(8, kernal=3)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "kernal"))
    assert "no attribute `kernal`" in d.message
    assert d.hint == "did you mean `kernel`?"
    assert d.layer == "y"


def test_misspelt_attribute_of_a_pool(tmp_path):
    line = "y = x -> maxpool(2, strid=2)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "strid"))
    assert d.hint == "did you mean `stride`?"


@pytest.mark.parametrize("attr, shown, phrase", [
    ("stride=0", "0", "positive integer"),
    ("bias=1", "1", "true or false"),
    ('padding="sam"', '"sam"', '"same"'),
    ("dilation=(1, 0)", "(1, 0)", "positive integer"),
    ("groups=-2", "-2", "positive integer"),
])
def test_bad_attribute_value(tmp_path, attr, shown, phrase):
    line = f"y = x -> conv(8, 3, {attr})"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    name = attr.split("=")[0]
    at(d, 3, col(line, name + "="))
    assert f"`{name}`" in d.message
    assert f"got {shown}" in d.message
    assert phrase in d.message
    assert d.layer == "y"
    assert d.rule == "conv attributes"


def test_bad_positional_attribute_points_at_the_argument(tmp_path):
    line = "y = x -> conv(0, 3)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "0"))
    assert "`out_channels`" in d.message and "got 0" in d.message


def test_string_where_number_expected(tmp_path):
    line = 'y = x -> linear("ten")'
    d = one_error(tmp_path, "network t\ninput x: f32[N, 3]\n" + line + "\noutput y\n")
    at(d, 3, col(line, '"ten"'))
    assert "`out_features`" in d.message and 'got "ten"' in d.message


def test_missing_required_attribute(tmp_path):
    d = one_error(tmp_path, HEAD + "y = x -> conv(8)\noutput y\n")
    assert "`kernel`" in d.message
    assert d.span.line == 3


def test_too_many_positional_attributes(tmp_path):
    line = "y = x -> conv(8, 3, 2)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "2)"))
    assert "positional" in d.message
    assert d.hint is not None and "by name" in d.hint


def test_python_style_booleans_get_a_hint(tmp_path):
    line = "y = x -> conv(8, 3, bias=False)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "False"))
    assert d.hint == "write `false`"


def test_undefined_name(tmp_path):
    line = "y = xx -> relu"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "xx"))
    assert "`xx` is not defined" in d.message
    assert d.hint == "did you mean `x`?"


def test_undefined_name_inside_arguments(tmp_path):
    line = "y = x -> linear(clases)"
    d = one_error(tmp_path, "network t(classes = 10)\ninput x: f32[N, 3]\n" + line + "\noutput y\n")
    at(d, 3, col(line, "clases"))
    assert d.hint == "did you mean `classes`?"


def test_name_defined_twice_binding_and_input(tmp_path):
    line = "x = 3"
    d = one_error(tmp_path, HEAD + line + "\ny = x -> relu\noutput y\n")
    at(d, 3, 1)
    assert "`x` is defined twice" in d.message
    [label] = d.labels
    assert (label.span.line, label.message) == (2, "first defined here")


def test_name_defined_twice_two_bindings(tmp_path):
    result = compile_text(tmp_path, HEAD + "y = x -> relu\ny = x -> sigmoid\noutput y\n")
    found = errors(result)
    assert len(found) == 1, rendered(result)
    (d,) = found
    assert "`y` is defined twice" in d.message
    assert d.span.line == 4 and d.span.column == 1
    assert [(l.span.line, l.message) for l in d.labels] == [(3, "first defined here")]


def test_name_defined_twice_inside_a_block(tmp_path):
    text = HEAD + textwrap.dedent("""\
        block b(t) {
            u = t -> relu
            u = t -> tanh
            return u
        }
        y = x -> b
        output y
    """)
    result = compile_text(tmp_path, text)
    found = [d for d in errors(result) if "defined twice" in d.message]
    assert len(found) == 1, rendered(result)
    assert found[0].span.line == 5


def test_two_inputs_with_one_name(tmp_path):
    d = one_error(tmp_path, HEAD + "input x: f32[N, 3, 8, 8]\ny = x -> relu\noutput y\n")
    at(d, 3, 7)
    assert "`x` is defined twice" in d.message


def test_binding_cycle(tmp_path):
    d = one_error(tmp_path, HEAD + "a = b -> relu\nb = a -> relu\noutput a\n")
    at(d, 3, 1)
    assert "cycle" in d.message
    assert "a -> b -> a" in d.message


def test_self_referencing_binding(tmp_path):
    d = one_error(tmp_path, HEAD + "y = y -> relu\noutput y\n")
    assert "cycle" in d.message and "y -> y" in d.message
    at(d, 3, 1)


def test_bindings_may_be_written_in_any_order(tmp_path):
    result = compile_text(tmp_path, HEAD + "z = y -> relu\ny = x -> relu\noutput z\n")
    assert result.ok, rendered(result)


def test_duplicate_layer_label(tmp_path):
    line = "y = x -> c: conv(8, 3) -> c: conv(8, 3)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, line.rindex("c:") + 1)
    assert "`c`" in d.message and "twice" in d.message
    [first] = d.labels
    assert (first.span.line, first.span.column) == (3, line.index("c:") + 1)
    assert first.message == "`c` is first made here"


def test_duplicate_label_in_two_chains(tmp_path):
    text = HEAD + "a = x -> head: conv(8, 3)\nb = x -> head: conv(8, 3)\ny = a + b\noutput y\n"
    d = one_error(tmp_path, text)
    assert d.span.line == 4
    assert "`head`" in d.message and [l.span.line for l in d.labels] == [3]


def test_missing_output(tmp_path):
    d = one_error(tmp_path, HEAD + "y = x -> relu\n")
    assert "no output" in d.message
    assert d.hint is not None and "output y" in d.hint


def test_output_not_defined(tmp_path):
    line = "output yy"
    d = one_error(tmp_path, HEAD + "y = x -> relu\n" + line + "\n")
    at(d, 4, col(line, "yy"))
    assert "`yy`" in d.message and "not defined" in d.message
    assert d.hint == "did you mean `y`?"


def test_no_input(tmp_path):
    result = compile_text(tmp_path, "network t\nw = 3\n")
    messages = [d.message for d in errors(result)]
    assert any("no input" in m for m in messages), messages
    d = next(d for d in errors(result) if "no input" in d.message)
    assert d.hint is not None and "input" in d.hint


def test_unused_input_is_a_warning(tmp_path):
    result = compile_text(tmp_path, HEAD + "input extra: f32[N, 3]\ny = x -> relu\noutput y\n")
    assert result.ok
    assert errors(result) == []
    (w,) = result.diagnostics.items
    assert w.severity == "warning"
    assert "`extra`" in w.message and "never used" in w.message
    at(w, 3, 1)
    assert "1 warning" in rendered(result)
    assert rendered(result).startswith("warning:")


# ================================================================ shapes


def test_channel_mismatch_at_add(tmp_path):
    line = "y = a + b"
    text = HEAD + "a = x -> conv(8, 3)\nb = x -> conv(4, 3)\n" + line + "\noutput y\n"
    d = one_error(tmp_path, text)
    at(d, 5, col(line, "a + b"))
    # 32 - 3 + 1 = 30
    assert "[N, 8, 30, 30]" in d.message and "[N, 4, 30, 30]" in d.message
    assert "do not match" in d.message
    assert d.layer == "y"


def test_spatial_mismatch_at_residual_add(tmp_path):
    text = HEAD + textwrap.dedent("""\
        block down(t) {
            y = t -> conv(3, 3, stride=2, padding=1)
            return y + t
        }
        out = x -> down
        output out
    """)
    d = one_error(tmp_path, text)
    at(d, 5, col("    return y + t", "y + t"))
    # floor((32 + 2 - 2 - 1) / 2) + 1 = 16
    assert "[N, 3, 16, 16]" in d.message and "[N, 3, 32, 32]" in d.message


def test_mismatch_at_concat(tmp_path):
    line = "y = concat(a, b)"
    text = HEAD + "a = x -> conv(8, 3)\nb = x -> conv(8, 5)\n" + line + "\noutput y\n"
    d = one_error(tmp_path, text)
    at(d, 5, col(line, "concat"))
    # 32 - 3 + 1 = 30 and 32 - 5 + 1 = 28
    assert "[N, 8, 30, 30]" in d.message and "[N, 8, 28, 28]" in d.message
    assert d.layer == "y"


def test_concat_of_matching_shapes_adds_channels(tmp_path):
    result = compile_text(tmp_path, HEAD + "a = x -> conv(8, 3)\nb = x -> conv(5, 3)\n"
                          "y = concat(a, b)\noutput y\n")
    assert result.ok, rendered(result)
    assert result.graph.node("y").output.shape == ("N", 13, 30, 30)


def test_kernel_larger_than_input(tmp_path):
    line = "y = x -> conv(8, 33)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "conv"))
    # floor((32 + 0 - 1*(33-1) - 1) / 1) + 1 = 0
    assert "output size would be 0" in d.message
    assert d.layer == "y"
    assert d.hint is not None and "33" in d.hint and "32" in d.hint


def test_spatial_size_reaching_zero_deep_in_a_chain(tmp_path):
    text = ("network t\ninput x: f32[N, 1, 8, 8]\n"
            "y = x\n    -> maxpool(2)\n    -> maxpool(2)\n    -> conv(4, 3)\noutput y\n")
    d = one_error(tmp_path, text)
    # 8 -> 4 -> 2, then floor((2 - 2 - 1) / 1) + 1 = 0
    at(d, 6, 8)
    assert "output size would be 0" in d.message
    assert d.layer == "y.2"
    assert any("[N, 1, 2, 2]" in note for note in d.notes)


def test_linear_on_unflattened_tensor(tmp_path):
    line = "y = x -> linear(10)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "linear"))
    assert "2-D" in d.message and "[N, 3, 32, 32]" in d.message
    assert d.hint is not None and "flatten" in d.hint
    assert "3,072" in d.hint   # 3 * 32 * 32 features


def test_groups_not_dividing_input_channels(tmp_path):
    line = "y = x -> conv(8, 3, groups=2)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    at(d, 3, col(line, "conv"))
    assert "groups=2" in d.message and "3" in d.message
    assert "divisible" in d.message


def test_groups_not_dividing_output_channels(tmp_path):
    d = one_error(tmp_path, "network t\ninput x: f32[N, 4, 8, 8]\ny = x -> conv(6, 3, groups=4)\n"
                  "output y\n")
    assert "out_channels 6" in d.message and "groups=4" in d.message


def test_shape_error_rendering(tmp_path):
    line = "y = x -> conv(8, 33)"
    result = compile_text(tmp_path, HEAD + line + "\noutput y\n")
    text = render(errors(result)[0], result.diagnostics.sources)
    path = str(tmp_path / "t.net")
    lines = text.splitlines()
    assert lines[0].startswith("error: conv")
    assert lines[1] == f"  --> {path}:3:10"
    assert f"3 | {line}" in lines
    caret = lines[lines.index(f"3 | {line}") + 1]
    assert caret == "  | " + " " * 9 + "^" * len("conv(8, 33)")
    assert "  = layer: y" in lines
    assert any(l.startswith("  = hint: ") for l in lines)
    assert "  = note: input shape: [N, 3, 32, 32]" in lines


# ================================================================ blocks


BLOCK = HEAD + textwrap.dedent("""\
    block unit(t, planes, stride = 1) {
        y = t -> conv(planes, 3, stride=stride, padding=1) -> relu
        return y
    }
""")


def test_block_called_with_too_many_arguments(tmp_path):
    line = "y = x -> unit(8, 2, 3)"
    d = one_error(tmp_path, BLOCK + line + "\noutput y\n")
    at(d, 7, col(line, "3)"))
    assert "`unit`" in d.message and "3 arguments" in d.message and "got 4" in d.message


def test_block_called_without_a_required_argument(tmp_path):
    line = "y = x -> unit()"
    d = one_error(tmp_path, BLOCK + line + "\noutput y\n")
    at(d, 7, col(line, "unit"))
    assert "`planes`" in d.message


def test_block_called_with_unknown_keyword(tmp_path):
    line = "y = x -> unit(8, strid=2)"
    d = one_error(tmp_path, BLOCK + line + "\noutput y\n")
    at(d, 7, col(line, "strid"))
    assert "no parameter `strid`" in d.message
    assert d.hint == "did you mean `stride`?"


def test_block_argument_given_twice(tmp_path):
    d = one_error(tmp_path, BLOCK + "y = x -> unit(8, planes=4)\noutput y\n")
    assert "`planes`" in d.message and "twice" in d.message


def test_bad_value_inside_block_names_the_instance_layer(tmp_path):
    line = "y = x -> u1: unit(0)"
    d = one_error(tmp_path, BLOCK + line + "\noutput y\n")
    # the value is wrong at the call site, where it is fixed; the use in the body is a label
    at(d, 7, col(line, "0"))
    [use] = d.labels
    assert (use.span.line, use.span.column) == (4, col("    y = t -> conv(planes, 3, stride=stride, padding=1) -> relu", "planes"))
    assert use.message == "`planes` is 0, given as `out_channels` of conv here"
    assert "`out_channels`" in d.message and "got 0" in d.message
    assert d.layer == "u1.y.0"
    assert [i.name for i in d.chain] == ["u1"] and d.chain[0].call == "unit(0)"


def test_recursive_block(tmp_path):
    text = HEAD + "block r(t) {\n    return t -> r\n}\ny = x -> r\noutput y\n"
    d = one_error(tmp_path, text)
    at(d, 4, len("    return t -> ") + 1)
    assert "`r` calls itself" in d.message
    assert d.hint is not None and "repeat" in d.hint


def test_mutually_recursive_blocks(tmp_path):
    text = HEAD + ("block a(t) {\n    return t -> b\n}\n"
                   "block b(t) {\n    return t -> a\n}\ny = x -> a\noutput y\n")
    d = one_error(tmp_path, text)
    assert "a -> b -> a" in d.message


# ================================================================ files and imports


def test_import_cycle(tmp_path):
    write(tmp_path, 'use "b.net"\nblock ba(t) {\n    return t -> relu\n}\n', "a.net")
    write(tmp_path, 'use "a.net"\nblock bb(t) {\n    return t -> relu\n}\n', "b.net")
    main = HEAD.replace("network t", 'network t\nuse "a.net"') + "y = x -> ba -> bb\noutput y\n"
    result = compile_text(tmp_path, main, "main.net")
    (d,) = errors(result)
    assert "import cycle" in d.message and "a.net -> b.net -> a.net" in d.message
    assert d.span.file == str(tmp_path / "b.net")
    at(d, 1, 5)


def test_file_importing_itself(tmp_path):
    text = HEAD.replace("network t", 'network t\nuse "self.net"') + "y = x -> relu\noutput y\n"
    d = one_error(tmp_path, text, "self.net")
    assert "import cycle" in d.message
    at(d, 2, 5)


def test_missing_import_file(tmp_path):
    line = 'use "nowhere.net"'
    d = one_error(tmp_path, "network t\n" + line + "\ninput x: f32[N, 3]\ny = x -> relu\noutput y\n")
    at(d, 2, col(line, '"'))
    assert "nowhere.net" in d.message and "no such file" in d.message
    assert d.span.file == str(tmp_path / "t.net")


def test_import_provides_blocks(tmp_path):
    write(tmp_path, "block act(t) {\n    return t -> relu\n}\n", "lib.net")
    result = compile_text(tmp_path, 'network t\nuse "lib.net"\ninput x: f32[N, 3]\n'
                          "y = x -> act\noutput y\n")
    assert result.ok, rendered(result)


def test_error_in_imported_file_is_located_there(tmp_path):
    write(tmp_path, "block act(t) {\n    return t -> rleu\n}\n", "lib.net")
    d = one_error(tmp_path, 'network t\nuse "lib.net"\ninput x: f32[N, 3]\ny = x -> act\noutput y\n')
    assert d.span.file == str(tmp_path / "lib.net")
    at(d, 2, col("    return t -> rleu", "rleu"))
    assert d.hint == "did you mean `relu`?"


def test_syntax_error_in_imported_file(tmp_path):
    write(tmp_path, "block act(t) {\n    return t -> relu;\n}\n", "lib.net")
    result = compile_text(tmp_path, 'network t\nuse "lib.net"\ninput x: f32[N, 3]\n'
                          "y = x -> act\noutput y\n")
    # the first error is the real one (a later `act` is unknown may follow from it)
    d = errors(result)[0]
    assert "unexpected character `;`" in d.message
    assert d.span.file == str(tmp_path / "lib.net")
    at(d, 2, col("    return t -> relu;", ";"))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.net"
    path.write_bytes(b"network t\ninput x: f32[N, 3]\ny = x -> relu  # caf\xe9\noutput y\n")
    result = compile_file(path)
    (d,) = errors(result)
    assert "not UTF-8" in d.message and "0xe9" in d.message
    at(d, 3, len("y = x -> relu  # caf") + 1)
    assert d.hint is not None and "UTF-8" in d.hint
    text = rendered(result)
    assert f"{path}:3:{len('y = x -> relu  # caf') + 1}" in text


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.net"
    path.write_bytes("\ufeffnetwork t\ninput x: f32[N, 3]\ny = x -> relu\noutput y\n".encode())
    result = compile_file(path)
    assert result.ok, rendered(result)


def test_missing_spec_file(tmp_path):
    result = compile_file(tmp_path / "absent.net")
    (d,) = errors(result)
    assert "no such file" in d.message
    assert not result.ok


def test_directory_as_spec(tmp_path):
    result = compile_file(tmp_path)
    (d,) = errors(result)
    assert "directory" in d.message


# ================================================================ several errors


def test_several_independent_errors_in_one_run(tmp_path):
    text = textwrap.dedent("""\
        network t
        input x: f32[N, 3, 32, 32]
        a = x -> cnov(8, 3)
        b = missing -> relu
        c = x -> conv(8, 3, stride=0)
        d = x -> conv(8, 40)
        e = x -> linear(10)
        f = concat(x, x -> conv(8, 5))
        output a, b, c, d, e, f, g
    """)
    result = compile_text(tmp_path, text)
    found = errors(result)
    assert len(found) == 7, rendered(result)
    lines = sorted(d.span.line for d in found)
    assert lines == [3, 4, 5, 6, 7, 8, 9]
    assert "7 errors" in rendered(result)


def test_render_all_summary_counts_errors_and_warnings(tmp_path):
    text = HEAD + "input extra: f32[N, 3]\ny = x -> cnov\nz = x -> relu\noutput z\n"
    result = compile_text(tmp_path, text)
    summary = rendered(result).splitlines()[-1]
    assert summary == "1 error, 1 warning"
    assert "did you mean `conv`?" in rendered(result)


def test_diagnostic_json_form(tmp_path):
    line = "y = x -> conv(8, kernal=3)"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")
    data = d.to_json()
    assert data["severity"] == "error"
    assert data["line"] == 3 and data["column"] == col(line, "kernal")
    assert data["file"] == str(tmp_path / "t.net")
    assert data["hint"] == "did you mean `kernel`?"
    assert data["layer"] == "y"


def test_compile_from_text_argument(tmp_path):
    result = compile_file("virtual.net", text=HEAD + "y = x -> cnov\noutput y\n")
    (d,) = errors(result)
    assert d.span.file == "virtual.net"
    assert "virtual.net:3:10" in rendered(result)
    assert "3 | y = x -> cnov" in rendered(result)


# ================================================================ several labels


SE = """\
network t
input x: f32[N, 32, 28, 28]
feat = x -> conv(64, 3, padding=1) -> relu
gate = feat -> global_avgpool -> conv(16, 1) -> relu -> conv(32, 1) -> sigmoid
y = feat * gate
output y
"""


def test_a_diagnostic_with_several_labels_renders_as_text(tmp_path):
    result = compile_text(tmp_path, SE, "se.net")
    text = render(errors(result)[0], result.diagnostics.sources)
    path = str(tmp_path / "se.net")
    assert text == textwrap.dedent(f"""\
        error: mul: shapes do not match: [N, 64, 28, 28] * [N, 32, 1, 1]
          --> {path}:5:5
          |
        4 | gate = feat -> global_avgpool -> conv(16, 1) -> relu -> conv(32, 1) -> sigmoid
          |                                                         ----------- channels become 32 here, in `gate.3`
        5 | y = feat * gate
          |     ^^^^^^^^^^^ channels differ: 64 and 32
          |     ----   ---- [N, 32, 1, 1] from `gate.4` (line 4) (likely culprit)
          |     |
          |     [N, 64, 28, 28] from `feat.1` (line 3)
          = layer: y
          = rule: `*` needs equal shapes, or sizes of 1 that broadcast
          = note: input shapes: [N, 64, 28, 28], [N, 32, 1, 1]
          = note: the likely culprit is `gate.4` ([N, 32, 1, 1]), which is computed from `feat.1` and must match it""")


def test_labels_in_json(tmp_path):
    result = compile_text(tmp_path, SE, "se.net")
    doc = errors(result)[0].to_json()
    labels = doc["labels"]
    assert labels[0] == {"file": str(tmp_path / "se.net"), "line": 5, "column": 5, "end_line": 5,
                         "end_column": 16, "message": "channels differ: 64 and 32", "primary": True}
    assert [(l["line"], l["column"], l["primary"]) for l in labels[1:]] == \
        [(5, 5, False), (5, 12, False), (4, 57, False)]
    # the old fields stay, and agree with the primary label
    assert (doc["line"], doc["column"], doc["end_column"]) == (5, 5, 16)


def test_labels_in_another_file_get_their_own_header(tmp_path):
    write(tmp_path, "block u(t) {\n    return t\n}\n", "lib.net")
    result = compile_text(tmp_path, 'use "lib.net"\nnetwork t\ninput x: f32[N, 3, 8, 8]\n'
                                    'block u(t) {\n    return t\n}\ny = x -> u\noutput y\n')
    text = render(errors(result)[0], result.diagnostics.sources)
    assert f"  ::: {tmp_path / 'lib.net'}:1:7" in text
    assert text.index("4 | block u(t) {") < text.index(":::") < text.index("1 | block u(t) {")


def test_labels_on_separate_lines_are_shown_in_order_with_a_gap_marker(tmp_path):
    result = compile_text(tmp_path, "network t\ninput x: f32[N, 3, 8, 8]\ny = x -> relu\n\n\n"
                                    "y = x -> relu\noutput y\n")
    text = render(errors(result)[0], result.diagnostics.sources)
    lines = text.splitlines()
    assert lines[3:8] == ["3 | y = x -> relu", "  | - first defined here", "  .",
                          "6 | y = x -> relu", "  | ^"]


def test_an_error_inside_a_block_names_the_instance_and_its_call_outermost_first(tmp_path):
    text = """\
        network t
        input x: f32[N, 8, 8, 8]
        block inner(t) {
            return t -> conv(8, 3, paddng=1)
        }
        block outer(t) {
            return t -> deep: inner
        }
        y = x -> stage: outer
        output y
        """
    d = one_error(tmp_path, text)
    assert [(i.name, i.call, i.span.line) for i in d.chain] == [("stage", "outer()", 9), ("stage.deep", "inner()", 7)]
    rendered_text = render(d, compile_text(tmp_path, text).diagnostics.sources)
    assert "= in `stage` = `outer()`, called at" in rendered_text
    assert rendered_text.index("`stage` = ") < rendered_text.index("`stage.deep` = ")

# ================================================================ quoted lines


def quoted(text: str, line: int, column: int, end_column: int) -> tuple[str, str]:
    """The quoted source line and its caret line, as render prints them."""
    from netspec.diagnostics import Sources, Span

    sources = Sources()
    sources.add("t.net", text)
    out = render(Diagnostic("m", Span("t.net", line, column, line, end_column)), sources).split("\n")
    return out[3][len(f"{line} | "):], out[4][len(f"{' ' * len(str(line))} | "):]


def test_invisible_characters_are_shown_as_markers_with_the_caret_under_them():
    shown, carets = quoted("y = x ->\u00a0relu\u200b", 1, 9, 10)
    assert shown == "y = x -><U+00A0>relu<U+200B>"
    assert carets == " " * 8 + "^" * len("<U+00A0>")
    shown, carets = quoted("y = x ->\u00a0relu\u200b", 1, 14, 15)
    assert carets == " " * len("y = x -><U+00A0>relu") + "^" * 8


def test_wide_characters_take_two_columns():
    text = 'y = f("\u540c\u540d") \u2013> relu'
    shown, carets = quoted(text, 1, text.index("\u2013") + 1, text.index("\u2013") + 2)
    assert shown == text
    assert carets == " " * (text.index("\u2013") + 2) + "^"
    shown, carets = quoted("v = conv\uff088, 3)", 1, 9, 10)
    assert carets == " " * 8 + "^^"  # the full-width bracket itself is two columns wide


def test_a_combining_mark_takes_no_column():
    text = "v = \"cafe\u0301\" @"
    shown, carets = quoted(text, 1, text.index("@") + 1, text.index("@") + 2)
    assert carets == " " * (text.index("@") - 1) + "^"


def test_a_caret_past_the_end_of_a_line_with_markers():
    shown, carets = quoted("v = f(\u00a0", 1, 8, 9)  # just after the last character
    assert carets == " " * len("v = f(<U+00A0>") + "^"


@pytest.mark.parametrize("char", ["\u2013", "\u00a0", "\u200b", "\ufeff", "\uff08", "\u201c", "\x1b", "\u2028",
                                  "\u0301", "\U0001f600", "\ue000"])
def test_valid_text_is_never_quoted_with_replacement_characters(tmp_path, char):
    path = tmp_path / "t.net"
    path.write_text(f"network t\ninput x: f32[N, 3, 8, 8]\ny = x -> relu {char}{char} @\noutput y\n",
                    encoding="utf-8")
    text = rendered(compile_file(path))
    assert "\ufffd" not in text and "\x1b" not in text, text
    assert "y = x -> relu" in text


# ================================================================ the power operator


@pytest.mark.parametrize("expr, value", [
    ("2 ** 10", 1024), ("-2 ** 2", -4), ("2 ** -1", 0.5), ("2 ** 3 ** 2", 512), ("(-2) ** 3", -8),
    ("64 ** -0.5", 0.125), ("2 * 3 ** 2", 18), ("10 ** 300 // 10 ** 299", 10),
])
def test_power_evaluates_as_python_does(tmp_path, expr, value):
    result = compile_text(tmp_path, f"network t(p = {expr})\ninput x: f32[N, 3, 8, 8]\ny = x -> relu\noutput y\n")
    assert result.ok, rendered(result)
    assert result.graph.parameters["p"] == value


@pytest.mark.parametrize("expr, words", [
    ("2 ** 100000", "`**` overflows"),
    ("10.0 ** 400", "`**` overflows"),
    ("0 ** -1", "0 cannot be raised to a negative power"),
    ("(-8) ** 0.5", "no real value"),
])
def test_power_errors_are_located(tmp_path, expr, words):
    d = one_error(tmp_path, f"network t(p = {expr})\ninput x: f32[N, 3, 8, 8]\ny = x -> relu\noutput y\n")
    assert words in d.message
    assert (d.span.line, d.span.column) == (1, len("network t(p = ") + 1)


def test_power_of_tensors_is_refused(tmp_path):
    d = one_error(tmp_path, HEAD + "y = x ** x\noutput y\n")
    assert "`**`" in d.message and "tensors" in d.message


# ================================================================ habits from PyTorch and Keras


def test_argument_errors_show_the_corrected_call_from_values_without_source():
    from netspec import habits
    from netspec.layers import LAYERS, ArgumentError

    def reread(kind, positional, keywords):
        with pytest.raises(ArgumentError) as caught:
            LAYERS[kind].from_arguments(positional, keywords)
        return habits.reread(LAYERS[kind], positional, keywords, caught.value)

    error = reread("conv", [3, 64, 11], {"stride": 4})
    assert error.hint == "write `conv(64, 11, stride=4)`"
    assert error.arg == 0
    assert reread("linear", [10], {"in_features": 128}).hint == "write `linear(10)`"


def test_corrected_calls_keep_the_argument_text(tmp_path):
    text = HEAD + "block b(t, planes) {\n    return t -> conv(3, planes * 4, 3, padding=1)\n}\ny = x -> b(16)\noutput y\n"
    d = one_error(tmp_path, text)
    assert d.hint == "write `conv(planes * 4, 3, padding=1)`"


@pytest.mark.parametrize("call, hint", [
    ("Conv2D(64, 3, strides=2, activation=\"relu\", name=\"conv1\")", "write `conv1: conv(64, 3, stride=2) -> relu`"),
    ("Conv2d(3, 64, 3, padding=1)", "write `conv(64, 3, padding=1)`"),
    ("MaxPool2d(3, 2)", "write `maxpool(3, 2)`"),
    ("ReflectionPad2d(1)", "write `pad(1, mode=\"reflect\")`"),
    ("UpSampling2D(size=2)", "write `upsample(2)`"),
    ("Upsample(size=16)", "write `upsample(size=16)`"),
    ("BatchNorm2d(3, momentum=0.01)", "write `batchnorm(momentum=0.01)`"),
    ("GlobalAveragePooling2D()", "write `global_avgpool`"),
])
def test_foreign_layer_names_give_netspec_calls(tmp_path, call, hint):
    d = one_error(tmp_path, HEAD + f"y = x -> {call}\noutput y\n")
    assert "netspec's layer is" in d.message
    assert d.hint == hint


def test_a_sequential_container_is_one_error_with_its_layers_as_a_chain(tmp_path):
    line = "y = x -> Sequential(Conv2d(3, 8, 3), ReLU(inplace=true), maxpool(2))"
    d = one_error(tmp_path, HEAD + line + "\noutput y\n")  # its arguments are not evaluated as values
    at(d, 3, col(line, "Sequential"))
    assert d.hint == "write the layers as a chain: `x -> conv(8, 3) -> relu -> maxpool(2)`"


def test_self_attribute_of_a_pytorch_module_suggests_a_label(tmp_path):
    line = "self.conv1 = nn.Conv2d(3, 64, 3, padding=1)"
    d = one_error(tmp_path, HEAD + line + "\n")
    at(d, 3, 1)
    assert d.hint == "label the layer where the chain applies it: `x -> conv1: conv(64, 3, padding=1)`"


def test_a_call_in_pytorchs_order_is_reported_at_the_call_not_where_its_values_came_from(tmp_path):
    line = "    return t -> conv(c_in, planes, 3)"
    text = HEAD + "block b(t, c_in, planes) {\n" + line + "\n}\ny = x -> b(3, 16)\noutput y\n"
    d = one_error(tmp_path, text)
    at(d, 4, col(line, "c_in"))
    assert d.hint == "write `conv(planes, 3)`"
    assert not d.labels


def test_a_suspicious_input_takes_the_blame_only_for_what_it_causes(tmp_path):
    # a channels-last image under NCHW; the maxpool fails in either layout: its own error stays,
    # and the input gets its warning
    result = compile_text(tmp_path, "network t\ninput image: f32[N, 224, 224, 3]\n"
                                    "y = image -> conv(64, 7, stride=2, padding=3) -> maxpool(300)\noutput y\n")
    found = result.diagnostics.items
    assert [(d.severity, d.span.line) for d in found] == [("error", 3), ("warning", 2)], rendered(result)
    assert found[0].message.startswith("maxpool:")
    assert "channels-last" in found[1].message


@pytest.mark.parametrize("size", [250, 248, 260])
def test_a_unet_of_the_wrong_size_is_told_its_total_stride(size):
    result = compile_file(Path(__file__).resolve().parent.parent / "specs" / "unet.net", {"size": size})
    [d] = result.diagnostics.errors
    assert f"height {size} and width {size} are not multiples of 16, the network's total stride" in d.message
    assert d.span.line == 16  # the input line
