"""The result codec and claims: what results.json stores comes back unchanged."""

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from biaslab.infra.io import BiaslabError
from biaslab.results import Claim, Result, from_payload, load_results, payload
from biaslab.results.base import INLINE_ARRAY_LIMIT, decode, encode


@dataclass
class Inner:
    name: str
    values: list[float]
    maybe: float | None = None


@dataclass
class Sample(Result):
    command: ClassVar[str] = "regression"  # reuses a registered command name for from_payload tests below
    inner: Inner
    arrays: dict[str, np.ndarray]
    pair: tuple[int, int]
    items: list[Inner] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    scratch: list[int] = field(default_factory=list, metadata={"stored": False})


def roundtrip(obj):
    return decode(type(obj), json.loads(json.dumps(encode(obj))))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]),
                  shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=40)))
def test_arrays_roundtrip_exactly_with_dtype_and_shape(a):
    back = decode(np.ndarray, json.loads(json.dumps(encode(a))))
    assert back.dtype == a.dtype and back.shape == a.shape
    np.testing.assert_array_equal(back, a)


def test_large_arrays_are_compressed_small_ones_readable():
    small, large = np.arange(5.0), np.zeros(INLINE_ARRAY_LIMIT + 1, dtype=np.float32)
    assert encode(small)["data"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    enc = encode(large)
    assert "zlib" in enc and "data" not in enc
    assert len(json.dumps(enc)) < large.nbytes / 10  # zeros compress


def test_untagged_encoding_stores_arrays_as_plain_lists(tmp_path):
    """runs.jsonl's form: NumPy values and paths as plain JSON, non-finite numbers as null."""
    rec = {"x": (np.int64(2), [np.float32(0.5)]), "acc": np.array([0.5, np.nan]), "p": tmp_path, "inf": float("inf")}
    assert encode(rec, tag_arrays=False) == {"x": [2, [0.5]], "acc": [0.5, None], "p": str(tmp_path), "inf": None}


def test_nested_dataclasses_tuples_optionals_and_nan_roundtrip():
    s = Sample(Inner("a", [1.0, float("nan")], None), {"m": np.eye(2)}, (3, 4), [Inner("b", [], 2.5)],
               {"seed": 1}, [Claim("c", "t", None, {"x": 1}, "s")], scratch=[9])
    back = roundtrip(s)
    assert back.inner.name == "a" and back.inner.maybe is None
    assert back.inner.values[0] == 1.0 and np.isnan(back.inner.values[1])  # stored as null, read as NaN
    assert encode(s)["inner"]["values"] == [1.0, None]
    assert back.pair == (3, 4) and isinstance(back.pair, tuple)
    assert back.items[0] == Inner("b", [], 2.5)
    np.testing.assert_array_equal(back.arrays["m"], np.eye(2))
    assert back.claims == [Claim("c", "t", None, {"x": 1}, "s")]
    assert "scratch" not in encode(s) and back.scratch == []  # memory-only field


def test_claim_text_is_the_template_for_its_verdict():
    ev = {"gain": -0.04, "sigma": 100}
    kw = dict(statement="ahead at σ = {sigma}", true="ahead by {gain:+.2f} dB", false="not better ({gain:+.2f} dB at σ = {sigma})")
    yes = Claim.decide("g", True, ev, **kw)
    no = Claim.decide("g", False, ev, **kw)
    unknown = Claim.decide("g", None, ev, **kw, unknown="not measured at σ = {sigma}")
    assert yes.text == "ahead by −0.04 dB" and yes.holds is True  # numbers signed with "−"
    assert no.text == "not better (−0.04 dB at σ = 100)" and no.holds is False
    assert Claim.decide("n", True, {"name": "no-bias"}, statement="s", true="{name}", false="").text == "no-bias"
    assert no.statement == "ahead at σ = 100"  # the proposition the verdict is about
    assert unknown.text == "not measured at σ = 100" and unknown.holds is None and unknown.verdict == "not measured"
    assert Claim.decide("g", np.bool_(True), ev, statement="s", true="t", false="f").holds is True


def test_payload_has_the_schema_header_and_older_schemas_are_refused(tmp_path):
    from biaslab.experiments.regression.run import run_regression

    res = run_regression()
    data = payload(res)
    assert data["schema"] == "biaslab.regression/2" and data["command"] == "regression"
    assert {c["id"] for c in data["claims"]} >= {"bias_lowers_mse", "no_bias_residuals_trend"}
    back = from_payload(json.loads(json.dumps(data)))
    assert back.with_bias == res.with_bias and back.claims == res.claims
    np.testing.assert_array_equal(back.predictions["with_bias"], res.predictions["with_bias"])

    old = dict(data, schema="biaslab.regression/1", biaslab_version="0.1.0")
    (tmp_path / "results.json").write_text(json.dumps(old))
    with pytest.raises(BiaslabError, match=r"schema 'biaslab.regression/1' \(biaslab 0.1.0\).*run the command again"):
        load_results(tmp_path)


@pytest.mark.parametrize("content,match", [
    ("{not json", "not valid JSON"),
    ('{"a": 1}', "not a biaslab results file"),
    ('{"schema": "biaslab.nope/2", "command": "nope"}', "unknown command 'nope'"),
    ('{"schema": "biaslab.regression/2", "command": "regression"}', "damaged or incomplete"),
])
def test_broken_results_files_give_clear_errors(tmp_path, content, match):
    (tmp_path / "results.json").write_text(content)
    with pytest.raises(BiaslabError, match=match):
        load_results(tmp_path / "results.json")


def test_missing_results_file_names_the_fix(tmp_path):
    with pytest.raises(BiaslabError, match="written by a biaslab command"):
        load_results(tmp_path)


def test_claim_verdicts_and_holds_go_together():
    assert Claim("a", "t", True).verdict == "holds" and Claim("b", "t", False).verdict == "refuted"
    assert Claim("c", "t", None).verdict == "not measured"
    undecided = Claim.of("d", "inconclusive", "t", {"p_value": 0.3})
    assert undecided.holds is None and undecided.verdict == "inconclusive"
    with pytest.raises(ValueError, match="does not go with"):
        Claim("e", "t", True, {}, "", "refuted")
    with pytest.raises(ValueError, match="not one of"):
        Claim("f", "t", None, {}, "", "does not hold")


def test_verdict_is_stored_and_old_files_derive_it_from_holds():
    from biaslab.results import decode, encode

    undecided = Claim.of("d", "inconclusive", "t", {"p_value": 0.3}, "s")
    stored = encode(undecided)
    assert stored["verdict"] == "inconclusive" and stored["holds"] is None
    assert decode(Claim, stored) == undecided
    old = {k: v for k, v in encode(Claim("x", "t", False)).items() if k != "verdict"}  # a results.json from before
    assert decode(Claim, old).verdict == "refuted"
    assert decode(Claim, {**old, "holds": None}).verdict == "not measured"
