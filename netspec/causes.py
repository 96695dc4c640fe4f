"""After inference: follow errors back to their causes, so a mistake is reported where a person
would fix it, once.

- A merge (`+`, `*`, `concat`) whose operands disagree labels each operand with its shape and
  the layer that produced it, names the likely culprit and the layer that set the axis it
  differs in.
- An input whose declared shape looks like the other layout ([N, 224, 224, 3] under NCHW), an
  image with no batch axis, or a spatial size that a later merge needs to be a multiple of the
  network's stride (a U-Net given 250): a warning at the `input` line when nothing fails; the
  error, at the `input` line with the failing layer as a label, when a later layer fails
  because of it.
"""

from __future__ import annotations

from netspec.diagnostics import Diagnostic, Diagnostics, Label
from netspec.graph import Graph, LayerNode
from netspec.infer import Failure, propagate
from netspec.types import PLURAL_ROLES, DTypeError, Layout, TensorType

STRIDES = (2, 4, 8, 16, 32, 64)  # the total strides a what-if on an input's size tries


def explain(graph: Graph, failures: list[Failure], diagnostics: Diagnostics) -> None:
    for failure in failures:
        if failure.diagnostic is None:
            continue
        if isinstance(failure.error, DTypeError):
            _explain_dtype(graph, failure)
        elif len(failure.inputs) > 1 and failure.error.axes:
            _explain_merge(graph, failure, diagnostics.sources)
    _common_operand(graph, [f for f in failures if f.diagnostic is not None and len(f.inputs) > 1
                            and f.error.axes and not isinstance(f.error, DTypeError)], diagnostics)
    below = _downstream(graph) if failures else {name: set() for name in graph.inputs}
    for name in graph.inputs:
        _check_input(graph, graph.node(name), failures, diagnostics, below)


# ---------------------------------------------------------------- dtypes

def _explain_dtype(graph: Graph, failure: Failure) -> None:
    """A refused dtype: the inputs' types (not only their shapes), and where each input that
    the rule refuses got its dtype (its `input` line, or the cast that made it)."""
    d, node = failure.diagnostic, failure.node
    d.notes = [f"input type{'s' if len(failure.inputs) > 1 else ''}: "
               + ", ".join(f"{t.dtype}{t}" for t in failure.inputs)]
    allowed = node.layer.dtypes
    for producer, t in zip(node.inputs, failure.inputs):
        if t.dtype in allowed and len(failure.inputs) == 1:
            continue
        origin = graph.node(producer)
        while origin.layer is not None and origin.inputs and origin.kind != "cast":
            above = graph.node(origin.inputs[0])
            if above.output is None or above.output.dtype != t.dtype:
                break
            origin = above
        what = "declared" if origin.layer is None else "made"
        d.labels.append(Label(origin.span, f"`{origin.name}` is {what} {t.dtype} here"))


# ---------------------------------------------------------------- merges

def _roles(t: TensorType, axes: tuple[int, ...]) -> str:
    roles = [t.layout.role(a) for a in axes]
    return roles[0] if len(roles) == 1 else ", ".join(roles[:-1]) + " and " + roles[-1]


def _verb(roles: str, plural: str, singular: str) -> str:
    """`channels differ`, `the embedding width differs`: the verb that agrees with `roles`."""
    many = " and " in roles or roles in PLURAL_ROLES
    return f"{roles} {plural}" if many else f"{roles} {singular}"


def _sizes(t: TensorType, axes: tuple[int, ...]) -> tuple:
    return tuple(t.shape[a] for a in axes)


def _aligned(t: TensorType, axes: tuple[int, ...], rank: int) -> tuple | None:
    """A merge operand's sizes on `axes` of the widest operand's layout: its own where it has
    that rank; a tensor of the network's own (a param) aligned on the last axes, 1 before its
    first; None for an activation of another rank."""
    if t.rank == rank:
        return _sizes(t, axes)
    if not t.layout.is_unlaid:
        return None
    offset = rank - t.rank
    return tuple(t.shape[a - offset] if a >= offset else 1 for a in axes)


def _shown(sizes: tuple) -> str:
    return ", ".join(map(str, sizes)) if len(sizes) > 1 else str(sizes[0])


