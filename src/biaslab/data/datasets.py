"""Data sets: scikit-learn's and scikit-image's bundled sets, and the user's files made ready to train."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .formats import as_float_images, encode_labels, find_idx, load_idx_dir, load_image_folder, load_npz
from ..infra.io import BiaslabError
from ..infra.validate import check_finite

__all__ = ["load_diabetes_xy", "DATASETS", "Dataset", "make_dataset", "load_dataset", "load_data_path"]


def load_diabetes_xy(feature: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's bundled diabetes set: ``X`` (one named feature or all), ``y`` (n, 1), names."""
    from sklearn.datasets import load_diabetes

    ds = load_diabetes()
    names = list(ds.feature_names)
    X = np.asarray(ds.data, dtype=np.float64)
    if feature is not None and feature != "all":
        if feature not in names:
            raise BiaslabError(
                f"unknown diabetes feature {feature!r}; choose one of {', '.join(names)} or 'all'"
            )
        j = names.index(feature)
        X, names = X[:, [j]], [feature]
    return X, np.asarray(ds.target, dtype=np.float64).reshape(-1, 1), names


#: Built-in, offline classification sets: images (digits, faces) and tables.
DATASETS = ("digits", "faces", "breast_cancer", "wine", "iris")


@dataclass
class Dataset:
    """A classification split ready for training.

    ``X_*`` are float32: images ``(N, C, H, W)``, tables ``(N, F)``; ``y_*`` are int64 class
    indices in ``0 .. n_classes - 1``. ``in_shape`` is the shape of one input.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    in_shape: tuple[int, ...]
    class_names: list[str] = field(default_factory=list)
    #: How the inputs were prepared: standardisation statistics and the added offset.
    preprocessing: dict[str, Any] = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return len(self.in_shape) == 3

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays)."""
        return {
            "name": self.name,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
            "n_classes": self.n_classes,
            "in_shape": list(self.in_shape),
            "class_names": self.class_names,
            "preprocessing": self.preprocessing,
        }


