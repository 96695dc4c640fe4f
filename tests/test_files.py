"""File-level robustness through the CLI: spec files that cannot be read or are oddly encoded,
weights files that are broken, output paths that cannot be written, and exports that fail
half-way. Every failure is a clear message with exit 1 (or 2 for bad usage), never a traceback;
a failed write leaves an existing file byte-identical and no temporary file behind.

Already covered elsewhere, not repeated here:
- a spec path that is missing or a directory: test_cli.test_bad_usage_exits_2 (exit 2) and
  test_diagnostics.test_missing_spec_file / test_directory_as_spec (the API);
- non-UTF-8 bytes and a BOM through the API: test_diagnostics.test_non_utf8_file /
  test_utf8_bom_is_accepted (here: through the CLI, with the columns of located errors);
- weights: missing, extra and near-miss names, a wrong shape, integer values, truncated .npz and
  .safetensors, an unknown suffix, a missing file, bad weights in export:
  test_run_cli.test_weights_* and test_subprocess_bad_weights_no_traceback;
- export -o into a missing folder or onto a directory: test_export.test_export_into_a_missing_folder_exits_1
  and test_export_onto_a_directory_exits_1; run -o: test_run_cli.test_output_*; graph and
  features through the API: test_draw.test_missing_folder_and_directory_target,
  test_features.test_files_are_written_atomically;
- a failed export before anything is written (a lowering error, bad weights) leaves an existing
  file alone: test_export.test_failed_export_* / test_failed_weights_leave_*; models with
  external data: test_external_data.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec import files as netspec_files
from netspec import runtime
from cli_runner import cli

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"

BROKEN = ("network t\n"
          "input x: f32[N, 3, 16, 16]\n"
          "y = x -> conv(8, 3, strid=2)\n"
          "output y\n")
BROKEN_AT = (3, len("y = x -> conv(8, 3, ") + 1)   # the `strid` keyword




def clean(code: int, err: str, expected: int = 1) -> None:
    assert code == expected, err
    assert "Traceback" not in err and "internal error" not in err, err


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ================================================================ spec files


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads a file whatever its permissions")
def test_unreadable_spec(tmp_path, capsys):
    spec = tmp_path / "secret.net"
    spec.write_text(BROKEN)
    spec.chmod(0)
    try:
        code, out, err = cli(["check", spec], capsys)
    finally:
        spec.chmod(0o644)
    assert code in (1, 2), err
    assert "Traceback" not in err and "permission denied" in err.lower() and "secret.net" in err


def test_unreadable_spec_simulated(tmp_path, capsys, monkeypatch):
    """The same through a PermissionError from the read itself, which also runs as root."""
    spec = tmp_path / "secret.net"
    spec.write_text(BROKEN)
    real = Path.read_bytes

    def refuse(self):
        if self.name == "secret.net":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    code, out, err = cli(["check", spec], capsys)
    assert code in (1, 2), err
    assert "Traceback" not in err and "permission denied" in err.lower() and "secret.net" in err
    assert out == ""


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n   \n"], ids=["empty", "blank", "comment"])
def test_empty_spec(tmp_path, capsys, text):
    spec = tmp_path / "empty.net"
    spec.write_text(text)
    code, out, err = cli(["check", spec], capsys)
    clean(code, err)
    assert "the network has no input" in err and "the network has no output" in err
    assert f"--> {spec}:1:1" in err and out == ""


def test_bom_spec_checks_and_keeps_error_columns(tmp_path, capsys):
    good = tmp_path / "good.net"
    good.write_bytes(b"\xef\xbb\xbf" + LENET.read_bytes())
    code, out, err = cli(["check", good], capsys)
    assert code == 0, err
    assert out == cli(["check", LENET], capsys)[1]
    bad = tmp_path / "bad.net"
    bad.write_bytes(b"\xef\xbb\xbf" + BROKEN.encode())
    code, out, err = cli(["check", bad], capsys)
    clean(code, err)
    line, column = BROKEN_AT
    assert f"--> {bad}:{line}:{column}" in err     # the BOM is not a column
    assert "\ufeff" not in err


def test_bom_on_the_first_line_of_an_error(tmp_path, capsys):
    spec = tmp_path / "bom1.net"
    spec.write_bytes("\ufeffnetwork t;\ninput x: f32[N, 3]\ny = x\noutput y\n".encode())
    code, out, err = cli(["check", spec], capsys)
    clean(code, err)
    assert f"--> {spec}:1:{len('network t;')}" in err
    assert "1 | network t;\n" in err and "\ufeff" not in err


def test_non_utf8_spec(tmp_path, capsys):
    spec = tmp_path / "latin1.net"
    line3 = b"y = x -> relu  # caf\xe9"
    spec.write_bytes(b"network t\ninput x: f32[N, 3, 8, 8]\n" + line3 + b"\noutput y\n")
    code, out, err = cli(["check", spec], capsys)
    clean(code, err)
    assert "not UTF-8" in err and "0xe9" in err
    column = line3.index(b"\xe9") + 1
    assert f"--> {spec}:3:{column}" in err and out == ""


def test_utf16_spec(tmp_path, capsys):
    spec = tmp_path / "utf16.net"
    spec.write_bytes(LENET.read_text().encode("utf-16"))
    code, out, err = cli(["check", spec], capsys)
    clean(code, err)
    assert "not UTF-8" in err and f"--> {spec}:1:1" in err


def _binary_file(tmp_path, capsys):
    """An ONNX model's bytes under a name that is not .onnx (an .onnx SPEC is imported)."""
    model = tmp_path / "m.onnx"
    assert cli(["export", LENET, "-o", model], capsys)[0] == 0
    return model.rename(tmp_path / "m.bin")


