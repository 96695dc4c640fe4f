"""netspec.shapes: the output-size arithmetic every sliding-window layer shares.

Expected sizes are worked out by hand in the examples, and checked against PyTorch itself
(conv2d, max_pool2d, avg_pool2d) over small hypothesis-generated sizes.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from netspec.shapes import broadcast, expand, resolve_padding, window, windows
from netspec.types import ShapeError

FAST = settings(max_examples=150, derandomize=True, deadline=None)


def torch_conv_size(size: int, kernel: int, stride: int, dilation: int, begin: int, end: int) -> int | None:
    """The output length PyTorch's conv2d gives for one axis (the other axis is kept trivial);
    None when PyTorch refuses the configuration."""
    x = torch.zeros(1, 1, size, 1)
    x = F.pad(x, (0, 0, begin, end))
    w = torch.zeros(1, 1, kernel, 1)
    try:
        return F.conv2d(x, w, stride=(stride, 1), dilation=(dilation, 1)).shape[2]
    except RuntimeError:
        return None


def torch_pool_size(fn, size: int, kernel: int, stride: int, pad: int, ceil: bool, **extra) -> int | None:
    x = torch.zeros(1, 1, size, 1)
    try:
        y = fn(x, (kernel, 1), stride=(stride, 1), padding=(pad, 0), ceil_mode=ceil, **extra)
    except RuntimeError:
        return None
    return y.shape[2] if y.shape[2] > 0 else None


# ================================================================ window: hand-worked examples


@pytest.mark.parametrize("args, expected", [
    # AlexNet's first layer at 224 with padding 2, and at 227 without: both 55
    ((224, 11, 4, 1, 2, 2), 55),
    ((227, 11, 4, 1, 0, 0), 55),
    # 3x3 "keeps the size" with padding 1
    ((32, 3, 1, 1, 1, 1), 32),
    # LeNet: 32 -> 28 (5x5), 28 -> 14 (pool 2)
    ((32, 5, 1, 1, 0, 0), 28),
    ((28, 2, 2, 1, 0, 0), 14),
    # stride that does not divide exactly: floor((10 - 3) / 2) + 1 = 4
    ((10, 3, 2, 1, 0, 0), 4),
    # dilation 2 makes a 3-tap kernel 5 wide: 10 - 5 + 1 = 6
    ((10, 3, 1, 2, 0, 0), 6),
    # dilation 3, 3 taps: effective 7; (16 + 2 + 2 - 7) // 2 + 1 = 7
    ((16, 3, 2, 3, 2, 2), 7),
    # asymmetric padding: (10 + 0 + 1 - 3) // 2 + 1 = 5; (10 + 1 + 0 - 3) // 2 + 1 = 5
    ((10, 3, 2, 1, 0, 1), 5),
    ((9, 3, 2, 1, 0, 1), 4),
    ((9, 3, 2, 1, 2, 0), 5),
    # a kernel exactly as wide as the padded input gives one output
    ((5, 7, 1, 1, 1, 1), 1),
])
def test_window_floor_mode(args, expected):
    w = window(*args)
    assert w.out == expected
    assert not w.ceil_mode


def test_window_records_its_inputs_and_effective_kernel():
    w = window(16, 3, 2, 3, 2, 1)
    assert (w.size, w.kernel, w.stride, w.dilation, w.pad_begin, w.pad_end) == (16, 3, 2, 3, 2, 1)
    assert w.effective_kernel == 7
    # (16 + 3 - 7) = 12 -> 12 // 2 + 1 = 7, nothing left over
    assert w.out == 7 and w.unused == 0


def test_window_unused_is_the_remainder_of_the_division():
    # (224 + 0 - 11) = 213 = 4 * 53 + 1: one row is never seen
    assert window(224, 11, 4, 1, 0, 0).unused == 1
    assert window(227, 11, 4, 1, 0, 0).unused == 0


@pytest.mark.parametrize("args, floor_out, ceil_out", [
    # 5, kernel 2, stride 2: floor(3/2)+1 = 2; ceil(3/2)+1 = 3 (the last window starts at 4 < 5)
    ((5, 2, 2, 1, 0, 0), 2, 3),
    # 6, kernel 3, stride 2: floor(3/2)+1 = 2, ceil -> 3 (starts at 4 < 6)
    ((6, 3, 2, 1, 0, 0), 2, 3),
    # exact division: both modes agree
    ((7, 3, 2, 1, 0, 0), 3, 3),
    # ResNet-style maxpool 3/2 pad 1 on 112: floor(111/2)+1 = 56, ceil(111/2)+1 = 57;
    # the 57th window starts at 112 >= 112 + 1? no: it starts at (57-1)*2 = 112 < 113, kept
    ((112, 3, 2, 1, 1, 1), 56, 57),
    # PyTorch's rule: 5, kernel 2, stride 2, padding 1: ceil(5/2)+1 = 4 windows, but the 4th
    # would start at (4-1)*2 = 6 >= 5 + 1, entirely in the right padding, so it is dropped: 3
    ((5, 2, 2, 1, 1, 1), 3, 3),
    # 4, kernel 2, stride 3, padding 1: floor(3/3)+1 = 2, ceil 2
    ((4, 2, 3, 1, 1, 1), 2, 2),
    # 8, kernel 2, stride 3, padding 1: span 7 -> floor 3, ceil 4; the 4th starts at 9 >= 9: dropped
    ((8, 2, 3, 1, 1, 1), 3, 3),
    # 10, kernel 2, stride 3, padding 0: span 8 -> floor 3, ceil 4; the 4th starts at 9 < 10: kept
    ((10, 2, 3, 1, 0, 0), 3, 4),
])
def test_window_ceil_mode_and_the_last_window_rule(args, floor_out, ceil_out):
    assert window(*args, ceil_mode=False).out == floor_out
    ceil = window(*args, ceil_mode=True)
    assert ceil.out == ceil_out
    assert ceil.ceil_mode


def test_ceil_mode_hand_examples_agree_with_torch():
    cases = [(5, 2, 2, 0), (6, 3, 2, 0), (7, 3, 2, 0), (112, 3, 2, 1), (5, 2, 2, 1), (8, 2, 3, 1),
             (10, 2, 3, 0)]
    for size, k, s, p in cases:
        for ceil in (False, True):
            expected = torch_pool_size(F.max_pool2d, size, k, s, p, ceil)
            assert window(size, k, s, 1, p, p, ceil).out == expected, (size, k, s, p, ceil)


@pytest.mark.parametrize("args, ceil, text", [
    ((5, 7, 1, 1, 0, 0), False, "floor((5 + 2*0 - 1*(7-1) - 1) / 1) + 1 = -1"),
    ((2, 3, 2, 1, 0, 0), False, "floor((2 + 2*0 - 1*(3-1) - 1) / 2) + 1 = 0"),
    ((4, 3, 1, 2, 0, 0), False, "floor((4 + 2*0 - 2*(3-1) - 1) / 1) + 1 = 0"),
    ((3, 5, 1, 1, 0, 1), False, "floor((3 + 0 + 1 - 1*(5-1) - 1) / 1) + 1 = 0"),
    ((1, 3, 1, 1, 0, 0), True, "ceil((1 + 2*0 - 1*(3-1) - 1) / 1) + 1 = -1"),
])
def test_window_error_when_the_output_reaches_zero(args, ceil, text):
    with pytest.raises(ShapeError) as info:
        window(*args, ceil_mode=ceil)
    err = info.value
    expected_out = int(text.rsplit("=", 1)[1])
    assert err.message == f"output size would be {expected_out}: {text}"
    assert err.rule is not None and "at least 1" in err.rule
    assert err.hint is not None


def test_window_error_hint_mentions_the_window_and_the_padded_input():
    with pytest.raises(ShapeError) as info:
        window(5, 3, 1, 3, 0, 0)  # a 7-wide window over 5
    assert "7-wide" in info.value.hint
    assert "(5)" in info.value.hint


def test_formula_of_a_valid_window_shows_the_real_numbers():
    assert window(224, 11, 4, 1, 2, 2).formula() == "floor((224 + 2*2 - 1*(11-1) - 1) / 4) + 1 = 55"
    assert window(10, 3, 2, 1, 0, 1).formula() == "floor((10 + 0 + 1 - 1*(3-1) - 1) / 2) + 1 = 5"
    assert window(5, 2, 2, 1, 0, 0, ceil_mode=True).formula() == "ceil((5 + 2*0 - 1*(2-1) - 1) / 2) + 1 = 3"


# ================================================================ windows (every spatial axis)


def test_windows_per_axis():
    out = windows((32, 20), (3, 5), (1, 2), (1, 1), [(1, 1), (2, 2)])
    assert [w.out for w in out] == [32, 10]
    assert [w.kernel for w in out] == [3, 5]


def test_windows_ceil_mode_applies_to_every_axis():
    out = windows((5, 6), (2, 3), (2, 2), (1, 1), [(0, 0), (0, 0)], ceil_mode=True)
    assert [w.out for w in out] == [3, 3]
    assert all(w.ceil_mode for w in out)


@pytest.mark.parametrize("sizes, kernel, axis", [((2, 32), (3, 3), "height"), ((32, 2), (3, 3), "width")])
def test_windows_error_names_the_axis(sizes, kernel, axis):
    with pytest.raises(ShapeError) as info:
        windows(sizes, kernel, (1, 1), (1, 1), [(0, 0), (0, 0)])
    assert info.value.message.startswith(f"{axis}: output size would be 0: ")
    assert "floor((2 + 2*0 - 1*(3-1) - 1) / 1) + 1 = 0" in info.value.message
    assert info.value.rule is not None


def test_windows_error_for_three_axes_names_depth():
    with pytest.raises(ShapeError) as info:
        windows((1, 8, 8), (3, 3, 3), (1, 1, 1), (1, 1, 1), [(0, 0)] * 3)
    assert info.value.message.startswith("depth: ")


# ================================================================ resolve_padding


def test_padding_valid_is_none():
    assert resolve_padding("valid", (3, 5), (1, 2), (1, 1), (32, 32)) == [(0, 0), (0, 0)]


def test_padding_int_pair_and_four_values():
    assert resolve_padding(2, (5, 5), (1, 1), (1, 1), (32, 32)) == [(2, 2), (2, 2)]
    assert resolve_padding((1, 2), (3, 5), (1, 1), (1, 1), (32, 32)) == [(1, 1), (2, 2)]
    # (top, left, bottom, right): begins then ends, as ONNX `pads`
    assert resolve_padding((1, 2, 3, 4), (3, 3), (1, 1), (1, 1), (32, 32)) == [(1, 3), (2, 4)]


def test_padding_with_a_wrong_number_of_values_is_an_error():
    with pytest.raises(ShapeError) as info:
        resolve_padding((1, 2, 3), (3, 3), (1, 1), (1, 1), (32, 32))
    assert "3 values" in info.value.message


@pytest.mark.parametrize("kernel, stride, dilation, sizes, expected", [
    # stride 1: total = dilation*(kernel-1)
    ((3, 3), (1, 1), (1, 1), (32, 32), [(1, 1), (1, 1)]),
    ((5, 1), (1, 1), (1, 1), (7, 7), [(2, 2), (0, 0)]),
    # even kernels: odd total, the extra at the end
    ((4, 2), (1, 1), (1, 1), (10, 10), [(1, 2), (0, 1)]),
    # dilation: 2*(3-1) = 4 -> (2, 2); 3*(2-1) = 3 -> (1, 2)
    ((3, 2), (1, 1), (2, 3), (10, 10), [(2, 2), (1, 2)]),
    # stride 2 (ONNX SAME_UPPER): out = ceil(in/2);
    # 7: out 4, total (4-1)*2 + 3 - 7 = 2 -> (1, 1); 8: out 4, total 6 + 3 - 8 = 1 -> (0, 1)
    ((3, 3), (2, 2), (1, 1), (7, 8), [(1, 1), (0, 1)]),
    # a stride larger than the kernel needs no padding: 9, k 1, s 3 -> out 3, total 6+1-9 < 0 -> 0
    ((1, 1), (3, 3), (1, 1), (9, 10), [(0, 0), (0, 0)]),
])
def test_padding_same(kernel, stride, dilation, sizes, expected):
    assert resolve_padding("same", kernel, stride, dilation, sizes) == expected


@FAST
@given(size=st.integers(1, 24), kernel=st.integers(1, 6), stride=st.integers(1, 4),
       dilation=st.integers(1, 3))
def test_padding_same_gives_ceil_of_size_over_stride(size, kernel, stride, dilation):
    [(begin, end)] = resolve_padding("same", (kernel,), (stride,), (dilation,), (size,))
    target = math.ceil(size / stride)
    # the extra element, if any, goes at the end
    assert end - begin in (0, 1)
    # PyTorch agrees on the size with exactly this padding
    assert torch_conv_size(size, kernel, stride, dilation, begin, end) == target
    assert window(size, kernel, stride, dilation, begin, end).out == target
    # and it is the least padding that does it
    if begin + end > 0:
        less = begin + end - 1
        smaller = torch_conv_size(size, kernel, stride, dilation, less // 2, less - less // 2)
        assert smaller is None or smaller < target  # None: PyTorch refuses, the window is too wide


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kernel, dilation", [((4, 2), (1, 1)), ((3, 2), (2, 3)), ((2, 5), (1, 2))])
def test_padding_same_places_the_extra_like_torch(kernel, dilation):
    """Not just the size: with these pads, conv2d gives exactly the values of padding='same'."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 9, 8, generator=g)
    w = torch.randn(3, 2, *kernel, generator=g)
    pads = resolve_padding("same", kernel, (1, 1), dilation, (9, 8))
    (top, bottom), (left, right) = pads
    manual = F.conv2d(F.pad(x, (left, right, top, bottom)), w, dilation=dilation)
    same = F.conv2d(x, w, padding="same", dilation=dilation)
    assert manual.shape == same.shape == (1, 3, 9, 8)
    assert torch.allclose(manual, same, atol=1e-5)


