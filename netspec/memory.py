"""Memory of a typed graph at a batch size: the inference peak, by liveness in execution order,
and training's parameters, gradients, optimizer state and the activations autograd keeps.

Storages, not values: a view (flatten, reshape, permute, a slice...) writes nothing, so its
value lives in its input's storage, and keeping a view keeps that storage alive. Every other
layer writes a new tensor (no layer is taken to work in place).

What a layer keeps for the backward pass is the table SAVES below, keyed by layer kind, as
PyTorch's autograd keeps it (tools/autograd/derivatives.yaml): conv and linear their input,
relu and sigmoid their output, batchnorm its input and two statistics per channel, maxpool its
input and int64 indices, dropout a mask. It is a table here rather than a method per layer
class because every rule is said in the same terms (which of the layer's tensors, and what
private tensors of which size) and only means something next to the others: a tensor two
layers keep counts once, which the walk below sees and no layer could.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from netspec.graph import Graph, LayerNode
from netspec.types import DTYPES, TensorType

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}  # fp32 state tensors per parameter

# Layers whose output is a view of their first input: no new storage.
VIEWS = frozenset({"flatten", "reshape", "unflatten", "squeeze", "unsqueeze", "permute", "transpose",
                   "slice", "narrow", "select", "chunk", "split", "identity"})
# Identities at inference that PyTorch also returns as they are when they drop nothing.
_IDENTITY_WHEN_P0 = frozenset({"dropout", "stochastic_depth"})

MASK_BYTES = 1     # dropout's mask is bool on CUDA (native_dropout); the CPU keeps a float one
INDEX_BYTES = 8    # max pooling's indices are int64
STAT_BYTES = 4     # norms' saved mean and inverse deviation are fp32


@dataclass(frozen=True)
class Keeps:
    """What one layer keeps: its own tensors by role ("in0", "in1"... its inputs, "out" its output),
    and private tensors, per sample and per batch, in bytes."""

    tensors: tuple[str, ...] = ()
    private_per_sample: int = 0
    private_fixed: int = 0


def _per_sample_bytes(t: TensorType | None) -> int:
    return t.sample_elements() * t.itemsize if t is not None else 0


def _inputs(layer, inputs, output) -> Keeps:
    return Keeps(tuple(f"in{i}" for i in range(len(inputs))))


def _first_input(layer, inputs, output) -> Keeps:
    return Keeps(("in0",))


def _output(layer, inputs, output) -> Keeps:
    return Keeps(("out",))


def _nothing(layer, inputs, output) -> Keeps:
    return Keeps()


def _batchnorm(layer, inputs, output) -> Keeps:
    # native_batch_norm: the input, and save_mean and save_invstd per channel
    return Keeps(("in0",), private_fixed=2 * inputs[0].channels * STAT_BYTES)


def _layernorm(layer, inputs, output) -> Keeps:
    # native_layer_norm: the input, and mean and rstd per normalised row
    rows = inputs[0].sample_elements() // max(inputs[0].channels, 1)
    return Keeps(("in0",), private_per_sample=2 * rows * STAT_BYTES)


def _maxpool(layer, inputs, output) -> Keeps:
    # max_pool2d_with_indices keeps its input and an int64 index per output element
    return Keeps(("in0",), private_per_sample=output.sample_elements() * INDEX_BYTES)


def _adaptive_avgpool(layer, inputs, output) -> Keeps:
    # an output of one cell per channel is a mean, whose backward needs only sizes
    if all(s == 1 for s in output.spatial):
        return Keeps()
    return Keeps(("in0",))


def _dropout(layer, inputs, output) -> Keeps:
    return Keeps(private_per_sample=output.sample_elements() * MASK_BYTES)


def _stochastic_depth(layer, inputs, output) -> Keeps:
    # torchvision multiplies by a noise tensor of one value per sample (mode "row")
    return Keeps(private_per_sample=output.itemsize)


def _attention(layer, inputs, output) -> Keeps:
    # nn.MultiheadAttention with need_weights=False: in_proj keeps x; scaled_dot_product_attention
    # the packed q, k, v (3 L E), its output (L E: out_proj reads it in the same storage) and its
    # log-sum-exp (heads x L, fp32)
    t = inputs[0]
    tokens = t.sample_elements() // t.channels
    return Keeps(("in0",), private_per_sample=4 * _per_sample_bytes(t) + tokens * STAT_BYTES * layer.num_heads)


def _groupnorm(layer, inputs, output) -> Keeps:
    return Keeps(("in0",), private_per_sample=2 * layer.num_groups * STAT_BYTES)


SAVES: dict[str, Callable[..., Keeps]] = {
    "conv": _first_input, "conv_transpose": _first_input, "linear": _first_input,
    "matmul": _inputs, "mul": _inputs,
    "add": _nothing, "concat": _nothing, "upsample": _nothing, "pad": _nothing, "cast": _nothing,
    "channel_shuffle": _nothing, "roll": _nothing, "gather": _nothing, "global_avgpool": _nothing,
    "batchnorm": _batchnorm, "layernorm": _layernorm, "groupnorm": _groupnorm,
    "relu": _output, "sigmoid": _output, "tanh": _output, "softmax": _output, "log_softmax": _output,
    "exp": _output,
    "leaky_relu": _first_input, "relu6": _first_input, "hardtanh": _first_input, "clamp": _first_input,
    "hardsigmoid": _first_input, "hardswish": _first_input, "gelu": _first_input, "silu": _first_input,
    "elu": _first_input, "prelu": _first_input,
    "maxpool": _maxpool, "adaptive_maxpool": _maxpool, "global_maxpool": _maxpool,
    "avgpool": _first_input, "lppool": _first_input, "adaptive_avgpool": _adaptive_avgpool,
    "dropout": _dropout, "stochastic_depth": _stochastic_depth,
    "multihead_attention": _attention,
}


def keeps(node: LayerNode, inputs: list[TensorType]) -> Keeps:
    """What `node` keeps for the backward pass; a kind not in SAVES keeps its inputs (the
    safe guess: most gradients need them), a view nothing."""
    kind = node.kind
    if kind in VIEWS or node.layer is None or node.output is None:
        return Keeps()
    if kind in _IDENTITY_WHEN_P0 and getattr(node.layer, "p", 1.0) == 0.0:
        return Keeps()
    return SAVES.get(kind, _inputs)(node.layer, inputs, node.output)


@dataclass
class Memory:
    batch: int
    inference_peak_bytes: int            # activations live at once, at the worst step
    parameters_bytes: int                # parameters and buffers
    gradients_bytes: int                 # one gradient per trainable parameter
    optimizer_bytes: int
    saved_activations_bytes: int         # what autograd keeps for the backward pass
    optimizer: str
    saved_bytes: dict[str, int] = field(default_factory=dict)  # by layer: what it keeps first
    live_bytes: dict[str, int] = field(default_factory=dict)   # by layer: live while it runs

    @property
    def inference_total_bytes(self) -> int:
        return self.parameters_bytes + self.inference_peak_bytes

    @property
    def training_total_bytes(self) -> int:
        return (self.parameters_bytes + self.gradients_bytes + self.optimizer_bytes
                + self.saved_activations_bytes)

    def to_json(self) -> dict:
        return {"batch": self.batch, "inference_peak_bytes": self.inference_peak_bytes,
                "inference_total_bytes": self.inference_total_bytes,
                "training": {"optimizer": self.optimizer, "parameters_bytes": self.parameters_bytes,
                             "gradients_bytes": self.gradients_bytes,
                             "optimizer_bytes": self.optimizer_bytes,
                             "saved_activations_bytes": self.saved_activations_bytes,
                             "total_bytes": self.training_total_bytes}}


def _is_state(node: LayerNode) -> bool:
    """A param or buffer the network owns: weight memory, not an activation."""
    return node.layer is not None and not node.inputs


def memory(graph: Graph, batch: int = 1, optimizer: str = "adam") -> Memory:
    """The graph's memory at `batch` samples (a symbolic or given batch axis alike: sizes are
    per sample times `batch`)."""
    nodes = [n for n in graph if n.output is not None]
    storage: dict[str, str] = {}  # node -> the node whose output storage holds its value
    for node in nodes:
        if node.kind in VIEWS and node.inputs and node.inputs[0] in storage:
            storage[node.name] = storage[node.inputs[0]]
        else:
            storage[node.name] = node.name

    def size(name: str) -> int:
        node = graph.node(name)
        per_sample = _per_sample_bytes(node.output)
        return per_sample if node.output.layout.is_unlaid else per_sample * batch

    # inference: a storage lives from its producer's step to its last reader's (outputs: the end)
    step = {node.name: i for i, node in enumerate(nodes)}
    last: dict[str, int] = {}
    for node in nodes:
        for source in node.inputs:
            if source in storage:
                last[storage[source]] = step[node.name]
    for _, name in graph.outputs:
        if name in storage:
            last[storage[name]] = len(nodes)
    allocated = {name for name in set(storage.values()) if not _is_state(graph.node(name))}
    live_bytes: dict[str, int] = {}
    live = 0
    freed_after: dict[int, int] = {}
    for i, node in enumerate(nodes):
        if storage[node.name] == node.name and node.name in allocated:
            live += size(node.name)
            end = last.get(node.name, i)  # a value nobody reads dies at once
            freed_after[end] = freed_after.get(end, 0) + size(node.name)
        live_bytes[node.name] = live
        live -= freed_after.pop(i, 0)
    peak = max(live_bytes.values(), default=0)

    # training: each storage kept counts once, for the first layer that keeps it
    kept: set[str] = set()
    saved_bytes: dict[str, int] = {}
    for node in nodes:
        if node.layer is None:
            continue
        types = [graph.node(n).output for n in node.inputs]
        rule = keeps(node, types)  # type: ignore[arg-type]
        total = rule.private_per_sample * batch + rule.private_fixed
        for role in rule.tensors:
            name = node.name if role == "out" else node.inputs[int(role[2:])]
            held = storage.get(name, name)
            if held in kept or _is_state(graph.node(held)):
                continue
            kept.add(held)
            total += size(held)
        saved_bytes[node.name] = total

    from netspec.report import totals  # the figures the table already shows

    t = totals(graph)
    dtypes = graph.parameter_dtypes()
    trainable_bytes = sum(spec.elements * DTYPES.get(dtypes[key], 4)
                          for key, spec in graph.parameter_specs().items() if spec.trainable)
    return Memory(batch, peak, t.param_bytes, trainable_bytes,
                  OPTIMIZER_STATES[optimizer] * trainable_bytes, sum(saved_bytes.values()), optimizer,
                  saved_bytes, live_bytes)


# ---------------------------------------------------------------- --fit

UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`16GiB`, `512MiB`, `8GB`, `1.5TB`, `4096B`: bytes. Raises ValueError with what is wrong."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"`{text}` is not a size: write a number and a unit, e.g. 16GiB or 8GB")
    number, unit = match.groups()
    if unit.lower() not in UNITS:
        raise ValueError(f"`{text}`: unknown unit `{unit}`" if unit else f"`{text}` has no unit"
                         + " (binary: KiB, MiB, GiB, TiB; decimal: B, kB, MB, GB, TB)")
    value = int(float(number) * UNITS[unit.lower()])
    if value <= 0:
        raise ValueError(f"`{text}` is no memory: the size must be more than 0 bytes")
    return value


def largest_batch(graph: Graph, budget: int, train: bool, optimizer: str = "adam",
                  limit: int = 1 << 40) -> tuple[int, Memory]:
    """The largest batch whose total (training's with `train`, else parameters and the
    inference peak) is at most `budget` bytes, with its figures; 0 and batch 1's figures when
    not even one sample fits. Totals grow with the batch, so a doubling and bisection find it."""

    def fits(b: int) -> Memory | None:
        m = memory(graph, b, optimizer)
        return m if (m.training_total_bytes if train else m.inference_total_bytes) <= budget else None

    first = fits(1)
    if first is None:
        return 0, memory(graph, 1, optimizer)
    low, best = 1, first
    high = 2
    while high <= limit and (m := fits(high)) is not None:
        low, best, high = high, m, high * 2
    if high > limit:
        return low, best
    while high - low > 1:  # fits(low), not fits(high)
        mid = (low + high) // 2
        m = fits(mid)
        if m is None:
            high = mid
        else:
            low, best = mid, m
    return low, best
