"""Audit: where the biases are, which a model can do without, what the rest contribute, the checked fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..infra.numfmt import fmt_num, fmt_pct, fmt_signed
from ..results.audit import STATUSES, AuditResult, Check, FixRecord
from .figures import new_figure, save_figure
from .report import Section

__all__ = ["STATUS_COLORS", "summary", "figures", "sections", "console_table"]

#: One colour per audit status, in every audit figure and table.
STATUS_COLORS = {"redundant": "tab:red", "foldable": "tab:orange", "active": "tab:green"}
_RICH_COLORS = {"redundant": "red", "foldable": "yellow", "active": "green"}

#: Most rows a figure shows; the rest are listed in the report's table.
MAX_ROWS = 48

_WHY_LARGE = ("A redundant bias can be large next to W·x: a normalisation after it subtracts the mean it "
              "adds, so its size says nothing about whether the model needs it. Zeroing it (the running "
              "mean corrected, as removal does) leaves the output unchanged.")


def _counts_text(res: AuditResult) -> str:
    c = res.counts()
    share = res.bias_params / res.total_params if res.total_params else 0.0
    statuses = ", ".join(f"{c[s]['biases']} {s} ({c[s]['params']:,} values)" for s in STATUSES)
    how = {"fx": "Statuses come from the torch.fx graph.",
           "recorded": "torch.fx could not trace the model: statuses come from graphs recorded from forward passes "
                       "on several inputs; a bias whose analysis differs between the paths they take through the "
                       "model's control flow is active.",
           "hooks": "The model's graph could not be traced or recorded: statuses come from one hooked forward "
                    "pass, and no bias is called redundant there unless perturbing it leaves the output "
                    "unchanged."}[res.graph]
    unknown = res.not_analysed
    honest = (f" {unknown} of them {'is' if unknown == 1 else 'are'} not analysed: no rule covers an op on "
              f"{'its' if unknown == 1 else 'their'} path, so 'active' there is a cautious default, not a finding."
              if unknown else " Every bias was analysed (none is 'not analysed').")
    return (f"{res.target}: {len(res.biases)} biases hold {res.bias_params:,} of {res.total_params:,} "
            f"parameters ({fmt_pct(share, 2)}): {statuses}.{honest} {how}")


def _zero_text(res: AuditResult) -> str:
    zero = [f.label for f in res.biases if f.zero_now]
    if not zero:
        return ""
    shown = ", ".join(zero[:4]) + (f" and {len(zero) - 4} more" if len(zero) > 4 else "")
    origin = " (the model has its random initial weights, not trained ones)" if res.initial_weights else ""
    return (f"{len(zero)} biases are exactly zero now{origin}: {shown}. Their statuses come from the model's "
            "structure, not from these values.")


def _partial_text(res: AuditResult) -> str:
    partial = [f for f in res.biases if f.status == "active" and f.cancelled_fraction is not None]
    if not partial:
        return ""
    fractions = [f.cancelled_fraction for f in partial]
    return (f"{len(partial)} active biases are partly cancelled: normalisations remove their mean, "
            f"{fmt_pct(min(fractions))} to {fmt_pct(max(fractions))} of ‖b‖² with the current values.")


def _verify_text(res: AuditResult) -> str:
    if not res.verified:
        return ""
    checked = [f for f in res.biases if f.verified is not None]
    confirmed = sum(bool(f.verified) for f in checked)
    return (f"--verify: perturbing each of the {len(checked)} redundant biases (float64, training mode) left the "
            f"output unchanged for {confirmed} of them.")


def _contrib_text(res: AuditResult) -> str:
    if not res.contributions:
        return ""
    top = max(res.contributions, key=lambda x: x.output_change)
    text = (f"On {res.n_samples} {res.data} inputs, zeroing one bias changes the output by up to "
            f"{fmt_pct(top.output_change, 2)} ({top.param})")
    ratios = [x.bias_to_signal for x in res.contributions if x.bias_to_signal is not None]
    if ratios:
        text += f"; ‖b‖/‖W·x‖ ranges from {fmt_num(min(ratios), 2)} to {fmt_num(max(ratios), 2)}"
    if res.baseline_accuracy is not None:
        worst = min(res.contributions, key=lambda x: x.accuracy_change or 0.0)
        text += (f"; accuracy {fmt_pct(res.baseline_accuracy)}, at worst "
                 f"{fmt_signed(100 * (worst.accuracy_change or 0.0), 1)} points without {worst.param}")
    return text + "."


def _check_text(c: Check) -> str:
    return (f"{c.what}: checked on {c.n_inputs} inputs in {c.mode} mode ({c.dtype}), max relative difference "
            f"{fmt_num(c.max_rel_diff, 2)}, tolerance {fmt_num(c.tolerance, 2)}")


def _fix_text(fix: FixRecord) -> str:
    done = f"{len(fix.removed)} redundant biases removed ({fix.params_saved:,} parameters saved)"
    if fix.fold:
        moved = [x for x in fix.folded if "→" in x]
        done += f", {len(fix.folded) - len(moved)} BatchNorm layers and {len(moved)} other biases folded"
        if fix.not_folded:
            done += f" (not folded: {'; '.join(fix.not_folded)})"
    checks = "; ".join(_check_text(c) for c in fix.checks) or "nothing changed, so nothing to check"
    return f"Fixed state_dict written to {fix.path}: {done}. {checks}. Load it with: {fix.load}"


def summary(res: AuditResult) -> str:
    """The counts, the zero-now note, the contributions and the fix, one paragraph each."""
    parts = [_counts_text(res), _partial_text(res), _zero_text(res), _verify_text(res), _contrib_text(res)]
    if res.fix is not None:
        parts.append(_fix_text(res.fix))
    parts += [f"Warning: {w}" for w in res.warnings]
    return "\n\n".join(p for p in parts if p)


def _legend(fig, statuses) -> None:
    """One legend entry per status present, below the plot so it never covers a bar."""
    from matplotlib.patches import Patch

    present = [s for s in STATUS_COLORS if s in set(statuses)]
    fig.legend(handles=[Patch(color=STATUS_COLORS[s], label=s) for s in present], loc="outside lower center",
               ncols=len(present), fontsize=9, title="status")


def _height(n: int) -> float:
    return max(3.0, 0.24 * n + 1.6)


def plot_bias_status(res: AuditResult, out_dir: Path, fmt: str = "png") -> Path:
    """One bar per bias: how many values it holds, coloured by status."""
    findings = res.biases
    note = ""
    if len(findings) > MAX_ROWS:  # keep every redundant and active bias, then the largest foldable ones
        order = sorted(range(len(findings)), key=lambda i: (findings[i].status == "foldable", -findings[i].numel))
        keep = set(order[:MAX_ROWS])
        findings = [f for i, f in enumerate(findings) if i in keep]
        note = f" ({MAX_ROWS} of {len(res.biases)}: smallest foldable ones left out)"
    fig, ax = new_figure(figsize=(8.5, _height(len(findings))), layout="constrained")
    if not findings:
        ax.text(0.5, 0.5, "this model has no bias parameters", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        y = list(range(len(findings)))
        sizes = [max(f.numel, 1) for f in findings]
        ax.barh(y, sizes, color=[STATUS_COLORS[f.status] for f in findings])
        ax.set_yticks(y, [f.label for f in findings], fontsize=7)
        ax.set_ylim(len(findings) - 0.5, -0.5)
        log = max(sizes) / min(sizes) >= 50
        if log:
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("values in the bias" + (" (log scale)" if log else ""))
        _legend(fig, [f.status for f in findings])
    c = res.counts()
    ax.set_title(f"Biases of {res.target}{note}: " + ", ".join(f"{c[s]['biases']} {s}" for s in STATUSES)
                 + f" ({res.not_analysed} not analysed)"
                 + f"\n{res.bias_params:,} of {res.total_params:,} parameters are biases", fontsize=10)
    return save_figure(fig, out_dir, "audit_biases", fmt)


def _panel(ax, y: list[int], values: list[float | None], colors: list[str], scale: float, label: str,
           empty: str, zero: str = "0", log_ok: bool = True) -> None:
    """Horizontal bars; zeros and missing values are written out, so a zero never looks like a gap.

    With ``log_ok`` a log axis is used when the positive values span more than two decades, so
    that small but non-zero values stay visible next to large ones.
    """
    ax.set_xlabel(label, fontsize=9)
    shown = [v * scale for v in values if v is not None]
    if not shown or not any(shown):
        zero = "0 for every bias" if len(shown) == len(values) else "0 where measured, n/a for the rest"
        ax.text(0.5, 0.5, empty if not shown else zero, ha="center", va="center",
                transform=ax.transAxes, color="grey")
        ax.set_xticks([])
        return
    positive = [v for v in shown if v > 0]
    log = log_ok and bool(positive) and max(positive) / min(positive) > 100
    floor = min(positive) / 2 if log else 0.0  # bars start here on a log axis
    widths = [max(v * scale - floor, 0.0) if v is not None else 0.0 for v in values]
    ax.barh(y, widths, left=floor, color=colors)
    if log:
        ax.set_xscale("log")
    for yi, v in zip(y, values):
        if v is None or v == 0:
            ax.text(floor, yi, " n/a" if v is None else f" {zero}", va="center", fontsize=7)
    ax.grid(axis="x", alpha=0.3)


def plot_contributions(res: AuditResult, out_dir: Path, fmt: str = "png") -> Path:
    """Per bias: ‖b‖/‖W·x‖, the share of ReLU decisions it flips, and the output change without it."""
    contribs = res.contributions or []
    note = ""
    if len(contribs) > MAX_ROWS:
        keep = set(sorted(range(len(contribs)), key=lambda i: -contribs[i].output_change)[:MAX_ROWS])
        contribs = [c for i, c in enumerate(contribs) if i in keep]
        note = f" — the {MAX_ROWS} with the largest output change of {len(res.contributions)}"
    fig, axes = new_figure(1, 3, figsize=(12, _height(len(contribs))), layout="constrained", sharey=True)
    y = list(range(len(contribs)))
    colors = [STATUS_COLORS[c.status] for c in contribs]
    _panel(axes[0], y, [c.bias_to_signal for c in contribs], colors, 1.0, "‖b‖ / ‖W·x‖ over the data",
           "no per-channel bias here", zero="0 (the bias is zero now)")
    _panel(axes[1], y, [c.relu_flips for c in contribs], colors, 100.0,
           "ReLU units whose on/off state the bias flips (%)", "no bias here feeds a ReLU directly")
    _panel(axes[2], y, [c.output_change for c in contribs], colors, 100.0,
           "output change when this bias is zeroed (%)", "no output change measured", log_ok=False)
    axes[0].set_yticks(y, [c.param for c in contribs], fontsize=7)
    axes[0].set_ylim(len(contribs) - 0.5, -0.5)
    _legend(fig, [c.status for c in contribs])
    acc = f", accuracy {fmt_pct(res.baseline_accuracy)}" if res.baseline_accuracy is not None else ""
    fig.suptitle(f"What each bias of {res.target} contributes on {res.n_samples} {res.data} inputs{acc}{note}",
                 fontsize=11)
    return save_figure(fig, out_dir, "audit_contributions", fmt)


def figures(res: AuditResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    figs = [plot_bias_status(res, out_dir, fmt)]
    if res.contributions:
        figs.append(plot_contributions(res, out_dir, fmt))
    return figs


def _rows(res: AuditResult) -> list[dict[str, Any]]:
    contrib = {c.param: c for c in res.contributions or []}
    rows = []
    for f in res.biases:
        row: dict[str, Any] = {"bias": f.label, "type": f.type, "numel": f.numel, "status": f.status,
                               "zero now": f.zero_now}
        if res.verified:
            row["verified"] = f.verified
        c = contrib.get(f.label)
        if c is not None:
            row.update({"‖b‖/‖W·x‖": c.bias_to_signal, "ReLU flips": fmt_pct(c.relu_flips),
                        "Δ output": fmt_pct(c.output_change, 2)})
        row["reason"] = f.reason
        rows.append(row)
    return rows


def sections(res: AuditResult, figs: list[Path]) -> list[Section]:
    text = summary(res)
    if res.contributions and any(c.status == "redundant" for c in res.contributions):
        text += "\n\n" + _WHY_LARGE
    return [Section(f"Bias audit of {res.target}", text, figs, _rows(res), claims=list(res.claims),
                    anchor="audit")]


def console_table(res: AuditResult):
    """The findings as a rich Table for the terminal, each bias's reason listed below it, and the
    contributions (when measured) in a second table: each stays whole at 80 columns (long names
    fold, no cell is cut)."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"Biases of {res.target}", show_lines=False, expand=False)
    t.add_column("bias", overflow="fold", min_width=8)
    t.add_column("type", overflow="fold", min_width=6)
    for col in ("numel", "|b| mean"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("status", no_wrap=True, min_width=len("redundant"))
    if res.verified:
        t.add_column("verified", no_wrap=True)
    reasons = Text()
    for f in res.biases:
        row = [escape(f.label), f.type, f"{f.numel:,}", "0" if f.zero_now else fmt_num(f.abs_mean, 3),
               f"[{_RICH_COLORS[f.status]}]{f.status}[/]"]
        if res.verified:
            row.append({True: "yes", False: "NO", None: "–"}[f.verified])
        t.add_row(*row)
        reasons.append(f"  {f.label}", style="bold")
        reasons.append(f" ({f.status}): {f.short_reason or f.reason}\n")
    parts = [t, Text("Why:"), reasons]
    if res.contributions:
        accuracy = res.baseline_accuracy is not None
        c_table = Table(title="What each bias contributes on data", show_lines=False, expand=False)
        c_table.add_column("bias", overflow="fold", min_width=8)
        for col in ("‖b‖/‖Wx‖", "ReLU flips", "Δ output", *(("Δ acc",) if accuracy else ())):
            c_table.add_column(col, justify="right", no_wrap=True)
        for c in res.contributions:
            c_table.add_row(escape(c.param), fmt_num(c.bias_to_signal, 3), fmt_pct(c.relu_flips),
                            fmt_pct(c.output_change, 2),
                            *((fmt_signed(100 * c.accuracy_change, 1) if c.accuracy_change is not None else "–",)
                              if accuracy else ()))
        parts.append(c_table)
    return Group(*parts)
