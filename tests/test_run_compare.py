"""`netspec run A --compare OTHER`: both models on the same inputs, and per output the max
absolute and relative difference, the cosine similarity and the top-1 agreement."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cli_runner import cli
from netspec.commands.run import compare_arrays, describe_comparison

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"
LINE = re.compile(r"^(?P<label>.+): max abs (?P<abs>\S+), max rel (?P<rel>\S+), cosine (?P<cos>\S+), "
                  r"top-1 (?P<top>.+)$", re.M)


@pytest.fixture(scope="module")
def lenet_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "lenet5.onnx"
    assert cli(["export", LENET, "-o", path], _Capture()) [0] == 0
    return path


class _Capture:  # cli() for a module fixture, where capsys is not available
    def readouterr(self):
        return "", ""


def lenet_variant(tmp_path: Path, old: str, new: str, name: str = "variant.net") -> Path:
    text = LENET.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def comparisons(out: str) -> dict[str, dict]:
    return {m["label"]: {"abs": float(m["abs"]), "rel": float(m["rel"]), "cos": float(m["cos"]),
                         "top": m["top"]} for m in LINE.finditer(out)}


def test_a_spec_against_its_own_export_agrees(lenet_onnx, capsys):
    code, out, err = cli(["run", LENET, "--compare", lenet_onnx, "--batch", "12"], capsys)
    assert code == 0, err
    found = comparisons(out)
    assert list(found) == ["logits"], out
    assert found["logits"]["abs"] < 1e-5 and found["logits"]["rel"] < 1e-4
    assert found["logits"]["cos"] == 1.0 and found["logits"]["top"] == "12/12 (100%)"
    assert out.startswith("logits: [12, 10] float32")  # run's own lines come first


def test_the_given_inputs_feed_both_models(lenet_onnx, tmp_path, capsys):
    data = np.random.default_rng(1).standard_normal((5, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", data)
    code, out, err = cli(["run", lenet_onnx, "--input", tmp_path / "x.npy", "--compare", LENET], capsys)
    assert code == 0, err
    assert comparisons(out)["logits"]["top"] == "5/5 (100%)"


def test_other_weights_differ_and_weights_apply_to_a_only(lenet_onnx, capsys):
    # the ONNX file holds seed 0's weights; the spec compared with it is lowered with seed 3's
    code, out, err = cli(["run", lenet_onnx, "--compare", LENET, "--seed", "3", "--batch", "8"], capsys)
    assert code == 0, err  # a difference is information, not a failure
    found = comparisons(out)["logits"]
    assert found["abs"] > 1e-3 and found["cos"] < 0.99
    assert re.fullmatch(r"\d/8 \(\d+%\)", found["top"])


def test_outputs_of_another_shape_are_a_clear_error(tmp_path, capsys):
    other = lenet_variant(tmp_path, "classes = 10", "classes = 7")
    code, out, err = cli(["run", LENET, "--compare", other], capsys)
    assert code == 1 and "Traceback" not in err
    assert "output `logits` is [1, 7]" in err and "is [1, 10]" in err, err


def test_mismatched_inputs_are_a_clear_error(tmp_path, lenet_onnx, capsys):
    renamed = lenet_variant(tmp_path, "input digits: f32[N, 1, 32, 32]", "input image: f32[N, 1, 32, 32]",
                            "renamed.net")
    renamed.write_text(renamed.read_text(encoding="utf-8").replace("features = digits", "features = image"),
                       encoding="utf-8")
    code, _, err = cli(["run", LENET, "--compare", renamed], capsys)
    assert code == 1 and "Traceback" not in err
    assert "its inputs (`image`) are not those of" in err and "(`digits`)" in err, err

    smaller = lenet_variant(tmp_path, "f32[N, 1, 32, 32]", "f32[N, 1, 28, 28]", "smaller.net")
    code, _, err = cli(["run", lenet_onnx, "--compare", smaller], capsys)
    assert code == 1 and "Traceback" not in err
    assert "its input `digits` is [N, 1, 28, 28]" in err and "feeds it [1, 1, 32, 32]" in err, err


def test_outputs_named_differently_are_matched_by_position(tmp_path, capsys):
    other = lenet_variant(tmp_path, "output logits", "output scores")
    other.write_text(other.read_text(encoding="utf-8").replace("logits = features", "scores = features"),
                     encoding="utf-8")
    code, out, err = cli(["run", LENET, "--compare", other, "--batch", "3"], capsys)
    assert code == 0, err
    assert "output names differ (`logits` vs `scores`); matched by position" in out
    found = comparisons(out)["logits vs scores"]
    assert found["abs"] == 0 and found["top"] == "3/3 (100%)"


def test_a_missing_other_is_a_usage_error(capsys):
    code, _, err = cli(["run", LENET, "--compare", "nowhere.onnx"], capsys)
    assert code == 2 and "no such file" in err


def test_the_figures():
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32)
    b = a.copy()
    b[1] = [1.0, 2.0, 3.5]
    c = compare_arrays(a, b)
    assert c["max_abs"] == 2.5 and c["max_rel"] == pytest.approx(2.5 / 3)
    assert c["cosine"] == pytest.approx(np.dot(a.ravel(), b.ravel()) / np.linalg.norm(a) / np.linalg.norm(b))
    assert c["top1"] == (1, 2)
    assert describe_comparison(c).endswith("top-1 1/2 (50%)")
    assert describe_comparison(compare_arrays(np.ones((2, 3, 4)), np.ones((2, 3, 4)))) == \
        "max abs 0, max rel 0, cosine 1.000000, top-1 n/a"
    assert compare_arrays(np.zeros(3), np.zeros(3))["cosine"] == 1.0


def test_the_readme_quotes_real_comparisons(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    at = readme.index("$ netspec run specs/lenet5.net --compare lenet5.onnx")
    block = readme[readme.rindex("```\n", 0, at) + 4: readme.index("```", at)]
    steps = re.split(r"^\$ ", block, flags=re.M)[1:]
    assert len(steps) == 3, block
    for step in steps:
        command, *expected = step.rstrip("\n").split("\n")
        argv = [tmp_path / "lenet5.onnx" if a == "lenet5.onnx" else ROOT / a if a.startswith("specs/") else a
                for a in command.split()[1:]]
        code, out, err = cli(argv, capsys)
        assert code == 0, err
        if expected:
            assert out.splitlines() == expected, command
