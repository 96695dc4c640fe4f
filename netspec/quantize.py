"""int8 static quantization of a lowered model: onnxruntime.quantization's QDQ format, weights
per channel, calibrated on data read as `netspec run --input` reads it (or seeded noise).

Nothing here quantizes by hand: the model goes through onnxruntime's quant_pre_process (shape
inference and basic graph optimisation, as onnxruntime recommends before quantizing) and then
quantize_static. Activations are QUInt8 and weights QInt8 (U8S8), the pairing onnxruntime's x86
CPU kernels run fastest (VPMADDUBSW multiplies unsigned by signed bytes)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from netspec.diagnostics import Diagnostic, NetspecError

CALIBRATION_SUFFIXES = (".npy", ".npz", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
DEFAULT_RANDOM_SAMPLES = 16
RANDOM_WARNING = ("warning: no --calibrate folder: calibrating on {n} seeded random samples; "
                  "activation ranges measured on noise are not those of real inputs, so the int8 "
                  "scales are misplaced and accuracy suffers. Give --calibrate DIR with a few "
                  "hundred representative inputs (images or .npy files)")


def _error(message: str, hint: str | None = None) -> NetspecError:
    return NetspecError([Diagnostic(message, hint=hint)])


def calibration_files(folder: Path) -> list[Path]:
    """The data files of a calibration folder, sorted by name; an error naming the folder when
    it holds none."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CALIBRATION_SUFFIXES)
    if not files:
        raise _error(f"--calibrate {folder}: the folder holds no calibration data",
                     hint="put images (.png, .jpg, ...) or .npy/.npz files in it, one sample each")
    return files


def _batch_of(specs) -> int:
    """The fixed batch size of the model's inputs (1 where the batch is free)."""
    sizes = {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int)}
    return max(sizes) if sizes else 1


def folder_batches(folder: Path, specs, normalize: str | None, samples: int | None) -> list[dict]:
    """Feeds read from the folder's files (one sample a file, as `run --input` reads it), grouped
    into the model's fixed batch size. A file that cannot be read or does not fit the inputs is
    an error naming it."""
    from netspec import runtime

    files = calibration_files(folder)
    if samples is not None:
        files = files[:samples]
    batch = _batch_of(specs)
    one = [s._replace(shape=(1, *s.shape[1:])) if s.shape and isinstance(s.shape[0], int) else s for s in specs]
    read = []
    for path in files:
        try:
            read.append(runtime.read_inputs(path, one, normalize))
        except NetspecError as exc:
            first = exc.diagnostics[0]
            message = first.message.removeprefix("input file ") if str(path) in first.message \
                else f"`{path}`: {first.message}"
            raise _error(f"calibration file {message}", hint=first.hint) from None
    if len(read) < batch:
        raise _error(f"--calibrate {folder}: {len(read)} sample(s), fewer than the model's batch of {batch}")
    groups = [read[i:i + batch] for i in range(0, len(read) - batch + 1, batch)]
    return [{name: np.concatenate([g[name] for g in group]) for name in group[0]} for group in groups]


def calibration_batches(specs, calibrate: Path | None, samples: int | None, normalize: str | None,
                        seed: int) -> tuple[list[dict], str | None]:
    """The feeds to calibrate on, and the warning to give: from the folder `calibrate`
    (folder_batches), or `samples` (default DEFAULT_RANDOM_SAMPLES) seeded random ones, with
    RANDOM_WARNING."""
    if calibrate is not None:
        return folder_batches(Path(calibrate), specs, normalize, samples), None
    samples = samples or DEFAULT_RANDOM_SAMPLES
    return random_batches(specs, seed, samples), RANDOM_WARNING.format(n=samples)


def random_batches(specs, seed: int, samples: int) -> list[dict]:
    from netspec import runtime

    return [runtime.feeds(specs, None, seed + i, 1) for i in range(samples)]


class _Reader:
    """onnxruntime's CalibrationDataReader over a list of feeds, reporting each one taken."""

    def __init__(self, batches: list[dict], advance: Callable[[], None] | None):
        self._batches: Iterator[dict] = iter(batches)
        self._advance = advance

    def get_next(self):
        feed = next(self._batches, None)
        if feed is not None and self._advance:
            self._advance()
        return feed

    def rewind(self):  # not used by MinMax calibration
        raise NotImplementedError


def quantize_int8(model, batches: list[dict], advance: Callable[[], None] | None = None):
    """The int8 QDQ onnx.ModelProto of `model` (a float ModelProto), calibrated on `batches`."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="netspec-quantize-") as tmp:
        fp32, prepared, quantized = (Path(tmp) / n for n in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save_model(model, fp32)
        # onnxruntime's symbolic shape inference needs sympy, which onnxruntime does not install:
        # without it, ONNX's own shape inference (every size of a netspec export is known anyway)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=importlib.util.find_spec("sympy") is None)
        quantize_static(str(prepared), str(quantized), _Reader(batches, advance),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return onnx.load_model(quantized)
