"""Numbers as people read them: the minus sign, no signed zero, no "p = 0", no "inf"."""

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from biaslab.infra.numfmt import fmt_effect, fmt_fixed, fmt_num, fmt_p, fmt_pct, fmt_signed, number_text


@pytest.mark.parametrize("text,expected", [
    (fmt_num(-3.5e-7), "−3.5e−7"),
    (fmt_num(1e-20), "1e−20"),
    (fmt_num(12345678.0), "1.235e7"),
    (fmt_num(-0.0), "0"),
    (fmt_num(float("-inf")), "−∞"),
    (fmt_num(float("nan")), "n/a"),
    (fmt_num(7), "7"),
    (fmt_fixed(-0.5, 2), "−0.50"),
    (fmt_fixed(-0.0004, 3), "0.000"),
    (fmt_fixed(1.004, 0), "1"),
    (fmt_signed(-0.04, 2, " dB"), "−0.04 dB"),
    (fmt_signed(0.004, 2, " dB"), "0 dB"),
    (fmt_signed(5.634, 2, " dB"), "+5.63 dB"),
    (fmt_p(0.0), "p < 0.0001"),
    (fmt_p(1.0), "p = 1"),
    (fmt_p(0.0412), "p = 0.041"),
    (fmt_pct(-0.5), "−50.0 %"),
    (fmt_pct(0.0004), "< 0.1 %"),
    (fmt_effect(-0.7406), "d_z = −0.74"),
    (fmt_effect(math.inf), "d_z unbounded (every seed differs by the same amount)"),
])
def test_formats(text, expected):
    assert text == expected


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
       st.integers(min_value=0, max_value=6))
def test_fixed_reads_back_as_the_rounded_value_with_a_minus_sign_and_no_signed_zero(x, decimals):
    text = fmt_fixed(x, decimals)
    assert "-" not in text
    value = float(text.replace("−", "-"))
    assert value == float(f"{x:.{decimals}f}")
    assert not text.startswith("−") or value < 0  # "−0.00" never


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(min_value=1, max_value=8))
def test_significant_digits_read_back(x, sig):
    text = fmt_num(x, sig)
    assert "-" not in text
    assert float(text.replace("−", "-")) == float(f"{x:.{sig}g}")


@pytest.mark.parametrize("raw,shown", [("2.6e+04", "2.6e4"), ("-2.6e+04", "−2.6e4"), ("1e-05", "1e−5"),
                                       ("-0.5", "−0.5"), ("3.30", "3.30")])
def test_number_text_writes_exponents_and_signs_as_people_read_them(raw, shown):
    assert number_text(raw) == shown


def test_claim_templates_and_lists_write_numbers_one_way():
    from biaslab.experiments.relu.run import run_relu
    from biaslab.results import Claim

    c = Claim.decide("x", True, {"mse": 26000.0, "b": -0.5}, statement="MSE {mse:.2g}, b = {b}",
                     true="MSE {mse:.2g} and {mse:.3g}, b = {b:g}", false="")
    assert c.text == "MSE 2.6e4 and 2.6e4, b = −0.5" and c.statement == "MSE 2.6e4, b = −0.5"
    text = " ".join(claim.text for claim in run_relu().claims)
    assert "b = −2, −1, 0, 1, 2" in text and not re.search(r"(?<![\w-])-\d", text)
