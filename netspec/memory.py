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
from collections.abc import Callable
from dataclasses import dataclass, field

from netspec.graph import Graph, LayerNode
from netspec.types import DTYPES, TensorType

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}  # fp32 state tensors per parameter

# Layers whose output is a view of their first input: no new storage. A reshape of a value
# whose elements are out of order (after a permute) is a copy, as PyTorch's reshape makes one.
RESHAPES = frozenset({"flatten", "reshape", "unflatten"})
MOVES = frozenset({"permute", "transpose"})
CUTS = frozenset({"slice", "narrow", "select", "chunk", "split"})
VIEWS = RESHAPES | MOVES | CUTS | {"squeeze", "unsqueeze", "identity"}
# How a value's elements lie in its storage: in order, in order but for its last two axes
# swapped (a matrix product reads that as it is), or otherwise strided.
CONTIGUOUS, TRANSPOSED, STRIDED = "contiguous", "transposed", "strided"
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


def _product(layer, inputs, output) -> Keeps:
    # each operand's gradient needs the other; a product with a number keeps nothing
    return _inputs(layer, inputs, output) if len(inputs) > 1 else Keeps()


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
    "matmul": _product, "mul": _product,
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


def _is_view(node: LayerNode) -> bool:
    """Whether a layer's output is its input's storage: a view, or a dropout that drops nothing
    (PyTorch returns the input itself when p is 0)."""
    if node.kind in _IDENTITY_WHEN_P0:
        return getattr(node.layer, "p", 1.0) == 0.0
    return node.kind in VIEWS


def keeps(node: LayerNode, inputs: list[TensorType]) -> Keeps:
    """What `node` keeps for the backward pass; a kind not in SAVES keeps its inputs (the
    safe guess: most gradients need them), a view nothing."""
    kind = node.kind
    if _is_view(node) or node.layer is None or node.output is None:
        return Keeps()
    return SAVES.get(kind, _inputs)(node.layer, inputs, node.output)


def _copies(node: LayerNode, operand: TensorType, arrangement: str) -> bool:
    """Whether a product reads `operand` through a contiguous copy, which it keeps: a matrix
    product folds its operands' leading axes, which needs them in order (a transposed matrix
    it reads as it is); a linear layer folds every axis but the features."""
    if node.kind == "matmul":
        return arrangement == STRIDED
    if node.kind == "linear":
        return operand.rank > 2 and arrangement != CONTIGUOUS
    return False


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


def _arrangement_after(node: LayerNode, source: TensorType, arrangement: str) -> str | None:
    """How a view's elements lie, from its input's arrangement; None: PyTorch copies (a
    reshape of elements out of order)."""
    kind, out = node.kind, node.output
    if kind in RESHAPES:
        return arrangement if arrangement == CONTIGUOUS else None
    if kind in MOVES:
        try:
            order = node.layer._order(source)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - an input it cannot read: say strided, the safe guess
            return STRIDED
        moved = [i for i in order if source.shape[i] != 1]
        if moved == sorted(moved):
            return arrangement
        if arrangement == CONTIGUOUS and moved[:-2] == sorted(moved)[:-2] and moved[-2:] == sorted(moved)[-2:][::-1]:
            return TRANSPOSED
        return STRIDED
    if kind in CUTS:
        # a cut keeps the elements in order when every axis before the one it cuts is of size 1
        cut = next((i for i, (a, b) in enumerate(zip(source.shape, out.shape)) if a != b),
                   min(source.rank, out.rank) - 1)
        ahead = source.shape[:cut]
        return arrangement if all(d == 1 for d in ahead) else STRIDED
    return arrangement


def _fresh_arrangement(node: LayerNode, arrangement: dict[str, str]) -> str:
    """How a layer's new output lies: an element-wise layer's as its first input's (PyTorch's
    TensorIterator keeps the operands' layout); attention's, batch first, transposed back from
    the tokens-first order it computes in; every other layer's in order."""
    if node.kind == "multihead_attention":
        return STRIDED
    if node.kind in ("add", "mul", "dropout", "stochastic_depth") or (
            node.layer is not None and node.layer.family == "activation"):
        return next((arrangement[n] for n in node.inputs if n in arrangement), CONTIGUOUS)
    return CONTIGUOUS


