"""Real-model patterns (issue 21), written as small modules in tests/models/audit_patterns.py (timm is not a
dependency): timm's LeViT (ConvNorm stem, Linear → BatchNorm1d over flattened tokens with reshape_as, an
``attention_biases`` table indexed by a buffer and cached in eval mode), timm's BatchNormAct2d, and a
BatchNorm right after a BatchNorm. Each audits, removes, fixes and folds; every status is checked
against the float64 perturbation ground truth."""

import copy
import json
import warnings
from pathlib import Path

import torch
from torch.nn.utils import parametrize
from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.experiments.audit import compare_outputs, find_biases, fold_biases, load_fixed, remove_redundant_biases
from biaslab.experiments.audit.fix import HeldAtZero
from biaslab.experiments.audit.target import build_target
from biaslab.experiments.audit.verify import VERIFY_TOLERANCE, output_moves

PATTERNS = Path(__file__).parent / "models" / "audit_patterns.py"


def warmed(factory, shape, seed=0):
    """The model in eval mode with running statistics that are not 0 / 1 and biases that are not zero."""
    torch.manual_seed(seed)
    model = build_target(f"{PATTERNS}:{factory}").double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name:
                p.uniform_(-1, 1)
        model.train()
        for _ in range(3):
            model(torch.randn(shape, dtype=torch.float64) * 2 + 1)
    return model.eval()


def statuses(model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {f.param: f for f in find_biases(model, x)}


def assert_ground_truth(model, x, findings):
    """A redundant bias moves nothing (training mode, and eval mode with its running-mean correction);
    every other bias moves the output."""
    moves = output_moves(model, x, modes=("train", "eval"))
    for f in findings.values():
        moved = moves(f.param, slice(*f.span) if f.span else None, f.corrections)
        if f.status == "redundant":
            assert moved <= VERIFY_TOLERANCE, (f.label, moved)
        else:
            assert moved > VERIFY_TOLERANCE, (f.label, f.status, f.reason)


LEVIT_SHAPE = (4, 3, 32, 32)


def test_levit_audits_with_every_bias_analysed():
    model = warmed("levit", LEVIT_SHAPE)
    x = torch.randn(LEVIT_SHAPE, dtype=torch.float64)
    f = statuses(model, x)
    assert not [b.param for b in f.values() if b.reason.startswith("not analysed")]
    assert f["stem.conv4.bn.bias"].status == "redundant"  # was "foldable" behind a missing reshape_as rule
    for i in (1, 2, 3):
        assert f[f"stem.conv{i}.bn.bias"].status == "foldable"
    assert f["attn.qkv.bn.bias"].status == "foldable" and f["attn.qkv.bn.bias"].consumer == "attn.qkv.linear"
    assert f["attn.attention_biases"].status == "active"  # varies between keys
    assert f["attn2.attention_biases"].status == "redundant"  # one key: the softmax removes it
    assert_ground_truth(model, x, f)


def test_levit_removal_holds_the_attention_table_at_zero_and_fold_folds_every_batchnorm():
    model = warmed("levit", LEVIT_SHAPE)
    x = torch.randn(LEVIT_SHAPE, dtype=torch.float64)
    fixed = remove_redundant_biases(model, x)  # was: TypeError, attention_biases set to None
    attn2 = fixed.attn2
    assert parametrize.is_parametrized(attn2, "attention_biases")
    assert isinstance(attn2.parametrizations.attention_biases[0], HeldAtZero)
    assert torch.all(attn2.attention_biases == 0) and fixed.stem.conv4.bn.bias is None
    assert model.attn2.attention_biases.abs().sum() > 0 and model.stem.conv4.bn.bias is not None  # untouched
    copy.deepcopy(model)  # the audit left no cached non-leaf tensor behind
    folded, names, checks = fold_biases(fixed.eval(), x)
    bns = [n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert set(bns) - {"head_bn"} <= set(names) and all(c.passed for c in checks)
    assert compare_outputs(model, folded, [(x,)], "eval").max_rel_diff < 1e-10


def test_levit_fix_and_fold_on_the_command_line(tmp_path):
    out = tmp_path / "levit.pt"
    res = CliRunner().invoke(app, ["audit", f"{PATTERNS}:levit", "--input-shape", "4,3,32,32", "--fix", str(out),
                                   "--fold", "--verify", "--json", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["not_analysed"] == 0
    assert "stem.conv4.bn" in d["fix"]["folded"] and "attn2.attention_biases" in d["fix"]["removed"]
    assert all(b["verified"] for b in d["biases"] if b["status"] == "redundant")
    model = load_fixed(build_target(f"{PATTERNS}:levit"), out)
    assert torch.all(model.attn2.attention_biases == 0)
    report = (tmp_path / "o" / "report.md").read_text()
    assert "none is 'not analysed'" in report


def test_batchnorm_act_folds_and_keeps_its_activation():
    model = warmed("bn_act", (4, 3, 8, 8))
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    f = statuses(model, x)
    assert f["bn1.bias"].status == "foldable" and f["bn1.bias"].consumer == "conv1"
    assert f["bn2.bias"].status == "foldable" and f["bn2.bias"].consumer == "conv2"
    assert_ground_truth(model, x, f)
    folded, names, checks = fold_biases(model, x)
    assert names[:2] == ["bn1", "bn2"] and all(c.passed for c in checks)
    assert isinstance(folded.bn1.act, torch.nn.ReLU) and isinstance(folded.bn2.act, torch.nn.SiLU)
    assert torch.all(folded.bn1.running_mean == 0) and torch.all(folded.bn1.weight == 1)
    assert model.bn1.running_mean.abs().sum() > 0  # the original is untouched


def test_batchnorm_after_batchnorm_folds_both():
    model = warmed("bn_after_bn", (4, 3, 8, 8))
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    f = statuses(model, x)
    assert f["conv.bias"].status == "redundant" and f["bn1.bias"].status == "redundant"
    assert f["bn1.bias"].consumer == "bn2" and f["bn2.bias"].status == "active"
    assert_ground_truth(model, x, f)
    folded, names, checks = fold_biases(remove_redundant_biases(model, x).eval(), x)
    assert names == ["bn1", "bn2"] and all(c.passed for c in checks)
    assert isinstance(folded.bn1, torch.nn.Identity) and isinstance(folded.bn2, torch.nn.Identity)
    assert compare_outputs(model, folded, [(x,)], "eval").max_rel_diff < 1e-10
