"""The bias as a threshold: activation curves over x, and active regions on a 2-D input plane."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..figures import new_figure, save_figure

if TYPE_CHECKING:
    from ...activations import ThresholdResult

__all__ = ["plot_thresholds", "plot_plane"]


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]


def plot_thresholds(res: "ThresholdResult", out_dir: Path, fmt: str = "png") -> Path:
    """``φ(w·x + b)`` over x for each bias, each threshold ``x = −b/w`` marked."""
    from ...activations import activate, threshold

    fig, ax = new_figure(figsize=(7.5, 4.8), layout="constrained")
    x = np.linspace(*res.x_range, 801)
    for b, color in zip(res.biases, _colors(len(res.biases))):
        ax.plot(x, activate(res.w * x + b, res.activation), color=color, lw=2, label=f"b = {b:g}")
        t = threshold(res.w, b)
        if t is not None and res.x_range[0] <= t <= res.x_range[1]:
            ax.axvline(t, color=color, ls=":", lw=1.2)
            ax.plot([t], [float(activate(np.array([0.0]), res.activation)[0])], "o", color=color)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("input x")
    ax.set_ylabel(f"{res.activation}(w·x + b)")
    ax.set_title(f"Bias moves the threshold: {res.activation}({res.w:g}·x + b), dotted at x = −b/w")
    ax.legend(title="bias")
    return save_figure(fig, out_dir, "relu_threshold", fmt)


def plot_plane(res: "ThresholdResult", out_dir: Path, fmt: str = "png") -> Path:
    """Where ``φ(w1·x1 + w2·x2 + b)`` is active, one panel per bias; the origin is marked."""
    w1, w2 = res.plane_w
    n = len(res.biases)
    fig, axes = new_figure(1, n, figsize=(2.9 * n, 3.7), layout="constrained", squeeze=False)
    half = max(abs(res.x_range[0]), abs(res.x_range[1]))
    g = np.linspace(-half, half, 241)
    x1, x2 = np.meshgrid(g, g)
    for ax, b in zip(axes[0], res.biases):
        z = w1 * x1 + w2 * x2 + b
        ax.contourf(x1, x2, z > 0, levels=[-0.5, 0.5, 1.5], colors=["#f2f2f2", "#9ecae1"])
        ax.contour(x1, x2, z, levels=[0.0], colors="tab:red", linewidths=2)
        ax.plot([0], [0], "k+", ms=12, mew=2)
        ax.set_title(f"b = {b:g}" + ("  (through origin)" if b == 0 else ""), fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlabel("x1")
    axes[0][0].set_ylabel("x2")
    fig.suptitle(
        f"Active region (blue) of {res.activation}({w1:g}·x1 + {w2:g}·x2 + b)\n"
        "red: boundary w·x = −b;  +: origin — without bias the boundary must pass through it"
    )
    return save_figure(fig, out_dir, "relu_plane", fmt)
