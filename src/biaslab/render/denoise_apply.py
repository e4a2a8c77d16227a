"""``biaslab denoise apply``: the user's image, noisy and denoised by one network or both side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..infra.numfmt import fmt_fixed, fmt_num, fmt_signed
from ..results.denoise import DenoiseApplyResult, DenoisedImage
from .figures import new_figure, save_figure
from .report import Section

__all__ = ["summary", "figures", "sections"]

_COLOUR = {"grey": "grey", "per-channel": "colour, each RGB channel denoised separately by the one-channel network",
           "rgb": "colour, denoised as RGB by the three-channel network"}


def _kind(o: DenoisedImage) -> str:
    return "with-bias" if o.architecture["bias"] else "bias-free"


def summary(res: DenoiseApplyResult) -> str:
    name = Path(res.image).name
    size = "×".join(str(s) for s in res.shape[:2][::-1])
    how = f"{name} ({size} pixels, {_COLOUR[res.colour]}; {res.tiles} tile{'s' if res.tiles != 1 else ''})"
    if res.psnr_noisy is None:
        head = f"Denoised {how} as given (σ = 0: no noise added, so no clean reference and no PSNR)"
        lines = [f"{head} with " + " and ".join(f"the {_kind(o)} DnCNN from {o.model}" for o in res.outputs) + "."]
    else:
        lines = [f"Added Gaussian noise σ = {fmt_num(res.sigma)} (0–255 scale) to {how}: PSNR "
                 f"{fmt_fixed(res.psnr_noisy, 2)} dB."]
        lines += [f"The {_kind(o)} DnCNN from {o.model}: {fmt_fixed(o.psnr, 2)} dB "
                  f"({fmt_signed(o.psnr - res.psnr_noisy, 2, ' dB')})." for o in res.outputs]
    return " ".join(lines + [c.text for c in res.claims])


def plot_apply(res: DenoiseApplyResult, out_dir: Path, fmt: str = "png") -> Path:
    """The image: original, noisy, and each network's output (reduced copies)."""
    panels = [("original", res.preview_clean)]
    if res.psnr_noisy is not None:
        panels.append((f"noisy σ = {fmt_num(res.sigma)}\n{fmt_fixed(res.psnr_noisy, 2)} dB", res.preview_noisy))
    for o in res.outputs:
        panels.append((f"{_kind(o)} DnCNN" + (f"\n{fmt_fixed(o.psnr, 2)} dB" if o.psnr is not None else ""),
                       o.preview))
    h, w = res.preview_clean.shape[:2]
    fig, axes = new_figure(1, len(panels), figsize=(3.6 * len(panels), 3.6 * h / w + 0.9), layout="constrained",
                           squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        ax.imshow(np.clip(img, 0, 1), cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{Path(res.image).name} denoised")
    return save_figure(fig, out_dir, "denoise_apply", fmt)


def figures(res: DenoiseApplyResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    return [plot_apply(res, out_dir, fmt)]


def sections(res: DenoiseApplyResult, figs: list[Path]) -> list[Section]:
    files = [f for f in [res.noisy_file, *(o.file for o in res.outputs)] if f]
    text = summary(res) + (f"\n\nFull-resolution images: {', '.join(Path(f).name for f in files)}." if files else "")
    return [Section("Denoising your image", text, figs, claims=list(res.claims), anchor="denoise-apply")]
