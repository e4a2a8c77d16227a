"""Denoising an image of any size in overlapping tiles, blended with a window (overlap-add).

A DnCNN's output pixel depends only on the inputs within its receptive radius ``r``. Each tile is
cut from the image with its neighbours' pixels around it, so wherever a tile's window is non-zero
(at least ``r`` pixels from any cut edge) its output equals the untiled output exactly; there the
tiles are blended with linear ramps over ``blend`` pixels. The result equals the untiled output up
to float rounding, while memory holds one tile's activations at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["DEFAULT_TILE", "DEFAULT_BLEND", "MAX_TILE", "tile_starts", "tile_window", "min_tile", "tile_count",
           "denoise_tiled"]

#: Tile side in pixels: large enough to waste little on overlaps, small enough that one tile's
#: activations (width × tile² floats per layer) stay small.
DEFAULT_TILE = 512
#: Pixels over which neighbouring tiles are cross-faded (beyond the receptive radius on each side).
DEFAULT_BLEND = 16
#: Largest tile side accepted.
MAX_TILE = 4096


def min_tile(radius: int, blend: int) -> int:
    """Smallest tile side for a receptive radius and blend width: the overlap plus one pixel."""
    return 2 * radius + blend + 1


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``[0, length)``, neighbours overlapping by ≥ ``overlap``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    n = math.ceil((length - overlap) / step)
    return sorted({min(k * step, length - tile) for k in range(n)})


def tile_count(height: int, width: int, tile: int, radius: int, blend: int = DEFAULT_BLEND) -> int:
    """Number of tiles :func:`denoise_tiled` cuts a ``height``×``width`` image into."""
    overlap = 2 * radius + blend
    return len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))


def tile_window(start: int, size: int, length: int, radius: int, blend: int) -> np.ndarray:
    """1-D blending weights of a tile ``[start, start + size)`` of an axis of ``length`` pixels.

    On a side cut from the image (not the image's own border) the weight is 0 for the first
    ``radius`` pixels, whose outputs the cut changes, then rises linearly over ``blend`` pixels.
    """
    w = np.ones(size, dtype=np.float64)
    ramp = np.arange(1, blend + 1, dtype=np.float64) / (blend + 1)
    if start > 0:
        w[:radius] = 0.0
        w[radius:radius + blend] = ramp
    if start + size < length:
        w[size - radius:] = 0.0
        w[size - radius - blend:size - radius] = np.minimum(w[size - radius - blend:size - radius], ramp[::-1])
    return w


@torch.no_grad()
def denoise_tiled(
    model: nn.Module,
    image: np.ndarray,
    radius: int,
    tile: int = DEFAULT_TILE,
    blend: int = DEFAULT_BLEND,
    progress: Callable[..., None] | None = None,
) -> np.ndarray:
    """``model`` applied to ``image`` (C, H, W) float32, tile by tile; returns (C, H, W) float32.

    Parameters
    ----------
    model:
        A network whose output pixel depends only on inputs within ``radius`` pixels (eval mode).
        It receives (1, C, h, w) tensors on its own device.
    image:
        The input, channels first.
    radius:
        The model's receptive radius.
    tile, blend:
        Tile side (at least :func:`min_tile`) and cross-fade width in pixels.
    progress:
        Called once per tile.
    """
    overlap = 2 * radius + blend
    if tile < overlap + 1:
        raise ValueError(f"tile {tile} must be at least {overlap + 1} (2 × radius {radius} + blend {blend} + 1)")
    device = next(model.parameters()).device
    _, height, width = image.shape
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out = np.zeros(image.shape, dtype=np.float32)
    norm_r, norm_c = np.zeros(height), np.zeros(width)
    for r in rows:
        h = min(tile, height)
        wr = tile_window(r, h, height, radius, blend)
        norm_r[r:r + h] += wr
        for c in cols:
            w = min(tile, width)
            wc = tile_window(c, w, width, radius, blend)
            if r == rows[0]:
                norm_c[c:c + w] += wc
            x = torch.from_numpy(np.ascontiguousarray(image[None, :, r:r + h, c:c + w])).to(device)
            y = model(x)[0].cpu().numpy()
            out[:, r:r + h, c:c + w] += (y * np.outer(wr, wc)).astype(np.float32)
            if progress is not None:
                progress()
    out /= norm_r.astype(np.float32)[None, :, None]  # the windows are separable: divide by each axis's sum
    out /= norm_c.astype(np.float32)[None, None, :]
    return out
