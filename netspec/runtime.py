"""Writing ONNX files atomically, and running models with onnxruntime on CPU or CUDA.

Nothing here knows about the language: it takes ONNX models and numpy arrays.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from netspec.diagnostics import Diagnostic, NetspecError

TWO_GB = 2 * 1024 ** 3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _error(message: str, hint: str | None = None, rule: str | None = None) -> NetspecError:
    return NetspecError([Diagnostic(message, rule=rule, hint=hint)])


def serialize(model, check: bool = True) -> bytes | None:
    """The model's protobuf bytes, checked by onnx.checker (full check, shape inference
    included) unless `check` is false; None for a model past protobuf's 2 GB limit. Serialising
    once and checking the bytes saves a copy of every weight."""
    import onnx

    try:
        data = model.SerializeToString()
    except Exception:  # protobuf refuses to encode a message over 2 GB
        return None
    if len(data) > TWO_GB:
        return None
    if check:
        onnx.checker.check_model(data, full_check=True)
    return data


def save_model(model, path: Path, detached: Mapping[str, np.ndarray] | None = None) -> list[Path]:
    """Write `model` to `path` atomically (netspec.files), after onnx.checker's full check
    (shape inference included). Returns the files written.

    `detached` holds the arrays of the initializers the model names and shapes but holds no
    bytes for (netspec.lower.lower(..., detached=...)): their bytes are written straight from
    the arrays, so a model's weights are never copied into a protobuf message, serialised, and
    parsed again by the checker. A model whose file would pass protobuf's 2 GB limit keeps its
    large tensors in `<name>.data` beside it (ONNX external data)."""
    from netspec.files import write_atomically

    path = Path(path)
    detached = dict(detached or {})
    _check_structure(model, detached)
    # 64 bytes a tensor is ample for the key and length that frame its raw_data
    embedded_size = model.ByteSize() + sum(array.nbytes + 64 for array in detached.values())

    def produce(staged: Path) -> None:
        if embedded_size > TWO_GB:
            _write_external(staged, model, detached, path.name + ".data")
        else:
            with open(staged, "wb") as handle:
                _write_embedded(handle, model, detached)
    return write_atomically(path, produce)


def _check_structure(model, detached: Mapping[str, np.ndarray]) -> None:
    """onnx.checker's full check of the model, its detached initializers declared as graph
    inputs of the same type and shape: all the checker and its shape inference read of them
    (their values are the weights, already checked against the graph by netspec.weights)."""
    import onnx

    onnx.checker.check_model(declared_as_inputs(model, detached).SerializeToString(), full_check=True)


def declared_as_inputs(model, detached: Mapping[str, np.ndarray]):
    """A copy of `model` whose detached initializers are graph inputs of the same type and
    shape: what onnx's checker and shape inference read of them, with no bytes to serialise
    (the copy is cheap: the detached tensors carry none)."""
    import onnx
    from onnx import helper

    light = onnx.ModelProto()
    light.CopyFrom(model)
    initializers = light.graph.initializer
    for i in reversed(range(len(initializers))):
        tensor = initializers[i]
        if tensor.name in detached:
            light.graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
            del initializers[i]
    return light


def _key(field: int) -> bytes:
    """A protobuf key for a length-delimited field (wire type 2)."""
    return _varint(field << 3 | 2)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(message, name: str) -> int:
    return message.DESCRIPTOR.fields_by_name[name].number


def _write_embedded(handle, model, detached: Mapping[str, np.ndarray]) -> None:
    """The model as one protobuf file, each detached tensor's bytes written from its array as
    the tensor's raw_data. Protobuf serialises the model without its graph and the graph without
    its initializers; the graph field around them is framed here (a message's fields may come
    in any order, so a reader sees exactly the model with its weights in place)."""
    import onnx

    if not detached:  # every byte is in the message already
        handle.write(model.SerializeToString())
        return
    outer = onnx.ModelProto()
    outer.CopyFrom(model)
    outer.ClearField("graph")
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    graph.ClearField("initializer")
    graph_bytes = graph.SerializeToString()
    entries, raw_data_key = [], _key(_field(onnx.TensorProto, "raw_data"))
    for tensor in model.graph.initializer:
        pieces = [tensor.SerializeToString()]
        if tensor.name in detached:
            data = _raw_bytes(detached[tensor.name])
            pieces += [raw_data_key + _varint(len(data)), data]
        entries.append(pieces)
    initializer_key = _key(_field(onnx.GraphProto, "initializer"))
    framed = [[initializer_key + _varint(sum(len(p) for p in pieces)), *pieces] for pieces in entries]
    graph_length = len(graph_bytes) + sum(len(p) for pieces in framed for p in pieces)
    handle.write(outer.SerializeToString())
    handle.write(_key(_field(onnx.ModelProto, "graph")) + _varint(graph_length))
    handle.write(graph_bytes)
    for pieces in framed:
        for piece in pieces:
            handle.write(piece)


def _raw_bytes(array: np.ndarray) -> memoryview:
    """An array's bytes, without a copy (it is contiguous and little-endian already). Viewed as
    bytes first: a memoryview of ml_dtypes' bfloat16 cannot be cast, its format being unknown
    to Python's buffer protocol."""
    return memoryview(array.reshape(-1).view(np.uint8))


