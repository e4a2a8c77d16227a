"""relu: the activation curves with their thresholds, the active regions of a 2-D unit, the claims."""

from __future__ import annotations

from pathlib import Path

from ..infra.numfmt import fmt_num, fmt_pct
from ..results.relu import ReluResult
from .figures import new_figure, save_figure
from .report import Section

__all__ = ["summary", "figures", "sections"]


def _thresholds(res: ReluResult) -> str:
    cells = [f"b = {fmt_num(t.b)} → " + (f"x = {fmt_num(t.x)}" if t.x is not None else f"{t.active_when} active")
             for t in res.thresholds]
    return f"Thresholds x = −b/w of {res.activation}({fmt_num(res.w)}·x + b): " + "; ".join(cells) + "."


def summary(res: ReluResult) -> str:
    return "\n\n".join([_thresholds(res), *(c.text for c in res.claims)])


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]


def plot_thresholds(res: ReluResult, out_dir: Path, fmt: str = "png") -> Path:
    """``activation(w·x + b)`` over x for each bias, each threshold ``x = −b/w`` marked."""
    fig, ax = new_figure(figsize=(7.5, 4.8), layout="constrained")
    lo, hi = res.x_range
    for t, curve, color in zip(res.thresholds, res.curves, _colors(len(res.biases))):
        ax.plot(res.curve_x, curve, color=color, lw=2, label=f"b = {fmt_num(t.b)}")
        if t.x is not None and lo <= t.x <= hi:
            ax.axvline(t.x, color=color, ls=":", lw=1.2)
            ax.plot([t.x], [res.value_at_threshold], "o", color=color)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("input x")
    ax.set_ylabel(f"{res.activation}(w·x + b)")
    ax.set_title(f"{res.activation}({fmt_num(res.w)}·x + b); dotted: the threshold x = −b/w")
    ax.legend(title="bias", fontsize=9)
    return save_figure(fig, out_dir, "relu_threshold", fmt)


def plot_plane(res: ReluResult, out_dir: Path, fmt: str = "png") -> Path:
    """Where ``w1·x1 + w2·x2 + b > 0``, one panel per bias; the boundary and the origin marked."""
    from matplotlib.patches import Polygon

    w1, w2 = res.plane_w
    h = res.plane_half
    n = len(res.plane)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = new_figure(rows, cols, figsize=(2.9 * cols, 3.1 * rows + 0.9), layout="constrained", squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, region in zip(axes.ravel(), res.plane):
        ax.add_patch(Polygon([[-h, -h], [h, -h], [h, h], [-h, h]], closed=True, facecolor="#f2f2f2", lw=0))
        if len(region.active_polygon) >= 3:
            ax.add_patch(Polygon(region.active_polygon, closed=True, facecolor="#9ecae1", lw=0))
        if len(region.boundary) == 2:
            ax.plot(region.boundary[:, 0], region.boundary[:, 1], color="tab:red", lw=2)
        ax.plot([0], [0], "k+", ms=12, mew=2)
        ax.set_xlim(-h, h)
        ax.set_ylim(-h, h)
        ax.set_aspect("equal")
        ax.set_title(f"b = {fmt_num(region.b)}: {fmt_pct(region.active_share)} active", fontsize=10)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    line = f"{fmt_num(w1)}·x1 {'−' if w2 < 0 else '+'} {fmt_num(abs(w2))}·x2"
    fig.suptitle(f"Active region (blue) of {res.activation}({line} + b) on "
                 f"[−{fmt_num(h)}, {fmt_num(h)}]²\nred: the boundary w·x = −b;  +: the origin")
    return save_figure(fig, out_dir, "relu_plane", fmt)


def figures(res: ReluResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    return [plot_thresholds(res, out_dir, fmt), plot_plane(res, out_dir, fmt)]


def sections(res: ReluResult, figs: list[Path]) -> list[Section]:
    rows = [
        {"b": t.b, "threshold x = −b/w": t.x, "active when": t.active_when,
         "2-D: boundary distance from origin": r.distance_from_origin, "2-D: share of the square active":
             fmt_pct(r.active_share)}
        for t, r in zip(res.thresholds, res.plane)
    ]
    return [Section(f"Bias as the {res.activation} threshold", _thresholds(res), figs, rows,
                    claims=list(res.claims), anchor="relu")]
