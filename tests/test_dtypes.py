"""Every dtype a spec can declare, walked through `check`, `export` and `run` (in process,
through netspec.cli.main), and the pieces that carry dtypes: the layers' dtype rules, `cast`,
the feeds function, weights, the lowering's value names, and the README's kernel table.

Each walk ends either in success (outputs of the declared dtype, with values equal to numpy's
for layers that move values, or within the tolerance below of PyTorch's for layers that
compute) or in a located error with exit 1 (file:line:column, the layer, what ONNX or
onnxruntime lacks), never exit 3 or a traceback. Which one is not written here case by case: a
run that fails must name a kernel that the README's table (measured by bench/dtype_kernels.py,
and held to this onnxruntime by test_the_readme_kernel_table_is_what_onnxruntime_does) lists as
missing, and f16 and f32, which onnxruntime runs everywhere on the CPU, must succeed.

Tolerances, as max |got - want| / max(1, max |want|): f32 1e-4 (as the differential test), f64
1e-9 (against PyTorch in f64), f16 4e-3 against an f32 computation on the same inputs and
weights rounded to f16 (11 significant bits: one rounding is up to 4.9e-4, and onnxruntime
rounds each operator's result), bf16 3e-2 likewise (8 bits: 3.9e-3 a rounding).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

import netspec
from cli_runner import cli
from netspec.diagnostics import NetspecError
from netspec.lower import NUMPY_DTYPES, ONNX_DTYPES, Builder, lower
from netspec.runtime import FeedError, InputSpec, feeds, random_array, read_inputs
from netspec.types import DTYPES, FLOATS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BATCH = 2
TOLERANCE = {"f32": 1e-4, "f64": 1e-9, "f16": 4e-3, "bf16": 3e-2}
BF16 = np.dtype(ml_dtypes.bfloat16)

torch.set_grad_enabled(False)


def write(tmp_path: Path, text: str, name: str = "t.net") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def located_failure(code: int, err: str, spec: Path) -> None:
    """Exit 1 with a diagnostic located in the spec; no traceback, no internal error."""
    assert code == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.startswith("error: "), err
    assert re.search(re.escape(spec.name) + r":\d+:\d+", err), err
    assert "= layer: " in err, err


def kernel_table() -> dict[tuple[str, str], str]:
    """The README's kernel table: (ONNX op, dtype) -> cell (`ok`, `no kernel (22+)`, ...)."""
    start = README.index("| op (onnxruntime")
    lines = README[start:README.index("\n\n", start)].splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    cells = {}
    for line in lines[2:]:
        op, *row = [c.strip() for c in line.strip("|").split("|")]
        cells.update({(op, dtype): cell for dtype, cell in zip(header, row)})
    return cells


def table_says_no_kernel(op: str, dtype: str, opset: int) -> bool:
    """Whether the README's table lists onnxruntime's CPU as lacking `op` in `dtype` at `opset`."""
    table = kernel_table()
    cells = [cell for (name, d), cell in table.items() if d == dtype and name.split()[0] == op]
    assert cells, f"the README's table has no row for {op}"
    for cell in cells:
        first, *later = cell.split("; ")
        result = first.split(" (")[0]
        for part in later:  # "ok at 22"
            other, _, at = part.rpartition(" at ")
            if opset >= int(at):
                result = other
        if result == "no kernel":
            return True
    return False


def rounded(array: np.ndarray, dtype: str) -> np.ndarray:
    """`array` as the dtype holds it, back in float64 (the reference's inputs)."""
    return np.asarray(array).astype(NUMPY_DTYPES[dtype]).astype(np.float64)


# ================================================================ every dtype, end to end

# (spec body over input `x` of the dtype, how to compute the reference)
CONV = """
    network t
    input x: {dtype}[N, 3, 8, 8]
    y = x -> conv(4, 3, padding=1) -> batchnorm -> relu -> maxpool(2) -> flatten -> linear(5)
    output y
"""
DENSE = """
    network t
    input x: {dtype}[N, 12]
    y = x -> linear(8) -> relu -> linear(4) -> softmax
    output y
"""
VALUES = """
    network t
    input x: {dtype}[N, 2, 3, 3]
    input e: {dtype}[N, 1, 3, 3]
    joined = concat(x -> identity -> dropout(0.3), e) -> pad(1, value=1)
    y = joined -> flatten
    {arithmetic}
    output y{outputs}
"""


def torch_dtype(dtype: str):
    return {"f32": torch.float32, "f64": torch.float64}.get(dtype, torch.float32)


def reference(kind: str, dtype: str, inputs: dict, weights: dict) -> dict[str, np.ndarray]:
    """What the spec computes, by PyTorch (conv, dense) or numpy (values), in f64 for f64, in f32
    for the others, from the inputs and weights as the dtype holds them."""
    if kind == "values":
        x, e = inputs["x"], inputs["e"]
        joined = np.pad(np.concatenate([x, e], axis=1), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=1)
        out = {"y": joined.reshape(len(x), -1)}
        if dtype != "bool":
            out["p"] = (x + x) * x
        return out
    t = torch_dtype(dtype)
    w = {k: torch.from_numpy(np.asarray(v).astype(np.float64)).to(t) for k, v in weights.items()}
    x = torch.from_numpy(rounded(inputs["x"], dtype)).to(t)
    if kind == "conv":
        h = F.conv2d(x, w["y.0.weight"], w["y.0.bias"], padding=1)
        h = F.batch_norm(h, w["y.1.running_mean"], w["y.1.running_var"], w["y.1.weight"], w["y.1.bias"],
                         training=False, eps=1e-5)
        h = F.max_pool2d(F.relu(h), 2).flatten(1)
        h = F.linear(h, w["y.5.weight"], w["y.5.bias"])
    else:
        h = F.relu(F.linear(x, w["y.0.weight"], w["y.0.bias"]))
        h = torch.softmax(F.linear(h, w["y.2.weight"], w["y.2.bias"]), 1)
    return {"y": h.numpy()}


