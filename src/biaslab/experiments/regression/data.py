"""The regression's data: the seed snippet's noisy line, a random train/test split, and the checks that
refuse data no least-squares fit can use (NaN, huge values, an input that does not vary)."""

from __future__ import annotations

import numpy as np

from ...infra.io import BiaslabError
from ...infra.validate import bounded_int, check_finite, finite_number

__all__ = ["make_line_data", "check_fit_data", "train_test_split", "MIN_POINTS", "MAX_POINTS", "VALUE_LIMIT"]

#: ``--n``: points on the line, at least MIN_POINTS (a line and a residual trend) and at most MAX_POINTS.
MIN_POINTS = 3
MAX_POINTS = 1_000_000
#: Every input and target must satisfy |v| <= VALUE_LIMIT, so that squares and sums of squares stay finite.
VALUE_LIMIT = 1e150
#: Each input column must spread over at least this much, absolutely and relative to its largest |x|:
#: narrower, the points cannot be told apart in float64 (e.g. ``--x-max 1e-320``).
MIN_SPREAD = 1e-150
MIN_RELATIVE_SPREAD = 1e-9


def make_line_data(
    n: int = 50,
    slope: float = 3.0,
    intercept: float = 2.0,
    noise: float = 2.0,
    x_min: float = 0.0,
    x_max: float = 10.0,
    seed: int = 42,
) -> tuple[np.ndarray, np.ndarray]:
    """The seed demo's data: ``X = linspace(x_min, x_max, n)`` (n, 1), ``y = slope·X + intercept + N(0, noise)``.

    Uses ``np.random.RandomState(seed)``, the legacy global generator's algorithm, so the
    defaults give exactly the numbers of ``np.random.seed(42)`` in the original snippet.
    """
    bounded_int("n", n, MIN_POINTS, MAX_POINTS)
    finite_number("noise", noise, 0.0, VALUE_LIMIT)
    for name, v in (("slope", slope), ("intercept", intercept), ("x_min", x_min), ("x_max", x_max)):
        finite_number(name, v, -VALUE_LIMIT, VALUE_LIMIT)
    if not x_max > x_min:
        raise BiaslabError(f"`x_min` ({x_min}) must be smaller than `x_max` ({x_max})")
    rng = np.random.RandomState(seed)
    X = np.linspace(x_min, x_max, n).reshape(-1, 1)
    y = slope * X + intercept + rng.normal(0, noise, size=(n, 1))
    return X, y


def check_fit_data(X: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    """Refuse data the fits cannot use, before fitting: NaN/inf, |values| over :data:`VALUE_LIMIT`,
    an input column that does not vary (all zeros) or varies too little to tell its points apart."""
    check_finite("data", X)
    check_finite("targets", y)
    for what, values in (("inputs", X), ("targets", y)):
        if values.size and float(np.max(np.abs(values))) > VALUE_LIMIT:
            raise BiaslabError(
                f"the {what} reach |v| = {float(np.max(np.abs(values))):.3g}; values up to {VALUE_LIMIT:g} "
                "are supported: rescale the data"
            )
    for j, name in enumerate(names):
        col = X[:, j]
        spread, size = float(np.ptp(col)), float(np.max(np.abs(col)))
        if not (spread >= MIN_SPREAD and spread >= MIN_RELATIVE_SPREAD * size):
            raise BiaslabError(
                f"input {name!r} spans {spread:.3g} (from {float(col.min()):.6g} to {float(col.max()):.6g}): too "
                f"little to fit a slope; it needs a range of at least {MIN_SPREAD:g} and {MIN_RELATIVE_SPREAD:g} "
                "times its largest value"
            )


def train_test_split(
    X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random split; returns ``X_train, X_test, y_train, y_test``."""
    if not 0.0 < test_fraction < 1.0:
        raise BiaslabError(f"`test_fraction` must be in (0, 1) (got {test_fraction})")
    n = len(X)
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n - n_test < 2:
        raise BiaslabError(
            f"`test_fraction` {test_fraction} leaves {n - n_test} training and {n_test} test "
            f"points out of {n}; use more points or another fraction"
        )
    perm = np.random.default_rng(seed).permutation(n)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return X[train], X[test], y[train], y[test]
