"""Figures of ``biaslab audit``: where the biases are and what they do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..figures import new_figure, save_figure

if TYPE_CHECKING:
    from ...audit import AuditResult

__all__ = ["STATUS_COLORS", "plot_bias_status", "plot_contributions"]

#: One colour per audit status, in every audit figure.
STATUS_COLORS = {"redundant": "tab:red", "foldable": "tab:orange", "active": "tab:green"}

_MAX_ROWS = 48


def _legend(fig, statuses) -> None:
    """One legend entry per status present, below the plot so it never covers a bar."""
    from matplotlib.patches import Patch

    present = [s for s in STATUS_COLORS if s in set(statuses)]
    fig.legend(handles=[Patch(color=STATUS_COLORS[s], label=s) for s in present], loc="outside lower center",
               ncols=len(present), fontsize=9, title="status")


def _height(n: int) -> float:
    return max(3.0, 0.24 * n + 1.6)


def plot_bias_status(res: "AuditResult", out_dir: Path, fmt: str = "png") -> Path:
    """One bar per bias parameter: how many values it holds, coloured by status."""
    findings = res.findings
    note = ""
    if len(findings) > _MAX_ROWS:  # keep every redundant and active bias, then the largest foldable ones
        order = sorted(range(len(findings)), key=lambda i: (findings[i].status == "foldable", -findings[i].numel))
        keep = set(order[:_MAX_ROWS])
        findings = [f for i, f in enumerate(findings) if i in keep]
        note = f" ({_MAX_ROWS} of {len(res.findings)}: smallest foldable ones left out)"
    fig, ax = new_figure(figsize=(8.5, _height(len(findings))), layout="constrained")
    if not findings:
        ax.text(0.5, 0.5, "this model has no bias parameters", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        y = range(len(findings))
        ax.barh(list(y), [max(f.numel, 1) for f in findings], color=[STATUS_COLORS[f.status] for f in findings])
        ax.set_yticks(list(y), [f.param for f in findings], fontsize=7)
        ax.set_ylim(len(findings) - 0.5, -0.5)
        sizes = [max(f.numel, 1) for f in findings]
        log = max(sizes) / min(sizes) >= 50
        if log:
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("values in the bias" + (" (log scale)" if log else ""))
        _legend(fig, [f.status for f in findings])
    c = res.counts()
    ax.set_title(f"Biases of {res.target}{note}: " + ", ".join(f"{c[s]['biases']} {s}" for s in STATUS_COLORS)
                 + f"\n{res.bias_params:,} of {res.total_params:,} parameters are biases", fontsize=10)
    return save_figure(fig, out_dir, "audit_biases", fmt)


def plot_contributions(res: "AuditResult", out_dir: Path, fmt: str = "png") -> Path:
    """Per bias: ‖b‖/‖W·x‖, the share of ReLU decisions it flips, and the output change without it."""
    contribs = res.contributions or []
    note = ""
    if len(contribs) > _MAX_ROWS:
        keep = set(sorted(range(len(contribs)), key=lambda i: -contribs[i].output_change)[:_MAX_ROWS])
        contribs = [c for i, c in enumerate(contribs) if i in keep]
        note = f" — the {_MAX_ROWS} with the largest output change of {len(res.contributions)}"
    fig, axes = new_figure(1, 3, figsize=(12, _height(len(contribs))), layout="constrained", sharey=True)
    y = list(range(len(contribs)))
    colors = [STATUS_COLORS[c.status] for c in contribs]
    panels = [
        ("‖b‖ / ‖W·x‖ over the data", [c.bias_to_signal for c in contribs], 1.0),
        ("ReLU units whose on/off state the bias flips (%)", [c.relu_flips for c in contribs], 100.0),
        ("output change when this bias is zeroed (%)", [c.output_change for c in contribs], 100.0),
    ]
    for ax, (label, values, scale) in zip(axes, panels):
        ax.set_xlabel(label, fontsize=9)
        if all(v is None for v in values):
            ax.text(0.5, 0.5, "no bias here feeds a ReLU directly", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
            ax.set_xticks([])
            continue
        ax.barh(y, [v * scale if v is not None else 0.0 for v in values], color=colors)
        for yi, v in zip(y, values):
            if v is None:
                ax.text(0, yi, " n/a", va="center", fontsize=6, color="grey")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [c.param for c in contribs], fontsize=7)
    axes[0].set_ylim(len(contribs) - 0.5, -0.5)
    _legend(fig, [c.status for c in contribs])
    acc = f", accuracy {100 * res.baseline_accuracy:.1f}%" if res.baseline_accuracy is not None else ""
    fig.suptitle(f"What each bias of {res.target} contributes on {res.n_samples} {res.data} inputs{acc}{note}",
                 fontsize=11)
    return save_figure(fig, out_dir, "audit_contributions", fmt)