def input_arrays(kind: str, dtype: str) -> dict[str, np.ndarray]:
    """Inputs for the walk, in the dtype (bf16 as float32: numpy's .npz cannot hold bf16, and
    feeding float32 to a bf16 input rounds it, which the walk relies on)."""
    rng = np.random.default_rng(7)
    if kind == "values":
        shapes = {"x": (BATCH, 2, 3, 3), "e": (BATCH, 1, 3, 3)}
    else:
        shapes = {"x": (BATCH, 3, 8, 8) if kind == "conv" else (BATCH, 12)}
    out = {}
    for name, shape in shapes.items():
        if dtype == "bool":
            out[name] = rng.random(shape) < 0.5
        elif dtype in FLOATS:
            out[name] = rng.standard_normal(shape).astype(np.float32 if dtype == "bf16" else NUMPY_DTYPES[dtype])
        else:  # small integers: (x + x) * x stays inside every integer dtype
            low = 0 if dtype == "u8" else -3
            out[name] = rng.integers(low, 4, shape).astype(NUMPY_DTYPES[dtype])
    return out


def spec_text(kind: str, dtype: str) -> str:
    if kind == "conv":
        return CONV.format(dtype=dtype)
    if kind == "dense":
        return DENSE.format(dtype=dtype)
    arithmetic = "" if dtype == "bool" else "p = (x + x) * x"
    return VALUES.format(dtype=dtype, arithmetic=arithmetic, outputs="" if dtype == "bool" else ", p")


