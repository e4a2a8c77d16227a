import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import biaslab.math.activations
import biaslab.math.conv
from biaslab.math.conv import (
    METHODS,
    activate,
    conv_method,
    conv2d,
    conv2d_pre_activation,
    conv_output_shape,
    explain_pixel,
    feature_map,
    padding_border,
    unfold,
    weighted_sum,
)


@st.composite
def conv_problems(draw, dtype=np.float64):
    """A random valid conv2d call: shapes, stride, padding (ints, pairs, 'same', 'valid'), dilation, groups."""
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(
        st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)), st.sampled_from(["same", "valid"])
    ))
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if padding == "same":
        pads = (0, 0)  # 'same' always fits: it pads d·(k − 1) in total
    elif padding == "valid":
        pads = (0, 0)
    else:
        pads = (padding, padding) if isinstance(padding, int) else padding
    size = []
    for axis in range(2):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        smallest = 1 if padding == "same" else max(1, span - 2 * pads[axis])
        size.append(draw(st.integers(smallest, smallest + 6)))
    batch = draw(st.sampled_from([None, 1, 2]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x_shape = (groups * cg, *size) if batch is None else (batch, groups * cg, *size)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((groups * og, cg, *kernel)).astype(dtype)
    b = rng.standard_normal(groups * og).astype(dtype) if draw(st.booleans()) else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def torch_conv(x, w, b, kwargs):
    with warnings.catch_warnings():  # torch warns that some 'same' paddings copy the input
        warnings.simplefilter("ignore", UserWarning)
        t = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kwargs)
    return t.numpy()


@settings(max_examples=60, deadline=None)
@given(conv_problems(np.float64))
def test_conv2d_matches_torch_float64(problem):
    x, w, b, kwargs = problem
    ours, ref = conv2d(x, w, b, **kwargs), torch_conv(x, w, b, kwargs)
    assert ours.shape == ref.shape and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(conv_problems(np.float64), st.sampled_from(METHODS))
def test_every_method_matches_torch_float64(problem, method):
    x, w, _, kwargs = problem
    ours, ref = weighted_sum(x, w, method=method, **kwargs), torch_conv(x, w, None, kwargs)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("tile_bytes", [1, 300])
def test_rows_method_in_small_tiles_matches_torch(monkeypatch, tile_bytes):
    """Tiles of one or a few output rows: the padding rows of the first and last tiles are zeroed."""
    monkeypatch.setattr(biaslab.math.conv, "TILE_BYTES", tile_bytes)
    rng = np.random.default_rng(4)
    for kwargs in (dict(padding=2), dict(padding=(3, 1), stride=(2, 3), dilation=(2, 1)),
                   dict(padding="same", dilation=(3, 2)), dict(stride=3, dilation=2, groups=2)):
        x, w = rng.standard_normal((2, 4, 13, 11)), rng.standard_normal((6, 4 // kwargs.get("groups", 1), 3, 4))
        ref = torch_conv(x, w, None, kwargs)
        np.testing.assert_allclose(weighted_sum(x, w, method="rows", **kwargs), ref, rtol=0, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(conv_problems(np.float32))
def test_conv2d_matches_torch_float32(problem):
    x, w, b, kwargs = problem
    ours, ref = conv2d(x, w, b, **kwargs), torch_conv(x, w, b, kwargs)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))


@settings(max_examples=25, deadline=None)
@given(conv_problems(np.float64))
def test_unfold_matches_torch_unfold(problem):
    x, w, _, kwargs = problem
    assume(not isinstance(kwargs["padding"], str))  # torch's unfold takes numbers only
    image = x if x.ndim == 3 else x[0]
    cols = unfold(image, w.shape[2:], kwargs["stride"], kwargs["padding"], kwargs["dilation"])
    ref = F.unfold(torch.from_numpy(image[None]), w.shape[2:], dilation=kwargs["dilation"],
                   padding=kwargs["padding"], stride=kwargs["stride"])[0].numpy()
    assert cols.shape[3:] == conv_output_shape(image.shape[1:], w.shape[2:], kwargs["stride"],
                                               kwargs["padding"], kwargs["dilation"])
    np.testing.assert_array_equal(cols.reshape(ref.shape), ref)


@settings(max_examples=30, deadline=None)
@given(conv_problems(np.float64), st.sampled_from(sorted(biaslab.math.activations.ACTIVATIONS)), st.data())
def test_explain_pixel_agrees_with_feature_map(problem, activation, data):
    x, w, b, kwargs = problem
    image = x if x.ndim == 3 else x[0]
    if kwargs.pop("groups") > 1:
        w = w[:, :1].repeat(image.shape[0], axis=1)  # explain one kernel over all input channels
    bias = 0.0 if b is None else float(b[0])
    fmap = feature_map(image, w[:1], np.array([bias]), activation, **kwargs)[0]
    row = data.draw(st.integers(0, fmap.shape[0] - 1))
    col = data.draw(st.integers(0, fmap.shape[1] - 1))
    e = explain_pixel(image, w[0], (row, col), bias, activation, **kwargs)
    assert e.patch.shape == w[0].shape
    assert e.total == pytest.approx(float(np.sum(e.patch * w[0])))
    assert e.pre_activation == pytest.approx(e.total + bias)
    assert e.output == pytest.approx(float(fmap[row, col]), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(conv_problems(np.float64))
def test_padding_border_counts_the_windows_that_read_zeros(problem):
    """Brute force: a window reads the padding exactly when Σ(ones * ones) under it is below the tap count."""
    x, w, _, kwargs = problem
    kwargs.pop("groups")
    ones = conv2d(np.ones((1, *x.shape[-2:])), np.ones((1, 1, *w.shape[2:])), **kwargs)[0]
    short = ones < w.shape[2] * w.shape[3] - 0.5
    rows, cols = short.any(axis=1), short.any(axis=0)
    top, bottom, left, right = padding_border(x.shape[-2:], w.shape[2:], **kwargs)
    expected_rows = np.zeros(rows.size, bool)
    expected_rows[:top] = True
    expected_rows[rows.size - bottom:] = True
    expected_cols = np.zeros(cols.size, bool)
    expected_cols[:left] = True
    expected_cols[cols.size - right:] = True
    interior = ~short[np.ix_(~expected_rows, ~expected_cols)]
    assert np.all(interior)  # no window inside the border reads padding
    assert np.all(short[expected_rows]) if expected_rows.any() else True
    assert np.all(short[:, expected_cols]) if expected_cols.any() else True


def test_formula_pieces_fit_together():
    rng = np.random.default_rng(0)
    x, w, b = rng.random((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), np.array([-1.0, -0.5, 0.0, 0.5])
    total, pre = conv2d_pre_activation(x, w, b, padding=1)
    np.testing.assert_array_equal(total, weighted_sum(x, w, padding=1))
    np.testing.assert_allclose(pre, total + b[:, None, None])
    np.testing.assert_allclose(conv2d(x, w, b, padding=1), pre)
    np.testing.assert_allclose(feature_map(x, w, b, "relu", padding=1), np.maximum(pre, 0))
    same, same_pre = conv2d_pre_activation(x, w, None)
    assert same is same_pre  # without bias there is nothing to add
    assert activate is biaslab.math.activations.activate  # one implementation of the activations


def test_cross_correlation_not_flipped_convolution():
    rng = np.random.default_rng(1)
    image, kernel = rng.random((7, 9)), rng.standard_normal((3, 2))
    ours = conv2d(image[None], kernel[None, None])[0]
    np.testing.assert_allclose(ours, scipy.signal.correlate2d(image, kernel, mode="valid"))
    np.testing.assert_allclose(ours, scipy.signal.convolve2d(image, kernel[::-1, ::-1], mode="valid"))
    assert not np.allclose(ours, scipy.signal.convolve2d(image, kernel, mode="valid"))


def test_dtypes_and_unbatched_input():
    x = np.arange(2 * 5 * 5).reshape(2, 5, 5)
    w = np.ones((1, 2, 3, 3), dtype=np.int64)
    out = conv2d(x, w)
    assert out.shape == (1, 3, 3) and out.dtype == np.float64
    assert out[0, 0, 0] == x[:, :3, :3].sum()
    assert conv2d(x.astype(np.float32), w.astype(np.float32), np.zeros(1, np.float32)).dtype == np.float32
    assert conv2d(x.astype(np.float32), w.astype(np.float64)).dtype == np.float64


def test_same_padding_keeps_size_with_even_kernel_like_torch():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 1, 6, 7)), rng.standard_normal((1, 1, 4, 2))
    out = conv2d(x, w, padding="same", dilation=(1, 3))
    assert out.shape == (1, 1, 6, 7)
    np.testing.assert_allclose(out, torch_conv(x, w, None, dict(padding="same", dilation=(1, 3))), atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((6, 8, 20, 20), (8, 4, 3, 3), dict(padding=1, groups=2)),
        ((1, 3, 96, 96), (1, 3, 7, 7), dict(padding="same")),  # the biaslab conv workload, smaller
        ((2, 2, 12, 200), (3, 2, 3, 3), dict(dilation=(4, 1))),  # tall dilation over a short output: im2col
    ],
)
def test_extra_memory_is_at_most_one_unfolded_sample_and_group(x_shape, w_shape, kwargs):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    h_out, w_out = conv_output_shape(x_shape[2:], w_shape[2:], 1, kwargs.get("padding", 0), kwargs.get("dilation", 1))
    unfolded = w_shape[1] * w_shape[2] * w_shape[3] * h_out * w_out * x.itemsize  # one sample, one group
    tracemalloc.start()
    out = conv2d(x, w, b, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak - out.nbytes <= 1.05 * unfolded


def test_auto_picks_rows_unless_it_needs_more_memory():
    assert conv_method((1, 3, 512, 512), (1, 3, 7, 7), padding="same") == "rows"
    assert conv_method((2, 2, 12, 200), (3, 2, 3, 3), dilation=(4, 1)) == "im2col"


def test_importing_conv_does_not_import_torch():
    code = "import sys, biaslab.math.conv; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, kwargs, match",
    [
        ((1, 3, 8, 8), (2, 4, 3, 3), None, {}, r"\(1, 3, 8, 8\) has 3 channels but weight \(2, 4, 3, 3\)"),
        ((1, 4, 8, 8), (2, 2, 3, 3), None, {"groups": 3}, r"groups=3 does not divide the 4 input channels"),
        ((1, 4, 8, 8), (3, 2, 3, 3), None, {"groups": 2}, r"groups=2 does not divide the 3 output channels"),
        ((1, 1, 4, 4), (1, 1, 5, 5), None, {}, r"kernel of size \(5, 5\).*larger than the padded input \(4, 4\)"),
        ((1, 1, 4, 4), (1, 1, 3, 3), None, {"dilation": 2}, r"spans \(5, 5\)"),
        ((1, 1, 8, 8), (1, 1, 3, 3), None, {"stride": 0}, r"stride must be ≥ 1"),
        ((1, 1, 8, 8), (1, 1, 3, 3), None, {"padding": -1}, r"padding must be ≥ 0"),
        ((1, 1, 8, 8), (1, 1, 3, 3), None, {"padding": "full"}, r"'same' or 'valid'"),
        ((1, 1, 8, 8), (1, 1, 3, 3), None, {"padding": "same", "stride": 2}, r"not supported for strided"),
        ((1, 1, 8, 8), (2, 1, 3, 3), (3,), {},
         r"bias must have shape \(2,\) for weight \(2, 1, 3, 3\), got shape \(3,\)"),
        ((8, 8), (1, 1, 3, 3), None, {}, r"input must have shape \(N, C, H, W\) or \(C, H, W\), got shape \(8, 8\)"),
        ((1, 1, 8, 8), (3, 3), None, {}, r"weight must have shape"),
        ((1, 1, 8, 8), (1, 1, 3, 3), None, {"groups": 0}, r"groups must be a positive int"),
    ],
)
def test_wrong_shapes_raise_value_error_naming_them(x_shape, w_shape, b_shape, kwargs, match):
    b = None if b_shape is None else np.zeros(b_shape)
    with pytest.raises(ValueError, match=match):
        conv2d(np.zeros(x_shape), np.zeros(w_shape), b, **kwargs)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of auto, rows, im2col"):
        weighted_sum(np.zeros((1, 4, 4)), np.zeros((1, 1, 3, 3)), method="fft")


def test_explain_pixel_rejects_positions_outside_the_output():
    with pytest.raises(ValueError, match=r"position \(6, 0\) is outside the 6×6 output"):
        explain_pixel(np.zeros((1, 8, 8)), np.ones((1, 3, 3)), (6, 0))
    with pytest.raises(ValueError, match="same C"):
        explain_pixel(np.zeros((3, 8, 8)), np.ones((1, 3, 3)), (0, 0))
    e = explain_pixel(np.ones((1, 4, 4)), np.ones((1, 3, 3)), (0, 0), bias=-5.0, padding=1)
    assert e.total == 4.0 and e.output == 0.0  # the corner patch hangs over 5 padding zeros
    assert e.corner == (-1, -1) and e.span == (3, 3)
    d = explain_pixel(np.arange(64.0).reshape(1, 8, 8), np.ones((1, 2, 2)), (1, 2), stride=2, dilation=3)
    assert d.corner == (2, 4) and d.span == (4, 4)
    assert d.patch[0].tolist() == [[20.0, 23.0], [44.0, 47.0]]
    assert "relu" in repr(e) and "bias -5" in repr(e)
