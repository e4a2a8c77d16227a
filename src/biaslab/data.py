"""Data sets: scikit-learn's bundled sets and loaders for the user's own files."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import BiaslabError

__all__ = [
    "load_csv_columns",
    "load_diabetes_xy",
    "check_finite",
    "DATASETS",
    "Dataset",
    "make_dataset",
    "load_dataset",
    "load_data_path",
    "load_idx_dir",
    "load_image_folder",
    "SHIFTS",
    "apply_shift",
]


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Raise :class:`BiaslabError` if ``values`` holds NaN or infinity."""
    values = np.asarray(values)
    if values.size and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise BiaslabError(f"{name} contains {bad} NaN or infinite value(s); clean the data first")
    return values


def load_csv_columns(path: str | Path, x_columns: list[str], y_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Read numeric columns from a CSV with a header row.

    Returns ``X`` of shape (n, len(x_columns)) and ``y`` of shape (n, 1), both float64.
    """
    p = Path(path)
    if not p.is_file():
        raise BiaslabError(f"CSV file {p} does not exist; pass --csv PATH to an existing file")
    if not x_columns or not y_column:
        raise BiaslabError("--csv needs --x COLUMN[,COLUMN...] and --y COLUMN")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BiaslabError(f"cannot read {p} as CSV: {exc}") from None
    wanted = [*x_columns, y_column]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise BiaslabError(
            f"column(s) {', '.join(map(repr, missing))} not in {p}; available: {', '.join(header)}"
        )
    if not rows:
        raise BiaslabError(f"{p} has a header but no data rows")
    data = np.empty((len(rows), len(wanted)))
    for j, col in enumerate(wanted):
        for i, row in enumerate(rows):
            cell = (row.get(col) or "").strip()
            try:
                data[i, j] = float(cell)
            except ValueError:
                raise BiaslabError(
                    f"column {col!r} of {p} is not numeric (row {i + 2}: {cell!r}); "
                    "choose numeric columns"
                ) from None
    check_finite(f"{p} columns {', '.join(wanted)}", data)
    return data[:, :-1], data[:, -1:]


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


# --------------------------------------------------------------------------------------
# Classification data sets for ``biaslab ablate`` (and anything that trains a classifier)
# --------------------------------------------------------------------------------------

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


def _as_float_images(X: np.ndarray) -> np.ndarray:
    """Integer images → [0, 1] by their dtype's range; float images unchanged."""
    if np.issubdtype(X.dtype, np.integer):
        return X.astype(np.float64) / float(np.iinfo(X.dtype).max)
    return X.astype(np.float64)


def _encode_labels(y: np.ndarray, source: str) -> tuple[np.ndarray, list[str]]:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise BiaslabError(f"labels in {source} must be one class per sample (got shape {y.shape})")
    if y.dtype.kind == "f":
        check_finite(f"labels in {source}", y)
        if not np.all(y == np.round(y)):
            raise BiaslabError(f"labels in {source} are not whole numbers; classification needs class labels")
        y = y.astype(np.int64)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise BiaslabError(f"{source} has only one class ({classes[0]!r}); a classifier needs at least two")
    return codes.astype(np.int64), [str(c) for c in classes]


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


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (MNIST format), gzip-compressed or not."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise BiaslabError(f"cannot read IDX file {path}: {exc}") from None
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes or raw[3] < 1:
        raise BiaslabError(f"{path} is not an IDX file (bad magic number); expected MNIST-format data")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise BiaslabError(
            f"IDX file {path} is truncated or corrupt: header says shape {shape} "
            f"({expected} bytes) but it holds {len(raw) - offset}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)


def _find_idx(directory: Path, split: str, kind: str) -> Path | None:
    # train-images-idx3-ubyte, train-images.idx3-ubyte, t10k-labels-idx1-ubyte.gz, ...
    ndim = "3" if kind == "images" else "1"
    hits = sorted(p for p in directory.glob(f"{split}-{kind}*idx{ndim}*") if p.is_file())
    return hits[0] if hits else None


def load_idx_dir(directory: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """MNIST-format directory → ``X_train, y_train, X_test, y_test`` (test may be None).

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` and the ``t10k-``
    pair, each optionally ``.gz``. Images come back as (N, 1, H, W) in [0, 1].
    """
    d = Path(directory)
    pairs = []
    for split in ("train", "t10k"):
        ip, lp = _find_idx(d, split, "images"), _find_idx(d, split, "labels")
        if (ip is None) != (lp is None):
            have, miss = (ip, "labels") if lp is None else (lp, "images")
            raise BiaslabError(f"{d} has {have.name} but no matching {split}-{miss} IDX file")
        if ip is None:
            pairs.append((None, None))
            continue
        X, y = _read_idx(ip), _read_idx(lp)
        if X.ndim != 3 or y.ndim != 1:
            raise BiaslabError(f"{ip.name} must hold (N, H, W) images and {lp.name} (N,) labels")
        if len(X) != len(y):
            raise BiaslabError(
                f"labels do not match images in {d}: {ip.name} has {len(X)} images, "
                f"{lp.name} has {len(y)} labels"
            )
        pairs.append((_as_float_images(X)[:, None], y.astype(np.int64)))
    if pairs[0][0] is None:
        raise BiaslabError(f"{d} has no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] pair")
    (Xtr, ytr), (Xte, yte) = pairs
    return Xtr, ytr, Xte, yte


def load_image_folder(directory: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One subfolder per class → images (N, C, H, W) in [0, 1], labels, class names.

    Images are grey unless any of them is colour; all must share one size.
    """
    from PIL import Image

    from .images import IMAGE_SUFFIXES, load_image

    d = Path(directory)
    classes = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [
        (c.name, f) for c in classes for f in sorted(c.iterdir())
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if len(classes) < 2 or not files:
        raise BiaslabError(
            f"{d} is not an image folder: it needs one subfolder per class (at least two) holding "
            f"image files ({', '.join(IMAGE_SUFFIXES)})"
        )
    color = False
    for _, f in files:
        with Image.open(f) as im:
            color |= im.mode not in ("L", "1", "I", "I;16", "F", "LA")
    imgs, labels, sizes = [], [], {}
    for cls, f in files:
        img = load_image(f, color=color)
        sizes.setdefault(img.shape[:2], f)
        if len(sizes) > 1:
            (s0, f0), (s1, f1) = list(sizes.items())[:2]
            raise BiaslabError(
                f"images in {d} must share one size: {f0.name} is {s0[1]}x{s0[0]} but {f1.name} is "
                f"{s1[1]}x{s1[0]}; resize them first"
            )
        imgs.append(np.transpose(img, (2, 0, 1)) if color else img[None])
        labels.append(cls)
    y, names = _encode_labels(np.array(labels), str(d))
    return np.stack(imgs), y, names


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise BiaslabError(f"cannot read {path} as .npz (pickled objects are refused): {exc}") from None
    if "X" not in arrays or "y" not in arrays:
        raise BiaslabError(f"{path} must hold arrays named 'X' and 'y' (it has {', '.join(arrays) or 'none'})")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise BiaslabError(f"{path} has only one of X_test / y_test; give both or neither")
    return arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test")


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
        raise BiaslabError(f"--input-offset must be a finite number (got {input_offset})")
    X = _images_nchw(np.asarray(X), name)
    if len(X) != len(y):
        raise BiaslabError(f"labels do not match inputs in {name}: {len(X)} samples but {len(y)} labels")
    if X.dtype.kind not in "biuf":
        raise BiaslabError(f"X in {name} must be numeric (got dtype {X.dtype})")
    X = _as_float_images(X) if X.ndim == 4 else X.astype(np.float64)
    check_finite(f"inputs of {name}", X)
    if X_test is None:
        y, names = _encode_labels(y, name)
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
        X_test = _as_float_images(X_test) if X_test.ndim == 4 else X_test.astype(np.float64)
        check_finite(f"test inputs of {name}", X_test)
        codes, names = _encode_labels(np.concatenate([np.asarray(y).reshape(-1), np.asarray(y_test).reshape(-1)]), name)
        y, y_test = codes[: len(X)], codes[len(X):]
    if max_train is not None:
        if max_train < 2:
            raise BiaslabError(f"--max-train must be at least 2 (got {max_train})")
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
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or pass --data PATH"
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
        raise BiaslabError(f"--data {p} does not exist; pass an MNIST IDX directory, an image folder or an .npz file")
    if p.is_file():
        if p.suffix.lower() != ".npz":
            raise BiaslabError(
                f"--data {p} is not a supported format; use an .npz file with X and y, an MNIST IDX "
                "directory or an image folder with one subfolder per class"
            )
        X, y, *test = _load_npz(p)
    elif _find_idx(p, "train", "images") or _find_idx(p, "train", "labels"):
        X, y, *test = load_idx_dir(p)
        names = [str(c) for c in np.unique(y if test[1] is None else np.r_[y, test[1]])]
    else:
        X, y, names = load_image_folder(p)
    return make_dataset(p.name or str(p), X, y, test[0], test[1], class_names=names,
                        test_fraction=test_fraction, seed=seed, standardize=standardize,
                        input_offset=input_offset, max_train=max_train)


#: Distribution shifts applied to test inputs (in the units the model sees: standardised).
SHIFTS = {
    "brightness": (0.0, 0.5, 1.0, 1.5, 2.0),
    "contrast": (1.0, 0.75, 0.5, 0.25, 0.1),
    "noise": (0.0, 0.25, 0.5, 0.75, 1.0),
}


def apply_shift(X: np.ndarray, kind: str, strength: float, seed: int = 0) -> np.ndarray:
    """Shift test inputs ``X`` (images (N, C, H, W) or tables (N, F)).

    ``brightness`` adds ``strength`` to every input; ``contrast`` scales the deviation from
    the mean by ``strength`` (each image's own mean; each column's mean for tables);
    ``noise`` adds Gaussian noise of standard deviation ``strength`` (deterministic for ``seed``).
    """
    X = np.asarray(X, dtype=np.float32)
    if kind == "brightness":
        return X + np.float32(strength)
    if kind == "contrast":
        axes = tuple(range(1, X.ndim)) if X.ndim == 4 else (0,)
        mean = X.mean(axis=axes, keepdims=True)
        return mean + np.float32(strength) * (X - mean)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return X + rng.normal(0.0, strength, size=X.shape).astype(np.float32)
    raise BiaslabError(f"unknown shift {kind!r}; choose one of {', '.join(SHIFTS)}")