def check_exported(path: Path, dtype: str, kind: str) -> None:
    """The written model passes the full check; its inputs, outputs and float weights have
    the declared dtype."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    want = ONNX_DTYPES[dtype]
    assert {i.type.tensor_type.elem_type for i in model.graph.input} == {want}
    assert {o.type.tensor_type.elem_type for o in model.graph.output} == {want}
    weights = [t for t in model.graph.initializer if t.name.endswith((".weight", ".bias"))]
    assert (len(weights) > 0) == (kind != "values")
    assert all(t.data_type == want for t in weights), [(t.name, t.data_type) for t in weights]


@pytest.mark.parametrize("kind", ["conv", "dense", "values"])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_every_dtype_through_check_export_and_run(kind, dtype, tmp_path, capsys):
    spec = write(tmp_path, spec_text(kind, dtype))
    code, out, err = cli(["check", spec], capsys)
    if kind != "values" and dtype not in FLOATS:  # the layers compute in floating point only
        located_failure(code, err, spec)
        layer = "conv" if kind == "conv" else "linear"
        assert f"error: {layer}: takes floating-point tensors (f16, bf16, f32, f64); `x` is {dtype}" in err
        assert f"cast it first: `-> cast(f32) -> {layer}`" in err
        for command in (["export", spec, "-o", tmp_path / "m.onnx"], ["run", spec]):
            code, _, err = cli(command, capsys)
            located_failure(code, err, spec)
        assert not (tmp_path / "m.onnx").exists()
        return
    assert code == 0, err

    model = tmp_path / "m.onnx"
    code, out, err = cli(["export", spec, "-o", model], capsys)
    opset = 17
    if code != 0:  # ONNX has no such operator at opset 17 in this dtype: the hint names the opset
        located_failure(code, err, spec)
        found = re.search(r"ONNX's (\w+) takes no (\w+) tensors at opset 17", err)
        assert found and found.group(2) == dtype, err
        opset = int(re.search(r"--opset (\d+)", err).group(1))
        assert "(" + str(opset) + "+)" in kernel_table()[(found.group(1), dtype)]
        code, out, err = cli(["export", spec, "-o", model, "--opset", opset], capsys)
        assert code == 0, err
    check_exported(model, dtype, kind)

    arrays = input_arrays(kind, dtype)
    np.savez(tmp_path / "in.npz", **arrays)
    code, out, err = cli(["run", spec, "--opset", opset, "--input", tmp_path / "in.npz",
                          "-o", tmp_path / "out.npz"], capsys)
    if code != 0:
        located_failure(code, err, spec)
        missing = re.search(r"onnxruntime has no (\w+) kernel for ONNX's (\w+) on the CPU", err)
        assert missing and missing.group(1) == dtype, err
        assert table_says_no_kernel(missing.group(2), dtype, opset), (missing.group(2), dtype, opset)
        assert dtype not in ("f16", "f32"), err
        assert not (tmp_path / "out.npz").exists()
        return
    numpy_name = str(NUMPY_DTYPES[dtype])
    printed = dict(re.findall(r"^(\w+): \[[\d, ]*\] (\w+),", out, re.M))
    weights = netspec.load(spec).weights(seed=0)
    want = reference(kind, dtype, {k: np.asarray(v) for k, v in arrays.items()}, weights)
    assert set(printed) == set(want), out
    with np.load(tmp_path / "out.npz") as saved:
        for name, expected in want.items():
            assert printed[name] == numpy_name, out
            got = saved[name]
            assert got.dtype == (np.float32 if dtype == "bf16" else NUMPY_DTYPES[dtype])  # bf16 saved as f32
            assert got.shape == expected.shape
            if kind == "values":  # moving values and integer arithmetic: exact
                np.testing.assert_array_equal(got, rounded(expected, dtype).astype(got.dtype)
                                              if dtype == "bf16" else expected)
            else:
                scale = max(1.0, float(np.abs(expected).max()))
                error = float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max())
                assert error <= TOLERANCE[dtype] * scale, (dtype, error, scale)


def test_the_readme_kernel_table_is_what_onnxruntime_does():
    """bench/dtype_kernels.py measures the table again; the README quotes it unchanged."""
    spec = importlib.util.spec_from_file_location("dtype_kernels", ROOT / "bench" / "dtype_kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    measured = module.table()
    assert measured in README, "README's dtype table differs from `python bench/dtype_kernels.py`:\n" + measured
    # and the prose beside it says what the table says of the opsets
    assert "bf16 Conv, pools and\n  InstanceNormalization before opset 22" in README
    for op in ("Conv", "MaxPool", "AveragePool", "InstanceNormalization"):
        assert "(22+)" in kernel_table()[(op, "bf16")]


def test_the_readme_dtype_error_is_real(capsys):
    block = re.search(r"```\n\$ netspec check (tests/bad/conv_on_integer_input\.net)\n(.*?)```", README, re.S)
    assert block, "the README quotes no dtype error"
    code, out, err = cli(["check", ROOT / block.group(1)], capsys)
    assert code == 1
    assert err.replace(str(ROOT) + "/", "").rstrip() == block.group(2).rstrip()


def test_an_onnx_file_of_any_dtype_runs_with_seeded_inputs(tmp_path, capsys):
    """`netspec run model.onnx` reads each input's dtype from the model (it used to feed
    float32 to everything: an internal error for an f16 or i64 model)."""
    for dtype in ("f16", "i64", "bool"):
        spec = write(tmp_path, f"""
            network t
            input x: {dtype}[N, 2, 4, 4]
            y = x -> pad(1) -> flatten
            output y
        """, f"{dtype}.net")
        model = tmp_path / f"{dtype}.onnx"
        assert cli(["export", spec, "-o", model], capsys)[0] == 0
        code, out, err = cli(["run", model, "--seed", "3", "-o", tmp_path / "o.npz"], capsys)
        assert code == 0, err
        assert f"y: [1, 72] {NUMPY_DTYPES[dtype]}" in out
        x = random_array([1, 2, 4, 4], NUMPY_DTYPES[dtype], np.random.default_rng(3))
        with np.load(tmp_path / "o.npz") as saved:
            np.testing.assert_array_equal(saved["y"], np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).reshape(1, -1))


def test_run_on_a_layer_without_a_kernel_names_the_layer_and_the_fix(tmp_path, capsys):
    spec = write(tmp_path, """
        network t
        input x: f64[N, 3, 8, 8]
        y = x -> relu -> stem: conv(4, 3) -> relu
        output y
    """)
    code, out, err = cli(["run", spec], capsys)
    located_failure(code, err, spec)
    assert "error: conv: onnxruntime has no f64 kernel for ONNX's Conv on the CPU" in err
    assert "t.net:3:18" in err and "= layer: stem" in err
    assert "`-> cast(f32) -> conv(...) -> cast(f64)`" in err
    # the fix it suggests runs, and keeps the declared dtypes at both ends
    fixed = write(tmp_path, """
        network t
        input x: f64[N, 3, 8, 8]
        y = x -> relu -> cast(f32) -> stem: conv(4, 3) -> cast(f64) -> relu
        output y
    """, "fixed.net")
    code, out, err = cli(["run", fixed], capsys)
    assert code == 0, err
    assert "y: [1, 4, 6, 6] float64" in out


def test_an_operator_expanded_by_onnxruntime_is_still_located(tmp_path, capsys):
    """onnxruntime expands an operator it has no kernel for into its ONNX function body, whose
    nodes have no names (bf16 softmax becomes ReduceMax, Sub, Exp ...): the layer is found anyway."""
    spec = write(tmp_path, """
        network t
        input x: bf16[N, 10]
        y = x -> probs: softmax
        output y
    """)
    code, out, err = cli(["run", spec], capsys)
    located_failure(code, err, spec)
    assert "error: softmax: onnxruntime has no bf16 kernel for ONNX's Softmax on the CPU" in err
    assert "= layer: probs" in err


def test_features_of_a_layer_without_a_kernel_is_located(tmp_path, capsys):
    spec = write(tmp_path, """
        network t
        input x: f64[N, 3, 8, 8]
        y = x -> conv(4, 3) -> relu
        output y
    """)
    code, out, err = cli(["features", spec, "--layer", "y.1", "-o", tmp_path / "m.npz"], capsys)
    located_failure(code, err, spec)
    assert "conv: onnxruntime has no f64 kernel" in err
    # the input layer of an f16 network draws: its maps are f16
    spec16 = write(tmp_path, spec.read_text().replace("f64", "f16"), "h.net")
    code, out, err = cli(["features", spec16, "--layer", "y.0", "--layer", "y.1", "-o", tmp_path / "m.npz"], capsys)
    assert code == 0, err
    with np.load(tmp_path / "m.npz") as maps:
        assert maps["y.0"].dtype == np.float16 and maps["y.1"].dtype == np.float16
        assert (maps["y.1"] >= 0).all() and (maps["y.1"] == np.maximum(maps["y.0"], 0)).all()


def test_bf16_conv_exports_at_opset_22_and_the_model_keeps_bf16(tmp_path, capsys):
    spec = write(tmp_path, """
        network t
        input x: bf16[N, 3, 8, 8]
        y = x -> conv(4, 3) -> maxpool(2)
        output y
    """)
    code, _, err = cli(["export", spec, "-o", tmp_path / "a.onnx"], capsys)
    located_failure(code, err, spec)
    assert "conv: ONNX's Conv takes no bf16 tensors at opset 17" in err and "--opset 22" in err
    assert "maxpool: ONNX's MaxPool takes no bf16 tensors at opset 17" in err  # every layer at once
    assert not (tmp_path / "a.onnx").exists()
    code, _, err = cli(["export", spec, "-o", tmp_path / "b.onnx", "--opset", "22"], capsys)
    assert code == 0, err
    check_exported(tmp_path / "b.onnx", "bf16", "conv")


# ================================================================ the dtype rules

def test_dtype_rules_are_declared_once_per_layer_class():
    from netspec.layers import LAYERS
    from netspec.layers.base import Layer
    from netspec.types import ANY_DTYPE, NUMBERS

    assert Layer.dtypes == FLOATS
    takes = {kind: cls.dtypes for kind, cls in LAYERS.items()}
    rearrangements = {"reshape", "unflatten", "squeeze", "unsqueeze", "permute", "transpose", "slice",
                      "narrow", "select", "split", "chunk", "roll", "gather", "channel_shuffle"}
    assert {k for k, v in takes.items() if v == ANY_DTYPE} == {"flatten", "identity", "dropout", "pad",
                                                               "concat", "cast", "stochastic_depth",
                                                               *rearrangements}
    assert {k for k, v in takes.items() if v == NUMBERS} == {"add", "mul"}
    assert all(v == FLOATS for k, v in takes.items() if v not in (ANY_DTYPE, NUMBERS))


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_the_output_dtype_is_the_dtype_rule_s(dtype, tmp_path):
    spec = write(tmp_path, f"""
        network t
        input x: {dtype}[N, 2, 4, 4]
        a = x -> flatten
        b = x -> cast(f16)
        c = x -> cast(bool) -> pad(1)
        output a, b, c
    """)
    graph = netspec.load(spec).check().graph
    assert [graph.node(n).output.dtype for n in ("a", "b", "c.1")] == [dtype, "f16", "bool"]


def test_mixed_dtypes_in_a_merge_name_both_operands(tmp_path, capsys):
    spec = write(tmp_path, """
        network t
        input a: f32[N, 4]
        input b: i64[N, 4]
        y = a * b
        output y
    """)
    code, _, err = cli(["check", spec], capsys)
    located_failure(code, err, spec)
    assert "mul: inputs of different dtypes: `a` [N, 4] is f32, `b` [N, 4] is i64" in err
    assert err.count("error:") == 1


def test_json_reports_each_layer_s_dtype(tmp_path, capsys):
    import json

    spec = write(tmp_path, """
        network t
        input x: u8[N, 3, 8, 8]
        y = x -> cast(f32) -> conv(4, 3) -> cast(f16)
        output y
    """)
    code, out, err = cli(["check", spec, "--json"], capsys)
    assert code == 0, err
    layers = {row["name"]: row["output"]["dtype"] for row in json.loads(out)["layers"]}
    assert layers == {"x": "u8", "y.0": "f32", "y.1": "f32", "y.2": "f16"}


# ================================================================ cast

def test_cast_bare_and_quoted_are_one_layer(tmp_path):
    bare = netspec.load(write(tmp_path, """
        network t
        input x: i64[N, 4]
        y = x -> cast(f32)
        output y
    """, "a.net")).check().graph.node("y")
    quoted = netspec.load(write(tmp_path, """
        network t
        input x: i64[N, 4]
        y = cast(x, dtype="f32")
        output y
    """, "b.net")).check().graph.node("y")
    assert bare.layer == quoted.layer and bare.output == quoted.output
    assert bare.summary == "cast i64 -> f32" and bare.output.dtype == "f32"


def test_a_binding_named_like_a_dtype_shadows_it(tmp_path):
    spec = write(tmp_path, """
        network t(f16 = "i32")
        input x: f32[N, 4]
        y = x -> cast(f16)
        output y
    """)
    assert netspec.load(spec).check().graph.node("y").output.dtype == "i32"


def test_cast_values_follow_torch(tmp_path):
    """float -> int truncates toward zero, -> bool is x != 0, bool -> float is 0/1, int -> u8 of
    values in range is exact; compared with torch's `.to`."""
    spec = write(tmp_path, """
        network t
        input x: f32[N, 6]
        i = x -> cast(i32)
        b = x -> cast(bool)
        f = b -> cast(f16)
        u = i -> relu_free: cast(u8)
        output i, b, f, u
    """)
    x = np.array([[-2.7, -0.5, 0.0, 0.4, 1.999, 7.0], [3.5, -3.5, 0.0, 1e-3, 100.25, -0.0]], np.float32)
    got = netspec.load(spec).run(x)
    t = torch.from_numpy(x)
    assert got["i"].dtype == np.int32 and (got["i"] == t.to(torch.int32).numpy()).all()
    assert got["b"].dtype == np.bool_ and (got["b"] == t.to(torch.bool).numpy()).all()
    assert got["f"].dtype == np.float16 and (got["f"] == t.to(torch.bool).to(torch.float16).numpy()).all()
    inrange = t.to(torch.int32).clamp(min=0)
    assert got["u"].dtype == np.uint8
    assert (got["u"][got["i"] >= 0] == inrange.to(torch.uint8).numpy()[got["i"] >= 0]).all()


