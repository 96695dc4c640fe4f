"""Every layer kind, one class each, grouped by family; importing this fills `LAYERS`.

Every module of this package but `base` is a family and is imported here, whatever its name:
a new family is one new file, with no edit anywhere else. (The folder is listed with `os`:
`pkgutil` alone would add 8 ms to every `netspec check`.)
"""

import importlib
import os

from netspec.layers.base import LAYERS, ArgumentError, Layer, ParamSpec

__all__ = ["LAYERS", "ArgumentError", "Layer", "ParamSpec"]

for _family in sorted(name[:-3] for name in os.listdir(os.path.dirname(__file__))
                      if name.endswith(".py") and name not in ("__init__.py", "base.py")):
    importlib.import_module(f"{__name__}.{_family}")  # its classes register themselves
