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
from typing import Any

import numpy as np

from ...infra.io import BiaslabError
from ...infra.validate import check_choice
from ...math.least_squares import fit_linear, mse, r2
from ...results.regression import FitStats, RegressionResult, ResidualTrend
from .claims import EXACT_FIT, regression_claims, residual_trend
from .data import check_fit_data, make_line_data, train_test_split

__all__ = ["run_regression", "RegressionData", "load_regression_data", "fit_both", "RegressionResult"]


@dataclass
class RegressionData:
    """What the fits run on: inputs ``X`` (n, features) and targets ``y`` (n, 1), already checked, with
    an optional held-out split, the feature names, where they came from and the line's true
    parameters (for the seed line only)."""

    X: np.ndarray
    y: np.ndarray
    names: list[str]
    source: str
    true: dict[str, float] | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def load_regression_data(
    n: int = 50, slope: float = 3.0, intercept: float = 2.0, noise: float = 2.0, x_min: float = 0.0,
    x_max: float = 10.0, seed: int = 42, test_fraction: float | None = None, dataset: str | None = None,
    feature: str | None = None, csv: str | Path | None = None, x_columns: list[str] | None = None,
    y_column: str | None = None,
) -> RegressionData:
    """Plan: the seed line, ``dataset='diabetes'`` or a CSV, checked and optionally split (see
    :func:`run_regression` for the parameters)."""
    true = None
    if csv is not None and dataset is not None:
        raise BiaslabError("use either `dataset` or `csv`, not both")
    if feature is not None and dataset is None:
        raise BiaslabError("`feature` chooses a column of `dataset` diabetes; add `dataset` or drop it")
    if (x_columns or y_column) and csv is None:
        raise BiaslabError("`x_columns` and `y_column` choose columns of `csv`; add `csv` or drop them")
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
        true = {"slope": slope, "intercept": intercept, "noise": noise}
    check_fit_data(X, y, names)
    data = RegressionData(X, y, names, source, true)
    if test_fraction:
        data.X, data.X_test, data.y, data.y_test = train_test_split(X, y, test_fraction, seed)
    return data


def fit_both(data: RegressionData) -> tuple[dict[str, FitStats], dict[str, np.ndarray], dict[str, ResidualTrend]]:
    """Execute: least squares without and with the intercept; each fit's statistics, in-sample
    predictions and residual trend, keyed ``without_bias`` / ``with_bias``."""
    X, y = data.X, data.y
    stats, predictions, trends = {}, {}, {}
    y_scale = float(np.sqrt(np.mean(np.square(y))))
    for name, with_intercept in (("without_bias", False), ("with_bias", True)):
        fit = fit_linear(X, y, fit_intercept=with_intercept)
        pred = fit.predict(X)
        test_pred = fit.predict(data.X_test) if data.X_test is not None else None
        stats[name] = FitStats(
            coef=[float(c) for c in fit.coef], intercept=float(fit.intercept), mse=mse(y, pred), r2=r2(y, pred),
            test_mse=mse(data.y_test, test_pred) if test_pred is not None else None,
            test_r2=r2(data.y_test, test_pred) if test_pred is not None else None,
        )
        predictions[name] = pred
        # One feature: residuals against the input. Several: against the fit's own fitted values
        # (the true y would give even a perfect-in-expectation fit a spurious trend).
        axis, against = (X[:, 0], "input") if X.shape[1] == 1 else (pred[:, 0], "fitted values")
        trends[name] = residual_trend(axis, y - pred, against, floor=EXACT_FIT * y_scale)
    return stats, predictions, trends


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
    """Fit with and without intercept on the seed line data, ``dataset='diabetes'`` or a CSV.

    Parameters
    ----------
    n, slope, intercept, noise, x_min, x_max : the seed line ``y = slope·x + intercept + N(0, noise)``
        on ``n`` points evenly spaced over [x_min, x_max] (defaults: the classic snippet).
    seed : NumPy seed of the line's noise and of the train/test split; 42 reproduces the snippet.
    test_fraction : hold out this fraction of the points (0 < f < 1) and report test MSE too.
    dataset, feature : ``"diabetes"`` (scikit-learn's) and its column (default ``"bmi"``, or ``"all"``).
    csv, x_columns, y_column : a CSV file with a header row, and the columns to use.

    Returns
    -------
    RegressionResult
        Both fits, their residual trends and the claims of :func:`.claims.regression_claims`.
    """
    data = load_regression_data(n, slope, intercept, noise, x_min, x_max, seed, test_fraction, dataset, feature,
                                csv, x_columns, y_column)
    stats, predictions, trends = fit_both(data)
    split = "test" if data.X_test is not None else "train"
    y_scale = float(np.sqrt(np.mean(np.square(data.y))))
    line: dict[str, Any] = {"n": n, "slope": slope, "intercept": intercept, "noise": noise, "x_min": x_min,
                            "x_max": x_max}
    files: dict[str, Any] = {"dataset": dataset, "feature": feature, "csv": csv, "x_columns": x_columns,
                             "y_column": y_column}
    return RegressionResult(
        source=data.source, features=data.names, n_samples=int(len(data.X)),
        n_test=int(len(data.X_test)) if data.X_test is not None else 0,
        without_bias=stats["without_bias"], with_bias=stats["with_bias"], X=data.X, y=data.y,
        predictions=predictions, residual_trends=trends, X_test=data.X_test, y_test=data.y_test, true=data.true,
        params={"seed": seed, "test_fraction": test_fraction, "source": data.source,
                **(line if data.true is not None else files)},
        claims=regression_claims(stats["without_bias"], stats["with_bias"], trends, data.X.shape[1], split, y_scale),
    )