def test_cast_to_its_own_dtype_is_an_identity_named_after_the_layer(tmp_path):
    spec = write(tmp_path, """
        network t
        input x: f32[N, 4]
        y = x -> same: cast(f32) -> relu
        output y
    """)
    model = netspec.load(spec).to_onnx()
    node = next(n for n in model.graph.node if n.name == "same")
    assert node.op_type == "Identity" and list(node.input) == ["x"] and list(node.output) == ["same"]


# ================================================================ the feeds function

def spec_of(dtype: str, shape=("N", 3, 4, 4), name: str = "x") -> InputSpec:
    return InputSpec(name, tuple(shape), "NCHW" if len(shape) == 4 else "NC", NUMPY_DTYPES[dtype])


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_seeded_feeds_have_the_input_s_dtype(dtype):
    out = feeds([spec_of(dtype)], None, seed=5, batch=3)
    x = out["x"]
    assert x.dtype == NUMPY_DTYPES[dtype] and x.shape == (3, 3, 4, 4)
    again = feeds([spec_of(dtype)], None, seed=5, batch=3)["x"]
    assert x.tobytes() == again.tobytes()                         # the seed decides the values
    wide = x.astype(np.float64)
    if dtype == "bool":
        assert x.any() and not x.all()
    elif dtype in FLOATS:
        assert 0.3 < wide.std() < 3 and abs(wide.mean()) < 0.5
    else:
        low = 0 if dtype == "u8" else -8
        assert wide.min() >= low and wide.max() <= low + 15 and len(np.unique(x)) > 8


