"""What is measured on a trained pair: PSNR, scale equivariance, local linearity, and the
Jacobian rows that make the bias-free network an adaptive linear filter ``f(y) = J(y)·y``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ...results.denoise import ExampleImages, FilterRows
from .data import add_noise

__all__ = [
    "EQUIVARIANCE_ALPHAS",
    "psnr",
    "evaluate_psnr",
    "equivariance_error",
    "linearity_residual",
    "jacobian_rows",
    "filter_stats",
    "example_images",
    "filter_rows",
]

#: Scale factors for the equivariance test ``f(α·y) = α·f(y)``. Powers of two scale exactly in
#: floating point; 3 does not, so its error shows the float32 rounding of a bias-free network.
EQUIVARIANCE_ALPHAS = (0.25, 0.5, 2.0, 3.0, 4.0)
#: Side of the edge-rich window on which Jacobian rows are computed (at least; grows with depth).
JACOBIAN_WINDOW = 40
#: Share of ``Σ|w|`` inside :attr:`FilterRows.radius90`.
MASS_FRACTION = 0.9
_BLOCK = 1 << 20


def psnr(clean: np.ndarray | torch.Tensor, estimate: np.ndarray | torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``estimate`` clipped to [0, 1] (as in the paper's code).

    Computed in float64 over blocks of a million values, so a large photo needs no float64 copy.
    """
    c = np.asarray(clean).reshape(-1)
    e = np.asarray(estimate).reshape(-1)
    sse = 0.0
    for i in range(0, c.size, _BLOCK):
        d = c[i:i + _BLOCK].astype(np.float64) - np.clip(e[i:i + _BLOCK].astype(np.float64), 0.0, 1.0)
        sse += float(d @ d)
    mse = sse / c.size
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate_psnr(
    models: dict[str, nn.Module], clean: torch.Tensor, sigmas: Sequence[float], seed: int = 0
) -> dict[str, list[float]]:
    """Mean PSNR over the images of ``clean`` (N, C, H, W) at each σ, for each model and the noisy input.

    Every model sees the same noisy images. Returns ``{"noisy": [...], name: [...], ...}``.
    """
    out: dict[str, list[float]] = {"noisy": [], **{k: [] for k in models}}
    for j, s in enumerate(sigmas):
        noisy = add_noise(clean, float(s), seed + 7919 * j)
        out["noisy"].append(float(np.mean([psnr(c, y) for c, y in zip(clean, noisy)])))
        for k, m in models.items():
            den = m(noisy.to(_device(m))).cpu()
            out[k].append(float(np.mean([psnr(c, d) for c, d in zip(clean, den)])))
    return out


@torch.no_grad()
def equivariance_error(model: nn.Module, y: torch.Tensor, alphas: Sequence[float] = EQUIVARIANCE_ALPHAS) -> list[float]:
    """Relative error ``‖f(α·y) − α·f(y)‖ / ‖α·f(y)‖`` for each α (``model`` in eval mode)."""
    f_y = model(y)
    return [float(torch.linalg.vector_norm(model(a * y) - a * f_y) / torch.linalg.vector_norm(a * f_y))
            for a in alphas]


def linearity_residual(model: nn.Module, y: torch.Tensor) -> float:
    """``‖f(y) − J(y)·y‖ / ‖f(y)‖``: zero for a bias-free ReLU network, the "net bias" otherwise.

    ``J(y)·y`` is one Jacobian-vector product with tangent ``y``.
    """
    from torch.autograd.functional import jvp

    f_y, jy = jvp(model, y, y)
    return float(torch.linalg.vector_norm(f_y - jy) / torch.linalg.vector_norm(f_y))


def jacobian_rows(model: nn.Module, y: torch.Tensor, pixels: Sequence[tuple[int, int]]) -> np.ndarray:
    """Rows of the Jacobian ``J(y)`` of ``model`` at ``y`` (1, 1, H, W), one per output pixel.

    Row ``(r, c)`` holds the weights with which the denoised pixel ``(r, c)`` combines the
    noisy input (for a bias-free network ``f(y) = J(y)·y`` exactly). Only the requested
    rows are computed, one vector-Jacobian product each. Returns (len(pixels), H, W).
    """
    from torch.func import vjp

    out, pullback = vjp(model, y)
    rows = []
    for r, c in pixels:
        e = torch.zeros_like(out)
        e[0, 0, r, c] = 1.0
        (row,) = pullback(e)
        rows.append(row[0, 0].detach().cpu().numpy())
    return np.stack(rows)


