"""remove_redundant_biases / fold_batchnorm / load_fixed: equivalence, purity, dtype, refusals."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from biaslab.experiments.audit import compare_outputs, fold_batchnorm, fold_bn_weights, load_fixed, remove_redundant_biases
from biaslab.infra.io import BiaslabError


def trained_bn(model, shape):
    model.train()
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(shape, dtype=dtype) * 3 - 1)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-1.0, 1.0)
    return model.eval()


def small_net(dtype=torch.float32):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.ConvTranspose2d(6, 4, 2, stride=2, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5), nn.BatchNorm1d(5, affine=False), nn.Linear(5, 2),
    ).to(dtype)
    return trained_bn(net, (8, 3, 6, 6))


def test_removal_returns_a_new_module_and_leaves_the_input_alone():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fixed = remove_redundant_biases(net, torch.randn(4, 3, 6, 6))
    assert fixed is not net
    assert fixed[0].bias is None and fixed[8].bias is None  # conv → BN and linear → BN1d
    assert net[0].bias is not None
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    # running_mean absorbed the bias: eval mode is unchanged too
    assert torch.allclose(fixed[1].running_mean, net[1].running_mean - net[0].bias.detach())
    x = [(torch.randn(8, 3, 6, 6),)]
    assert compare_outputs(net, fixed, x, "train").max_rel_diff < 1e-5
    assert compare_outputs(net, fixed, x, "eval").max_rel_diff < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fold_matches_eval_output_and_keeps_dtype_and_requires_grad(dtype):
    net = small_net(dtype)
    net[3].weight.requires_grad_(False)
    folded = fold_batchnorm(net, torch.randn(4, 3, 6, 6, dtype=dtype))
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[4], nn.Identity)
    assert isinstance(folded[9], nn.Identity)
    assert isinstance(net[1], nn.BatchNorm2d)  # input untouched
    assert folded[0].weight.dtype == dtype and folded[3].bias.dtype == dtype
    assert not folded[3].weight.requires_grad and not folded[3].bias.requires_grad
    assert folded[0].weight.requires_grad
    x = torch.randn(5, 3, 6, 6, dtype=dtype)
    with torch.no_grad():
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        assert torch.allclose(folded(x), net(x), atol=tol, rtol=tol)


def test_fold_refuses_training_mode():
    with pytest.raises(BiaslabError, match="eval mode"):
        fold_batchnorm(small_net().train(), torch.randn(4, 3, 6, 6))


def test_fold_works_on_models_fx_cannot_trace():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)

        def forward(self, x):
            return self.bn(self.conv(x)) if x.sum() > -1e9 else x

    model = trained_bn(Branchy(), (4, 1, 4, 4))
    folded = fold_batchnorm(model, torch.randn(2, 1, 4, 4))
    assert isinstance(folded.bn, nn.Identity)


@settings(max_examples=25, deadline=None)
@given(c_in=st.integers(1, 3), c_out=st.integers(1, 4), k=st.integers(1, 3), bias=st.booleans(),
       affine=st.booleans(), seed=st.integers(0, 10_000))
def test_fold_bn_weights_equals_conv_then_batchnorm(c_in, c_out, k, bias, affine, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c_out, c_in, k, k, generator=g, dtype=torch.float64)
    b = torch.randn(c_out, generator=g, dtype=torch.float64) if bias else None
    mean, var = torch.randn(c_out, generator=g, dtype=torch.float64), torch.rand(c_out, generator=g, dtype=torch.float64) + 0.1
    gamma = torch.randn(c_out, generator=g, dtype=torch.float64) if affine else None
    beta = torch.randn(c_out, generator=g, dtype=torch.float64) if affine else None
    x = torch.randn(2, c_in, 5, 5, generator=g, dtype=torch.float64)
    ref = F.batch_norm(F.conv2d(x, w, b), mean, var, gamma, beta, training=False, eps=1e-5)
    fw, fb = fold_bn_weights(w, b, mean, var, 1e-5, gamma, beta)
    assert torch.allclose(F.conv2d(x, fw, fb), ref, atol=1e-10)


def test_load_fixed_round_trip_for_removal_and_fold(tmp_path):
    net = small_net()
    x = torch.randn(4, 3, 6, 6)
    removed = remove_redundant_biases(net, x)
    folded = fold_batchnorm(removed.eval(), x)
    for name, fixed in (("removed", removed), ("folded", folded)):
        path = tmp_path / f"{name}.pt"
        torch.save(fixed.state_dict(), path)
        fresh = small_net()
        with torch.no_grad():  # scramble everything, so only a correct load can reproduce the output
            for k, v in fresh.state_dict().items():
                if v.is_floating_point():
                    v.uniform_(0.5, 2.0) if "running_var" in k else v.normal_()
        loaded = load_fixed(fresh, path).eval()
        with torch.no_grad():
            assert torch.allclose(loaded(x), net(x), atol=1e-5)
    assert isinstance(loaded[1], nn.Identity) and loaded[3].bias is not None


def test_load_fixed_lists_a_real_mismatch(tmp_path):
    path = tmp_path / "wrong.pt"
    torch.save({"0.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(BiaslabError, match="missing"):
        load_fixed(small_net(), path)


def test_compare_outputs_uses_the_same_dropout_masks():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 2))
    same = compare_outputs(net, net, [(torch.randn(3, 4),)] * 3, "train")
    assert same.max_abs_diff == 0.0 and same.n_inputs == 3


class Block(nn.Module):
    """LayerNorm → Linear (its shift folds), attention (its value bias folds into out_proj)."""

    def __init__(self):
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(8), nn.Linear(8, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        y = self.fc(self.norm(x)).relu()
        return self.attn(y, y, y)[0]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_fold_biases_folds_every_foldable_bias(dtype, tol):
    from biaslab.experiments.audit import find_biases, fold_biases

    torch.manual_seed(0)
    model = Block().to(dtype).eval()
    with torch.no_grad():
        model.norm.bias.uniform_(-1, 1)
        model.attn.in_proj_bias.uniform_(-1, 1)
    x = torch.randn(3, 5, 8, dtype=dtype)
    folded, names, checks = fold_biases(model, x)
    assert names == ["attn.in_proj_bias[value] → attn.out_proj", "norm.bias → fc"]
    assert folded.norm.bias is None and torch.all(folded.attn.in_proj_bias[16:] == 0)
    assert all(c.max_rel_diff <= tol for c in checks) and {c.dtype for c in checks} >= {"float64"}
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), rtol=tol, atol=tol)
    again = {f.label: f.status for f in find_biases(folded, x)}
    assert "norm.bias" not in again and again["attn.in_proj_bias[key]"] == "redundant"


def test_removal_zeroes_the_redundant_key_part_of_a_packed_bias():
    torch.manual_seed(0)
    model = Block().double()
    with torch.no_grad():
        model.attn.in_proj_bias.uniform_(-1, 1)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    fixed = remove_redundant_biases(model, x)  # checked in train and eval mode before it returns
    bias = fixed.attn.in_proj_bias.detach()
    assert torch.all(bias[8:16] == 0) and torch.equal(bias[:8], model.attn.in_proj_bias.detach()[:8])
