"""`netspec features`: look at what a network's layers compute.

The chosen layers' values are added to the ONNX model as extra graph outputs (they exist as
values named after the layers, in their declared layouts), the model runs in onnxruntime, each
is turned to (N, C, H, W) order (an NHWC network's maps too), and each feature map (one channel: one filter's response) becomes a tile of a PNG, coloured
with a colour map and labelled with its channel and value range; or the raw arrays go to a
`.npz`.

Choosing a conv layer shows its raw output, before any activation; choosing the activation after
it shows the rectified map: both readings of "feature map" are one `--layer` apart.

Nothing heavy is imported at module level (numpy, onnx, onnxruntime, PIL load in the functions
that use them), so registering the subcommand costs `netspec check` nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from netspec.diagnostics import Diagnostic, NetspecError, did_you_mean
from netspec.files import write_with_handle

# Colour maps as anchor colours evenly spaced over [0, 1], interpolated linearly into a 256-entry
# lookup table. Viridis: 33 samples of matplotlib's table (CC0; Smith and van der Walt), within
# 2/255 of the original everywhere.
COLORMAPS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "viridis": (
        (68, 1, 84), (71, 13, 96), (72, 24, 106), (72, 35, 116), (71, 45, 123), (69, 55, 129),
        (66, 64, 134), (62, 73, 137), (59, 82, 139), (55, 91, 141), (51, 99, 141), (47, 107, 142),
        (44, 114, 142), (41, 122, 142), (38, 130, 142), (35, 137, 142), (33, 145, 140),
        (31, 151, 139), (31, 159, 136), (33, 166, 133), (39, 173, 129), (49, 181, 123),
        (61, 188, 116), (76, 194, 108), (92, 200, 99), (110, 206, 88), (129, 211, 77),
        (149, 216, 64), (170, 220, 50), (192, 223, 37), (213, 226, 26), (234, 229, 26),
        (253, 231, 37),
    ),
    "gray": ((0, 0, 0), (255, 255, 255)),
}

MIN_TILE = 48      # small maps are scaled up (nearest neighbour, whole factors) to at least this
MAX_TILE = 256     # large maps are subsampled (every k-th pixel) to at most this
MAX_WIDTH = 1400   # a layer's grid gets no more columns than fit in this many pixels
MARGIN, GAP = 12, 8
BACKGROUND, INK, FAINT, RULE = (255, 255, 255), (20, 20, 20), (100, 100, 100), (200, 200, 200)


def _error(message: str, **details: Any) -> NetspecError:
    return NetspecError([Diagnostic(message, **details)])


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---------------------------------------------------------------- computing the maps

def _resolve_layers(graph, layers: list[str]) -> list[str]:
    """The requested layer names, checked: each exists and has a spatial (rank-4) output. Every
    problem is reported at once."""
    names = [node.name for node in graph]
    spatial = [node.name for node in graph if node.output is not None and node.output.rank == 4]
    problems = []
    chosen: list[str] = []
    for name in layers:
        if name in chosen:
            continue
        if name not in graph:
            shown = ", ".join(spatial[:24]) + (f", ... ({len(spatial) - 24} more)" if len(spatial) > 24 else "")
            notes = [f"layers with spatial outputs: {shown}" if spatial else
                     "the network has no layer with a spatial (N, C, H, W) output"]
            problems.append(Diagnostic(f"unknown layer `{name}`", rule="--layer names a layer of the network",
                                       hint=did_you_mean(name, names), notes=notes))
            continue
        node = graph.node(name)
        t = node.output
        if t.rank != 4:
            before = _spatial_ancestor(graph, name)
            hint = (f"the last spatial layer before it is `{before}`" if before else None)
            problems.append(Diagnostic(
                f"layer `{name}` ({node.kind}) has output shape {t} ({t.layout}): not a spatial map",
                node.span, layer=name, rule="a feature map has 4 axes: batch, channels, height, width",
                hint=hint))
            continue
        chosen.append(name)
    if problems:
        raise NetspecError(problems)
    if not chosen:
        raise _error("choose at least one layer", hint="--layer NAME, e.g. the first conv layer")
    return chosen


def _spatial_ancestor(graph, name: str) -> str | None:
    """The nearest layer upstream of `name` (first inputs first) whose output is spatial."""
    seen, queue = set(), list(graph.node(name).inputs)
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        node = graph.node(current)
        if node.output is not None and node.output.rank == 4:
            return current
        queue.extend(node.inputs)
    return None


def feature_maps(net, layers: list[str], inputs: Mapping[str, Any] | Any | None = None,
                 weights: str | Path | Mapping | None = None, seed: int = 0, device: str = "cpu",
                 opset: int | None = None, batch: int | None = None,
                 weights_prefix: Mapping[str, str] | None = None) -> dict:
    """Run `net` (a netspec.api.Network) in onnxruntime and return {layer: array} for the chosen
    layers, each in (N, C, H, W) order whatever the declared layout.

    `inputs` maps input names to arrays in their declared layouts (or is one array for a
    single-input network, or None for seeded random values); `weights` is a file, a mapping of
    arrays by parameter name, or None for the seeded initialisation. Unknown layers (with a
    "did you mean") and layers whose output is not spatial raise NetspecError."""
    import numpy as np
    from onnx import helper

    from netspec import runtime
    from netspec.lower import ONNX_DTYPES, onnx_dims

    graph = net.check().graph
    chosen = _resolve_layers(graph, list(layers))
    feeds = net.feeds(inputs, seed, batch)
    model = net.to_onnx(opset=opset, batch=batch, weights=weights, seed=seed, weights_prefix=weights_prefix)

    # the value each layer's final node produces, in its declared layout (a graph input has no
    # node at all)
    produced = {node.name: node.output[0] for node in model.graph.node}
    existing = {o.name for o in model.graph.output}
    values: dict[str, str] = {}
    direct: dict[str, Any] = {}
    for name in chosen:
        t = graph.node(name).output
        if name in produced:
            values[name] = produced[name]
        elif name in graph.inputs:  # the input itself
            direct[name] = feeds[name]
            continue
        else:
            raise _error(f"layer `{name}` has no value in the ONNX model", layer=name)
        if values[name] not in existing:
            dims = onnx_dims(t, batch)
            model.graph.output.append(helper.make_tensor_value_info(values[name], ONNX_DTYPES[t.dtype], dims))
            existing.add(values[name])

    results: dict[str, Any] = {}
    if values:
        wanted = list(dict.fromkeys(values.values()))
        try:
            arrays = runtime.run(runtime.session(model, device), feeds, wanted)
        except runtime.OnnxRuntimeError as exc:  # one line, at the layer whose node it names
            raise net.locate(exc) from None
        by_value = dict(zip(wanted, arrays))
        results = {name: by_value[value] for name, value in values.items()}
    # channels first, as the maps are drawn: (N, C, H, W) whatever the declared layout
    return {name: np.ascontiguousarray(np.transpose(results[name] if name in results else direct[name],
                                                    graph.node(name).output.layout.channels_first))
            for name in chosen}


# ---------------------------------------------------------------- rendering

def colormap_lut(name: str = "viridis"):
    """A (256, 3) uint8 lookup table interpolated from the colour map's anchors."""
    import numpy as np

    if name not in COLORMAPS:
        raise _error(f"unknown colour map `{name}`", hint=did_you_mean(name, COLORMAPS) or
                     f"choose one of {', '.join(COLORMAPS)}")
    anchors = np.asarray(COLORMAPS[name], dtype=np.float64)
    where = np.linspace(0.0, 1.0, len(anchors))
    x = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(x, where, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def colorize(values, lut):
    """Min-max normalise a 2-D map and colour it: (H, W) -> (H, W, 3) uint8, and its (min, max)
    over the finite values. A constant map takes the colour map's low end; non-finite values
    (inf, nan) are shown at the low end too."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.broadcast_to(lut[0], values.shape + (3,)).copy(), (math.nan, math.nan)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    span = hi - lo
    norm = np.where(finite, (values - lo) / span if span > 0 else 0.0, 0.0)
    index = np.clip(np.rint(norm * 255), 0, 255).astype(np.intp)
    return lut[index], (lo, hi)


def format_value(v: float) -> str:
    """Two significant digits, short: 0.98, -0.12, 0.50, 2.0, 12, 340, 0.0076, 1.2e+04, 3.1e-05."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    magnitude = math.floor(math.log10(abs(v)))
    if -3 <= magnitude <= 3:
        text = f"{v:.{max(0, 1 - magnitude)}f}"
        return "0" if float(text) == 0 else text
    return f"{v:.1e}"


def tile_label(channel: int, lo: float, hi: float) -> str:
    """The caption under a tile: its channel and value range, `3: -0.12..0.98`."""
    return f"{channel}: {format_value(lo)}..{format_value(hi)}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _fonts():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=16), ImageFont.load_default(size=12)
    except TypeError:  # Pillow before 10.1: the bitmap font, one size
        font = ImageFont.load_default()
        return font, font


def _text_width(draw, text: str, font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(math.ceil(right - left))


def _text_height(draw, font) -> int:
    _, top, _, bottom = draw.textbbox((0, 0), "Ag0..9[]", font=font)
    return int(math.ceil(bottom)) + 2


def _scale(h: int, w: int) -> tuple[int, int]:
    """(upscale, subsample): whole factors that bring a map between MIN_TILE and MAX_TILE."""
    longest = max(h, w)
    if longest > MAX_TILE:
        return 1, math.ceil(longest / MAX_TILE)
    return max(1, math.ceil(MIN_TILE / longest)), 1


def _tile_image(channel_map, lut):
    """One tile: the coloured map, scaled up by repetition or subsampled, and its range."""
    import numpy as np

    up, down = _scale(*channel_map.shape)
    rgb, bounds = colorize(channel_map[::down, ::down], lut)
    if up > 1:
        rgb = np.repeat(np.repeat(rgb, up, axis=0), up, axis=1)
    return rgb, bounds, up, down


def render_tiles(maps: Mapping[str, Any], path: str | Path, max_channels: int = 64,
                 colormap: str = "viridis", notes: Mapping[str, str] | None = None,
                 title: str | None = None) -> dict:
    """Draw the feature maps to a PNG, written atomically: one grid per layer, one tile per
    channel of the first sample (at most `max_channels`), each tile min-max normalised with its
    own range printed under it (`3: -0.12..0.98`), a header per layer with its name and shape
    (and `notes[layer]`, e.g. what the layer is). Maps are (N, C, H, W) arrays.

    Returns {(layer, channel): (left, top, right, bottom)}: where each tile's pixels lie."""
    import numpy as np
    from PIL import Image, ImageDraw

    if max_channels < 1:
        raise _error("max_channels must be at least 1")
    if not maps:
        raise _error("no feature maps to draw")
    lut = colormap_lut(colormap)
    notes = dict(notes or {})
    big, small = _fonts()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    big_h, small_h = _text_height(measure, big), _text_height(measure, small)

    # lay every section out first, to know the canvas size
    sections, width = [], 2 * MARGIN
    for layer, array in maps.items():
        array = np.asarray(array)
        if array.ndim != 4:
            raise _error(f"feature map `{layer}` has shape {list(array.shape)}: expected (N, C, H, W)")
        n, channels, h, w = array.shape
        if n == 0 or channels == 0 or h == 0 or w == 0:
            raise _error(f"feature map `{layer}` is empty: shape {list(array.shape)}")
        shown = min(channels, max_channels)
        tiles = []
        for c in range(shown):
            rgb, (lo, hi), up, down = _tile_image(array[0, c], lut)
            label = tile_label(c, lo, hi)
            tiles.append((c, rgb, label))
        tile_w = max(rgb.shape[1] for _, rgb, _ in tiles)
        tile_h = max(rgb.shape[0] for _, rgb, _ in tiles)
        cell_w = max(tile_w + 2, max(_text_width(measure, label, small) for *_, label in tiles)) + GAP
        cell_h = tile_h + 2 + 3 + small_h + GAP
        columns = max(1, min(shown, math.ceil(math.sqrt(shown)), (MAX_WIDTH - 2 * MARGIN) // cell_w))
        rows = math.ceil(shown / columns)
        scale = (f", drawn {up}x{up} per value" if up > 1 else
                 f", every {_ordinal(down)} value drawn" if down > 1 else "")
        lines = [f"{_shape_text(array.shape)} (N, C, H, W), sample 0, channels "
                 f"{'0' if shown == 1 else f'0-{shown - 1}'} of {channels}{scale}"]
        if layer in notes:
            lines.insert(0, notes[layer])
        header_w = max([_text_width(measure, layer, big)] + [_text_width(measure, t, small) for t in lines])
        width = max(width, 2 * MARGIN + max(columns * cell_w, header_w))
        sections.append((layer, lines, tiles, tile_w, tile_h, cell_w, cell_h, columns, rows))

    legend = f"colour map {colormap}: each tile from its own minimum"
    legend_w = _text_width(measure, legend, small) + 6 + 120 + 6 + _text_width(measure, "to maximum", small)
    title_h = (big_h + 4 if title else 0) + small_h + 10
    width = max(width, 2 * MARGIN + legend_w, 2 * MARGIN + (_text_width(measure, title, big) if title else 0))
    height = MARGIN + title_h
    for _, lines, *_rest, cell_h, _c, rows in sections:
        height += 10 + big_h + len(lines) * small_h + 6 + rows * cell_h
    height += MARGIN

    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    if title:
        draw.text((MARGIN, y), title, fill=INK, font=big)
        y += big_h + 4
    draw.text((MARGIN, y), legend, fill=FAINT, font=small)
    x = MARGIN + _text_width(measure, legend, small) + 6
    bar = np.broadcast_to(lut[np.linspace(0, 255, 120).round().astype(np.intp)][None], (small_h - 4, 120, 3))
    image.paste(Image.fromarray(np.ascontiguousarray(bar)), (x, y + 2))
    draw.text((x + 126, y), "to maximum", fill=FAINT, font=small)
    y += title_h - (big_h + 4 if title else 0)

    boxes: dict = {}
    for layer, lines, tiles, tile_w, tile_h, cell_w, cell_h, columns, rows in sections:
        draw.line([(MARGIN, y), (width - MARGIN, y)], fill=RULE)
        y += 10
        draw.text((MARGIN, y), layer, fill=INK, font=big)
        y += big_h
        for line in lines:
            draw.text((MARGIN, y), line, fill=FAINT, font=small)
            y += small_h
        y += 6
        for i, (c, rgb, label) in enumerate(tiles):
            row, column = divmod(i, columns)
            cell_x, cell_y = MARGIN + column * cell_w, y + row * cell_h
            th, tw = rgb.shape[:2]
            left = cell_x + (cell_w - GAP - tw) // 2
            top = cell_y + 1 + (tile_h - th) // 2
            draw.rectangle([left - 1, top - 1, left + tw, top + th], outline=RULE)
            image.paste(Image.fromarray(np.ascontiguousarray(rgb)), (left, top))
            boxes[(layer, c)] = (left, top, left + tw, top + th)
            label_x = cell_x + (cell_w - GAP - _text_width(measure, label, small)) // 2
            draw.text((label_x, cell_y + tile_h + 2 + 3), label, fill=INK, font=small)
        y += rows * cell_h
    write_with_handle(Path(path), lambda handle: image.save(handle, format="PNG", optimize=True))
    return boxes


def save_arrays(maps: Mapping[str, Any], path: str | Path) -> None:
    """The raw maps, (N, C, H, W) arrays keyed by layer name, to a .npz, atomically."""
    import numpy as np

    arrays = {name: np.asarray(value) for name, value in maps.items()}
    write_with_handle(Path(path), lambda handle: np.savez(handle, **arrays))


def describe_layer(graph, name: str) -> str:
    """What a layer is, for its header: `conv 11x11 /4 pad 2 of image, before the activation
    features.1 (relu)`, `relu of features.0`."""
    node = graph.node(name)
    text = node.summary + (f" of {', '.join(node.inputs)}" if node.inputs else "")
    if node.layer is not None and node.layer.family in ("conv", "norm"):
        after = [n for n in graph if name in n.inputs and n.layer is not None and n.layer.family == "activation"]
        if after:
            text += f": raw, before the activation {after[0].name} ({after[0].kind})"
    return text
