"""An ONNX model given where a command takes a SPEC (`netspec check model.onnx`): imported in
memory by netspec.importer, its spec text compiled as if it were a .net file.

onnx and numpy are imported only when a model is read, so `netspec check spec.net` never
loads them.
"""

from __future__ import annotations

import re
from pathlib import Path

ONNX_SUFFIX = ".onnx"


def is_onnx_model(path: str | Path) -> bool:
    """A SPEC argument that names an ONNX model (by its suffix, in any case)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def spec_name(stem: str) -> str:
    """A valid network name made from a file's stem: `resnet-18` is `resnet_18`, `18x` `n_18x`."""
    name = re.sub(r"\W", "_", stem) or "imported"
    return "n_" + name if name[0].isdigit() else name


def imported_source_name(path: str | Path) -> str:
    """The name the imported spec text goes by in diagnostics: not the .onnx file itself (its
    lines are protobuf, not the quoted spec) nor a .net file that does not exist."""
    return f"{path} (as netspec imported it)"


def import_spec(path: str | Path):
    """The model at `path` as an importer.Imported (spec text, weights, layer count); a model
    netspec cannot read or express raises the importer's NetspecError."""
    from netspec.importer import import_model, read_model

    return import_model(read_model(Path(path)), spec_name(Path(path).stem))


def blame_the_import(diagnostics, path: str | Path) -> None:
    """A note on each error in an imported spec: the mistake is netspec's import of `path`,
    not something the user wrote."""
    for diagnostic in diagnostics:
        if diagnostic.severity == "error":
            diagnostic.notes.append(
                f"this spec is netspec's import of `{path}`, so the error is a bug in netspec's "
                f"importer, not in the model; `netspec import {path} -o NAME.net` writes the spec "
                "out to look at; please report it")
