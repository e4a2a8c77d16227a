"""Denoising: PSNR against noise level, example crops, scale equivariance, and the bias-free network
as an adaptive linear filter (rows of its Jacobian). Every conclusion is a claim's text."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..infra.numfmt import fmt_fixed, fmt_num, fmt_signed
from ..results.denoise import DenoiseResult
from .figures import COLORS, new_figure, save_figure
from .report import Section

__all__ = ["summary", "figures", "sections"]

_LABELS = {"with_bias": "with bias", "bias_free": "bias-free"}
_COLOR = {"with_bias": COLORS["with_bias"], "bias_free": COLORS["without_bias"]}
_MARKERS = ["tab:red", "tab:cyan", "gold", "tab:purple"]


def _wrap(text: str, width: int = 90) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _claim_text(res: DenoiseResult, cid: str) -> str:
    return next((c.text for c in res.claims if c.id == cid), "")


def _numbers(res: DenoiseResult) -> str:
    p = res.params
    s_max = res.sigmas[-1]
    return (
        f"Two DnCNN denoisers (depth {p['depth']}, width {p['width']}), one with biases and one bias-free, "
        f"trained on the same noisy patches with σ ∈ [0, {fmt_num(res.train_sigma_max)}] (0–255 scale), "
        f"tested on held-out images ({', '.join(res.test_images)}). At σ = {fmt_num(s_max)}: noisy input "
        f"{fmt_fixed(res.psnr['noisy'][-1], 2)} dB, with bias {fmt_fixed(res.psnr['with_bias'][-1], 2)} dB, "
        f"bias-free {fmt_fixed(res.psnr['bias_free'][-1], 2)} dB ({fmt_signed(res.gain_db[-1], 2, ' dB')})."
    )


def _filter_text(res: DenoiseResult) -> str:
    lin = res.linearity_residual
    text = (
        "A bias-free ReLU network is piecewise linear with no offset, so f(y) = J(y)·y: each denoised pixel "
        "is a weighted sum of the noisy pixels, with weights (a row of the Jacobian J(y)) that depend on the "
        "image — an adaptive linear filter. Measured: ‖f(y) − J(y)·y‖/‖f(y)‖ = "
        f"{fmt_num(lin['bias_free'], 2)} bias-free, {fmt_num(lin['with_bias'], 2)} with bias."
    )
    for f in res.filters:
        text += (
            f" At σ = {fmt_num(f.sigma)}, over {len(f.pixels)} pixels: centre weight "
            f"{fmt_fixed(min(f.centre), 2)} to {fmt_fixed(max(f.centre), 2)}, row sum Σw "
            f"{fmt_fixed(min(f.row_sum), 2)} to {fmt_fixed(max(f.row_sum), 2)}, effective width "
            f"{fmt_fixed(min(f.effective_width), 1)} to {fmt_fixed(max(f.effective_width), 1)} px."
        )
    return text + (" Effective width: √((Σ|w|)²/Σw²) pixels (1 for a single weight, n for n² equal weights); "
                   "the 90 % radius holds 90 % of Σ|w|; a row sum of 1 keeps a constant image unchanged.")


def summary(res: DenoiseResult) -> str:
    return "\n\n".join([_numbers(res), " ".join(c.text for c in res.claims), _filter_text(res)])


def plot_psnr(res: DenoiseResult, out_dir: Path, fmt: str = "png") -> Path:
    """PSNR of both networks and of the noisy input against σ; the training range shaded."""
    fig, ax = new_figure(figsize=(7.5, 4.9), layout="constrained")
    ax.axvspan(0, res.train_sigma_max, color="tab:blue", alpha=0.12,
               label=f"training range σ ∈ [0, {fmt_num(res.train_sigma_max)}]")
    ax.plot(res.sigmas, res.psnr["noisy"], "--", color="grey", marker=".", label="noisy input")
    for k in ("with_bias", "bias_free"):
        ax.plot(res.sigmas, res.psnr[k], "-o", color=_COLOR[k], lw=2, ms=5, label=_LABELS[k])
    ax.set_xlim(0, max(res.sigmas) * 1.03)
    ax.set_xlabel("noise level σ (0–255 scale)")
    ax.set_ylabel("PSNR (dB), held-out images")
    ax.set_title(_wrap(_claim_text(res, "bias_free_generalises"), 80), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out_dir, "denoise_psnr", fmt)


def _show(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_examples(res: DenoiseResult, out_dir: Path, fmt: str = "png") -> Path:
    """Clean / noisy / with-bias / bias-free at a σ inside and the largest σ, with stored PSNRs."""
    fig, axes = new_figure(len(res.examples), 4, figsize=(11, 2.9 * len(res.examples) + 0.4),
                           layout="constrained", squeeze=False)
    for row, ex in zip(axes, res.examples):
        where = "inside" if ex.sigma <= res.train_sigma_max else "outside"
        _show(row[0], ex.clean, f"clean ({res.test_images[0]}, held out)")
        _show(row[1], ex.noisy, f"noisy σ = {fmt_num(ex.sigma)} ({where} training)\n{fmt_fixed(ex.psnr_noisy, 2)} dB")
        for ax, k in zip(row[2:], ("with_bias", "bias_free")):
            _show(ax, ex.denoised[k], f"{_LABELS[k]}\n{fmt_fixed(ex.psnr[k], 2)} dB")
    fig.suptitle(f"Trained on σ ∈ [0, {fmt_num(res.train_sigma_max)}]: a held-out crop denoised, with PSNR")
    return save_figure(fig, out_dir, "denoise_examples", fmt)


def plot_equivariance(res: DenoiseResult, out_dir: Path, fmt: str = "png") -> Path:
    """Relative error of ``f(α·y) = α·f(y)`` for each α, both networks, log scale; the claim's tolerance."""
    alphas = res.equivariance["alphas"]
    claim = res.claim("bias_free_equivariant")
    fig, ax = new_figure(figsize=(7.2, 4.4), layout="constrained")
    x = np.arange(len(alphas))
    floor = 1e-9  # an exact zero cannot be drawn on a log axis
    for i, k in enumerate(("with_bias", "bias_free")):
        vals = np.asarray(res.equivariance[k], dtype=float)
        bars = ax.bar(x + (i - 0.5) * 0.38, np.maximum(vals, floor), 0.38, color=_COLOR[k], label=_LABELS[k])
        for b, v in zip(bars, vals):
            ax.annotate("0 (exact)" if v == 0 else fmt_num(float(v), 2), (b.get_x() + b.get_width() / 2,
                        b.get_height()), ha="center", va="bottom", fontsize=8)
    ax.axhline(claim.evidence["tolerance"], color="black", ls="--", lw=1,
               label=f"tolerance {fmt_num(claim.evidence['tolerance'])}")
    ax.set_yscale("log")
    ax.set_ylim(floor / 3, 1e3)
    ax.set_xticks(x, [f"α = {a:g}" for a in alphas])
    ax.set_ylabel("‖f(α·y) − α·f(y)‖ / ‖α·f(y)‖")
    ax.set_title(_wrap(claim.text, 85), fontsize=9)
    ax.legend(loc="upper center", ncols=3, fontsize=9)
    return save_figure(fig, out_dir, "denoise_equivariance", fmt)


