"""The one boundary for user input: checks that turn bad values into a clear :class:`BiaslabError`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .io import BiaslabError

__all__ = ["check_finite", "check_output_file", "parse_count", "parse_shape"]


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Raise :class:`BiaslabError` if ``values`` holds NaN or infinity."""
    values = np.asarray(values)
    if values.size and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise BiaslabError(f"{name} contains {bad} NaN or infinite value(s); clean the data first")
    return values


def check_output_file(path: str | Path, option: str) -> Path:
    """Refuse an output ``path`` that is a directory, a link or any other non-regular file (``/dev/null``)
    before any work starts; :func:`biaslab.io.atomic_path` refuses the same when it writes."""
    p = Path(path)
    if p.is_dir():
        raise BiaslabError(f"cannot write {option} {p}: it is a directory; pass a file path such as {p / 'fixed.pt'}")
    if p.is_symlink() or (p.exists() and not p.is_file()):
        raise BiaslabError(f"cannot write {option} {p}: it exists and is not a regular file; choose a new file name")
    if p.parent.exists() and not p.parent.is_dir():
        raise BiaslabError(f"cannot write {option} {p}: {p.parent} is not a directory")
    return p


def parse_count(option: str, text: str | int, low: int, high: int) -> int:
    """``text`` (``"128"``, ``"1e3"``) as a whole number in ``[low, high]``; a clear error otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value != int(value):
        raise BiaslabError(f"{option} must be a whole number (got {text!r})")
    if not low <= value <= high:
        raise BiaslabError(f"{option} must be between {low:,} and {high:,} (got {text})")
    return int(value)


def parse_shape(option: str, text: str, max_elements: int, example: str, min_rank: int = 2) -> tuple[int, ...]:
    """``"2,3,32,32"`` → ``(2, 3, 32, 32)``: positive whole numbers, at least ``min_rank`` of them, and
    at most ``max_elements`` elements in all (so a typo cannot allocate terabytes)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) < min_rank or not all(np.isfinite(v) and v >= 1 and v == int(v) for v in values):
        raise BiaslabError(f"{option} must be at least {min_rank} positive whole numbers separated by commas "
                           f"(got {text!r}), e.g. {example}")
    shape = tuple(int(v) for v in values)
    total = math.prod(shape)
    if total > max_elements:
        raise BiaslabError(f"{option} {text} has {total:.3g} elements, more than the limit of {max_elements:,}; "
                           f"pass a smaller shape, e.g. {example}")
    return shape
