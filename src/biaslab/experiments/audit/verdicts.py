"""What the analysis concludes about one bias (or one part of a packed bias), shared by the graph
analysis (:mod:`.graph`) and the order-based fallback (:mod:`.hooks`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

__all__ = ["Verdict", "Verdicts", "bias_axes", "RELU"]

#: Ops (by :func:`.offsets.op_name` or module class) that are ReLUs: a bias feeding one sets its threshold.
RELU = {"relu", "relu6", "leaky_relu", "prelu", "ReLU", "ReLU6", "LeakyReLU", "PReLU"}


def bias_axes(module: nn.Module, rank: int) -> tuple[int, ...] | None:
    """Axes of ``module``'s output (of ``rank`` dims) along which its ``bias`` lies; None if unknown."""
    if getattr(module, "bias", None) is None:
        return None
    if isinstance(module, nn.Linear):
        return (rank - 1,)
    if isinstance(module, nn.LayerNorm):
        return tuple(range(rank - len(module.normalized_shape), rank))
    if isinstance(module, _ConvNd) and rank == len(module.kernel_size) + 1:
        return (0,)  # an unbatched input: (C, *spatial)
    if isinstance(module, _InstanceNorm) and rank == module._get_no_batch_dim():
        return (0,)
    if isinstance(module, (_ConvNd, _BatchNorm, _InstanceNorm, nn.GroupNorm)):
        return (1,) if rank >= 2 else None
    return None


@dataclass
class Verdict:
    """A status with its reason (short and long), the layer that decided it and what removal or folding needs."""

    status: str
    short: str
    reason: str
    consumer: str | None = None
    cancelled_fraction: float | None = None
    corrections: dict[str, torch.Tensor] = field(default_factory=dict)
    unknown: bool = False
    fold_value: torch.Tensor | None = None




#: Verdicts per bias parameter: ``(part, span, verdict)`` for each part (``(None, None, v)`` when whole).
Verdicts = dict[str, list[tuple[str | None, slice | None, Verdict]]]
