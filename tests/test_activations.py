import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from biaslab.activations import ACTIVATIONS, activate, run_relu, threshold
from biaslab.io import BiaslabError

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
    res = run_relu(w=0.0, biases=[-1.0, 1.0]).to_dict()
    assert [t["x"] for t in res["thresholds"]] == [None, None]
    assert "never" in res["thresholds"][0]["active_when"]
    assert "always" in res["thresholds"][1]["active_when"]


def test_default_thresholds_and_plane():
    d = run_relu().to_dict()
    assert [t["x"] for t in d["thresholds"]] == [2.0, 1.0, 0.0, -1.0, -2.0]
    bounds = d["plane"]["boundaries"]
    assert bounds[2]["distance_from_origin"] == 0.0  # b = 0: boundary through the origin
    assert bounds[4]["distance_from_origin"] == pytest.approx(2 / np.sqrt(2))
    assert "exceeds −b" in d["rule"]


def test_negative_weight_flips_side():
    d = run_relu(w=-2.0, biases=[1.0]).to_dict()
    assert d["thresholds"][0]["x"] == 0.5
    assert d["thresholds"][0]["active_when"] == "x < 0.5"


def test_bad_inputs():
    with pytest.raises(BiaslabError, match="unknown activation"):
        activate(np.zeros(2), "swish")
    with pytest.raises(BiaslabError, match="at least one bias"):
        run_relu(biases=[])
    with pytest.raises(BiaslabError, match="finite"):
        run_relu(biases=[float("nan")])
    with pytest.raises(BiaslabError, match="plane-w"):
        run_relu(plane_w=(0.0, 0.0))