# Offsets of tensors in a .data file are multiples of this (a page: onnxruntime can map them).
EXTERNAL_ALIGNMENT = 4096


def _write_external(staged: Path, model, detached: Mapping[str, np.ndarray], location: str) -> None:
    """The model at `staged` with its large tensors (detached, or embedded of DETACH_BYTES or
    more) in the file `location` beside it, as ONNX external data."""
    import onnx

    from netspec.lower import DETACH_BYTES

    outer = onnx.ModelProto()
    outer.CopyFrom(model)
    with open(staged.parent / location, "wb") as data_file:
        for tensor in outer.graph.initializer:
            if tensor.name in detached:
                data = _raw_bytes(detached[tensor.name])
            elif tensor.HasField("raw_data") and len(tensor.raw_data) >= DETACH_BYTES:
                data = tensor.raw_data
                tensor.ClearField("raw_data")
            else:
                continue
            offset = (data_file.tell() + EXTERNAL_ALIGNMENT - 1) // EXTERNAL_ALIGNMENT * EXTERNAL_ALIGNMENT
            data_file.seek(offset)
            data_file.write(data)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(data)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
    with open(staged, "wb") as handle:
        handle.write(outer.SerializeToString())


def providers_for(device: str) -> list[str]:
    """onnxruntime providers for `cpu` or `cuda`; a clear error where CUDA is not available."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise _error("device `cuda`: onnxruntime has no CUDA execution provider here "
                         f"(available: {', '.join(available)})",
                         hint="CUDA needs the `onnxruntime-gpu` package (instead of `onnxruntime`) "
                              "and an NVIDIA driver")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise _error(f"unknown device `{device}` (use cpu or cuda)")


class OnnxRuntimeError(NetspecError):
    """onnxruntime refused or failed a node: `node` is its name (netspec names a layer's nodes
    `<layer>` and `<layer>/<op>`), `op` its operator; `missing_kernel` when no execution
    provider has an implementation for the node's dtypes. Raised unlocated; a caller that
    knows the spec (netspec.api) says which layer it is."""

    def __init__(self, message: str, node: str | None = None, op: str | None = None,
                 missing_kernel: bool = False, device: str = "cpu", hint: str | None = None):
        super().__init__([Diagnostic(message, rule="onnxruntime runs each operator in the dtypes "
                                     "it has kernels for", hint=hint)])
        self.node, self.op, self.missing_kernel, self.device = node, op, missing_kernel, device


_NO_KERNEL = re.compile(r"Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'")
_FAILED_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")


def session(model, device: str = "cpu", options=None):
    """An onnxruntime InferenceSession for a ModelProto, serialized bytes or a file path.
    A node without a kernel for its dtypes (f64 Conv on the CPU, most bf16 operators) raises
    OnnxRuntimeError naming it. `options`: the onnxruntime.SessionOptions to use (netspec
    profile's turn on the profiler), by default fresh ones."""
    import onnxruntime as ort

    options = options if options is not None else ort.SessionOptions()
    options.log_severity_level = 3
    source = model if isinstance(model, (str, bytes, os.PathLike)) else model.SerializeToString()
    if isinstance(source, os.PathLike):
        source = str(source)
    try:
        return ort.InferenceSession(source, options, providers=providers_for(device))
    except NetspecError:
        raise
    except Exception as exc:
        text = str(exc)
        missing = _NO_KERNEL.search(text)
        if missing:
            op, version, node = missing.groups()
            inner = ""
            if not node:  # a node of an operator's function body, which onnxruntime expanded
                culprit = _expanded_without_kernel(model, device)
                if culprit is not None:
                    inner = f" (it expands {culprit.op_type} into operators, {op} among them)"
                    node, op = culprit.name, culprit.op_type
            shown = f"node `{node}`" if node else "a node it made"
            raise OnnxRuntimeError(
                f"onnxruntime ({device}) has no {op} kernel for the dtypes of {shown}{inner}",
                node=node or None, op=op, missing_kernel=True, device=device,
                hint="run it where onnxruntime has one (see the README's dtype table), or compute in "
                     "f32") from None
        raise _error(f"onnxruntime cannot load the model: {text.splitlines()[0]}") from None


def has_kernel(op_type: str, opset: int, elem_type: int, device: str = "cpu") -> bool | None:
    """Whether onnxruntime registers a kernel for ONNX operator `op_type` at `opset` taking
    `elem_type` (an onnx.TensorProto element type) on `device`'s providers; None when this
    onnxruntime does not list its kernels."""
    import onnx

    try:
        from onnxruntime.capi._pybind_state import get_all_opkernel_def

        kernels = get_all_opkernel_def()
    except Exception:
        return None
    wanted = f"tensor({onnx.helper.tensor_dtype_to_string(elem_type)[len('TensorProto.'):].lower()})"
    providers = set(providers_for(device))
    for kernel in kernels:
        low, high = kernel.version_range
        if (kernel.op_name == op_type and kernel.domain in ("", "ai.onnx") and low <= opset <= high
                and kernel.provider in providers
                and any(wanted in types for types in kernel.type_constraints.values())):
            return True
    return False


def _expanded_without_kernel(model, device: str):
    """The first node onnxruntime expands into its ONNX function body for want of a kernel for
    its input's dtype (the nodes of the body have no names, so its error names none), or None."""
    import onnx

    try:
        proto = model if isinstance(model, onnx.ModelProto) else (
            onnx.load_model_from_string(model) if isinstance(model, bytes) else onnx.load(str(model)))
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:
        return None
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    opset = next((o.version for o in inferred.opset_import if o.domain in ("", "ai.onnx")), None)
    for node in graph.node:
        try:
            schema = onnx.defs.get_schema(node.op_type, opset)
        except onnx.defs.SchemaError:
            continue
        if not (schema.has_function or schema.has_context_dependent_function) or not node.input:
            continue
        elem = types.get(node.input[0])
        if elem and has_kernel(node.op_type, opset, elem, device) is False:
            return node
    return None


def run(session, inputs: Mapping[str, np.ndarray], names: list[str] | None = None) -> list[np.ndarray]:
    """Run a session: numpy arrays in, numpy arrays out, in the order of `names` (default:
    every output). bf16 arrays (ml_dtypes.bfloat16), which onnxruntime's numpy bridge does not
    carry, go in and come out through OrtValues. A node failing at run time raises
    OnnxRuntimeError naming it."""
    import onnxruntime as ort

    names = list(names) if names is not None else [o.name for o in session.get_outputs()]
    bf16 = _bfloat16()
    types = {o.name: o.type for o in session.get_outputs()}
    try:
        if all(a.dtype != bf16 for a in inputs.values()) and all(types.get(n) != "tensor(bfloat16)" for n in names):
            return session.run(names, dict(inputs))
        values = {name: (ort.OrtValue.ortvalue_from_numpy_with_onnx_type(a.view(np.uint16), _BFLOAT16)
                         if a.dtype == bf16 else ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)))
                  for name, a in inputs.items()}
        return [_to_numpy(v) for v in session.run_with_ort_values(names, values)]
    except NetspecError:
        raise
    except Exception as exc:
        text = str(exc).strip()
        failed = _FAILED_NODE.search(text)
        raise OnnxRuntimeError(f"onnxruntime cannot run the model: {text.splitlines()[0]}",
                               node=failed.group(2) if failed else None,
                               op=failed.group(1) if failed else None) from None


