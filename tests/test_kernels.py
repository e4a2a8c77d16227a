import numpy as np
import pytest

from biaslab.infra.io import BiaslabError
from biaslab.math.kernels import KERNELS, load_kernel_file, named_kernel, random_kernels, spread_over_channels


def test_bank_has_the_issue_kernels_and_their_textbook_properties():
    assert set(KERNELS) == {"sobel-x", "sobel-y", "laplacian", "gaussian", "sharpen", "emboss"}
    assert KERNELS["gaussian"].sum() == pytest.approx(1.0)  # blurring keeps the brightness
    assert KERNELS["sharpen"].sum() == pytest.approx(1.0)
    for name in ("sobel-x", "sobel-y", "laplacian"):  # edge detectors ignore flat regions
        assert KERNELS[name].sum() == 0.0
    np.testing.assert_array_equal(KERNELS["sobel-y"], KERNELS["sobel-x"].T)


def test_spread_over_channels_keeps_the_response_on_grey_images():
    k = named_kernel("laplacian", channels=3)
    assert k.shape == (3, 3, 3)
    np.testing.assert_allclose(k.sum(0), KERNELS["laplacian"])
    grey = np.random.default_rng(0).random((5, 5))
    patch = np.stack([grey[:3, :3]] * 3)
    assert np.sum(patch * k) == pytest.approx(np.sum(grey[:3, :3] * KERNELS["laplacian"]))
    with pytest.raises(BiaslabError, match=r"\(kH, kW\) or \(3, kH, kW\), got \(2, 3, 3\)"):
        spread_over_channels(np.zeros((2, 3, 3)), 3)
    with pytest.raises(BiaslabError, match="unknown kernel 'blur'"):
        named_kernel("blur")


def test_kernel_files(tmp_path):
    np.savetxt(tmp_path / "k.txt", KERNELS["emboss"])
    [k] = load_kernel_file(tmp_path / "k.txt")
    np.testing.assert_allclose(k[0], KERNELS["emboss"])
    bank = np.random.default_rng(1).standard_normal((4, 3, 5, 5))
    np.save(tmp_path / "bank.npy", bank)
    loaded = load_kernel_file(tmp_path / "bank.npy", channels=3)
    assert len(loaded) == 4
    np.testing.assert_array_equal(loaded[2], bank[2])


@pytest.mark.parametrize(
    "name, content, channels, match",
    [
        ("wrong.npy", np.zeros((2, 2, 3, 3)), 1, r"has shape \(2, 2, 3, 3\) but the image has 1 channel"),
        ("wrong3.npy", np.zeros((2, 3, 3)), 1, r"\(kH, kW\) or \(1, kH, kW\), got \(2, 3, 3\)"),
        ("flat.npy", np.zeros(5), 1, r"has shape \(5,\)"),
        ("nan.npy", np.full((3, 3), np.nan), 1, "NaN"),
        ("text.npy", np.array([["a", "b"]]), 1, "real numbers"),
        ("k.csv", None, 1, r"must end in \.npy or \.txt"),
        ("missing.npy", None, 1, "does not exist"),
    ],
)
def test_bad_kernel_files(tmp_path, name, content, channels, match):
    path = tmp_path / name
    if content is not None:
        np.save(path, content)
    elif name != "missing.npy":
        path.write_text("1,2\n3,4\n")
    with pytest.raises(BiaslabError, match=match):
        load_kernel_file(path, channels)


def test_garbage_files_are_refused_without_unpickling(tmp_path):
    (tmp_path / "bad.txt").write_text("1 2 3\n4 five 6\n")
    with pytest.raises(BiaslabError, match="cannot read kernel file"):
        load_kernel_file(tmp_path / "bad.txt")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BiaslabError, match="holds Python objects .* pickled objects are refused"):
        load_kernel_file(tmp_path / "obj.npy")


def test_random_kernels_are_seeded_and_he_scaled():
    a = random_kernels(200, 3, 5, np.random.default_rng(7))
    b = random_kernels(200, 3, 5, np.random.default_rng(7))
    assert len(a) == 200 and a[0].shape == (3, 5, 5)
    np.testing.assert_array_equal(a[5], b[5])
    assert np.std(a) == pytest.approx(np.sqrt(2 / 75), rel=0.05)
    with pytest.raises(BiaslabError, match="`random` must be ≥ 0"):
        random_kernels(-1, 1, 3, np.random.default_rng(0))
    with pytest.raises(BiaslabError, match="`kernel_size` must be ≥ 1"):
        random_kernels(1, 1, 0, np.random.default_rng(0))