def test_feeds_convert_what_loses_nothing():
    f32, f16, i64, u8, b = (spec_of(d, ("N", 4)) for d in ("f32", "f16", "i64", "u8", "bool"))
    values = np.array([[0.5, -1.25, 3.0, 1e-3]])
    assert feeds([f32], values)["x"].dtype == np.float32                       # float64 data, f32 input
    np.testing.assert_array_equal(feeds([f16], values)["x"], values.astype(np.float16))
    assert feeds([f32], np.array([[1, 2, 3, 4]]))["x"].dtype == np.float32      # integers to floats
    assert feeds([i64], np.array([[1, 2, 3, 4]], np.int8))["x"].dtype == np.int64
    np.testing.assert_array_equal(feeds([u8], [[0, 1, 254, 255]])["x"], np.array([[0, 1, 254, 255]], np.uint8))
    np.testing.assert_array_equal(feeds([b], [[0, 1, 1, 0]])["x"], np.array([[False, True, True, False]]))
    np.testing.assert_array_equal(feeds([f32], [[True, False, True, True]])["x"], [[1, 0, 1, 1]])
    bf16 = feeds([spec_of("bf16", ("N", 4))], values)["x"]
    assert bf16.dtype == BF16 and (bf16.astype(np.float64) == values.astype(BF16).astype(np.float64)).all()
    assert feeds([f32], values[0])["x"].shape == (1, 4)                         # one sample gets a batch


@pytest.mark.parametrize("dtype, array, message", [
    ("i64", np.array([[0.0, 1.0, 2.0, 3.0]]), "input `x` takes int64 values; the array holds float64"),
    ("bool", np.array([[0.0, 1.0, 0.0, 1.0]], np.float32), "input `x` takes bool values; the array holds float32"),
    ("bool", np.array([[0, 1, 2, 1]]), "input `x` takes bool values; the array holds int64 values other than 0 and 1"),
    ("u8", np.array([[0, 1, 256, 3]]), "input `x` takes uint8 values (0 to 255); the array holds 0 to 256"),
    ("i8", np.array([[-129, 1, 2, 3]]), "input `x` takes int8 values (-128 to 127); the array holds -129 to 3"),
    ("f16", np.array([[1e5, 1, 2, 3]]), "input `x` is float16: the array holds values up to 100000, which float16 cannot hold"),
    ("f32", np.array([["a", "b", "c", "d"]]), "input `x` takes float32 values; the array holds <U1, not numbers"),
])
def test_feeds_refuse_what_would_change_the_values(dtype, array, message):
    with pytest.raises(FeedError) as info:
        feeds([spec_of(dtype, ("N", 4))], array)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and isinstance(info.value, NetspecError)


def test_feed_errors_print_shapes_and_names_as_netspec_does():
    specs = [spec_of("f32", ("N", 3, 224, 224), "image"), spec_of("i64", ("N", 16), "idx")]
    with pytest.raises(FeedError) as info:
        feeds(specs[:1], np.zeros((2, 3, 64, 64), np.float32))
    assert str(info.value) == ("input `image` has shape [2, 3, 64, 64], the model expects "
                               "[N, 3, 224, 224] (NCHW)")
    with pytest.raises(FeedError) as info:
        feeds(specs, {"image": np.zeros((1, 3, 224, 224)), "index": np.zeros((1, 16), np.int64)})
    assert str(info.value) == "the arrays do not match the model's inputs: missing `idx`, unexpected `index`"
    assert info.value.diagnostics[0].hint == "the inputs are `image`, `idx`"
    with pytest.raises(FeedError, match=r"^the model has 2 inputs \(`image`, `idx`\)"):
        feeds(specs, np.zeros((1, 16)))
    for error in (info.value,):
        assert "['" not in str(error) and "'N'" not in str(error)


