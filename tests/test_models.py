import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from biaslab.infra.io import BiaslabError
from biaslab.nets.models import (
    MODEL_NAMES,
    VARIANTS,
    ScaleOnlyBatchNorm2d,
    bias_mask,
    build_model,
    count_parameters,
    init_model,
)


def _biases(model):
    """Which layers have a bias: {layer index: has bias} for conv, linear and BatchNorm layers."""
    return {name: m.bias is not None for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))}


def test_public_names():
    assert MODEL_NAMES == ("linear", "mlp", "cnn", "cnn-bn")
    assert VARIANTS == ("with-bias", "no-bias", "conv-no-bias", "head-no-bias")


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_shape_and_bias_switch(name, variant):
    model = build_model(name, variant, in_shape=(1, 8, 8), n_classes=10)
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    layers = dict(model.named_modules())
    head = [n for n, m in layers.items() if isinstance(m, nn.Linear)][-1]
    for lname, has in _biases(model).items():
        layer = layers[lname]
        if isinstance(layer, nn.Conv2d):
            assert has == (variant in ("with-bias", "head-no-bias"))
        elif isinstance(layer, nn.BatchNorm2d):
            assert has == (variant != "no-bias")
            assert layer.weight is not None  # the scale γ always stays
        elif lname == head:
            assert has == (variant in ("with-bias", "conv-no-bias"))
        else:  # hidden linear layers of the MLP
            assert has == (variant != "no-bias")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_parameter_counts_differ_by_exactly_the_bias_sizes(name):
    full = build_model(name, "with-bias")
    bias_sizes = sum(m.bias.numel() for m in full.modules()
                     if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)) and m.bias is not None)
    assert count_parameters(full) - count_parameters(build_model(name, "no-bias")) == bias_sizes


def test_cnn_parameter_count_by_hand():
    # conv 1->16 3x3 (144 + 16), conv 16->32 (4608 + 32), linear 32*2*2 -> 10 (1280 + 10)
    assert count_parameters(build_model("cnn")) == 144 + 16 + 4608 + 32 + 1280 + 10
    assert count_parameters(build_model("cnn", "no-bias")) == 144 + 4608 + 1280


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_init_model_shares_initial_weights_across_variants(name, variant):
    full = init_model(name, "with-bias", seed=3).state_dict()
    part = init_model(name, variant, seed=3).state_dict()
    assert set(part) < set(full) or (name in ("linear", "mlp") and variant == "conv-no-bias")
    for k, v in part.items():
        assert torch.equal(v, full[k])
    other = init_model(name, variant, seed=4).state_dict()
    assert not torch.equal(other["0.weight"] if "0.weight" in other else other["1.weight"],
                           part["0.weight"] if "0.weight" in part else part["1.weight"])


def test_init_model_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    init_model("cnn", "no-bias", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_bias_mask_marks_exactly_the_missing_parameters():
    mask = bias_mask("cnn-bn", "conv-no-bias")
    assert {k for k, keep in mask.items() if not keep} == {"0.bias", "4.bias"}
    assert all(bias_mask("cnn", "with-bias").values())


def test_tabular_shapes_and_errors():
    assert build_model("mlp", in_shape=(13,), n_classes=3)(torch.randn(4, 13)).shape == (4, 3)
    with pytest.raises(BiaslabError, match="unknown model 'resnet'"):
        build_model("resnet")
    with pytest.raises(BiaslabError, match="unknown variant 'half-bias'"):
        build_model("cnn", "half-bias")
    with pytest.raises(BiaslabError, match="needs images"):
        build_model("cnn", in_shape=(13,))
    with pytest.raises(BiaslabError, match="n_classes"):
        build_model("linear", n_classes=1)


def test_scale_only_batchnorm_is_batchnorm_without_shift():
    x = torch.randn(6, 4, 5, 5)
    ref = nn.BatchNorm2d(4)
    ours = ScaleOnlyBatchNorm2d(4)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2)
        ours.weight.copy_(ref.weight)
    assert ours.bias is None and "bias" not in ours.state_dict()
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_mean, ref.running_mean)


@settings(max_examples=15, deadline=None)
@given(shift=st.floats(-5, 5), seed=st.integers(0, 1000))
def test_conv_bias_before_batchnorm_cannot_change_the_output(shift, seed):
    """BatchNorm subtracts the channel mean, and with it any constant the conv bias adds."""
    model = init_model("cnn-bn", "with-bias", seed)
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    before = model(x)
    with torch.no_grad():
        model[0].bias.add_(shift)
        model[4].bias.add_(-shift)
    torch.testing.assert_close(model(x), before, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_generic_variant_masks_match_the_built_in_variants(name, variant):
    """``biaslab.experiments.ablate.variants`` (any nn.Module) removes what ``build_model(name, variant)`` lacks."""
    from biaslab.experiments.ablate.variants import variant_mask

    assert variant_mask(build_model(name, "with-bias"), variant) == bias_mask(name, variant)
