"""A weights file whose names all differ from the network's by a prefix (nn.DataParallel's
`module.`, a renamed top level) is one error naming the renaming, and `--weights-prefix`
(`weights_prefix=` in Python) applies it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import netspec
from netspec.diagnostics import NetspecError
from netspec.weights import renamings, rename
from tests.cli_runner import cli

ROOT = Path(__file__).resolve().parent.parent
RESNET18 = ROOT / "specs" / "resnet18.net"


@pytest.fixture(scope="module")
def weights():
    return netspec.load(RESNET18).weights()


def saved(tmp_path: Path, tensors: dict) -> Path:
    path = tmp_path / "w.safetensors"
    save_file(tensors, str(path))
    return path


def test_a_prefix_on_every_name_is_one_error_with_the_fix(tmp_path, weights, capsys):
    path = saved(tmp_path, {f"module.{k}": v for k, v in weights.items()})
    code, out, err = cli(["export", RESNET18, "-o", tmp_path / "m.onnx", "--weights", path], capsys)
    assert code == 1 and out == ""
    assert err.count("error:") == 1, err
    assert f"{len(weights)} tensors in `{path}` are named with another prefix than the network's: " \
           "`module.` -> `(none)`" in err
    assert "--weights-prefix module.=" in err
    assert not (tmp_path / "m.onnx").exists()


def test_the_option_applies_the_renaming(tmp_path, weights, capsys):
    path = saved(tmp_path, {f"module.{k}": v for k, v in weights.items()})
    code, _, err = cli(["export", RESNET18, "-o", tmp_path / "m.onnx", "--weights", path,
                        "--weights-prefix", "module.="], capsys)
    assert code == 0, err
    model = netspec.load(RESNET18).to_onnx(weights=path, weights_prefix={"module.": ""})
    init = {t.name: t for t in model.graph.initializer}
    from onnx import numpy_helper

    assert np.array_equal(numpy_helper.to_array(init["fc.weight"]), weights["fc.weight"])


def test_a_renamed_top_level_and_a_stray_tensor(tmp_path, weights):
    tensors = {k.replace("layer1.", "stage1.", 1) if k.startswith("layer1.") else k: v for k, v in weights.items()}
    tensors["extra.bias"] = np.zeros(3, np.float32)
    with pytest.raises(NetspecError) as caught:
        netspec.load(RESNET18).weights(saved(tmp_path, tensors))
    messages = [d.message for d in caught.value.diagnostics]
    layer1 = sum(k.startswith("layer1.") for k in weights)
    assert messages[0].startswith(f"{layer1} tensors in ") and "`stage1.` -> `layer1.`" in messages[0]
    assert any("`extra.bias`" in m for m in messages[1:])  # the unexplained one, on its own
    assert len(messages) == 2


def test_renamings_find_the_rules_and_nothing_else():
    missing = ["features.0.weight", "features.0.bias", "classifier.1.weight"]
    extra = ["feature_extraction.0.weight", "feature_extraction.0.bias", "head.weight"]
    assert renamings(missing, extra) == {"feature_extraction.": "features."}
    assert renamings(["a.weight"], ["b.weight"]) == {"b.": "a."}  # all names: one is enough
    assert renamings(["x.weight", "y.weight"], ["p.weight", "q.bias"]) == {}
    assert rename({"module.a": 1, "b": 2}, {"module.": ""}) == {"a": 1, "b": 2}


def test_the_option_without_a_weights_file_is_a_usage_error(tmp_path, weights, capsys):
    code, _, err = cli(["export", RESNET18, "-o", tmp_path / "m.onnx", "--weights-prefix", "module.="], capsys)
    assert code == 2 and "give the file too" in err
    code, _, err = cli(["export", RESNET18, "-o", tmp_path / "m.onnx", "--weights", saved(tmp_path, weights),
                        "--weights-prefix", "module"], capsys)
    assert code == 2 and "expected OLD=NEW" in err


def test_a_prefix_written_without_its_dot_means_the_same():
    tensors = {"module.features.0.weight": 1, "module.fc.bias": 2}
    assert rename(tensors, {"module": ""}) == rename(tensors, {"module.": ""}) == {"features.0.weight": 1, "fc.bias": 2}
    assert rename({"features.0.weight": 1}, {"features.": "stage1"}) == {"stage1.0.weight": 1}
    assert rename({"features.0.weight": 1}, {"features": "stage1"}) == {"stage1.0.weight": 1}
    with pytest.raises(TypeError, match=r'a mapping of old prefixes to new ones, e.g. \{"module.": ""\}'):
        rename(tensors, "module.=")


def test_the_option_without_the_dot_loads(tmp_path, weights, capsys):
    path = saved(tmp_path, {f"module.{k}": v for k, v in weights.items()})
    code, _, err = cli(["export", RESNET18, "-o", tmp_path / "m.onnx", "--weights", path,
                        "--weights-prefix", "module="], capsys)
    assert code == 0, err