_BFLOAT16 = 16  # onnx.TensorProto.BFLOAT16


def _bfloat16() -> np.dtype:
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def _to_numpy(value) -> np.ndarray:
    if value.element_type() != _BFLOAT16:
        return value.numpy()
    import ctypes

    size = value.tensor_size_in_bytes()
    raw = bytes((ctypes.c_char * size).from_address(value.data_ptr())) if size else b""
    return np.frombuffer(raw, np.uint16).view(_bfloat16()).reshape(value.shape()).copy()


# ---------------------------------------------------------------- inputs: descriptions and feeds

class InputSpec(NamedTuple):
    """What one model input takes: its name, its shape (integers, or symbols such as `N` for a
    size the model leaves free), its layout letters (`NCHW`, `NHWC`, ...; what images are laid
    out by) and its numpy dtype (ml_dtypes.bfloat16 for bf16)."""

    name: str
    shape: tuple
    layout: str
    dtype: np.dtype


_ORT_TYPES = {"tensor(float16)": "float16", "tensor(float)": "float32", "tensor(double)": "float64",
              "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16",
              "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


def describe_inputs(session) -> list[InputSpec]:
    """The inputs of an onnxruntime session, for a model that says nothing of layouts (an
    .onnx file): 4-D inputs are taken as NCHW. A dimension without a name is `?`."""
    specs = []
    for i in session.get_inputs():
        if i.type == "tensor(bfloat16)":
            dtype = _bfloat16()
        elif i.type in _ORT_TYPES:
            dtype = np.dtype(_ORT_TYPES[i.type])
        else:
            raise _error(f"input `{i.name}` is a {i.type}, which netspec cannot feed",
                         hint="netspec feeds tensors of f16, bf16, f32, f64, i8, u8, i16, i32, i64 and bool")
        shape = tuple(d if isinstance(d, int) else (d or "?") for d in i.shape)
        layout = {2: "NC", 3: "NCL", 4: "NCHW", 5: "NCDHW"}.get(len(shape), "NC" + "X" * max(0, len(shape) - 2))
        specs.append(InputSpec(i.name, shape, layout, dtype))
    return specs


def numeric_kind(dtype: np.dtype) -> str:
    """"float", "int" or "bool" for numeric dtypes (bfloat16 included); "" for anything else."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.floating) or dtype == _bfloat16():
        return "float"
    if np.issubdtype(dtype, np.integer):
        return "int"
    return ""


def show_shape(shape) -> str:
    """`[N, 3, 224, 224]`: a shape as netspec prints it (no Python repr quotes)."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _names(names) -> str:
    return ", ".join(f"`{n}`" for n in names) or "none"


class FeedError(NetspecError, ValueError):
    """Arrays that do not fit the model's inputs (names, shapes, dtypes): a NetspecError for the
    command line, a ValueError for Python callers."""


def _feed_error(message: str, hint: str | None = None) -> FeedError:
    return FeedError([Diagnostic(message, hint=hint)])


def random_array(shape, dtype: np.dtype, rng) -> np.ndarray:
    """Seeded values of `dtype`: standard normal for floats, integers from -8 to 7 (0 to 15
    unsigned), booleans true with probability 1/2."""
    dtype = np.dtype(dtype)
    kind = numeric_kind(dtype)
    if kind == "float":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "bool":
        return rng.random(shape) < 0.5
    low = 0 if np.iinfo(dtype).min == 0 else -8
    return rng.integers(low, low + 16, shape).astype(dtype)


def feeds(specs: list[InputSpec], arrays: Mapping[str, Any] | Any | None = None, seed: int = 0,
          batch: int | None = None, source: str | None = None) -> dict[str, np.ndarray]:
    """onnxruntime feeds for inputs described by `specs`.

    `arrays` maps input names to arrays (or is one array for a single-input model, or None
    for seeded random values: random_array, a free size taken as `batch` or 1). Given arrays
    are checked: every input present and nothing else, the rank and every fixed size (one
    sample without its batch axis gets one), and the dtype: an array of the input's dtype is
    used as it is; floats, integers and booleans convert to a float input (an error where a
    value would overflow it, as 1e5 into f16), integers and booleans to an integer input whose
    range holds them, and 0/1 integers to a bool input; a float array for an integer or bool
    input, and anything that is not numbers, are refused. `source` says where the arrays come
    from (a file), for messages."""
    if arrays is None:
        rng = np.random.default_rng(seed)
        return {spec.name: random_array([d if isinstance(d, int) else (batch or 1) for d in spec.shape],
                                        spec.dtype, rng) for spec in specs}
    names = [spec.name for spec in specs]
    if not isinstance(arrays, Mapping):
        if len(specs) != 1:
            raise _feed_error(f"the model has {len(specs)} inputs ({_names(names)}); give one array per input "
                         "name", hint="pass a dict of arrays by input name (a .npz file on the command line)")
        arrays = {names[0]: arrays}
    missing = [n for n in names if n not in arrays]
    extra = [n for n in arrays if n not in names]
    if missing or extra:
        where = f" in {source}" if source else ""
        raise _feed_error(f"the arrays{where} do not match the model's inputs: missing {_names(missing)}, "
                     f"unexpected {_names(extra)}", hint=f"the inputs are {_names(names)}")
    out = {}
    for spec in specs:
        try:
            array = np.asarray(arrays[spec.name])
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise _feed_error(f"input `{spec.name}` is not an array of numbers ({exc})") from None
        if array.ndim == len(spec.shape) - 1:
            array = array[None]  # one sample: add the batch axis
        fixed = [(i, d) for i, d in enumerate(spec.shape) if isinstance(d, int)]
        if array.ndim != len(spec.shape) or any(array.shape[i] != d for i, d in fixed):
            raise _feed_error(f"input `{spec.name}` has shape {show_shape(array.shape)}, the model expects "
                         f"{show_shape(spec.shape)} ({spec.layout})")
        out[spec.name] = _conform(spec, array)
    return out


def _conform(spec: InputSpec, array: np.ndarray) -> np.ndarray:
    """The array in the input's dtype, or a clear error (see `feeds`)."""
    want = np.dtype(spec.dtype)
    if array.dtype == want:
        return array
    have_kind, want_kind = numeric_kind(array.dtype), numeric_kind(want)
    if not have_kind:
        raise _feed_error(f"input `{spec.name}` takes {want} values; the array holds {array.dtype}, not numbers")
    if want_kind == "float":
        with np.errstate(over="ignore", invalid="ignore"):
            converted = array.astype(want)
        if have_kind == "float":
            lost = np.isfinite(array.astype(np.float64)) & ~np.isfinite(converted.astype(np.float64))
            if lost.any():
                raise _feed_error(f"input `{spec.name}` is {want}: the array holds values up to "
                             f"{float(np.abs(array.astype(np.float64)[lost]).max()):g}, which {want} cannot hold")
        return converted
    if have_kind == "float":
        raise _feed_error(f"input `{spec.name}` takes {want} values; the array holds {array.dtype}",
                     hint=f"convert it first, e.g. `array.astype(np.{want})` (floats are not rounded "
                          "silently)")
    if want_kind == "bool":
        if array.size and not np.isin(array, (0, 1)).all():
            raise _feed_error(f"input `{spec.name}` takes bool values; the array holds {array.dtype} values "
                         "other than 0 and 1")
        return array.astype(want)
    info = np.iinfo(want)
    if array.size and (int(array.min()) < info.min or int(array.max()) > info.max):
        raise _feed_error(f"input `{spec.name}` takes {want} values ({info.min} to {info.max}); the array "
                     f"holds {array.min()} to {array.max()}")
    return array.astype(want)


# ---------------------------------------------------------------- input files

def read_inputs(path: Path, specs: list[InputSpec], normalize: str | None = None) -> dict[str, np.ndarray]:
    """Feeds for the model's inputs from a file (checked and converted as `feeds` does).
    `.npy` feeds a single input, `.npz` one array per input by name, an image (.png, .jpg,
    ...) a single image input."""
    path = Path(path)
    if not path.exists():
        raise _error(f"input file `{path}`: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            if len(specs) != 1:
                raise _error(f"`{path}` holds one array but the model has {len(specs)} inputs",
                             hint="give a .npz with one array per input name")
            arrays = {specs[0].name: np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        elif suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"):
            if len(specs) != 1:
                raise _error(f"an image feeds one input but the model has {len(specs)}")
            spec = specs[0]
            arrays = {spec.name: read_image(path, list(spec.shape), spec.layout, normalize, spec.dtype)}
        else:
            raise _error(f"input file `{path}`: unknown format `{suffix}`",
                         hint="use .npy, .npz or an image (.png, .jpg)")
    except (ValueError, OSError, EOFError) as exc:
        raise _error(f"input file `{path}` cannot be read: {exc}") from None
    return feeds(specs, arrays, source=f"`{path}`")


def read_image(path: Path, shape: list, layout: str, normalize: str | None, dtype=np.float32) -> np.ndarray:
    """An image resized to the input's spatial size, laid out per the declared layout, with a
    batch axis of 1: for a float input scaled to [0, 1] and optionally normalised with
    ImageNet's mean and deviation; for an integer input its 0-255 pixel values."""
    from PIL import Image

    channel, height, width = layout.index("C"), layout.index("H"), layout.index("W")
    channels = shape[channel]
    if channels not in (1, 3):
        raise _error(f"an image gives 1 or 3 channels; the input has {channels}")
    if any(not isinstance(shape[i], int) for i in (height, width)):
        raise _error(f"an image needs an input of fixed height and width; it is {show_shape(shape)}")
    floating = numeric_kind(dtype) == "float"
    if normalize not in (None, "none", "imagenet"):
        raise _error(f"unknown normalisation `{normalize}` (use imagenet or none)")
    if not floating and normalize == "imagenet":
        raise _error(f"--normalize imagenet needs a floating-point input; it is {np.dtype(dtype)}")
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((shape[width], shape[height]), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / 255.0 if floating else np.asarray(image, np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if normalize == "imagenet":
        if channels != 3:
            raise _error("--normalize imagenet needs a 3-channel input")
        pixels = (pixels - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    hwc = {"H": 0, "W": 1, "C": 2}
    order = [hwc[axis] for axis in layout if axis != "N"]
    return np.transpose(pixels, order)[None]
