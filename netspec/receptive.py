"""Receptive fields: for every layer, how many input pixels one output unit sees (size), how far
apart neighbouring units' centres are in input pixels (jump, the effective stride) and where the
first unit's centre sits (start, in input pixel coordinates: the first pixel's centre is 0).

Each layer declares its geometry (netspec.layers.base.Layer.geometry); along each spatial axis

    window (k, s, p):      size += (k-1)*jump;  start += ((k-1)/2 - p)*jump;  jump *= s
    transposed (k, s, p):  size += (ceil(k/s)-1)*jump;  start += (p - (k-1)/2)/s*jump;  jump /= s
    upsample (taps, f):    size += (taps-1)*jump;  jump /= f
    global:                size += (n-1)*jump over the whole input n;  start += (n-1)/2*jump

At a merge (`+`, `*`, concat) the field is the largest of the merged paths, with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from netspec.graph import Graph


@dataclass(frozen=True)
class Field:
    size: tuple[float, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]
    note: str | None = None

    def to_json(self) -> dict:
        out = {"size": list(map(_number, self.size)), "jump": list(map(_number, self.jump)),
               "start": list(map(_number, self.start))}
        if self.note:
            out["note"] = self.note
        return out


def _number(x: float):
    return int(x) if float(x).is_integer() else round(x, 4)


def show(values: tuple[float, ...]) -> str:
    """`196` when every axis agrees, else `196x180`."""
    shown = [str(_number(v)) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def _step(field: Field, geometry, sizes: tuple[int, ...]) -> Field:
    if geometry is None:
        return Field(field.size, field.jump, field.start)
    if geometry == "global":
        return Field(tuple(r + (n - 1) * j for r, j, n in zip(field.size, field.jump, sizes)),
                     tuple(j * n for j, n in zip(field.jump, sizes)),
                     tuple(s + (n - 1) / 2 * j for s, j, n in zip(field.start, field.jump, sizes)))
    size, jump, start = [], [], []
    for (kind, k, s, p), r, j, c in zip(geometry, field.size, field.jump, field.start):
        if kind == "window":
            size.append(r + (k - 1) * j)
            start.append(c + ((k - 1) / 2 - p) * j)
            jump.append(j * s)
        elif kind == "transposed":
            size.append(r + (math.ceil(k / s) - 1) * j)
            start.append(c + (p - (k - 1) / 2) / s * j)
            jump.append(j / s)
        else:  # upsample: k taps (1 nearest, 2 bilinear), s the scale factor
            size.append(r + (k - 1) * j)
            start.append(c)
            jump.append(j / s)
    return Field(tuple(size), tuple(jump), tuple(start))


def receptive_fields(graph: Graph) -> dict[str, Field]:
    """The field of every node whose output descends from a spatial input."""
    fields: dict[str, Field] = {}
    for node in graph:
        if node.output is None:
            continue
        if node.layer is None:
            spatial = len(node.output.spatial)
            if spatial:
                fields[node.name] = Field((1,) * spatial, (1,) * spatial, (0,) * spatial)
            continue
        known = [(name, fields[name]) for name in node.inputs if name in fields]
        if not known:
            continue
        (widest_name, widest), note = known[0], None
        if len(known) > 1:
            widest_name, widest = max(known, key=lambda item: math.prod(item[1].size))
            sizes = {show(f.size) for _, f in known}
            if len(sizes) > 1:
                note = (f"merge of paths seeing {', '.join(sorted(sizes))}: the largest "
                        f"(from {widest_name}) is shown")
        inputs = [graph.node(name).output for name in node.inputs]
        source = graph.node(widest_name).output
        geometry = node.layer.geometry(inputs)
        stepped = _step(widest, geometry, source.spatial if source.layout.spatial else ())
        fields[node.name] = Field(stepped.size, stepped.jump, stepped.start, note)
    return fields
