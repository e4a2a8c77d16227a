"""Part by part everywhere (issue 21): a packed bias (nn.MultiheadAttention's in_proj_bias) whose key part
alone is redundant loses exactly that part — in ablate's ``audit`` variant, in removal, in --fix and in the
contributions — and its query and value parts stay as they are, trainable."""

import json
from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrize

from biaslab.experiments.ablate import run_ablate
from biaslab.experiments.ablate.variants import removed_biases, removed_parts, variant_mask
from biaslab.experiments.audit import bias_contributions, find_biases, remove_redundant_biases
from biaslab.experiments.audit.fix import HeldAtZero
from biaslab.nets.train import TrainConfig, hold_at_zero, train_model

PATTERNS = Path(__file__).parent / "models" / "audit_patterns.py"
KEY = slice(16, 32)


def packed():
    from biaslab.experiments.audit.target import build_target

    torch.manual_seed(0)
    model = build_target(f"{PATTERNS}:packed_attention")
    with torch.no_grad():
        model.attn.in_proj_bias.uniform_(-1, 1)
    return model


def test_audit_variant_removes_exactly_the_key_part():
    model, x = packed(), torch.randn(2, 1, 8, 8)
    assert removed_parts(model, "audit", x) == {"attn.in_proj_bias": [(16, 32)]}
    assert removed_biases(model, "audit", x) == []  # no bias is removed whole
    keep = variant_mask(model, "audit", x)["attn.in_proj_bias"]
    assert keep.shape == (48,) and int((~keep).sum()) == 16 and not keep[KEY].any() and keep[:16].all()


@pytest.fixture(scope="module")
def tiny_digits():
    from biaslab.data.datasets import load_dataset

    ds = load_dataset("digits", max_train=64)
    ds.X_test, ds.y_test = ds.X_test[:40], ds.y_test[:40]
    return ds


def test_a_partly_held_bias_trains_only_its_kept_parts(tiny_digits):
    model, x = packed(), torch.randn(2, 1, 8, 8)
    mask = variant_mask(model, "audit", x)
    before = model.attn.in_proj_bias.detach().clone()
    train_model(model, tiny_digits, 0, TrainConfig(epochs=1, batch_size=32, lr=0.01), mask=mask)
    after = model.attn.in_proj_bias.detach()
    assert torch.all(after[KEY] == 0)
    assert not torch.allclose(after[:16], before[:16]) and not torch.allclose(after[32:], before[32:])


def test_ablate_audit_variant_drops_16_of_the_48_packed_values(tmp_path):
    res = run_ablate(models=[f"{PATTERNS}:packed_attention"], datasets=["digits"], variants=["with-bias", "audit"],
                     out_dir=None, epochs=1, seeds=2, max_train=64)
    (cfg,) = res.configurations
    assert cfg.variants["with-bias"].params - cfg.variants["audit"].params == 16


def test_removal_holds_the_key_part_at_zero_and_leaves_the_rest_trainable():
    model, x = packed(), torch.randn(3, 4, 16)
    fixed = remove_redundant_biases(model, x)
    attn = fixed.attn
    assert parametrize.is_parametrized(attn, "in_proj_bias")
    assert isinstance(attn.parametrizations.in_proj_bias[0], HeldAtZero)
    original = attn.parametrizations.in_proj_bias.original
    assert original.requires_grad and original.dtype == model.attn.in_proj_bias.dtype
    assert torch.all(attn.in_proj_bias[KEY] == 0)
    assert torch.equal(attn.in_proj_bias[:16], model.attn.in_proj_bias[:16].detach())
    assert model.attn.in_proj_bias[KEY].abs().sum() > 0 and not parametrize.is_parametrized(model.attn)  # untouched
    fixed(x).sum().backward()
    assert torch.all(original.grad[KEY] == 0) and original.grad[:16].abs().sum() > 0
    assert original.grad[32:].abs().sum() > 0


def test_fix_file_zeroes_only_the_key_part(tmp_path):
    from typer.testing import CliRunner

    from biaslab.cli import app

    out = tmp_path / "fixed.pt"
    res = CliRunner().invoke(app, ["audit", f"{PATTERNS}:packed_attention", "--input-shape", "2,4,16",
                                   "--fix", str(out), "--json", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    state = torch.load(out, weights_only=True)
    bias = state["attn.in_proj_bias"]
    assert torch.all(bias[KEY] == 0) and bias[:16].abs().sum() > 0 and bias[32:].abs().sum() > 0
    assert json.loads(res.stdout)["fix"]["removed"] == ["attn.in_proj_bias[key]"]


def test_contributions_zero_one_part_at_a_time():
    model = packed()
    findings = [f for f in find_biases(model, torch.randn(2, 4, 16)) if f.param == "attn.in_proj_bias"]
    contributions, _ = bias_contributions(model, findings, torch.randn(16, 4, 16))
    change = {c.param: c.output_change for c in contributions}
    assert change["attn.in_proj_bias[key]"] < 1e-6 < min(change["attn.in_proj_bias[query]"],
                                                         change["attn.in_proj_bias[value]"])


def test_hold_at_zero_keeps_whole_parameters_exactly_zero():
    model = packed()
    hold_at_zero(model, {"head.bias": False})
    model(torch.randn(2, 4, 16)).sum().backward()
    assert torch.all(model.head.bias == 0) and torch.all(model.head.bias.grad == 0)
