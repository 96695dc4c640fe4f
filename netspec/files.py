"""Writing output files atomically: every file netspec writes (ONNX models, pictures, arrays)
goes through `write_atomically`, so a failure leaves no partial file and never touches an
existing one. Standard library only: the commands that import it stay light."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from netspec.diagnostics import Diagnostic, NetspecError


def output_path(text: str) -> str:
    """argparse type for `-o`: an empty path is a usage error, not the current folder."""
    if not text:
        import argparse

        raise argparse.ArgumentTypeError("the output path is empty")
    return text


def _error(message: str) -> NetspecError:
    return NetspecError([Diagnostic(message, rule="outputs are written atomically")])


def write_atomically(path: str | os.PathLike, produce: Callable[[Path], None]) -> list[Path]:
    """Call `produce(staged)` to write the file at `staged`, a path in a private folder beside
    `path`; then move what it wrote into place: companion files first (an ONNX model's
    `.data`), `path` last. Returns the files written. A failure raises NetspecError with the
    reason and leaves nothing behind."""
    if not os.fspath(path):
        raise _error("cannot write the output: the path is empty")
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if directory.exists() and not directory.is_dir():
        raise _error(f"cannot write `{path}`: `{directory}` is a file, not a folder")
    if not directory.is_dir():
        raise _error(f"cannot write `{path}`: the folder `{directory}` does not exist")
    if path.is_dir():
        raise _error(f"cannot write `{path}`: it is a directory")
    try:
        # a fresh file in a private folder: created with the usual permissions, invisible to
        # anyone reading `path` until the rename
        import tempfile  # not on the check path

        with tempfile.TemporaryDirectory(dir=directory, prefix=f".{path.name}.") as folder:
            staged = Path(folder) / path.name
            produce(staged)
            companions = [f for f in Path(folder).iterdir() if f.name != path.name]
            _move_into_place(companions, staged, path, Path(folder))
    except OSError as exc:
        raise _error(f"cannot write `{path}`: {exc.strerror or exc}") from None
    return [path, *(directory / c.name for c in companions)]


def _move_into_place(companions: list[Path], staged: Path, path: Path, folder: Path) -> None:
    """Companions first, `path` last. The files they replace are kept in the private folder
    until `path` is in place, and put back if any rename fails, so a model and its `.data`
    never end up from different exports."""
    moved: list[tuple[Path, Path | None]] = []   # (target, its previous version kept aside)
    try:
        for companion in companions:
            target = path.parent / companion.name
            kept = None
            if target.exists():
                kept = folder / f"previous-{companion.name}"
                os.replace(target, kept)
            moved.append((target, kept))
            os.replace(companion, target)
        os.replace(staged, path)
    except BaseException:
        for target, kept in reversed(moved):
            try:
                if kept is not None:
                    os.replace(kept, target)
                else:
                    target.unlink(missing_ok=True)
            except OSError:
                pass  # the first error is the one to report
        raise


def write_with_handle(path: str | os.PathLike, write: Callable) -> list[Path]:
    """`write_atomically` for writers that take an open binary file (np.savez, PIL)."""
    def produce(staged: Path) -> None:
        with open(staged, "wb") as handle:
            write(handle)
    return write_atomically(path, produce)