def test_read_inputs_converts_files_and_images(tmp_path):
    from PIL import Image

    np.savez(tmp_path / "a.npz", idx=np.arange(16).reshape(1, 16).astype(np.int32))
    got = read_inputs(tmp_path / "a.npz", [spec_of("i64", ("N", 16), "idx")])
    assert got["idx"].dtype == np.int64 and (got["idx"] == np.arange(16)).all()
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    Image.fromarray(pixels).save(tmp_path / "p.png")
    u8 = read_inputs(tmp_path / "p.png", [InputSpec("x", ("N", 3, 4, 4), "NCHW", np.dtype(np.uint8))])["x"]
    assert u8.dtype == np.uint8 and (u8[0] == pixels.transpose(2, 0, 1)).all()          # raw pixels
    f16 = read_inputs(tmp_path / "p.png", [InputSpec("x", ("N", 4, 4, 3), "NHWC", np.dtype(np.float16))])["x"]
    assert f16.dtype == np.float16 and np.allclose(f16[0], pixels / 255.0, atol=1e-3)  # scaled to [0, 1]
    with pytest.raises(NetspecError, match="needs a floating-point input"):
        read_inputs(tmp_path / "p.png", [InputSpec("x", ("N", 3, 4, 4), "NCHW", np.dtype(np.uint8))], "imagenet")


def test_every_feeder_uses_the_one_function(tmp_path, monkeypatch):
    """run (spec and .onnx), features and the API all build their feeds with runtime.feeds."""
    from netspec import runtime

    calls = []
    real = runtime.feeds
    monkeypatch.setattr(runtime, "feeds", lambda *a, **k: calls.append(1) or real(*a, **k))
    spec = write(tmp_path, """
        network t
        input x: f16[N, 2, 4, 4]
        y = x -> conv(2, 1)
        output y
    """)
    net = netspec.load(spec)
    net.run(np.ones((1, 2, 4, 4)))
    from netspec.features import feature_maps

    feature_maps(net, ["y"], None)
    np.save(tmp_path / "x.npy", np.ones((1, 2, 4, 4)))
    from netspec.cli import main

    assert main(["run", str(spec)]) == 0
    assert main(["run", str(spec), "--input", str(tmp_path / "x.npy")]) == 0
    net.export(tmp_path / "m.onnx")
    assert main(["run", str(tmp_path / "m.onnx")]) == 0
    assert len(calls) == 5


def test_the_api_runs_any_dtype_and_returns_it(tmp_path):
    spec = write(tmp_path, """
        network t
        input x: f16[N, 4]
        input m: bool[N, 4]
        y = x -> linear(3)
        k = m -> identity
        output y, k
    """)
    net = netspec.load(spec)
    out = net.run({"x": np.ones((2, 4)), "m": [[1, 0, 1, 0], [0, 0, 0, 1]]})
    assert out["y"].dtype == np.float16 and out["k"].dtype == np.bool_
    assert out["k"].tolist() == [[True, False, True, False], [False, False, False, True]]
    seeded = net.run(None, seed=2)  # no inputs: seeded values of each dtype
    assert seeded["k"].dtype == np.bool_ and seeded["y"].shape == (1, 3)


# ================================================================ weights

def conv_net(tmp_path, dtype: str):
    return netspec.load(write(tmp_path, f"""
        network t
        input x: {dtype}[N, 3, 8, 8]
        y = x -> conv(4, 3) -> batchnorm
        output y
    """, f"{dtype}.net"))


@pytest.mark.parametrize("dtype", list(FLOATS))
def test_weights_take_the_dtype_of_the_data_they_multiply(dtype, tmp_path):
    net = conv_net(tmp_path, dtype)
    weights = net.weights(seed=1)
    floats = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    assert {v.dtype for v in floats.values()} == {NUMPY_DTYPES[dtype]}
    assert weights["y.1.num_batches_tracked"].dtype == np.int64
    reference32 = conv_net(tmp_path, "f32").weights(seed=1)  # one seed, one set of values
    for name, value in floats.items():
        np.testing.assert_array_equal(value, reference32[name].astype(np.float64).astype(NUMPY_DTYPES[dtype])
                                      if dtype != "f64" else value)
    model = net.to_onnx(seed=1, opset=22)  # bf16 convolutions need opset 22
    inits = {t.name: t.data_type for t in model.graph.initializer}
    assert inits["y.0.weight"] == inits["y.1.running_var"] == ONNX_DTYPES[dtype]


def test_a_float32_weights_file_loads_into_an_f16_network(tmp_path, capsys):
    from safetensors.numpy import save_file

    net32, net16 = conv_net(tmp_path, "f32"), conv_net(tmp_path, "f16")
    weights = net32.weights(seed=3)
    save_file(weights, str(tmp_path / "w.safetensors"))
    loaded = net16.weights(tmp_path / "w.safetensors")
    assert loaded["y.0.weight"].dtype == np.float16
    np.testing.assert_array_equal(loaded["y.0.weight"], weights["y.0.weight"].astype(np.float16))
    code, out, err = cli(["run", tmp_path / "f16.net", "--weights", tmp_path / "w.safetensors"], capsys)
    assert code == 0 and "y: [1, 4, 6, 6] float16" in out, err


