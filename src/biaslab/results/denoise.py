"""The denoising results: a with-bias / bias-free DnCNN pair compared across noise levels, and a
saved network applied to a user's image.

Everything a figure or a sentence needs is stored here as numbers or arrays: the PSNR table,
the example crops with their PSNRs, the equivariance errors, and the Jacobian rows with their
row sums and effective widths. The renderers read these; they never recompute them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .base import Claim, Result

__all__ = ["ExampleImages", "FilterRows", "DenoiseResult", "DenoisedImage", "DenoiseApplyResult"]


@dataclass
class ExampleImages:
    """The first test crop at one noise level: clean, noisy and both networks' outputs (H, W), with PSNRs.

    ``denoised`` and ``psnr`` are keyed by ``with_bias`` / ``bias_free``; ``psnr_noisy`` is the
    noisy input's PSNR.
    """

    sigma: float
    clean: np.ndarray
    noisy: np.ndarray
    denoised: dict[str, np.ndarray]
    psnr_noisy: float
    psnr: dict[str, float]


@dataclass
class FilterRows:
    """The bias-free network as an adaptive linear filter at one noise level: rows of ``J(y)``.

    ``noisy`` is the input window (H, W); ``rows[k]`` (H, W) holds the weights with which output
    pixel ``pixels[k]`` combines the noisy pixels, so that ``f(y)[p] = Σ rows[k] · y`` exactly for
    a bias-free ReLU network. Per row: ``centre`` is the weight of the pixel itself, ``row_sum``
    is ``Σ w`` (1 for a filter that keeps a constant image unchanged), ``effective_width`` is
    ``√((Σ|w|)² / Σw²)`` pixels (the side of a square of equal weights with the same ratio of
    the L1 and L2 norms: 1 for a single weight, n for n² equal weights) and ``radius90`` is the
    smallest distance from the pixel (Euclidean, pixels) that holds 90 % of ``Σ|w|``.
    """

    sigma: float
    noisy: np.ndarray
    pixels: list[tuple[int, int]]
    labels: list[str]
    rows: np.ndarray
    centre: list[float]
    row_sum: list[float]
    effective_width: list[float]
    radius90: list[float]


@dataclass
class DenoiseResult(Result):
    """PSNR against noise level, scale equivariance and the adaptive-filter view of a trained pair.

    ``psnr`` maps ``noisy``, ``with_bias`` and ``bias_free`` to the mean PSNR (dB) over the test
    crops at each ``sigmas`` (0–255 scale); ``gain_db`` is bias-free minus with-bias per σ. Both
    networks were trained on σ ∈ [0, ``train_sigma_max``]. ``equivariance`` holds ``alphas`` and,
    per network, ``‖f(α·y) − α·f(y)‖ / ‖α·f(y)‖`` for each α; ``equivariance_error`` the largest
    of them. ``linearity_residual`` is ``‖f(y) − J(y)·y‖ / ‖f(y)‖``.
    """

    command: ClassVar[str] = "denoise"
    sigmas: list[float]
    psnr: dict[str, list[float]]
    gain_db: list[float]
    train_sigma_max: float
    equivariance: dict[str, list[float]]
    equivariance_error: dict[str, float]
    linearity_residual: dict[str, float]
    train_images: list[str]
    test_images: list[str]
    final_train_loss: dict[str, float]
    train_seconds: float
    examples: list[ExampleImages] = field(default_factory=list)
    filters: list[FilterRows] = field(default_factory=list)
    weights: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)


@dataclass
class DenoisedImage:
    """One network's output on the user's image.

    ``architecture`` is the network's (``bias`` tells which kind); ``psnr`` is None when no noise
    was added (no clean reference); ``file`` is the full-resolution PNG written, if any;
    ``preview`` a reduced copy (H', W) or (H', W', 3) for the figure. ``image`` holds the
    full-resolution output in memory only (not in results.json).
    """

    model: str
    architecture: dict[str, Any]
    psnr: float | None
    preview: np.ndarray
    file: str | None = None
    image: np.ndarray | None = field(default=None, repr=False, metadata={"stored": False})


@dataclass
class DenoiseApplyResult(Result):
    """A user's image with Gaussian noise of level ``sigma`` added, denoised by one or two saved networks.

    ``colour`` says how colour was handled: ``grey`` (a grey image), ``per-channel`` (each RGB
    channel denoised separately by a one-channel network) or ``rgb`` (a three-channel network).
    ``tiles`` is the number of overlapping tiles the image was cut into (1: untiled).
    ``outputs`` lists the ``--model`` network first, then its twin with ``--compare``.
    """

    command: ClassVar[str] = "denoise-apply"
    image: str
    shape: list[int]
    sigma: float
    colour: str
    tiles: int
    psnr_noisy: float | None
    preview_clean: np.ndarray
    preview_noisy: np.ndarray
    outputs: list[DenoisedImage]
    noisy_file: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
