"""Statistics over seeds: summaries, exact paired tests, equivalence, Holm, and sequential looks.

A comparison is *paired*: run ``i`` of variant ``a`` and run ``i`` of variant ``b`` share a
seed (initial weights and mini-batch order), so the per-seed differences ``d_i = a_i − b_i``
carry the effect with the seed noise largely cancelled.

The primary test fits 2–10 seeds: the exact **sign-flip permutation test**. Under "no effect"
each ``d_i`` is as likely to be ``+|d_i|`` as ``−|d_i|``, so the observed ``Σ d_i`` is compared
with all ``2^n`` sign patterns (:data:`MAX_EXACT` seeds or fewer; beyond that with
:data:`MC_DRAWS` random patterns plus the observed one). Its p-value can never be below
``2/2^n`` (two-sided): a constant −0.22 pp over 3 seeds has p = 2/8 = 0.25, and with 5 or fewer
seeds no test can reach p < 0.05. The paired t-test and the Wilcoxon signed-rank test are
reported beside it, never deciding.

A verdict is one of :data:`VERDICTS`: ``bias helps`` / ``bias hurts`` when the two-sided
p-value (Holm-adjusted over the run's family) is below ``alpha``; ``equivalent`` when both
one-sided tests of TOST reject a difference of ``margin`` or more in either direction (adjusted
the same way); otherwise ``inconclusive``, with the number of seeds the observed spread says
would decide it (:func:`seeds_to_decide`).

Everything here is NumPy/SciPy only; the p-value functions take a batch of difference vectors
(rows) so calibration studies (``benchmarks/bench_stats.py``) run 10,000 simulations in seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..infra.io import BiaslabError
from ..infra.validate import check_finite

__all__ = [
    "VERDICTS", "WILCOXON_ZERO_METHOD", "MAX_EXACT", "MC_DRAWS", "DEFAULT_MARGIN", "BOOTSTRAP_DRAWS",
    "Summary", "Band", "Comparison",
    "summarize", "t_interval", "ci_band", "std_band",
    "sign_flip_p", "min_p", "subset_mean_interval", "bootstrap_mean_interval", "prob_improvement",
    "iqm", "stratified_iqm_interval",
    "paired_comparison", "holm", "decide", "adjust_family", "seeds_to_decide", "min_seeds",
    "spending", "look_alphas", "sequential_looks",
]

#: The comparison verdicts, for ``a`` = the variant with more biases.
VERDICTS = ("bias helps", "bias hurts", "equivalent", "inconclusive")
#: How the Wilcoxon test treats seeds with a zero difference: ``zsplit`` splits their ranks
#: between the positive and negative sides (ties between variants are common with accuracies).
WILCOXON_ZERO_METHOD = "zsplit"
#: Up to this many seeds the sign-flip test enumerates all 2^n sign patterns.
MAX_EXACT = 16
#: Beyond :data:`MAX_EXACT` seeds: this many random sign patterns, plus the observed one.
MC_DRAWS = 20_000
#: The equivalence margin for differences of accuracies: 1 percentage point.
DEFAULT_MARGIN = 0.01
#: Bootstrap resamples of the seeds for the descriptive intervals (fixed generator seed 0).
BOOTSTRAP_DRAWS = 10_000


# --------------------------------------------------------------------------------------- records

@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and two-sided t confidence interval of values over seeds.

    ``clipped`` is True when the interval was cut to the range the values live in (an
    accuracy's t interval can pass 1; the accuracy cannot).
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float
    clipped: bool = False


@dataclass
class Band:
    """A curve over seeds: ``mean`` and the band ``low .. high`` around it, per x value.

    ``kind`` names the band: ``"ci"`` (``confidence`` t interval of the mean, clipped to
    [0, 1]) or ``"std"`` (± one sample standard deviation).
    """

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    kind: str
    confidence: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of variant ``a`` (more biases) with ``b`` over the same seeds.

    ``p_value`` is the two-sided exact sign-flip permutation test (``test``), ``p_adjusted``
    the same after Holm's adjustment over the run's family of comparisons (equal to ``p_value``
    for a family of one). ``p_equiv`` is the TOST p-value for "|a − b| < margin" (the larger of
    the two one-sided sign-flip tests, ``p_below`` for "a − b < margin" and ``p_above`` for
    "a − b > −margin"), ``p_equiv_adjusted`` its Holm adjustment. ``min_p`` is the smallest
    two-sided p-value any sign pattern of ``n`` seeds can give (2/2^n).

    ``t_stat``/``t_p`` (paired t-test) and ``wilcoxon_p`` (signed-rank, ``zsplit``) are reported
    beside it and do not decide. ``diff_ci_*`` is the t interval at ``confidence``;
    ``perm_ci_*`` Hartigan's subset-mean interval (exact for symmetric differences, at
    ``perm_ci_level`` ≥ ``confidence``; ±inf when ``n`` is too small for any); ``boot_ci_*`` the
    paired bootstrap percentile interval (descriptive: it under-covers with few seeds).
    ``prob_a_better`` is P(a > b) over seeds (ties count half) with its bootstrap interval.
    ``seeds_needed`` (inconclusive only): how many seeds the observed spread says would decide.
    ``diffs``: the per-seed differences the tests ran on (None in files written before).
    """

    a: str
    b: str
    n: int
    diff_mean: float  # mean of a − b
    diff_std: float
    diff_ci_low: float
    diff_ci_high: float
    t_stat: float
    p_value: float
    wilcoxon_p: float
    effect_size: float  # Cohen's d_z = mean(d) / sd(d); ±inf when constant and non-zero
    a_wins: int  # seeds where a is better
    b_wins: int
    ties: int
    alpha: float
    verdict: str
    constant: bool = False
    test: str = "paired t-test"  # results.json files written before the sign-flip test used the t-test
    t_p: float = math.nan
    p_adjusted: float = math.nan
    family: int = 1
    min_p: float = math.nan
    permutations: int = 0
    exact: bool = True
    margin: float = DEFAULT_MARGIN
    p_below: float = math.nan
    p_above: float = math.nan
    p_equiv: float = math.nan
    p_equiv_adjusted: float = math.nan
    confidence: float = 0.95
    perm_ci_low: float = math.nan
    perm_ci_high: float = math.nan
    perm_ci_level: float = math.nan
    boot_ci_low: float = math.nan
    boot_ci_high: float = math.nan
    prob_a_better: float = math.nan
    prob_ci_low: float = math.nan
    prob_ci_high: float = math.nan
    seeds_needed: int | None = None
    look_alpha: float = math.nan  # the level the verdict was taken at (alpha, or a sequential look's share)
    diffs: np.ndarray | None = dataclasses.field(default=None, compare=False)  # the per-seed a − b

    @property
    def significant(self) -> bool:
        """Whether the verdict is a significant difference in either direction."""
        return self.verdict in ("bias helps", "bias hurts")


