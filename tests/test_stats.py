import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from biaslab.infra.io import BiaslabError
from biaslab.math.stats import (VERDICTS, WILCOXON_ZERO_METHOD, adjust_family, ci_band, holm, look_alphas, min_p,
                                min_seeds, paired_comparison, seeds_to_decide, sequential_looks, sign_flip_p, spending,
                                std_band, subset_mean_interval, summarize, t_interval)

samples = st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=30)


@settings(max_examples=60, deadline=None)
@given(values=samples, confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_t_interval_matches_scipy(values, confidence):
    x = np.array(values)
    sem = stats.sem(x)
    lo, hi = t_interval(x, confidence)
    if sem == 0:
        assert lo == pytest.approx(x.mean()) and hi == pytest.approx(x.mean())
        return
    ref = stats.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=sem)
    assert lo == pytest.approx(ref[0], abs=1e-9) and hi == pytest.approx(ref[1], abs=1e-9)


def test_summarize_by_hand():
    s = summarize([0.9, 0.92, 0.94])
    assert s.n == 3 and s.mean == pytest.approx(0.92) and s.std == pytest.approx(0.02)
    half = stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)  # 4.303 * sd / sqrt(n)
    assert (s.ci_low, s.ci_high) == (pytest.approx(0.92 - half), pytest.approx(0.92 + half))


def _brute_sign_flip(d, alternative="two-sided", mu=0.0):
    """Reference: loop over every sign pattern with itertools."""
    import itertools

    x = np.asarray(d, float) - mu
    obs = x.sum()
    hits = 0
    for signs in itertools.product([1.0, -1.0], repeat=len(x)):
        t = float(np.dot(signs, x))
        tol = 1e-9 * max(1e-12, np.abs(x).sum())
        hits += (abs(t) >= abs(obs) - tol) if alternative == "two-sided" else (
            t >= obs - tol if alternative == "greater" else t <= obs + tol)
    return hits / 2 ** len(x)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 9), shift=st.floats(-1, 1),
       alternative=st.sampled_from(["two-sided", "greater", "less"]))
def test_sign_flip_matches_brute_force_enumeration(seed, n, shift, alternative):
    rng = np.random.default_rng(seed)
    d = np.round(shift * 0.01 + rng.normal(0, 0.01, n), 3)  # rounded: ties between patterns happen
    assert sign_flip_p(d, alternative) == pytest.approx(_brute_sign_flip(d, alternative), abs=1e-12)
    batch = sign_flip_p(np.vstack([d, -d]), alternative)
    assert batch[0] == pytest.approx(_brute_sign_flip(d, alternative), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 12), shift=st.floats(-1, 1))
def test_paired_comparison_matches_scipy_and_verdict_rule(seed, n, shift):
    rng = np.random.default_rng(seed)
    b = rng.normal(0.9, 0.02, n)
    a = b + shift * 0.01 + rng.normal(0, 0.01, n)
    c = paired_comparison("with-bias", a, "no-bias", b)
    ref = stats.ttest_rel(a, b)
    assert c.t_p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert c.t_stat == pytest.approx(ref.statistic)
    assert c.wilcoxon_p == pytest.approx(stats.wilcoxon(a, b, zero_method="zsplit").pvalue)
    d = a - b
    assert c.p_value == pytest.approx(_brute_sign_flip(d), abs=1e-12) and c.p_value >= c.min_p == 2 / 2 ** n
    assert c.diff_mean == pytest.approx(d.mean())
    assert c.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    assert c.a_wins + c.b_wins + c.ties == n
    p_eq = max(_brute_sign_flip(d, "less", 0.01), _brute_sign_flip(d, "greater", -0.01))
    assert c.p_equiv == pytest.approx(p_eq, abs=1e-12)
    expected = (("bias helps" if d.mean() > 0 else "bias hurts") if c.p_value < 0.05
                else "equivalent" if p_eq < 0.05 else "inconclusive")
    assert c.verdict == expected
    assert (c.seeds_needed is None) or c.verdict == "inconclusive"
    assert c.diff_ci_low <= c.diff_mean <= c.diff_ci_high
    assert c.boot_ci_low <= c.diff_mean <= c.boot_ci_high
    assert c.prob_ci_low <= c.prob_a_better <= c.prob_ci_high
    assert c.prob_a_better == pytest.approx((np.sum(d > 0) + 0.5 * np.sum(d == 0)) / n)