# ================================================================ cross-checks with PyTorch


@FAST
@given(size=st.integers(1, 30), kernel=st.integers(1, 7), stride=st.integers(1, 5),
       dilation=st.integers(1, 3), begin=st.integers(0, 3), end=st.integers(0, 3))
def test_window_matches_torch_conv2d(size, kernel, stride, dilation, begin, end):
    expected = torch_conv_size(size, kernel, stride, dilation, begin, end)
    if expected is None or expected <= 0:
        with pytest.raises(ShapeError):
            window(size, kernel, stride, dilation, begin, end)
    else:
        assert window(size, kernel, stride, dilation, begin, end).out == expected


@st.composite
def pool_cases(draw):
    kernel = draw(st.integers(1, 6))
    return (draw(st.integers(1, 30)), kernel, draw(st.integers(1, 5)), draw(st.integers(0, kernel // 2)),
            draw(st.integers(1, 3)), draw(st.booleans()))


@FAST
@given(pool_cases())
def test_window_matches_torch_max_pool2d(case):
    size, kernel, stride, pad, dilation, ceil = case
    expected = torch_pool_size(F.max_pool2d, size, kernel, stride, pad, ceil, dilation=(dilation, 1))
    if expected is None:
        with pytest.raises(ShapeError):
            window(size, kernel, stride, dilation, pad, pad, ceil)
    else:
        assert window(size, kernel, stride, dilation, pad, pad, ceil).out == expected


@FAST
@given(pool_cases())
def test_window_matches_torch_avg_pool2d(case):
    size, kernel, stride, pad, _, ceil = case
    expected = torch_pool_size(F.avg_pool2d, size, kernel, stride, pad, ceil)
    if expected is None:
        with pytest.raises(ShapeError):
            window(size, kernel, stride, 1, pad, pad, ceil)
    else:
        assert window(size, kernel, stride, 1, pad, pad, ceil).out == expected


def test_seeded_grid_of_ceil_mode_pools_matches_torch():
    """A fixed grid around the cases where the last-window rule matters (small sizes, padding)."""
    checked = 0
    for size in range(1, 13):
        for kernel in (2, 3, 4):
            for stride in (1, 2, 3):
                for pad in range(0, kernel // 2 + 1):
                    expected = torch_pool_size(F.max_pool2d, size, kernel, stride, pad, True)
                    if expected is None:
                        with pytest.raises(ShapeError):
                            window(size, kernel, stride, 1, pad, pad, True)
                    else:
                        assert window(size, kernel, stride, 1, pad, pad, True).out == expected, \
                            (size, kernel, stride, pad)
                        checked += 1
    assert checked > 150


# ================================================================ expand and broadcast


def test_expand():
    assert expand(3, 2) == (3, 3)
    assert expand((3,), 2) == (3, 3)
    assert expand((3, 5), 2) == (3, 5)


@pytest.mark.parametrize("shapes, expected", [
    ([("N", 16, 32, 32), ("N", 16, 32, 32)], ("N", 16, 32, 32)),
    ([("N", 16, 32, 32), ("N", 16, 1, 1)], ("N", 16, 32, 32)),        # squeeze-and-excitation gate
    ([("N", 16, 1, 1), ("N", 16, 32, 32)], ("N", 16, 32, 32)),
    ([(16, 1), (1, 8)], (16, 8)),
    ([(3, 1, 5), (4, 5)], (3, 4, 5)),                                # lower rank is padded on the left
    ([(5,), ("N", 4, 5)], ("N", 4, 5)),
    ([(1, 1), (1, 1)], (1, 1)),
    ([(2, 3), (2, 3), (1, 3)], (2, 3)),
])
def test_broadcast(shapes, expected):
    assert broadcast(shapes) == expected


@pytest.mark.parametrize("shapes", [
    [("N", 16, 32, 32), ("N", 32, 32, 32)],
    [("N", 16, 30, 30), ("N", 16, 32, 32)],
    [(2, 3), (3, 2)],
    [(4,), (5,)],
])
def test_broadcast_incompatible_is_none(shapes):
    assert broadcast(shapes) is None


@FAST
@given(st.lists(st.lists(st.integers(1, 3), min_size=0, max_size=4), min_size=2, max_size=3))
def test_broadcast_matches_torch(shapes):
    try:
        expected = tuple(torch.broadcast_shapes(*[tuple(s) for s in shapes]))
    except RuntimeError:
        expected = None
    assert broadcast([tuple(s) for s in shapes]) == expected


# ================================================================ any number of spatial axes


def test_expand_checks_the_count_against_the_axes_when_named():
    assert expand(3, 1) == (3,) and expand(3, 3) == (3, 3, 3)
    assert expand((1, 3, 3), 3, "kernel", "DHW") == (1, 3, 3)
    assert expand((2,), 3, "stride", "DHW") == (2, 2, 2)
    with pytest.raises(ShapeError) as info:
        expand((1, 3, 3), 2, "kernel", "HW")
    assert info.value.message == "`kernel` (1, 3, 3) has 3 values, but this is a 2-D input (height, width)"
    assert info.value.attributes == ("kernel",)
    assert info.value.hint == "give `kernel` one value, or 2 (height, width)"
    with pytest.raises(ShapeError, match=r"`stride` \(2, 1\) has 2 values, but this is a 1-D input \(length\)"):
        expand((2, 1), 1, "stride")
    assert expand((1, 2, 3, 4), 2) == (1, 2, 3, 4)   # unnamed: a padding's begins and ends pass through


def test_windows_name_the_axes_by_their_letters():
    with pytest.raises(ShapeError) as info:
        windows((8, 2), (3, 3), (1, 1), (1, 1), [(0, 0)] * 2, letters="HW")
    assert info.value.message.startswith("width: ")
    with pytest.raises(ShapeError, match="^length: output size would be 0"):
        windows((2,), (3,), (1,), (1,), [(0, 0)])
    with pytest.raises(ShapeError, match="^depth: "):   # a layout's own letters: NCHWD is D, H, W too
        windows((1, 8, 8), (3, 1, 1), (1, 1, 1), (1, 1, 1), [(0, 0)] * 3, letters="DHW")


def test_padding_of_one_and_three_axes():
    # 1-D: one value, or (left, right): a pair is begin and end, not one per axis
    assert resolve_padding(2, (3,), (1,), (1,), (10,)) == [(2, 2)]
    assert resolve_padding((1, 2), (3,), (1,), (1,), (10,)) == [(1, 2)]
    # 3-D: one per axis (d, h, w), or (front, top, left, back, bottom, right)
    assert resolve_padding((1, 2, 3), (3, 3, 3), (1, 1, 1), (1, 1, 1), (8, 8, 8)) == [(1, 1), (2, 2), (3, 3)]
    assert resolve_padding((1, 2, 3, 4, 5, 6), (3, 3, 3), (1, 1, 1), (1, 1, 1), (8, 8, 8)) == [(1, 4), (2, 5), (3, 6)]
    # "same" per axis, with each axis's own kernel, stride and dilation
    assert resolve_padding("same", (1, 3, 4), (1, 2, 1), (1, 1, 2), (5, 7, 9)) == [(0, 0), (1, 1), (3, 3)]
    with pytest.raises(ShapeError) as info:
        resolve_padding((1, 2, 3, 4), (3, 3, 3), (1, 1, 1), (1, 1, 1), (8, 8, 8), "DHW")
    assert info.value.message == ("padding (1, 2, 3, 4) has 4 values; a 3-D input (depth, height, width) takes 1, 3 "
                                  "(one per axis) or 6 (begins then ends: (front, top, left, back, bottom, right))")
    with pytest.raises(ShapeError, match=r"a 1-D input \(length\) takes 1 or 2 \(begins then ends: \(left, right\)\)"):
        resolve_padding((1, 2, 3), (3,), (1,), (1,), (10,))


def test_notes_name_the_units_of_each_axis():
    w = window(10, 3, 2, 1, 0, 0)   # (10 - 3) % 2 = 1
    assert "last 1 slice" in w.note("D") and "last 1 row" in w.note("H")
    assert "last 1 column" in w.note("W") and "last 1 position" in w.note("L")


@pytest.mark.parametrize("rank", [1, 3])
def test_windows_of_1d_and_3d_match_torch(rank):
    """A seeded grid of per-axis kernels, strides, dilations and paddings against F.conv1d /
    F.conv3d and F.max_pool1d / F.max_pool3d (the axes are independent: each follows window())."""
    import random

    rnd = random.Random(rank)
    conv = {1: F.conv1d, 3: F.conv3d}[rank]
    pool = {1: F.max_pool1d, 3: F.max_pool3d}[rank]
    for _ in range(40):
        sizes = tuple(rnd.randint(1, 12) for _ in range(rank))
        kernel = tuple(rnd.randint(1, 4) for _ in range(rank))
        stride = tuple(rnd.randint(1, 3) for _ in range(rank))
        dilation = tuple(rnd.randint(1, 2) for _ in range(rank))
        pads = [(p, p) for p in (rnd.randint(0, k // 2) for k in kernel)]
        ceil = rnd.random() < 0.5
        try:
            ours = [w.out for w in windows(sizes, kernel, stride, dilation, pads)]
        except ShapeError:
            ours = None
        x = torch.zeros(1, 1, *sizes)
        try:
            theirs = list(conv(x, torch.zeros(1, 1, *kernel), stride=stride, padding=[p for p, _ in pads],
                               dilation=dilation).shape[2:])
        except RuntimeError:
            theirs = None
        assert ours == theirs, (sizes, kernel, stride, dilation, pads)
        try:
            ours = [w.out for w in windows(sizes, kernel, stride, dilation, pads, ceil_mode=ceil)]
        except ShapeError:
            ours = None
        try:
            theirs = list(pool(x, kernel, stride, [p for p, _ in pads], dilation, ceil_mode=ceil).shape[2:])
            theirs = theirs if min(theirs) > 0 else None
        except RuntimeError:
            theirs = None
        assert ours == theirs, (sizes, kernel, stride, dilation, pads, ceil)