def _builtin_raw(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw ``X`` (images (N, 1, H, W) in [0, 1], tables (N, F)), labels and class names."""
    if name == "faces":
        import skimage.data

        # scikit-image documents (and we checked): the first 100 are faces, the last 100 not.
        imgs = np.asarray(skimage.data.lfw_subset(), dtype=np.float64)
        y = np.r_[np.ones(100, dtype=np.int64), np.zeros(len(imgs) - 100, dtype=np.int64)]
        return imgs[:, None], y, ["non-face", "face"]
    import sklearn.datasets as skd

    loader = {
        "digits": skd.load_digits,
        "breast_cancer": skd.load_breast_cancer,
        "wine": skd.load_wine,
        "iris": skd.load_iris,
    }[name]
    ds = loader()
    y = np.asarray(ds.target, dtype=np.int64)
    names = [str(n) for n in ds.target_names]
    if name == "digits":
        return np.asarray(ds.images, dtype=np.float64)[:, None] / 16.0, y, names
    return np.asarray(ds.data, dtype=np.float64), y, names


def _images_nchw(X: np.ndarray, source: str) -> np.ndarray:
    """(N, H, W) / (N, C, H, W) / (N, H, W, C) → (N, C, H, W); 2-D stays a table."""
    if X.ndim == 2:
        return X
    if X.ndim == 3:
        return X[:, None]
    if X.ndim == 4:
        if X.shape[1] in (1, 3, 4):
            return X
        if X.shape[-1] in (1, 3, 4):
            return np.transpose(X, (0, 3, 1, 2))
    raise BiaslabError(
        f"X in {source} has shape {X.shape}; use (N, F) tables or (N, H, W), (N, C, H, W), "
        "(N, H, W, C) images with 1, 3 or 4 channels"
    )


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split as sk_split

    idx = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and len(y) * test_fraction >= len(counts) else None
    try:
        tr, te = sk_split(idx, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise BiaslabError(f"cannot split {len(y)} samples into train and test: {exc}") from None
    return np.sort(tr), np.sort(te)


def make_dataset(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    class_names: list[str] | None = None,
    test_fraction: float = 0.25,
    seed: int = 0,
    standardize: bool = True,
    input_offset: float = 0.0,
    max_train: int | None = None,
) -> Dataset:
    """Validate, split (when no test set is given), standardise and offset arrays.

    Standardisation uses training statistics only: per feature for tables, one mean and
    standard deviation over all pixels for images (so images stay images). ``input_offset``
    is added to every input afterwards — un-centred data, where a bias matters most.
    ``max_train`` keeps a stratified subset of that many training samples.
    """
    if not 0.0 < test_fraction < 1.0:
        raise BiaslabError(f"test fraction must be in (0, 1) (got {test_fraction})")
    if not np.isfinite(input_offset):
        raise BiaslabError(f"`input_offset` must be a finite number (got {input_offset})")
    X = _images_nchw(np.asarray(X), name)
    if len(X) != len(y):
        raise BiaslabError(f"labels do not match inputs in {name}: {len(X)} samples but {len(y)} labels")
    if X.dtype.kind not in "biuf":
        raise BiaslabError(f"X in {name} must be numeric (got dtype {X.dtype})")
    X = as_float_images(X) if X.ndim == 4 else X.astype(np.float64)
    check_finite(f"inputs of {name}", X)
    if X_test is None:
        y, names = encode_labels(y, name)
        tr, te = _stratified_split(y, test_fraction, seed)
        X, X_test, y, y_test = X[tr], X[te], y[tr], y[te]
    else:
        X_test = _images_nchw(np.asarray(X_test), f"{name} (test)")
        if len(X_test) != len(y_test):
            raise BiaslabError(
                f"test labels do not match test inputs in {name}: {len(X_test)} samples, {len(y_test)} labels"
            )
        if X_test.shape[1:] != X.shape[1:]:
            raise BiaslabError(f"test inputs of {name} have shape {X_test.shape[1:]}, training {X.shape[1:]}")
        X_test = as_float_images(X_test) if X_test.ndim == 4 else X_test.astype(np.float64)
        check_finite(f"test inputs of {name}", X_test)
        codes, names = encode_labels(np.concatenate([np.asarray(y).reshape(-1), np.asarray(y_test).reshape(-1)]), name)
        y, y_test = codes[: len(X)], codes[len(X):]
    if max_train is not None:
        if max_train < 2:
            raise BiaslabError(f"`max_train` must be at least 2 (got {max_train})")
        if max_train < len(y):
            keep, _ = _stratified_split(y, 1.0 - max_train / len(y), seed)
            X, y = X[keep], y[keep]
    n_classes = len(class_names or names)
    if y.max() >= n_classes:
        raise BiaslabError(f"{name}: class_names lists {n_classes} classes but labels go up to {y.max()}")
    prep: dict[str, Any] = {"standardize": bool(standardize), "input_offset": float(input_offset)}
    if standardize:
        axis = None if X.ndim == 4 else 0
        mean, std = X.mean(axis=axis), X.std(axis=axis)
        std = np.where(std > 0, std, 1.0)
        X, X_test = (X - mean) / std, (X_test - mean) / std
        prep["mean"] = float(mean) if axis is None else None
        prep["std"] = float(std) if axis is None else None
    X, X_test = X + input_offset, X_test + input_offset
    return Dataset(
        name=name,
        X_train=X.astype(np.float32),
        y_train=y.astype(np.int64),
        X_test=X_test.astype(np.float32),
        y_test=y_test.astype(np.int64),
        n_classes=n_classes,
        in_shape=tuple(int(s) for s in X.shape[1:]),
        class_names=list(class_names or names),
        preprocessing=prep,
    )


def load_dataset(
    name: str,
    test_fraction: float = 0.25,
    seed: int = 0,
    standardize: bool = True,
    input_offset: float = 0.0,
    max_train: int | None = None,
) -> Dataset:
    """A built-in classification set (``DATASETS``), split, standardised and offset.

    ``digits``: scikit-learn's 8×8 digits (1×8×8, 10 classes); ``faces``: scikit-image's LFW
    subset (1×25×25, face vs non-face); ``breast_cancer``, ``wine``, ``iris``: tables.
    Images are scaled to [0, 1] before standardisation. See :func:`make_dataset`.
    """
    if name not in DATASETS:
        raise BiaslabError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or give the path of your own data"
        )
    X, y, names = _builtin_raw(name)
    return make_dataset(name, X, y, class_names=names, test_fraction=test_fraction, seed=seed,
                        standardize=standardize, input_offset=input_offset, max_train=max_train)


def load_data_path(
    path: str | Path,
    test_fraction: float = 0.25,
    seed: int = 0,
    standardize: bool = True,
    input_offset: float = 0.0,
    max_train: int | None = None,
) -> Dataset:
    """The user's own data: an MNIST IDX directory, an image folder or an ``.npz`` file.

    An ``.npz`` holds ``X`` and ``y`` (and optionally ``X_test`` and ``y_test``); the IDX
    format uses the ``t10k-`` files as the test set when present. Otherwise a stratified
    ``test_fraction`` of the data is held out.
    """
    p = Path(path)
    test: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    names = None
    if not p.exists():
        raise BiaslabError(f"data path {p} does not exist; pass an MNIST IDX directory, an image folder or an .npz file")
    if not (p.is_file() or p.is_dir()):
        raise BiaslabError(f"data path {p} is neither a file nor a directory; pass an MNIST IDX directory, "
                           "an image folder or an .npz file")
    if p.is_file():
        if p.suffix.lower() != ".npz":
            raise BiaslabError(
                f"data path {p} is not a supported format; use an .npz file with X and y, an MNIST IDX "
                "directory or an image folder with one subfolder per class"
            )
        X, y, *test = load_npz(p)
    elif find_idx(p, "train", "images") or find_idx(p, "train", "labels"):
        X, y, *test = load_idx_dir(p)
        names = [str(c) for c in np.unique(y if test[1] is None else np.r_[y, test[1]])]
    else:
        X, y, names = load_image_folder(p)
    return make_dataset(p.name or str(p), X, y, test[0], test[1], class_names=names,
                        test_fraction=test_fraction, seed=seed, standardize=standardize,
                        input_offset=input_offset, max_train=max_train)