def test_binary_file_as_spec(tmp_path, capsys):
    binary = _binary_file(tmp_path, capsys)
    code, out, err = cli(["check", binary], capsys)
    clean(code, err)
    assert "not UTF-8" in err


def test_binary_file_is_quoted_without_control_characters(tmp_path, capsys):
    binary = _binary_file(tmp_path, capsys)
    code, out, err = cli(["check", binary], capsys)
    clean(code, err)
    controls = sorted({c for c in err if ord(c) < 32 and c not in "\n\t"} | {c for c in err if c == "\x7f"})
    assert not controls, controls


def test_crlf_spec_checks_like_lf(tmp_path, capsys):
    crlf = tmp_path / "lenet_crlf.net"
    crlf.write_bytes(LENET.read_bytes().replace(b"\n", b"\r\n"))
    code, out, err = cli(["check", crlf], capsys)
    assert code == 0, err
    assert out == cli(["check", LENET], capsys)[1]
    json_crlf = json.loads(cli(["check", "--json", crlf], capsys)[1])
    json_lf = json.loads(cli(["check", "--json", LENET], capsys)[1])
    assert json_crlf["layers"] == json_lf["layers"]


def test_crlf_spec_errors_and_imports(tmp_path, capsys):
    """A located error in a CRLF file has the same line and column as in LF, its quoted line has
    no stray `\\r`, and a CRLF library can be imported."""
    (tmp_path / "lib.net").write_bytes(b"block u(t) {\r\n    return t -> relu\r\n}\r\n")
    spec = tmp_path / "crlf.net"
    spec.write_bytes(b'use "lib.net"\r\n' + BROKEN.replace("\n", "\r\n").encode()
                     .replace(b"-> conv", b"-> u -> conv"))
    code, out, err = cli(["check", spec], capsys)
    clean(code, err)
    line, column = BROKEN_AT
    assert f"--> {spec}:{line + 1}:{column + len('u -> ')}" in err
    assert "\r" not in err
    spec.write_bytes(spec.read_bytes().replace(b"strid=2", b"stride=2"))
    code, out, err = cli(["check", spec], capsys)
    assert code == 0, err


def test_cr_only_line_endings(tmp_path, capsys):
    spec = tmp_path / "cr.net"
    spec.write_bytes(LENET.read_bytes().replace(b"\n", b"\r"))
    code, out, err = cli(["check", spec], capsys)
    # either the file checks, or the message says what is wrong with it
    assert code == 0 or "line ending" in err, err


# ================================================================ weights files


def lenet_weights(seed: int = 0) -> dict[str, np.ndarray]:
    return netspec.load(LENET).weights(seed=seed)


def run_weights(path: Path, capsys) -> tuple[int, str, str]:
    return cli(["run", LENET, "--weights", path], capsys)


def test_npz_that_is_really_text(tmp_path, capsys):
    path = tmp_path / "w.npz"
    path.write_text("features.0.weight,0.1,0.2,0.3\n")
    code, out, err = run_weights(path, capsys)
    clean(code, err)
    assert "w.npz" in err and "not a valid .npz" in err
    assert "allow_pickle" not in err and "pickle.load" not in err


def test_npz_that_is_really_text_exits_1_cleanly(tmp_path, capsys):
    """What holds today for the case above: exit 1, the file named, no traceback."""
    path = tmp_path / "w.npz"
    path.write_text("features.0.weight,0.1,0.2,0.3\n")
    code, out, err = run_weights(path, capsys)
    clean(code, err)
    assert "w.npz" in err and out == ""


def test_npz_with_an_object_array(tmp_path, capsys):
    path = tmp_path / "w.npz"
    np.savez(path, **{**lenet_weights(), "features.0.weight": np.array([object()] * 3, dtype=object)})
    code, out, err = run_weights(path, capsys)
    clean(code, err)
    assert "w.npz" in err and out == ""


