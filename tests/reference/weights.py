"""Seeded weights for a state_dict, the same in numpy on both sides of a parity test.

torchvision is too large to install in CI, so the parity fixtures under tests/data/parity/ hold
only torchvision's *output*; the weights are regenerated from the key list and shapes recorded
in tests/data/<model>_state_dict.json. Each tensor is drawn from its own generator, seeded by
the key's name, so the values do not depend on the key order or on which other keys exist:

- convolution and linear weights (two or more axes, `weight` or `in_proj_weight`): He (Kaiming)
  normal over the fan-in (every axis but the first), so activations keep an O(1) scale through
  any depth;
- biases (`bias`, `in_proj_bias`): uniform in [-0.2, 0.2];
- class tokens and position embeddings (a name with `token` or `embedding`): normal(0, 0.5);
- norm scales (one-axis `weight`) and other one-axis or broadcast-shaped learned tensors
  (ConvNeXt's `layer_scale` [C, 1, 1]): uniform in [0.5, 1.5];
- running means: normal(0, 0.3); running variances: uniform in [0.5, 2.0] (so inference-mode
  batch norm is really tested, not the identity of fresh statistics);
- `num_batches_tracked`: 0 (int64).

Constant buffers are left out (`CONSTANT_BUFFERS`, by leaf name): Swin's and MaxViT's
`relative_position_index` (int64, which entry of the learned bias table each query/key pair
reads) and Swin V2's `relative_coords_table` (float32, the log-spaced relative coordinates its
`cpb_mlp` turns into that table). They are functions of the window size alone, computed when the
module is built, not weights: a drawn value would be meaningless (an index out of range), and
an implementation must compute them itself. The parity fixtures record torchvision's exact
values of them (`constant/<key>`), so a test can check that it does.

Imports numpy only: tests/reference/dump_torchvision.py uses it where torchvision is installed.
"""

from __future__ import annotations

import zlib
from math import prod

import numpy as np

# state_dict leaf names of buffers that are constants of the architecture, not weights (see above)
CONSTANT_BUFFERS = frozenset({"relative_position_index", "relative_coords_table"})


def is_constant(key: str) -> bool:
    """Whether state_dict entry `key` is a constant buffer, which `seeded_state_dict` leaves out."""
    return key.rsplit(".", 1)[-1] in CONSTANT_BUFFERS


def _generator(key: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def seeded_tensor(key: str, shape: list[int] | tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The value of state_dict entry `key` of `shape` (see the module's docstring)."""
    shape = tuple(shape)
    leaf = key.rsplit(".", 1)[-1]
    rng = _generator(key, seed)
    if leaf == "num_batches_tracked":
        return np.zeros(shape, dtype=np.int64)
    if leaf == "running_mean":
        values = rng.normal(0.0, 0.3, shape)
    elif leaf == "running_var":
        values = rng.uniform(0.5, 2.0, shape)
    elif leaf.endswith("bias"):  # `bias`, nn.MultiheadAttention's `in_proj_bias`
        values = rng.uniform(-0.2, 0.2, shape)
    elif leaf.endswith("weight") and len(shape) >= 2:  # `weight`, `in_proj_weight`
        fan_in = prod(shape[1:])
        values = rng.normal(0.0, (2.0 / fan_in) ** 0.5, shape)
    elif "token" in leaf or "embedding" in leaf:  # ViT's class token and position embedding
        values = rng.normal(0.0, 0.5, shape)
    else:  # norm scales, layer scales
        values = rng.uniform(0.5, 1.5, shape)
    return values.astype(np.float32)


def seeded_state_dict(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, np.ndarray]:
    """Every entry of a state_dict but its constant buffers, from its key -> shape mapping."""
    return {key: seeded_tensor(key, shape, seed) for key, shape in shapes.items() if not is_constant(key)}


def seeded_input(shape: list[int] | tuple[int, ...], seed: int = 1234) -> np.ndarray:
    """The parity input: standard normal, float32."""
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)