def plot_filters(res: DenoiseResult, out_dir: Path, fmt: str = "png") -> Path:
    """Rows of the bias-free network's Jacobian at three pixels and two noise levels, on one colour scale.

    Each weight panel shows the same window around its pixel; one diverging scale, centred at 0
    and wide enough for every weight shown (centre included), serves all panels.
    """
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    size = res.filters[0].rows.shape[-1]
    zoom = min(int(res.params["depth"]) + 1, min(min(p) for f in res.filters for p in f.pixels),
               min(size - 1 - max(p) for f in res.filters for p in f.pixels))
    windows = [[row[r - zoom:r + zoom + 1, c - zoom:c + zoom + 1] for row, (r, c) in zip(f.rows, f.pixels)]
               for f in res.filters]
    lim = max(float(np.abs(w).max()) for ws in windows for w in ws) or 1.0
    norm = Normalize(-lim, lim)
    n_pix = len(res.filters[0].pixels)
    figsize = (2.55 * (n_pix + 1) + 1.2, 2.75 * len(res.filters) + 0.9)
    fig, axes = new_figure(len(res.filters), n_pix + 1, figsize=figsize, layout="constrained", squeeze=False)
    im = None
    for row_axes, f, ws in zip(axes, res.filters, windows):
        _show(row_axes[0], f.noisy, f"noisy input, σ = {fmt_num(f.sigma)}")
        for (r, c), color in zip(f.pixels, _MARKERS):
            row_axes[0].add_patch(Rectangle((c - zoom - 0.5, r - zoom - 0.5), 2 * zoom + 1, 2 * zoom + 1,
                                            fill=False, ec=color, lw=1.3))
        for k, (ax, w, color) in enumerate(zip(row_axes[1:], ws, _MARKERS)):
            im = ax.imshow(w, cmap="RdBu_r", norm=norm, interpolation="nearest")
            ax.plot([zoom], [zoom], "+", color=color, ms=9, mew=1.5)
            ax.set_title(f"{f.labels[k]} pixel, σ = {fmt_num(f.sigma)}\ncentre {fmt_fixed(f.centre[k], 2)}, "
                         f"Σw {fmt_fixed(f.row_sum[k], 2)}, width {fmt_fixed(f.effective_width[k], 1)} px",
                         fontsize=8.5)
            ax.set_xticks([])
            ax.set_yticks([])
    cbar = fig.colorbar(im, ax=axes[:, 1:], shrink=0.85)
    cbar.set_label("weight of a noisy pixel in the output pixel (+)")
    fig.suptitle(
        f"Bias-free denoiser as an adaptive linear filter f(y) = J(y)·y: rows of J(y) in a "
        f"{2 * zoom + 1}×{2 * zoom + 1} window around each pixel (boxes on the left), one colour scale",
        fontsize=10)
    return save_figure(fig, out_dir, "denoise_jacobian", fmt)


