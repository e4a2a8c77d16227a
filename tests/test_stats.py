import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from biaslab.infra.io import BiaslabError
from biaslab.math.stats import VERDICTS, WILCOXON_ZERO_METHOD, ci_band, paired_comparison, std_band, summarize, t_interval

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


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 25), shift=st.floats(-1, 1))
def test_paired_comparison_matches_scipy_and_verdict_rule(seed, n, shift):
    rng = np.random.default_rng(seed)
    b = rng.normal(0.9, 0.02, n)
    a = b + shift * 0.01 + rng.normal(0, 0.01, n)
    c = paired_comparison("with-bias", a, "no-bias", b)
    ref = stats.ttest_rel(a, b)
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert c.t_stat == pytest.approx(ref.statistic)
    assert c.wilcoxon_p == pytest.approx(stats.wilcoxon(a, b, zero_method="zsplit").pvalue)
    d = a - b
    assert c.diff_mean == pytest.approx(d.mean())
    assert c.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    assert c.a_wins + c.b_wins + c.ties == n
    expected = ("bias helps" if d.mean() > 0 else "bias hurts") if ref.pvalue < 0.05 else "no significant difference"
    assert c.verdict == expected
    assert c.diff_ci_low <= c.diff_mean <= c.diff_ci_high


def test_clear_effects_and_no_effect():
    b = np.array([0.90, 0.91, 0.92, 0.93, 0.94])
    helps = paired_comparison("with-bias", b + [0.05, 0.04, 0.06, 0.05, 0.05], "no-bias", b)
    assert helps.verdict == "bias helps" and helps.a_wins == 5
    hurts = paired_comparison("with-bias", b - [0.05, 0.04, 0.06, 0.05, 0.05], "no-bias", b)
    assert hurts.verdict == "bias hurts" and hurts.b_wins == 5
    noise = paired_comparison("with-bias", b + [0.01, -0.01, 0.005, -0.004, 0.0], "no-bias", b)
    assert noise.verdict == "no significant difference" and noise.ties == 1
    assert set(VERDICTS) == {"bias helps", "no significant difference", "bias hurts"}


def test_degenerate_differences():
    b = np.array([0.5, 0.6, 0.7])
    same = paired_comparison("a", b, "b", b)
    assert same.verdict == "no significant difference" and same.p_value == 1.0 and same.wilcoxon_p == 1.0
    assert same.ties == 3 and same.effect_size == 0.0
    assert same.constant and same.diff_mean == 0.0
    constant = paired_comparison("a", b + 0.01, "b", b)  # identical gain on every seed
    assert constant.verdict == "bias helps" and constant.p_value == 0.0 and constant.constant


def test_rounding_noise_is_not_a_difference():
    # 0.1 + 0.2 - 0.3 is 5.6e-17 in floats: a mean difference of rounding noise must print as 0.
    a = np.array([0.1 + 0.2, 0.5, 0.7, 0.4])
    b = np.array([0.3, 0.5, 0.7, 0.4])
    c = paired_comparison("a", a, "b", b)
    assert c.diff_mean == 0.0 and not math.copysign(1.0, c.diff_mean) < 0


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
    assert (c.t_stat, c.p_value) == (pytest.approx(ref.statistic, rel=1e-12), pytest.approx(ref.pvalue, rel=1e-12))
    assert (c.diff_ci_low, c.diff_ci_high) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
    assert c.t_stat == pytest.approx(2.5877, abs=1e-4) and c.p_value == pytest.approx(0.0608, abs=1e-4)  # t on 4 d.f.


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
