"""Readers for the user's own files: CSV columns, MNIST IDX directories, image folders, ``.npz``.

Each reader returns plain NumPy arrays and raises :class:`BiaslabError` with the fix for a
file it cannot use. Nothing here unpickles: ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .io import BiaslabError
from .validate import check_finite

__all__ = ["load_csv_columns", "load_idx_dir", "find_idx", "load_image_folder", "load_npz", "as_float_images", "encode_labels"]


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


def as_float_images(X: np.ndarray) -> np.ndarray:
    """Integer images → [0, 1] by their dtype's range; float images unchanged."""
    if np.issubdtype(X.dtype, np.integer):
        return X.astype(np.float64) / float(np.iinfo(X.dtype).max)
    return X.astype(np.float64)


def encode_labels(y: np.ndarray, source: str) -> tuple[np.ndarray, list[str]]:
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


def find_idx(directory: Path, split: str, kind: str) -> Path | None:
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
        ip, lp = find_idx(d, split, "images"), find_idx(d, split, "labels")
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
        pairs.append((as_float_images(X)[:, None], y.astype(np.int64)))
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
    y, names = encode_labels(np.array(labels), str(d))
    return np.stack(imgs), y, names


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
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
