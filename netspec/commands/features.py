"""`netspec features SPEC --layer NAME -o FILE.png`: the chosen layers' feature maps as tiles."""

from __future__ import annotations

import argparse
from pathlib import Path

from netspec.commands.options import (EXIT_OK, UsageError, add_data_input, add_lowering_options,
                                      add_spec_options, describe_array, lowering_options, model_weights,
                                      network)
from netspec.commands.run import check_data_input
from netspec.files import output_path


def register(commands) -> None:
    from netspec.features import COLORMAPS

    parser = commands.add_parser(
        "features", help="draw the feature maps of chosen layers (or save them as .npz)",
        description="Run SPEC in onnxruntime with the chosen layers' values as extra outputs and "
                    "draw one tile per channel (a feature map is one filter's response) with a "
                    "colour map, each tile scaled to its own range, which is printed under it. "
                    "A conv layer shows its raw output, before the activation; the activation "
                    "after it shows the rectified map. -o FILE.npz saves the raw (N, C, H, W) "
                    "arrays instead.")
    parser.add_argument("spec", metavar="SPEC", help="the .net file, or an .onnx model (imported with its weights)")
    add_data_input(parser)
    parser.add_argument("--layer", action="append", dest="layers", required=True, metavar="NAME",
                        help="a layer whose output to show, e.g. features.0 (repeatable)")
    parser.add_argument("--max-channels", type=int, default=64, metavar="N",
                        help="draw at most the first N channels of each layer (default 64)")
    parser.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE",
                        help="FILE.png: the tiles; FILE.npz: the raw arrays, keyed by layer name")
    parser.add_argument("--colormap", choices=sorted(COLORMAPS), default="viridis",
                        help="colour map of the tiles (default viridis)")
    parser.add_argument("--normalize", choices=["imagenet", "none"], default="none",
                        help="for an image: subtract ImageNet's mean and divide by its deviation")
    add_spec_options(parser, data_input=True)
    add_lowering_options(parser, "features")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="execution provider")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from netspec import runtime
    from netspec.features import describe_layer, feature_maps, render_tiles, save_arrays

    if args.max_channels < 1:
        raise UsageError("--max-channels must be at least 1")
    output = Path(args.output)
    kind = output.suffix.lower()
    if kind not in (".png", ".npz"):
        raise UsageError(f"-o {args.output}: write a .png (the tiles) or a .npz (the raw arrays)")
    check_data_input(args)
    options = lowering_options(args)
    net = network(args)
    options = model_weights(args, options)  # an .onnx SPEC keeps its own weights
    graph = net.graph
    unknown = [name for name in args.layers if name not in graph]
    if unknown:  # a name on the command line that the network lacks: usage, as an unknown --set
        from netspec.diagnostics import did_you_mean

        spatial = [node.name for node in graph if node.output is not None and node.output.rank == 4]
        close = did_you_mean(unknown[0], [node.name for node in graph])
        shown = ", ".join(spatial[:12]) + (f", ... ({len(spatial) - 12} more)" if len(spatial) > 12 else "")
        raise UsageError(f"--layer {unknown[0]}: the network has no layer of that name"
                         + (f"; {close}" if close else "")
                         + (f" (layers with spatial outputs: {shown})" if spatial else ""))
    if args.input_file:
        inputs = runtime.read_inputs(Path(args.input_file), net.input_specs(options["batch"]), args.normalize)
    else:
        inputs = None
    maps = feature_maps(net, args.layers, inputs, device=args.device, **options)
    for name, value in maps.items():
        print(f"{name}: {describe_array(value, '(N, C, H, W)')}")
    if kind == ".npz":
        save_arrays(maps, output)
        print(f"wrote {output} ({len(maps)} array{'s' if len(maps) != 1 else ''}, (N, C, H, W))")
        return EXIT_OK
    notes = {name: describe_layer(graph, name) for name in maps}
    source = Path(args.input_file).name if args.input_file else f"random input (seed {args.seed})"
    weights = (Path(args.weights).name if args.weights else
               f"the weights of {Path(args.spec).name}" if getattr(args, "imported_weights", None) is not None
               else f"seeded weights (seed {args.seed})")
    boxes = render_tiles(maps, output, args.max_channels, args.colormap, notes,
                         title=f"{net.name}: {source}, {weights}")
    with_size = ""
    try:
        from PIL import Image

        with Image.open(output) as image:
            with_size = f", {image.width}x{image.height} px"
    except OSError:
        pass
    print(f"wrote {output} ({len(maps)} layer{'s' if len(maps) != 1 else ''}, {len(boxes)} "
          f"tile{'s' if len(boxes) != 1 else ''}{with_size})")
    return EXIT_OK
