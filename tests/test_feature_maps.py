import json

import numpy as np
import pytest
import scipy.signal
import skimage.data
from PIL import Image

from biaslab.math.conv import fraction_active
from biaslab.experiments.conv.run import (
    MAX_BIASES,
    MAX_IMAGE_SIDE,
    MAX_KERNEL_SIZE,
    MAX_KERNELS,
    MAX_PADDING,
    MAX_STRIDE,
    block_mean,
    downscale,
    kernel_sums,
    prepare_image,
    run_conv,
)
from biaslab.infra.io import BiaslabError
from biaslab.math.kernels import KERNELS
from biaslab.results import from_payload, payload
from biaslab.results.conv import ConvResult


@pytest.fixture
def picture(tmp_path):
    rng = np.random.default_rng(0)
    grey = (np.linspace(0, 255, 24)[None, :] * np.ones((20, 1)) * 0.7 + rng.integers(0, 70, (20, 24)))
    path = tmp_path / "tiny.png"
    Image.fromarray(grey.astype(np.uint8)).save(path)
    return path


def test_downscale_and_block_mean():
    img = np.arange(6 * 8, dtype=float).reshape(6, 8)
    small = downscale(img, 4)
    assert small.shape == (3, 4)
    assert small[0, 0] == img[:2, :2].mean()
    assert downscale(img, 8) is img
    assert downscale(np.ones((9, 9, 3)), 4).shape == (3, 3, 3)
    blocks = block_mean(img, 4)  # edge blocks are smaller, never dropped
    assert blocks.shape == (2, 2)
    assert blocks[1, 1] == img[4:, 4:].mean() and blocks[0, 0] == img[:4, :4].mean()
    np.testing.assert_array_equal(block_mean(img, 1), img)


