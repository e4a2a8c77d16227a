"""Linear regression with and without the bias (intercept) term.

Reproduces the classic demonstration bit for bit: NumPy's legacy global generator seeded
with 42, ``X = linspace(0, 10, 50)``, ``y = 3·X + 2 + N(0, 2)``, least squares with and
without intercept, in-sample mean squared error (MSE 4.468 without bias, 3.301 with).

The fits use the same algorithm as scikit-learn's ``LinearRegression`` (centre, then
LAPACK ``gelsd`` least squares; intercept = ȳ − x̄·w) with NumPy alone, so the command
starts fast; the tests check that the numbers are identical to scikit-learn's.
"""


from __future__ import annotations

from pathlib import Path

import numpy as np

from ...infra.io import BiaslabError
from ...infra.validate import check_choice
from ...math.least_squares import fit_linear, mse, r2
from ...results.regression import FitStats, RegressionResult
from .claims import EXACT_FIT, regression_claims, residual_trend
from .data import check_fit_data, make_line_data, train_test_split

__all__ = ["run_regression", "RegressionResult"]


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