@pytest.mark.parametrize("raw", [
    b"\x00\x01garbage garbage garbage" * 10,          # garbage: the length prefix is absurd
    struct.pack("<Q", 10 ** 12) + b"{}",              # a header length past the end of the file
    struct.pack("<Q", 8) + b"not json",               # a header that is not JSON
], ids=["garbage", "header-past-end", "header-not-json"])
def test_safetensors_garbage(tmp_path, capsys, raw):
    path = tmp_path / "w.safetensors"
    path.write_bytes(raw)
    code, out, err = run_weights(path, capsys)
    clean(code, err)
    assert "w.safetensors" in err and "not a valid .safetensors file" in err and out == ""


def test_safetensors_data_shorter_than_its_header_says(tmp_path, capsys):
    header = json.dumps({"features.0.weight": {"dtype": "F32", "shape": [6, 1, 5, 5],
                                               "data_offsets": [0, 600]}}).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 10)
    code, out, err = run_weights(path, capsys)
    clean(code, err)
    assert "w.safetensors" in err and "not a valid .safetensors file" in err


def test_weights_path_is_a_directory(tmp_path, capsys):
    (tmp_path / "w.npz").mkdir()
    code, out, err = run_weights(tmp_path / "w.npz", capsys)
    clean(code, err, 2)  # a path on the command line that is no file: usage, as for the spec
    assert "w.npz" in err and "directory" in err


def test_safetensors_every_problem_reported_at_once(tmp_path, capsys):
    """Missing, extra, mis-shaped and wrongly typed tensors in one file: one error each, in one
    run; and export writes nothing."""
    from safetensors.numpy import save_file

    tensors = lenet_weights()
    del tensors["logits.5.bias"]                                         # missing
    tensors["optimizer.step"] = np.zeros(3, np.float32)                  # extra
    tensors["features.0.weight"] = np.zeros((6, 1, 3, 3), np.float32)    # wrong shape
    tensors["features.0.bias"] = np.ones(6, np.bool_)                    # wrong dtype
    tensors["features.3.bias"] = np.ones(16, np.complex64)               # wrong dtype
    path = tmp_path / "w.safetensors"
    save_file(tensors, str(path))
    out_file = tmp_path / "m.onnx"
    code, out, err = cli(["export", LENET, "-o", out_file, "--weights", path], capsys)
    clean(code, err)
    assert "`logits.5.bias` [10] is missing" in err
    assert "has `optimizer.step`, which the network does not have" in err
    assert "`features.0.weight` has shape [6, 1, 3, 3]" in err and "expected [6, 1, 5, 5]" in err
    assert "`features.0.bias` holds bool values" in err
    assert "`features.3.bias` holds complex64 values" in err
    assert "5 errors" in err
    assert listing(tmp_path) == ["w.safetensors"]


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_widths_are_cast(tmp_path, capsys, dtype):
    """Not an error: README says values are cast to the network's dtype."""
    weights = lenet_weights(seed=4)
    path = tmp_path / "W.NPZ"   # the suffix in capitals too
    np.savez(tmp_path / "w.npz", **{k: v.astype(dtype) for k, v in weights.items()})
    (tmp_path / "w.npz").rename(path)
    x = np.random.default_rng(1).standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = cli(["run", LENET, "--weights", path, "--input", tmp_path / "x.npy",
                          "-o", tmp_path / "o.npz"], capsys)
    assert code == 0, err
    cast = {k: v.astype(dtype).astype(np.float32) for k, v in weights.items()}
    want = netspec.load(LENET).run(x, weights=cast)["logits"]
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["logits"], want, rtol=1e-6, atol=1e-6)


# ================================================================ output paths


@pytest.mark.parametrize("command, name", [
    (["export", LENET], "m.onnx"),
    (["graph", LENET], "g.dot"),
    (["features", LENET, "--layer", "features.0"], "f.png"),
], ids=["export", "graph", "features"])
def test_output_into_a_missing_folder(tmp_path, capsys, command, name):
    """export is covered in test_export; graph and features only through the API elsewhere."""
    code, out, err = cli([*command, "-o", tmp_path / "nodir" / name], capsys)
    clean(code, err)
    assert "nodir" in err and "does not exist" in err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("command, name", [
    (["graph", LENET], "g.dot"),
    (["features", LENET, "--layer", "features.0"], "f.png"),
], ids=["graph", "features"])
def test_output_onto_a_directory(tmp_path, capsys, command, name):
    (tmp_path / name).mkdir()
    code, out, err = cli([*command, "-o", tmp_path / name], capsys)
    clean(code, err)
    assert "it is a directory" in err
    assert listing(tmp_path) == [name] and listing(tmp_path / name) == []