def test_prepare_image_builtin_and_file(picture):
    camera, source, size = prepare_image()
    assert camera.shape == (1, 512, 512) and source == "camera" and size == (512, 512)
    assert 0.0 <= camera.min() and camera.max() <= 1.0
    coffee, source, size = prepare_image("coffee", color=True, max_size=100)
    assert coffee.shape == (3, 400 // 6, 100) and size == (400, 600)
    full = prepare_image("coffee", color=True, max_size=600)[0]
    np.testing.assert_allclose(coffee[:, 0, 0], full[:, :6, :6].mean(axis=(1, 2)))  # 6×6 block averages
    tiny, source, _ = prepare_image(None, picture)
    assert tiny.shape == (1, 20, 24) and source == str(picture)
    with pytest.raises(BiaslabError, match="either `builtin` or `image`"):
        prepare_image("camera", picture)
    with pytest.raises(BiaslabError, match=f"`max_size` must be ≥ 1 and ≤ {MAX_IMAGE_SIDE}"):
        prepare_image(max_size=0)


def test_fraction_active_does_not_count_ties():
    """A unit with Σ + b = 0 outputs relu(0) = 0: it is not active (``>=`` would count it)."""
    total = np.array([[-1.0, 0.0], [0.0, 2.0]])
    assert fraction_active(total, 0.0) == 0.25
    assert fraction_active(total, 1.0) == 0.75
    assert fraction_active(total, -2.0) == 0.0


def test_readme_sobel_numbers():
    """``biaslab conv --kernel sobel-x`` (camera, 512×512, 'same' padding, biases −0.5, 0, 0.5), as the README quotes."""
    res = run_conv(kernels=["sobel-x"], check_torch=False)
    shares = [round(100 * s.fraction_active, 1) for s in res.kernels[0].biases]
    assert [s.bias for s in res.kernels[0].biases] == [-0.5, 0.0, 0.5]
    assert shares == [3.0, 46.3, 97.2]


def test_active_units_agree_with_exact_integer_arithmetic():
    """On camera (8-bit) every bank kernel's Σ is an exact multiple of 1/255 (1/(16·255) for gaussian);
    the units that fire must be exactly those integer arithmetic says, at every bias: flat regions give
    Σ = 0 exactly, whatever order the floating-point sum is taken in."""
    image = skimage.data.camera().astype(np.int64)
    picture = prepare_image()[0]
    for name, kernel in KERNELS.items():
        scale = 16 if name == "gaussian" else 1
        exact = scipy.signal.correlate2d(image, (kernel * scale).astype(np.int64), mode="same")
        ours = kernel_sums(picture, kernel[None])
        for b in (-0.5, 0.0, 0.5):
            assert np.array_equal(ours > -b, exact > -b * 255 * scale), (name, b)


def test_maps_are_the_formula(picture):
    res = run_conv(image=picture, kernels=["sobel-x", "gaussian"], biases=[-0.5, 0.0, 0.25], explain=(0, 23))
    image = prepare_image(None, picture)[0][0]
    pixels = np.asarray(Image.open(picture)).astype(np.int64)  # image = pixels / 255
    for m in res.kernels:
        expected = scipy.signal.correlate2d(image, KERNELS[m.name], mode="same")  # zero padding, no flip
        scale = 16 if m.name == "gaussian" else 1
        exact = scipy.signal.correlate2d(pixels, (scale * KERNELS[m.name]).astype(np.int64), mode="same")
        assert m.output_shape == (20, 24) and m.border == (1, 1, 1, 1)
        assert m.sum_min == pytest.approx(expected.min(), abs=1e-12)
        assert m.sum_max == pytest.approx(expected.max(), abs=1e-12)
        for s in m.biases:
            assert s.threshold == -s.bias
            assert s.fraction_active == np.mean(exact > -s.bias * 255 * scale)
            assert s.mean_activation == pytest.approx(np.maximum(expected + s.bias, 0).mean())
            assert s.max_activation == pytest.approx(max(expected.max() + s.bias, 0.0))
        np.testing.assert_allclose(m.preview_sum, expected, atol=1e-6)  # small image: stored at full size
    assert res.preview_factor == 1
    assert res.check.max_abs_diff < 1e-12 and res.claim("matches_torch").holds is True
    assert res.claim("fires_where_sum_exceeds_minus_b").holds is True
    assert res.claim("fires_where_sum_exceeds_minus_b").evidence["units"] == 2 * 3 * 20 * 24


def test_results_round_trip_through_json(picture):
    res = run_conv(image=picture, kernels=["laplacian"], biases=[0.0, 0.3], explain=(2, 3), check_torch=False)
    data = json.loads(json.dumps(payload(res)))
    again = from_payload(data)
    assert isinstance(again, ConvResult)
    assert again.kernels[0].biases == res.kernels[0].biases
    np.testing.assert_array_equal(again.kernels[0].preview_outputs, res.kernels[0].preview_outputs)
    assert again.explain.position == (2, 3) and again.explain.kernels[0].corner == (1, 2)
    assert again.claims == res.claims
    assert again.claim("matches_torch").holds is None  # not run: not measured


def test_default_run_keeps_results_small():
    """The default ``biaslab conv`` (camera 512×512, three kernels, three biases) stores block-averaged maps."""
    res = run_conv(check_torch=False)
    size = len(json.dumps(payload(res)))
    assert res.preview_factor == 2 and res.kernels[0].preview_outputs.shape == (3, 256, 256)
    assert size < 5_000_000


def test_explanation_matches_every_feature_map(picture):
    res = run_conv(image=picture, kernels=["laplacian", "emboss"], biases=[-0.3, 0.0, 0.3],
                   activation="gelu", explain=(19, 0), check_torch=False)
    e = res.explain
    assert e.position == (19, 0) and len(e.kernels) == 2
    image = prepare_image(None, picture)[0][0]
    for k in e.kernels:
        full = scipy.signal.correlate2d(image, KERNELS[k.kernel], mode="same")
        assert k.sum == pytest.approx(float(full[19, 0]), abs=1e-12)
        assert k.patch[0, 2].tolist() == [0.0, 0.0, 0.0]  # bottom row hangs over the padding
        assert k.in_padding.tolist() == [[True, False, False], [True, False, False], [True, True, True]]
        for b in k.biases:
            assert b.output == pytest.approx(b.feature_map, abs=1e-12)
            assert b.pre_activation == pytest.approx(k.sum + b.bias)
    assert res.claim("explain_matches_feature_map").holds is True


def test_sweep_spans_none_to_all_active_and_the_claims_read_it():
    res = run_conv(builtin="camera", kernels=["sobel-y"], max_size=64, check_torch=False)
    frac = res.sweep.kernels["sobel-y"].fraction_active
    assert frac[0] < 0.02 and frac[-1] > 0.98
    assert np.all(np.diff(frac) >= 0)
    assert np.all(np.diff(res.sweep.kernels["sobel-y"].mean_activation) >= 0)
    assert res.params["kernels"] == ["sobel-y"] and res.image.width == 64 and res.image.original_width == 512
    claim = res.claim("active_share_rises_with_bias:sobel-y")
    assert claim.holds is True and claim.evidence["largest_drop"] == 0
    assert claim.evidence["share_at_min_bias"] == frac[0] and claim.evidence["shares"] == [
        s.fraction_active for s in res.kernels[0].biases]
    assert f"{frac[-1]:.1%}" in claim.text


def test_sigmoid_has_no_silent_units(picture):
    res = run_conv(image=picture, kernels=["sobel-x"], activation="sigmoid", check_torch=False)
    claim = res.claim("fires_where_sum_exceeds_minus_b")
    assert claim.holds is None and "Not measured" in claim.text


def test_default_kernels_random_kernels_and_seed(picture):
    res = run_conv(image=picture, check_torch=False)
    assert [m.name for m in res.kernels] == ["gaussian", "sobel-x", "laplacian"]
    a = run_conv(image=picture, random=2, kernel_size=5, seed=3, check_torch=False)
    b = run_conv(image=picture, random=2, kernel_size=5, seed=3, check_torch=False)
    assert [m.name for m in a.kernels] == ["random-1", "random-2"]
    np.testing.assert_array_equal(a.kernels[1].weights, b.kernels[1].weights)
    assert a.kernels[0].weights.shape == (1, 5, 5) and a.kernels[0].border == (2, 2, 2, 2)
    np.savetxt(picture.parent / "gaussian.txt", np.eye(3))
    c = run_conv(image=picture, kernels=["gaussian"], kernel_file=picture.parent / "gaussian.txt", check_torch=False)
    assert [m.name for m in c.kernels] == ["gaussian", "gaussian (2)"]
    assert set(c.sweep.kernels) == {"gaussian", "gaussian (2)"}


def test_kernels_of_different_sizes_give_maps_of_different_sizes(picture):
    res = run_conv(image=picture, kernels=["gaussian"], random=1, kernel_size=5, padding="valid", check_torch=False)
    assert [m.output_shape for m in res.kernels] == [(18, 22), (16, 20)]
    assert res.output_shape == (18, 22) and res.kernels[0].border == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"biases": []}, "at least one bias value"),
        ({"biases": [float("nan")]}, "finite"),
        ({"biases": [1e308]}, r"`biases` must be in \[−1e6, 1e6\]"),
        ({"biases": [0.0] * (MAX_BIASES + 1)}, f"at most {MAX_BIASES}"),
        ({"random": MAX_KERNELS + 1}, f"between 0 and {MAX_KERNELS}"),
        ({"random": 10**10}, f"between 0 and {MAX_KERNELS}"),
        ({"kernel_size": MAX_KERNEL_SIZE + 1}, f"between 1 and {MAX_KERNEL_SIZE}"),
        ({"padding": MAX_PADDING + 1}, f"between 0 and {MAX_PADDING}"),
        ({"padding": "full"}, "'same' or 'valid'"),
        ({"stride": MAX_STRIDE + 1}, f"between 1 and {MAX_STRIDE}"),
        ({"max_size": MAX_IMAGE_SIDE + 1}, f"≤ {MAX_IMAGE_SIDE}"),
        ({"explain": (20, 0)}, r"position \(20, 0\) is outside the 20×24 output"),
        ({"explain": (-1, 0)}, "two integers ≥ 0"),
        ({"stride": 2}, "not supported for strided"),
        ({"kernels": ["blur"]}, "unknown kernel 'blur'"),
    ],
)
def test_bad_arguments(picture, kwargs, match):
    with pytest.raises(BiaslabError, match=match):
        run_conv(image=picture, check_torch=False, **kwargs)
