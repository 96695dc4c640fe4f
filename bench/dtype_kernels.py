"""Which ONNX operators netspec emits run in which dtype, on this machine's onnxruntime (CPU).

    python bench/dtype_kernels.py            # prints the Markdown table the README quotes

For every operator the layers lower to and every dtype a spec can declare, a one-node model
(inputs, weights and constants in that dtype, typical attributes) is checked by onnx.checker
(full check) at opset 17 (netspec's default; later where the operator needs it) and at 22 (the
first with bf16 convolutions and pools), then loaded and run in onnxruntime on the CPU.
Each cell says what happened:

    ok         ONNX allows the dtype and onnxruntime runs it
    no kernel  ONNX allows the dtype; onnxruntime's CPU provider has no kernel for it
    (22+)      ONNX allows the dtype for this operator only from opset 22 (`--opset 22`);
               from 20 for Gelu, 19 for Pad's wrap mode, which need that opset anyway
    ...; X at 22   measured at opset 17 and again at 22, where the kernels differ
    -          ONNX does not allow the dtype for this operator (in any opset up to 26)

The model's first input is the tensor whose dtype varies; index, shape and pad inputs stay
int64, as ONNX requires.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

DTYPES = ["f16", "bf16", "f32", "f64", "i8", "u8", "i16", "i32", "i64", "bool"]
ONNX = {"f16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16, "f32": TensorProto.FLOAT,
        "f64": TensorProto.DOUBLE, "i8": TensorProto.INT8, "u8": TensorProto.UINT8,
        "i16": TensorProto.INT16, "i32": TensorProto.INT32, "i64": TensorProto.INT64,
        "bool": TensorProto.BOOL}


def _numpy(dtype: str):
    if dtype == "bf16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype({"f16": "float16", "f32": "float32", "f64": "float64", "i8": "int8", "u8": "uint8",
                     "i16": "int16", "i32": "int32", "i64": "int64", "bool": "bool"}[dtype])


# op -> (first opset, input shape, extra inputs (name, shape or array, "same" dtype or int64), attrs)
# "same": an initializer of the varying dtype; an array: an int64 initializer with those values.
X4 = [1, 2, 4, 4]
CASES: dict[str, tuple] = {
    "Conv": (13, X4, [("w", [2, 2, 3, 3]), ("b", [2])], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    "ConvTranspose": (13, X4, [("w", [2, 2, 3, 3]), ("b", [2])], {"kernel_shape": [3, 3]}),
    "Gemm": (13, [2, 3], [("w", [4, 3]), ("b", [4])], {"transB": 1}),
    "BatchNormalization": (15, X4, [("s", [2]), ("b", [2]), ("m", [2]), ("v", [2])], {"epsilon": 1e-5}),
    "LayerNormalization": (17, [1, 3, 4], [("s", [4]), ("b", [4])], {"axis": -1}),
    "InstanceNormalization": (13, [1, 2, 8], [("s", [2]), ("b", [2])], {}),
    "Relu": (14, X4, [], {}),
    "LeakyRelu": (13, X4, [], {"alpha": 0.1}),
    "Sigmoid": (13, X4, [], {}),
    "Tanh": (13, X4, [], {}),
    "Softmax": (13, X4, [], {"axis": 1}),
    "Clip": (13, X4, [("lo", []), ("hi", [])], {}),
    "HardSigmoid": (13, X4, [], {"alpha": 1 / 6, "beta": 0.5}),
    "HardSwish": (14, X4, [], {}),
    "Gelu": (20, X4, [], {}),
    "Erf": (13, X4, [], {}),
    "Elu": (13, X4, [], {}),
    "PRelu": (16, X4, [("slope", [2, 1, 1])], {}),
    "Pow": (15, X4, [("p", [])], {}),
    "MaxPool": (13, X4, [], {"kernel_shape": [2, 2], "strides": [2, 2]}),
    "AveragePool": (13, X4, [], {"kernel_shape": [2, 2], "strides": [2, 2]}),
    "GlobalAveragePool": (13, X4, [], {}),
    "GlobalMaxPool": (13, X4, [], {}),
    "Add": (14, X4, [("other", X4)], {}),
    "Mul": (14, X4, [("other", X4)], {}),
    "Div": (14, X4, [("other", X4)], {}),
    "Concat": (13, X4, [("other", X4)], {"axis": 1}),
    "Identity": (16, X4, [], {}),
    "Flatten": (13, X4, [], {"axis": 1}),
    "Transpose": (13, X4, [], {"perm": [0, 2, 3, 1]}),
    "Reshape": (14, X4, [("shape", np.array([0, 2, -1]))], {}),
    "Pad constant": (13, X4, [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1])), ("value", [])], {"mode": "constant"}),
    "Pad reflect": (13, X4, [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1]))], {"mode": "reflect"}),
    "Pad edge": (13, X4, [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1]))], {"mode": "edge"}),
    "Pad wrap": (19, X4, [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1]))], {"mode": "wrap"}),
    "Gather": (13, X4, [("rows", np.array([0, 0, 1, 2, 3, 3]))], {"axis": 2}),
    "Resize nearest": (13, X4, [("", None), ("scales", np.array([1.0, 1.0, 2.0, 2.0], np.float32))],
                       {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    "Resize linear": (13, X4, [("", None), ("scales", np.array([1.0, 1.0, 2.0, 2.0], np.float32))],
                      {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}),
    "Shape": (15, X4, [], {}),
    "Cast to f32": (13, X4, [], {"to": TensorProto.FLOAT}),
    "Cast from f32": (13, X4, [], {}),  # the input is f32, cast to the dtype
}


def _onnx_type_name(dtype: str) -> str:
    return {"f16": "float16", "bf16": "bfloat16", "f32": "float", "f64": "double", "i8": "int8",
            "u8": "uint8", "i16": "int16", "i32": "int32", "i64": "int64", "bool": "bool"}[dtype]


def allows(op: str, opset: int, dtype: str) -> bool:
    try:
        schema = onnx.defs.get_schema(op, opset)
    except onnx.defs.SchemaError:
        return False
    formal = schema.inputs[0].type_str
    allowed = next((c.allowed_type_strs for c in schema.type_constraints if c.type_param_str == formal),
                   [formal])
    return f"tensor({_onnx_type_name(dtype)})" in allowed


def model(case: str, dtype: str, opset: int) -> tuple[onnx.ModelProto, dict]:
    first, shape, extra, attrs = CASES[case]
    op = case.split()[0]
    feed_dtype = "f32" if case == "Cast from f32" else dtype
    if case == "Cast from f32":
        attrs = {"to": ONNX[dtype]}
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 3.0, shape)
    feed = {"x": (x > 1.5 if feed_dtype == "bool" else x).astype(_numpy(feed_dtype))}
    inits, names = [], ["x"]
    for name, spec in extra:
        if name == "":
            names.append("")
            continue
        if isinstance(spec, np.ndarray):
            array = spec if spec.dtype != np.float64 else spec.astype(np.int64)
        else:
            values = rng.uniform(0.5, 2.0, spec) if spec else np.asarray(1.0 if name != "hi" else 2.0)
            if dtype in ("i8", "u8", "i16", "i32", "i64"):  # whole numbers, none 0 (Div)
                values = np.maximum(np.round(values * 2), 1)
            array = (values > 1.0 if dtype == "bool" else values).astype(_numpy(dtype))
        inits.append(onnx.numpy_helper.from_array(np.asarray(array), name))
        names.append(name)
    node = helper.make_node(op, names, ["y"], **attrs)
    out_type = (TensorProto.INT64 if op == "Shape" else TensorProto.FLOAT if case == "Cast to f32"
                else ONNX[dtype])
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", ONNX[feed_dtype], shape)],
                              [helper.make_tensor_value_info("y", out_type, None)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(helper.find_min_ir_version_for([helper.make_opsetid("", opset)]), 13)
    # the output's shape as ONNX infers it (the full check wants one)
    inferred = onnx.shape_inference.infer_shapes(m)
    m.graph.output[0].CopyFrom(inferred.graph.output[0])
    return m, feed


def run_once(case: str, dtype: str, opset: int) -> str:
    """"ok", "no kernel" or what else went wrong, for one cell at one opset."""
    import onnxruntime as ort

    m, feed = model(case, dtype, opset)
    try:
        onnx.checker.check_model(m, full_check=True)
    except Exception as exc:  # the schema allows the dtype but this use of it is invalid
        return "invalid: " + str(exc).splitlines()[0][:40]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
        # bf16 has no numpy dtype onnxruntime knows: feed raw OrtValues
        values = {name: ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
            array.view(np.uint16) if array.dtype == _numpy("bf16") else array,
            ONNX["bf16"] if array.dtype == _numpy("bf16") else helper.np_dtype_to_tensor_dtype(array.dtype))
            for name, array in feed.items()}
        session.run_with_ort_values(["y"], values)
    except Exception as exc:
        text = str(exc)
        if "NOT_IMPLEMENTED" in text or "Could not find an implementation" in text:
            return "no kernel"
        return "fails: " + text.splitlines()[0][:60]
    return "ok"


# the opsets a cell is measured at: netspec's default, and the first that has bf16 convolutions
OPSETS = (17, 22)


def measure(case: str, dtype: str) -> str:
    """One cell: the result at opset 17 (or the first opset whose operator takes the dtype, as
    ` (22+)`), and at 22 where that differs (`ok; no kernel at 22`)."""
    first = CASES[case][0]
    op = "Cast" if case.startswith("Cast") else case.split()[0]
    probe = "f32" if case == "Cast from f32" else dtype
    opsets = [o for o in range(max(first, 13), 27) if allows(op, o, probe)]
    if not opsets:
        return "-"
    start = max(opsets[0], OPSETS[0])
    result = run_once(case, dtype, start)
    cell = result + (f" ({start}+)" if start > OPSETS[0] else "")
    later = [o for o in OPSETS if o > start and allows(op, o, probe)]
    for opset in later:
        other = run_once(case, dtype, opset)
        if other != result:
            cell += f"; {other} at {opset}"
    return cell


def table() -> str:
    import onnxruntime as ort

    lines = [f"| op (onnxruntime {ort.__version__}, CPU) | " + " | ".join(DTYPES) + " |",
             "|---|" + "---|" * len(DTYPES)]
    for case in CASES:
        lines.append(f"| {case} | " + " | ".join(measure(case, d) for d in DTYPES) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
