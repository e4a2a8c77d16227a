"""Regression: the original comparison plot, the residuals, and the claims they rest on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..infra.numfmt import fmt_num
from ..results.regression import RegressionResult
from .figures import COLORS, new_figure, save_figure
from .report import Section

__all__ = ["summary", "figures", "sections"]

_LABELS = {"without_bias": "Without Bias", "with_bias": "With Bias"}


def _numbers(res: RegressionResult) -> str:
    w0, w1 = res.without_bias, res.with_bias
    text = (f"Without bias the fit is forced through the origin: MSE {fmt_num(w0.mse)}. "
            f"With bias: MSE {fmt_num(w1.mse)}, fitted intercept {fmt_num(w1.intercept)}.")
    if res.n_test:
        text += (f" Held out ({res.n_test} points): MSE {fmt_num(w0.test_mse)} without bias, "
                 f"{fmt_num(w1.test_mse)} with bias.")
    return text


def summary(res: RegressionResult) -> str:
    return " ".join([_numbers(res), *(c.text for c in res.claims)])


def plot_regression(res: RegressionResult, out_dir: Path, fmt: str = "png") -> Path:
    """Left: the original "Linear Regression Comparison"; right: residuals of both fits and their trends."""
    fig, (ax, rax) = new_figure(1, 2, figsize=(12.8, 4.8), layout="constrained")
    p0, p1 = res.predictions["without_bias"], res.predictions["with_bias"]
    lab0 = f"Without Bias (MSE: {res.without_bias.mse:.2f})"
    lab1 = f"With Bias (MSE: {res.with_bias.mse:.2f})"
    if res.X.shape[1] == 1:
        x = res.X[:, 0]
        order = np.argsort(x)
        ax.scatter(x, res.y[:, 0], color=COLORS["data"], label="Data Points")
        ax.plot(x[order], p0[order, 0], color=COLORS["without_bias"], label=lab0)
        ax.plot(x[order], p1[order, 0], color=COLORS["with_bias"], label=lab1)
        if res.X_test is not None:
            ax.scatter(res.X_test[:, 0], res.y_test[:, 0], facecolors="none",
                       edgecolors=COLORS["data"], label="Held-out Points")
        ax.set_xlabel("Input" if res.features == ["x"] else f"Input ({res.features[0]})")
        ax.set_ylabel("Output")
    else:
        lo, hi = float(res.y.min()), float(res.y.max())
        ax.scatter(res.y[:, 0], p0[:, 0], s=12, color=COLORS["without_bias"], label=lab0)
        ax.scatter(res.y[:, 0], p1[:, 0], s=12, color=COLORS["with_bias"], label=lab1)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="perfect fit")
        ax.set_xlabel("Output (true)")
        ax.set_ylabel("Output (predicted)")
    ax.set_title("Linear Regression Comparison")
    ax.legend()

    rax.axhline(0, color="grey", lw=1)
    one = res.X.shape[1] == 1
    for name, pred in (("without_bias", p0), ("with_bias", p1)):
        axis = res.X[:, 0] if one else pred[:, 0]
        trend = res.residual_trends[name]
        rax.scatter(axis, (res.y - pred)[:, 0], s=14, color=COLORS[name],
                    label=f"{_LABELS[name]} (trend r = {trend.r:.2f})")
        xs = np.array([axis.min(), axis.max()])
        rax.plot(xs, trend.intercept + trend.slope * xs, color=COLORS[name], ls="--", lw=1.5)
    rax.set_title("Residuals (data − fit); dashed: trend")
    rax.set_xlabel(ax.get_xlabel() if one else "Fitted value (each fit's own)")
    rax.set_ylabel("Residual")
    rax.legend()
    return save_figure(fig, out_dir, "regression", fmt)


def figures(res: RegressionResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    return [plot_regression(res, out_dir, fmt)]


def sections(res: RegressionResult, figs: list[Path]) -> list[Section]:
    rows = []
    for name in ("without_bias", "with_bias"):
        f = getattr(res, name)
        row = {"fit": _LABELS[name].lower(), "MSE": f.mse, "intercept": f.intercept, "R²": f.r2}
        if res.n_test:
            row.update({"test MSE": f.test_mse, "test R²": f.test_r2})
        row["residual trend r"] = round(res.residual_trends[name].r, 3) + 0.0  # 7e-16 is 0 here
        rows.append(row)
    return [Section("Linear regression with and without bias", _numbers(res), figs, rows,
                    claims=list(res.claims), anchor="regression")]
