"""find_biases: each rule of the analysis, checked against what removing the bias really does."""

import copy
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from biaslab.experiments.audit import compare_outputs, find_biases, remove_redundant_biases
from biaslab.experiments.audit.verify import VERIFY_TOLERANCE, output_moves
from biaslab.infra.io import BiaslabError
from biaslab.nets.zoo import SelfAttention, build_zoo_model


def by_param(findings):
    return {f.param: f for f in findings}


def warmed(model, shape, steps=3):
    """Give BatchNorm / InstanceNorm running statistics that are not the initial 0 / 1."""
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(shape) * 2 + 1)
    return model.eval()


def zero_changes_output(model, param, x, mode="train"):
    """Does zeroing ``param`` (no correction) change the output in ``mode``?"""
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.get_parameter(param).zero_()
    return compare_outputs(model, other, [(x,)], mode).max_rel_diff > 1e-4


def assert_equivalent(model, x, tol=1e-5):
    fixed = remove_redundant_biases(model, x)
    inputs = [(x,), (torch.randn_like(x),)]
    assert compare_outputs(model, fixed, inputs, "train").max_rel_diff < tol
    assert compare_outputs(model, fixed, inputs, "eval").max_rel_diff < tol
    return fixed


class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_conv_then_batchnorm_is_redundant_and_removal_keeps_train_and_eval():
    torch.manual_seed(0)
    model = warmed(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()), (4, 3, 8, 8))
    f = by_param(find_biases(model, torch.randn(2, 3, 8, 8)))
    assert f["0.bias"].status == "redundant" and f["0.bias"].consumer == "1"
    assert torch.allclose(torch.as_tensor(f["0.bias"].corrections["1.running_mean"]).float(), model[0].bias.detach())
    assert f["1.bias"].status == "foldable" and f["1.bias"].consumer == "0"
    fixed = assert_equivalent(model, torch.randn(3, 3, 8, 8))
    assert fixed[0].bias is None and model[0].bias is not None


def test_nonlinearity_and_second_consumer_keep_the_bias_active():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    relu_first = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4))
    f = by_param(find_biases(relu_first, x))["0.bias"]
    assert f.status == "active" and "ReLU" in f.reason and f.feeds_relu
    assert zero_changes_output(relu_first, "0.bias", x)
    skip = Skip()
    f = by_param(find_biases(skip, x))["conv.bias"]
    assert f.status == "active" and "model output" in f.reason
    assert zero_changes_output(skip, "conv.bias", x)


def test_pooling_and_flatten_keep_the_offset_per_channel():
    torch.manual_seed(0)
    model = warmed(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Flatten(),
                                 nn.BatchNorm1d(4 * 1 * 1)), (4, 3, 6, 6))
    f = by_param(find_biases(model, torch.randn(2, 3, 6, 6)))["0.bias"]
    assert f.status == "redundant" and "MaxPool2d" in f.reason and "Flatten" in f.reason
    assert_equivalent(model, torch.randn(3, 3, 6, 6))


def test_flatten_of_a_feature_map_into_batchnorm1d_corrects_each_feature():
    torch.manual_seed(0)
    model = warmed(nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.BatchNorm1d(3 * 4 * 4)), (4, 2, 6, 6))
    f = by_param(find_biases(model, torch.randn(2, 2, 6, 6)))["0.bias"]
    assert f.status == "redundant"
    correction = torch.as_tensor(f.corrections["2.running_mean"]).float()
    assert torch.allclose(correction, model[0].bias.detach().repeat_interleave(16))
    assert_equivalent(model, torch.randn(3, 2, 6, 6))


def test_zero_padded_average_pool_breaks_redundancy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(3, stride=1, padding=1), nn.BatchNorm2d(4))
    x = torch.randn(2, 3, 8, 8)
    f = by_param(find_biases(model, x))["0.bias"]
    assert f.status == "active"
    assert zero_changes_output(model, "0.bias", x)
    model[1].count_include_pad = False
    assert by_param(find_biases(model, x))["0.bias"].status == "redundant"


