"""The regression result: both least-squares fits on one data set, their errors and residual trends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .base import Claim, Result

__all__ = ["FitStats", "ResidualTrend", "RegressionResult"]


@dataclass
class FitStats:
    """One fit: ``y ≈ X @ coef + intercept`` (intercept 0 without bias) and its errors."""

    coef: list[float]
    intercept: float
    mse: float
    r2: float
    test_mse: float | None = None
    test_r2: float | None = None


@dataclass
class ResidualTrend:
    """Least-squares line of a fit's residuals against ``against`` (the input, or the fitted values).

    ``r`` is Pearson's correlation and ``p`` its two-sided p-value (t-test with n − 2 degrees
    of freedom).
    """

    against: str
    slope: float
    intercept: float
    r: float
    p: float


@dataclass
class RegressionResult(Result):
    """Fits with and without intercept, the data they were fitted on, and the claims they support.

    ``predictions[name]`` are the fitted values on ``X`` of ``with_bias`` and ``without_bias``;
    ``residual_trends[name]`` is the trend of ``y − predictions[name]``.
    """

    command: ClassVar[str] = "regression"
    source: str
    features: list[str]
    n_samples: int
    n_test: int
    without_bias: FitStats
    with_bias: FitStats
    X: np.ndarray
    y: np.ndarray
    predictions: dict[str, np.ndarray]
    residual_trends: dict[str, ResidualTrend]
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    true: dict[str, float] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
