"""The conv result: feature maps of one image for several kernels and biases, and their claims.

Full-resolution maps are summarised by numbers (share of active units, mean and maximum
activation, per kernel and bias, and over a sweep of biases); the maps themselves are kept as
block-averaged previews (``preview_factor`` × ``preview_factor`` blocks) so that results.json
stays small while every figure can be drawn from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .base import Claim, Result

__all__ = ["ImageInfo", "BiasStats", "KernelMap", "Sweep", "SweepCurve", "BiasOutput", "KernelExplanation",
           "Explanation", "TorchCheck", "ConvResult"]


@dataclass
class ImageInfo:
    """The input: where it came from, its size as used (C, H, W) and before block-averaging."""

    source: str
    channels: int
    height: int
    width: int
    original_height: int
    original_width: int


@dataclass
class BiasStats:
    """One kernel at one bias: units fire where Σ(input * kernel) > ``threshold`` = −bias."""

    bias: float
    threshold: float
    fraction_active: float
    mean_activation: float
    max_activation: float


@dataclass
class KernelMap:
    """One kernel, its map of weighted sums Σ(input * kernel), and the map at every bias.

    ``border`` counts the output rows and columns (top, bottom, left, right) whose kernel window
    overlaps the zero padding. ``preview_sum`` is Σ(input * kernel) and ``preview_outputs[k]``
    is activation(Σ + biases[k]), both block-averaged over ``preview_factor`` blocks.
    """

    name: str
    weights: np.ndarray
    output_shape: tuple[int, int]
    sum_min: float
    sum_max: float
    sum_mean: float
    biases: list[BiasStats]
    border: tuple[int, int, int, int]
    preview_sum: np.ndarray
    preview_outputs: np.ndarray


@dataclass
class SweepCurve:
    """Share of active units and mean activation of one kernel at each bias of the sweep."""

    fraction_active: np.ndarray
    mean_activation: np.ndarray


@dataclass
class Sweep:
    """``kernels[name]`` over the biases ``bias`` (wide enough to go from almost none to almost all active)."""

    bias: np.ndarray
    kernels: dict[str, SweepCurve]


@dataclass
class BiasOutput:
    """The explained output at one bias; ``feature_map`` is the full map's value there (must equal ``output``)."""

    bias: float
    pre_activation: float
    output: float
    feature_map: float


@dataclass
class KernelExplanation:
    """How one output value of one kernel comes about: activation(Σ(patch * weights) + b).

    ``corner`` is the input (row, col) under the kernel's first tap (negative in the padding),
    ``span`` the input rows and columns the kernel covers, ``in_padding`` marks the taps that
    read the zero padding. ``neighbourhood`` is the input around the receptive field, its top
    left pixel at input (row, col) ``neighbourhood_origin``.
    """

    kernel: str
    patch: np.ndarray
    weights: np.ndarray
    product: np.ndarray
    sum: float
    corner: tuple[int, int]
    span: tuple[int, int]
    in_padding: np.ndarray
    neighbourhood: np.ndarray
    neighbourhood_origin: tuple[int, int]
    biases: list[BiasOutput]


@dataclass
class Explanation:
    """The ``--explain`` breakdown of output ``position`` (row, col), one entry per kernel."""

    position: tuple[int, int]
    kernels: list[KernelExplanation]


@dataclass
class TorchCheck:
    """Largest |ours − torch.nn.functional.conv2d| over every kernel and bias, against ``tolerance``."""

    reference: str
    max_abs_diff: float
    tolerance: float


@dataclass
class ConvResult(Result):
    """Feature maps activation(Σ(input * kernel) + b) of one image for several kernels and biases.

    ``image_preview`` is the (C, h, w) input block-averaged like the maps; ``output_shape``
    is the full (H_out, W_out) of the first kernel's map (each ``KernelMap`` has its own).
    """

    command: ClassVar[str] = "conv"
    image: ImageInfo
    image_preview: np.ndarray
    preview_factor: int
    output_shape: tuple[int, int]
    activation: str
    biases: list[float]
    kernels: list[KernelMap]
    sweep: Sweep
    explain: Explanation | None = None
    check: TorchCheck | None = None
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
