"""The Python API refuses what the command line refuses, before computing anything, in Python's
terms: TypeError for the wrong type, ValueError for a value out of range, and an unknown keyword
named with the method the user called."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import netspec

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"


@pytest.fixture(scope="module")
def net():
    return netspec.load(LENET)


def test_a_missing_cuda_provider_names_the_device_not_a_flag(net):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(netspec.NetspecError) as info:
        net.session(device="cuda")
    message = str(info.value)
    assert message.startswith("device `cuda`: onnxruntime has no CUDA execution provider here")
    assert "--device" not in message


def test_an_unknown_device_is_a_value_error(net):
    with pytest.raises(ValueError, match="device `gpu`: choose `cpu` or `cuda`"):
        net.session(device="gpu")


@pytest.mark.parametrize("name", ["zz.txt", "zz", "zz.onnx.tmp"])
def test_export_refuses_a_path_that_is_not_onnx(net, name, tmp_path):
    with pytest.raises(ValueError, match=r"the path of an ONNX model ends in \.onnx") as info:
        net.export(tmp_path / name)
    assert "write e.g. `zz.onnx`" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, error, message", [
    ({"batch": 0}, ValueError, "batch 0: a batch is at least 1"),
    ({"batch": -2}, ValueError, "batch -2: a batch is at least 1"),
    ({"batch": 1.5}, TypeError, "batch must be an int"),
    ({"opset": 12}, ValueError, "opset 12: choose 13 to 26"),
    ({"opset": 27}, ValueError, "opset 27: choose 13 to 26"),
    ({"opset": 0}, ValueError, "opset 0: choose 13 to 26"),  # was taken as the default, 17
    ({"opset": "17"}, TypeError, "opset must be an int"),
    ({"seed": "a"}, TypeError, r"seed must be an int \(0 or more\), not 'a' \(str\)"),
    ({"seed": True}, TypeError, "seed must be an int"),
    ({"seed": -1}, ValueError, "seed -1: a seed is 0 or more"),
    ({"weights_prefix": "module.="}, TypeError, r'weights_prefix must be a mapping .* \{"module\.": ""\}'),
])
def test_export_refuses_options_out_of_range_or_of_the_wrong_type(net, options, error, message, tmp_path):
    with pytest.raises(error, match=message):
        net.export(tmp_path / "m.onnx", **options)
    assert list(tmp_path.iterdir()) == []


def test_the_same_checks_guard_every_method(net):
    with pytest.raises(ValueError, match="batch 0"):
        net.to_onnx(batch=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        net.run(seed="a")
    with pytest.raises(TypeError, match="seed must be an int"):
        net.weights(seed="a")
    with pytest.raises(TypeError, match="seed must be an int"):
        net.feeds(seed="a")
    with pytest.raises(ValueError, match="opset 30"):
        net.session(opset=30)


def test_numpy_integers_are_integers(net, tmp_path):
    path = net.export(tmp_path / "m.onnx", opset=np.int64(18), batch=np.int32(2), seed=np.uint8(3))
    import onnx

    model = onnx.load(str(path))
    assert model.opset_import[0].version == 18
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


@pytest.mark.parametrize("method, call, takes", [
    ("run", lambda n: n.run(np.zeros((1, 1, 32, 32), np.float32), devise="cpu"),
     "`inputs`, `device`, `opset`, `batch`, `weights`, `weights_prefix`, `seed`, `progress`, `dtype`, `f32_io`, `check`"),
    ("session", lambda n: n.session("cpu", sed=1), "`device`, `opset`"),
    ("export", lambda n: n.export("m.onnx", opst=18), "`path`, `opset`"),
])
def test_an_unknown_keyword_names_the_method_called(net, method, call, takes):
    with pytest.raises(TypeError) as info:
        call(net)
    message = str(info.value)
    assert message.startswith(f"Network.{method}() got an unexpected keyword argument")
    assert "to_onnx" not in message and "lowered" not in message
    assert takes in message
    assert {"run": "did you mean `device`?", "session": "did you mean `seed`?",
            "export": "did you mean `opset`?"}[method] in message


def test_input_shapes_as_a_string_is_refused_with_the_list_to_write():
    with pytest.raises(TypeError) as info:
        netspec.load(LENET, input_shapes={"digits": "1,1,64,64"})
    assert str(info.value) == ("netspec.load: input_shapes['digits'] is a string, '1,1,64,64': "
                               "give a list of sizes, e.g. [1, 1, 64, 64]")
    with pytest.raises(TypeError, match="e.g. \\[1, 3, 64, 64\\]"):
        netspec.load(LENET, input_shapes={"digits": 64})


@pytest.mark.parametrize("dims, error, position", [
    ([1, 0, 32, 32], ValueError, 1), ([1, 1, -32, 32], ValueError, 2),
    ([1, 1.5, 32, 32], TypeError, 1), ([True, 1, 32, 32], TypeError, 0), ([1, 1, "3 2", 32], TypeError, 2),
])
def test_each_size_is_a_positive_int_or_a_symbol(dims, error, position):
    with pytest.raises(error, match=rf"input_shapes\['digits'\]\[{position}\] is .*: a size is a positive int "
                                    "or a symbol such as 'N'"):
        netspec.load(LENET, input_shapes={"digits": dims})


def test_input_shapes_take_lists_tuples_arrays_and_symbols():
    for dims in ([2, 1, 36, 36], (2, 1, 36, 36), np.array([2, 1, 36, 36])):
        net = netspec.load(LENET, input_shapes={"digits": dims}).check()
        assert net.input_specs()[0].shape == (2, 1, 36, 36)
    assert netspec.load(LENET, input_shapes={"digits": ["B", 1, 32, 32]}).check().input_specs()[0].shape[0] == "B"
    with pytest.raises(TypeError, match="input_shapes must be a mapping"):
        netspec.load(LENET, input_shapes=[1, 1, 32, 32])


def test_weights_prefix_as_a_mapping_still_works(tmp_path):
    net = netspec.load(LENET)
    weights = {f"module.{k}": v for k, v in net.weights(seed=1).items()}
    outputs = net.run(np.ones((1, 1, 32, 32), np.float32), weights=weights, weights_prefix={"module.": ""})
    assert outputs["logits"].shape == (1, 10)
