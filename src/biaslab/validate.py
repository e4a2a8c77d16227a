"""The one boundary for user input: checks that turn bad values into a clear :class:`BiaslabError`."""

from __future__ import annotations

import numpy as np

from .io import BiaslabError

__all__ = ["check_finite"]


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Raise :class:`BiaslabError` if ``values`` holds NaN or infinity."""
    values = np.asarray(values)
    if values.size and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise BiaslabError(f"{name} contains {bad} NaN or infinite value(s); clean the data first")
    return values
