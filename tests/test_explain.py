"""`check --explain` (the arithmetic with the real numbers), receptive fields (`--columns
rf,jump,start`) and the `from` column, in the table and in JSON."""

from __future__ import annotations

import json

import pytest

from netspec.cli import main
from netspec.compiler import compile_file
from netspec.receptive import receptive_fields
from netspec.report import explanation


def explain_of(body: str, shape: str = "N, 3, 224, 224", name: str = "y"):
    result = compile_file("t.net", text=f"network t\ninput x: f32[{shape}]\n{body}\noutput y\n")
    assert result.ok, [d.message for d in result.diagnostics.errors]
    return explanation(result.graph, result.graph.node(name))


def test_conv_arithmetic_as_the_issue_writes_it():
    lines, notes = explain_of("y = x -> conv(64, 11, stride=4, padding=2)")
    assert lines == [
        "H: floor((224 + 2*2 - 1*(11-1) - 1) / 4) + 1 = 55",
        "W: floor((224 + 2*2 - 1*(11-1) - 1) / 4) + 1 = 55",
        "params: 64 * 3 * 11 * 11 + 64 = 23,296",
        "MACs: 55 * 55 * 64 * (3 * 11 * 11) = 70,276,800",
    ]
    # (224 + 4 - 11) = 217 = 4*54 + 1: the famous 224-versus-227 remainder
    assert notes[0].startswith("H: (in + pads - window) % stride = 1, so the last 1 row")
    assert "column" in notes[1]


def test_exact_division_has_no_note():
    lines, notes = explain_of("y = x -> conv(64, 11, stride=4)", "N, 3, 227, 227")
    assert lines[0] == "H: floor((227 + 2*0 - 1*(11-1) - 1) / 4) + 1 = 55" and notes == []


def test_pool_ceil_mode_and_asymmetric_size():
    lines, notes = explain_of("y = x -> maxpool(3, 2, ceil_mode=true)", "N, 8, 56, 57")
    assert lines == ["H: ceil((56 + 2*0 - 1*(3-1) - 1) / 2) + 1 = 28",
                     "W: ceil((57 + 2*0 - 1*(3-1) - 1) / 2) + 1 = 28"]
    assert notes == []


def test_grouped_dilated_conv_without_bias():
    lines, _ = explain_of("y = x -> conv(32, 3, padding=2, dilation=2, groups=4, bias=false)", "N, 16, 10, 12")
    assert lines == ["H: floor((10 + 2*2 - 2*(3-1) - 1) / 1) + 1 = 10",
                     "W: floor((12 + 2*2 - 2*(3-1) - 1) / 1) + 1 = 12",
                     "params: 32 * 4 * 3 * 3 = 1,152",
                     "MACs: 10 * 12 * 32 * (4 * 3 * 3) = 138,240"]


def test_conv_transpose_linear_batchnorm_flatten():
    lines, _ = explain_of("y = x -> conv_transpose(4, 3, stride=2, padding=1, output_padding=1)", "N, 8, 7, 7")
    assert lines[0] == "H: (7 - 1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 14"
    assert lines[2] == "params: 8 * 4 * 3 * 3 + 4 = 292"
    assert lines[3] == "MACs: 7 * 7 * 8 * (4 * 3 * 3) = 14,112"
    assert explain_of("y = x -> linear(10)", "N, 400")[0] == [
        "params: 10 * 400 + 10 = 4,010", "MACs: 400 * 10 = 4,000"]
    assert explain_of("y = x -> batchnorm", "N, 64, 5, 5")[0] == [
        "params: 2 * 64 = 128",
        "buffers: 2 * 64 + 1 = 129 (running mean and variance, num_batches_tracked)"]
    assert explain_of("y = x -> flatten", "N, 5, 5, 16")[0] == ["features: 5 * 5 * 16 = 400 (in CHW order)"]


def test_adaptive_pool_that_is_not_an_ordinary_pool_gets_a_note():
    lines, notes = explain_of("y = x -> adaptive_avgpool(6)", "N, 8, 13, 12")
    assert lines == ["H: 13 -> 6: window i covers floor(i*13/6) .. ceil((i+1)*13/6) - 1",
                     "W: 12 -> 6: windows of 2, stride 2"]
    assert len(notes) == 1 and "13 is not a multiple of 6" in notes[0]


def fields_of(spec: str):
    graph = compile_file(spec).graph
    return receptive_fields(graph)


def test_vgg16_receptive_fields():
    fields = fields_of("specs/vgg16.net")
    # conv5_3 (features.28) sees 196x196 pixels; pool5 (features.30) 212x212
    assert fields["features.28"].size == (196, 196) and fields["features.28"].jump == (16, 16)
    assert fields["features.30"].size == (212, 212) and fields["features.30"].jump == (32, 32)
    assert fields["features.0"].size == (3, 3) and fields["features.0"].start == (0, 0)


