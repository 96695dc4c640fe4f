"""`netspec import MODEL.onnx -o NAME.net`: an ONNX model read back into a spec and its weights
(NAME.net and NAME.safetensors beside it), both written atomically."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from netspec.commands.onnx_spec import spec_name
from netspec.commands.options import EXIT_OK, UsageError, require_file
from netspec.files import output_path


def register(commands) -> None:
    command = commands.add_parser(
        "import", help="read an ONNX model back into a spec and its weights",
        description="Read MODEL.onnx back into netspec: NAME.net, whose layers are the patterns the "
                    "model's nodes make (Conv with its bias, Gemm or MatMul + Add as linear, "
                    "Clip(0, 6) as relu6, ...), and NAME.safetensors beside it, the model's weights "
                    "under the spec's parameter names; `netspec export NAME.net --weights "
                    "NAME.safetensors` re-creates the model. Layers with weights take the "
                    "initializers' names (layer1.0.conv1.weight makes \"layer1.0.conv1\":). A model "
                    "with operators netspec cannot express is an error that lists each of them "
                    "with its nodes (exit 1). Both files are written atomically; existing ones are "
                    "replaced only once both are written.",
        epilog="exit codes: 0 imported, 1 a model netspec cannot import, 2 bad command-line usage")
    command.add_argument("model", metavar="MODEL.onnx", help="the ONNX model to read")
    command.add_argument("-o", "--output", type=output_path, metavar="NAME.net",
                         help="the spec to write (default: MODEL's name with .net, in the current "
                              "folder); its weights go to NAME.safetensors beside it")
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    model_path = Path(args.model)
    require_file(args.model)
    output = Path(args.output) if args.output else Path(model_path.stem + ".net")
    if output.suffix.lower() != ".net" and not output.is_dir():
        suffix = output.suffix.lower()
        raise UsageError(f"-o {args.output}: a spec is written to a file ending in .net (got "
                         f"{'`' + suffix + '`' if suffix else 'no suffix'}); write e.g. "
                         f"-o {output.with_suffix('.net').name}")
    start = time.perf_counter()
    from netspec.importer import import_model, read_model

    model = read_model(model_path)
    imported = import_model(model, spec_name(output.stem))

    from netspec.files import write_atomically

    def produce(staged: Path) -> None:
        from safetensors.numpy import save

        # bytes written by netspec (not safetensors' own file), so the file gets the usual permissions
        staged.with_suffix(".safetensors").write_bytes(save(imported.weights))
        staged.write_text(imported.text, encoding="utf-8")

    files = write_atomically(output, produce)
    print(f"wrote {', '.join(map(str, files))} ({imported.layers} layers, {len(imported.weights)} "
          f"tensors) in {time.perf_counter() - start:.2f} s")
    return EXIT_OK
