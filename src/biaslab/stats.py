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
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .validate import check_finite
from .io import BiaslabError

__all__ = [
    "VERDICTS",
    "Summary",
    "Comparison",
    "summarize",
    "t_interval",
    "paired_comparison",
]

#: The three verdict strings, for ``a`` = the variant with more biases.
VERDICTS = ("bias helps", "no significant difference", "bias hurts")


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and two-sided t confidence interval of values."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def summarize(values: np.ndarray, confidence: float = 0.95) -> Summary:
    """:class:`Summary` of ``values`` (at least two)."""
    x = _check_values(values, "a summary")
    lo, hi = t_interval(x, confidence)
    return Summary(int(x.size), float(x.mean()), float(x.std(ddof=1)), lo, hi, confidence)


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of variant ``a`` (more biases) with ``b`` over the same seeds."""

    a: str
    b: str
    n: int
    diff_mean: float  # mean of a − b
    diff_std: float
    diff_ci_low: float
    diff_ci_high: float
    t_stat: float
    p_value: float  # paired t-test, two-sided
    wilcoxon_p: float  # Wilcoxon signed-rank, two-sided (1.0 when every difference is 0)
    effect_size: float  # Cohen's d_z = mean(d) / sd(d)
    a_wins: int  # seeds where a is better
    b_wins: int
    ties: int
    alpha: float
    verdict: str

    def sentence(self) -> str:
        """The verdict with the evidence behind it, in one line."""
        p = f"paired t-test p = {self.p_value:.3g}, Wilcoxon p = {self.wilcoxon_p:.3g}"
        diff = f"{self.a} − {self.b} = {self.diff_mean:+.4f} (95% CI {self.diff_ci_low:+.4f} … {self.diff_ci_high:+.4f})"
        if self.verdict == "no significant difference":
            support = f"{self.a} better in {self.a_wins}, worse in {self.b_wins}, tied in {self.ties} of {self.n} seeds"
        else:
            won = self.a_wins if self.verdict == "bias helps" else self.b_wins
            support = f"backed by {won} of {self.n} seeds"
        return f"{self.verdict}: {diff}; {p}; d_z = {self.effect_size:.2f}; {support}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.sentence()}


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
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):  # all differences equal (up to rounding): t is undefined
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
            w = float(stats.wilcoxon(a, b, zero_method="zsplit").pvalue)
    if p < alpha:
        verdict = VERDICTS[0] if mean > 0 else VERDICTS[2]
    else:
        verdict = VERDICTS[1]
    return Comparison(
        a=a_name, b=b_name, n=n, diff_mean=mean, diff_std=sd, diff_ci_low=lo, diff_ci_high=hi,
        t_stat=t_stat, p_value=p, wilcoxon_p=w, effect_size=dz,
        a_wins=int(np.sum(d > 0)), b_wins=int(np.sum(d < 0)), ties=int(np.sum(d == 0)),
        alpha=alpha, verdict=verdict,
    )
