"""Running the command line in-process for tests: exit code and captured output."""

from __future__ import annotations

from netspec.cli import main


def cli(argv: list, capsys) -> tuple[int, str, str]:
    """Run `netspec ARGV` in-process: (exit code, stdout, stderr). Arguments may be paths."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
