"""`netspec features`: intermediate values exposed as ONNX outputs, drawn as tiles or saved raw.

The central test is a hand-made 1x1 convolution whose weights make every channel's values known
exactly (channel 0 = 2*R, channel 1 = G - B, ...) on an input whose channels are ramps, so the
returned arrays are checked for equality and the drawn tiles pixel by pixel against the colour
map's ends.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import netspec
from netspec.commands import features as features_cmd
from netspec.commands.options import UsageError, print_diagnostics
from netspec.diagnostics import NetspecError, Sources
from netspec.features import (COLORMAPS, colormap_lut, colorize,
                              feature_maps, format_value, render_tiles, save_arrays, tile_label)

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.net"
VIRIDIS_LOW, VIRIDIS_HIGH = (0x44, 0x01, 0x54), (0xFD, 0xE7, 0x25)   # #440154 .. #fde725

ONE_BY_ONE = """
    network onebyone
    input image: f32[N, 3, 8, 8]
    maps = image -> conv(4, 1) -> relu
    output maps
"""

# out = W @ (R, G, B) + b per pixel
WEIGHTS = {
    "maps.0.weight": np.array([[2, 0, 0],       # channel 0 = 2 R
                               [0, 1, -1],      # channel 1 = G - B
                               [-1, 0, 0],      # channel 2 = 0.5 - R
                               [0, 0, 0.5]],    # channel 3 = 0.5 B + 1 (constant: B is 1)
                              np.float32).reshape(4, 3, 1, 1),
    "maps.0.bias": np.array([0, 0, 0.5, 1], np.float32),
}


def write(tmp_path: Path, text: str, name: str = "t.net") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def ramps() -> np.ndarray:
    """(1, 3, 8, 8): R[h, w] = w, G[h, w] = h, B = 1."""
    h, w = np.mgrid[0:8, 0:8].astype(np.float32)
    return np.stack([w, h, np.ones_like(w)])[None]


def expected_conv(x: np.ndarray) -> np.ndarray:
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    return np.stack([2 * r, g - b, 0.5 - r, 0.5 * b + 1], axis=1).astype(np.float32)


def features_main(argv: list) -> int:
    """`netspec features ...` through a parser built with add_features_parser, with the exit
    codes of netspec's main: 2 for usage errors, 1 for NetspecError (diagnostics on stderr)."""
    parser = argparse.ArgumentParser(prog="netspec")
    features_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([str(a) for a in argv])
    try:
        return features_cmd.run(args)
    except UsageError as exc:
        print(f"netspec: error: {exc}", file=sys.stderr)
        return 2
    except NetspecError as exc:
        print_diagnostics(exc.diagnostics, getattr(args, "sources", None) or Sources())
        return 1
    except SystemExit as exc:  # spec errors, printed by network()
        return exc.code