def test_dropout_before_batchnorm_is_not_provably_redundant():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.BatchNorm2d(4))
    f = by_param(find_biases(model, torch.randn(2, 3, 8, 8)))["0.bias"]
    assert f.status == "active" and "Dropout" in f.reason


@pytest.mark.parametrize("track", [False, True])
def test_instance_norm_cancels_a_per_channel_bias(track):
    torch.manual_seed(0)
    model = warmed(nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True, track_running_stats=track)),
                   (4, 3, 8, 8))
    f = by_param(find_biases(model, torch.randn(2, 3, 8, 8)))["0.bias"]
    assert f.status == "redundant"
    assert (f.corrections is not None) == track
    assert_equivalent(model, torch.randn(2, 3, 8, 8))


def test_groupnorm_cancels_a_bias_only_when_each_group_is_one_channel():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4))
    f = by_param(find_biases(model, x))["0.bias"]
    b = model[0].bias.detach().double()
    assert f.status == "active" and f.cancelled_fraction == pytest.approx(float(4 * b.mean() ** 2 / b.pow(2).sum()))
    assert zero_changes_output(model, "0.bias", x)
    with torch.no_grad():  # constant within each group: cancelled for these values, but training would change them
        model[0].bias.copy_(torch.tensor([0.3, 0.3, -1.0, -1.0]))
    assert by_param(find_biases(model, x))["0.bias"].status == "active"
    per_channel = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(4, 4))  # one channel per group
    assert by_param(find_biases(per_channel, x))["0.bias"].status == "redundant"
    assert_equivalent(per_channel, x)


def test_linear_before_layernorm_is_reported_as_partly_cancelled():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6))
    x = torch.randn(4, 5)
    f = by_param(find_biases(model, x))["0.bias"]
    b = model[0].bias.detach().double()
    assert f.status == "active"
    assert f.cancelled_fraction == pytest.approx(float(6 * b.mean() ** 2 / b.pow(2).sum()))
    assert "only its mean" in f.reason and "LayerNorm" in f.reason
    with torch.no_grad():  # a constant bias is cancelled today, but the status comes from the structure
        model[0].bias.fill_(0.7)
    f = by_param(find_biases(model, x))["0.bias"]
    assert f.status == "active" and f.cancelled_fraction == pytest.approx(1.0)
    with torch.no_grad():
        model[0].bias.zero_()
    f = by_param(find_biases(model, x))["0.bias"]
    assert f.status == "active" and f.zero_now and f.cancelled_fraction is None


def test_affine_then_linear_is_foldable():
    model = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    f = by_param(find_biases(model, torch.randn(2, 4)))
    assert f["0.bias"].status == "foldable" and f["0.bias"].consumer == "1"
    assert f["1.bias"].status == "active" and f["3.bias"].status == "active"


def test_attention_key_bias_is_cancelled_by_softmax():
    torch.manual_seed(0)
    attn = SelfAttention(8, 2)
    x = torch.randn(2, 5, 8)
    f = by_param(find_biases(attn, x))
    assert f["key.bias"].status == "redundant" and "softmax" in f["key.bias"].reason
    assert f["query.bias"].status == "active"
    assert not zero_changes_output(attn, "key.bias", x)
    assert zero_changes_output(attn, "query.bias", x)
    assert_equivalent(attn, x)
    # softmax rows sum to one, so the value bias passes through attention unchanged into the projection
    assert f["value.bias"].status == "foldable" and f["value.bias"].consumer == "proj"
    moved = copy.deepcopy(attn)
    with torch.no_grad():
        moved.proj.bias += moved.proj.weight @ moved.value.bias
        moved.value.bias.zero_()
    assert compare_outputs(attn, moved, [(x,)], "eval").max_rel_diff < 1e-5


class Attention(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True, **kw)

    def forward(self, x):
        return self.attn(x, x, x)[0]


@pytest.mark.parametrize("make", [lambda: Attention(),
                                  lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)],
                         ids=["MultiheadAttention", "TransformerEncoderLayer"])
