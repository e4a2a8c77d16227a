"""Traps for the audit, found by an adversarial review: models in which a bias matters although a rule,
read naively, would remove it. Each bias here moves the output when perturbed (the ground truth, checked
in the test), so the audit must not call it ``redundant`` or ``foldable``.

The traps: in-place ops (the rules follow values, not memory), unbatched inputs (the channel axis is 0),
non-linear casts and rounding, a user's function sharing a rule's name, a BatchNorm called more than
once or with ``training=False``, a scalar read from the input's values, a bias tied between two layers,
fold targets whose bias the call does not add, or reads twice; then forward hooks, branches on
``self.training``, buffers the forward changes, values that leave the graph through Python or numpy,
and a layer called again on its own output.
"""

import pytest
import torch
import torch.fx
from audit_models import double_with_random_biases
from torch import nn
from torch.nn import functional as F

from biaslab.experiments.audit import find_biases
from biaslab.experiments.audit.verify import VERIFY_TOLERANCE, output_moves


@torch.fx.wrap
def clone(t):  # a user's helper that shares the name of an identity rule
    return torch.relu(t)


class Net(nn.Module):
    """``forward = fn(self, x)`` over ``lin`` (Linear(4, 4)), ``bn`` (BatchNorm1d(4)) and any other layers."""

    def __init__(self, fn, **layers):
        super().__init__()
        self.fn = fn
        self.lin, self.bn = nn.Linear(4, 4), nn.BatchNorm1d(4)
        for k, v in layers.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def _in_place_through_a_view(s, x):
    h = s.lin(x)
    if bool(torch.isfinite(x).all()):  # fx cannot trace this: the graph is recorded
        h = h + 0.0
    v = h[:, :2]
    v.mul_(x[:, :2])
    return s.bn(h)


def _out_argument(s, x):
    buf = torch.empty_like(x)
    torch.mul(s.lin(x), 2.0, out=buf)
    return s.bn(s.lin(x)) + buf


def _tied(s, x):
    return s.bn(s.lin(x)) + s.other(x)


def _tied_net():
    net = Net(_tied, other=nn.Linear(4, 4))
    net.other.bias = net.lin.bias
    return net


def _buffers_net():
    net = Net(lambda s, x: F.batch_norm(s.lin(x), s.rm, s.rv, training=False))
    net.register_buffer("rm", torch.randn(4))
    net.register_buffer("rv", torch.rand(4) + 0.5)
    return net


#: name → (model factory, input shape, the bias that matters)
TRAPS = {
    "in-place product, the tensor read again": (lambda: Net(lambda s, x: (lambda h: (h.mul_(x), s.bn(h))[1])(s.lin(x))),
                                    (8, 4), "lin.bias"),
    "in-place add into a buffer": (
        lambda: Net(lambda s, x: (lambda h, b: (b.add_(h), s.bn(h) + b)[1])(s.lin(x), torch.zeros_like(x))),
        (8, 4), "lin.bias"),
    "out= argument": (lambda: Net(_out_argument), (8, 4), "lin.bias"),
    "in-place through a view (recorded graph)": (lambda: Net(_in_place_through_a_view), (8, 4), "lin.bias"),
    "InstanceNorm1d on an unbatched input": (
        lambda: Net(lambda s, x: s.norm(s.fc(x)), fc=nn.Linear(6, 6), norm=nn.InstanceNorm1d(4)), (4, 6), "fc.bias"),
    "MaxPool1d on an unbatched input": (
        lambda: Net(lambda s, x: (lambda h: s.pool(h) - h)(s.fc(x)), fc=nn.Linear(6, 6), pool=nn.MaxPool1d(3, 1, 1)),
        (4, 6), "fc.bias"),
    "MaxPool2d on an unbatched input": (
        lambda: Net(lambda s, x: (lambda h: s.pool(h) - h)(s.fc(x.transpose(1, 2)).transpose(1, 2)),
                    fc=nn.Linear(5, 5), pool=nn.MaxPool2d(3, 1, 1)), (3, 5, 6), "fc.bias"),
    "Conv1d on an unbatched input": (
        lambda: Net(lambda s, x: (lambda h: h - h.mean(0, keepdim=True))(s.conv(x)), conv=nn.Conv1d(5, 5, 1)),
        (5, 5), "conv.bias"),
    "fold into a Conv1d on an unbatched input": (
        lambda: Net(lambda s, x: s.conv(s.fc(x)), fc=nn.Linear(6, 6), conv=nn.Conv1d(4, 4, 3)), (4, 6), "fc.bias"),
    "rounded division": (lambda: Net(lambda s, x: s.bn(torch.div(s.lin(x), 0.3, rounding_mode="floor"))),
                         (8, 4), "lin.bias"),
    "cast to integers": (lambda: Net(lambda s, x: s.bn(s.lin(3 * x).to(torch.int64).double())), (8, 4), "lin.bias"),
    "cast to float16": (lambda: Net(lambda s, x: s.bn(s.lin(x).half().double())), (8, 4), "lin.bias"),
    "a user's function named clone": (lambda: Net(lambda s, x: s.bn(clone(s.lin(x)))), (8, 4), "lin.bias"),
    "one BatchNorm called twice": (lambda: Net(lambda s, x: (lambda h: s.bn(h) + s.bn(2 * h))(s.lin(x))),
                                   (8, 4), "lin.bias"),
    "one BatchNorm, a second call without the bias": (lambda: Net(lambda s, x: s.bn(s.lin(x)) * s.bn(x)),
                                                      (8, 4), "lin.bias"),
    "batch_norm with training=False": (_buffers_net, (8, 4), "lin.bias"),
    "a scale read from the input's values": (lambda: Net(lambda s, x: s.bn(s.lin(x) * x.mean().item())),
                                             (8, 4), "lin.bias"),
    "a bias tied between two layers": (_tied_net, (8, 4), "lin.bias"),
    "a fold target whose call adds another bias": (
        lambda: Net(lambda s, x: F.linear(s.lin(x), s.fc.weight) + 2 * s.fc.bias, fc=nn.Linear(4, 4)),
        (8, 4), "lin.bias"),
    "a fold target whose bias is read again": (
        lambda: Net(lambda s, x: s.fc(s.lin(x)) * s.fc.bias, fc=nn.Linear(4, 4)), (8, 4), "lin.bias"),
}


