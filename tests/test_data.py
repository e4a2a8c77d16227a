import gzip

import numpy as np
import pytest
from PIL import Image

from biaslab.data.datasets import DATASETS, load_data_path, load_dataset, make_dataset
from biaslab.data.formats import load_idx_dir, load_image_folder
from biaslab.experiments.ablate.shifts import SHIFTS, apply_shift
from biaslab.infra.io import BiaslabError


@pytest.mark.parametrize("name,shape,k", [
    ("digits", (1, 8, 8), 10), ("faces", (1, 25, 25), 2), ("breast_cancer", (30,), 2),
    ("wine", (13,), 3), ("iris", (4,), 3),
])
def test_builtin_datasets(name, shape, k):
    ds = load_dataset(name)
    assert ds.in_shape == shape and ds.n_classes == k and len(ds.class_names) == k
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.X_train.shape[1:] == shape and ds.X_test.shape[1:] == shape
    assert set(np.unique(ds.y_test)) == set(range(k))  # stratified split keeps every class
    # standardised with training statistics
    axis = None if ds.is_image else 0
    np.testing.assert_allclose(ds.X_train.mean(axis=axis), 0, atol=1e-5)
    np.testing.assert_allclose(ds.X_train.std(axis=axis), 1, atol=1e-4)
    assert name in DATASETS


def test_faces_are_the_first_hundred_lfw_images():
    import skimage.data

    raw = skimage.data.lfw_subset()
    ds = load_dataset("faces", standardize=False, test_fraction=0.5)
    assert ds.class_names == ["non-face", "face"]
    assert (ds.y_train == 1).sum() + (ds.y_test == 1).sum() == 100
    # every training image labelled "face" is one of the first 100 raw images
    faces = raw[:100].reshape(100, -1).astype(np.float32)
    for img in ds.X_train[ds.y_train == 1][:5]:
        assert np.abs(faces - img.reshape(1, -1)).sum(axis=1).min() < 1e-5


def test_no_standardize_and_offset():
    raw = load_dataset("digits", standardize=False)
    assert raw.X_train.min() == 0.0 and raw.X_train.max() == 1.0  # 0..16 scaled to [0, 1]
    off = load_dataset("digits", standardize=False, input_offset=3.0)
    np.testing.assert_allclose(off.X_train, raw.X_train + 3.0)
    std = load_dataset("digits", input_offset=-2.0)
    assert std.X_train.mean() == pytest.approx(-2.0, abs=1e-5)
    assert std.preprocessing["input_offset"] == -2.0


def test_max_train_and_errors():
    ds = load_dataset("digits", max_train=100)
    assert len(ds.y_train) == 100 and len(np.unique(ds.y_train)) == 10
    with pytest.raises(BiaslabError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(BiaslabError, match="`input_offset`"):
        load_dataset("iris", input_offset=float("nan"))


def _write_idx(path, arr, magic_type=0x08):
    header = bytes([0, 0, magic_type, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = header + arr.astype(">u1").tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(tmp_path, gz):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    Xtr, ytr = rng.integers(0, 256, (30, 6, 5), dtype=np.uint8), np.arange(30) % 3
    Xte, yte = rng.integers(0, 256, (9, 6, 5), dtype=np.uint8), np.arange(9) % 3
    _write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", Xtr)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", ytr)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{ext}", Xte)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{ext}", yte)
    X, y, X2, y2 = load_idx_dir(tmp_path)
    np.testing.assert_allclose(X[:, 0], Xtr / 255.0)
    assert np.array_equal(y, ytr) and np.array_equal(y2, yte) and X2.shape == (9, 1, 6, 5)
    ds = load_data_path(tmp_path, standardize=False)
    assert ds.in_shape == (1, 6, 5) and ds.n_classes == 3 and len(ds.y_test) == 9  # t10k is the test set
    np.testing.assert_allclose(ds.X_test[:, 0], Xte / 255.0, atol=1e-6)


def test_idx_errors(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8))
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(BiaslabError, match="labels do not match images.*5 images.*4 labels"):
        load_idx_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x12\x34\x08\x01junk")
    with pytest.raises(BiaslabError, match="not an IDX file"):
        load_idx_dir(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-7])
    with pytest.raises(BiaslabError, match="truncated"):
        load_idx_dir(tmp_path)


def _write_folder(root, sizes=((7, 9), (7, 9)), mode="L", n=4):
    rng = np.random.default_rng(1)
    for cls, size in zip(("cat", "dog"), sizes):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / cls / f"{i}.png")


