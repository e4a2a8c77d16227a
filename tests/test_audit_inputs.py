"""Statuses that hold for every input, and the user's input wins (issue 21).

* Where torch.fx cannot trace (data-dependent control flow) the graph is recorded from several
  inputs; a bias whose analysis differs between the paths is active.
* ``--verify`` perturbs on fresh inputs never used to record, in training and eval mode, so it
  cannot confirm a status that one input breaks.
* An explicit ``--input-shape`` is always used; token ids only with ``--input-ids`` or for hf: text models.
"""

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.experiments.audit import find_biases
from biaslab.experiments.audit.graph import CONTROL_FLOW, derived_inputs
from biaslab.experiments.audit.target import build_target
from biaslab.experiments.audit.verify import VERIFY_TOLERANCE, fresh_inputs, output_moves, verify_findings

PATTERNS = Path(__file__).parent / "models" / "audit_patterns.py"
runner = CliRunner()


def control_flow(seed):
    torch.manual_seed(seed)
    return build_target(f"{PATTERNS}:control_flow"), torch.randn(2, 3, 8, 8)


def audit(*args):
    return runner.invoke(app, ["audit", *map(str, args)])


@pytest.mark.parametrize("seed", range(6))
def test_control_flow_bias_is_never_redundant(seed):
    model, x = control_flow(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = {f.param: f for f in find_biases(model, x)}
    assert f["c1.bias"].status == "active" and f["c1.bias"].short_reason == CONTROL_FLOW
    assert CONTROL_FLOW in f["c1.bias"].reason and "redundant" in f["c1.bias"].reason  # what one path said
    assert f["bn1.bias"].status == "active"  # foldable on one path, unused on the other
    assert f["fc.bias"].status == "active" and f["fc.bias"].short_reason != CONTROL_FLOW
    # the ground truth: zeroing c1.bias moves the output on some input
    moves = output_moves(model, x, seed)
    assert moves("c1.bias") > VERIFY_TOLERANCE


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_control_flow_on_the_command_line_for_every_seed(seed, tmp_path):
    res = audit(f"{PATTERNS}:control_flow", "--input-shape", "2,3,8,8", "--seed", seed, "--verify", "--json",
                "--out", tmp_path)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    status = {b["param"]: b for b in d["biases"]}
    assert status["c1.bias"]["status"] == "active" and CONTROL_FLOW in status["c1.bias"]["reason"]
    assert not any(b["status"] == "redundant" for b in d["biases"])
    assert any("recorded from 3 forward passes" in w and "2 different paths" in w for w in d["warnings"])


def test_a_path_taken_only_by_the_data_counts(tmp_path):
    """An input far from the example and its derived inputs takes the other branch: --data records it."""
    from biaslab.experiments.audit.graph import analyse

    class Rare(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.bn, self.fc = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

        def forward(self, x):
            y = self.c(x)
            if x.abs().max() < 100:
                y = self.bn(y)
            return self.fc(y.relu().mean((2, 3)))

    torch.manual_seed(0)
    model, x = Rare(), torch.randn(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = {f.param: f.status for f in analyse(model, x)[0]}
        with_data = {f.param: f for f in analyse(model, x, [x * 1000])[0]}
    assert alone["c.bias"] == "redundant"  # every recorded input takes the BatchNorm branch
    assert with_data["c.bias"].status == "active" and with_data["c.bias"].short_reason == CONTROL_FLOW


@pytest.mark.parametrize("seed", range(4))
def test_verify_cannot_confirm_a_status_that_one_input_breaks(seed):
    """What the audit said before recording several paths: c1.bias redundant, cancelled by bn1. The
    perturbation on fresh inputs (both signs of the mean) refutes it, whatever the seed."""
    model, x = control_flow(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        findings = find_biases(model, x)
    wrong = next(f for f in findings if f.param == "c1.bias")
    wrong.status, wrong.corrections = "redundant", {"bn1.running_mean": model.c1.bias.detach().double().numpy()}
    verify_findings(model, findings, x, seed)
    assert wrong.verified is False


def test_verify_checks_eval_mode_too():
    """conv → BatchNorm: training mode cancels any perturbation; in eval mode only the running-mean
    correction does. A finding without its correction must not be verified."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    x = torch.randn(2, 3, 8, 8)
    findings = find_biases(model, x)
    conv = findings[0]
    assert conv.status == "redundant" and conv.corrections
    verify_findings(model, findings, x)
    assert conv.verified is True
    conv.corrections, conv.verified = None, None
    verify_findings(model, findings, x)
    assert conv.verified is False


def test_a_pass_that_reads_no_input_value_is_recorded_once():
    """nn.MultiheadAttention is kept whole by fx, so its graph is recorded; nothing computed from the input is
    read into Python, so one pass stands for every input of its shape."""
    from biaslab.experiments.audit import graph

    torch.manual_seed(0)
    model, x = build_target(f"{PATTERNS}:packed_attention"), torch.randn(2, 4, 16)
    calls = []
    real = graph._recorded_graph
    graph._recorded_graph = lambda m, a: calls.append(a) or real(m, a)
    try:
        find_biases(model, x)
        assert len(calls) == 1
        calls.clear()
        find_biases(control_flow(0)[0], torch.randn(2, 3, 8, 8))
        assert len(calls) == 3  # x.mean() > 0 reads a value computed from the input
    finally:
        graph._recorded_graph = real


def test_fresh_inputs_are_never_the_recorded_ones():
    x = torch.randn(2, 3, 8, 8)
    recorded = [(x,), *derived_inputs((x,))]
    fresh = fresh_inputs((x,))
    assert len(fresh) >= 4
    assert not any(torch.equal(f[0], r[0]) for f in fresh for r in recorded)
    means = [float(f[0].mean()) for f in fresh]
    assert min(means) < 0 < max(means)  # value-dependent branches see both signs


def test_explicit_input_shape_wins_over_an_embedding(tmp_path):
    res = audit(f"{PATTERNS}:embeddings_in", "--input-shape", "2,6,8", "--json", "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["input_shape"] == [2, 6, 8] and d["params"]["input_ids"] is False
    assert {b["param"]: b["status"] for b in d["biases"]}["fc.bias"] == "active"


def test_a_factory_with_an_embedding_gets_token_ids_only_when_asked(tmp_path):
    res = audit(f"{PATTERNS}:embeddings_in", "--out", tmp_path / "b")
    assert res.exit_code == 2
    assert "--input-shape" in res.stderr and "Traceback" not in res.stderr


def test_library_example_input_is_used_as_given():
    torch.manual_seed(0)
    model = build_target(f"{PATTERNS}:embeddings_in")
    x = torch.randn(3, 6, 8)
    findings = find_biases(model, x)
    assert {f.param for f in findings} >= {"fc.bias", "norm.bias", "head.bias"}


@pytest.mark.parametrize("branch, steer", [
    (lambda x: x.sum() > 0, "__bool__"),
    (lambda x: torch.equal(x, x.abs()), "equal"),
    (lambda x: x.max().item() > 100, "item"),
    (lambda x: len(x.nonzero()) > 3, "nonzero"),
    (lambda x: x.shape[0] > 1 and x.size(1) == 3, None),  # shapes only: every input of this shape agrees
])
def test_the_recorder_sees_every_way_the_input_can_steer_the_pass(branch, steer):
    from biaslab.experiments.audit.record import record

    class Steered(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            y = self.fc(x)
            return y * 2 if branch(x) else y

    rec = record(Steered(), (torch.randn(4, 3),))
    assert rec.value_dependent == steer
