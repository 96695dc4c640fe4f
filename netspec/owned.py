"""Tensors a network owns: `param(...)`, a learned parameter (ConvNeXt's layer scale), and
`buffer(...)`, a constant that is not trained (a relative-position index, a normalisation
mean). Each is a graph node of its own, named like a state_dict key (`features.1.0.layer_scale`),
with one tensor whose key is the node's name; its value has the tensor's shape and no layout, and
combines with activations in `+` and `*`, broadcast as NumPy does (aligned on the last axes, in
the activation's declared layout).

The elaborator checks the arguments (sizes, `dtype=`, `init=`) and builds the node; these
classes are its rules: type, tensor, lowering. They are Layer subclasses kept out of LAYERS
(`registered = False`): a spec calls them by name, but they are no layer kind.
"""

from typing import Any, ClassVar

from netspec.constants import Constant
from netspec.layers.base import Layer, ParamSpec, TorchForm
from netspec.types import Layout, TensorType

# The standard deviation of a param's default initialisation: torchvision's for ViT's class
# token and position embedding (`normal_(std=0.02)`).
NORMAL_STD = 0.02


class Owned(Layer):
    family = "owned"
    arity = 0
    registered = False
    trainable: ClassVar[bool] = True

    shape: tuple[int, ...]
    dtype: str
    # a number (every element), a tuple (the values, row-major; a netspec.constants.Constant
    # when a function computed them), or "normal" (seeded N(0, 0.02^2))
    init: Any
    persistent: bool = True  # in the state_dict (a buffer may be a constant outside it)

    def infer_dtype(self, inputs, names=()):
        return self.dtype

    def infer(self, inputs: list[TensorType]) -> TensorType:
        return TensorType(self.dtype, tuple(self.shape), Layout.unlaid(len(self.shape)))

    def spec(self) -> ParamSpec:
        if isinstance(self.init, tuple):
            init, scale, values = "values", 0.0, self.init
        elif self.init == "normal":
            init, scale, values = "normal", NORMAL_STD, None
        else:
            init, scale, values = "fill", self.init, None
        return ParamSpec(tuple(self.shape), self.trainable, self.dtype, init, scale, values, self.persistent)

    def parameters(self, inputs, output):
        return {"": self.spec()}

    def describe(self, inputs):
        kept = "" if self.persistent else " (not in the state_dict)"
        return f"{self.kind} {self.dtype} {self._init_text()}{kept}"

    def _init_text(self) -> str:
        if isinstance(self.init, Constant):
            return self.init.call
        if isinstance(self.init, tuple):
            init = "values"
        elif self.init == "normal":
            init = f"normal(std={NORMAL_STD})"
        else:
            init = f"= {self.init!r}" if not isinstance(self.init, bool) else f"= {str(self.init).lower()}"
        return init

    def attributes(self) -> dict[str, Any]:
        init = self.init.call if isinstance(self.init, Constant) else \
            list(self.init) if isinstance(self.init, tuple) else self.init
        out = {"shape": list(self.shape), "dtype": self.dtype, "init": init}
        return out if self.persistent else {**out, "persistent": False}

    def torch_form(self, inputs, output):
        """The expression that makes the tensor, as `function` (netspec.torch_codegen holds it
        as an nn.Parameter or a buffer): its spec's values, or a fresh draw of its init."""
        from netspec.constants import TORCH_HELPERS
        from netspec.layers.shape import TORCH_DTYPES

        dtype, shape = TORCH_DTYPES[self.dtype], tuple(self.shape)
        sizes = "(" + ", ".join(map(str, shape)) + ")" if len(shape) != 1 else f"({shape[0]})"
        if isinstance(self.init, Constant):
            name = self.init.call.split("(", 1)[0]
            return TorchForm(function=f"{self.init.call}.reshape{sizes}.to({dtype})",
                             helpers={name: TORCH_HELPERS[name]})
        if isinstance(self.init, tuple):
            values = list(self.init)
            return TorchForm(function=f"torch.tensor({values!r}, dtype={dtype}).reshape{sizes}")
        if self.init == "normal":
            return TorchForm(function=f"torch.randn({shape!r}, dtype={dtype}) * {NORMAL_STD!r}")
        return TorchForm(function=f"torch.full({shape!r}, {self.init!r}, dtype={dtype})")

    def lower(self, g, node, inputs, types, output):
        if not self.persistent and isinstance(self.init, Constant):  # no weight: equal ones are one
            return g.shared(("constant", self.init.call, self.dtype, tuple(self.shape)))
        return g.param("")  # the initializer, named by the node's own state_dict key


class Param(Owned):
    """`param(sizes..., init=..., dtype=...)`: a learned tensor, as PyTorch's nn.Parameter."""

    kind = "param"


class Buffer(Owned):
    """`buffer(sizes..., init=..., dtype=..., persistent=...)`: a constant, as PyTorch's
    register_buffer; `persistent=false` keeps it out of the state_dict (Swin's mask of shifted
    windows, which torchvision computes in its forward)."""

    kind = "buffer"
    trainable = False


OWNED: dict[str, type[Owned]] = {"param": Param, "buffer": Buffer}
