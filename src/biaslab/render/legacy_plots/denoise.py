"""Bias-free denoising: PSNR vs noise level, example images, equivariance, Jacobian rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...io import atomic_path
from ..figures import COLORS, new_figure, save_figure

if TYPE_CHECKING:
    from ...denoise import DenoiseApplyResult, DenoiseResult

__all__ = ["plot_psnr", "plot_examples", "plot_equivariance", "plot_jacobian_rows", "plot_apply", "save_image"]

_LABELS = {"with_bias": "with bias", "bias_free": "bias-free"}
_COLOR = {"with_bias": COLORS["with_bias"], "bias_free": COLORS["without_bias"]}
_ZOOM = 9  # Jacobian rows are shown in a (2·_ZOOM + 1)² window around their pixel


def plot_psnr(res: "DenoiseResult", out_dir: Path, fmt: str = "png") -> Path:
    """PSNR of both networks and of the noisy input vs σ; the training range shaded."""
    fig, ax = new_figure(figsize=(7.5, 4.8), layout="constrained")
    ax.axvspan(0, res.train_sigma_max, color="tab:blue", alpha=0.12,
               label=f"training range σ ∈ [0, {res.train_sigma_max:g}]")
    ax.plot(res.sigmas, res.psnr["noisy"], "--", color="grey", marker=".", label="noisy input")
    for k in ("with_bias", "bias_free"):
        ax.plot(res.sigmas, res.psnr[k], "-o", color=_COLOR[k], lw=2, ms=5, label=_LABELS[k])
    ax.set_xlim(0, max(res.sigmas) * 1.03)
    ax.set_xlabel("noise level σ (0–255 scale)")
    ax.set_ylabel("PSNR (dB), held-out images")
    ax.set_title("Denoising outside the training range: bias-free generalises")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out_dir, "denoise_psnr", fmt)


def _show(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_examples(res: "DenoiseResult", out_dir: Path, fmt: str = "png") -> Path:
    """Clean / noisy / with-bias / bias-free at a σ inside and one far outside the training range."""
    from ...denoise import psnr

    sigmas = list(res.examples)
    fig, axes = new_figure(len(sigmas), 4, figsize=(11, 2.9 * len(sigmas) + 0.4), layout="constrained",
                           squeeze=False)
    for row, s in zip(axes, sigmas):
        ex = res.examples[s]
        where = "inside" if s <= res.train_sigma_max else "outside"
        _show(row[0], ex["clean"], f"clean ({res.test_images[0]}, held out)")
        _show(row[1], ex["noisy"], f"noisy σ = {s:g} ({where} training)\n{psnr(ex['clean'], ex['noisy']):.2f} dB")
        for ax, k in zip(row[2:], ("with_bias", "bias_free")):
            _show(ax, ex[k], f"{_LABELS[k]}\n{psnr(ex['clean'], ex[k]):.2f} dB")
    fig.suptitle(f"Trained on σ ∈ [0, {res.train_sigma_max:g}]: denoised images and PSNR")
    return save_figure(fig, out_dir, "denoise_examples", fmt)


def plot_equivariance(res: "DenoiseResult", out_dir: Path, fmt: str = "png") -> Path:
    """Relative error of ``f(α·y) = α·f(y)`` for each α, both networks, log scale."""
    alphas = res.equivariance["alphas"]
    fig, ax = new_figure(figsize=(6.8, 4.2), layout="constrained")
    x = np.arange(len(alphas))
    floor = 1e-9  # an exact zero cannot be drawn on a log axis
    for i, k in enumerate(("with_bias", "bias_free")):
        vals = np.maximum(np.asarray(res.equivariance[k], dtype=float), floor)
        bars = ax.bar(x + (i - 0.5) * 0.38, vals, 0.38, color=_COLOR[k], label=_LABELS[k])
        for b, v in zip(bars, res.equivariance[k]):
            ax.annotate("0 (exact)" if v == 0 else f"{v:.1e}", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.axhline(float(np.finfo(np.float32).eps), color="grey", ls=":", lw=1, label="float32 precision")
    ax.set_yscale("log")
    ax.set_ylim(floor / 3, 1e3)
    ax.set_xticks(x, [f"α = {a:g}" for a in alphas])
    ax.set_ylabel("‖f(α·y) − α·f(y)‖ / ‖α·f(y)‖")
    ax.set_title("Scale equivariance: exact without bias, broken with bias")
    ax.legend(loc="upper center", ncols=3, fontsize=9)
    return save_figure(fig, out_dir, "denoise_equivariance", fmt)


def plot_jacobian_rows(res: "DenoiseResult", out_dir: Path, fmt: str = "png") -> Path:
    """The bias-free denoiser as an adaptive filter: Jacobian rows at a few pixels, two noise levels."""
    from matplotlib.patches import Rectangle

    sigmas = list(res.jacobian)
    n_pix = len(next(iter(res.jacobian.values()))["pixels"])
    fig, axes = new_figure(len(sigmas), n_pix + 1, figsize=(2.6 * (n_pix + 1) + 0.6, 2.9 * len(sigmas) + 0.6),
                           layout="constrained", squeeze=False)
    markers = ["tab:red", "tab:cyan", "gold", "tab:purple"]
    for row, s in zip(axes, sigmas):
        jac = res.jacobian[s]
        _show(row[0], jac["noisy"], f"noisy input, σ = {s:g}")
        for (r, c), color in zip(jac["pixels"], markers):
            row[0].add_patch(Rectangle((c - 1.5, r - 1.5), 3, 3, fill=False, ec=color, lw=1.5))
        for ax, w, (r, c), label, color in zip(row[1:], jac["rows"], jac["pixels"], jac["labels"], markers):
            r0, c0 = max(0, r - _ZOOM), max(0, c - _ZOOM)
            win = w[r0:r + _ZOOM + 1, c0:c + _ZOOM + 1]
            centre = float(w[r, c])
            around = np.abs(win).copy()
            around[r - r0, c - c0] = 0.0
            lim = float(around.max()) or abs(centre) or 1.0  # the centre weight may saturate
            im = ax.imshow(win, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.plot([c - c0], [r - r0], "+", color=color, ms=9, mew=1.5)
            ax.set_title(f"{label} pixel: centre {centre:.2f},\nΣ weights {w.sum():.2f}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.75)
    fig.suptitle("Bias-free denoiser as an adaptive filter, f(y) = J(y)·y: rows of J(y), the weights each "
                 f"denoised pixel gives its noisy neighbours ({2 * _ZOOM + 1}×{2 * _ZOOM + 1} zoom, "
                 "+ = the pixel)", fontsize=10)
    return save_figure(fig, out_dir, "denoise_jacobian", fmt)


def plot_apply(res: "DenoiseApplyResult", out_dir: Path, fmt: str = "png") -> Path:
    """The user's image: original, noisy, denoised."""
    from ...denoise import psnr

    panels = [("original", res.clean)]
    if res.psnr_noisy is not None:
        panels.append((f"noisy σ = {res.sigma:g}\n{res.psnr_noisy:.2f} dB", res.noisy))
    panels.append(("denoised" + (f"\n{psnr(res.clean, res.denoised):.2f} dB" if res.psnr_noisy is not None else ""),
                   res.denoised))
    h, w = res.clean.shape[:2]
    fig, axes = new_figure(1, len(panels), figsize=(3.6 * len(panels), 3.6 * h / w + 0.8), layout="constrained",
                           squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    kind = "bias-free" if not res.architecture["bias"] else "with-bias"
    fig.suptitle(f"{Path(res.image).name} denoised by the {kind} DnCNN")
    return save_figure(fig, out_dir, "denoise_apply", fmt)


def save_image(img: np.ndarray, out_dir: Path, name: str) -> Path:
    """Write an image in [0, 1] (grey or RGB) as an 8-bit PNG, atomically."""
    from PIL import Image

    path = Path(out_dir) / f"{name}.png"
    data = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(data).save(tmp, format="PNG")
    return path
