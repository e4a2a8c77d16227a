"""The experiment: train a DnCNN and its bias-free twin on the same patches, measure, conclude."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...nets.bias_free import make_bias_free
from ...infra.io import BiaslabError
from ...results.denoise import DenoiseResult
from ...infra.validate import bounded_int, finite_number
from .analysis import EQUIVARIANCE_ALPHAS, equivariance_error, evaluate_psnr, example_images, filter_rows, \
    linearity_residual
from .checkpoint import save_denoiser
from .claims import denoise_claims
from .data import add_noise, center_crop, check_sigma, load_sets
from .model import MAX_DEPTH, MAX_WIDTH, DnCNN
from .train import train_denoisers

__all__ = ["EVAL_SIGMAS", "PRESETS", "resolve_settings", "run_denoise", "DenoisePlan", "plan_denoise", "train_pair",
           "analyse_pair"]

#: Test noise levels on the 0–255 scale.
EVAL_SIGMAS = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100)

#: Settings of the default run (paper's out-of-range experiment: σ ∈ [0, 10]) and of --quick.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {"depth": 8, "width": 32, "steps": 1200, "batch_size": 32, "patch_size": 32,
                "sigma_max": 10.0, "lr": 2e-3, "eval_crop": 192},
    "quick": {"depth": 6, "width": 32, "steps": 400, "batch_size": 32, "patch_size": 24,
              "sigma_max": 20.0, "lr": 2e-3, "eval_crop": 128},
}
#: Integer settings: (smallest, largest) accepted.
_BOUNDS = {"depth": (2, MAX_DEPTH), "width": (1, MAX_WIDTH), "steps": (1, 1_000_000), "batch_size": (2, 4096),
           "patch_size": (8, 1024), "eval_crop": (16, 4096)}
#: Largest Adam learning rate accepted.
MAX_LR = 1.0


def resolve_settings(quick: bool = False, **overrides: Any) -> dict[str, Any]:
    """The preset's settings with ``overrides`` (None = keep), each checked against its bounds."""
    st = dict(PRESETS["quick" if quick else "default"])
    st.update({k: v for k, v in overrides.items() if v is not None})
    for name, (lo, hi) in _BOUNDS.items():
        st[name] = bounded_int(name, st[name], lo, hi)
    st["sigma_max"] = check_sigma("sigma_max", st["sigma_max"], positive=True)
    st["lr"] = finite_number("lr", st["lr"], 0.0, MAX_LR, open_low=True)
    return st


def run_denoise(
    quick: bool = False,
    depth: int | None = None,
    width: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    patch_size: int | None = None,
    sigma_max: float | None = None,
    lr: float | None = None,
    eval_crop: int | None = None,
    images: str | Path | None = None,
    sigmas: Sequence[float] = EVAL_SIGMAS,
    seed: int = 0,
    device: str = "auto",
    save_dir: str | Path | None = None,
    show_progress: bool | None = None,  # None: a live bar in a Jupyter kernel only
) -> DenoiseResult:
    """Train a DnCNN and its bias-free twin on the same patches, then compare them.

    Parameters
    ----------
    quick:
        Start from the ``"quick"`` preset instead of ``"default"`` (:data:`PRESETS`).
    depth, width, steps, batch_size, patch_size, sigma_max, lr, eval_crop:
        Override the preset (None keeps it). ``sigma_max`` is the largest training noise level.
    images:
        A folder of the user's images (the last fifth, at least one, is held out for testing)
        instead of the bundled scikit-image pictures.
    sigmas:
        Test noise levels, 0–255 scale.
    seed, device:
        Random seed (initial weights, patches, noise) and torch device.
    save_dir:
        Write the trained weights there as ``denoiser_with_bias.pt`` / ``denoiser_bias_free.pt``
        (+ architecture JSON).
    show_progress:
        Report training progress on stderr (None: a live bar in a Jupyter kernel, nothing elsewhere).

    Returns
    -------
    DenoiseResult
        PSNR table, equivariance, Jacobian rows and the claims
        (:func:`~biaslab.experiments.denoise.claims.denoise_claims`).
    """
    plan = plan_denoise(quick, depth, width, steps, batch_size, patch_size, sigma_max, lr, eval_crop, images, sigmas,
                        seed, device)
    models, losses, train_seconds = train_pair(plan, show_progress)
    weights: dict[str, str] = {}
    if save_dir is not None:
        for k, m in models.items():
            weights[k] = str(save_denoiser(m, Path(save_dir) / f"denoiser_{k}.pt"))
    return analyse_pair(plan, models, losses, train_seconds, weights)


@dataclass
class DenoisePlan:
    """A checked denoising run: its settings (the preset with the overrides, recorded as the result's
    params), test noise levels, device, and the training and test images."""

    settings: dict[str, Any]
    sigmas: list[float]
    device: Any
    train_names: list[str]
    train_images: list[np.ndarray]
    test_names: list[str]
    test_images: list[np.ndarray]


