"""The offset algebra, op by op, against the ground truth: perturb each bias in float64 and see
whether the output moves (training mode), and remove the redundant ones (checked in training and
eval mode). Each model is small and exercises one rule; the expected statuses pin what the
algebra must find, the numeric check pins that it never claims too much."""

import copy

import pytest
import torch
from audit_models import double_with_random_biases
from torch import nn
from torch.nn import functional as F

from biaslab.experiments.audit import find_biases, fold_biases, remove_redundant_biases
from biaslab.experiments.audit.verify import VERIFY_TOLERANCE, output_moves


class Fn(nn.Module):
    """``forward = fn(self, x)`` over the given layers: one small graph per rule."""

    def __init__(self, fn, **layers):
        super().__init__()
        self.fn = fn
        for k, v in layers.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


class BatchNormAct2d(nn.BatchNorm2d):
    """timm-style: BatchNorm and an activation in one module, computed with F.batch_norm."""

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        return F.relu(x)


class LayerNorm2d(nn.LayerNorm):
    """timm / torchvision ConvNeXt-style: LayerNorm over the channels of an NCHW map."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GroupNorm1(nn.GroupNorm):
    """timm-style: GroupNorm with one group (PoolFormer's norm)."""

    def __init__(self, channels):
        super().__init__(1, channels)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


def conv(c_in=3, c_out=4, k=1, **kw):
    return nn.Conv2d(c_in, c_out, k, **kw)


IMG = (8, 3, 6, 6)
SEQ = (8, 5, 6)

CASES = {
    "functional avg pool": (lambda: Fn(lambda s, x: s.bn(F.avg_pool2d(s.c(x), 2)), c=conv(), bn=nn.BatchNorm2d(4)),
                            IMG, {"c.bias": "redundant"}),
    "avg pool counting zero padding": (
        lambda: Fn(lambda s, x: s.bn(F.avg_pool2d(s.c(x), 3, 1, 1)), c=conv(), bn=nn.BatchNorm2d(4)),
        IMG, {"c.bias": "active"}),
    "avg pool not counting padding": (
        lambda: Fn(lambda s, x: s.bn(F.avg_pool2d(s.c(x), 3, 1, 1, count_include_pad=False)), c=conv(),
                   bn=nn.BatchNorm2d(4)), IMG, {"c.bias": "redundant"}),
    "functional max pool with padding": (
        lambda: Fn(lambda s, x: s.bn(F.max_pool2d(s.c(x), 3, 2, 1)), c=conv(), bn=nn.BatchNorm2d(4)),
        IMG, {"c.bias": "redundant"}),
    "adaptive pools and flatten": (
        lambda: Fn(lambda s, x: s.bn(torch.flatten(F.adaptive_max_pool2d(F.adaptive_avg_pool2d(s.c(x), 3), 1), 1)),
                   c=conv(), bn=nn.BatchNorm1d(4)), IMG, {"c.bias": "redundant"}),
    "interpolate and upsample": (
        lambda: Fn(lambda s, x: s.bn(s.up(F.interpolate(s.c(x), scale_factor=2, mode="bilinear"))), c=conv(),
                   up=nn.Upsample(scale_factor=2), bn=nn.BatchNorm2d(4)), IMG, {"c.bias": "redundant"}),
    "1x1 conv into BatchNorm": (
        lambda: nn.Sequential(conv(k=3, padding=1), nn.BatchNorm2d(4), conv(4, 5), nn.BatchNorm2d(5), nn.ReLU()),
        IMG, {"0.bias": "redundant", "1.bias": "redundant", "2.bias": "redundant", "3.bias": "foldable"}),
    "padded conv into BatchNorm": (
        lambda: nn.Sequential(conv(), conv(4, 4, 3, padding=1), nn.BatchNorm2d(4)),
        IMG, {"0.bias": "active", "1.bias": "redundant"}),
    "linear into BatchNorm1d": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(108, 7), nn.Linear(7, 5), nn.BatchNorm1d(5)),
        IMG, {"1.bias": "redundant", "2.bias": "redundant"}),
    "residual add into a later norm": (
        lambda: Fn(lambda s, x: s.bn2(s.bn1(s.c(x)) + s.c2(s.c(x).relu()) + s.c(x)), c=conv(), c2=conv(4, 4),
                   bn1=nn.BatchNorm2d(4), bn2=nn.BatchNorm2d(4)),
        IMG, {"c.bias": "active", "c2.bias": "redundant", "bn1.bias": "redundant"}),
    "skip reaching a later norm": (
        lambda: Fn(lambda s, x: (lambda y: s.bn2(s.bn1(y) + y))(s.c(x)), c=conv(), bn1=nn.BatchNorm2d(4),
                   bn2=nn.BatchNorm2d(4)), IMG, {"c.bias": "redundant", "bn1.bias": "redundant"}),
    "skip reaching the output": (
        lambda: Fn(lambda s, x: (lambda y: s.bn1(y) + y)(s.c(x)), c=conv(), bn1=nn.BatchNorm2d(4)),
        IMG, {"c.bias": "active"}),
    "concatenation": (
        lambda: Fn(lambda s, x: s.bn(torch.cat([s.a(x), s.b(x)], 1)), a=conv(), b=conv(), bn=nn.BatchNorm2d(8)),
        IMG, {"a.bias": "redundant", "b.bias": "redundant"}),
    "chunk, sum and product": (
        lambda: Fn(lambda s, x: (lambda t: s.bn(t[0] + t[1]) * s.bn2(t[0] * t[1]))(s.c(x).chunk(2, 1)), c=conv(3, 8),
                   bn=nn.BatchNorm2d(4), bn2=nn.BatchNorm2d(4)), IMG, {"c.bias": "active"}),
    "split into two norms": (
        lambda: Fn(lambda s, x: (lambda t: s.bn(t[0]) + s.ln(t[1].permute(0, 2, 3, 1)).permute(0, 3, 1, 2))(
            s.c(x).split(4, 1)),
                   c=conv(3, 8), bn=nn.BatchNorm2d(4), ln=nn.LayerNorm(4)), IMG, {"c.bias": "active"}),
    "transpose into BatchNorm1d": (
        lambda: Fn(lambda s, x: s.bn(s.fc(x).transpose(1, 2)), fc=nn.Linear(6, 4), bn=nn.BatchNorm1d(4)),
        SEQ, {"fc.bias": "redundant"}),
    "reshape across channels": (
        lambda: Fn(lambda s, x: s.bn(s.c(x).reshape(8, 2, 2, 6, 6).sum(2)), c=conv(), bn=nn.BatchNorm2d(2)),
        IMG, {"c.bias": "redundant"}),
    "dropout rescales": (lambda: nn.Sequential(conv(), nn.Dropout(0.5), nn.BatchNorm2d(4)), IMG, {"0.bias": "active"}),
    "scaling by constants": (
        lambda: Fn(lambda s, x: s.bn(s.c(x) * 2.0 * s.gamma / 3), c=conv(), bn=nn.BatchNorm2d(4),
                   gamma=nn.Parameter(torch.rand(4, 1, 1) + 0.5)), IMG, {"c.bias": "redundant"}),
    "mean and sum with its scale": (
        lambda: Fn(lambda s, x: s.bn(s.c(x).mean((2, 3)) + s.c(x).sum(3).sum(2)), c=conv(), bn=nn.BatchNorm1d(4)),
        IMG, {"c.bias": "redundant"}),
    "instance norms": (
        lambda: Fn(lambda s, x: s.inorm(s.c(x)) + F.instance_norm(s.c2(x)), c=conv(), c2=conv(),
                   inorm=nn.InstanceNorm2d(4, affine=True)), IMG, {"c.bias": "redundant", "c2.bias": "redundant"}),
    "group norm, one channel per group": (
        lambda: nn.Sequential(conv(), nn.GroupNorm(4, 4)), IMG, {"0.bias": "redundant"}),
    "group norm, two channels per group": (
        lambda: nn.Sequential(conv(), nn.GroupNorm(2, 4)), IMG, {"0.bias": "active"}),
    "RMSNorm does not cancel": (
        lambda: nn.Sequential(nn.Linear(6, 6), nn.RMSNorm(6)), SEQ, {"0.bias": "active"}),
    "LayerNorm over features": (
        lambda: Fn(lambda s, x: s.ln(s.fc(x).sum(-1, keepdim=True).expand(8, 5, 6)), fc=nn.Linear(6, 3),
                   ln=nn.LayerNorm(6)), SEQ, {"fc.bias": "redundant"}),
    "timm BatchNormAct2d": (
        lambda: nn.Sequential(conv(), BatchNormAct2d(4), conv(4, 4), BatchNormAct2d(4)),
        IMG, {"0.bias": "redundant", "1.bias": "foldable", "2.bias": "redundant"}),
    "ConvNeXt LayerNorm2d": (
        lambda: Fn(lambda s, x: s.ln(s.c(x).sum(1, keepdim=True).expand(8, 4, 6, 6)), c=conv(), ln=LayerNorm2d(4)),
        IMG, {"c.bias": "redundant"}),
    "PoolFormer GroupNorm1 and pool(x) - x": (
        lambda: Fn(lambda s, x: (lambda y: x + F.avg_pool2d(y, 3, 1, 1, count_include_pad=False) - y)(s.norm(x)),
                   norm=GroupNorm1(3)), IMG, {"norm.bias": "redundant"}),
    "softmax shift": (
        lambda: Fn(lambda s, x: torch.softmax(s.score(x).squeeze(-1), dim=-1), score=nn.Linear(6, 1)),
        SEQ, {"score.bias": "redundant"}),
    "softmax over the bias axis": (
        lambda: Fn(lambda s, x: torch.softmax(s.fc(x), dim=-1), fc=nn.Linear(6, 4)), SEQ, {"fc.bias": "active"}),
    "a shift read twice is not foldable": (
        lambda: Fn(lambda s, x: (lambda y: s.fc(y) + y)(s.ln(x)), ln=nn.LayerNorm(6), fc=nn.Linear(6, 6)),
        SEQ, {"ln.bias": "active"}),
    "a shift read once folds": (
        lambda: Fn(lambda s, x: s.fc(s.ln(x)).relu(), ln=nn.LayerNorm(6), fc=nn.Linear(6, 6)),
        SEQ, {"ln.bias": "foldable"}),
    "branches that cancel up to rounding": (
        lambda: Fn(lambda s, x: s.bn(s.c(x).relu()) + (s.c2(x) * 0.1 * 3 - s.c2(x) * 0.3), c=conv(), c2=conv(),
                   bn=nn.BatchNorm2d(4)), IMG, {"c.bias": "active", "c2.bias": "redundant"}),
    # max pooling passes an offset only when it is the same at every position it compares: each
    # negative case pads one axis with zeros (the offset varies along it), so a rule that checks the
    # wrong axes lets it through and the channel softmax would wrongly cancel it
    "max pool, offset constant over positions": (
        lambda: Fn(lambda s, x: torch.softmax(F.max_pool2d(s.c(x).expand(-1, 4, -1, -1) + s.d(x), 2), dim=1),
                   c=conv(3, 1), d=conv(bias=False)), IMG, {"c.bias": "redundant"}),
    "max pool over rows where the offset varies": (
        lambda: Fn(lambda s, x: torch.softmax(F.max_pool2d(
            F.pad(s.c(x), (0, 0, 1, 1)).expand(-1, 4, -1, -1) + s.d(F.pad(x, (0, 0, 1, 1))), 2), dim=1),
                   c=conv(3, 1), d=conv(bias=False)), IMG, {"c.bias": "active"}),
    "max pool over columns where the offset varies": (
        lambda: Fn(lambda s, x: torch.softmax(s.pool(
            F.pad(s.c(x), (1, 1, 0, 0)).expand(-1, 4, -1, -1) + s.d(F.pad(x, (1, 1, 0, 0)))), dim=1),
                   c=conv(3, 1), d=conv(bias=False), pool=nn.MaxPool2d(2)), IMG, {"c.bias": "active"}),
    "global max pool where the offset varies": (
        lambda: Fn(lambda s, x: torch.softmax(F.adaptive_max_pool2d(
            F.pad(s.c(x), (1, 0, 0, 0)).expand(-1, 4, -1, -1) + s.d(F.pad(x, (1, 0, 0, 0))), 1), dim=1),
                   c=conv(3, 1), d=conv(bias=False)), IMG, {"c.bias": "active"}),
    "max pool 1d over positions where the offset varies": (
        lambda: Fn(lambda s, x: torch.softmax(F.max_pool1d(
            F.pad(s.c(x), (1, 1)).expand(-1, 4, -1) + s.d(F.pad(x, (1, 1))), 2), dim=1),
                   c=nn.Conv1d(5, 1, 1), d=nn.Conv1d(5, 4, 1, bias=False)), SEQ, {"c.bias": "active"}),
    # LayerNorm over a 2-D normalized_shape subtracts the mean over both axes
    "LayerNorm over two axes cancels what is constant over both": (
        lambda: Fn(lambda s, x: s.ln(s.c(x)), c=conv(), ln=nn.LayerNorm([6, 6])), IMG, {"c.bias": "redundant"}),
    "LayerNorm over two axes, offset varying along the first": (
        lambda: Fn(lambda s, x: s.ln(s.c(x)), c=nn.Conv1d(5, 4, 1), ln=nn.LayerNorm([4, 6])), SEQ,
        {"c.bias": "active"}),
    "functional layer_norm over two axes, offset varying along the first": (
        lambda: Fn(lambda s, x: F.layer_norm(s.c(x), (4, 6)), c=nn.Conv1d(5, 4, 1)), SEQ, {"c.bias": "active"}),
    # reshape_as / view_as / expand_as replay the reshape: the template's shape decides
    "reshape_as and view_as back to the map": (
        lambda: Fn(lambda s, x: (lambda y: s.bn(y.flatten(2).reshape_as(y) + y.flatten(2).view_as(y)))(s.c(x)),
                   c=conv(), bn=nn.BatchNorm2d(4)), IMG, {"c.bias": "redundant"}),
    "reshape_as across channels": (
        lambda: Fn(lambda s, x: s.bn(s.c(x).reshape_as(x.new_empty(8, 6, 4, 6))), c=conv(), bn=nn.BatchNorm2d(6)),
        IMG, {"c.bias": "active"}),
    "expand_as over channels": (
        lambda: Fn(lambda s, x: (lambda z: s.bn(s.c(x).expand_as(z) + z))(s.d(x)), c=conv(3, 1), d=conv(bias=False),
                   bn=nn.BatchNorm2d(4)), IMG, {"c.bias": "redundant"}),
    "expand_as into a softmax over the expanded axis": (
        lambda: Fn(lambda s, x: torch.softmax(s.c(x).expand_as(s.d(x)) + s.d(x), dim=2), c=nn.Linear(6, 1),
                   d=nn.Linear(6, 4, bias=False)), SEQ, {"c.bias": "redundant"}),
    "BatchNorm after BatchNorm": (
        lambda: nn.Sequential(conv(), nn.BatchNorm2d(4), nn.BatchNorm2d(4), nn.ReLU()), IMG,
        {"0.bias": "redundant", "1.bias": "redundant", "2.bias": "active"}),
    "Mixer token MLP": (
        lambda: Fn(lambda s, x: s.tok(s.norm(x).transpose(1, 2)).relu(), norm=nn.LayerNorm(6), tok=nn.Linear(5, 5)),
        SEQ, {"norm.bias": "active"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_matches_the_numeric_ground_truth(case):
    factory, shape, expected = CASES[case]
    model = double_with_random_biases(factory)
    x = torch.randn(shape, dtype=torch.float64)
    findings = {f.param: f for f in find_biases(model, x)}
    assert all(f.traced for f in findings.values())
    moves = output_moves(model, x)
    for param, status in expected.items():
        assert findings[param].status == status, (param, findings[param].reason)
        assert not findings[param].reason.startswith("not analysed"), findings[param].reason  # a rule decided
    for f in findings.values():
        moved = moves(f.param, None) > VERIFY_TOLERANCE
        if f.status == "redundant":
            assert not moved, f"{f.param} called redundant but perturbing it moves the output"
        elif f.param in expected:
            assert moved, f"{f.param} is {f.status} ({f.reason}) but perturbing it does not move the output"
    remove_redundant_biases(model, x)  # raises if removal changed the function in train or eval mode
    fold_biases(model.eval(), x)  # raises if a fold changed the function in eval mode


def test_mixer_norm_bias_is_not_foldable_into_the_token_linear():
    """After the transpose the token Linear mixes the axis the bias is constant along: W·b would be an
    outer product, not a bias. A fold into it would change the output."""
    model = double_with_random_biases(CASES["Mixer token MLP"][0]).eval()
    x = torch.randn(SEQ, dtype=torch.float64)
    f = {f.param: f for f in find_biases(model, x)}["norm.bias"]
    assert f.status == "active" and f.consumer is None
    moved = copy.deepcopy(model)
    with torch.no_grad():  # the fold a wrong `foldable` would do
        moved.tok.bias += moved.tok.weight.sum(1) * moved.norm.bias.mean()
        moved.norm.bias.zero_()
    assert not torch.allclose(moved(x), model(x))


@pytest.mark.parametrize("case", ["functional avg pool", "residual add into a later norm", "timm BatchNormAct2d"])
def test_statuses_do_not_depend_on_the_bias_values(case):
    factory, shape, _ = CASES[case]
    model = double_with_random_biases(factory)
    x = torch.randn(shape, dtype=torch.float64)
    before = {f.param: f.status for f in find_biases(model, x)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name:
                p.zero_()
    after = find_biases(model, x)
    assert {f.param: f.status for f in after} == before
    assert all(f.zero_now for f in after)


class RelativePositionAttention(nn.Module):
    """Swin / MaxViT-style: a learned table of relative-position biases added to the attention scores."""

    def __init__(self, tokens=4, heads=2, dim=6):
        super().__init__()
        self.heads, self.qk = heads, nn.Linear(dim, 2 * dim)
        self.relative_position_bias_table = nn.Parameter(torch.randn(2 * tokens - 1, heads))
        idx = torch.arange(tokens)
        self.register_buffer("index", (idx[:, None] - idx[None, :] + tokens - 1).reshape(-1))

    def forward(self, x):
        b, t, d = x.shape
        q, k = self.qk(x).reshape(b, t, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        table = self.relative_position_bias_table[self.index].reshape(t, t, self.heads).permute(2, 0, 1)
        return torch.softmax(q @ k.transpose(-2, -1) + table, dim=-1)


def test_relative_position_table_has_a_constant_part_that_softmax_removes():
    model = double_with_random_biases(RelativePositionAttention)
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    f = {f.param: f for f in find_biases(model, x)}["relative_position_bias_table"]
    table = model.relative_position_bias_table.detach()
    assert f.status == "active" and f.cancelled_fraction == pytest.approx(
        float(table.numel() * table.mean() ** 2 / table.pow(2).sum()))
    moved = copy.deepcopy(model)
    with torch.no_grad():  # the constant part really cancels: subtract it and nothing changes
        moved.relative_position_bias_table -= table.mean()
    assert torch.allclose(moved(x), model(x), atol=1e-12)


class MaskedAttention(RelativePositionAttention):
    """Swin in transformers, wav2vec2-conformer: the score bias reaches SDPA as its additive ``attn_mask``."""

    def forward(self, x):
        b, t, d = x.shape
        q, k = self.qk(x).reshape(b, t, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        table = self.relative_position_bias_table[self.index].reshape(t, t, self.heads).permute(2, 0, 1)
        return F.scaled_dot_product_attention(q, k, k, attn_mask=table.unsqueeze(0))


def test_an_attention_mask_bias_is_active_and_only_its_constant_part_cancels():
    """The census found this: the table that reaches SDPA as its mask was called "redundant (output unused)"
    because the attention rule looked only at queries, keys and values."""
    model = double_with_random_biases(MaskedAttention)
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    f = {f.param: f for f in find_biases(model, x)}["relative_position_bias_table"]
    assert f.status == "active" and not f.reason.startswith("not analysed"), f.reason
    assert f.cancelled_fraction is not None and 0 < f.cancelled_fraction < 1
    assert output_moves(model, x)("relative_position_bias_table", None) > VERIFY_TOLERANCE


def test_a_rule_that_drops_an_offset_without_a_reason_gives_not_analysed(monkeypatch):
    """The safety net under every rule: an op whose rule returns no offset and records no cancellation is
    run on stand-ins with and without the offset; where the output moves, the bias is "not analysed",
    never "redundant (output unused)"."""
    from biaslab.experiments.audit import offsets

    monkeypatch.setitem(offsets.RULES, "scaled_dot_product_attention", lambda call: None)  # the old rule's blind spot
    model = double_with_random_biases(MaskedAttention)
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    f = {f.param: f for f in find_biases(model, x)}["relative_position_bias_table"]
    assert f.status == "active" and f.reason.startswith("not analysed") and "vanishes" in f.reason, f.reason


def test_an_offset_sliced_away_is_still_unused():
    """The safety net passes a true zero: the biased channels are sliced off before the output."""
    model = double_with_random_biases(lambda: Fn(lambda s, x: torch.cat([s.a(x), s.b(x)], dim=-1)[..., :3], a=nn.Linear(6, 3),
                               b=nn.Linear(6, 2)))
    x = torch.randn(SEQ, dtype=torch.float64)
    f = {f.param: f for f in find_biases(model, x)}
    assert f["b.bias"].status == "redundant" and f["b.bias"].short_reason == "output unused", f["b.bias"].reason
    assert f["a.bias"].status == "active"
    assert output_moves(model, x)("b.bias", None) <= VERIFY_TOLERANCE


def _difference_filter(channels: int) -> nn.Conv2d:
    """A fixed horizontal difference per channel, no padding: it maps an offset constant over positions to zero."""
    d = nn.Conv2d(channels, channels, (1, 2), groups=channels, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([1.0, -1.0]).expand_as(d.weight))
    return d


@pytest.mark.parametrize("dropout", [False, True])
def test_an_offset_a_filter_removes_is_unused_only_without_dropout(dropout):
    """The safety net models dropout as training does: a filter that removes a constant offset does not remove
    it once dropout has masked it entry by entry."""
    def forward(s, x):
        h = s.c(x)
        return s.d(F.dropout(h, 0.25, s.training) if dropout else h)

    model = double_with_random_biases(lambda: Fn(forward, c=conv(), d=_difference_filter(4)))
    x = torch.randn(IMG, dtype=torch.float64)
    f = {f.param: f for f in find_biases(model, x)}["c.bias"]
    torch.manual_seed(0)
    moved = output_moves(model.train(), x)("c.bias", None) > VERIFY_TOLERANCE
    assert moved == dropout
    assert (f.status == "redundant") == (not dropout), f.reason
