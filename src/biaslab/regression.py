"""Linear regression with and without the bias (intercept) term.

Reproduces the classic demonstration bit for bit: NumPy's legacy global generator seeded
with 42, ``X = linspace(0, 10, 50)``, ``y = 3·X + 2 + N(0, 2)``, least squares with and
without intercept, in-sample mean squared error (MSE 4.468 without bias, 3.301 with).

The fits use the same algorithm as scikit-learn's ``LinearRegression`` (centre, then
LAPACK ``gelsd`` least squares; intercept = ȳ − x̄·w) with NumPy alone, so the command
starts fast; the tests check that the numbers are identical to scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import BiaslabError
from .data import check_finite
from .report import Section

__all__ = [
    "LinearFit",
    "make_line_data",
    "fit_linear",
    "mse",
    "train_test_split",
    "RegressionResult",
    "run_regression",
]


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
    if n < 2:
        raise BiaslabError(f"--n must be at least 2 (got {n}): a line needs two points")
    if not noise >= 0:
        raise BiaslabError(f"--noise must be >= 0 (got {noise}); it is a standard deviation")
    if not x_max > x_min:
        raise BiaslabError(f"--x-min ({x_min}) must be smaller than --x-max ({x_max})")
    for name, v in (("slope", slope), ("intercept", intercept), ("x-min", x_min), ("x-max", x_max)):
        if not np.isfinite(v):
            raise BiaslabError(f"--{name} must be a finite number (got {v})")
    rng = np.random.RandomState(seed)
    X = np.linspace(x_min, x_max, n).reshape(-1, 1)
    y = slope * X + intercept + rng.normal(0, noise, size=(n, 1))
    return X, y


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


@dataclass
class RegressionResult:
    """Both fits on one data set, with in-sample (and optionally held-out) errors."""

    source: str
    feature_names: list[str]
    X: np.ndarray
    y: np.ndarray
    without_bias: LinearFit
    with_bias: LinearFit
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    true_params: dict[str, float] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    command: str = "regression"

    def mse(self, which: str, split: str = "train") -> float:
        fit = getattr(self, which)
        X, y = (self.X, self.y) if split == "train" else (self.X_test, self.y_test)
        return mse(y, fit.predict(X))

    def _fit_dict(self, which: str) -> dict[str, Any]:
        fit: LinearFit = getattr(self, which)
        d: dict[str, Any] = {
            "mse": self.mse(which),
            "coef": [float(c) for c in fit.coef],
            "intercept": float(fit.intercept),
            "r2": r2(self.y, fit.predict(self.X)),
        }
        if self.X_test is not None:
            d["test_mse"] = self.mse(which, "test")
            d["test_r2"] = r2(self.y_test, fit.predict(self.X_test))
        return d

    def to_dict(self) -> dict[str, Any]:
        return {
            "without_bias": self._fit_dict("without_bias"),
            "with_bias": self._fit_dict("with_bias"),
            "n_samples": int(len(self.X)),
            "n_test": int(len(self.X_test)) if self.X_test is not None else 0,
            "source": self.source,
            "features": self.feature_names,
            "true": self.true_params,
            "params": self.params,
            "summary": self.summary(),
        }

    def summary(self) -> str:
        m0, m1 = self.mse("without_bias"), self.mse("with_bias")
        b = self.with_bias.intercept
        gap = (m0 - m1) / m0 * 100 if m0 > 0 else 0.0
        lines = [
            f"Without bias the line is forced through the origin: MSE {m0:.4g}. "
            f"With bias: MSE {m1:.4g} (fitted intercept {b:.4g}), {gap:.1f}% lower."
        ]
        true_b = (self.true_params or {}).get("intercept")
        if true_b is not None and true_b == 0:
            lines.append(
                "The true intercept is 0, so a line through the origin is already right and the "
                f"two fits agree (MSE differs by {m0 - m1:.2g}; the bias only absorbs noise)."
            )
        elif true_b is not None:
            lines.append(
                f"The data's true intercept is {true_b:g}: a line through the origin cannot reach it, "
                f"so it tilts its slope to {self.without_bias.coef[0]:.4g} (true "
                f"{self.true_params['slope']:g}) and errs systematically — the residuals of the "
                "no-bias fit trend with the input."
            )
        else:
            lines.append(
                "Unless the data's mean output is zero where the inputs are zero, a fit through the "
                f"origin has to distort its weights; here the bias takes the value {b:.4g}."
            )
        if self.X_test is not None:
            t0, t1 = self.mse("without_bias", "test"), self.mse("with_bias", "test")
            verdict = "confirms" if t1 < t0 else "does not confirm"
            lines.append(
                f"Held out ({len(self.X_test)} points): MSE {t0:.4g} without bias vs {t1:.4g} "
                f"with bias, which {verdict} the gap out of sample."
            )
        return " ".join(lines)

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        from .plots.regression import plot_regression

        return [plot_regression(self, out_dir, fmt)]

    def section(self, figures: list[Path]) -> Section:
        rows = [
            {"fit": name.replace("_", " "), **{k: v for k, v in self._fit_dict(name).items() if k != "coef"}}
            for name in ("without_bias", "with_bias")
        ]
        return Section("Linear regression with and without bias", self.summary(), figures, rows)


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
    if csv is not None:
        from .data import load_csv_columns

        X, y = load_csv_columns(csv, list(x_columns or []), y_column or "")
        names, source = list(x_columns or []), f"csv:{Path(csv).name}"
    elif dataset is not None:
        if dataset != "diabetes":
            raise BiaslabError(f"unknown dataset {dataset!r}; the regression command knows: diabetes")
        from .data import load_diabetes_xy

        X, y, names = load_diabetes_xy(feature or "bmi")
        source = "sklearn:diabetes"
    else:
        X, y = make_line_data(n, slope, intercept, noise, x_min, x_max, seed)
        names, source = ["x"], "line"
        true_params = {"slope": slope, "intercept": intercept, "noise": noise}
    check_finite("data", X)
    check_finite("targets", y)
    X_test = y_test = None
    if test_fraction:
        X, X_test, y, y_test = train_test_split(X, y, test_fraction, seed)
    return RegressionResult(
        source=source,
        feature_names=names,
        X=X,
        y=y,
        without_bias=fit_linear(X, y, fit_intercept=False),
        with_bias=fit_linear(X, y, fit_intercept=True),
        X_test=X_test,
        y_test=y_test,
        true_params=true_params,
        params={"seed": seed, "test_fraction": test_fraction},
    )
