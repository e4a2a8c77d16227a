import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error

from biaslab.infra.io import BiaslabError
from biaslab.experiments.regression.data import make_line_data, train_test_split
from biaslab.experiments.regression.run import run_regression
from biaslab.math.least_squares import fit_linear, mse


def original_snippet_data():
    """The data exactly as the classic demonstration draws it."""
    np.random.seed(42)
    X = np.linspace(0, 10, 50).reshape(-1, 1)
    y = 3 * X + 2 + np.random.normal(0, 2, size=(50, 1))
    return X, y


def test_seed_data_is_bit_identical_to_original():
    X0, y0 = original_snippet_data()
    X, y = make_line_data()
    assert np.array_equal(X, X0)
    assert np.array_equal(y, y0)


def test_exact_numbers_of_the_seed_demo():
    res = run_regression()
    d = res.to_dict()
    assert d["without_bias"]["mse"] == 4.4679407950601835
    assert d["with_bias"]["mse"] == 3.3005671804446304
    assert d["without_bias"]["intercept"] == 0.0
    assert d["without_bias"]["coef"][0] == pytest.approx(3.20014054, abs=1e-8)
    assert d["with_bias"]["coef"][0] == pytest.approx(2.8840332, abs=1e-7)
    assert d["with_bias"]["intercept"] == pytest.approx(2.12888618, abs=1e-8)
    assert d["n_samples"] == 50


def test_matches_sklearn_bit_for_bit_on_seed_data():
    X, y = original_snippet_data()
    for fit_intercept in (False, True):
        ref = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
        ours = fit_linear(X, y, fit_intercept)
        assert np.array_equal(ours.coef, ref.coef_.ravel())
        assert ours.intercept == float(np.ravel(ref.intercept_)[0]) if fit_intercept else ours.intercept == 0.0
        assert mse(y, ours.predict(X)) == mean_squared_error(y, ref.predict(X))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 60),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    offset=st.floats(-50, 50),
    fit_intercept=st.booleans(),
)
def test_matches_sklearn_on_random_problems(n, d, seed, offset, fit_intercept):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10) + offset
    y = X @ rng.normal(size=(d, 1)) + offset + rng.normal(size=(n, 1))
    ref = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    ours = fit_linear(X, y, fit_intercept)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8, atol=1e-8 * (1 + abs(offset)))


def test_zero_true_intercept_fits_agree_and_the_claim_says_so():
    res = run_regression(intercept=0.0)
    d = res.to_dict()
    assert abs(d["with_bias"]["intercept"]) < 1.5  # noise-level only
    assert d["without_bias"]["mse"] - d["with_bias"]["mse"] < 0.1
    claim = res.claim("bias_lowers_mse")
    assert claim.holds is False and "does not lower" in claim.text
    assert claim.evidence["relative_reduction"] < claim.evidence["threshold"] == 0.01


def test_bias_gap_grows_with_true_intercept():
    gaps = []
    for b in (0.0, 2.0, 10.0):
        r = run_regression(intercept=b)
        gaps.append(r.without_bias.mse - r.with_bias.mse)
    assert gaps[0] < gaps[1] < gaps[2]


def test_r2_matches_sklearn():
    from sklearn.metrics import r2_score

    from biaslab.math.least_squares import r2

    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 1)) * 3 + 1
    pred = y + rng.normal(size=(40, 1))
    assert r2(y, pred) == pytest.approx(r2_score(y, pred), rel=1e-12)
    res = run_regression()
    assert res.with_bias.r2 == pytest.approx(r2_score(res.y, res.predictions["with_bias"]), rel=1e-12)


def test_classic_demo_claims_hold_with_their_evidence():
    res = run_regression()
    lowers, trend = res.claim("bias_lowers_mse"), res.claim("no_bias_residuals_trend")
    assert lowers.holds is True
    assert lowers.evidence["mse_without_bias"] == 4.4679407950601835
    assert lowers.evidence["mse_with_bias"] == 3.3005671804446304
    assert "4.468" in lowers.text and "3.301" in lowers.text
    assert trend.holds is True and trend.evidence["p"] < 0.05 and trend.evidence["against"] == "input"