def filter_stats(row: np.ndarray, pixel: tuple[int, int]) -> dict[str, float]:
    """Centre weight, row sum, effective width and 90 %-mass radius of one Jacobian row (H, W).

    See :class:`~biaslab.results.denoise.FilterRows` for the definitions.
    """
    w = np.asarray(row, dtype=np.float64)
    a = np.abs(w)
    l1, l2sq = float(a.sum()), float((w * w).sum())
    rr, cc = np.indices(w.shape)
    dist = np.hypot(rr - pixel[0], cc - pixel[1]).ravel()
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(a.ravel()[order])
    k = int(np.searchsorted(cum, MASS_FRACTION * l1 * (1 - 1e-12)))
    return {"centre": float(w[pixel]), "row_sum": float(w.sum()),
            "effective_width": math.sqrt(l1 * l1 / l2sq) if l2sq > 0 else 0.0,
            "radius90": float(dist[order[min(k, len(order) - 1)]]) if l1 > 0 else 0.0}


@torch.no_grad()
def example_images(models: dict[str, nn.Module], clean: torch.Tensor, sigma: float, seed: int) -> ExampleImages:
    """Crop ``clean`` (1, 1, H, W) at noise ``sigma``, denoised by each model, with PSNRs."""
    noisy = add_noise(clean, sigma, seed)
    den = {k: m(noisy.to(_device(m))).cpu() for k, m in models.items()}
    return ExampleImages(float(sigma), clean[0, 0].numpy().copy(), noisy[0, 0].numpy(),
                         {k: d[0, 0].numpy() for k, d in den.items()}, psnr(clean, noisy),
                         {k: psnr(clean, d) for k, d in den.items()})


def _edge_window(img: np.ndarray, size: int, margin: int) -> tuple[int, int, list[tuple[int, int]], list[str]]:
    """A ``size``×``size`` window of ``img`` rich in edges, and three pixels in it: edge, median, flat.

    The pixels stay ``margin`` pixels away from the window's border, where zero padding would
    shape the filter.
    """
    from scipy import ndimage

    g = np.hypot(ndimage.sobel(img, 0), ndimage.sobel(img, 1))
    energy = ndimage.uniform_filter(g, size)
    h = size // 2
    inner = energy[h:img.shape[0] - size + h + 1, h:img.shape[1] - size + h + 1]
    r0, c0 = np.unravel_index(int(np.argmax(inner)), inner.shape)
    local = ndimage.uniform_filter(g[r0:r0 + size, c0:c0 + size], 3)
    core = local[margin:size - margin, margin:size - margin]
    order = np.argsort(core, axis=None, kind="stable")
    picks = [order[-1], order[len(order) // 2], order[0]]
    pixels = [(int(p // core.shape[1]) + margin, int(p % core.shape[1]) + margin) for p in picks]
    return int(r0), int(c0), pixels, ["strongest edge", "median", "flattest"]


def filter_rows(model: nn.Module, clean: torch.Tensor, sigmas: Sequence[float], radius: int,
                seed: int) -> list[FilterRows]:
    """Jacobian rows of ``model`` at three pixels of an edge-rich window of ``clean`` (1, 1, H, W), per σ.

    ``radius`` is the model's receptive radius: the window is large enough that each row's
    whole support lies inside it, away from the window's zero-padded border.
    """
    img = clean[0, 0].numpy().astype(np.float64)
    size = min(max(JACOBIAN_WINDOW, 2 * radius + 24), *img.shape)
    margin = min(radius, size // 4)
    r0, c0, pixels, labels = _edge_window(img, size, margin)
    out = []
    for j, s in enumerate(sigmas):
        y = add_noise(clean[:, :, r0:r0 + size, c0:c0 + size], float(s), seed + j)
        rows = jacobian_rows(model, y.to(_device(model)), pixels)
        stats = [filter_stats(r, p) for r, p in zip(rows, pixels)]
        out.append(FilterRows(
            sigma=float(s), noisy=y[0, 0].numpy(), pixels=pixels, labels=labels, rows=rows.astype(np.float32),
            centre=[st["centre"] for st in stats], row_sum=[st["row_sum"] for st in stats],
            effective_width=[st["effective_width"] for st in stats], radius90=[st["radius90"] for st in stats],
        ))
    return out
