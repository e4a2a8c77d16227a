"""The regression's conclusions: does the bias lower the error, and do the residuals of the line
through the origin trend with the input (a systematic error rather than noise)?"""

from __future__ import annotations

import numpy as np

from ...results import Claim
from ...results.regression import FitStats, ResidualTrend

__all__ = ["residual_trend", "regression_claims", "MSE_REDUCTION_THRESHOLD", "TREND_ALPHA", "EXACT_FIT"]

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
