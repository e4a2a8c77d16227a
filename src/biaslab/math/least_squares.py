"""Least squares with and without the bias (intercept) term, as scikit-learn's ``LinearRegression``.

``y ≈ X·w + b``: with the intercept, ``X`` and ``y`` are centred, ``w`` solves the centred problem
(LAPACK ``gelsd``) and ``b = ȳ − x̄·w``; without it, the line is forced through the origin. NumPy
only, no I/O; the tests check the numbers against scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LinearFit", "fit_linear", "mse", "r2"]


@dataclass(frozen=True)
class LinearFit:
    """``y ≈ X @ coef + intercept``; ``intercept`` is 0 for a fit without bias."""

    coef: np.ndarray
    intercept: float
    fit_intercept: bool

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef.reshape(-1, 1) + self.intercept


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
