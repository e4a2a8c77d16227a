"""Training a set of denoisers side by side, on the very same noisy patches."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ...infra.io import BiaslabError
from .data import sample_patches

__all__ = ["train_denoisers"]


def train_denoisers(
    models: dict[str, nn.Module],
    images: Sequence[np.ndarray],
    steps: int,
    batch_size: int,
    patch_size: int,
    sigma_max: float,
    lr: float = 2e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
) -> dict[str, list[float]]:
    """Train every model in ``models`` on the *same* noisy patches; return each one's loss per step.

    Each step draws ``batch_size`` patches, adds Gaussian noise with a per-patch σ drawn
    uniformly from ``[0, sigma_max]`` (0–255 scale; images are in [0, 1]) once, feeds that one
    noisy batch to every model, and takes one Adam step per model on the mean squared error to
    the clean patch, with a cosine-decaying learning rate. Deterministic for a ``seed``.

    Parameters
    ----------
    models:
        Name → network; each is trained in place and left in eval mode.
    images:
        Training pictures (H, W) in [0, 1], each at least ``patch_size`` a side.
    steps, batch_size, patch_size:
        Adam steps, patches per step, patch side in pixels.
    sigma_max:
        Largest training noise level, 0–255 scale.
    lr, seed, device, progress:
        Learning rate, random seed, torch device, and a callback called once per step.

    Returns
    -------
    dict
        Name → training loss at every step.

    Raises
    ------
    BiaslabError
        If a loss becomes NaN or infinite (training diverged).
    """
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opts = {k: torch.optim.Adam(m.parameters(), lr=lr) for k, m in models.items()}
    scheds = {k: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=lr / 20)
              for k, o in opts.items()}
    losses: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        m.to(device).train()
    for step in range(steps):
        clean = torch.from_numpy(sample_patches(images, batch_size, patch_size, rng))
        sigma = torch.rand(batch_size, 1, 1, 1, generator=gen) * (sigma_max / 255.0)
        noisy = (clean + sigma * torch.randn(clean.shape, generator=gen)).to(device)
        clean = clean.to(device)
        for k, m in models.items():
            loss = torch.mean((m(noisy) - clean) ** 2)
            if not math.isfinite(float(loss.detach())):
                raise BiaslabError(
                    f"training the {k} network diverged at step {step + 1} (loss is NaN or infinite); "
                    f"lower `lr` (now {lr:g})"
                )
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()
            scheds[k].step()
            losses[k].append(float(loss.detach()))
        if progress is not None:
            progress()
    for m in models.values():
        m.eval()
    return losses