def plan_denoise(quick: bool = False, depth: int | None = None, width: int | None = None, steps: int | None = None,
                 batch_size: int | None = None, patch_size: int | None = None, sigma_max: float | None = None,
                 lr: float | None = None, eval_crop: int | None = None, images: str | Path | None = None,
                 sigmas: Sequence[float] = EVAL_SIGMAS, seed: int = 0, device: str = "auto") -> DenoisePlan:
    """Check every setting, then load the images (see :func:`run_denoise`)."""
    from ...infra.device import resolve_device

    st = resolve_settings(quick, depth=depth, width=width, steps=steps, batch_size=batch_size,
                          patch_size=patch_size, sigma_max=sigma_max, lr=lr, eval_crop=eval_crop)
    levels = sorted(check_sigma("test noise levels", float(s)) for s in sigmas)
    if not levels:
        raise BiaslabError("give at least one test noise level")
    dev = resolve_device(device)
    train_names, train_imgs, test_names, test_imgs = load_sets(images)
    small = [n for n, im in zip(train_names, train_imgs) if min(im.shape) < st["patch_size"]]
    if small:
        raise BiaslabError(f"image(s) {', '.join(small)} are smaller than `patch_size` {st['patch_size']}")
    crop = min(st["eval_crop"], *(min(im.shape) for im in test_imgs))
    if crop < 16:
        raise BiaslabError(f"test image(s) {', '.join(test_names)} are too small (need at least 16×16)")
    st.update(eval_crop=crop, device=str(dev), quick=quick, seed=seed,
              images=str(images) if images is not None else "scikit-image")
    return DenoisePlan(st, levels, dev, train_names, train_imgs, test_names, test_imgs)


def train_pair(plan: DenoisePlan, show_progress: bool = False) -> tuple[dict[str, nn.Module], dict[str, list[float]],
                                                                       float]:
    """A DnCNN and its bias-free twin from the same initial kernels, trained on the very same noisy
    batches; returns the models (on the CPU, in eval mode), their losses and the training time."""
    from ...infra.progress import progress_bar

    st, seed = plan.settings, plan.settings["seed"]
    torch.manual_seed(seed)
    with_bias = DnCNN(st["depth"], st["width"], bias=True)
    bias_free = make_bias_free(with_bias)  # the same initial kernels, every additive constant removed
    models = {"with_bias": with_bias, "bias_free": bias_free}
    t0 = time.perf_counter()
    with progress_bar(st["steps"], "training denoisers (with bias, bias-free)", show_progress) as advance:
        losses = train_denoisers(models, plan.train_images, st["steps"], st["batch_size"], st["patch_size"],
                                 st["sigma_max"], st["lr"], seed=seed, device=plan.device, progress=advance)
    seconds = time.perf_counter() - t0
    for m in models.values():
        m.cpu().eval()
    return models, losses, seconds


def analyse_pair(plan: DenoisePlan, models: dict[str, nn.Module], losses: dict[str, list[float]],
                 train_seconds: float, weights: dict[str, str]) -> DenoiseResult:
    """PSNR at every test noise level, positive homogeneity, example crops, the bias-free network's
    filter rows, and the claims drawn from them."""
    st, seed, sigmas = plan.settings, plan.settings["seed"], plan.sigmas
    crop = st["eval_crop"]
    clean = torch.from_numpy(np.stack([center_crop(im, crop) for im in plan.test_images])[:, None].copy())
    psnrs = evaluate_psnr(models, clean, sigmas, seed=seed)
    gain = [b - w for b, w in zip(psnrs["bias_free"], psnrs["with_bias"])]
    y_eq = add_noise(clean, st["sigma_max"], seed + 1)
    equiv = {k: equivariance_error(m, y_eq) for k, m in models.items()}
    shown = list(dict.fromkeys([max([s for s in sigmas if s <= st["sigma_max"]], default=sigmas[0]), sigmas[-1]]))
    examples = [example_images(models, clean[:1], s, seed + 104729 + j) for j, s in enumerate(shown)]
    bias_free = models["bias_free"]
    filters = filter_rows(bias_free, clean[:1], shown, bias_free.receptive_radius, seed + 15485863)
    eq_max = {k: max(v) for k, v in equiv.items()}
    return DenoiseResult(
        sigmas=sigmas, psnr=psnrs, gain_db=gain, train_sigma_max=st["sigma_max"],
        equivariance={"alphas": list(EQUIVARIANCE_ALPHAS), **equiv}, equivariance_error=eq_max,
        linearity_residual={k: linearity_residual(m, y_eq) for k, m in models.items()},
        train_images=plan.train_names, test_images=plan.test_names,
        final_train_loss={k: float(np.mean(v[-max(1, len(v) // 20):])) for k, v in losses.items()},
        train_seconds=train_seconds, examples=examples, filters=filters, weights=weights, params=st,
        claims=denoise_claims(sigmas, gain, st["sigma_max"], eq_max, filters),
    )