def test_float64_weights_convert_to_f32_silently_as_the_readme_says(tmp_path, capsys):
    net = conv_net(tmp_path, "f32")
    weights = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in net.weights(seed=4).items()}
    np.savez(tmp_path / "w.npz", **weights)
    code, out, err = cli(["export", tmp_path / "f32.net", "-o", tmp_path / "m.onnx", "--weights", tmp_path / "w.npz"],
                         capsys)
    assert code == 0 and err == "", err
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(tmp_path / "m.onnx").graph.initializer}
    assert inits["y.0.weight"].dtype == np.float32
    np.testing.assert_array_equal(inits["y.0.weight"], weights["y.0.weight"].astype(np.float32))
    assert "A float tensor of any width converts to its\n  parameter's dtype" in README


def test_weights_the_dtype_cannot_hold_or_of_the_wrong_kind_are_reported(tmp_path, capsys):
    net = conv_net(tmp_path, "f16")
    weights = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in net.weights().items()}
    weights["y.0.weight"][0, 0, 0, 0] = 1e5
    weights["y.1.num_batches_tracked"] = np.array(3.0)
    np.savez(tmp_path / "w.npz", **weights)
    code, _, err = cli(["run", tmp_path / "f16.net", "--weights", tmp_path / "w.npz"], capsys)
    assert code == 1 and "Traceback" not in err, err
    assert "`y.0.weight` holds values up to 100000, more than f16 can hold" in err
    assert "`y.1.num_batches_tracked` holds float64 values, expected integers (i64)" in err
    assert "2 errors" in err


def test_bf16_weights_come_from_safetensors_not_npz(tmp_path, capsys):
    from safetensors.numpy import save_file

    net = conv_net(tmp_path, "bf16")
    weights = net.weights(seed=2)
    assert weights["y.0.weight"].dtype == BF16
    save_file(weights, str(tmp_path / "w.safetensors"))
    loaded = net.weights(tmp_path / "w.safetensors")
    assert loaded["y.0.weight"].tobytes() == weights["y.0.weight"].tobytes()
    np.savez(tmp_path / "w.npz", **weights)   # numpy writes bf16 as raw two-byte records
    code, _, err = cli(["export", tmp_path / "bf16.net", "-o", tmp_path / "m.onnx", "--opset", "22",
                        "--weights", tmp_path / "w.npz"], capsys)
    assert code == 1 and "holds raw bytes, not numbers, expected floating point (bf16)" in err, err
    assert "save them with safetensors" in err
    code, _, err = cli(["export", tmp_path / "bf16.net", "-o", tmp_path / "m.onnx", "--opset", "22",
                        "--weights", tmp_path / "w.safetensors"], capsys)
    assert code == 0, err


# ================================================================ lowering: a layer's value gets its name

def test_builder_op_has_no_final_argument():
    assert "final" not in inspect.signature(Builder.op).parameters


def _graph(tmp_path, text: str):
    return netspec.load(write(tmp_path, text)).check()


def test_a_layer_s_value_is_named_by_the_pass_not_by_the_layer(tmp_path):
    """Every layer's value, and the node making it, carry the layer's name; the other nodes are
    `<layer>/<op>` with values `<layer>/<op>:out`, for layers of one node and of many."""
    net = _graph(tmp_path, """
        network t
        input x: f32[N, 4, 8, 8]
        y = x -> a: gelu -> b: groupnorm(2) -> c: silu -> d: upsample(1.5) -> e: relu
        output y
    """)
    model = lower(net.graph, net.weights(), 17, None)
    produced = {out: n for n in model.graph.node for out in n.output}
    for layer in ("a", "b", "c", "d"):
        node = produced[layer]
        assert node.name == layer
        others = [n for n in model.graph.node if n.name.startswith(layer + "/")]
        assert others and all(re.fullmatch(re.escape(layer) + r"/[A-Za-z]+(_\d+)?", n.name) for n in others)
        assert all(o.endswith(":out") or re.search(r":out_\d+$", o) for n in others for o in n.output)
    assert produced["y"].op_type == "Identity" and list(produced["y"].input) == ["e"]


class _ReturnsAnEarlierValue(netspec.layers.Layer):
    """A layer (not registered: no kind) whose lower returns a value that is not the last one
    it made, as a layer author might: the pass must still name that value."""

    def infer(self, inputs):
        return inputs[0]

    def lower(self, g, node, inputs, types, output):
        value = g.op("Relu", inputs)
        g.op("Neg", [value])          # a node after it, reading it
        return value


class _MixesDtypes(netspec.layers.Layer):
    def infer(self, inputs):
        return inputs[0]

    def lower(self, g, node, inputs, types, output):
        return g.op("Add", [inputs[0], g.const(1.0, "float32", "one")])  # f32 constant on f16 data


def test_the_pass_names_whatever_value_a_layer_returns(tmp_path):
    net = _graph(tmp_path, """
        network t
        input x: f32[N, 4]
        y = x -> mine: identity
        output y
    """)
    object.__setattr__(net.graph.node("mine"), "layer", _ReturnsAnEarlierValue())
    model = lower(net.graph, {}, 17, None)
    onnx.checker.check_model(model, full_check=True)
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    neg = next(n for n in model.graph.node if n.op_type == "Neg")
    assert relu.name == "mine" and list(relu.output) == ["mine"]
    assert list(neg.input) == ["mine"] and neg.name == "mine/Neg"
    assert [o.name for o in model.graph.output] == ["y"]