def test_image_folder(tmp_path):
    _write_folder(tmp_path)
    X, y, names = load_image_folder(tmp_path)
    assert X.shape == (8, 1, 9, 7) and names == ["cat", "dog"] and list(y) == [0] * 4 + [1] * 4
    first = np.asarray(Image.open(tmp_path / "cat" / "0.png"), dtype=np.float64) / 255
    np.testing.assert_allclose(X[0, 0], first)
    ds = load_data_path(tmp_path)
    assert ds.in_shape == (1, 9, 7) and ds.class_names == ["cat", "dog"] and len(ds.y_test) == 2


def test_colour_image_folder_and_size_mismatch(tmp_path):
    _write_folder(tmp_path / "rgb", mode="RGB")
    assert load_image_folder(tmp_path / "rgb")[0].shape == (8, 3, 9, 7)
    _write_folder(tmp_path / "mixed", sizes=((7, 9), (8, 9)))
    with pytest.raises(BiaslabError, match="must share one size.*7x9.*8x9"):
        load_image_folder(tmp_path / "mixed")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(BiaslabError, match="not an image folder"):
        load_data_path(tmp_path / "empty")


def test_npz(tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(40, 3, 6, 6)), np.repeat(["a", "b"], 20)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_data_path(tmp_path / "d.npz")
    assert ds.in_shape == (3, 6, 6) and ds.class_names == ["a", "b"] and len(ds.y_train) == 30
    np.savez(tmp_path / "hwc.npz", X=np.moveaxis(X, 1, -1), y=y)
    assert load_data_path(tmp_path / "hwc.npz").in_shape == (3, 6, 6)
    np.savez(tmp_path / "split.npz", X=X[:30], y=y[:30], X_test=X[30:], y_test=y[30:])
    assert len(load_data_path(tmp_path / "split.npz").y_test) == 10
    np.savez(tmp_path / "tab.npz", X=rng.normal(size=(20, 5)), y=np.arange(20) % 2)
    assert load_data_path(tmp_path / "tab.npz").in_shape == (5,)


@pytest.mark.parametrize("arrays,match", [
    ({"X": np.zeros((10, 4)), "y": np.zeros(9)}, "labels do not match inputs.*10 samples but 9 labels"),
    ({"X": np.zeros((10, 4))}, "arrays named 'X' and 'y'"),
    ({"X": np.full((10, 4), np.nan), "y": np.arange(10) % 2}, "NaN"),
    ({"X": np.zeros((10, 4)), "y": np.zeros(10)}, "only one class"),
    ({"X": np.zeros((10, 4)), "y": np.arange(10) * 0.5}, "not whole numbers"),
    ({"X": np.zeros((10, 2, 5, 6, 7)), "y": np.arange(10) % 2}, "has shape"),
])
def test_npz_errors(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BiaslabError, match=match):
        load_data_path(tmp_path / "bad.npz")


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(BiaslabError, match="pickled objects are refused"):
        load_data_path(tmp_path / "obj.npz")


def test_unknown_paths(tmp_path):
    with pytest.raises(BiaslabError, match="does not exist"):
        load_data_path(tmp_path / "nope")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(BiaslabError, match="not a supported format"):
        load_data_path(tmp_path / "x.csv")


def test_make_dataset_test_shape_mismatch():
    with pytest.raises(BiaslabError, match="test inputs"):
        make_dataset("t", np.zeros((6, 4)), np.arange(6) % 2, np.zeros((3, 5)), np.arange(3) % 2)


def test_shifts():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(apply_shift(X, "brightness", 1.5), X + 1.5)
    low = apply_shift(X, "contrast", 0.5)
    np.testing.assert_allclose(low.mean(axis=(1, 2, 3)), X.mean(axis=(1, 2, 3)), atol=1e-6)  # mean kept
    np.testing.assert_allclose(low.std(axis=(1, 2, 3)), 0.5 * X.std(axis=(1, 2, 3)), rtol=1e-5)
    n1, n2 = apply_shift(X, "noise", 0.3, seed=1), apply_shift(X, "noise", 0.3, seed=1)
    assert np.array_equal(n1, n2) and not np.array_equal(n1, X)
    assert np.array_equal(apply_shift(X, "noise", 0.0), X)
    for kind, grid in SHIFTS.items():  # first strength of each grid is "no shift"
        np.testing.assert_allclose(apply_shift(X, kind, grid[0]), X, atol=1e-6)
    with pytest.raises(BiaslabError, match="unknown shift"):
        apply_shift(X, "blur", 1.0)