def test_packed_attention_bias_is_reported_per_part(make):
    """Softmax over keys ignores the key part of in_proj_bias; the value part reaches out_proj unchanged."""
    torch.manual_seed(0)
    model = make().double()
    x = torch.randn(4, 5, 8, dtype=torch.float64)
    found = find_biases(model, x)
    parts = {f.part: f for f in found if f.param.endswith("in_proj_bias")}
    assert set(parts) == {"query", "key", "value"} and all(f.numel == 8 for f in parts.values())
    assert parts["key"].status == "redundant" and parts["key"].span == (8, 16)
    assert parts["value"].status == "foldable" and parts["value"].consumer.endswith("out_proj")
    assert parts["query"].status == "active"
    moves = output_moves(model, x)
    name = parts["key"].param
    assert moves(name, slice(8, 16)) <= VERIFY_TOLERANCE < min(moves(name, slice(0, 8)), moves(name, slice(16, 24)))
    attn = model.attn if isinstance(model, Attention) else model.self_attn
    moved = copy.deepcopy(model).eval()  # the fold "foldable" promises, done by hand
    inner = moved.attn if isinstance(model, Attention) else moved.self_attn
    with torch.no_grad():
        inner.out_proj.bias += inner.out_proj.weight @ inner.in_proj_bias[16:]
        inner.in_proj_bias[8:].zero_()
    assert compare_outputs(model, moved, [(x,)], "eval").max_rel_diff < 1e-12
    assert attn.in_proj_bias is not None


class Branchy(nn.Module):
    """fx cannot trace the data-dependent branch: the audit falls back to hooks."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.head = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if x.sum() > -1e9:  # data-dependent control flow
            y = y * 2
        return self.head(y.mean((2, 3)))


def test_untraceable_model_is_recorded_from_several_forward_passes():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"recorded from 3 forward passes on different inputs instead \(the model "
                                         r"reads values computed from its input: __bool__\), which took the same path"):
        findings = find_biases(Branchy(), torch.randn(2, 3, 8, 8))
    f = by_param(findings)
    assert all(x.traced for x in findings)
    assert f["conv.bias"].status == "redundant" and f["bn.bias"].status == "foldable"
    assert f["head.bias"].status == "active"


@pytest.fixture
def no_recorder(monkeypatch):
    """Make the recorded graph fail too, so the audit falls back to hooks."""
    import biaslab.experiments.audit.graph as graph

    def fail(model, example):
        raise RuntimeError("recording disabled for this test")

    monkeypatch.setattr(graph, "_recorded_graph", fail)


def test_hook_fallback_is_an_order_based_guess(no_recorder):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="weaker guess"):
        findings = find_biases(Branchy(), torch.randn(2, 3, 8, 8))
    f = by_param(findings)
    assert all(not x.traced for x in findings)
    assert f["conv.bias"].status == "redundant" and "confirmed by perturbing" in f["conv.bias"].reason
    assert f["bn.bias"].status == "foldable" and f["head.bias"].status == "active"


def test_wrong_input_is_a_clear_error():
    with pytest.raises(BiaslabError, match="fails on an example input of shape"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            find_biases(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), torch.randn(2, 5, 8, 8))


def test_find_biases_leaves_the_model_untouched():
    torch.manual_seed(0)
    model = build_zoo_model("vgg11_bn", (3, 8, 8)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    find_biases(model, torch.randn(2, 3, 8, 8))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["vgg11_bn", "transformer", "resnet18"])
def test_zoo_removal_is_equivalent(name):
    torch.manual_seed(0)
    model = warmed(build_zoo_model(name, (3, 8, 8)), (4, 3, 8, 8), steps=1)
    findings = find_biases(model, torch.randn(2, 3, 8, 8))
    redundant = {f.param for f in findings if f.status == "redundant"}
    expected = {"vgg11_bn": 8, "transformer": 2, "resnet18": 0}[name]
    assert len(redundant) == expected
    # float32 through up to 8 BatchNorms in training mode, the last over 1×1 maps: rounding, not bias
    assert_equivalent(model, torch.randn(8, 3, 8, 8), tol=1e-4)


@settings(max_examples=8, deadline=None)
@given(
    c_in=st.integers(1, 3), c_out=st.integers(1, 4), k=st.integers(1, 3),
    pool=st.sampled_from(["none", "max", "avg", "adaptive"]), seed=st.integers(0, 10_000),
)
def test_removal_matches_the_original_for_random_conv_bn_stacks(c_in, c_out, k, pool, seed):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(c_in, c_out, k, padding=k // 2)]
    layers += {"none": [], "max": [nn.MaxPool2d(2)], "avg": [nn.AvgPool2d(2)], "adaptive": [nn.AdaptiveAvgPool2d(2)]}[pool]
    model = warmed(nn.Sequential(*layers, nn.BatchNorm2d(c_out), nn.ReLU()), (3, c_in, 6, 6), steps=2)
    x = torch.randn(3, c_in, 6, 6)
    assert by_param(find_biases(model, x))["0.bias"].status == "redundant"
    assert_equivalent(model, x)


@pytest.mark.parametrize("padding, status", [(0, "foldable"), (1, "active")])
def test_affine_bias_folds_into_a_conv_only_without_zero_padding(padding, status):
    """Zero padding sees no bias at the border, so the bias cannot move into the next conv's bias."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Conv2d(3, 2, 3, padding=padding)).eval()
    x = torch.randn(2, 2, 6, 6)
    f = by_param(find_biases(model, x))["0.bias"]
    assert f.status == status
    moved = copy.deepcopy(model)  # the fold a "foldable" promises: W·b added to the next bias
    with torch.no_grad():
        moved[1].bias += moved[1].weight.sum((2, 3)) @ moved[0].bias
        moved[0].bias.zero_()
    exact = compare_outputs(model, moved, [(x,)], "eval").max_rel_diff < 1e-5
    assert exact is (status == "foldable")