def test_a_layer_returning_its_input_gets_an_identity_of_its_name(tmp_path):
    from netspec.layers.shape import Identity

    class PassThrough(Identity):
        def lower(self, g, node, inputs, types, output):
            return inputs[0]

    net = _graph(tmp_path, """
        network t
        input x: f32[N, 4]
        y = x -> p: identity -> relu
        output y
    """)
    object.__setattr__(net.graph.node("p"), "layer", PassThrough())
    model = lower(net.graph, {}, 17, None)
    node = next(n for n in model.graph.node if n.name == "p")
    assert node.op_type == "Identity" and list(node.input) == ["x"] and list(node.output) == ["p"]


def test_several_values_are_named_layer_colon_index(tmp_path):
    net = _graph(tmp_path, """
        network t
        input x: f32[N, 4]
        y = x -> two: identity
        output y
    """)
    g = Builder(17, {})
    g.declare("x", "f32")
    g.start(net.graph.node("two"))
    first, second = g.op("Relu", ["x"]), g.op("Neg", ["x"])
    assert g.finish((first, second)) == ("two:0", "two:1")
    names = {tuple(n.output): n.name for n in g.nodes}
    assert names == {("two:0",): "two", ("two:1",): "two/Neg"}


def test_a_lowering_that_mixes_dtypes_is_caught_at_the_layer_that_did_it(tmp_path):
    net = _graph(tmp_path, """
        network t
        input x: f16[N, 4]
        y = x -> bad: identity
        output y
    """)
    object.__setattr__(net.graph.node("bad"), "layer", _MixesDtypes())
    with pytest.raises(AssertionError, match=r"lowers .* to Add with inputs of type f16 and f32"):
        lower(net.graph, {}, 17, None)


def test_every_float_dtype_lowers_every_layer_kind_to_a_valid_model(tmp_path):
    """The parity cases (every layer kind) in f16, bf16 and f64 at opsets 17 and 22: each
    lowers to a model that passes the full check, or to a located error naming the opset."""
    from test_parity_layers import CASES

    for case in CASES:
        for dtype in ("f16", "bf16", "f64"):
            for opset in (max(17, case.opset or 0), 22):
                spec = write(tmp_path, case.text().replace("f32[", f"{dtype}["), "case.net")
                net = netspec.load(spec)
                try:
                    model = net.to_onnx(opset=opset)
                except NetspecError as exc:
                    d = exc.diagnostics[0]
                    assert d.span is not None and d.layer, (case.id, dtype, opset, d.message)
                    assert f"takes no {dtype} tensors at opset {opset}" in d.message, d.message
                    continue
                onnx.checker.check_model(model, full_check=True)
                assert model.graph.output[0].type.tensor_type.elem_type == ONNX_DTYPES[
                    net.graph.node(net.graph.outputs[0][1]).output.dtype]


def test_bf16_values_and_layernorm_run_end_to_end(tmp_path, capsys):
    """What onnxruntime's CPU does run in bf16 (moving values; layernorm; pad from opset 22),
    fed float32 arrays (rounded to bf16 on the way in) and returning bf16 arrays."""
    spec = write(tmp_path, """
        network t
        input x: bf16[N, 2, 3, 3]
        input e: bf16[N, 1, 3, 3]
        y = concat(x, e) -> pad(1, value=-2) -> flatten
        n = x -> layernorm
        output y, n
    """)
    rng = np.random.default_rng(11)
    x, e = rng.standard_normal((BATCH, 2, 3, 3)), rng.standard_normal((BATCH, 1, 3, 3))
    net = netspec.load(spec)
    out = net.run({"x": x, "e": e}, opset=22)
    assert out["y"].dtype == BF16 and out["n"].dtype == BF16
    want = np.pad(np.concatenate([rounded(x, "bf16"), rounded(e, "bf16")], 1), ((0, 0), (0, 0), (1, 1), (1, 1)),
                  constant_values=-2).reshape(BATCH, -1)
    np.testing.assert_array_equal(out["y"].astype(np.float64), want)
    xr = torch.from_numpy(rounded(x, "bf16")).float().permute(0, 2, 3, 1)
    norm = F.layer_norm(xr, (2,), eps=1e-5).permute(0, 3, 1, 2).numpy()
    scale = max(1.0, float(np.abs(norm).max()))
    assert float(np.abs(out["n"].astype(np.float64) - norm).max()) <= TOLERANCE["bf16"] * scale
    # at opset 17 onnxruntime has no bf16 Pad: located at the pad
    code, _, err = cli(["run", spec], capsys)
    located_failure(code, err, spec)
    assert "pad: onnxruntime has no bf16 kernel for ONNX's Pad on the CPU" in err


def test_bf16_weights_large_enough_to_stream_are_written(tmp_path):
    """Weights of 1 KiB or more are streamed into the file from their arrays; a bf16 array's
    bytes could not be viewed through a memoryview (an internal error at export)."""
    import onnx
    from onnx import numpy_helper

    import netspec

    spec = write(tmp_path, """
        network t
        input x: bf16[N, 512]
        y = x -> layernorm
        z = x -> linear(64)
        output y, z
        """)
    net = netspec.load(spec)
    path = net.export(tmp_path / "m.onnx", seed=3)
    model = onnx.load(str(path))
    stored = {t.name: t for t in model.graph.initializer}
    weights = net.weights(seed=3)
    for name in ("z.weight", "y.weight"):
        assert stored[name].data_type == onnx.TensorProto.BFLOAT16
        got = numpy_helper.to_array(stored[name])
        assert got.view(np.uint16).tobytes() == weights[name].view(np.uint16).tobytes(), name
