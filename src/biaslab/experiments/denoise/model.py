"""The denoiser: DnCNN (Zhang et al. 2017), with biases or bias-free."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...nets.bias_free import BiasFreeBatchNorm2d
from ...nets.biases import count_biases
from ...infra.io import BiaslabError

__all__ = ["DnCNN", "MAX_DEPTH", "MAX_WIDTH"]

#: Largest number of conv layers and of channels per layer a DnCNN may have (bounds user input
#: and architecture files before anything is allocated).
MAX_DEPTH = 64
MAX_WIDTH = 512


class DnCNN(nn.Module):
    """Residual denoiser ``f(y) = y − body(y)`` (Zhang et al. 2017); ``body`` predicts the noise.

    ``body`` is conv → ReLU, then ``depth − 2`` blocks conv → BatchNorm → ReLU, then conv;
    all kernels 3×3, zero padding. With ``bias=False`` every convolution loses its bias
    and BatchNorm becomes :class:`~biaslab.nets.bias_free.BiasFreeBatchNorm2d` — the same
    network :func:`~biaslab.nets.bias_free.make_bias_free` makes from the biased one.

    Parameters
    ----------
    depth:
        Number of conv layers, 2 to :data:`MAX_DEPTH`.
    width:
        Channels of the hidden layers, 1 to :data:`MAX_WIDTH`.
    channels:
        Image channels (1 grey, 3 RGB).
    bias:
        Keep the additive constants (conv biases, BatchNorm shifts and means).
    """

    def __init__(self, depth: int = 6, width: int = 32, channels: int = 1, bias: bool = True) -> None:
        super().__init__()
        if not (2 <= depth <= MAX_DEPTH and 1 <= width <= MAX_WIDTH and channels in (1, 3)):
            raise BiaslabError(
                f"DnCNN needs 2 <= depth <= {MAX_DEPTH}, 1 <= width <= {MAX_WIDTH} and 1 or 3 channels "
                f"(got depth {depth}, width {width}, {channels} channels)"
            )
        self.depth, self.width, self.channels = depth, width, channels
        norm = nn.BatchNorm2d if bias else BiasFreeBatchNorm2d
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1, bias=bias), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=bias), norm(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=bias))
        self.body = nn.Sequential(*layers)
        # Initialisation of the paper's code (after DnCNN-PyTorch): He-normal kernels, small
        # BatchNorm gains; and a zero last layer, so training starts at the identity f(y) = y.
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, BiasFreeBatchNorm2d)):
                with torch.no_grad():
                    m.weight.normal_(0.0, math.sqrt(2.0 / 9.0 / 64.0)).clamp_(-0.025, 0.025)
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.body(y)

    @property
    def receptive_radius(self) -> int:
        """Output pixel ``p`` depends only on inputs within this many pixels of ``p`` (eval mode)."""
        return self.depth

    @property
    def architecture(self) -> dict[str, Any]:
        """What is needed to rebuild the module: saved next to its weights."""
        return {"model": "DnCNN", "depth": self.depth, "width": self.width,
                "channels": self.channels, "bias": count_biases(self) > 0}
