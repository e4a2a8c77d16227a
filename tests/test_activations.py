import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from typer.testing import CliRunner

from biaslab.experiments.relu.run import MAX_ABS_PARAMETER, MAX_BIASES, MIN_ABS_WEIGHT, run_relu
from biaslab.math.activations import ACTIVATIONS, activate, threshold
from biaslab.cli import app
from biaslab.infra.io import BiaslabError
from biaslab.results import from_payload, payload

TORCH = {
    "relu": torch.relu,
    "leaky_relu": torch.nn.functional.leaky_relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": torch.nn.functional.gelu,
    "identity": lambda t: t,
}


@settings(max_examples=30, deadline=None)
@given(
    z=arrays(np.float64, st.integers(1, 50), elements=st.floats(-60, 60)),
    name=st.sampled_from(sorted(ACTIVATIONS)),
)
def test_activations_match_torch(z, name):
    ours = activate(z, name)
    ref = TORCH[name](torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)


@settings(max_examples=50, deadline=None)
@given(w=st.floats(-10, 10).filter(lambda v: abs(v) > 1e-3), b=st.floats(-10, 10))
def test_relu_fires_exactly_beyond_threshold(w, b):
    t = threshold(w, b)
    assert w * t + b == pytest.approx(0.0, abs=1e-9)
    eps = 1e-3
    above, below = t + eps * np.sign(w), t - eps * np.sign(w)
    assert activate(np.array([w * above + b]))[0] > 0
    assert activate(np.array([w * below + b]))[0] == 0


def test_threshold_undefined_without_weight():
    assert threshold(0.0, 1.0) is None
    res = run_relu(w=0.0, biases=[-1.0, 1.0])
    assert [t.x for t in res.thresholds] == [None, None]
    assert [t.active_when for t in res.thresholds] == ["never", "always"]
    assert res.claim("relu_zero_below_minus_b").holds is True


def test_default_thresholds_and_plane():
    res = run_relu()
    assert [t.x for t in res.thresholds] == [2.0, 1.0, 0.0, -1.0, -2.0]
    assert [t.active_when for t in res.thresholds] == ["x > 2", "x > 1", "x > 0", "x > -1", "x > -2"]
    assert res.plane[2].distance_from_origin == 0.0  # b = 0: boundary through the origin
    assert res.plane[4].distance_from_origin == pytest.approx(2 / np.sqrt(2))
    assert [r.origin_active for r in res.plane] == [False, False, False, True, True]
    # the active share of [−3, 3]² against a fine grid count
    g = np.linspace(-3, 3, 1201)
    x1, x2 = np.meshgrid(g, g)
    for r in res.plane:
        assert r.active_share == pytest.approx(np.mean(x1 + x2 + r.b > 0), abs=2e-3)
        assert len(r.boundary) == 2 and np.allclose(r.boundary.sum(axis=1), -r.b)  # ends on w·x = −b
    assert res.plane[2].active_share == 0.5
    np.testing.assert_array_equal(res.curves[0], np.maximum(res.curve_x - 2, 0))


def test_negative_weight_flips_side():
    res = run_relu(w=-2.0, biases=[1.0])
    assert res.thresholds[0].x == 0.5 and res.thresholds[0].active_when == "x < 0.5"


def test_relu_zero_exactly_at_or_below_minus_b():
    """The claim is checked, not asserted: each −b is on the grid, and relu(0) = 0 there ("at most", not "less than")."""
    claim = run_relu(w=1.5, biases=[-2.0, 0.5]).claim("relu_zero_below_minus_b")
    assert claim.holds is True
    assert claim.evidence["mismatches"] == 0 and claim.evidence["checks"] == 2 * claim.evidence["grid_points"]
    assert claim.evidence["folk_mismatches"] > 0  # "less than the bias" puts the threshold at +b
    assert "zero exactly when the weighted sum w·x is at most −b" in claim.text
    assert "the threshold is −b, and at w·x = −b the output is already 0" in claim.text
    assert "folk" not in run_relu(biases=[0.0]).claim("relu_zero_below_minus_b").text.split("mismatches)")[0]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_crosses_its_value_at_zero_at_minus_b(activation):
    res = run_relu(w=0.7, biases=[-1.0, 0.0, 2.5], activation=activation)
    crossing = res.claim("crossing_at_minus_b")
    assert crossing.holds is True and crossing.evidence["mismatches"] == 0
    assert crossing.evidence["value_at_zero"] == res.value_at_threshold == (0.5 if activation == "sigmoid" else 0.0)
    relu_rule = res.claim("relu_zero_below_minus_b")
    assert relu_rule.holds is (True if activation == "relu" else None)
    if activation != "relu":
        assert relu_rule.text.startswith("Not measured")


def test_boundary_through_origin_without_bias():
    claim = run_relu(plane_w=(2.0, -1.0), biases=[-3.0, 1.0]).claim("boundary_through_origin_without_bias")
    assert claim.holds is True
    assert claim.evidence["distance_at_b0"] == 0.0 and claim.evidence["pre_activation_at_origin"] == 0.0
    assert claim.evidence["max_shift"] == pytest.approx(3 / np.sqrt(5))


def test_result_round_trips_through_json():
    res = run_relu(w=2.0, biases=[-1.0, 3.0], activation="tanh")
    again = from_payload(payload(res))
    assert again.thresholds == res.thresholds and again.claims == res.claims
    np.testing.assert_array_equal(again.curves, res.curves)
    np.testing.assert_array_equal(again.plane[1].active_polygon, res.plane[1].active_polygon)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"biases": []}, "at least one bias"),
        ({"biases": [float("nan")]}, "finite"),
        ({"biases": [1e308]}, r"`biases` must be in \[−1e6, 1e6\]"),
        ({"biases": [0.0] * (MAX_BIASES + 1)}, f"at most {MAX_BIASES}"),
        ({"w": 1e-300}, f"\\|w\\| ≥ {MIN_ABS_WEIGHT:g}"),
        ({"w": 2 * MAX_ABS_PARAMETER}, r"`w` must be in \[−1e6, 1e6\]"),
        ({"plane_w": (0.0, 0.0)}, "`plane_w`"),
        ({"x_range": (float("-inf"), float("inf"))}, "`x_range` must be a finite number"),
        ({"x_range": (1.0, 1.0)}, "increasing"),
        ({"activation": "swish"}, "unknown activation"),
    ],
)
def test_bad_inputs(kwargs, match):
    with pytest.raises(BiaslabError, match=match):
        run_relu(**kwargs)


def test_unknown_activation():
    with pytest.raises(BiaslabError, match="unknown activation"):
        activate(np.zeros(2), "swish")


@pytest.mark.parametrize(
    "args",
    [["--b", ",".join(["1"] * 500)], ["--b", "1e308"], ["--x-range", "-inf,inf"], ["--w", "nan"]],
)
def test_cli_refuses_out_of_bounds_with_one_line(tmp_path, args):
    res = CliRunner().invoke(app, ["relu", *args, "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biaslab: error:")
    assert not (tmp_path / "out" / "results.json").exists()


def test_report_rebuilds_the_figures_from_results_alone(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["relu", "--quiet", "--out", str(tmp_path)]).exit_code == 0
    for png in tmp_path.glob("*.png"):
        png.unlink()
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["relu_plane.png", "relu_threshold.png"]
    page = (tmp_path / "report.html").read_text()
    assert "at most −b" in page and "<span class='holds'>holds</span>" in page
