"""User models for ``biaslab ablate --model tests/models/user_models.py:FACTORY``: one per pattern.

Each factory returns a classifier of digits (1×8×8 images, 10 classes).
"""

import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    def __init__(self, width, norm):
        super().__init__()
        self.norm = norm
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc(F.relu(self.norm(x)))


class ResidualMLP(nn.Module):
    """Residual blocks with LayerNorm: the benchmark's user model."""

    def __init__(self, width=32, blocks=2):
        super().__init__()
        self.inp = nn.Linear(64, width)
        self.blocks = nn.Sequential(*[Residual(width, nn.LayerNorm(width)) for _ in range(blocks)])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x.flatten(1))))


class AttentionNet(nn.Module):
    """Rows of the image as 8 tokens: a residual attention block with LayerNorm, then a classifier."""

    def __init__(self, width=16):
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, num_heads=2, batch_first=True)
        self.ff = Residual(width, nn.LayerNorm(width))
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        h = self.embed(x.reshape(x.shape[0], 8, 8))
        n = self.norm(h)
        h = h + self.attn(n, n, n, need_weights=False)[0]
        return self.head(self.ff(h).mean(1))


class ConvNorms(nn.Module):
    """Conv → GroupNorm and conv → BatchNorm, with a residual connection."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        h = F.relu(self.gn(self.c1(x)))
        h = h + F.relu(self.bn(self.c2(h)))
        return self.head(h.mean((2, 3)))


class Recurrent(nn.Module):
    """Rows of the image as a sequence of 8 steps through ``cell``; the last output classifies."""

    def __init__(self, cell, **options):
        super().__init__()
        self.rnn = cell(8, 16, batch_first=True, **options)
        self.head = nn.Linear(self.rnn.proj_size or 16, 10)

    def forward(self, x):
        out, _ = self.rnn(x.reshape(x.shape[0], 8, 8))
        return self.head(out[:, -1])


class Functional(nn.Module):
    """Bare parameters and functional calls in forward: no submodules at all."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(32, 64) / 8)
        self.bias1 = nn.Parameter(torch.zeros(32))
        self.w2 = nn.Parameter(torch.randn(10, 32) / 6)
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        h = F.gelu(F.linear(x.flatten(1), self.w1, self.bias1))
        return F.linear(h, self.w2, self.bias)


class DataDependent(nn.Module):
    """Python control flow on tensor values: vmap cannot batch it (the loop fallback runs it)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if out.sum() > 1e9:
            out = out * 0.5
        return out


class ResidualAttention(nn.Module):
    """The issue's done-when model: residual blocks, LayerNorm and attention."""

    def __init__(self, width=16):
        super().__init__()
        self.tokens = AttentionNet(width)

    def forward(self, x):
        return self.tokens(x)


def residual_mlp():
    return ResidualMLP()


def attention():
    return AttentionNet()


def conv_norms():
    return ConvNorms()


def gru():
    return Recurrent(nn.GRU)


def lstm():
    return Recurrent(nn.LSTM)


def lstm_proj():
    """An LSTM with projections, which biaslab.nets.recurrent does not rewrite: the loop fallback."""
    return Recurrent(nn.LSTM, proj_size=8)


def functional():
    return Functional()


def data_dependent():
    return DataDependent()


def residual_attention():
    return ResidualAttention()


def wrong_output():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
