"""Ablation figures: per-seed accuracies, learning curves with bands, accuracy under shift."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..figures import COLORS, new_figure, save_figure

if TYPE_CHECKING:
    from ...ablate import AblateResult, ConfigResult

__all__ = ["VARIANT_COLORS", "VARIANT_STYLES", "plot_accuracies", "plot_curves", "plot_shift"]

VARIANT_COLORS = {
    "with-bias": COLORS["with_bias"],
    "no-bias": COLORS["without_bias"],
    "conv-no-bias": "tab:purple",
    "head-no-bias": "tab:blue",
}
#: Line styles keep identical curves (e.g. a variant that equals with-bias) distinguishable.
VARIANT_STYLES = {"with-bias": "-", "no-bias": "--", "conv-no-bias": "-.", "head-no-bias": ":"}
_SHIFT_LABELS = {
    "brightness": ("brightness offset added (std units)", False),
    "contrast": ("contrast scale (1 = unchanged)", True),
    "noise": ("Gaussian noise std (std units)", False),
}


def _title(c: "ConfigResult") -> str:
    return f"{c.model} on {c.dataset}"


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return (n + cols - 1) // cols, cols


def plot_accuracies(res: "AblateResult", out_dir: Path, fmt: str = "png") -> Path:
    """Test accuracy of every seed by variant; grey lines join runs of the same seed."""
    rows, cols = _grid(len(res.configs))
    fig, axes = new_figure(rows, cols, figsize=(4.4 * cols + 0.6, 4.1 * rows), layout="constrained",
                           squeeze=False)
    for ax in axes.flat[len(res.configs):]:
        ax.set_visible(False)
    for ax, c in zip(axes.flat, res.configs):
        x = np.arange(len(c.variants))
        accs = np.array([c.test_acc(v) for v in c.variants])  # (variants, seeds)
        for s in range(accs.shape[1]):
            ax.plot(x, accs[:, s], color="grey", lw=0.8, alpha=0.6, zorder=1)
        for i, v in enumerate(c.variants):
            color = VARIANT_COLORS[v]
            ax.scatter(np.full(accs.shape[1], i), accs[i], color=color, s=28, zorder=2, alpha=0.85)
            d = c.variant_dict(v)
            lo, hi = d["ci95"]
            ax.errorbar(i + 0.18, d["mean"], yerr=[[d["mean"] - lo], [hi - d["mean"]]], fmt="D",
                        color=color, mec="black", ms=7, capsize=5, lw=2, zorder=3)
        ax.set_xticks(x, [f"{v}\n({c.runs[v][0]['params']} params)" for v in c.variants], fontsize=9)
        ax.set_xlim(-0.5, len(c.variants) - 0.3)
        lo, hi = ax.get_ylim()
        if hi > 1.0:  # a t interval can pass 1; accuracy cannot
            ax.set_ylim(lo, 1.0 + 0.03 * (1.0 - lo))
        ax.set_ylabel("test accuracy")
        comp = c.comparisons[0]
        diff = round(comp.diff_mean, 6) + 0.0  # no "-0.0000" for a difference that is rounding noise
        ax.set_title(f"{_title(c)}: {comp.verdict}\n{comp.a} − {comp.b} = {diff:+.4f}, "
                     f"p = {comp.p_value:.2g}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Test accuracy of each seed (dots; grey lines join a seed's runs)\n"
                 f"and the mean with its 95% CI (diamonds), {len(res.configs[0].seeds)} seeds", fontsize=11)
    return save_figure(fig, out_dir, "ablate_accuracy", fmt)


def _band(ax, x: np.ndarray, runs: np.ndarray, variant: str) -> None:
    color = VARIANT_COLORS[variant]
    mean, std = runs.mean(axis=0), runs.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(runs.shape[1])
    ax.plot(x, mean, color=color, ls=VARIANT_STYLES[variant], lw=2, label=variant)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def plot_curves(res: "AblateResult", out_dir: Path, fmt: str = "png") -> Path:
    """Per configuration: test accuracy and training loss per epoch, mean ± std over seeds."""
    n = len(res.configs)
    fig, axes = new_figure(n, 2, figsize=(11, 3.4 * n + 0.4), layout="constrained", squeeze=False)
    for (acc_ax, loss_ax), c in zip(axes, res.configs):
        for v in c.variants:
            d = c.variant_dict(v)
            acc = np.array(d["curves"]["test_acc"])
            loss = np.array(d["curves"]["train_loss"])
            epochs = np.arange(1, acc.shape[1] + 1)
            _band(acc_ax, epochs, acc, v)
            _band(loss_ax, epochs, loss, v)
        acc_ax.set_title(f"{_title(c)}: test accuracy", fontsize=10)
        acc_ax.set_ylabel("test accuracy")
        loss_ax.set_title(f"{_title(c)}: training loss", fontsize=10)
        loss_ax.set_ylabel("cross-entropy (log scale)")
        loss_ax.set_yscale("log")
        for ax in (acc_ax, loss_ax):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        acc_ax.legend(fontsize=9, loc="lower right")
    fig.suptitle("Learning curves: mean over seeds, band = ± 1 std", fontsize=11)
    return save_figure(fig, out_dir, "ablate_curves", fmt)


def plot_shift(res: "AblateResult", out_dir: Path, fmt: str = "png") -> Path:
    """Per configuration: test accuracy under brightness, contrast and noise shifts (mean ± std)."""
    n = len(res.configs)
    kinds = list(_SHIFT_LABELS)
    fig, axes = new_figure(n, len(kinds), figsize=(13, 3.4 * n + 0.5), layout="constrained",
                           squeeze=False, sharey="row")
    for row, c in zip(axes, res.configs):
        for ax, kind in zip(row, kinds):
            label, invert = _SHIFT_LABELS[kind]
            for v in c.variants:
                sh = c.variant_dict(v)["shift"][kind]
                _band(ax, np.array(sh["strengths"]), np.array(sh["test_acc"]), v)
            if invert:
                ax.invert_xaxis()
            ax.set_xlabel(label)
            ax.set_title(f"{_title(c)}: {kind}", fontsize=10)
            ax.grid(alpha=0.3)
        row[0].set_ylabel("test accuracy")
        row[0].legend(fontsize=9, loc="lower left")
    fig.suptitle("Accuracy under distribution shift of the test inputs (no retraining); "
                 "shift grows to the right", fontsize=11)
    return save_figure(fig, out_dir, "ablate_shift", fmt)
