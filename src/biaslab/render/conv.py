"""conv: feature maps with and without bias, the active share versus bias, one output explained."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..infra.numfmt import fmt_num, fmt_pct
from ..results.conv import ConvResult, KernelExplanation, KernelMap
from .figures import new_figure, save_figure
from .report import Section

__all__ = ["summary", "figures", "sections"]

#: Colour scales of the maps end at this quantile of the values shown; values beyond get an arrow.
SCALE_QUANTILE = 0.995
EXPLAIN_FIGURE = "conv_explain"
EXPLAIN_CLAIM = "explain_matches_feature_map"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "kernel"


def _describe(res: ConvResult) -> str:
    im = res.image
    shrunk = ("" if (im.height, im.width) == (im.original_height, im.original_width)
              else f", block-averaged from {im.original_height}×{im.original_width}")
    lines = [f"Feature maps {res.activation}(Σ(input * kernel) + b) of {im.source} ({im.height}×{im.width}{shrunk}, "
             f"{'colour' if im.channels == 3 else 'grey'}, values in [0, 1]); maps {res.output_shape[0]}×"
             f"{res.output_shape[1]}, padding {res.params.get('padding')!s}, stride {res.params.get('stride')}."]
    for m in res.kernels:
        cells = [f"b = {fmt_num(s.bias)}: {fmt_pct(s.fraction_active)} active, mean {fmt_num(s.mean_activation)}"
                 for s in m.biases]
        lines.append(f"{m.name}: " + "; ".join(cells) + ".")
    return "\n\n".join(lines)


def _explain_text(res: ConvResult) -> str:
    """The --explain breakdown as plain-text tables (3×3 grids side by side, larger ones stacked)."""
    e = res.explain
    if e is None:
        return ""
    lines = [f"Output ({e.position[0]}, {e.position[1]}) = {res.activation}(Σ(input * kernel) + b):"]
    for k in e.kernels:
        channels = k.patch.shape[0]
        grids = [("input patch", k.patch.sum(0)), ("kernel", k.weights.sum(0)), ("input * kernel", k.product.sum(0))]
        summed = f" (each grid summed over the {channels} channels)" if channels > 1 else ""
        lines.append(f"  {k.kernel}{summed}:")
        width = 7 * k.weights.shape[2]
        rows = [["".join(f"{v:7.3f}" for v in g[r]) for r in range(g.shape[0])] for _, g in grids]
        if k.weights.shape[2] <= 3:
            lines.append("    " + "  ".join(f"{name:<{width}s}" for name, _ in grids))
            lines += ["    " + "  ".join(cells) for cells in zip(*rows)]
        else:
            for (name, _), block in zip(grids, rows):
                lines += [f"    {name}:", *(f"    {cells}" for cells in block)]
        if k.in_padding.any():
            lines.append(f"    ({int(k.in_padding.sum())} of the {k.in_padding.size} taps read the zero padding)")
        lines.append(f"    Σ(input * kernel) = {fmt_num(k.sum, 6)}")
        lines += [f"    b = {fmt_num(b.bias)}: Σ + b = {fmt_num(b.pre_activation)} → {res.activation} = "
                  f"{fmt_num(b.output)} (feature map: {fmt_num(b.feature_map)})" for b in k.biases]
    return "\n".join(lines)


def summary(res: ConvResult) -> str:
    parts = [_describe(res), *(c.text for c in res.claims)]
    explain = _explain_text(res)
    return "\n\n".join(parts + ([explain] if explain else []))


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _show_image(ax, image: np.ndarray, **kwargs) -> None:
    """(C, H, W) in [0, 1] as grey or RGB; ``kwargs`` go to ``imshow``."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1, **kwargs)
    else:
        ax.imshow(np.clip(np.moveaxis(image, 0, -1), 0, 1), **kwargs)


