"""Patterns of real architectures the audit must handle (issue 21), as small ``nn.Module``s.

timm is not a dependency: its patterns are rewritten here from what they compute, not copied.

* :class:`ControlFlow` — the issue's data-dependent model: a BatchNorm only for positive-mean inputs;
* :class:`BatchNormAct2d` — timm's BatchNorm subclass whose forward normalises, then applies an
  activation (and dropout) after the normalisation;
* :class:`LeViTLike` — timm's LeViT in miniature: a Conv2d+BatchNorm stem ending in
  ``stem.conv4.bn``, tokens through ``Linear → BatchNorm1d`` over the flattened tokens and back with
  ``reshape_as``, attention with a learned ``attention_biases`` table indexed by the buffer
  ``attention_bias_idxs`` (cached in eval mode), a BatchNorm1d + Linear head;
* :class:`PackedAttention` — ``nn.MultiheadAttention`` (packed ``in_proj_bias``) in a classifier;
* :class:`EmbeddingsIn` — a model holding an ``nn.Embedding`` that takes float embeddings.
"""

import torch
from torch import nn
from torch.nn import functional as F


class ControlFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.bn1, self.fc = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

    def forward(self, x):
        y = self.c1(x)
        if x.mean() > 0:
            y = self.bn1(y)
        return self.fc(F.relu(y).mean(dim=(2, 3)))


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm, then an activation and dropout, in one module (timm's ``BatchNormAct2d``)."""

    def __init__(self, num_features, act=nn.ReLU, drop=0.0):
        super().__init__(num_features)
        self.drop = nn.Dropout(drop)
        self.act = act()

    def forward(self, x):
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        x = F.batch_norm(x, self.running_mean if not self.training or self.track_running_stats else None,
                         self.running_var if not self.training or self.track_running_stats else None,
                         self.weight, self.bias, self.training or not self.track_running_stats, momentum, self.eps)
        return self.act(self.drop(x))


class BnActNet(nn.Module):
    """EfficientNet-like: conv → BatchNormAct2d, twice, then a head."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, bias=False), BatchNormAct2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 1, bias=False), BatchNormAct2d(8, nn.SiLU)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.bn2(self.conv2(self.bn1(self.conv1(x)))).mean((2, 3)))


class BnAfterBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn1, self.bn2 = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.relu(self.bn2(self.bn1(self.conv(x)))).mean((2, 3)))


class ConvNorm(nn.Sequential):
    def __init__(self, cin, cout, k=1, stride=1, padding=0):
        super().__init__()
        self.add_module("linear", nn.Conv2d(cin, cout, k, stride, padding, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class LinearNorm(nn.Module):
    """Linear without bias, BatchNorm1d over every token of every sample, back to (B, N, C)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.linear, self.bn = nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout)

    def forward(self, x):
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


class LevitAttention(nn.Module):
    def __init__(self, dim, key_dim, heads, resolution):
        super().__init__()
        self.heads, self.key_dim, self.scale = heads, key_dim, key_dim ** -0.5
        self.qkv = LinearNorm(dim, heads * key_dim * 3)
        self.proj = nn.Sequential(nn.Hardswish(), LinearNorm(heads * key_dim, dim))
        points = torch.stack(torch.meshgrid(torch.arange(resolution), torch.arange(resolution),
                                            indexing="ij")).flatten(1)
        rel = (points[:, :, None] - points[:, None, :]).abs()
        n = resolution * resolution
        self.attention_biases = nn.Parameter(torch.randn(heads, n) * 0.1)
        self.register_buffer("attention_bias_idxs", rel[0] * resolution + rel[1], persistent=False)
        self.cache = {}

    def train(self, mode=True):
        super().train(mode)
        if mode:
            self.cache = {}
        return self

    def biases(self, device):
        if self.training:
            return self.attention_biases[:, self.attention_bias_idxs]
        key = str(device)
        if key not in self.cache:
            self.cache[key] = self.attention_biases[:, self.attention_bias_idxs]
        return self.cache[key]

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, self.heads, -1).split([self.key_dim] * 3, dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 3, 1), v.permute(0, 2, 1, 3)
        attn = (q @ k * self.scale + self.biases(x.device)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, -1))


class LevitMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.ln1, self.act, self.ln2 = LinearNorm(dim, hidden), nn.Hardswish(), LinearNorm(hidden, dim)

    def forward(self, x):
        return self.ln2(self.act(self.ln1(x)))


class LeViTLike(nn.Module):
    def __init__(self, dim=16, resolution=2, n_classes=5):
        super().__init__()
        self.stem = nn.Sequential()
        for i, (cin, cout) in enumerate([(3, 4), (4, 8), (8, 12), (12, dim)], 1):
            self.stem.add_module(f"conv{i}", ConvNorm(cin, cout, 3, 2, 1))
            if i < 4:
                self.stem.add_module(f"act{i}", nn.Hardswish())
        self.resolution = resolution
        self.attn = LevitAttention(dim, 4, 2, resolution)
        self.mlp = LevitMlp(dim, 2 * dim)
        # the last stage sees one token: its attention-bias table cancels in the softmax over one key
        self.attn2 = LevitAttention(dim, 4, 2, 1)
        self.head_bn, self.head = nn.BatchNorm1d(dim), nn.Linear(dim, n_classes)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = x + self.attn(x)
        x = x + self.mlp(x)
        B, _, C = x.shape
        x = x.view(B, self.resolution, self.resolution, C)[:, ::2, ::2].reshape(B, -1, C)
        x = x + self.attn2(x)
        return self.head(self.head_bn(x.mean(1)))


class PackedAttention(nn.Module):
    """Tokens of 16 features (an 8×8 image is 4 tokens) through ``nn.MultiheadAttention``: its packed
    ``in_proj_bias`` has a redundant key part, a foldable value part and an active query part."""

    def __init__(self, dim=16, heads=2, n_classes=10):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, n_classes)
        with torch.no_grad():  # torch starts it at zero: give every part values to lose
            self.attn.in_proj_bias.uniform_(-1, 1)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1, 16)
        return self.head(F.relu(self.norm(x + self.attn(x, x, x)[0])).mean(1))


class EmbeddingsIn(nn.Module):
    """Holds an ``nn.Embedding`` (positions) but takes float token embeddings (B, L, D)."""

    def __init__(self, dim=8, length=6):
        super().__init__()
        self.pos, self.fc, self.norm = nn.Embedding(length, dim), nn.Linear(dim, dim), nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, x):
        h = x + self.pos(torch.arange(x.shape[1], device=x.device))
        return self.head(self.norm(self.fc(h)).mean(1))


def control_flow():
    return ControlFlow()


def levit():
    return LeViTLike()


def bn_act():
    return BnActNet()


def bn_after_bn():
    return BnAfterBn()


def packed_attention():
    return PackedAttention()


def embeddings_in():
    return EmbeddingsIn()