def _hooked_net():
    net = Net(lambda s, x: s.bn(s.lin(x)))
    net.lin.register_forward_hook(lambda module, args, out: torch.relu(out))
    return net


class FrozenBatchNorm(nn.BatchNorm1d):
    """Detectron-style: a BatchNorm that always normalises with its running statistics."""

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _frozen_subclass_net():
    net = Net(lambda s, x: s.bn(s.lin(x)))
    net.bn = FrozenBatchNorm(4)
    return net


def _changing_buffer_net():
    def forward(s, x):
        s.scale.copy_(x.std().reshape(1))
        return s.bn(s.lin(x) * s.scale)

    net = Net(forward)
    net.register_buffer("scale", torch.ones(1))
    return net


def _sdpa_value_dropout(s, x):
    q, k, v = (t.reshape(2, 4, 1, 4).transpose(1, 2) for t in (x, x, s.drop(s.lin(x))))
    return s.bn(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(8, 4))


#: found by a second review
TRAPS.update({
    "a forward hook": (_hooked_net, (8, 4), "lin.bias"),
    "a branch on self.training": (lambda: Net(lambda s, x: s.bn(torch.tanh(s.lin(x)) if s.training else s.lin(x))),
                                  (8, 4), "lin.bias"),
    "a fold into a conv padded 'same'": (
        lambda: Net(lambda s, x: s.c2(s.c1(x)), c1=nn.Conv2d(2, 3, 1), c2=nn.Conv2d(3, 4, 3, padding="same")),
        (2, 2, 5, 5), "c1.bias"),
    "a buffer the forward changes, as a scale": (_changing_buffer_net, (8, 4), "lin.bias"),
    "a BatchNorm subclass on running statistics": (_frozen_subclass_net, (8, 4), "lin.bias"),
    "a slice start read with .item()": (
        lambda: Net(lambda s, x: F.pad(s.lin(x), (0, 3)).narrow(-1, int((x.mean() > 0).long().item()) * 3, 3)
                    + x[:, :3]), (8, 4), "lin.bias"),
    "a sum rounded to float16": (lambda: Net(lambda s, x: s.bn(s.lin(x).sum(-1, keepdim=True, dtype=torch.float16)
                                                             .double().expand(8, 4))), (8, 4), "lin.bias"),
    "a value read into Python (recorded graph)": (
        lambda: Net(lambda s, x: s.bn(s.lin(x)) * float(s.lin.bias[0])), (8, 4), "lin.bias"),
    "a value through numpy (recorded graph)": (
        lambda: Net(lambda s, x: (lambda h: s.bn(h) + torch.from_numpy(h.detach().numpy().copy()))(s.lin(x))),
        (8, 4), "lin.bias"),
    "dropout on SDPA's values": (lambda: Net(_sdpa_value_dropout, drop=nn.Dropout(0.3)), (8, 4), "lin.bias"),
    "a layer called again on its output": (lambda: Net(lambda s, x: s.bn(s.lin(s.lin(x) * x[:, :1]))),
                                           (8, 4), "lin.bias"),
    "a layer called twice in a row": (lambda: Net(lambda s, x: s.bn(s.lin(s.lin(x)))), (8, 4), "lin.bias"),
})


@pytest.mark.parametrize("trap", list(TRAPS))
def test_a_bias_that_matters_is_never_called_redundant_or_foldable(trap):
    factory, shape, param = TRAPS[trap]
    model = double_with_random_biases(factory)
    x = torch.randn(shape, dtype=torch.float64)
    moves = output_moves(model, x, modes=("train", "eval"))(param, None)
    assert moves > VERIFY_TOLERANCE, f"not a trap: perturbing {param} leaves the output unchanged"
    found = {f.param: f for f in find_biases(model, x)}[param]
    assert found.status == "active", f"{param} called {found.status}: {found.reason}"


def test_an_in_place_residual_add_still_lets_a_norm_cancel():
    """``out += identity`` (ResNet) is followed as before: the mutated tensor is read nowhere else."""
    def forward(s, x):
        out = s.bn(s.lin(x))
        out += x
        return s.norm(out)

    model = double_with_random_biases(lambda: Net(forward, norm=nn.BatchNorm1d(4)))
    found = {f.param: f for f in find_biases(model, torch.randn(8, 4, dtype=torch.float64))}
    assert found["lin.bias"].status == "redundant", found["lin.bias"].reason
    assert found["bn.bias"].status == "redundant", found["bn.bias"].reason