def _show_grid(ax, values: np.ndarray, cmap: str, title: str, padding: np.ndarray | None = None,
               vmin: float | None = None, vmax: float | None = None) -> None:
    """A small matrix as coloured cells, numbers written up to 7×7; ``padding`` cells hatched."""
    from matplotlib.patches import Rectangle

    lim = float(np.abs(values).max()) or 1.0
    lo, hi = (-lim, lim) if vmin is None else (vmin, vmax)
    ax.imshow(values, cmap=cmap, vmin=lo, vmax=hi)
    if max(values.shape) <= 7:
        size = 11 if max(values.shape) <= 3 else 8
        for (r, c), v in np.ndenumerate(values):
            dark = (v - lo) / (hi - lo) if vmin is not None else abs(v) / lim
            ax.text(c, r, fmt_num(float(v), 3), ha="center", va="center", fontsize=size,
                    color="white" if (dark < 0.4 if vmin is not None else dark > 0.6) else "black")
    if padding is not None:
        for (r, c), pad in np.ndenumerate(padding):
            if pad:
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="///", edgecolor="tab:orange",
                                       lw=0))
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def _extend(low: bool, high: bool) -> str:
    return {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[(low, high)]


def _draw_border(ax, m: KernelMap) -> None:
    """Dashed line around the units whose kernel window lies inside the image (outside it: zero padding)."""
    from matplotlib.patches import Rectangle

    top, bottom, left, right = m.border
    h, w = m.output_shape
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), w - left - right, h - top - bottom, fill=False,
                           edgecolor="lime", lw=1.3, ls="--"))


