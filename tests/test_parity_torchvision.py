"""Numerical parity with torchvision itself, without installing it.

For at least one model of every family, tests/data/parity/<model>.npz holds the output of
torchvision's own module (eval mode) for weights drawn by tests/reference/weights.py from the
model's recorded state_dict keys and shapes, and a seeded input, both regenerated here in numpy
(tests/reference/dump_torchvision.py recorded it where torchvision 0.29.1 is installed). The
same state_dict, unchanged, goes to netspec's graph for specs/<model>.net, run at the fixture's
input size by onnxruntime.

The fixture holds torchvision's output computed in float64, the exact answer near enough, and
how far torchvision's own float32 run is from it. Tolerance: max |netspec - torchvision| <=
1e-4 * max(1, max |torchvision|), a difference of 1e-4 relative to the output's scale
(summation order is all that differs). Two fixtures are ill-conditioned with these weights:
efficientnet_b5 and efficientnet_v2_s stack about 40 residual blocks whose sums grow without
a normalisation that would see the real statistics (outputs of 1e3 and 1e6), and there
torchvision's own float32 run is 5e-4 from the exact answer. A float32 implementation cannot
be held closer than that, so the bound is the larger of 1e-4 and four times torchvision's own
float32 error: netspec must be about as close to the exact answer as torchvision itself (two
float32 summation orders differ in their errors by small factors; measured, netspec's are 7.1e-4
and 1.1e-3 against torchvision's 5.4e-4 and 4.9e-4). maxvit_t's seeded batch-norm statistics
make it ill-conditioned too, less so: torchvision's float32 error is 5e-5, so its bound is 2e-4
(measured, netspec's is 6.4e-5). Every other fixture's float32 error is below 2e-6, so 1e-4 is
the bound there. Segmentation fixtures keep every 4th pixel of each spatial axis (a few kB); the
comparison is on those.

The constant buffers (Swin's and MaxViT's relative_position_index) are not drawn: the fixture
holds torchvision's own values (`constant/<key>`), given to the graph with the drawn weights,
and test_constant_buffers_equal_torchvisions checks that netspec computes the same at compile time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import netspec
from bundled_specs import SPECS
from reference.weights import seeded_input, seeded_state_dict

DATA = Path(__file__).resolve().parent / "data"
FIXTURES = sorted((DATA / "parity").glob("*.npz"))
RTOL = 1e-4
# the families a fixture must exist for (tests/reference/dump_torchvision.py's PARITY)
FAMILIES = {"resnet": "resnext50_32x4d", "wide_resnet": "wide_resnet50_2", "vgg": "vgg11_bn",
            "densenet": "densenet121", "squeezenet": "squeezenet1_0", "googlenet": "googlenet",
            "inception": "inception_v3", "mobilenet": "mobilenet_v3_large", "mnasnet": "mnasnet0_5",
            "shufflenet": "shufflenet_v2_x0_5", "efficientnet": "efficientnet_b5",
            "efficientnet_v2": "efficientnet_v2_s", "regnet_x": "regnet_x_400mf",
            "regnet_y": "regnet_y_400mf", "convnext": "convnext_tiny", "video_r3d": "r3d_18",
            "video_r2plus1d": "r2plus1d_18", "video_s3d": "s3d", "fcn": "fcn_resnet50",
            "deeplabv3": "deeplabv3_resnet50", "lraspp": "lraspp_mobilenet_v3_large",
            "vit": "vit_b_32", "swin": "swin_t", "swin_v2": "swin_v2_t", "maxvit": "maxvit_t",
            "swin3d": "swin3d_t"}


def test_every_family_has_a_fixture():
    recorded = {p.stem for p in FIXTURES}
    assert set(FAMILIES.values()) <= recorded, sorted(set(FAMILIES.values()) - recorded)


def own_constants(net, recorded) -> dict[str, np.ndarray]:
    """The architecture's constant buffers (Swin's relative_position_index, Swin V2's
    relative_coords_table: tests/reference/weights.py does not seed them), as netspec's spec
    computes them, checked against torchvision's own values stored in the fixture
    (`constant/<key>`): integers exactly, floats to float32's rounding."""
    theirs = {key.removeprefix("constant/"): recorded[key] for key in recorded.files if key.startswith("constant/")}
    if not theirs:
        return {}
    ours = net.weights()
    for key, value in theirs.items():
        assert key in ours, f"torchvision's constant buffer `{key}` is not in the spec"
        assert ours[key].dtype == value.dtype and ours[key].shape == value.shape, key
        if value.dtype.kind in "iu":
            assert np.array_equal(ours[key], value), f"`{key}` differs from torchvision's"
        else:
            np.testing.assert_allclose(ours[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
    return {key: ours[key] for key in theirs}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_torchvision_parity(fixture):
    name = fixture.stem
    recorded = np.load(fixture)
    reference = json.loads((DATA / f"{name}_state_dict.json").read_text(encoding="utf-8"))
    shape = [int(d) for d in recorded["input_shape"]]
    stride = int(recorded["stride"])
    spec = SPECS / f"{name}.net"
    (input_name,) = netspec.load(spec).graph.inputs
    net = netspec.load(spec, input_shapes={input_name: shape})
    weights = seeded_state_dict(reference["state_dict"])
    weights.update(own_constants(net, recorded))
    outputs = net.run(seeded_input(shape), weights=weights)
    (actual,) = outputs.values()
    assert list(actual.shape) == [int(d) for d in recorded["full_shape"]]
    if stride > 1:
        actual = actual[:, :, ::stride, ::stride]
    expected = recorded["output"]  # float64
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual.astype(np.float64) - expected).max()) / scale
    floor = float(recorded["torch_float32_error"])  # torchvision's own float32 run
    assert err <= max(RTOL, 4 * floor), (f"{name}: max |netspec - torchvision| = {err:.3g} of the output's "
                                         f"scale {scale:.3g} (torchvision's float32: {floor:.3g})")