def test_alexnet_receptive_fields():
    fields = fields_of("specs/alexnet.net")
    # conv1: 11 wide, stride 4, padding 2: the first unit is centred on pixel (11-1)/2 - 2 = 3
    assert (fields["features.0"].size, fields["features.0"].jump, fields["features.0"].start) == ((11, 11), (4, 4), (3, 3))
    assert fields["features.12"].size == (195, 195)


def test_merge_takes_the_largest_field_with_a_note():
    result = compile_file("m.net", text="network m\ninput x: f32[N, 8, 32, 32]\n"
                          "a = x -> conv(8, 3, padding=1)\nb = x -> conv(8, 7, padding=3)\ny = a + b\noutput y\n")
    field = receptive_fields(result.graph)["y"]
    assert field.size == (7, 7) and "largest" in field.note and "b" in field.note


def test_upsample_and_transpose_divide_the_jump():
    result = compile_file("u.net", text="network u\ninput x: f32[N, 8, 32, 32]\n"
                          "y = x -> conv(8, 3, stride=2, padding=1) -> upsample(2) -> conv_transpose(8, 2, stride=2)\n"
                          "output y\n")
    fields = receptive_fields(result.graph)
    assert fields["y.0"].jump == (2, 2) and fields["y.1"].jump == (1, 1) and fields["y.2"].jump == (0.5, 0.5)