def declared_batch(graph: Graph) -> int | None:
    """The batch the inputs declare when every one gives it as the same number
    (`--input-shape image=8,3,224,224`); None when it is symbolic (N) or they differ."""
    batches = set()
    for name in graph.inputs:
        t = graph.node(name).output
        if t is None or t.layout.is_unlaid or "N" not in t.layout.axes:
            return None
        batches.add(t.batch)
    if len(batches) == 1 and isinstance(next(iter(batches)), int):
        return next(iter(batches))
    return None


def _is_state(node: LayerNode) -> bool:
    """A param or buffer the network owns: weight memory, not an activation."""
    return node.layer is not None and not node.inputs


def memory(graph: Graph, batch: int = 1, optimizer: str = "adam") -> Memory:
    """The graph's memory at `batch` samples (a symbolic or given batch axis alike: sizes are
    per sample times `batch`)."""
    nodes = [n for n in graph if n.output is not None]
    storage: dict[str, str] = {}  # node -> the node whose output storage holds its value
    arrangement: dict[str, str] = {}
    for node in nodes:
        storage[node.name], arrangement[node.name] = node.name, _fresh_arrangement(node, arrangement)
        if _is_view(node) and node.inputs and node.inputs[0] in storage:
            source = node.inputs[0]
            after = _arrangement_after(node, graph.node(source).output, arrangement[source])
            if after is not None:
                storage[node.name], arrangement[node.name] = storage[source], after

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
            if _is_state(graph.node(held)):
                continue
            if role != "out" and _copies(node, graph.node(name).output, arrangement.get(name, CONTIGUOUS)):
                total += size(name)  # the product keeps its own contiguous copy
                continue
            if held in kept:
                continue
            kept.add(held)
            total += size(held)
        saved_bytes[node.name] = total

    dtypes = graph.parameter_dtypes()
    specs = graph.parameter_specs()
    state_bytes = sum(spec.elements * DTYPES.get(dtypes[key], 4) for key, spec in specs.items())
    trainable_bytes = sum(spec.elements * DTYPES.get(dtypes[key], 4)
                          for key, spec in specs.items() if spec.trainable)
    return Memory(batch, peak, state_bytes, trainable_bytes,
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


@dataclass
class Fit:
    """The answer to `--fit`: the largest batch within the budget (0: not even one sample)."""

    budget_bytes: int
    budget_text: str
    train: bool
    batch: int
    memory: Memory                        # the figures at that batch (batch 1's when 0 fits)

    @property
    def total_bytes(self) -> int:
        return self.memory.training_total_bytes if self.train else self.memory.inference_total_bytes

    def to_json(self) -> dict:
        return {"budget_bytes": self.budget_bytes, "mode": "training" if self.train else "inference",
                "batch": self.batch, "total_bytes": self.total_bytes}


def largest_batch(graph: Graph, budget: int, train: bool, optimizer: str = "adam",
                  budget_text: str = "", limit: int = 1 << 40) -> Fit:
    """The largest batch whose total (training's with `train`, else parameters and the
    inference peak) is at most `budget` bytes. Totals grow with the batch, so doubling and then
    bisecting finds it; `limit` caps a network whose memory does not grow with the batch."""

    def at(b: int) -> Memory:
        return memory(graph, b, optimizer)

    def fits(m: Memory) -> bool:
        return (m.training_total_bytes if train else m.inference_total_bytes) <= budget

    def answer(b: int, m: Memory) -> Fit:
        return Fit(budget, budget_text or f"{budget} B", train, b, m)

    best = at(1)
    if not fits(best):
        return answer(0, best)
    low, high = 1, 2
    while high <= limit:
        m = at(high)
        if not fits(m):
            break
        low, best, high = high, m, high * 2
    else:
        return answer(low, best)
    while high - low > 1:  # `low` fits, `high` does not
        mid = (low + high) // 2
        m = at(mid)
        if fits(m):
            low, best = mid, m
        else:
            high = mid
    return answer(low, best)