def test_clear_effects_equivalence_and_no_effect():
    b = np.array([0.90, 0.91, 0.92, 0.93, 0.94, 0.95])
    helps = paired_comparison("with-bias", b + [0.05, 0.04, 0.06, 0.05, 0.05, 0.04], "no-bias", b)
    assert helps.verdict == "bias helps" and helps.a_wins == 6 and helps.p_value == pytest.approx(2 / 64)
    hurts = paired_comparison("with-bias", b - [0.05, 0.04, 0.06, 0.05, 0.05, 0.04], "no-bias", b)
    assert hurts.verdict == "bias hurts" and hurts.b_wins == 6
    same = paired_comparison("with-bias", b + [0.001, -0.001, 0.0005, -0.0004, 0.0, 0.0002], "no-bias", b)
    assert same.verdict == "equivalent" and same.p_equiv < 0.05 and same.margin == 0.01
    noise = paired_comparison("with-bias", b + [0.03, -0.03, 0.02, -0.025, 0.0, 0.01], "no-bias", b)
    assert noise.verdict == "inconclusive" and noise.seeds_needed is not None and noise.seeds_needed > 6
    assert set(VERDICTS) == {"bias helps", "bias hurts", "equivalent", "inconclusive"}


def test_degenerate_differences_and_zero_spread_is_not_significant():
    b = np.array([0.5, 0.6, 0.7])
    same = paired_comparison("a", b, "b", b)
    assert same.verdict == "inconclusive" and same.p_value == 1.0 and same.wilcoxon_p == 1.0
    assert same.ties == 3 and same.effect_size == 0.0 and same.constant and same.diff_mean == 0.0
    assert same.p_equiv == 1 / 8  # one-sided: 1/2^3 — 3 seeds cannot show equivalence at 0.05 either
    # the case: a constant −0.22 pp on 3 seeds is one test image, p = 2/2^3 = 0.25, not 0
    constant = paired_comparison("with-bias", b - 0.0022, "audit", b)
    assert constant.constant and constant.p_value == pytest.approx(0.25) and constant.verdict == "inconclusive"
    assert constant.min_p == 0.25 and constant.seeds_needed is not None
    six = paired_comparison("a", np.r_[b, b] + 0.01, "b", np.r_[b, b])  # +1 pp on all of 6 seeds
    assert six.p_value == pytest.approx(2 / 64) and six.verdict == "bias helps"


def test_minimum_p_and_seeds_the_test_needs():
    assert [min_p(n) for n in (2, 3, 5, 6)] == [0.5, 0.25, 1 / 16, 1 / 32]
    assert min_seeds(0.05) == 6 and min_seeds(0.05, alternative="one-sided") == 5
    assert min_seeds(0.05, family=4) == 8  # Holm's first step needs p < 0.0125: 2/256
    # a clear effect needs no more than the test's floor; a tiny one many more; none decides at cap
    assert seeds_to_decide(0.05, 0.001, 0.01, 0.05) == 6
    assert seeds_to_decide(0.003, 0.02, 0.01, 0.05) > 30
    assert seeds_to_decide(0.0, 0.0, 0.01, 0.05) == 5


def test_holm_against_a_hand_computed_case():
    adj = holm([0.01, 0.04, 0.03, 0.2])
    assert list(adj) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert list(holm([0.5])) == [0.5] and list(holm([0.9, 0.9])) == [1.0, 1.0]


def test_a_family_is_adjusted_and_its_verdicts_use_the_adjusted_p():
    rng = np.random.default_rng(3)
    b = rng.normal(0.9, 0.01, 6)
    clear = paired_comparison("with-bias", b + 0.05, "no-bias", b)  # p = 2/64 alone: significant
    others = [paired_comparison("with-bias", b + rng.normal(0, 0.01, 6), "x", b) for _ in range(3)]
    assert clear.verdict == "bias helps" and clear.p_adjusted == clear.p_value
    fam = adjust_family([clear, *others])
    assert fam[0].p_value == clear.p_value and fam[0].p_adjusted == pytest.approx(4 * clear.p_value)
    assert fam[0].family == 4 and fam[0].verdict == "inconclusive"  # 0.125 ≥ 0.05 after Holm
    assert all(f.p_adjusted >= f.p_value for f in fam)


def test_subset_mean_interval_matches_hartigan_by_enumeration():
    import itertools

    d = np.array([0.3, -0.1, 0.4, 0.25, 0.05, 0.2, -0.05])
    means = sorted(np.mean([d[i] for i in idx]) for r in range(1, 8) for idx in itertools.combinations(range(7), r))
    lo, hi, level = subset_mean_interval(d, 0.95)
    k = 3  # floor(0.025 * 128)
    assert (lo, hi) == (pytest.approx(means[k - 1]), pytest.approx(means[-k])) and level == pytest.approx(1 - 6 / 128)
    assert subset_mean_interval(d[:3], 0.95)[:2] == (-math.inf, math.inf)  # 3 seeds: no 95% interval exists