def test_output_under_a_regular_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, out, err = cli(["export", LENET, "-o", tmp_path / "afile" / "m.onnx"], capsys)
    clean(code, err)
    assert "afile" in err and "does not exist" not in err
    assert "not a folder" in err or "not a directory" in err or "is a file" in err


def test_output_empty_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["export", LENET, "-o", ""], capsys)
    assert code in (1, 2) and "Traceback" not in err, err
    assert "`.`" not in err and "empty" in err
    assert listing(tmp_path) == []


# ================================================================ export failing half-way


def exported(tmp_path: Path, capsys) -> Path:
    out = tmp_path / "m.onnx"
    code, _, err = cli(["export", LENET, "-o", out, "--seed", "1"], capsys)
    assert code == 0, err
    return out


def serialisation_failing_with(exc: BaseException):
    """A stand-in for netspec.runtime._write_embedded (which writes a model into an open file)
    that writes part of the file and then fails."""
    def write_embedded(handle, model, detached):
        handle.write(model.SerializeToString()[:100])
        raise exc
    return write_embedded


@pytest.mark.parametrize("existing", [True, False], ids=["over-a-file", "new-file"])
def test_export_failing_mid_write_with_an_os_error(tmp_path, capsys, monkeypatch, existing):
    out = exported(tmp_path, capsys) if existing else tmp_path / "m.onnx"
    before = (digest(out), out.stat().st_mtime_ns) if existing else None
    monkeypatch.setattr(runtime, "_write_embedded",
                        serialisation_failing_with(OSError(errno.ENOSPC, "No space left on device")))
    code, out_text, err = cli(["export", LENET, "-o", out, "--seed", "2"], capsys)
    clean(code, err)
    assert "cannot write" in err and "No space left on device" in err and "m.onnx" in err
    assert out_text == ""
    if existing:
        assert (digest(out), out.stat().st_mtime_ns) == before
        assert listing(tmp_path) == ["m.onnx"]
    else:
        assert listing(tmp_path) == []


@pytest.mark.parametrize("exc, expected_code", [
    (ValueError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB"), None),
    (KeyboardInterrupt(), 130),
], ids=["unexpected-error", "interrupted"])
def test_export_failing_mid_write_otherwise(tmp_path, capsys, monkeypatch, exc, expected_code):
    """Whatever stops the serialisation, the old file stays and the staging folder goes."""
    out = exported(tmp_path, capsys)
    before = digest(out)
    monkeypatch.setattr(runtime, "_write_embedded", serialisation_failing_with(exc))
    code, _, err = cli(["export", LENET, "-o", out, "--seed", "2"], capsys)
    assert code != 0 and "Traceback" not in err, err
    if expected_code is not None:
        assert code == expected_code
    assert digest(out) == before
    assert listing(tmp_path) == ["m.onnx"]


def fail_the_rename_onto(out: Path, monkeypatch) -> None:
    """Make the atomic writer's last step, the rename onto `out`, fail with EIO."""
    real = os.replace

    def replace(src, dst):
        if Path(dst) == out:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(netspec_files.os, "replace", replace)


def test_export_failing_at_the_final_rename(tmp_path, capsys, monkeypatch):
    out = exported(tmp_path, capsys)
    before = digest(out)
    fail_the_rename_onto(out, monkeypatch)
    code, _, err = cli(["export", LENET, "-o", out, "--seed", "2"], capsys)
    clean(code, err)
    assert "Input/output error" in err
    assert digest(out) == before and listing(tmp_path) == ["m.onnx"]


def test_external_data_export_failing_at_the_final_rename(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runtime, "TWO_GB", 1024)   # every model counts as large
    out = exported(tmp_path, capsys)
    data = tmp_path / "m.onnx.data"
    assert listing(tmp_path) == ["m.onnx", "m.onnx.data"]
    before = (digest(out), digest(data))
    fail_the_rename_onto(out, monkeypatch)
    code, _, err = cli(["export", LENET, "-o", out, "--seed", "2"], capsys)
    clean(code, err)
    assert listing(tmp_path) == ["m.onnx", "m.onnx.data"]
    assert (digest(out), digest(data)) == before


def test_a_use_path_too_long_for_the_file_system_is_a_located_error(tmp_path, capsys):
    # a fuzzer find: looking for a file nearby stat()ed the path, which raised
    spec = tmp_path / "t.net"
    spec.write_text(f'use "{"a" * 300}.net"\nnetwork t\ninput x: f32[N, 3, 8, 8]\ny = x -> b\noutput y\n')
    code, out, err = cli(["check", spec], capsys)
    assert code == 1 and "Traceback" not in err and "internal error" not in err
    assert "File name too long" in err and f"{spec}:1:5" in err