def figures(res: DenoiseResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    figs = [plot_psnr(res, out_dir, fmt), plot_equivariance(res, out_dir, fmt)]
    if res.examples:
        figs.append(plot_examples(res, out_dir, fmt))
    if res.filters:
        figs.append(plot_filters(res, out_dir, fmt))
    return figs


def sections(res: DenoiseResult, figs: list[Path]) -> list[Section]:
    by_stem = {f.stem: f for f in figs}
    rows = [{"σ (0–255)": f"{fmt_num(s)}" + (" (train)" if s <= res.train_sigma_max else ""),
             "noisy (dB)": fmt_fixed(n, 2), "with bias (dB)": fmt_fixed(w, 2), "bias-free (dB)": fmt_fixed(b, 2),
             "bias-free − with bias": fmt_signed(g, 2, " dB")}
            for s, n, w, b, g in zip(res.sigmas, res.psnr["noisy"], res.psnr["with_bias"], res.psnr["bias_free"],
                                     res.gain_db)]
    p = res.params
    text = (
        _numbers(res)
        + f"\n\nTraining images: {', '.join(res.train_images)}. Held-out test images: {', '.join(res.test_images)} "
        f"(centre crops of {p['eval_crop']}×{p['eval_crop']} pixels). {p['steps']} Adam steps of {p['batch_size']} "
        f"patches of {p['patch_size']}×{p['patch_size']}, both networks on the same noisy batches, in "
        f"{fmt_num(res.train_seconds, 3)} s on {p['device']}. PSNR is computed after clipping to [0, 1], as in the "
        "paper's code (Mohan et al., ICLR 2020: DnCNN trained on [0, 10] reaches 22.8 dB at σ = 100 bias-free "
        "vs 10.5 dB with bias)."
    )
    psnr_ids = ("bias_free_generalises", "tie_in_training_range", "bias_free_equivariant")
    out = [Section("Denoising with and without bias, inside and outside the training noise", text,
                   [by_stem[n] for n in ("denoise_psnr", "denoise_examples", "denoise_equivariance") if n in by_stem],
                   rows, claims=[c for c in res.claims if c.id in psnr_ids], anchor="denoise")]
    if res.filters:
        frows = [{"σ": fmt_num(f.sigma), "pixel": f"{lab} ({r}, {c})", "centre weight": fmt_fixed(cw, 3),
                  "row sum Σw": fmt_fixed(rs, 3), "effective width (px)": fmt_fixed(ew, 2),
                  "90 % radius (px)": fmt_fixed(r90, 2)}
                 for f in res.filters
                 for lab, (r, c), cw, rs, ew, r90 in zip(f.labels, f.pixels, f.centre, f.row_sum, f.effective_width,
                                                         f.radius90)]
        out.append(Section("The bias-free network as an adaptive linear filter", _filter_text(res),
                           [by_stem["denoise_jacobian"]] if "denoise_jacobian" in by_stem else [], frows,
                           claims=[c for c in res.claims if c.id not in psnr_ids], anchor="denoise-filter"))
    return out