def run(argv: list, capsys) -> tuple[int, str, str]:
    code = features_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def block_centres(box: tuple[int, int, int, int], h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of the centre of each value's block in a tile drawn at `box`."""
    left, top, right, bottom = box
    scale_y, scale_x = (bottom - top) // h, (right - left) // w
    ys = top + np.arange(h) * scale_y + scale_y // 2
    xs = left + np.arange(w) * scale_x + scale_x // 2
    return ys, xs


# ================================================================ the hand-made 1x1 convolution


def test_hand_made_1x1_conv_gives_known_channel_values(tmp_path):
    net = netspec.load(write(tmp_path, ONE_BY_ONE))
    x = ramps()
    maps = feature_maps(net, ["maps.0", "maps.1"], {"image": x}, weights=WEIGHTS)
    assert list(maps) == ["maps.0", "maps.1"]
    conv = expected_conv(x)
    assert maps["maps.0"].shape == (1, 4, 8, 8) and maps["maps.0"].dtype == np.float32
    np.testing.assert_array_equal(maps["maps.0"], conv)          # raw: before the activation
    np.testing.assert_array_equal(maps["maps.1"], np.maximum(conv, 0))  # rectified
    # the values spelled out, not only through expected_conv
    np.testing.assert_array_equal(maps["maps.0"][0, 0, 5], [0, 2, 4, 6, 8, 10, 12, 14])
    np.testing.assert_array_equal(maps["maps.0"][0, 1, :, 3], [-1, 0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(maps["maps.0"][0, 2, 0], [0.5, -0.5, -1.5, -2.5, -3.5, -4.5, -5.5, -6.5])
    assert (maps["maps.0"][0, 3] == 1.5).all()


def test_hand_made_1x1_conv_tiles_follow_the_colour_map(tmp_path):
    net = netspec.load(write(tmp_path, ONE_BY_ONE))
    maps = feature_maps(net, ["maps.0"], ramps(), weights=WEIGHTS)
    png = tmp_path / "maps.png"
    boxes = render_tiles(maps, png)
    assert sorted(boxes) == [("maps.0", c) for c in range(4)]
    with Image.open(png) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    lut = colormap_lut("viridis")
    assert tuple(lut[0]) == VIRIDIS_LOW and tuple(lut[255]) == VIRIDIS_HIGH

    for c in range(4):
        left, top, right, bottom = boxes[("maps.0", c)]
        assert right - left >= 48 and bottom - top >= 48       # an 8x8 map is scaled up
        assert (right - left) % 8 == 0 and (bottom - top) % 8 == 0  # by a whole factor

    def sampled(c):
        ys, xs = block_centres(boxes[("maps.0", c)], 8, 8)
        return pixels[np.ix_(ys, xs)]                          # (8, 8, 3): one pixel per value

    # channel 0 = 2 R: a left-to-right ramp from the colour map's low end to its high end
    tile = sampled(0)
    assert (tile[:, 0] == VIRIDIS_LOW).all() and (tile[:, 7] == VIRIDIS_HIGH).all()
    for w in range(8):
        assert (tile[:, w] == lut[round(w / 7 * 255)]).all()
    # channel 1 = G - B: top to bottom
    tile = sampled(1)
    assert (tile[0] == VIRIDIS_LOW).all() and (tile[7] == VIRIDIS_HIGH).all()
    # channel 2 = 0.5 - R: right to left
    tile = sampled(2)
    assert (tile[:, 0] == VIRIDIS_HIGH).all() and (tile[:, 7] == VIRIDIS_LOW).all()
    # channel 3 is constant: the low end everywhere
    assert (sampled(3) == VIRIDIS_LOW).all()

    # nearest-neighbour scaling: every pixel of a tile is its value's colour, no blending
    left, top, right, bottom = boxes[("maps.0", 0)]
    scale = (right - left) // 8
    expected = np.repeat(np.repeat(lut[np.rint(np.arange(8) / 7 * 255).astype(int)][None].repeat(8, 0),
                                   scale, 0), scale, 1)
    np.testing.assert_array_equal(pixels[top:bottom, left:right], expected)


def test_tile_labels_show_each_channels_range():
    assert tile_label(3, -0.1234, 0.9812) == "3: -0.12..0.98"
    assert tile_label(0, 0, 14) == "0: 0..14"
    assert tile_label(2, -6.5, 0.5) == "2: -6.5..0.50"
    assert [format_value(v) for v in (0.0, 1.5, 2.0, 12.4, 340.0, 12345.0, -0.0000312, 0.004, 0.012, 0.00067)] == \
        ["0", "1.5", "2.0", "12", "340", "1.2e+04", "-3.1e-05", "0.0040", "0.012", "6.7e-04"]


def test_colorize_normalises_each_map_to_its_own_range():
    lut = colormap_lut()
    rgb, bounds = colorize(np.array([[-3.0, 1.0], [5.0, 5.0]]), lut)
    assert bounds == (-3.0, 5.0)
    assert tuple(rgb[0, 0]) == VIRIDIS_LOW and tuple(rgb[1, 1]) == VIRIDIS_HIGH
    assert tuple(rgb[0, 1]) == tuple(lut[round(0.5 * 255)])
    rgb, bounds = colorize(np.full((3, 3), 7.0), lut)       # constant: the low end
    assert bounds == (7.0, 7.0) and (rgb == VIRIDIS_LOW).all()
    rgb, _ = colorize(np.array([[0.0, 1.0]]), colormap_lut("gray"))
    assert rgb.tolist() == [[[0, 0, 0], [255, 255, 255]]]
    with pytest.raises(NetspecError, match="unknown colour map `virdis`") as info:
        colormap_lut("virdis")
    assert info.value.diagnostics[0].hint == "did you mean `viridis`?"


def test_viridis_table_is_smooth_and_brightening():
    lut = colormap_lut("viridis").astype(float)
    assert len(COLORMAPS["viridis"]) >= 16
    luminance = lut @ [0.2126, 0.7152, 0.0722]
    assert (np.diff(luminance) > -1).all() and (luminance[16::16] - luminance[:-16:16] > 5).all()
    assert np.abs(np.diff(lut, axis=0)).max() <= 4


# ================================================================ conv and activation, on a real spec


def test_conv_shows_raw_output_and_relu_the_rectified_map():
    import torch

    net = netspec.load(LENET)
    x = np.random.default_rng(1).standard_normal((2, 1, 32, 32)).astype(np.float32)
    maps = feature_maps(net, ["features.0", "features.1", "features.3"], x, seed=4)
    weights = net.weights(seed=4)
    conv = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weights["features.0.weight"]),
                                      torch.from_numpy(weights["features.0.bias"])).numpy()
    assert maps["features.0"].shape == (2, 6, 28, 28)
    np.testing.assert_allclose(maps["features.0"], conv, rtol=1e-5, atol=1e-5)
    assert (maps["features.0"] < 0).any()                    # raw: negative values kept
    np.testing.assert_array_equal(maps["features.1"], np.maximum(maps["features.0"], 0))
    assert maps["features.3"].shape == (2, 16, 10, 10)
    # the network's own output is unchanged by the extra outputs
    assert set(net.run(x, seed=4)) == {"logits"}


def test_headers_say_what_each_layer_is():
    from netspec.features import describe_layer

    graph = netspec.load(LENET).check().graph
    assert describe_layer(graph, "features.0") == "conv 5x5 of digits: raw, before the activation features.1 (relu)"
    assert describe_layer(graph, "features.1") == "relu of features.0"
    assert describe_layer(graph, "digits") == "input NCHW"


def test_default_input_is_seeded():
    net = netspec.load(LENET)
    a = feature_maps(net, ["features.0"], None, seed=2)
    b = feature_maps(net, ["features.0"], None, seed=2)
    c = feature_maps(net, ["features.0"], None, seed=3)
    np.testing.assert_array_equal(a["features.0"], b["features.0"])
    assert not np.array_equal(a["features.0"], c["features.0"])


# ================================================================ errors


def test_unknown_layer_says_did_you_mean_and_lists_the_layers():
    net = netspec.load(LENET)
    with pytest.raises(NetspecError) as info:
        feature_maps(net, ["featurs.0"], None)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "unknown layer `featurs.0`"
    assert diagnostic.hint == "did you mean `features.0`?"
    assert diagnostic.notes == ["layers with spatial outputs: digits, features.0, features.1, features.2, "
                                "features.3, features.4, features.5"]


def test_non_spatial_layer_is_an_error_naming_its_shape():
    net = netspec.load(LENET)
    with pytest.raises(NetspecError) as info:
        feature_maps(net, ["logits.1", "features.0", "nothere"], None)
    first, second = info.value.diagnostics                   # every problem at once
    assert first.message == "layer `logits.1` (linear) has output shape [N, 120] (NC): not a spatial map"
    assert first.layer == "logits.1" and first.span is not None
    assert first.hint == "the last spatial layer before it is `features.5`"
    assert second.message == "unknown layer `nothere`"


def test_cli_errors_exit_1_with_diagnostics(tmp_path, capsys):
    code, out, err = run(["features", LENET, "--layer", "logits.0", "-o", tmp_path / "m.png"], capsys)
    assert code == 1
    assert "[N, 400]" in err and "lenet5.net:" in err     # located in the spec
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    # an unknown --layer is a name on the command line the network lacks, as an unknown --set
    code, out, err = run(["features", LENET, "--layer", "feature.1", "-o", tmp_path / "m.png"], capsys)
    assert code == 2 and "--layer feature.1" in err and "did you mean `features.1`?" in err, err
    code, _, err = run(["features", LENET, "--layer", "features.0", "-o", tmp_path / "m.jpg"], capsys)
    assert code == 2 and ".png" in err and ".npz" in err
    code, _, err = run(["features", LENET, "--layer", "features.0", "--max-channels", "0",
                        "-o", tmp_path / "m.png"], capsys)
    assert code == 2 and "--max-channels" in err
    code, _, err = run(["features", tmp_path / "missing.net", "--layer", "x", "-o", tmp_path / "m.png"], capsys)
    assert code == 2 and "no such file" in err
    with pytest.raises(SystemExit) as info:                  # --layer is required
        run(["features", LENET, "-o", tmp_path / "m.png"], capsys)
    assert info.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_the_provider_is_a_clear_error(tmp_path, capsys):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    code, out, err = run(["features", LENET, "--layer", "features.0", "--device", "cuda",
                          "-o", tmp_path / "m.png"], capsys)
    assert code == 1 and "onnxruntime-gpu" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_wrong_input_shape_is_a_clear_error():
    net = netspec.load(LENET)
    with pytest.raises(NetspecError, match=r"input `digits` has shape \[1, 1, 28, 28\], the model "
                                           r"expects \[N, 1, 32, 32\]"):
        feature_maps(net, ["features.0"], {"digits": np.zeros((1, 1, 28, 28), np.float32)})
    with pytest.raises(NetspecError, match="missing `digits`, unexpected `image`"):
        feature_maps(net, ["features.0"], {"image": np.zeros((1, 1, 32, 32), np.float32)})


# ================================================================ tiles, limits and files


def test_max_channels_caps_the_tiles(tmp_path, capsys):
    net = netspec.load(LENET)
    maps = feature_maps(net, ["features.0", "features.3"], None)
    boxes = render_tiles(maps, tmp_path / "all.png")
    assert len(boxes) == 6 + 16
    boxes = render_tiles(maps, tmp_path / "few.png", max_channels=4)
    assert sorted(boxes) == sorted((layer, c) for layer in ("features.0", "features.3") for c in range(4))
    code, out, err = run(["features", LENET, "--layer", "features.3", "--max-channels", "5",
                          "-o", tmp_path / "cli.png"], capsys)
    assert code == 0, err
    assert "(1 layer, 5 tiles," in out
    with Image.open(tmp_path / "few.png") as few, Image.open(tmp_path / "all.png") as every:
        assert few.height < every.height


def test_tiles_are_scaled_to_a_readable_size(tmp_path):
    rng = np.random.default_rng(0)
    maps = {"tiny": rng.standard_normal((1, 2, 1, 1)), "small": rng.standard_normal((1, 1, 5, 7)),
            "large": rng.standard_normal((1, 1, 600, 300)).astype(np.float32)}
    boxes = render_tiles(maps, tmp_path / "m.png")
    width = lambda box: (box[2] - box[0], box[3] - box[1])  # noqa: E731
    assert width(boxes[("tiny", 0)]) == (48, 48)
    assert width(boxes[("small", 0)]) == (49, 35)           # 7x: the longest side reaches 48
    assert width(boxes[("large", 0)]) == (100, 200)          # every 3rd value: at most 256
    with Image.open(tmp_path / "m.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    left, top, right, bottom = boxes[("tiny", 0)]
    assert (pixels[top:bottom, left:right] == VIRIDIS_LOW).all()   # a single value: constant


def test_npz_output_saves_the_raw_arrays(tmp_path, capsys):
    x = np.random.default_rng(7).standard_normal((3, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out_file = tmp_path / "maps.npz"
    code, out, err = run(["features", LENET, "--input", tmp_path / "x.npy", "--layer", "features.1",
                          "--layer", "features.4", "--seed", 5, "-o", out_file], capsys)
    assert code == 0, err
    assert f"wrote {out_file}" in out
    with np.load(out_file) as saved:
        assert saved.files == ["features.1", "features.4"]
        arrays = {k: saved[k] for k in saved.files}
    expected = feature_maps(netspec.load(LENET), ["features.1", "features.4"], x, seed=5)
    for name in expected:
        assert arrays[name].shape == expected[name].shape
        np.testing.assert_array_equal(arrays[name], expected[name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.npz", "x.npy"]  # no temporary left


def test_files_are_written_atomically(tmp_path):
    maps = {"a": np.zeros((1, 1, 4, 4), np.float32)}
    target = tmp_path / "m.png"
    target.write_bytes(b"old")
    with pytest.raises(NetspecError, match="expected \\(N, C, H, W\\)"):
        render_tiles({"a": np.zeros((4, 4))}, target)
    assert target.read_bytes() == b"old"
    with pytest.raises(NetspecError, match="does not exist"):
        render_tiles(maps, tmp_path / "nodir" / "m.png")
    (tmp_path / "adir").mkdir()
    with pytest.raises(NetspecError, match="it is a directory"):
        save_arrays(maps, tmp_path / "adir")
    render_tiles(maps, target)
    save_arrays(maps, tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "m.npz", "m.png"]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (target.stat().st_mode & 0o044) == (tmp_path.joinpath("m.npz").stat().st_mode & 0o044)


# ================================================================ layouts


NHWC = """
    network nhwc
    input image: f32[N, 8, 8, 3] NHWC
    conv1 = image -> conv(4, 1)
    act = conv1 -> relu
    output act
"""

NCHW_TWIN = """
    network nchw
    input image: f32[N, 3, 8, 8]
    conv1 = image -> conv(4, 1)
    act = conv1 -> relu
    output act
"""


def test_nhwc_spec_gives_nchw_maps(tmp_path):
    weights = {"conv1.weight": WEIGHTS["maps.0.weight"], "conv1.bias": WEIGHTS["maps.0.bias"]}
    x = ramps()
    nhwc = netspec.load(write(tmp_path, NHWC, "nhwc.net"))
    # `act` is an NHWC output: its canonical value is the one before the Transpose back out
    maps = feature_maps(nhwc, ["conv1", "act", "image"], x.transpose(0, 2, 3, 1), weights=weights)
    conv = expected_conv(x)
    np.testing.assert_array_equal(maps["conv1"], conv)
    np.testing.assert_array_equal(maps["act"], np.maximum(conv, 0))
    np.testing.assert_array_equal(maps["image"], x)          # the input itself, in N, C, H, W
    twin = feature_maps(netspec.load(write(tmp_path, NCHW_TWIN, "nchw.net")), ["conv1", "act"], x,
                        weights=weights)
    for name in twin:
        np.testing.assert_array_equal(maps[name], twin[name])
    # the declared output still comes out NHWC
    out = nhwc.run(x.transpose(0, 2, 3, 1), weights=weights)["act"]
    np.testing.assert_array_equal(out, np.maximum(conv, 0).transpose(0, 2, 3, 1))


def test_layer_that_is_an_output_of_the_same_name(tmp_path):
    spec = write(tmp_path, """
        input image: f32[N, 3, 8, 8]
        y = image -> conv(4, 1)
        output y
    """)
    weights = {"y.weight": WEIGHTS["maps.0.weight"], "y.bias": WEIGHTS["maps.0.bias"]}
    maps = feature_maps(netspec.load(spec), ["y"], ramps(), weights=weights)
    np.testing.assert_array_equal(maps["y"], expected_conv(ramps()))


# ================================================================ the command, end to end


def test_cmd_features_end_to_end_with_an_image(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8), "L").save(tmp_path / "digit.png")
    out_file = tmp_path / "maps.png"
    code, out, err = run(["features", LENET, "--input", tmp_path / "digit.png", "--layer", "features.0",
                          "--layer", "features.1", "--max-channels", 3, "--seed", 1, "-o", out_file], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("features.0: [1, 6, 28, 28] (N, C, H, W) float32, min -")
    assert lines[1].startswith("features.1: [1, 6, 28, 28] (N, C, H, W) float32, min 0, max ")
    assert lines[2].startswith(f"wrote {out_file} (2 layers, 6 tiles, ")
    with Image.open(out_file) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert f"{image.width}x{image.height} px)" in lines[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digit.png", "maps.png"]


def test_cmd_features_with_weights_file_and_npy_input(tmp_path, capsys):
    spec = write(tmp_path, ONE_BY_ONE)
    np.savez(tmp_path / "w.npz", **WEIGHTS)
    np.save(tmp_path / "x.npy", ramps()[0])                  # one sample, no batch axis
    code, out, err = run(["features", spec, "--weights", tmp_path / "w.npz", "--input", tmp_path / "x.npy",
                          "--layer", "maps.0", "-o", tmp_path / "m.npz"], capsys)
    assert code == 0, err
    assert out.startswith("maps.0: [1, 4, 8, 8] (N, C, H, W) float32, min -6.5, max 14, mean ")
    with np.load(tmp_path / "m.npz") as saved:
        np.testing.assert_array_equal(saved["maps.0"], expected_conv(ramps()))
    code, out, err = run(["features", spec, "--weights", tmp_path / "w.npz", "--input", tmp_path / "x.npy",
                          "--layer", "maps.0", "--colormap", "gray", "-o", tmp_path / "m.png"], capsys)
    assert code == 0, err
    with Image.open(tmp_path / "m.png") as image:
        assert (0, 0, 0) in {c for _, c in image.getcolors(1 << 16)}


def test_cmd_features_set_and_input_shape(tmp_path, capsys):
    code, out, err = run(["features", LENET, "--input-shape", "digits=2,1,36,36", "--set", "classes=3",
                          "--layer", "features.3", "-o", tmp_path / "m.npz"], capsys)
    assert code == 0, err
    assert out.startswith("features.3: [2, 16, 12, 12] (N, C, H, W)")


def test_registering_the_command_imports_nothing_heavy():
    probe = ("import argparse, json, sys\n"
             "from netspec.commands import features\n"
             "features.register(argparse.ArgumentParser().add_subparsers())\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not modules & {"numpy", "onnx", "onnxruntime", "PIL", "torch", "networkx", "rich"}


def test_wired_into_netspec_main(tmp_path, capsys):
    from netspec.cli import main

    try:
        main(["features", "--help"])
    except SystemExit as exc:
        if exc.code != 0:
            pytest.skip("`features` is not registered in netspec.cli yet")
    capsys.readouterr()
    code = main(["features", str(LENET), "--layer", "features.0", "-o", str(tmp_path / "m.png")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "wrote" in out and (tmp_path / "m.png").is_file()
    with pytest.raises(SystemExit) as exit_:  # an unknown layer is a usage error (exit 2)
        main(["features", str(LENET), "--layer", "featurs.0", "-o", str(tmp_path / "n.png")])
    assert exit_.value.code == 2 and "did you mean `features.0`?" in capsys.readouterr().err