def test_spending_and_looks():
    assert float(spending(1.0, 0.05, "pocock")) == pytest.approx(0.05)
    assert float(spending(1.0, 0.05, "obrien-fleming")) == pytest.approx(0.05)
    assert float(spending(0.5, 0.05, "obrien-fleming")) < float(spending(0.5, 0.05, "pocock"))
    looks = sequential_looks(20, 0.05, family=1)
    assert looks[-1] == 20 and looks == sorted(looks) and looks[0] >= 4
    alphas = look_alphas(looks, 0.05)
    assert sum(alphas) == pytest.approx(0.05) and all(a > 0 for a in alphas)


def _null_rate(draw, n, sims, seed):
    """Share of null simulations where the verdict is a significant difference (a false holds or refuted)."""
    rng = np.random.default_rng(seed)
    D = draw(rng, (sims, n))
    return float(np.mean(sign_flip_p(D) < 0.05))


def _discrete(rng, shape, items=450):
    """Accuracies of two models on `items` test items: per-seed skill shared, item errors independent."""
    p = rng.uniform(0.9, 0.97, size=shape)
    return (rng.binomial(items, p) - rng.binomial(items, p)) / items


@pytest.mark.parametrize("name,draw", [
    ("normal", lambda rng, shape: rng.normal(0, 0.01, shape)),
    ("t3", lambda rng, shape: 0.01 * rng.standard_t(3, shape)),
    ("discrete", _discrete),
])
@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_false_decision_rate_under_the_null_is_at_most_alpha(name, draw, n):
    """1,500 fixed-seed simulations: the rate must stay below alpha + a binomial 3-sigma tolerance."""
    sims = 1500
    rate = _null_rate(draw, n, sims, seed=n)
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / sims), rate
    if n < 6:
        assert rate == 0.0  # 2/2^n > 0.05: no pattern of 5 or fewer seeds is significant


def test_false_equivalence_rate_at_the_margin_is_at_most_alpha():
    rng = np.random.default_rng(7)
    sims, n = 1500, 10
    D = 0.01 + rng.normal(0, 0.005, (sims, n))  # true difference exactly +1 pp: not equivalent
    p_eq = np.maximum(sign_flip_p(D, "less", 0.01), sign_flip_p(D, "greater", -0.01))
    assert np.mean(p_eq < 0.05) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / sims)


def test_the_test_has_power_when_the_effect_is_real():
    """The calibration tests above could pass with a test that never rejects; this one cannot."""
    rng = np.random.default_rng(11)
    D = 0.02 + rng.normal(0, 0.01, (1000, 10))  # +2 pp, sd 1 pp, 10 seeds
    assert np.mean(sign_flip_p(D) < 0.05) > 0.9


def test_rounding_noise_is_not_a_difference():
    # 0.1 + 0.2 - 0.3 is 5.6e-17 in floats: a mean difference of rounding noise must print as 0.
    a = np.array([0.1 + 0.2, 0.5, 0.7, 0.4])
    b = np.array([0.3, 0.5, 0.7, 0.4])
    c = paired_comparison("a", a, "b", b)
    assert c.diff_mean == 0.0 and not math.copysign(1.0, c.diff_mean) < 0
    assert c.ties == 4 and c.p_value == 1.0


def test_wilcoxon_with_zero_differences_matches_scipy_zsplit():
    """Pins the zero-difference handling: seeds where both variants tie (common with accuracies)."""
    b = np.array([0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97])
    b = np.r_[b, 0.98, 0.99]
    a = b + np.array([0.0, 0.0, 0.01, 0.02, 0.03, -0.01, 0.04, 0.05, 0.06, -0.02])
    c = paired_comparison("with-bias", a, "no-bias", b)
    assert WILCOXON_ZERO_METHOD == "zsplit"
    assert c.wilcoxon_p == pytest.approx(stats.wilcoxon(a, b, zero_method="zsplit").pvalue, rel=1e-12)
    assert c.wilcoxon_p == pytest.approx(0.1015625, rel=1e-6)  # scipy 1.x, exact: pinned by value
    # dropping the zeros ("wilcox") gives another answer here, so that change cannot pass unnoticed
    assert c.wilcoxon_p != pytest.approx(stats.wilcoxon(a, b, zero_method="wilcox").pvalue, rel=1e-3)
    assert c.ties == 2
    # with many seeds scipy uses the normal approximation, where all three treatments differ
    d = np.r_[np.zeros(10), np.arange(1, 41) % 7 - 2] / 100.0
    many = paired_comparison("with-bias", 0.5 + d, "no-bias", np.full(d.size, 0.5))
    assert many.ties == 16
    assert many.wilcoxon_p == pytest.approx(stats.wilcoxon(d, zero_method="zsplit").pvalue, rel=1e-9)
    for other in ("wilcox", "pratt"):
        assert many.wilcoxon_p != pytest.approx(stats.wilcoxon(d, zero_method=other).pvalue, rel=1e-3)