def test_symmetric_range_gives_an_offset_not_a_trend():
    # The no-bias fit on x in [-3, 3] keeps the right slope; its residuals are a flat +5.
    res = run_regression(n=200, slope=-1, intercept=5, noise=0.5, x_min=-3, x_max=3, seed=1)
    trend = res.claim("no_bias_residuals_trend")
    assert trend.holds is False and "do not trend" in trend.text
    assert abs(trend.evidence["r"]) < 0.1
    assert res.without_bias.coef[0] == pytest.approx(-1, abs=0.05)
    assert res.claim("bias_lowers_mse").holds is True


def test_residual_trend_p_value_matches_scipy_pearson():
    from scipy.stats import pearsonr

    from biaslab.experiments.regression.claims import residual_trend

    rng = np.random.default_rng(3)
    a = rng.normal(size=30)
    r = 0.3 * a + rng.normal(size=30)
    t = residual_trend(a, r, "input")
    ref = pearsonr(a, r)
    assert t.r == pytest.approx(ref.statistic, rel=1e-10)
    assert t.p == pytest.approx(ref.pvalue, rel=1e-8)
    assert t.slope == pytest.approx(np.polyfit(a, r, 1)[0], rel=1e-10)


def test_several_features_trend_is_against_fitted_values_not_true_y():
    res = run_regression(dataset="diabetes", feature="all")
    for name in ("with_bias", "without_bias"):
        assert res.residual_trends[name].against == "fitted values"
    # least squares with intercept leaves residuals orthogonal to its fitted values: no trend
    assert abs(res.residual_trends["with_bias"].r) < 1e-8


def test_held_out_split_is_disjoint_and_reported():
    X, y = make_line_data()
    Xtr, Xte, ytr, yte = train_test_split(X, y, 0.3, seed=0)
    assert len(Xte) == 15 and len(Xtr) == 35
    assert not set(Xtr[:, 0]) & set(Xte[:, 0])
    d = run_regression(test_fraction=0.3).to_dict()
    assert d["n_samples"] == 35 and d["n_test"] == 15
    assert d["with_bias"]["test_mse"] < d["without_bias"]["test_mse"]


def test_diabetes_single_feature_and_all_features():
    one = run_regression(dataset="diabetes", feature="bmi").to_dict()
    assert one["features"] == ["bmi"] and len(one["with_bias"]["coef"]) == 1
    # diabetes features are centred but the target is not: without bias the fit is poor
    assert one["without_bias"]["mse"] > 5 * one["with_bias"]["mse"]
    every = run_regression(dataset="diabetes", feature="all").to_dict()
    assert len(every["with_bias"]["coef"]) == 10
    assert every["with_bias"]["intercept"] == pytest.approx(152.13, abs=0.01)


def test_csv_data(tmp_path):
    p = tmp_path / "d.csv"
    rows = ["a,b,target"] + [f"{i},{2 * i},{5 * i + 7}" for i in range(10)]
    p.write_text("\n".join(rows) + "\n")
    d = run_regression(csv=p, x_columns=["a"], y_column="target").to_dict()
    assert d["with_bias"]["intercept"] == pytest.approx(7.0)
    assert d["with_bias"]["coef"][0] == pytest.approx(5.0)
    assert d["with_bias"]["mse"] == pytest.approx(0.0, abs=1e-20)
    assert d["without_bias"]["mse"] > 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "`n`"),
        ({"n": -5}, "`n`"),
        ({"noise": -1.0}, "`noise`"),
        ({"x_min": 5.0, "x_max": 1.0}, "`x_min`"),
        ({"dataset": "mnist"}, "unknown dataset"),
        ({"dataset": "diabetes", "feature": "height"}, "unknown diabetes feature"),
        ({"test_fraction": 1.5}, "`test_fraction`"),
    ],
)
def test_bad_arguments_raise_biaslab_error(kwargs, match):
    with pytest.raises(BiaslabError, match=match):
        run_regression(**kwargs)


def test_csv_errors(tmp_path):
    with pytest.raises(BiaslabError, match="does not exist"):
        run_regression(csv=tmp_path / "missing.csv", x_columns=["a"], y_column="b")
    p = tmp_path / "bad.csv"
    p.write_text("a,b,name\n1,2,x\n2,nan,y\n3,4,z\n")
    with pytest.raises(BiaslabError, match="not numeric"):
        run_regression(csv=p, x_columns=["a"], y_column="name")
    with pytest.raises(BiaslabError, match="NaN"):
        run_regression(csv=p, x_columns=["a"], y_column="b")
    with pytest.raises(BiaslabError, match="not in"):
        run_regression(csv=p, x_columns=["zzz"], y_column="b")
