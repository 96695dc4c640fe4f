"""Writing ONNX files atomically, and running models with onnxruntime on CPU or CUDA.

Nothing here knows about the language: it takes ONNX models and numpy arrays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

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
    from onnx import helper

    checked = onnx.ModelProto()
    checked.CopyFrom(model)  # cheap: the detached tensors carry no bytes
    initializers = checked.graph.initializer
    for i in reversed(range(len(initializers))):
        tensor = initializers[i]
        if tensor.name in detached:
            checked.graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
            del initializers[i]
    onnx.checker.check_model(checked.SerializeToString(), full_check=True)


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
            data = memoryview(detached[tensor.name]).cast("B")  # contiguous, little-endian
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
                data = memoryview(detached[tensor.name]).cast("B")
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
            raise _error("--device cuda: onnxruntime has no CUDA execution provider here "
                         f"(available: {', '.join(available)})",
                         hint="CUDA needs the `onnxruntime-gpu` package (instead of `onnxruntime`) "
                              "and an NVIDIA driver")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise _error(f"unknown device `{device}` (use cpu or cuda)")


def session(model, device: str = "cpu"):
    """An onnxruntime InferenceSession for a ModelProto, serialized bytes or a file path."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = model if isinstance(model, (str, bytes, os.PathLike)) else model.SerializeToString()
    if isinstance(source, os.PathLike):
        source = str(source)
    try:
        return ort.InferenceSession(source, options, providers=providers_for(device))
    except NetspecError:
        raise
    except Exception as exc:
        raise _error(f"onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from None


# ---------------------------------------------------------------- input files

def read_inputs(path: Path, specs: list[tuple[str, list, str, str]], normalize: str | None = None
                ) -> dict[str, np.ndarray]:
    """Arrays for the model's inputs from a file. `specs` lists (name, shape, layout, dtype)
    per input; shapes may hold symbols (the batch). `.npy` feeds a single input, `.npz` one
    array per input by name, an image (.png, .jpg, ...) a single image input."""
    path = Path(path)
    if not path.exists():
        raise _error(f"input file `{path}`: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            if len(specs) != 1:
                raise _error(f"`{path}` holds one array but the model has {len(specs)} inputs",
                             hint="give a .npz with one array per input name")
            arrays = {specs[0][0]: np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        elif suffix in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"):
            if len(specs) != 1:
                raise _error(f"an image feeds one input but the model has {len(specs)}")
            arrays = {specs[0][0]: read_image(path, specs[0][1], specs[0][2], normalize)}
        else:
            raise _error(f"input file `{path}`: unknown format `{suffix}`",
                         hint="use .npy, .npz or an image (.png, .jpg)")
    except (ValueError, OSError, EOFError) as exc:
        raise _error(f"input file `{path}` cannot be read: {exc}") from None
    names = [name for name, *_ in specs]
    missing = [n for n in names if n not in arrays]
    extra = [n for n in arrays if n not in names]
    if missing or extra:
        raise _error(f"`{path}` does not match the model's inputs: missing {missing or 'none'}, "
                     f"unexpected {extra or 'none'}", hint=f"the inputs are {', '.join(names)}")
    out = {}
    for name, shape, layout, dtype in specs:
        array = arrays[name]
        if array.ndim == len(shape) - 1:
            array = array[None]  # one sample: add the batch axis
        fixed = [(i, d) for i, d in enumerate(shape) if isinstance(d, int)]
        if array.ndim != len(shape) or any(array.shape[i] != d for i, d in fixed):
            raise _error(f"input `{name}` has shape {list(array.shape)}, the model expects "
                         f"{list(shape)} ({layout})")
        out[name] = array.astype(dtype, copy=False)
    return out


def read_image(path: Path, shape: list, layout: str, normalize: str | None) -> np.ndarray:
    """An image resized to the input's spatial size, scaled to [0, 1], optionally normalised with
    ImageNet's mean and deviation, laid out per the declared layout, with a batch axis of 1."""
    from PIL import Image

    channel, height, width = layout.index("C"), layout.index("H"), layout.index("W")
    channels = shape[channel]
    if channels not in (1, 3):
        raise _error(f"an image gives 1 or 3 channels; the input has {channels}")
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((shape[width], shape[height]), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if normalize == "imagenet":
        if channels != 3:
            raise _error("--normalize imagenet needs a 3-channel input")
        pixels = (pixels - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    elif normalize not in (None, "none"):
        raise _error(f"unknown normalisation `{normalize}` (use imagenet or none)")
    hwc = {"H": 0, "W": 1, "C": 2}
    order = [hwc[axis] for axis in layout if axis != "N"]
    return np.transpose(pixels, order)[None]
