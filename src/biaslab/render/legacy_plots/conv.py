"""Conv feature maps with and without bias, their activity versus bias, and one output explained."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..figures import new_figure, save_figure

if TYPE_CHECKING:
    from ...feature_maps import ConvResult

__all__ = ["plot_feature_maps", "plot_activity", "plot_explain"]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "kernel"


def _show_image(ax, image: np.ndarray, **kwargs) -> None:
    """(C, H, W) in [0, 1] as grey or RGB; ``kwargs`` go to ``imshow``."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1, **kwargs)
    else:
        ax.imshow(np.clip(np.moveaxis(image, 0, -1), 0, 1), **kwargs)


def _show_grid(ax, values: np.ndarray, cmap: str, title: str) -> None:
    """A small matrix as coloured cells (symmetric colour scale), numbers written in up to 7×7."""
    lim = float(np.abs(values).max()) or 1.0
    ax.imshow(values, cmap=cmap, vmin=-lim, vmax=lim)
    if max(values.shape) <= 7:
        size = 9 if max(values.shape) <= 3 else 7
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=size,
                    color="white" if abs(v) > 0.6 * lim else "black")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _show_zoom(ax, image: np.ndarray, corner: tuple[int, int], span: tuple[int, int]) -> None:
    """The neighbourhood of a receptive field (red box), in image coordinates."""
    from matplotlib.patches import Rectangle

    _, h, w = image.shape
    lo, hi = [], []
    for c, s, n in zip(corner, span, (h, w)):
        half = max(4 * s, 12)
        centre = min(max(c + s // 2, 0), n - 1)
        lo.append(max(0, centre - half))
        hi.append(min(n, centre + half + 1))
    extent = (lo[1] - 0.5, hi[1] - 0.5, hi[0] - 0.5, lo[0] - 0.5)
    _show_image(ax, image[:, lo[0]:hi[0], lo[1]:hi[1]], extent=extent)
    ax.add_patch(Rectangle((corner[1] - 0.5, corner[0] - 0.5), span[1], span[0], fill=False, edgecolor="red", lw=2))
    margin = 0.7  # show the part of the box that hangs over the zero padding, if any
    ax.set_xlim(min(extent[0], corner[1] - margin), max(extent[1], corner[1] + span[1] - 1 + margin))
    ax.set_ylim(max(extent[2], corner[0] + span[0] - 1 + margin), min(extent[3], corner[0] - margin))
    ax.set_title(f"where: input rows {lo[0]}–{hi[0] - 1}, cols {lo[1]}–{hi[1] - 1}", fontsize=10)


def _bias_label(b: float) -> str:
    return f"b = {b:g}" + ("  (no bias)" if b == 0 else "")


def plot_feature_maps(res: "ConvResult", index: int, out_dir: Path, fmt: str = "png") -> Path:
    """One kernel: input and kernel, then per bias Σ + b and activation(Σ + b) on shared colour scales."""
    m = res.maps[index]
    nb = len(res.biases)
    fig, axes = new_figure(2, nb + 1, figsize=(3.1 * (nb + 1) + 0.8, 6.6), layout="constrained", squeeze=False)
    _show_image(axes[0][0], res.image)
    axes[0][0].set_title(f"input: {res.source}", fontsize=10)
    channels = m.kernel.shape[0]
    _show_grid(axes[1][0], m.kernel.sum(0), "PuOr_r",
               f"kernel {m.name}" + (f"\n(sum over {channels} channels)" if channels > 1 else ""))
    pre = [m.pre_activation(b) for b in res.biases]
    out = [m.output(b, res.activation) for b in res.biases]
    lim = max(float(np.quantile(np.abs(p), 0.995)) for p in pre) or 1.0  # the same scale for every bias
    lo = min(float(o.min()) for o in out)
    hi = max(float(np.quantile(o, 0.995)) for o in out)
    hi = hi if hi > lo else lo + 1.0
    for col, (b, p, o) in enumerate(zip(res.biases, pre, out), start=1):
        top = axes[0][col].imshow(p, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[0][col].set_title(f"Σ(input * kernel) + b,  {_bias_label(b)}", fontsize=10)
        bottom = axes[1][col].imshow(o, cmap="magma", vmin=lo, vmax=hi)
        active = 100 * float(np.mean(m.total > -b))
        axes[1][col].set_title(f"{res.activation}(Σ + b): {active:.1f}% active\nmean {o.mean():#.3g}", fontsize=10)
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(top, ax=list(axes[0][1:]), shrink=0.85, label="pre-activation (red > 0)")
    fig.colorbar(bottom, ax=list(axes[1][1:]), shrink=0.85, label="activation")
    fig.suptitle(f"Kernel {m.name}: the bias shifts every pre-activation by b, so the unit fires where "
                 f"Σ(input * kernel) > −b  (same colour scale across biases)")
    return save_figure(fig, out_dir, f"conv_maps_{index + 1}_{_slug(m.name)}", fmt)


def plot_activity(res: "ConvResult", out_dir: Path, fmt: str = "png") -> Path:
    """Fraction of active units and mean activation versus bias, one curve per kernel."""
    sweep = res.sweep()
    fig, (fax, mean_ax) = new_figure(1, 2, figsize=(11.5, 4.4), layout="constrained")
    for m, color in zip(res.maps, _colors(len(res.maps))):
        curve = sweep["kernels"][m.name]
        fax.plot(sweep["bias"], 100 * curve["fraction_active"], color=color, lw=2, label=m.name)
        mean_ax.plot(sweep["bias"], curve["mean_activation"], color=color, lw=2, label=m.name)
        stats = [m.stats(b, res.activation) for b in res.biases]
        fax.plot(res.biases, [100 * s["fraction_active"] for s in stats], "o", color=color, ms=6)
        mean_ax.plot(res.biases, [s["mean_activation"] for s in stats], "o", color=color, ms=6)
    for ax in (fax, mean_ax):
        ax.axvline(0, color="grey", lw=1, ls=":")
        ax.set_xlabel("bias b")
        ax.grid(alpha=0.3)
    fax.set_ylabel("% of units active (Σ(input * kernel) > −b)")
    fax.set_ylim(-2, 102)
    mean_ax.set_ylabel(f"mean of {res.activation}(Σ + b)")
    fax.set_title("Fraction active: the bias is the firing threshold")
    mean_ax.set_title("Mean activation")
    fax.legend(title="kernel", fontsize=9)
    fig.suptitle(f"{res.source}: dots are the biases shown in the feature-map figures; dotted line b = 0 (no bias)")
    return save_figure(fig, out_dir, "conv_activity", fmt)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_explain(res: "ConvResult", out_dir: Path, fmt: str = "png") -> Path:
    """One output value per kernel: where, patch · kernel · product, then Σ, + b and the activation."""
    d = res.explain_dict()
    row, col = d["position"]
    n = len(res.maps)
    fig, axes = new_figure(n, 5, figsize=(16, 2.9 * n + 0.6), layout="constrained", squeeze=False,
                           gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.6]})
    for axrow, m, per_bias, k in zip(axes, res.maps, res.explanations, d["kernels"]):
        e = per_bias[0]
        _show_zoom(axrow[0], res.image, e.corner, e.span)
        axrow[0].set_xticks([])
        axrow[0].set_yticks([])
        axrow[0].set_ylabel(m.name, fontsize=11)
        axrow = axrow[1:]
        channels = e.patch.shape[0]
        note = f" (Σ over {channels} ch.)" if channels > 1 else ""
        patch = e.patch.sum(0) if channels > 1 else e.patch[0]
        axrow[0].imshow(patch, cmap="gray", vmin=0, vmax=channels)
        if max(patch.shape) <= 7:
            for (r, c), v in np.ndenumerate(patch):
                axrow[0].text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=9,
                              color="black" if v > 0.5 * channels else "white")
        axrow[0].set_title(f"input patch{note}", fontsize=10)
        axrow[0].set_xticks([])
        axrow[0].set_yticks([])
        _show_grid(axrow[1], e.kernel.sum(0), "PuOr_r", f"× kernel {m.name}{note}")
        _show_grid(axrow[2], e.product.sum(0), "RdBu_r", "= input * kernel")
        lines = [f"Σ(input * kernel) = {k['sum']:.4g}", ""]
        for b in k["biases"]:
            lines.append(f"b = {b['bias']:+g}:  Σ + b = {b['pre_activation']:.4g}  →  "
                         f"{res.activation} = {b['output']:.4g}")
        axrow[3].text(0.02, 0.5, "\n".join(lines), va="center", ha="left", fontsize=10.5, family="monospace",
                      transform=axrow[3].transAxes)
        axrow[3].axis("off")
    fig.suptitle(f"How output ({row}, {col}) is made: {res.activation}(Σ(input * kernel) + bias)")
    return save_figure(fig, out_dir, "conv_explain", fmt)
