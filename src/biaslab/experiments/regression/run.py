"""Linear regression with and without the bias (intercept) term.

Reproduces the classic demonstration bit for bit: NumPy's legacy global generator seeded
with 42, ``X = linspace(0, 10, 50)``, ``y = 3·X + 2 + N(0, 2)``, least squares with and
without intercept, in-sample mean squared error (MSE 4.468 without bias, 3.301 with).

The fits use the same algorithm as scikit-learn's ``LinearRegression`` (centre, then
LAPACK ``gelsd`` least squares; intercept = ȳ − x̄·w) with NumPy alone, so the command
starts fast; the tests check that the numbers are identical to scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...infra.io import BiaslabError
from ...infra.validate import bounded_int, check_choice, check_finite, finite_number
from ...results import Claim
from ...results.regression import FitStats, RegressionResult, ResidualTrend

__all__ = [
    "LinearFit",
    "make_line_data",
    "fit_linear",
    "mse",
    "train_test_split",
    "r2",
    "residual_trend",
    "regression_claims",
    "check_fit_data",
    "RegressionResult",
    "run_regression",
]

#: ``--n``: points on the line, at least MIN_POINTS (a line and a residual trend) and at most MAX_POINTS.
MIN_POINTS = 3
MAX_POINTS = 1_000_000
#: Every input and target must satisfy |v| <= VALUE_LIMIT, so that squares and sums of squares stay finite.
VALUE_LIMIT = 1e150
#: Each input column must spread over at least this much, absolutely and relative to its largest |x|:
#: narrower, the points cannot be told apart in float64 (e.g. ``--x-max 1e-320``).
MIN_SPREAD = 1e-150
MIN_RELATIVE_SPREAD = 1e-9


@dataclass(frozen=True)
class LinearFit:
    """``y ≈ X @ coef + intercept``; ``intercept`` is 0 for a fit without bias."""

    coef: np.ndarray
    intercept: float
    fit_intercept: bool

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef.reshape(-1, 1) + self.intercept


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
    bounded_int("--n", n, MIN_POINTS, MAX_POINTS)
    finite_number("--noise", noise, 0.0, VALUE_LIMIT)
    for name, v in (("--slope", slope), ("--intercept", intercept), ("--x-min", x_min), ("--x-max", x_max)):
        finite_number(name, v, -VALUE_LIMIT, VALUE_LIMIT)
    if not x_max > x_min:
        raise BiaslabError(f"--x-min ({x_min}) must be smaller than --x-max ({x_max})")
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


def fit_linear(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> LinearFit:
    """Ordinary least squares, as scikit-learn's ``LinearRegression`` computes it.

    Without intercept the line is forced through the origin: ``min ‖y − Xw‖²``.
    With intercept, ``X`` and ``y`` are centred first and ``b = ȳ − x̄·w``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
    if fit_intercept:
        x_mean, y_mean = X.mean(axis=0), y.mean(axis=0)
        w, *_ = np.linalg.lstsq(X - x_mean, y - y_mean, rcond=None)
        b = float((y_mean - x_mean @ w)[0])
    else:
        w, *_ = np.linalg.lstsq(X, y, rcond=None)
        b = 0.0
    return LinearFit(coef=w[:, 0].copy(), intercept=b, fit_intercept=fit_intercept)


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error."""
    return float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination (1 − SSE/SST)."""
    y_true = np.asarray(y_true)
    sst = float(np.sum((y_true - y_true.mean()) ** 2))
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / sst if sst > 0 else float("nan")


