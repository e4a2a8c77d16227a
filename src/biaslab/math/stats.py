"""Statistics over seeds: summaries with confidence intervals, paired tests, verdicts.

A comparison is *paired*: run ``i`` of variant ``a`` and run ``i`` of variant ``b`` share a
seed (initial weights and mini-batch order), so the per-seed differences ``d_i = a_i − b_i``
carry the effect with the seed noise largely cancelled. The verdict is decided by the paired
t-test on ``d`` at level ``alpha``; the Wilcoxon signed-rank test is reported alongside as a
check that does not assume normal differences (with fewer than 6 seeds it cannot reach
p < 0.05 at all, which is why it does not decide).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..infra.io import BiaslabError
from ..results.ablate import Band, Comparison, Summary
from ..infra.validate import check_finite

__all__ = [
    "VERDICTS",
    "WILCOXON_ZERO_METHOD",
    "Summary",
    "Comparison",
    "summarize",
    "t_interval",
    "paired_comparison",
    "ci_band",
    "std_band",
]

#: The three verdict strings, for ``a`` = the variant with more biases.
VERDICTS = ("bias helps", "no significant difference", "bias hurts")
#: How the Wilcoxon test treats seeds with a zero difference: ``zsplit`` splits their ranks
#: between the positive and negative sides (ties between variants are common with accuracies).
WILCOXON_ZERO_METHOD = "zsplit"


def _check_values(values: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size < 2:
        raise BiaslabError(f"{what} needs at least 2 seeds (got {x.size}); use --seeds 2 or more")
    return check_finite(what, x)


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t confidence interval for the mean: ``x̄ ± t_{(1+c)/2, n−1} · s/√n``."""
    from scipy import stats

    x = _check_values(values, "a confidence interval")
    mean, sem = float(x.mean()), float(x.std(ddof=1)) / math.sqrt(x.size)
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * sem
    return mean - half, mean + half


def summarize(values: np.ndarray, confidence: float = 0.95,
              bounds: tuple[float, float] | None = None) -> Summary:
    """:class:`Summary` of ``values`` (at least two).

    ``bounds``: the range the values live in (``(0, 1)`` for accuracies); the t interval is
    clipped to it and ``Summary.clipped`` says whether that changed it.
    """
    x = _check_values(values, "a summary")
    lo, hi = t_interval(x, confidence)
    clipped = False
    if bounds is not None:
        clo, chi = max(lo, bounds[0]), min(hi, bounds[1])
        clipped = (clo, chi) != (lo, hi)
        lo, hi = clo, chi
    return Summary(int(x.size), float(x.mean()), float(x.std(ddof=1)), lo, hi, confidence, clipped)


def ci_band(values: np.ndarray, confidence: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0)) -> Band:
    """Mean over seeds (axis 0) of ``values`` with its t interval, clipped to ``bounds``, per column."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    mean = x.mean(axis=0)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * x.std(axis=0, ddof=1) / math.sqrt(len(x))
    return Band(mean, np.clip(mean - half, *bounds), np.clip(mean + half, *bounds), "ci", confidence)


def std_band(values: np.ndarray) -> Band:
    """Mean over seeds (axis 0) of ``values`` ± one sample standard deviation, per column."""
    x = np.asarray(values, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0, ddof=1)
    return Band(mean, mean - std, mean + std, "std")


def paired_comparison(a_name: str, a: np.ndarray, b_name: str, b: np.ndarray, alpha: float = 0.05,
                      confidence: float = 0.95) -> Comparison:
    """Compare paired samples ``a`` and ``b`` (same length, same seed order).

    The verdict is ``"bias helps"`` when the paired t-test rejects equality at ``alpha`` and
    ``a`` (the variant with more biases) is better on average, ``"bias hurts"`` when it rejects
    and ``b`` is better, else ``"no significant difference"``. Identical differences (zero
    spread) count as significant when their common value is not zero.
    """
    from scipy import stats

    a = _check_values(a, f"comparing {a_name} with {b_name}")
    b = _check_values(b, f"comparing {a_name} with {b_name}")
    if a.shape != b.shape:
        raise BiaslabError(f"{a_name} has {a.size} runs but {b_name} has {b.size}; they must be paired by seed")
    if not 0 < alpha < 1:
        raise BiaslabError(f"alpha must be in (0, 1) (got {alpha})")
    d = a - b
    n = d.size
    mean, sd = math.fsum(d) / n, float(d.std(ddof=1))
    if abs(mean) <= 1e-12 * max(1.0, float(np.abs(d).max())):  # rounding noise, not a difference
        mean = 0.0
    constant = sd <= 1e-12 * max(1.0, abs(mean))
    if constant:  # all differences equal (up to rounding): t is undefined
        t_stat = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else 0.0
        lo = hi = mean
        dz = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        res = stats.ttest_rel(a, b)
        t_stat, p = float(res.statistic), float(res.pvalue)
        lo, hi = t_interval(d, confidence)
        dz = mean / sd
    if np.all(np.abs(d) <= 1e-12):
        w = 1.0
    else:
        with warnings.catch_warnings():  # scipy warns that small samples use the exact distribution
            warnings.simplefilter("ignore")
            w = float(stats.wilcoxon(a, b, zero_method=WILCOXON_ZERO_METHOD).pvalue)
    if p < alpha:
        verdict = VERDICTS[0] if mean > 0 else VERDICTS[2]
    else:
        verdict = VERDICTS[1]
    return Comparison(
        a=a_name, b=b_name, n=n, diff_mean=mean, diff_std=sd, diff_ci_low=lo, diff_ci_high=hi,
        t_stat=t_stat, p_value=p, wilcoxon_p=w, effect_size=dz,
        a_wins=int(np.sum(d > 0)), b_wins=int(np.sum(d < 0)), ties=int(np.sum(d == 0)),
        alpha=alpha, verdict=verdict, constant=constant,
    )
