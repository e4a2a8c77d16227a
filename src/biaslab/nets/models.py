"""Model factories with a bias switch: the same network with and without its bias terms.

Four architectures (``MODEL_NAMES``) and four ways of removing biases (``VARIANTS``):

==================  =========================================================================
``with-bias``       every layer keeps its bias (BatchNorm keeps its additive shift β)
``no-bias``         no layer has a bias; BatchNorm keeps only its scale γ
``conv-no-bias``    only the convolutions lose their bias
``head-no-bias``    only the classifier (the last linear layer) loses its bias
==================  =========================================================================

A removed bias is *absent* (``bias=None``), not a zero parameter, so the parameter
counts are those of the model a user would write. Every variant of an architecture has
the same layer names, so the state dict of a variant is a subset of the ``with-bias``
one: :func:`init_model` uses that to give all variants of one seed the same initial
weights (the paired design of ``biaslab ablate``).

The ``cnn-bn`` model shows a *redundant* bias: conv → BatchNorm subtracts the per-channel
batch mean, and with it any constant the convolution added, so the conv bias cannot change
the output (and gets an exactly zero gradient in exact arithmetic).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..infra.io import BiaslabError

__all__ = [
    "MODEL_NAMES",
    "VARIANTS",
    "ScaleOnlyBatchNorm2d",
    "build_model",
    "init_model",
    "bias_mask",
    "count_parameters",
]

#: Architectures: softmax regression, 2-hidden-layer MLP, conv-ReLU-pool ×2 CNN, CNN with BatchNorm.
MODEL_NAMES = ("linear", "mlp", "cnn", "cnn-bn")
#: Which biases a model keeps (see the module docstring).
VARIANTS = ("with-bias", "no-bias", "conv-no-bias", "head-no-bias")


class ScaleOnlyBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that learns the scale γ but has no additive shift β: ``γ · x̂``."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, affine=True, **kwargs)
        self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)


def _check(name: str, variant: str) -> None:
    if name not in MODEL_NAMES:
        raise BiaslabError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if variant not in VARIANTS:
        raise BiaslabError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def _conv_blocks(
    in_channels: int, channels: tuple[int, ...], conv_bias: bool, batch_norm: bool, bn_shift: bool
) -> list[nn.Module]:
    layers: list[nn.Module] = []
    c = in_channels
    for out in channels:
        layers.append(nn.Conv2d(c, out, kernel_size=3, padding=1, bias=conv_bias))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out) if bn_shift else ScaleOnlyBatchNorm2d(out))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        c = out
    return layers


def build_model(
    name: str,
    variant: str = "with-bias",
    in_shape: tuple[int, ...] = (1, 8, 8),
    n_classes: int = 10,
    **kwargs,
) -> nn.Module:
    """Build one model of ``MODEL_NAMES`` with the biases ``variant`` keeps.

    Parameters
    ----------
    name : ``linear``, ``mlp``, ``cnn`` or ``cnn-bn``.
    variant : ``with-bias``, ``no-bias``, ``conv-no-bias`` or ``head-no-bias``.
    in_shape : shape of one input: ``(C, H, W)`` for images, ``(F,)`` for tabular data.
        ``linear`` and ``mlp`` flatten any shape; the CNNs need ``(C, H, W)`` with H, W ≥ 4.
    n_classes : number of outputs (logits).
    hidden : (mlp) widths of the two hidden layers, default ``(64, 64)``.
    channels : (cnn, cnn-bn) output channels of the two conv blocks, default ``(16, 32)``.

    Returns
    -------
    An ``nn.Sequential`` in train mode; layer names are identical across variants.
    """
    _check(name, variant)
    in_shape = tuple(int(s) for s in in_shape)
    if not in_shape or any(s < 1 for s in in_shape):
        raise BiaslabError(f"in_shape must be positive sizes (got {in_shape})")
    if n_classes < 2:
        raise BiaslabError(f"n_classes must be at least 2 (got {n_classes})")
    unknown = set(kwargs) - {"hidden", "channels"}
    if unknown:
        raise BiaslabError(f"unknown model option(s) {', '.join(sorted(unknown))}; use hidden= or channels=")
    no_bias = variant == "no-bias"
    head_bias = variant not in ("no-bias", "head-no-bias")
    hidden_bias = not no_bias  # hidden linear layers of the MLP
    n_in = math.prod(in_shape)

    if name == "linear":
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(n_in, n_classes, bias=head_bias)]
    elif name == "mlp":
        h1, h2 = kwargs.get("hidden", (64, 64))
        layers = [
            nn.Flatten(),
            nn.Linear(n_in, h1, bias=hidden_bias), nn.ReLU(),
            nn.Linear(h1, h2, bias=hidden_bias), nn.ReLU(),
            nn.Linear(h2, n_classes, bias=head_bias),
        ]
    else:
        if len(in_shape) != 3 or min(in_shape[1:]) < 4:
            raise BiaslabError(
                f"model {name!r} needs images of shape (C, H, W) with H, W >= 4 (got input shape "
                f"{in_shape}); the models linear and mlp take tabular data"
            )
        channels = tuple(kwargs.get("channels", (16, 32)))
        conv_bias = variant not in ("no-bias", "conv-no-bias")
        batch_norm = name == "cnn-bn"
        layers = _conv_blocks(in_shape[0], channels, conv_bias, batch_norm, bn_shift=not no_bias)
        h, w = in_shape[1], in_shape[2]
        for _ in channels:
            h, w = h // 2, w // 2
        layers += [nn.Flatten(), nn.Linear(channels[-1] * h * w, n_classes, bias=head_bias)]
    return nn.Sequential(*layers)


def init_model(
    name: str,
    variant: str,
    seed: int,
    in_shape: tuple[int, ...] = (1, 8, 8),
    n_classes: int = 10,
    **kwargs,
) -> nn.Module:
    """``build_model`` with the initial weights of seed ``seed``, shared across variants.

    The ``with-bias`` model is initialised under ``torch.manual_seed(seed)`` and the variant
    copies every tensor it has from it, so two variants of one seed differ only in the biases
    they lack. The global torch RNG state is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        full = build_model(name, "with-bias", in_shape, n_classes, **kwargs)
        if variant == "with-bias":
            return full
        model = build_model(name, variant, in_shape, n_classes, **kwargs)
    full_state = full.state_dict()
    model.load_state_dict({k: full_state[k] for k in model.state_dict()})
    return model


def bias_mask(name: str, variant: str, in_shape: tuple[int, ...] = (1, 8, 8), n_classes: int = 10,
              **kwargs) -> dict[str, bool]:
    """For every parameter name of the ``with-bias`` model: does ``variant`` have it?"""
    full = build_model(name, "with-bias", in_shape, n_classes, **kwargs)
    kept = dict(build_model(name, variant, in_shape, n_classes, **kwargs).named_parameters())
    return {k: k in kept for k, _ in full.named_parameters()}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