def _explain_merge(graph: Graph, failure: Failure, sources) -> None:
    node, inputs, axes = failure.node, failure.inputs, failure.error.axes
    d = failure.diagnostic
    rank = max(t.rank for t in inputs)
    # the axes' roles as an activation names them (a param's own axes have none)
    reference = next((t for t in inputs if t.rank == rank and not t.layout.is_unlaid),
                     next(t for t in inputs if t.rank == rank))
    roles = _roles(reference, axes)
    culprit, why = _culprit(graph, node, inputs, axes)
    d.label = _verb(roles, "differ", "differs") + ": " + " and ".join(_shown(a) for t in inputs
                                                  if (a := _aligned(t, axes, rank)) is not None)
    for index, (producer, t) in enumerate(zip(node.inputs, inputs)):
        span = node.input_spans[index] if index < len(node.input_spans) else graph.node(producer).span
        where = graph.node(producer).span
        text = f"{t} from `{producer}`" + (f" (line {where.line})" if where.line != span.line else "")
        d.labels.append(Label(span, text + (" (likely culprit)" if index == culprit else "")))
        made_in = next((b for b in graph.node(producer).blocks if b not in node.blocks), None)
        if made_in is not None and made_in.span != span:  # the call whose arguments made it
            d.labels.append(Label(made_in.span, f"`{producer}` is made by `{made_in.name}` = `{made_in.call}`"))
    makers = [next((b for b in graph.node(p).blocks if b not in node.blocks), None) for p in node.inputs]
    if len(makers) == 2 and None not in makers and makers[0].block == makers[1].block \
            and makers[0].call != makers[1].call:
        d.notes.append(f"both are made by block `{makers[0].block}`, called with different arguments: "
                       f"`{makers[0].call}` and `{makers[1].call}`")
    if culprit is None:
        return
    t = inputs[culprit]
    setter = _setter(graph, node.inputs[culprit], axes)
    value = _shown(_aligned(t, axes, rank))
    if setter is not None and setter.layer is not None:
        d.labels.append(Label(setter.span, f"{_verb(roles, 'become', 'becomes')} {value} here, in `{setter.name}`"))
    d.notes.append(f"the likely culprit is `{node.inputs[culprit]}` ({t}), {why}")
    other = 1 - culprit if len(inputs) == 2 else None
    if node.kind == "add" and other is not None and node.inputs[other] in graph.ancestors([node.inputs[culprit]]):
        written = _text(sources, node.input_spans[other]) if other < len(node.input_spans) else None
        d.hint = _projection_hint(written or node.inputs[other], inputs[other], t) or d.hint


def _text(sources, span) -> str | None:
    """The source text of a one-line span, if the file is at hand."""
    line = sources.line(span.file, span.line) if span.end_line == span.line else None
    return line[span.column - 1:span.end_column - 1] if line else None


