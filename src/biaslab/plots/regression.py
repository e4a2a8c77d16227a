"""The regression comparison: the original plot, plus the residuals that expose the no-bias error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import COLORS, new_figure, save_figure

if TYPE_CHECKING:
    from ..regression import RegressionResult

__all__ = ["plot_regression"]


def plot_regression(res: "RegressionResult", out_dir: Path, fmt: str = "png") -> Path:
    """Left: the original "Linear Regression Comparison"; right: residuals of both fits."""
    fig, (ax, rax) = new_figure(1, 2, figsize=(12.8, 4.8), layout="constrained")
    m0, m1 = res.mse("without_bias"), res.mse("with_bias")
    lab0, lab1 = f"Without Bias (MSE: {m0:.2f})", f"With Bias (MSE: {m1:.2f})"
    p0, p1 = res.without_bias.predict(res.X), res.with_bias.predict(res.X)
    one_feature = res.X.shape[1] == 1
    if one_feature:
        x = res.X[:, 0]
        order = np.argsort(x)
        ax.scatter(x, res.y[:, 0], color=COLORS["data"], label="Data Points")
        ax.plot(x[order], p0[order, 0], color=COLORS["without_bias"], label=lab0)
        ax.plot(x[order], p1[order, 0], color=COLORS["with_bias"], label=lab1)
        if res.X_test is not None:
            ax.scatter(res.X_test[:, 0], res.y_test[:, 0], facecolors="none",
                       edgecolors=COLORS["data"], label="Held-out Points")
        ax.set_xlabel("Input" if res.feature_names == ["x"] else f"Input ({res.feature_names[0]})")
        ax.set_ylabel("Output")
        rx, rlabel = x, ax.get_xlabel()
    else:
        lo, hi = float(res.y.min()), float(res.y.max())
        ax.scatter(res.y[:, 0], p0[:, 0], s=12, color=COLORS["without_bias"], label=lab0)
        ax.scatter(res.y[:, 0], p1[:, 0], s=12, color=COLORS["with_bias"], label=lab1)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="perfect fit")
        ax.set_xlabel("Output (true)")
        ax.set_ylabel("Output (predicted)")
        rx, rlabel = res.y[:, 0], "Output (true)"
    ax.set_title("Linear Regression Comparison")
    ax.legend()

    rax.axhline(0, color="grey", lw=1)
    rax.scatter(rx, (res.y - p0)[:, 0], s=14, color=COLORS["without_bias"], label="Without Bias")
    rax.scatter(rx, (res.y - p1)[:, 0], s=14, color=COLORS["with_bias"], label="With Bias")
    for pred, color in ((p0, COLORS["without_bias"]), (p1, COLORS["with_bias"])):
        r = (res.y - pred)[:, 0]
        trend = np.polyfit(rx, r, 1)
        xs = np.array([rx.min(), rx.max()])
        rax.plot(xs, np.polyval(trend, xs), color=color, ls="--", lw=1.5)
    rax.set_title("Residuals (data − fit); dashed: trend")
    rax.set_xlabel(rlabel)
    rax.set_ylabel("Residual")
    rax.legend()
    return save_figure(fig, out_dir, "regression", fmt)
