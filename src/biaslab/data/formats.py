"""Readers for the user's own files: CSV columns, MNIST IDX directories, image folders, ``.npz``.

Each reader returns plain NumPy arrays and raises :class:`BiaslabError` with the fix for a
file it cannot use. Sizes are checked against the file's header (and the header against the
file's size) before anything is allocated or decompressed. Nothing here unpickles: ``.npy``
and ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..infra.io import BiaslabError
from ..infra.validate import check_allocation, check_finite, readable_file

__all__ = [
    "MAX_CSV_ROWS", "MIN_CSV_ROWS", "load_csv_columns", "load_idx_dir", "find_idx", "load_image_folder",
    "load_npy", "load_npz", "as_float_images", "encode_labels",
]

#: A CSV for ``regression --csv`` needs at least this many data rows (a line and a residual trend).
MIN_CSV_ROWS = 3
#: ... and at most this many (the data and its figure are held in memory).
MAX_CSV_ROWS = 1_000_000


def load_csv_columns(path: str | Path, x_columns: list[str], y_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Read numeric columns from a CSV with a header row.

    Returns ``X`` of shape (n, len(x_columns)) and ``y`` of shape (n, 1), both float64.
    Raises :class:`BiaslabError` for a missing or empty file, a header that names a column
    twice, fewer than :data:`MIN_CSV_ROWS` or more than :data:`MAX_CSV_ROWS` data rows, and
    cells that are not finite numbers.
    """
    p = readable_file("csv", path, "CSV file with a header row")
    if not x_columns or not y_column:
        raise BiaslabError("`csv` needs `x_columns` (one or more input columns) and `y_column`")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            rows = []
            for row in reader:
                if len(rows) == MAX_CSV_ROWS:
                    raise BiaslabError(f"{p} has more than {MAX_CSV_ROWS:,} data rows; use a sample of it")
                if any(cell.strip() for cell in row):
                    rows.append(row)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BiaslabError(f"cannot read {p} as CSV: {exc}") from None
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise BiaslabError(f"{p} names column(s) {', '.join(map(repr, twice))} more than once; rename them")
    wanted = [*x_columns, y_column]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise BiaslabError(
            f"column(s) {', '.join(map(repr, missing))} not in {p}; available: {', '.join(header)}"
        )
    if len(rows) < MIN_CSV_ROWS:
        raise BiaslabError(f"{p} has {len(rows)} data row(s); a fit needs at least {MIN_CSV_ROWS}")
    data = np.empty((len(rows), len(wanted)))
    for j, col in enumerate(wanted):
        k = header.index(col)
        for i, row in enumerate(rows):
            cell = row[k].strip() if k < len(row) else ""
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


def _whole_labels(y: np.ndarray, source: str) -> np.ndarray:
    """Float labels → int64, refused unless finite whole numbers (NaN must not become a class)."""
    if y.dtype.kind == "f":
        check_finite(f"labels in {source}", y)
        if not np.all(y == np.round(y)):
            raise BiaslabError(f"labels in {source} are not whole numbers; classification needs class labels")
        return y.astype(np.int64)
    return y


