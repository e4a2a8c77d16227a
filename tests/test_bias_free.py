"""Bias-free layers and the converter: definition of the paper's BF-BatchNorm, exact homogeneity."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from biaslab.nets.bias_free import (
    BiasFreeBatchNorm1d,
    BiasFreeBatchNorm2d,
    BiasFreeBatchNorm3d,
    make_bias_free,
)
from biaslab.nets.biases import bias_parameters, count_biases
from biaslab.infra.io import BiaslabError


def _reference_bf_bn(x: torch.Tensor, weight: torch.Tensor, std: torch.Tensor, eps: float) -> torch.Tensor:
    """The paper's formula written out per channel: γ_c · x / (σ_c + eps), no mean, no shift."""
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        out[:, c] = weight[c] * x[:, c] / (std[c] + eps)
    return out


def test_bf_batchnorm_training_divides_by_batch_std_without_centring():
    torch.manual_seed(0)
    bn = BiasFreeBatchNorm2d(3, momentum=0.25).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
    x = torch.randn(4, 3, 5, 6, dtype=torch.float64) * 3 + 7  # far from zero mean
    y = bn(x)
    per_channel = x.transpose(0, 1).reshape(3, -1)
    std = per_channel.std(dim=1, unbiased=True)
    torch.testing.assert_close(y, _reference_bf_bn(x, bn.weight.detach(), std, bn.eps))
    # the mean is not removed: the output keeps the sign and offset of the input
    assert (y[:, 0] > 0).all()
    # running variance: (1 − momentum)·1 + momentum·batch variance
    torch.testing.assert_close(bn.running_var, 0.75 + 0.25 * per_channel.var(dim=1, unbiased=True))
    assert not hasattr(bn, "bias") or bn.bias is None
    assert "bias" not in dict(bn.named_parameters())


def test_bf_batchnorm_eval_uses_running_variance_and_is_linear():
    bn = BiasFreeBatchNorm2d(2).double()
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor([4.0, 0.25], dtype=torch.float64))
        bn.weight.copy_(torch.tensor([3.0, 1.0], dtype=torch.float64))
    bn.eval()
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    expected = _reference_bf_bn(x, bn.weight.detach(), bn.running_var.sqrt(), bn.eps)
    torch.testing.assert_close(bn(x), expected)
    torch.testing.assert_close(bn(x + 2 * x), 3 * bn(x))  # linear in eval mode
    before = bn.running_var.clone()
    bn(x * 100)
    torch.testing.assert_close(bn.running_var, before)  # eval does not update the statistics


def test_bf_batchnorm_checks_input_rank():
    with pytest.raises(ValueError, match="4-D"):
        BiasFreeBatchNorm2d(3)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="shape"):
        BiasFreeBatchNorm2d(3)(torch.randn(2, 4, 5, 5))
    assert BiasFreeBatchNorm1d(3)(torch.randn(5, 3)).shape == (5, 3)
    assert BiasFreeBatchNorm3d(3)(torch.randn(2, 3, 2, 2, 2)).shape == (2, 3, 2, 2, 2)


def test_make_bias_free_removes_every_bias_and_leaves_the_input_alone():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.ConvTranspose2d(4, 4, 2, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 3),
    )
    model[1].running_var.fill_(2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bf = make_bias_free(model)
    assert count_biases(model) == 4 + 4 + 4 + 3
    assert count_biases(bf) == 0
    assert isinstance(bf[1], BiasFreeBatchNorm2d)
    torch.testing.assert_close(bf[1].running_var, torch.full((4,), 2.0))
    torch.testing.assert_close(bf[0].weight, model[0].weight)  # kernels kept
    assert bf[0].weight is not model[0].weight  # ... but copied
    for k, v in model.state_dict().items():  # the original is untouched
        torch.testing.assert_close(v, before[k])
    assert isinstance(model[1], nn.BatchNorm2d) and model[0].bias is not None


def test_make_bias_free_keeps_dtype_mode_and_requires_grad():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).double().eval()
    model[0].weight.requires_grad_(False)
    bf = make_bias_free(model)
    assert bf[1].weight.dtype == torch.float64 and bf[1].running_var.dtype == torch.float64
    assert not bf.training and not bf[1].training
    assert not bf[0].weight.requires_grad and bf[1].weight.requires_grad


def test_make_bias_free_of_a_single_layer():
    bn = make_bias_free(nn.BatchNorm2d(5))
    assert isinstance(bn, BiasFreeBatchNorm2d)
    lin = make_bias_free(nn.Linear(2, 2))
    assert lin.bias is None


def test_make_bias_free_refuses_per_sample_normalisation():
    with pytest.raises(BiaslabError, match="1 .*GroupNorm"):
        make_bias_free(nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4)))
    with pytest.raises(BiaslabError, match="LayerNorm"):  # even without a learned shift: it centres
        make_bias_free(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4, elementwise_affine=False)))


class _Shifted(nn.Module):
    """A custom layer with its own additive constant, which the converter does not know."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x + self.bias


@pytest.mark.parametrize("model, names", [
    (nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 2)), ["1.in_proj_bias"]),
    (nn.Sequential(nn.MultiheadAttention(4, 2, add_bias_kv=True)), ["0.in_proj_bias", "0.bias_k", "0.bias_v"]),
    (nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 1)), ["0.bias_ih_l0", "0.bias_hh_l0"]),
    (nn.GRU(3, 4, num_layers=2), ["bias_ih_l0", "bias_hh_l0", "bias_ih_l1", "bias_hh_l1"]),
    (nn.Sequential(nn.Linear(3, 3), _Shifted()), ["1.bias"]),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.Conv2d(4, 4, 1), nn.LayerNorm(4)),
     ["1 (GroupNorm", "3 (LayerNorm"]),
])
def test_make_bias_free_refuses_every_bias_it_cannot_remove_and_lists_them(model, names):
    with pytest.raises(BiaslabError, match=f"{len(names)} part") as err:
        make_bias_free(model)
    for name in names:
        assert name in str(err.value)
    assert count_biases(model) > 0  # the input keeps its biases


def test_make_bias_free_leaves_no_bias_parameter():
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Flatten(), nn.Bilinear(3, 3, 2))
    bf = make_bias_free(model)
    assert bias_parameters(bf) == [] and count_biases(model) > 0


def _trained_bias_free_cnn() -> nn.Module:
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.LeakyReLU(0.1),
        nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 1, 3, padding=1),
    )
    bf = make_bias_free(model).double()
    bf.train()
    for _ in range(3):  # give the running statistics non-trivial values
        bf(torch.randn(8, 1, 10, 10, dtype=torch.float64) * 2 + 1)
    return bf.eval()


_BF_CNN = _trained_bias_free_cnn()


@settings(max_examples=40, deadline=None)
@given(alpha=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
       seed=st.integers(0, 2**31 - 1))
def test_converted_model_is_positively_homogeneous(alpha: float, seed: int):
    x = torch.randn(2, 1, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        lhs = _BF_CNN(alpha * x)
        rhs = alpha * _BF_CNN(x)
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12 * float(rhs.abs().max()))


def test_the_original_model_with_bias_is_not_homogeneous():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 1, 3, padding=1)).double()
    x = torch.randn(2, 1, 10, 10, dtype=torch.float64)
    with torch.no_grad():
        assert (model(3 * x) - 3 * model(x)).abs().max() > 1e-3
        bf = make_bias_free(model)
        torch.testing.assert_close(bf(3 * x), 3 * bf(x), rtol=1e-12, atol=1e-12)