class RowVaryingValues(nn.Module):
    """``softmax(A) @ V`` where V's bias varies along the rows the product sums over."""

    def __init__(self, t=4):
        super().__init__()
        self.a, self.v, self.bn = nn.Linear(t, t), nn.Linear(t, t), nn.BatchNorm1d(t)

    def forward(self, x):
        weights = torch.softmax(self.a(x), dim=-1)  # (B, T, T), rows sum to one
        values = self.v(x).transpose(1, 2)  # the bias now varies along axis 1: the summed-over rows
        return self.bn(weights @ values)


def test_softmax_row_rule_needs_an_offset_constant_along_the_rows():
    torch.manual_seed(0)
    model = RowVaryingValues()
    x = torch.randn(6, 4, 4)
    f = by_param(find_biases(model, x))["v.bias"]
    assert f.status == "active"
    assert zero_changes_output(model, "v.bias", x)  # ground truth: BatchNorm does not cancel it


class ReusedOutput(nn.Module):
    """Untraceable, and the conv output is used twice: by BatchNorm and by the skip."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        if x.sum() > -1e9:  # data-dependent control flow: torch.fx cannot trace this
            return self.bn(y) + y
        return y


class InplaceRelu(nn.Module):
    """Untraceable, and an in-place ReLU sits between the conv and BatchNorm: no module sees it."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        if x.sum() > -1e9:
            torch.nn.functional.relu(y, inplace=True)
        return self.bn(y)


@pytest.mark.parametrize("cls", [ReusedOutput, InplaceRelu])
def test_hook_fallback_never_calls_a_bias_redundant_on_a_guess(cls, no_recorder):
    torch.manual_seed(0)
    model = cls()
    x = torch.randn(4, 3, 6, 6)
    with pytest.warns(UserWarning, match="weaker guess"):
        f = by_param(find_biases(model, x))["conv.bias"]
    assert not f.traced and f.status == "active" and "perturbing" in f.reason
    assert zero_changes_output(model, "conv.bias", x)
    fixed = remove_redundant_biases(model, x)  # nothing to remove, so the same function
    assert fixed.conv.bias is not None


@pytest.mark.parametrize("cls", [ReusedOutput, InplaceRelu])
def test_recorded_graph_sees_the_second_use_and_the_inplace_relu(cls):
    torch.manual_seed(0)
    model = cls()
    x = torch.randn(4, 3, 6, 6)
    with pytest.warns(UserWarning, match="recorded"):
        f = by_param(find_biases(model, x))["conv.bias"]
    assert f.traced and f.status == "active"
    assert ("model output" if cls is ReusedOutput else "relu") in f.reason