def encode_labels(y: np.ndarray, source: str) -> tuple[np.ndarray, list[str]]:
    """Labels of any type → class indices 0..K-1 and the class names; at least two classes."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise BiaslabError(f"labels in {source} must be one class per sample (got shape {y.shape})")
    if len(y) == 0:
        raise BiaslabError(f"{source} holds no samples")
    y = _whole_labels(y, source)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise BiaslabError(f"{source} has only one class ({classes[0]!r}); a classifier needs at least two")
    return codes.astype(np.int64), [str(c) for c in classes]


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _gzip_size(path: Path) -> int:
    """The uncompressed size modulo 2**32 that a gzip file records in its last four bytes."""
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (MNIST format), gzip-compressed or not.

    The header's shape is checked against :data:`~biaslab.infra.validate.MAX_ARRAY_BYTES` and
    against the file's size (for gzip: the size its trailer records) before the data are read;
    a gzip file is decompressed as a stream, never past what the header promised.
    """
    import gzip
    import zlib

    gz = path.suffix == ".gz"
    try:
        with (gzip.open if gz else open)(path, "rb") as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES or magic[3] < 1:
                raise BiaslabError(f"{path} is not an IDX file (bad magic number); expected MNIST-format data")
            ndim, dtype = magic[3], np.dtype(_IDX_DTYPES[magic[2]])
            dims = fh.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise BiaslabError(f"IDX file {path} is truncated inside its header")
            shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
            if shape[0] == 0:
                raise BiaslabError(f"IDX file {path} holds zero items; use a file with data")
            expected = check_allocation(f"IDX file {path}", shape, dtype.itemsize)
            offset = 4 + 4 * ndim
            stored = _gzip_size(path) if gz else path.stat().st_size
            if stored != ((offset + expected) % 2**32 if gz else offset + expected):
                raise BiaslabError(
                    f"IDX file {path} is truncated or corrupt: its header says shape {shape} "
                    f"({offset + expected} bytes) but the file holds {stored}"
                )
            raw = fh.read(expected + 1)  # one byte more than promised shows a longer stream
    except (OSError, EOFError, zlib.error) as exc:
        raise BiaslabError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) != expected:
        raise BiaslabError(
            f"IDX file {path} is truncated or corrupt: header says shape {shape} "
            f"({expected} bytes of data) but it holds {len(raw)}{' or more' if len(raw) > expected else ''}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


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
        pairs.append((as_float_images(X)[:, None], _whole_labels(y, lp.name).astype(np.int64)))
    if pairs[0][0] is None:
        raise BiaslabError(f"{d} has no train-images-idx3-ubyte[.gz] / train-labels-idx1-ubyte[.gz] pair")
    (Xtr, ytr), (Xte, yte) = pairs
    return Xtr, ytr, Xte, yte


def load_image_folder(directory: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One subfolder per class → images (N, C, H, W) in [0, 1], labels, class names.

    Images are grey unless any of them is colour; all must share one size.
    """
    from .images import IMAGE_SUFFIXES, load_image, open_image

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
    total = 0
    for _, f in files:
        with open_image(f) as im:  # headers only: sizes are checked before anything is decoded
            color |= im.mode not in ("L", "1", "I", "I;16", "F", "LA")
            total += im.size[0] * im.size[1]
    check_allocation(f"image folder {d}", (total, 3 if color else 1), 8)
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


def _check_npy_header(fh: BinaryIO, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Read an ``.npy`` header and refuse object arrays and arrays over the size limit, before loading."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
        if version not in readers:
            raise BiaslabError(f"{name} uses .npy format version {version}; save it with numpy.save")
        shape, _, dtype = readers[version](fh)
    except ValueError as exc:
        raise BiaslabError(f"{name} is not a valid .npy array: {exc}") from None
    if dtype.hasobject:
        raise BiaslabError(f"{name} holds Python objects (dtype {dtype}); pickled objects are refused")
    check_allocation(name, shape, dtype.itemsize)
    return shape, dtype


def load_npy(path: str | Path, name: str) -> np.ndarray:
    """A ``.npy`` array, its header checked (size, no objects, not truncated) before it is read."""
    p = readable_file(name, path, ".npy file")
    try:
        with open(p, "rb") as fh:
            shape, dtype = _check_npy_header(fh, f"{name} {p}")
            if p.stat().st_size - fh.tell() < int(np.prod(shape)) * dtype.itemsize:
                raise BiaslabError(f"{name} {p} is truncated: its header says shape {shape} of {dtype}")
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except BiaslabError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise BiaslabError(f"cannot read {name} {p} as .npy: {exc}") from None


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``X``, ``y`` (and optionally ``X_test``, ``y_test``) from an ``.npz``; each header checked first."""
    p = readable_file("data path", path, ".npz file with arrays X and y")
    try:
        with zipfile.ZipFile(p) as zf:
            for member in zf.namelist():
                if member.endswith(".npy"):
                    with zf.open(member) as fh:
                        _check_npy_header(fh, f"array {member[:-4]!r} in {p}")
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except BiaslabError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise BiaslabError(f"cannot read {p} as .npz (pickled objects are refused): {exc}") from None
    if "X" not in arrays or "y" not in arrays:
        raise BiaslabError(f"{p} must hold arrays named 'X' and 'y' (it has {', '.join(arrays) or 'none'})")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise BiaslabError(f"{p} has only one of X_test / y_test; give both or neither")
    return arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test")
