"""``biaslab denoise apply``: add noise to a user's image and denoise it with saved networks.

Images of any size are denoised in overlapping tiles (:mod:`.tiling`). A colour image given to a
one-channel network is denoised channel by channel; with a three-channel network, as RGB.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ...infra.io import BiaslabError, atomic_path
from ...results.denoise import DenoiseApplyResult, DenoisedImage
from ...infra.validate import bounded_int
from .analysis import psnr
from .checkpoint import load_denoiser
from .claims import apply_claims
from .data import add_noise, check_sigma
from .model import DnCNN
from .tiling import DEFAULT_BLEND, DEFAULT_TILE, MAX_TILE, denoise_tiled, min_tile, tile_count

__all__ = ["PREVIEW_SIDE", "twin_path", "apply_denoiser"]

#: Longest side of the reduced copies stored in results.json for the figure.
PREVIEW_SIDE = 512
_TWINS = ("denoiser_with_bias", "denoiser_bias_free")


def twin_path(model: str | Path) -> Path:
    """The other network of the pair ``biaslab denoise`` saved: with-bias ↔ bias-free, same folder."""
    p = Path(model)
    for mine, other in (_TWINS, _TWINS[::-1]):
        if p.stem == mine:
            return p.with_name(other + p.suffix)
    raise BiaslabError(f"`compare` needs a network saved by `biaslab denoise` ({_TWINS[0]}.pt or "
                       f"{_TWINS[1]}.pt), to find its twin next to it; got {p.name}")


def _hwc(chw: np.ndarray) -> np.ndarray:
    """(C, H, W) → (H, W) for one channel, (H, W, C) otherwise."""
    return chw[0] if chw.shape[0] == 1 else np.moveaxis(chw, 0, -1)


def _preview(chw: np.ndarray) -> np.ndarray:
    """Every k-th pixel, so that the longest side is at most :data:`PREVIEW_SIDE`; (H', W') or (H', W', 3)."""
    step = max(1, math.ceil(max(chw.shape[1:]) / PREVIEW_SIDE))
    return np.ascontiguousarray(_hwc(chw[:, ::step, ::step]), dtype=np.float32)


def _save_png(chw: np.ndarray, path: Path) -> str:
    """Write (C, H, W) in [0, 1] as an 8-bit PNG, atomically, converting a few rows at a time."""
    from PIL import Image

    c, h, w = chw.shape
    data = np.empty((h, w, c), dtype=np.uint8)
    for r in range(0, h, 256):
        block = np.moveaxis(chw[:, r:r + 256], 0, -1)
        data[r:r + 256] = (np.clip(block, 0, 1) * 255 + 0.5).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(data[..., 0] if c == 1 else data).save(tmp, format="PNG")
    return str(path)


def _load(image: str | Path, channels: int) -> tuple[np.ndarray, str]:
    """The image as (C, H, W) float32 for a ``channels``-channel network, and how colour was handled."""
    from ...data.images import load_image
    from ...infra.validate import check_finite

    rgb = check_finite(f"image {image}", load_image(image, color=True))
    grey = bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))
    if channels == 3:
        return np.ascontiguousarray(np.moveaxis(rgb, -1, 0), dtype=np.float32), "rgb"
    if grey:
        return np.ascontiguousarray(rgb[None, ..., 0], dtype=np.float32), "grey"
    return np.ascontiguousarray(np.moveaxis(rgb, -1, 0), dtype=np.float32), "per-channel"


def _denoise(net: DnCNN, noisy: np.ndarray, tile: int, progress) -> np.ndarray:
    if net.channels == noisy.shape[0]:
        return denoise_tiled(net, noisy, net.receptive_radius, tile, DEFAULT_BLEND, progress)
    return np.concatenate([denoise_tiled(net, noisy[c:c + 1], net.receptive_radius, tile, DEFAULT_BLEND, progress)
                           for c in range(noisy.shape[0])])


def apply_denoiser(
    model: str | Path,
    image: str | Path,
    sigma: float = 25.0,
    seed: int = 0,
    device: str = "auto",
    compare: bool = False,
    tile: int = DEFAULT_TILE,
    save_dir: str | Path | None = None,
    show_progress: bool = False,
) -> DenoiseApplyResult:
    """Add Gaussian noise of level ``sigma`` (0–255 scale; 0 = none) to ``image`` and denoise it.

    Parameters
    ----------
    model:
        Weights saved by :func:`~biaslab.experiments.denoise.run_denoise` (``denoiser_bias_free.pt`` ...).
    image:
        The picture (PNG, JPEG, ...). Colour is kept: per channel through a one-channel network.
    sigma, seed:
        Noise to add first, and its seed.
    device:
        ``auto``, ``cpu``, ``cuda``, ...
    compare:
        Also run the twin network saved next to ``model`` (with-bias ↔ bias-free), side by side.
    tile:
        Side of the overlapping tiles the image is denoised in (memory is bounded by one tile).
    save_dir:
        Write ``noisy.png`` and ``denoised[_<kind>].png`` at full resolution here; then the
        full-resolution arrays are not kept in memory. Without it they are kept in
        :attr:`DenoisedImage.image` as (H, W) or (H, W, 3).
    show_progress:
        Report progress per tile on stderr.
    """
    from ...infra.device import resolve_device
    from ...infra.progress import progress_bar

    sigma = check_sigma("sigma", sigma)
    tile = bounded_int("tile", tile, 1, MAX_TILE)
    paths = [Path(model)] + ([twin_path(model)] if compare else [])
    dev = resolve_device(device)
    nets = [load_denoiser(p, dev) for p in paths]
    smallest = max(min_tile(n.receptive_radius, DEFAULT_BLEND) for n in nets)
    if tile < smallest:
        raise BiaslabError(f"`tile` {tile} is too small for a depth-{max(n.depth for n in nets)} network; "
                           f"use at least {smallest}")
    if len({n.channels for n in nets}) > 1:
        raise BiaslabError(f"{paths[0].name} and {paths[1].name} take different numbers of channels")
    clean, colour = _load(image, nets[0].channels)
    noisy = add_noise(torch.from_numpy(clean), sigma, seed).numpy() if sigma > 0 else clean
    p_noisy = psnr(clean, noisy) if sigma > 0 else None
    out = Path(save_dir) if save_dir is not None else None
    noisy_file = _save_png(noisy, out / "noisy.png") if out is not None and sigma > 0 else None

    h, w = clean.shape[1:]
    tiles = [tile_count(h, w, tile, n.receptive_radius, DEFAULT_BLEND) for n in nets]
    passes = clean.shape[0] if colour == "per-channel" else 1
    outputs = []
    with progress_bar(passes * sum(tiles), "denoising tiles", show_progress) as advance:
        for p, net in zip(paths, nets):
            den = _denoise(net, noisy, tile, advance)
            kind = "with_bias" if net.architecture["bias"] else "bias_free"
            name = "denoised.png" if len(nets) == 1 else f"denoised_{kind}.png"
            file = _save_png(den, out / name) if out is not None else None
            outputs.append(DenoisedImage(str(p), net.architecture, psnr(clean, den) if sigma > 0 else None,
                                         _preview(den), file, _hwc(den) if out is None else None))
            del den
    return DenoiseApplyResult(
        image=str(image), shape=[int(h), int(w)] + ([clean.shape[0]] if clean.shape[0] > 1 else []),
        sigma=sigma, colour=colour, tiles=tiles[0], psnr_noisy=p_noisy, preview_clean=_preview(clean),
        preview_noisy=_preview(noisy), outputs=outputs, noisy_file=noisy_file,
        params={"model": str(model), "image": str(image), "sigma": sigma, "seed": seed, "compare": compare,
                "tile": tile, "device": str(dev)},
        claims=apply_claims(sigma, p_noisy, outputs),
    )
