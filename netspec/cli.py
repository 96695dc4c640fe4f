"""The `netspec` program's entry point (`[project.scripts]`); the subcommands live in
`netspec.commands`."""

from __future__ import annotations

import sys

from netspec.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
