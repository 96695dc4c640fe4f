"""`netspec torch SPEC -o model.py`: the spec written as a PyTorch module, readable Python that
imports only torch (netspec.torch_codegen), written atomically. (The module is `torch_`, as
`import_`, so that it never stands for the real torch.)"""

from __future__ import annotations

import argparse
from pathlib import Path

from netspec.commands.options import EXIT_OK, UsageError, add_spec_options, network
from netspec.files import output_path


def register(commands) -> None:
    command = commands.add_parser(
        "torch", help="write a spec as a PyTorch module (a .py file)",
        description="Write SPEC as a Python file defining a PyTorch nn.Module: a class per block kind "
                    "(its parameters as constructor arguments), the network's class (its network "
                    "parameters as arguments, with the spec's defaults) and `Model = <that class>`. "
                    "Submodules are named as the spec's parameters, so the module's state_dict keys "
                    "are netspec's (layer1.0.conv1.weight): `netspec export --weights` loads what "
                    "torch.save(model.state_dict()) writes (as .safetensors or .npz). Comments give "
                    "each layer's output shape and its file and line. The file imports only torch; "
                    "it is written atomically. Generating it does not import torch.",
        epilog="exit codes: 0 written, 1 errors in the spec, 2 bad command-line usage")
    command.add_argument("spec", metavar="SPEC", help="the .net file, or an .onnx model (imported)")
    add_spec_options(command)
    command.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE.py",
                         help="the Python file to write")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    suffix = output.suffix.lower()
    if suffix != ".py" and not output.is_dir():  # a folder: the writer says so
        raise UsageError(f"-o {args.output}: a PyTorch module is written to a file ending in .py (got "
                         f"{'`' + suffix + '`' if suffix else 'no suffix'}); write e.g. -o "
                         f"{output.with_suffix('.py').name}")
    net = network(args, lowering=False)
    from netspec.files import write_atomically
    from netspec.torch_codegen import generate

    source = generate(net.graph, str(args.spec))
    write_atomically(output, lambda staged: staged.write_text(source, encoding="utf-8"))
    classes = source.count("\nclass ")
    print(f"wrote {output} ({classes} class{'es' if classes != 1 else ''}, {source.count(chr(10))} lines; "
          f"{source.rsplit('Model = ', 1)[-1].strip()} is the network)")
    return EXIT_OK
