"""A small model zoo for ``biaslab audit``: well-known architectures, written here (no torchvision).

Each builder follows the layout of the architecture it is named after, including where that
architecture puts its biases, so the audit finds what it would find in the real thing:

=================  =================================================================================
``resnet18``       conv(bias=False) → BatchNorm → ReLU blocks with skips: BatchNorm shifts foldable
``resnet50``       the same with bottleneck blocks (≈ 25.6 M parameters at 1000 classes)
``vgg11_bn``       conv(bias=True) → BatchNorm → ReLU, as torchvision's VGG-BN: every conv bias redundant
``mobilenet_v2``   inverted residuals, depthwise convs, ReLU6, linear bottlenecks
``transformer``    a ViT-style classifier: patch embedding, pre-LayerNorm encoder blocks
                   (multi-head self-attention + GELU MLP), mean over tokens, linear head
=================  =================================================================================

Every builder takes ``in_shape=(C, H, W)`` and ``n_classes``; the convolutional ones accept any
image size from 8×8 up (global average pooling before the head).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..infra.io import BiaslabError

__all__ = [
    "ZOO",
    "ZOO_INPUT_SHAPES",
    "build_zoo_model",
    "resnet18",
    "resnet50",
    "vgg11_bn",
    "mobilenet_v2",
    "transformer",
    "SelfAttention",
    "EncoderBlock",
]


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, groups=groups, bias=bias), nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """ResNet-18/34 block: two 3×3 conv-BN, ReLU between, identity (or 1×1 conv-BN) skip."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(c_in, width, 3, stride)
        self.relu = nn.ReLU()
        self.conv2, self.bn2 = _conv_bn(width, c_out, 3)
        self.downsample = (
            nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)) if stride != 1 or c_in != c_out else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + skip)


class Bottleneck(nn.Module):
    """ResNet-50 block: 1×1 reduce, 3×3, 1×1 expand (×4), each conv-BN; ReLU; skip."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(c_in, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, c_out, 1)
        self.relu = nn.ReLU()
        self.downsample = (
            nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)) if stride != 1 or c_in != c_out else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + skip)


class ResNet(nn.Module):
    """Stem (7×7/2 conv-BN-ReLU, 3×3/2 max pool), four stages, global average pool, linear head."""

    def __init__(self, block: type, layers: tuple[int, ...], in_channels: int = 3, n_classes: int = 10) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, 64, 7, stride=2)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = 64
        stages = []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(c, width, stride=2 if i > 0 and j == 0 else 1))
                c = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(in_shape: tuple[int, ...] = (3, 32, 32), n_classes: int = 10) -> nn.Module:
    """ResNet-18 layout (11.2 M parameters at 1000 classes); convs have no bias, as in torchvision."""
    return ResNet(BasicBlock, (2, 2, 2, 2), in_shape[0], n_classes)


def resnet50(in_shape: tuple[int, ...] = (3, 224, 224), n_classes: int = 1000) -> nn.Module:
    """ResNet-50 layout (25.6 M parameters at 1000 classes); used by ``benchmarks/bench_audit.py``."""
    return ResNet(Bottleneck, (3, 4, 6, 3), in_shape[0], n_classes)


class VGG(nn.Module):
    """Conv(bias=True)-BN-ReLU stacks with max pools, global average pool, MLP classifier with dropout."""

    def __init__(self, cfg: tuple, in_channels: int = 3, n_classes: int = 10, hidden: int = 512) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers += [*_conv_bn(c, v, 3, bias=True), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(c, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg11_bn(in_shape: tuple[int, ...] = (3, 32, 32), n_classes: int = 10) -> nn.Module:
    """VGG-11 with BatchNorm; like torchvision's, its convs keep a bias in front of BatchNorm."""
    cfg = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
    return VGG(cfg, in_shape[0], n_classes)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand-BN-ReLU6, 3×3 depthwise-BN-ReLU6, 1×1 project-BN (linear)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(c_in, hidden, 1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(), *_conv_bn(hidden, c_out, 1)]
        self.conv = nn.Sequential(*layers)
        self.use_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_skip else self.conv(x)


class MobileNetV2(nn.Module):
    """The MobileNetV2 stages (t, c, n, s) of the paper, 1280-wide last conv, dropout, linear head."""

    CONFIG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, in_channels: int = 3, n_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv_bn(in_channels, 32, 3, 2), nn.ReLU6()]
        c = 32
        for t, c_out, n, s in self.CONFIG:
            for i in range(n):
                layers.append(InvertedResidual(c, c_out, s if i == 0 else 1, t))
                c = c_out
        layers += [*_conv_bn(c, 1280, 1), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def mobilenet_v2(in_shape: tuple[int, ...] = (3, 32, 32), n_classes: int = 10) -> nn.Module:
    """MobileNetV2 layout (2.2 M parameters at 10 classes); convs have no bias, as in torchvision."""
    return MobileNetV2(in_shape[0], n_classes)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate query, key and value projections (each with a bias)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise BiaslabError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        # (N, L, D) -> (N, heads, L, head_dim)
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        out = scores.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(x.size(0), x.size(1), -1))


class EncoderBlock(nn.Module):
    """Pre-LayerNorm transformer encoder block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class VisionTransformer(nn.Module):
    """Patch embedding (strided conv) + position embedding, encoder blocks, LayerNorm, mean over tokens, head."""

    def __init__(self, in_shape: tuple[int, ...], n_classes: int, patch: int, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        c, h, w = in_shape
        if h % patch or w % patch:
            raise BiaslabError(f"transformer needs image sides divisible by the patch size {patch} (got {h}×{w})")
        self.patch_embed = nn.Conv2d(c, dim, patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, (h // patch) * (w // patch), dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))


def transformer(in_shape: tuple[int, ...] = (3, 32, 32), n_classes: int = 10) -> nn.Module:
    """ViT-style classifier with two encoder blocks (width 64, 4 heads, patches of 4 or 2 pixels)."""
    patch = 4 if min(in_shape[1:]) >= 16 else 2
    return VisionTransformer(tuple(in_shape), n_classes, patch=patch, dim=64, depth=2, heads=4)


#: Built-in demonstration models: name → builder(in_shape, n_classes).
ZOO: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "vgg11_bn": vgg11_bn,
    "mobilenet_v2": mobilenet_v2,
    "transformer": transformer,
}

#: Default input shape (C, H, W) of each zoo model.
ZOO_INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "resnet18": (3, 32, 32),
    "resnet50": (3, 224, 224),
    "vgg11_bn": (3, 32, 32),
    "mobilenet_v2": (3, 32, 32),
    "transformer": (3, 32, 32),
}


def build_zoo_model(name: str, in_shape: tuple[int, ...] | None = None, n_classes: int = 10) -> nn.Module:
    """Build the zoo model ``name`` for inputs of shape ``in_shape`` (C, H, W)."""
    if name not in ZOO:
        raise BiaslabError(f"unknown zoo model {name!r}; choose one of {', '.join(ZOO)}")
    shape = tuple(int(s) for s in (in_shape or ZOO_INPUT_SHAPES[name]))
    if len(shape) != 3 or min(shape) < 1 or min(shape[1:]) < 8:
        raise BiaslabError(f"zoo model {name!r} needs an image shape C,H,W with H, W >= 8 (got {shape})")
    if n_classes < 2:
        raise BiaslabError(f"n_classes must be at least 2 (got {n_classes})")
    return ZOO[name](shape, n_classes)
