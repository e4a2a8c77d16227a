"""Data sets: scikit-learn's bundled sets and loaders for the user's own files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .io import BiaslabError

__all__ = ["load_csv_columns", "load_diabetes_xy", "check_finite"]


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