def test_t_test_and_interval_against_scipy_reference():
    """A fixed case checked against scipy's paired t-test and t interval (not the code's own formula)."""
    a = np.array([0.984, 0.991, 0.979, 0.986, 0.990])
    b = np.array([0.980, 0.985, 0.981, 0.978, 0.983])
    c = paired_comparison("with-bias", a, "no-bias", b)
    ref = stats.ttest_rel(a, b)
    d = a - b
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert (c.t_stat, c.t_p) == (pytest.approx(ref.statistic, rel=1e-12), pytest.approx(ref.pvalue, rel=1e-12))
    assert (c.diff_ci_low, c.diff_ci_high) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
    assert c.t_stat == pytest.approx(2.5877, abs=1e-4) and c.t_p == pytest.approx(0.0608, abs=1e-4)  # t on 4 d.f.
    # d = (4, 6, -2, 8, 7)/1000: of the 32 sign patterns, |sum| >= 23 for (+,+,±,+,+) and their negatives
    assert c.p_value == pytest.approx(4 / 32)
    # every difference lies within ±1 pp: each one-sided TOST test gives its floor 1/2^5 < 0.05
    assert c.p_equiv == pytest.approx(1 / 32) and c.verdict == "equivalent"


def test_accuracy_interval_is_clipped_and_says_so():
    s = summarize([1.0, 0.95, 1.0], bounds=(0.0, 1.0))
    assert s.ci_high == 1.0 and s.clipped and s.ci_low == pytest.approx(t_interval([1.0, 0.95, 1.0])[0])
    inside = summarize([0.5, 0.55, 0.6], bounds=(0.0, 1.0))
    assert not inside.clipped


def test_bands():
    x = np.array([[0.9, 1.0], [1.0, 1.0], [0.8, 0.9]])
    ci = ci_band(x)
    lo, hi = stats.t.interval(0.95, 2, loc=x[:, 0].mean(), scale=stats.sem(x[:, 0]))
    assert ci.kind == "ci" and ci.low[0] == pytest.approx(lo) and ci.high[0] == pytest.approx(min(hi, 1.0))
    assert np.all(ci.high <= 1.0)
    sd = std_band(x)
    assert sd.kind == "std" and sd.high[0] - sd.mean[0] == pytest.approx(x[:, 0].std(ddof=1))


@pytest.mark.parametrize("a,b,match", [
    ([0.9], [0.8], "at least 2 seeds"),
    ([0.9, 0.8], [0.8, 0.7, 0.6], "paired by seed"),
    ([0.9, float("nan")], [0.8, 0.7], "NaN"),
])
def test_bad_input(a, b, match):
    with pytest.raises(BiaslabError, match=match):
        paired_comparison("a", a, "b", b)


def test_sequential_design_controls_false_positives_and_naive_peeking_does_not():
    """2,000 null simulations, looks up to 20 seeds: spending keeps the rate ≤ alpha; testing at alpha
    at every look (optional stopping) inflates it, so this test can tell the two apart."""
    rng = np.random.default_rng(5)
    sims = 2000
    D = rng.normal(0, 0.01, (sims, 20))
    looks = sequential_looks(20, 0.05, 1)
    pvals = {n: sign_flip_p(D[:, :n]) for n in looks}
    tol = 3 * math.sqrt(0.05 * 0.95 / sims)
    for kind in ("pocock", "obrien-fleming"):
        reject = np.zeros(sims, bool)
        for n, a in zip(looks, look_alphas(looks, 0.05, kind)):
            reject |= pvals[n] < a
        assert reject.mean() <= 0.05 + tol, (kind, reject.mean())
    naive = np.zeros(sims, bool)
    for n in looks:
        naive |= pvals[n] < 0.05
    assert naive.mean() > 0.08  # measured 0.13 with 10,000 simulations (bench_stats.py)


@pytest.mark.parametrize("name,draw", [
    ("normal", lambda rng, shape: rng.normal(0, 0.01, shape)),
    ("t3", lambda rng, shape: 0.01 * rng.standard_t(3, shape)),
])
def test_exact_interval_covers_at_least_its_level(name, draw):
    """1,500 fixed-seed simulations with 8 seeds: Hartigan's interval covers the centre at its stated level
    (within a binomial 3-sigma tolerance), and it is finite, so it could miss."""
    sims = 1500
    D = draw(np.random.default_rng(21), (sims, 8))
    lo, hi, level = subset_mean_interval(D, 0.95)
    assert np.all(np.isfinite(lo)) and level == pytest.approx(1 - 2 * 6 / 256)
    cover = np.mean((lo <= 0) & (0 <= hi))
    assert cover >= level - 3 * math.sqrt(level * (1 - level) / sims), cover
    # shifted data: the interval moves with them and no longer covers 0 most of the time
    assert np.mean((lo + 0.03 <= 0) & (0 <= hi + 0.03)) < 0.5