# ------------------------------------------------------------------------------- basic summaries

def _check_values(values: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size < 2:
        raise BiaslabError(f"{what} needs at least 2 seeds (got {x.size}); use 2 seeds or more")
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


# ------------------------------------------------------------------------- the sign-flip test

@functools.lru_cache(maxsize=64)
def _signs(n: int, draws: int = MC_DRAWS, seed: int = 0) -> np.ndarray:
    """Sign patterns (rows of ±1) over ``n`` seeds: all 2^n, or the observed one plus ``draws`` random ones."""
    if n <= MAX_EXACT:
        codes = np.arange(2 ** n, dtype=np.int64)[:, None]
        bits = (codes >> np.arange(n, dtype=np.int64)) & 1
        return (1 - 2 * bits).astype(np.float64)  # row 0: all +1 (the observed pattern)
    rng = np.random.default_rng(seed)
    rand = rng.choice(np.array([-1.0, 1.0]), size=(draws, n))
    return np.vstack([np.ones((1, n)), rand])


def min_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest p-value the sign-flip test can give with ``n`` seeds: 2/2^n two-sided, 1/2^n one-sided."""
    patterns = 2.0 ** n if n <= MAX_EXACT else MC_DRAWS + 1.0
    return (2.0 if alternative == "two-sided" and n <= MAX_EXACT else 1.0) / patterns


def sign_flip_p(d: np.ndarray, alternative: str = "two-sided", mu: float | np.ndarray = 0.0,
                draws: int = MC_DRAWS) -> np.ndarray | float:
    """Exact sign-flip permutation p-value(s) of the paired differences ``d`` against mean ``mu``.

    ``d``: one vector of differences (returns a float) or a batch of rows (returns one p per
    row); ``mu``: a scalar or one value per row. ``alternative``: ``two-sided`` (|Σ s·(d−mu)| ≥
    |Σ (d−mu)|), ``greater`` (evidence that the mean exceeds ``mu``) or ``less``. With at most
    :data:`MAX_EXACT` seeds every one of the 2^n sign patterns is counted (p = count / 2^n, the
    observed pattern included); with more, ``draws`` random patterns plus the observed one
    (p = (1 + count) / (1 + draws)). Sums equal up to rounding (1e-9 relative) count as ties.
    """
    x = np.asarray(d, dtype=np.float64)
    single = x.ndim == 1
    X = np.atleast_2d(x)
    X = X - np.asarray(mu, dtype=np.float64).reshape(-1, 1)
    S = _signs(X.shape[1], draws)
    obs = X.sum(axis=1)
    tol = 1e-9 * np.maximum(1e-12, np.abs(X).sum(axis=1))
    out = np.empty(X.shape[0])
    chunk = max(1, 4_000_000 // S.shape[0])
    for i in range(0, X.shape[0], chunk):
        T = X[i:i + chunk] @ S.T  # (rows, patterns): every sign pattern's sum
        o, t = obs[i:i + chunk, None], tol[i:i + chunk, None]
        if alternative == "two-sided":
            hits = np.abs(T) >= np.abs(o) - t
        elif alternative == "greater":
            hits = T >= o - t
        elif alternative == "less":
            hits = T <= o + t
        else:
            raise ValueError(f"alternative must be two-sided, greater or less (got {alternative!r})")
        out[i:i + chunk] = hits.sum(axis=1) / S.shape[0]
    return float(out[0]) if single else out


@functools.lru_cache(maxsize=32)
def _subsets(n: int, draws: int = MC_DRAWS, seed: int = 1) -> np.ndarray:
    """Non-empty subsets of ``n`` seeds as rows of 0/1 weights divided by their size."""
    if n <= MAX_EXACT:
        codes = np.arange(1, 2 ** n, dtype=np.int64)[:, None]
        W = ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)
    else:
        rng = np.random.default_rng(seed)
        W = (rng.random((draws, n)) < 0.5).astype(np.float64)
        W = W[W.sum(axis=1) > 0]
    return W / W.sum(axis=1, keepdims=True)


def subset_mean_interval(d: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray | float, ...]:
    """Hartigan's exact interval for the centre of symmetric differences: (low, high, level).

    Of the 2^n − 1 means of non-empty subsets of the seeds, the true centre lies below the k-th
    smallest with probability k/2^n (Hartigan 1969), so ``[k-th smallest, k-th largest]`` covers
    it with probability ``1 − 2k/2^n``; ``k`` is the largest with that level ≥ ``confidence``
    (``level`` is returned). With too few seeds for any such k the interval is (−inf, inf).
    Random subsets beyond :data:`MAX_EXACT` seeds (level ``1 − 2k/(B + 1)``). Rows of ``d`` are
    independent data sets.
    """
    x = np.asarray(d, dtype=np.float64)
    single = x.ndim == 1
    X = np.atleast_2d(x)
    W = _subsets(X.shape[1])
    total = W.shape[0] + 1
    k = int(math.floor((1 - confidence) / 2 * total + 1e-9))
    if k < 1:
        lo, hi, level = np.full(X.shape[0], -np.inf), np.full(X.shape[0], np.inf), 1.0
    else:
        lo, hi = np.empty(X.shape[0]), np.empty(X.shape[0])
        chunk = max(1, 4_000_000 // W.shape[0])
        for i in range(0, X.shape[0], chunk):
            M = X[i:i + chunk] @ W.T
            lo[i:i + chunk] = np.partition(M, k - 1, axis=1)[:, k - 1]
            hi[i:i + chunk] = -np.partition(-M, k - 1, axis=1)[:, k - 1]
        level = 1 - 2 * k / total
    return (float(lo[0]), float(hi[0]), level) if single else (lo, hi, level)


def bootstrap_mean_interval(d: np.ndarray, confidence: float = 0.95, draws: int = BOOTSTRAP_DRAWS,
                            seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap percentile interval of the mean difference (seeds resampled with replacement)."""
    x = np.asarray(d, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(draws, x.size))
    means = x[idx].mean(axis=1)
    return float(np.quantile(means, (1 - confidence) / 2)), float(np.quantile(means, (1 + confidence) / 2))


def prob_improvement(d: np.ndarray, confidence: float = 0.95, draws: int = BOOTSTRAP_DRAWS,
                     seed: int = 0) -> tuple[float, float, float]:
    """P(a > b) over paired seeds (a tie counts half), with its bootstrap percentile interval."""
    x = np.asarray(d, dtype=np.float64)
    score = (x > 0) + 0.5 * (x == 0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(draws, x.size))
    boots = score[idx].mean(axis=1)
    return (float(score.mean()), float(np.quantile(boots, (1 - confidence) / 2)),
            float(np.quantile(boots, (1 + confidence) / 2)))


def iqm(values: np.ndarray) -> float:
    """Interquartile mean (the mean of the middle 50 %), as rliable aggregates runs."""
    from scipy import stats

    return float(stats.trim_mean(np.asarray(values, dtype=np.float64).reshape(-1), 0.25))


def stratified_iqm_interval(groups: list[np.ndarray], confidence: float = 0.95, draws: int = 2_000,
                            seed: int = 0) -> tuple[float, float, float]:
    """IQM of the pooled values of ``groups`` (one array per configuration) and rliable's
    stratified bootstrap interval (each group's values resampled within the group)."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([np.asarray(g, dtype=np.float64).reshape(-1) for g in groups])
    boots = np.empty(draws)
    for i in range(draws):
        boots[i] = iqm(np.concatenate([g[rng.integers(0, len(g), len(g))] for g in map(np.asarray, groups)]))
    return iqm(pooled), float(np.quantile(boots, (1 - confidence) / 2)), float(np.quantile(boots, (1 + confidence) / 2))


# ------------------------------------------------------------------------------ decisions

def min_seeds(alpha: float, family: int = 1, alternative: str = "two-sided") -> int:
    """The fewest seeds with which the sign-flip test can reach p < alpha / family (2/2^n < level)."""
    level = alpha / max(1, family)
    top = 2.0 if alternative == "two-sided" else 1.0
    n = 2
    while top / 2.0 ** n >= level and n < 64:
        n += 1
    return n


def seeds_to_decide(diff: float, sd: float, margin: float, alpha: float, family: int = 1,
                    power: float = 0.8, cap: int = 10_000) -> int | None:
    """How many seeds the observed mean ``diff`` and spread ``sd`` say would decide the comparison.

    The normal-approximation sample size for the nearer of the two decisions, at the
    Holm-worst level ``alpha / family`` with ``power``: a significant difference
    (``((z_{1−a/2} + z_power)·sd/|diff|)²``) or, when ``|diff| < margin``, equivalence
    (``((z_{1−a} + z_power)·sd/(margin − |diff|))²``); never fewer than the sign-flip test
    needs to reach that level at all (:func:`min_seeds`). None when neither is within ``cap``.
    """
    from scipy import stats

    level = alpha / max(1, family)
    zp = float(stats.norm.ppf(power))
    options = []
    if diff != 0:
        need = ((float(stats.norm.ppf(1 - level / 2)) + zp) * sd / abs(diff)) ** 2 if sd > 0 else 0.0
        options.append(max(min_seeds(alpha, family), math.ceil(need)))
    if abs(diff) < margin:
        need = ((float(stats.norm.ppf(1 - level)) + zp) * sd / (margin - abs(diff))) ** 2 if sd > 0 else 0.0
        options.append(max(min_seeds(alpha, family, "one-sided"), math.ceil(need)))
    best = min(options) if options else None
    return best if best is not None and best <= cap else None


def decide(p_two: float, p_equiv: float, diff: float, level: float) -> str:
    """The verdict of one comparison from its (adjusted) p-values at ``level``."""
    if p_two < level:
        return VERDICTS[0] if diff > 0 else VERDICTS[1]
    if p_equiv < level:
        return VERDICTS[2]
    return VERDICTS[3]


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values: ``max_{j ≤ i} min(1, (m − j + 1) p_(j))`` in sorted order."""
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def adjust_family(comparisons: list[Comparison], level: float | None = None) -> list[Comparison]:
    """The comparisons of one run as one family: Holm-adjusted p-values (two-sided and TOST),
    verdicts re-decided at ``level`` (default: each comparison's ``alpha``), and the seeds
    that would decide each inconclusive one."""
    if not comparisons:
        return []
    m = len(comparisons)
    p2 = holm([c.p_value for c in comparisons])
    pe = holm([c.p_equiv for c in comparisons])
    out = []
    for c, a2, ae in zip(comparisons, p2, pe):
        lv = c.alpha if level is None else level
        verdict = decide(float(a2), float(ae), c.diff_mean, lv)
        need = (seeds_to_decide(c.diff_mean, c.diff_std, c.margin, c.alpha, m)
                if verdict == VERDICTS[3] else None)
        out.append(dataclasses.replace(c, p_adjusted=float(a2), p_equiv_adjusted=float(ae), family=m,
                                       verdict=verdict, seeds_needed=need, look_alpha=lv))
    return out


def paired_comparison(a_name: str, a: np.ndarray, b_name: str, b: np.ndarray, alpha: float = 0.05,
                      confidence: float = 0.95, margin: float = DEFAULT_MARGIN) -> Comparison:
    """Compare paired samples ``a`` and ``b`` (same length, same seed order) as a family of one.

    The verdict (:func:`decide`): ``bias helps``/``bias hurts`` when the exact two-sided
    sign-flip test gives p < ``alpha``, ``equivalent`` when TOST with ``margin`` rejects both
    one-sided nulls at ``alpha``, else ``inconclusive``. Zero spread is not significant on its
    own: identical non-zero differences on ``n`` seeds give p = 2/2^n. Pass the run's
    comparisons through :func:`adjust_family` to treat them as one family.
    """
    from scipy import stats

    a = _check_values(a, f"comparing {a_name} with {b_name}")
    b = _check_values(b, f"comparing {a_name} with {b_name}")
    if a.shape != b.shape:
        raise BiaslabError(f"{a_name} has {a.size} runs but {b_name} has {b.size}; they must be paired by seed")
    if not 0 < alpha < 1:
        raise BiaslabError(f"alpha must be in (0, 1) (got {alpha})")
    if not 0 < confidence < 1:
        raise BiaslabError(f"confidence must be in (0, 1) (got {confidence})")
    if not (math.isfinite(margin) and margin >= 0):
        raise BiaslabError(f"margin must be a finite number ≥ 0 (got {margin})")
    d = a - b
    scale = max(1.0, float(np.abs(d).max()))
    d = np.where(np.abs(d) <= 1e-12 * scale, 0.0, d)  # rounding noise is not a difference
    n = d.size
    mean, sd = math.fsum(d) / n, float(d.std(ddof=1))
    if abs(mean) <= 1e-12 * scale:
        mean = 0.0
    constant = sd <= 1e-12 * max(1.0, abs(mean))
    if constant:  # all differences equal (up to rounding): t is undefined
        t_stat = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        t_p = 1.0 if mean == 0.0 else 0.0
        lo = hi = mean
        dz = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        res = stats.ttest_rel(a, b)
        t_stat, t_p = float(res.statistic), float(res.pvalue)
        lo, hi = t_interval(d, confidence)
        dz = mean / sd
    if np.all(d == 0):
        w = 1.0
    else:
        with warnings.catch_warnings():  # scipy warns that small samples use the exact distribution
            warnings.simplefilter("ignore")
            w = float(stats.wilcoxon(a, b, zero_method=WILCOXON_ZERO_METHOD).pvalue)
    p = sign_flip_p(d)
    p_below = sign_flip_p(d, "less", margin)  # evidence that a − b < margin
    p_above = sign_flip_p(d, "greater", -margin)  # evidence that a − b > −margin
    p_equiv = max(p_below, p_above)
    plo, phi, plevel = subset_mean_interval(d, confidence)
    blo, bhi = bootstrap_mean_interval(d, confidence)
    pi, pilo, pihi = prob_improvement(d, confidence)
    verdict = decide(p, p_equiv, mean, alpha)
    need = seeds_to_decide(mean, sd, margin, alpha) if verdict == VERDICTS[3] else None
    return Comparison(
        a=a_name, b=b_name, n=n, diff_mean=mean, diff_std=sd, diff_ci_low=lo, diff_ci_high=hi,
        t_stat=t_stat, p_value=p, wilcoxon_p=w, effect_size=dz,
        a_wins=int(np.sum(d > 0)), b_wins=int(np.sum(d < 0)), ties=int(np.sum(d == 0)),
        alpha=alpha, verdict=verdict, constant=constant, test="sign-flip permutation test", t_p=t_p,
        p_adjusted=p, family=1, min_p=min_p(n), permutations=int(_signs(n).shape[0]), exact=n <= MAX_EXACT,
        margin=margin, p_below=p_below, p_above=p_above, p_equiv=p_equiv, p_equiv_adjusted=p_equiv,
        confidence=confidence, perm_ci_low=plo, perm_ci_high=phi, perm_ci_level=plevel,
        boot_ci_low=blo, boot_ci_high=bhi, prob_a_better=pi, prob_ci_low=pilo, prob_ci_high=pihi,
        seeds_needed=need, look_alpha=alpha, diffs=d,
    )


# ------------------------------------------------------------------------ sequential looks

def spending(t: np.ndarray | float, alpha: float, kind: str = "pocock") -> np.ndarray:
    """Lan–DeMets α-spending at information fraction ``t`` ∈ [0, 1]: the α used up to ``t``.

    ``obrien-fleming``: ``2 − 2Φ(z_{1−α/2}/√t)`` (almost nothing early); ``pocock``:
    ``α · ln(1 + (e − 1)·t)`` (evenly spread).
    """
    from scipy import stats

    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    if kind == "obrien-fleming":
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t)), 0.0)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise BiaslabError(f"unknown spending function {kind!r}; choose pocock or obrien-fleming")


def sequential_looks(cap: int, alpha: float = 0.05, family: int = 1, step: int = 2) -> list[int]:
    """Pre-set looks (numbers of seeds) for a group-sequential run: every ``step`` seeds from the
    first number of seeds at which the sign-flip test can decide a family member at the first
    look's share of α, up to ``cap`` (always a look)."""
    first = max(4, min_seeds(alpha / 4, family))
    if first >= cap:
        return [cap]
    return list(range(first, cap, step)) + [cap]


def look_alphas(looks: list[int], alpha: float = 0.05, kind: str = "pocock") -> list[float]:
    """The level each look tests at: the increment of the spending function between looks
    (information fraction = seeds / the last look's seeds).

    The increments sum to ``alpha``, so by the union bound the chance of any false decision over
    all looks is at most ``alpha`` whatever the correlation between looks (each look's exact
    test is valid at its own level); ``benchmarks/bench_stats.py`` measures the actual rate.
    """
    t = np.asarray(looks, dtype=np.float64) / looks[-1]
    cum = spending(t, alpha, kind)
    return list(np.diff(np.r_[0.0, cum]).astype(float))