def test_table_columns_and_from(capsys):
    assert main(["check", "specs/vgg16.net", "--columns", "rf,jump,start"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("Layer"))
    assert header.split()[-3:] == ["RF", "Jump", "Start"]
    row = next(line for line in out.splitlines() if line.lstrip().startswith("features.28 "))  # inside `features`
    assert row.split()[-3:] == ["196", "16", "7.5"]
    # the `from` column appears by itself when the graph branches
    assert main(["check", "specs/resnet18.net", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "From" in out and any(line.startswith("  layer1.1 ") and line.endswith("layer1.0.relu")
                                 for line in out.splitlines())
    assert main(["check", "specs/vgg16.net"]) == 0
    assert "From" not in capsys.readouterr().out


def test_explain_in_table_and_json(capsys):
    assert main(["check", "specs/alexnet.net", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "    params: 64 * 3 * 11 * 11 + 64 = 23,296" in out
    assert main(["check", "specs/alexnet.net", "--json", "--explain"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first = next(layer for layer in doc["layers"] if layer["name"] == "features.0")
    assert first["explain"][0] == "H: floor((224 + 2*2 - 1*(11-1) - 1) / 4) + 1 = 55"
    assert first["receptive_field"] == {"size": [11, 11], "jump": [4, 4], "start": [3, 3]}
    assert first["notes"]


@pytest.mark.parametrize("columns", ["rf,size", "jump,,bogus"])
def test_unknown_column_is_a_usage_error(columns, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "specs/lenet5.net", "--columns", columns])
    assert exit_info.value.code == 2
    assert "unknown column" in capsys.readouterr().err


# ================================================================ 1-D and 3-D: one line, one value per axis


def test_explain_of_a_1d_conv_speaks_of_the_length():
    lines, notes = explain_of("y = x -> conv(32, 80, stride=4, padding=38)", "N, 1, 16001")
    assert lines == ["L: floor((16001 + 2*38 - 1*(80-1) - 1) / 4) + 1 = 4000",
                     "params: 32 * 1 * 80 + 32 = 2,592",
                     "MACs: 4000 * 32 * (1 * 80) = 10,240,000"]
    # (16001 + 76 - 80) = 15997 = 4*3999 + 1: one position never covered
    assert notes == ["L: (in + pads - window) % stride = 1, so the last 1 position of the padded input is never "
                     "covered by a window"]


def test_explain_of_a_3d_conv_has_one_line_per_axis_and_the_kernel_volume():
    lines, notes = explain_of("y = x -> conv(64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=false)",
                              "N, 3, 16, 112, 112")
    assert lines == ["D: floor((16 + 2*1 - 1*(3-1) - 1) / 1) + 1 = 16",
                     "H: floor((112 + 2*3 - 1*(7-1) - 1) / 2) + 1 = 56",
                     "W: floor((112 + 2*3 - 1*(7-1) - 1) / 2) + 1 = 56",
                     "params: 64 * 3 * 3 * 7 * 7 = 28,224",
                     "MACs: 16 * 56 * 56 * 64 * (3 * 3 * 7 * 7) = 1,416,167,424"]
    assert [n.split(":")[0] for n in notes] == ["H", "W"]


def test_explain_of_3d_pools_and_transposed_convolutions():
    lines, notes = explain_of("y = x -> maxpool(3, 2, padding=1)", "N, 8, 9, 14, 14")
    assert lines == ["D: floor((9 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 5",
                     "H: floor((14 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 7",
                     "W: floor((14 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 7"]
    assert [n[:2] for n in notes] == ["H:", "W:"] and "slice" not in " ".join(notes)
    lines, _ = explain_of("y = x -> conv_transpose(4, (1, 2, 2), stride=(1, 2, 2))", "N, 8, 4, 7, 7")
    assert lines == ["D: (4 - 1)*1 - 2*0 + 1*(1-1) + 0 + 1 = 4",
                     "H: (7 - 1)*2 - 2*0 + 1*(2-1) + 0 + 1 = 14",
                     "W: (7 - 1)*2 - 2*0 + 1*(2-1) + 0 + 1 = 14",
                     "params: 8 * 4 * 1 * 2 * 2 + 4 = 132",
                     "MACs: 4 * 7 * 7 * 8 * (4 * 1 * 2 * 2) = 25,088"]
    lines, notes = explain_of("y = x -> adaptive_avgpool((1, 7, 5))", "N, 8, 4, 14, 12")
    assert lines == ["D: 4 -> 1: windows of 4, stride 4", "H: 14 -> 7: windows of 2, stride 2",
                     "W: 12 -> 5: window i covers floor(i*12/5) .. ceil((i+1)*12/5) - 1"]
    assert len(notes) == 1 and notes[0].startswith("W: 12 is not a multiple of 5")


def test_channels_last_3d_explains_in_d_h_w_order():
    result = compile_file("t.net", text="network t\ninput x: f32[N, 6, 10, 12, 3] NDHWC\n"
                          "y = x -> conv(4, (1, 3, 5))\noutput y\n")
    lines, _ = explanation(result.graph, result.graph.node("y"))
    assert [line[:2] for line in lines[:3]] == ["D:", "H:", "W:"]
    assert lines[2] == "W: floor((12 + 2*0 - 1*(5-1) - 1) / 1) + 1 = 8"


def test_receptive_fields_of_a_1d_chain():
    result = compile_file("a.net", text="network a\ninput x: f32[N, 1, 1000]\n"
                          "y = x -> conv(8, 5, stride=2, padding=2) -> maxpool(2) -> conv(8, 3, dilation=2)\noutput y\n")
    fields = receptive_fields(result.graph)
    # conv 5/2: size 5, jump 2; pool 2/2: 5 + 2 = 7, jump 4; conv 3 dil 2 (window 5): 7 + 4*4 = 23
    assert (fields["y.0"].size, fields["y.0"].jump, fields["y.0"].start) == ((5,), (2,), (0,))
    assert (fields["y.1"].size, fields["y.1"].jump) == ((7,), (4,))
    assert (fields["y.2"].size, fields["y.2"].jump, fields["y.2"].start) == ((23,), (4,), (9,))


def test_receptive_fields_of_r2plus1d_factorised_kernels():
    """A (1, 7, 7) spatial conv then a (3, 1, 1) temporal one: 3 frames of 7x7 pixels."""
    result = compile_file("r.net", text="network r\ninput clip: f32[N, 3, 8, 56, 56]\n"
                          "y = clip -> conv(45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3))"
                          " -> conv(64, (3, 1, 1), padding=(1, 0, 0)) -> upsample((2, 1, 1))\noutput y\n")
    fields = receptive_fields(result.graph)
    assert fields["y.0"].size == (1, 7, 7) and fields["y.0"].jump == (1, 2, 2)
    assert fields["y.1"].size == (3, 7, 7) and fields["y.1"].jump == (1, 2, 2)
    assert fields["y.2"].size == (3, 7, 7) and fields["y.2"].jump == (0.5, 2, 2)


def test_3d_table_columns_and_json_are_per_axis(tmp_path, capsys):
    spec = tmp_path / "r.net"
    spec.write_text("network r\ninput clip: f32[N, 3, 8, 56, 56]\n"
                    "y = clip -> conv(45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=false)"
                    " -> conv(64, (3, 1, 1), padding=(1, 0, 0), bias=false)\noutput y\n")
    assert main(["check", str(spec), "--columns", "rf,jump,start", "--explain"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("y.0 "))
    assert "conv 1x7x7 /1x2x2 pad 0,3,3" in row and row.split()[-3:] == ["1x7x7", "1x2x2", "0"]
    row = next(line for line in out.splitlines() if line.startswith("y.1 "))
    assert "conv 3x1x1 pad 1,0,0" in row and row.split()[-3:] == ["3x7x7", "1x2x2", "0"]
    assert "    D: floor((8 + 2*0 - 1*(1-1) - 1) / 1) + 1 = 8" in out
    assert main(["check", str(spec), "--json", "--explain"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first = next(layer for layer in doc["layers"] if layer["name"] == "y.0")
    assert first["summary"] == "conv 1x7x7 /1x2x2 pad 0,3,3"
    assert first["receptive_field"] == {"size": [1, 7, 7], "jump": [1, 2, 2], "start": [0, 0, 0]}
    assert first["attributes"]["kernel"] == [1, 7, 7]
    assert first["tensors"] == {"y.0.weight": {"shape": [45, 3, 1, 7, 7], "trainable": True}}
    assert first["explain"][:3] == ["D: floor((8 + 2*0 - 1*(1-1) - 1) / 1) + 1 = 8",
                                    "H: floor((56 + 2*3 - 1*(7-1) - 1) / 2) + 1 = 28",
                                    "W: floor((56 + 2*3 - 1*(7-1) - 1) / 2) + 1 = 28"]
    assert first["macs"] == 8 * 28 * 28 * 45 * 3 * 7 * 7