def _projection_hint(skip: str, given: TensorType, wanted: TensorType) -> str | None:
    """For a skip connection that carries its tensor unchanged into a branch that changed its
    channels or size (a ResNet block without its downsample): the projection that matches."""
    if given.rank != 4 or wanted.rank != 4 or given.layout != wanted.layout:
        return None
    strides = {s // w for s, w in zip(given.spatial, wanted.spatial) if w and s % w == 0 and s // w >= 1}
    if len(strides) != 1 or any(s % w for s, w in zip(given.spatial, wanted.spatial)):
        return None
    stride = strides.pop()
    call = f"conv({wanted.channels}, 1" + (f", stride={stride}" if stride != 1 else "") + ")"
    return (f"the skip carries `{skip}` unchanged; when the branch changes its shape, project it to "
            f"match: `{skip} -> {call} -> batchnorm` (ResNet's downsample)")


def _common_operand(graph: Graph, merges: list[Failure], diagnostics: Diagnostics) -> None:
    """One tensor that several failed merges share, and that differs in each from operands
    that all agree (a stem of 32 channels added to branches of 64): one mistake, reported
    once, where that tensor's sizes were set, with every merge as a label."""
    reported = {id(d) for d in diagnostics.items}
    uses: dict[str, list[tuple[Failure, int]]] = {}
    for failure in merges:
        for index, producer in enumerate(failure.node.inputs):
            uses.setdefault(producer, []).append((failure, index))
    for producer, found in uses.items():
        if len(found) < 2:
            continue
        axes = found[0][0].error.axes
        own = {_sizes(f.inputs[i], axes) for f, i in found if f.inputs[i].rank > max(axes)}
        others = {_sizes(t, axes) for f, i in found for j, t in enumerate(f.inputs)
                  if j != i and t.rank > max(axes)}
        if any(t.layout.is_unlaid for f, _ in found for t in f.inputs):
            continue  # a param's sizes align on the last axes: each merge says so itself
        if (any(f.error.axes != axes for f, _ in found) or len(own) != 1 or len(others) != 1
                or own == others or any(id(f.diagnostic) not in reported for f, _ in found)):
            continue
        t = found[0][0].inputs[found[0][1]]
        roles, value, wanted = _roles(t, axes), _shown(own.pop()), _shown(others.pop())
        spans = [f.node.input_spans[i] for f, i in found if i < len(f.node.input_spans)]
        written = {_text(diagnostics.sources, span) for span in spans}
        shown = written.pop() if len(written) == 1 and None not in written else producer

        def sized(sizes: str) -> str:
            return f"{sizes} channels" if roles == "channels" else f"{roles} {sizes}"
        setter = _setter(graph, producer, axes)
        where = setter if setter is not None and setter.layer is not None else graph.node(producer)
        lines = ", ".join(str(f.node.span.line) for f, _ in found)
        labels = [Label(f.node.input_spans[i] if i < len(f.node.input_spans) else f.node.span,
                        f"`{f.node.name}` adds it to {_shown(_sizes(f.inputs[1 - i], axes)) if len(f.inputs) == 2 else wanted}")
                  for f, i in found]
        first = found[0][0].diagnostic
        merged = Diagnostic(
            f"`{shown}` has {sized(value)}, where the {len(found)} merges it feeds (lines {lines}) "
            f"need {wanted}", where.span, layer=where.name,
            rule=first.rule, label=f"{_verb(roles, 'become', 'becomes')} {value} here", labels=labels,
            notes=[f"every other operand of those merges has {sized(wanted)}: `{shown}` "
                   f"(`{producer}`) is the one that differs"], chain=first.chain)
        folded = {id(f.diagnostic) for f, _ in found}
        position = next(i for i, d in enumerate(diagnostics.items) if d is first)
        diagnostics.items[position] = merged
        diagnostics.items = [d for d in diagnostics.items if id(d) not in folded or d is merged]
        for f, _ in found:
            f.diagnostic = merged
        reported = {id(d) for d in diagnostics.items}


def _culprit(graph: Graph, node: LayerNode, inputs: list[TensorType], axes: tuple[int, ...]
             ) -> tuple[int | None, str]:
    """Which operand is most likely wrong, and why: the only one that differs from the others
    (of three or more); of two, the one computed from the other (a skip connection is the
    reference its branch must match), else the shorter branch (a downsample beside a block's
    main path)."""
    rank = max(t.rank for t in inputs)
    sizes = [_aligned(t, axes, rank) for t in inputs]
    owned = [i for i, t in enumerate(inputs) if t.layout.is_unlaid]
    if len(owned) == 1 and None not in sizes:
        return owned[0], "a tensor of the network's own, whose sizes are written where it is made"
    if len(inputs) > 2:
        for i, own in enumerate(sizes):
            others = {s for j, s in enumerate(sizes) if j != i}
            if len(others) == 1 and own not in others:
                return i, "the only operand that differs from the others"
        return None, ""
    if len(inputs) != 2 or None in sizes:
        return None, ""
    a, b = node.inputs
    if a == b:
        return None, ""
    import networkx  # only where a merge failed: `check` of a sound spec never imports it

    dag = graph.nx
    fork = networkx.lowest_common_ancestor(dag, a, b)
    if fork == a:
        return 1, f"which is computed from `{a}` and must match it"
    if fork == b:
        return 0, f"which is computed from `{b}` and must match it"
    if fork is None:  # two inputs of their own: nothing to compare
        return None, ""
    length_a = networkx.shortest_path_length(dag, fork, a)
    length_b = networkx.shortest_path_length(dag, fork, b)
    if length_a != length_b:
        return (0 if length_a < length_b else 1), "the shorter of the two branches"
    return None, ""


def _setter(graph: Graph, name: str, axes: tuple[int, ...]) -> LayerNode | None:
    """The layer where a tensor's sizes on `axes` got their values: walking up the first inputs,
    the first layer whose input had other sizes there. Channels alone are also set by a layer
    that chooses them (a conv's out_channels), even where they equal its input's."""
    node = graph.node(name)
    if not node.inputs:  # a graph input, or a param or a buffer: its sizes are written there
        return node
    channels_only = (node.output is not None and node.output.layout.has_channels
                     and axes == (node.output.layout.channel,))
    while node.layer is not None and node.inputs:
        above = graph.node(node.inputs[0])
        if (above.output is None or above.output.layout != node.output.layout
                or _sizes(above.output, axes) != _sizes(node.output, axes)):
            return node
        if channels_only and any(hasattr(node.layer, a) for a in ("out_channels", "out_features")):
            return node
        node = above
    return node


# ---------------------------------------------------------------- inputs

class _Suspicion:
    __slots__ = ("message", "hint", "warn", "fixed")

    def __init__(self, message: str, hint: str, warn: bool, fixed: TensorType) -> None:
        self.message, self.hint = message, hint
        self.warn = warn    # likely enough to warn about when nothing fails
        self.fixed = fixed  # the declaration the hint suggests, to try in its place


def _layout_suspicion(name: str, t: TensorType) -> _Suspicion | None:
    """A declared shape that reads better in the other layout, or an image with no batch."""
    shape, axes = t.shape, t.layout.axes
    if t.rank == 4 and all(isinstance(d, int) for i, d in enumerate(shape) if i != t.layout.batch):
        channels = t.channels
        if axes in ("NCHW", "NHWC"):
            last = axes == "NCHW"  # under NCHW, channels that look like they are last
            small = shape[3] if last else shape[1]
            if small in (1, 3, 4) and channels > 4 and shape[2] > 4:
                other = "NHWC" if last else "NCHW"
                where, word = ("width", "channels-last") if last else ("height", "channels-first")
                if last:
                    hint = (f"declare the layout: `input {name}: {t.dtype}{_dims(shape)} NHWC`, or write the "
                            f"shape channels first: `{t.dtype}{_dims((shape[0], shape[3], shape[1], shape[2]))}`")
                else:
                    hint = (f"drop `NHWC` (NCHW is the default for 4-D inputs), or write the shape "
                            f"channels last: `{t.dtype}{_dims((shape[0], shape[2], shape[3], shape[1]))}`")
                return _Suspicion(
                    f"`{name}` is declared {axes} with {channels} channels and {where} {small}: it looks "
                    f"like a {word} image ({small} channels)", hint,
                    warn=channels >= 16 and shape[2] >= 16, fixed=TensorType(t.dtype, shape, Layout(other)))
    if (t.rank == 3 and axes == "NCL" and all(isinstance(d, int) for d in shape)
            and shape[2] in (1, 3, 4) and shape[0] >= 8 and shape[1] >= 8):
        h, w, c = shape
        return _Suspicion(
            f"`{name}` {_dims(shape)} has no batch axis and its channels last: it reads as {h} "
            f"samples of {w} channels and length {c}, not one {c}-channel image",
            f"add the batch axis and say the layout: `input {name}: {t.dtype}{_dims(('N', *shape))} NHWC`",
            warn=h == w, fixed=TensorType(t.dtype, ("N", *shape), Layout("NHWC")))
    if t.rank == 3 and axes == "NCL" and isinstance(shape[0], int) and shape[0] in (1, 3, 4):
        _, c, length = shape
        return _Suspicion(
            f"`{name}` {_dims(shape)} has no batch axis: it reads as {shape[0]} samples of {c} "
            f"channels and length {length}, not one image",
            f"add the batch axis: `input {name}: {t.dtype}{_dims(('N', *shape))}`",
            warn=isinstance(c, int) and c == length and c >= 8,
            fixed=TensorType(t.dtype, ("N", *shape), Layout("NCHW")))
    return None


def _dims(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _check_input(graph: Graph, node: LayerNode, failures: list[Failure], diagnostics: Diagnostics,
                 downstream_of: dict[str, set[str]]) -> None:
    t = node.declared
    if t is None:
        return
    reported = {id(d) for d in diagnostics.items}
    below = downstream_of[node.name]
    downstream = [f for f in failures if id(f.diagnostic) in reported and f.node.name in below]
    suspicion = _layout_suspicion(node.name, t)
    if suspicion is None and downstream:
        suspicion = _stride_suspicion(graph, node, downstream)
    if suspicion is None:
        return
    if downstream:  # the failures the suggested declaration would not have
        types, _ = propagate(graph, {node.name: suspicion.fixed})
        downstream = [f for f in downstream if types.get(f.node.name) is not None]
    span = node.span
    if not downstream:
        if suspicion.warn:
            diagnostics.warning(suspicion.message, span, rule="inputs are declared in their layout",
                                hint=suspicion.hint)
        return
    first = downstream[0]
    labels = [Label(f.diagnostic.span, f"so `{f.node.name}` fails here: {f.diagnostic.message}")
              for f in downstream[:3] if f.diagnostic.span is not None]
    notes = [f"{len(downstream) - 3} more layers fail because of it"] if len(downstream) > 3 else []
    position = next(i for i, d in enumerate(diagnostics.items) if d is first.diagnostic)
    diagnostics.items[position] = Diagnostic(
        suspicion.message, span, rule="inputs are declared in their layout, with the sizes the "
                                      "network needs", hint=suspicion.hint, labels=labels, notes=notes,
        layer=node.name)
    folded = {id(f.diagnostic) for f in downstream[1:]}
    diagnostics.items = [d for d in diagnostics.items if id(d) not in folded]


def _downstream(graph: Graph) -> dict[str, set[str]]:
    """For each graph input, the nodes computed from it (one pass in topological order)."""
    below: dict[str, set[str]] = {name: {name} for name in graph.inputs}
    for layer in graph:
        if layer.layer is not None:
            for name, nodes in below.items():
                if any(i in nodes for i in layer.inputs):
                    nodes.add(layer.name)
    return below


def _stride_suspicion(graph: Graph, node: LayerNode, downstream: list[Failure]) -> _Suspicion | None:
    """A merge fails on spatial axes, and would not if this input's spatial sizes were a
    multiple of some stride: the input is at fault (a U-Net given 250 instead of 256)."""
    t = node.declared
    merges = [f for f in downstream if len(f.inputs) > 1 and f.error.axes
              and all(a in t.layout.spatial for a in f.error.axes)]
    if not merges or not t.layout.spatial:
        return None
    sizes = t.spatial
    if not all(isinstance(s, int) for s in sizes):
        return None
    def merges_pass(spatial: tuple[int, ...]) -> bool:
        types, after = propagate(graph, {node.name: t.with_axes(spatial=spatial)})
        return all(types.get(f.node.name) is not None for f in merges) and len(after) < len(downstream)

    for stride in STRIDES:
        rounded = tuple(-(-s // stride) * stride for s in sizes)
        if rounded == sizes:
            continue
        # the stride the network needs: every multiple of it works, not only the nearest one
        # (256 is a multiple of 8 and of 16; 248 and 264 tell them apart)
        if all(merges_pass(tuple(r + k * stride for r in rounded)) for k in range(3)):
            bad = [f"{t.layout.role(i)} {s}" for i, s in zip(t.layout.spatial, sizes) if s % stride]
            shown = " and ".join(bad)
            return _Suspicion(
                f"`{node.name}`: {shown} {'is not a multiple' if len(bad) == 1 else 'are not multiples'} "
                f"of {stride}, the network's total stride, which the merge `{merges[0].node.name}` needs",
                f"use a size that is a multiple of {stride}, e.g. {_dims(t.with_axes(spatial=rounded).shape)}",
                warn=False, fixed=t.with_axes(spatial=rounded))
    return None