def plot_feature_maps(res: ConvResult, index: int, out_dir: Path, fmt: str = "png") -> Path:
    """One kernel: input and kernel, then per bias Σ + b and activation(Σ + b), each row on one colour scale."""
    m = res.kernels[index]
    nb = len(res.biases)
    f = res.preview_factor
    fig, axes = new_figure(2, nb + 1, figsize=(3.1 * (nb + 1) + 1.2, 7.2), layout="constrained", squeeze=False)
    _show_image(axes[0][0], res.image_preview)
    axes[0][0].set_title(f"input: {res.image.source}", fontsize=10)
    channels = m.weights.shape[0]
    _show_grid(axes[1][0], m.weights.sum(0), "PuOr_r",
               f"kernel {m.name}" + (f"\n(sum over {channels} channels)" if channels > 1 else ""))
    pre = [m.preview_sum + b for b in res.biases]  # Σ + b: the bias shifts every value alike
    out = m.preview_outputs
    lim = float(np.quantile(np.abs(np.stack(pre)), SCALE_QUANTILE)) or 1.0
    pre_low = min(float(p.min()) for p in pre) < -lim
    pre_high = max(float(p.max()) for p in pre) > lim
    lo = float(out.min())
    hi = float(np.quantile(out, SCALE_QUANTILE))
    hi = hi if hi > lo else lo + 1.0
    out_high = float(out.max()) > hi
    ph, pw = m.preview_sum.shape
    extent = (-0.5, pw * f - 0.5, ph * f - 0.5, -0.5)  # output pixel coordinates
    padded = any(m.border)
    for col, (stats, p, o) in enumerate(zip(m.biases, pre, out), start=1):
        top = axes[0][col].imshow(p, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
        no_bias = "  (no bias)" if stats.bias == 0 else ""
        axes[0][col].set_title(f"Σ(input * kernel) + b,  b = {fmt_num(stats.bias)}{no_bias}", fontsize=10)
        bottom = axes[1][col].imshow(o, cmap="magma", vmin=lo, vmax=hi, extent=extent)
        axes[1][col].set_title(f"{res.activation}(Σ + b): {fmt_pct(stats.fraction_active)} active\n"
                               f"mean {fmt_num(stats.mean_activation)}", fontsize=10)
        if padded:
            _draw_border(axes[0][col], m)
            _draw_border(axes[1][col], m)
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(top, ax=list(axes[0][1:]), shrink=0.85, extend=_extend(pre_low, pre_high),
                 label="Σ(input * kernel) + b (red > 0)")
    fig.colorbar(bottom, ax=list(axes[1][1:]), shrink=0.85, extend=_extend(False, out_high),
                 label=f"{res.activation}(Σ + b)")
    notes = []
    if pre_low or pre_high or out_high:
        notes.append(f"A colour bar with an arrow is clipped at the {100 * SCALE_QUANTILE:g}th percentile of the "
                     "values shown: values beyond it take the end colour.")
    if padded:
        t, b, left, right = m.border
        notes.append(f"Dashed green line: outside it (top {t}, bottom {b}, left {left}, right {right} px) the "
                     "kernel window reads the zero padding, not the image.")
    if f > 1:
        notes.append(f"Maps shown as means of {f}×{f} blocks of the {m.output_shape[0]}×{m.output_shape[1]} maps; "
                     "the percentages are of the full maps.")
    if notes:
        fig.text(0.5, -0.01, "\n".join(notes), ha="center", va="top", fontsize=10)
    fig.suptitle(f"Kernel {m.name}: Σ(input * kernel) + b (top) and {res.activation}(Σ + b) (bottom) for each "
                 "bias; one colour scale per row")
    return save_figure(fig, out_dir, f"conv_maps_{index + 1}_{_slug(m.name)}", fmt)


def plot_activity(res: ConvResult, out_dir: Path, fmt: str = "png") -> Path:
    """Share of active units and mean activation versus bias, one curve per kernel."""
    fig, (fax, mean_ax) = new_figure(1, 2, figsize=(11.5, 4.4), layout="constrained")
    for m, color in zip(res.kernels, _colors(len(res.kernels))):
        curve = res.sweep.kernels[m.name]
        fax.plot(res.sweep.bias, 100 * curve.fraction_active, color=color, lw=2, label=m.name)
        mean_ax.plot(res.sweep.bias, curve.mean_activation, color=color, lw=2, label=m.name)
        fax.plot([s.bias for s in m.biases], [100 * s.fraction_active for s in m.biases], "o", color=color, ms=6)
        mean_ax.plot([s.bias for s in m.biases], [s.mean_activation for s in m.biases], "o", color=color, ms=6)
    for ax in (fax, mean_ax):
        ax.axvline(0, color="grey", lw=1, ls=":")
        ax.set_xlabel("bias b")
        ax.grid(alpha=0.3)
    fax.set_ylabel("% of units active (Σ(input * kernel) > −b)")
    fax.set_ylim(-2, 102)
    mean_ax.set_ylabel(f"mean of {res.activation}(Σ + b)")
    fax.set_title("Share of active units")
    mean_ax.set_title("Mean activation")
    fax.legend(title="kernel", fontsize=9)
    fig.suptitle(f"{res.image.source}: dots are the biases of the feature-map figures; dotted line b = 0 (no bias)")
    return save_figure(fig, out_dir, "conv_activity", fmt)


def _show_where(ax, res: ConvResult, k: KernelExplanation) -> None:
    """The input around the receptive field (red box); the zero padding hatched and labelled."""
    from matplotlib.patches import Rectangle

    (r0, c0), (_, nh, nw) = k.neighbourhood_origin, k.neighbourhood.shape
    h, w = res.image.height, res.image.width
    margin = 0.7
    xlim = (min(c0 - 0.5, k.corner[1] - margin), max(c0 + nw - 0.5, k.corner[1] + k.span[1] - 1 + margin))
    ylim = (max(r0 + nh - 0.5, k.corner[0] + k.span[0] - 1 + margin), min(r0 - 0.5, k.corner[0] - margin))
    ax.add_patch(Rectangle((xlim[0], ylim[1]), xlim[1] - xlim[0], ylim[0] - ylim[1], facecolor="#fff3e0",
                           hatch="///", edgecolor="tab:orange", lw=0, zorder=0))
    _show_image(ax, k.neighbourhood, extent=(c0 - 0.5, c0 + nw - 0.5, r0 + nh - 0.5, r0 - 0.5), zorder=1)
    ax.add_patch(Rectangle((k.corner[1] - 0.5, k.corner[0] - 0.5), k.span[1], k.span[0], fill=False,
                           edgecolor="red", lw=2, zorder=2))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    outside = xlim[0] < -0.5 or ylim[1] < -0.5 or xlim[1] > w - 0.5 or ylim[0] > h - 0.5
    where = f"input rows {r0}–{r0 + nh - 1}, cols {c0}–{c0 + nw - 1}"
    ax.set_title(where + ("\nhatched: zero padding" if outside else ""), fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_explain(res: ConvResult, out_dir: Path, fmt: str = "png") -> Path:
    """One output value per kernel: where, patch · kernel · product, then Σ, + b and the activation."""
    e = res.explain
    n = len(e.kernels)
    fig, axes = new_figure(n, 5, figsize=(13, 3.3 * n + 0.7), layout="constrained", squeeze=False,
                           gridspec_kw={"width_ratios": [1.1, 1, 1, 1, 1.5]})
    for axrow, k in zip(axes, e.kernels):
        _show_where(axrow[0], res, k)
        axrow[0].set_ylabel(k.kernel, fontsize=12)
        channels = k.patch.shape[0]
        note = f" (Σ over {channels} ch.)" if channels > 1 else ""
        pad = k.in_padding if k.in_padding.any() else None
        pad_note = "\nhatched: zero padding" if pad is not None else ""
        _show_grid(axrow[1], k.patch.sum(0), "gray", f"input patch{note}{pad_note}", pad, vmin=0, vmax=channels)
        _show_grid(axrow[2], k.weights.sum(0), "PuOr_r", f"× kernel {k.kernel}{note}")
        _show_grid(axrow[3], k.product.sum(0), "RdBu_r", "= input * kernel", pad)
        lines = [f"Σ(input * kernel) = {fmt_num(k.sum)}", ""]
        lines += [f"b = {fmt_num(b.bias)}:  Σ + b = {fmt_num(b.pre_activation)}\n   → {res.activation} = "
                  f"{fmt_num(b.output)}" for b in k.biases]
        axrow[4].text(0.02, 0.5, "\n".join(lines), va="center", ha="left", fontsize=12, family="monospace",
                      transform=axrow[4].transAxes)
        axrow[4].axis("off")
    row, col = e.position
    fig.suptitle(f"How output ({row}, {col}) is made: {res.activation}(Σ(input * kernel) + b)", fontsize=14)
    return save_figure(fig, out_dir, EXPLAIN_FIGURE, fmt)


def figures(res: ConvResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    paths = [plot_feature_maps(res, i, out_dir, fmt) for i in range(len(res.kernels))]
    paths.append(plot_activity(res, out_dir, fmt))
    if res.explain is not None:
        paths.append(plot_explain(res, out_dir, fmt))
    return paths


def sections(res: ConvResult, figs: list[Path]) -> list[Section]:
    rows = [
        {"kernel": m.name, "bias": s.bias, "active where Σ >": s.threshold, "% active": fmt_pct(s.fraction_active),
         "mean activation": s.mean_activation, "max activation": s.max_activation}
        for m in res.kernels for s in m.biases
    ]
    explain_figs = [f for f in figs if Path(f).stem == EXPLAIN_FIGURE]
    out = [Section(f"Conv feature maps with and without bias ({res.activation})", _describe(res),
                   [f for f in figs if f not in explain_figs], rows,
                   claims=[c for c in res.claims if c.id != EXPLAIN_CLAIM], anchor="conv")]
    e = res.explain
    if e is not None:
        table = [{"kernel": k.kernel, "Σ(input * kernel)": k.sum, "b": b.bias, "Σ + b": b.pre_activation,
                  f"{res.activation}(Σ + b)": b.output, "feature map there": b.feature_map,
                  "taps in the zero padding": int(k.in_padding.sum())}
                 for k in e.kernels for b in k.biases]
        row, col = e.position
        text = (f"Output ({row}, {col}) of each kernel, broken down: the input patch under the kernel, its product "
                f"with the kernel, their sum Σ(input * kernel), + b, and {res.activation}.")
        claims = [c for c in res.claims if c.id == EXPLAIN_CLAIM]
        out.append(Section(f"Output ({row}, {col}) explained", text, explain_figs, table, claims=claims,
                           anchor="conv-explain"))
    return out
