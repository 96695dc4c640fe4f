"""Every layer kind, one class each, grouped by family; importing this fills `LAYERS`."""

from netspec.layers.base import LAYERS, ArgumentError, Layer, ParamSpec
from netspec.layers import activation, conv, linear, merge, norm, pool, resample, shape  # noqa: F401  (registration)

__all__ = ["LAYERS", "ArgumentError", "Layer", "ParamSpec"]