def train_test_split(
    X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random split; returns ``X_train, X_test, y_train, y_test``."""
    if not 0.0 < test_fraction < 1.0:
        raise BiaslabError(f"--test-fraction must be in (0, 1) (got {test_fraction})")
    n = len(X)
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n - n_test < 2:
        raise BiaslabError(
            f"--test-fraction {test_fraction} leaves {n - n_test} training and {n_test} test "
            f"points out of {n}; use more points or another fraction"
        )
    perm = np.random.default_rng(seed).permutation(n)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return X[train], X[test], y[train], y[test]


#: ``bias_lowers_mse`` holds when the bias lowers the evaluation MSE by at least this fraction.
MSE_REDUCTION_THRESHOLD = 0.01
#: A residual trend counts when Pearson's correlation has a two-sided p below this.
TREND_ALPHA = 0.05
#: Errors and residuals below this times the targets' root mean square are rounding: an exact fit.
EXACT_FIT = 1e-10


def residual_trend(axis: np.ndarray, residuals: np.ndarray, against: str, floor: float = 0.0) -> ResidualTrend:
    """Least-squares line of ``residuals`` on ``axis``, with Pearson's r and its two-sided p-value.

    Residuals whose spread is at most ``floor`` (a root mean square) are rounding: no trend (r = 0, p = 1).
    """
    from scipy.special import stdtr

    a, r_ = np.asarray(axis, dtype=np.float64).ravel(), np.asarray(residuals, dtype=np.float64).ravel()
    n = len(a)
    da, dr = a - a.mean(), r_ - r_.mean()
    saa, srr = float(da @ da), float(dr @ dr)
    slope = float(da @ dr) / saa if saa > 0 else 0.0
    if saa > 0 and srr > n * floor**2:
        r = float(max(-1.0, min(1.0, float(da @ dr) / np.sqrt(saa * srr))))
    else:
        r = 0.0
    if n > 2 and abs(r) < 1:
        t = r * np.sqrt((n - 2) / (1 - r * r))
        p = float(2 * stdtr(n - 2, -abs(t)))
    else:
        p = 0.0 if abs(r) == 1 and n > 2 else 1.0
    return ResidualTrend(against=against, slope=slope, intercept=float(r_.mean() - slope * a.mean()), r=r, p=p)


def regression_claims(
    without: FitStats, with_: FitStats, trends: dict[str, ResidualTrend], n_features: int, split: str,
    y_scale: float,
) -> list[Claim]:
    """``bias_lowers_mse`` (on the evaluation split) and ``no_bias_residuals_trend``.

    ``y_scale`` is the root mean square of the targets: errors below ``EXACT_FIT`` times it are
    rounding, not a difference between the fits.
    """
    m0 = without.test_mse if split == "test" else without.mse
    m1 = with_.test_mse if split == "test" else with_.mse
    floor = (EXACT_FIT * y_scale) ** 2
    exact = m0 <= floor and m1 <= floor
    reduction = 0.0 if exact or m0 <= 0 else (m0 - m1) / m0
    evidence = {"split": split, "mse_without_bias": m0, "mse_with_bias": m1, "relative_reduction": reduction,
                "threshold": MSE_REDUCTION_THRESHOLD, "rounding_floor": floor, "increase": -reduction}
    if exact:
        false = ("Both fits are exact on the {split} data (MSE {mse_without_bias:.2g} and {mse_with_bias:.2g}, "
                 "below the rounding floor {rounding_floor:.2g}): there is nothing for the bias to lower.")
    elif reduction < 0:
        false = ("The bias makes the {split} MSE worse: {mse_without_bias:.4g} without it, {mse_with_bias:.4g} "
                 "with it ({increase:.1%} higher).")
    else:
        false = ("The bias does not lower the {split} MSE by at least {threshold:.0%} here: "
                 "{mse_without_bias:.4g} without it, {mse_with_bias:.4g} with it ({relative_reduction:.2%} lower).")
    lowers = Claim.decide(
        "bias_lowers_mse", reduction >= MSE_REDUCTION_THRESHOLD, evidence,
        statement="The bias lowers the {split} MSE by at least {threshold:.0%}",
        true="The bias lowers the {split} MSE from {mse_without_bias:.4g} to {mse_with_bias:.4g} "
             "({relative_reduction:.1%} lower).",
        false=false,
    )
    t = trends["without_bias"]
    evidence = {"against": t.against, "r": t.r, "p": t.p, "alpha": TREND_ALPHA, "n_features": n_features}
    offset = ": what the missing bias costs here is a constant offset, not a tilt" if lowers.holds else ""
    trend = Claim.decide(
        "no_bias_residuals_trend", t.p < TREND_ALPHA, evidence,
        statement="The residuals of the fit without bias trend with the {against} (p < {alpha})",
        true="The residuals of the fit without bias trend with the {against} (r = {r:.2f}, p = {p:.2g} < "
             "{alpha}): a systematic error, not noise.",
        false="The residuals of the fit without bias do not trend with the {against} (r = {r:.2f}, "
              "p = {p:.2g} ≥ {alpha})" + offset + ".",
    )
    return [lowers, trend]


def run_regression(
    n: int = 50,
    slope: float = 3.0,
    intercept: float = 2.0,
    noise: float = 2.0,
    x_min: float = 0.0,
    x_max: float = 10.0,
    seed: int = 42,
    test_fraction: float | None = None,
    dataset: str | None = None,
    feature: str | None = None,
    csv: str | Path | None = None,
    x_columns: list[str] | None = None,
    y_column: str | None = None,
) -> RegressionResult:
    """Fit with and without intercept on the seed line data, ``dataset='diabetes'`` or a CSV."""
    true_params = None
    if csv is not None and dataset is not None:
        raise BiaslabError("use either --dataset or --csv, not both")
    if feature is not None and dataset is None:
        raise BiaslabError("--feature chooses a column of --dataset diabetes; add --dataset diabetes or drop it")
    if (x_columns or y_column) and csv is None:
        raise BiaslabError("--x and --y choose columns of --csv FILE; add --csv or drop them")
    if csv is not None:
        from ...data.formats import load_csv_columns

        X, y = load_csv_columns(csv, list(x_columns or []), y_column or "")
        names, source = list(x_columns or []), f"csv:{Path(csv).name}"
    elif dataset is not None:
        check_choice("dataset", dataset, ("diabetes",))
        from ...data.datasets import load_diabetes_xy

        X, y, names = load_diabetes_xy(feature or "bmi")
        source = "sklearn:diabetes"
    else:
        X, y = make_line_data(n, slope, intercept, noise, x_min, x_max, seed)
        names, source = ["x"], "line"
        true_params = {"slope": slope, "intercept": intercept, "noise": noise}
    check_fit_data(X, y, names)
    X_test = y_test = None
    if test_fraction:
        X, X_test, y, y_test = train_test_split(X, y, test_fraction, seed)
    fits = {"without_bias": fit_linear(X, y, fit_intercept=False), "with_bias": fit_linear(X, y, fit_intercept=True)}
    stats, predictions, trends = {}, {}, {}
    y_scale = float(np.sqrt(np.mean(np.square(y))))
    for name, fit in fits.items():
        pred = fit.predict(X)
        stats[name] = FitStats(
            coef=[float(c) for c in fit.coef], intercept=float(fit.intercept), mse=mse(y, pred), r2=r2(y, pred),
            test_mse=mse(y_test, fit.predict(X_test)) if X_test is not None else None,
            test_r2=r2(y_test, fit.predict(X_test)) if X_test is not None else None,
        )
        predictions[name] = pred
        # One feature: residuals against the input. Several: against the fit's own fitted values
        # (the true y would give even a perfect-in-expectation fit a spurious trend).
        axis, against = (X[:, 0], "input") if X.shape[1] == 1 else (pred[:, 0], "fitted values")
        trends[name] = residual_trend(axis, y - pred, against, floor=EXACT_FIT * y_scale)
    split = "test" if X_test is not None else "train"
    return RegressionResult(
        source=source,
        features=names,
        n_samples=int(len(X)),
        n_test=int(len(X_test)) if X_test is not None else 0,
        without_bias=stats["without_bias"],
        with_bias=stats["with_bias"],
        X=X,
        y=y,
        predictions=predictions,
        residual_trends=trends,
        X_test=X_test,
        y_test=y_test,
        true=true_params,
        params={"seed": seed, "test_fraction": test_fraction, "source": source,
                **({"n": n, "slope": slope, "intercept": intercept, "noise": noise, "x_min": x_min, "x_max": x_max}
                   if true_params is not None else {"dataset": dataset, "feature": feature, "csv": csv,
                                                    "x_columns": x_columns, "y_column": y_column})},
        claims=regression_claims(stats["without_bias"], stats["with_bias"], trends, X.shape[1], split, y_scale),
    )
