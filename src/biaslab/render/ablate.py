"""Ablation: per-seed accuracies, learning curves and accuracy under shift; the verdicts as claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..infra.numfmt import fmt_effect, fmt_fixed, fmt_p, fmt_signed
from ..results.ablate import AblateResult, Band, ConfigResult
from .figures import COLORS, new_figure, save_figure
from .report import Section

__all__ = ["summary", "figures", "sections", "plot_accuracies", "plot_curves", "plot_shift"]

_COLORS = {"with-bias": COLORS["with_bias"], "no-bias": COLORS["without_bias"], "conv-no-bias": "tab:purple",
           "head-no-bias": "tab:blue", "audit": "tab:brown"}
#: Line styles keep identical curves (e.g. a variant that equals with-bias) distinguishable.
_STYLES = {"with-bias": "-", "no-bias": "--", "conv-no-bias": "-.", "head-no-bias": ":", "audit": (0, (1, 1))}
_EXTRA = ["tab:red", "tab:olive", "tab:cyan", "tab:pink", "tab:gray"]

_SHIFT_AXES = {
    "brightness": ("brightness offset added (std units)", False),
    "contrast": ("contrast scale (1 = unchanged)", True),
    "noise": ("Gaussian noise std (std units)", False),
}
#: Figures draw at most this many configurations (a 1,000-configuration grid lives in results.json
#: and the claims table; a figure of 1,000 panels helps nobody).
MAX_PANELS = 12


def _band_label(kind: str, confidence: float | None) -> str:
    if kind == "ci":
        return f"{_pct(confidence)} t confidence interval of the mean over seeds, clipped to [0, 1]"
    return "± 1 std over seeds"


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:g}%"


def _confidence(res: AblateResult) -> float:
    """The confidence level the result's intervals were computed at (Summary.confidence)."""
    for cfg in res.configurations:
        for v in cfg.variants.values():
            return v.summary.confidence
    return 0.95


#: How the shifted test data are made: a description of the method, not a conclusion (the
#: conclusions are the shift claims, computed from this run).
_SHIFT_METHOD = (
    "Shifted test inputs (no retraining): brightness adds a constant to every input, contrast scales "
    "each input's deviation from its mean, noise adds Gaussian noise, all in units of the standardised "
    "data. Each shift's verdict is taken at its strongest level, the one furthest from the identity "
    "(brightness 0, contrast ×1, noise σ = 0; contrast on a log scale); equally strong levels each get one."
)


def _p(c) -> str:
    """The exact sign-flip p, and its Holm adjustment when the run has more than one comparison."""
    adj = f", adjusted {fmt_p(c.p_adjusted).removeprefix('p ')}" if c.family > 1 else ""
    return f"{fmt_p(c.p_value)}{adj}"


def _color(variant: str, i: int) -> str:
    return _COLORS.get(variant, _EXTRA[i % len(_EXTRA)])


def _style(variant: str):
    return _STYLES.get(variant, "-")


def _acc_line(cfg: ConfigResult, v: str) -> str:
    r = cfg.variants[v]
    s = r.summary
    clip = ", clipped to [0, 1]" if s.clipped else ""
    return (f"  {v:<14} test acc {fmt_fixed(s.mean, 4)} ± {fmt_fixed(s.std, 4)}  {_pct(s.confidence)} CI [{fmt_fixed(s.ci_low, 4)}, "
            f"{fmt_fixed(s.ci_high, 4)}{clip}]  {r.params} params, {r.biases} bias scalars")


def _notes(res: AblateResult) -> list[str]:
    out = []
    for c in res.configurations:
        if "conv-no-bias" in c.variants and c.variants["conv-no-bias"].params == c.variants[
                max(c.variants, key=lambda v: c.variants[v].params)].params:
            out.append(f"{c.name} has no convolution biases, so its conv-no-bias variant is the with-bias model.")
        if c.fallback:
            out.append(f"{c.name}: {c.fallback}.")
    out += [f"Skipped {s.model} on {s.dataset}: {s.reason}." for s in res.skipped]
    return out


def _config_claims(res: AblateResult, cfg: ConfigResult) -> list:
    return [c for c in res.claims if c.evidence.get("config") == cfg.name]


def _config_head(cfg: ConfigResult) -> str:
    """``cnn/digits (3 seeds, 6 epochs, adam lr 0.003)``: which configuration, trained how."""
    st = cfg.settings
    return (f"{cfg.name} ({len(cfg.seeds)} seeds, {st['epochs']} epoch{'' if st['epochs'] == 1 else 's'}, "
            f"{st['optimizer']} lr {st['lr']:g}"
            f"{', input offset ' + format(st['input_offset'], '+g') if st.get('input_offset') else ''}"
            f"{'' if st.get('standardize', True) else ', not standardised'}"
            f"{'' if cfg.batched else ', trained one by one'})")


def summary(res: AblateResult) -> str:
    blocks = []
    for cfg in res.configurations:
        lines = [_config_head(cfg)] + [_acc_line(cfg, v) for v in cfg.variants]
        lines += [f"  {c.text}" for c in _config_claims(res, cfg) if "shift" not in c.evidence]
        lines += [f"  under {s.label}, {s.comparison.a} vs {s.comparison.b}: {s.comparison.verdict} "
                  f"({fmt_signed(100 * s.comparison.diff_mean, 2, ' pp')}, {_p(s.comparison)})"
                  for s in cfg.shift_comparisons]
        blocks.append("\n".join(lines))
    agg = [c for c in res.claims if "config" not in c.evidence]
    blocks.append("\n".join(f"{c.id}: {c.text}" for c in agg))
    blocks += _notes(res)
    if res.runs_file is not None:
        blocks.append(f"{res.trained} runs trained, {res.resumed} reused from {res.runs_file} "
                      "(re-running the same command skips finished runs).")
    return "\n\n".join(blocks)


def _title(cfg: ConfigResult) -> str:
    return f"{cfg.model} on {cfg.dataset}"


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return (n + cols - 1) // cols, cols


def _shown(res: AblateResult) -> list[ConfigResult]:
    return res.configurations[:MAX_PANELS]


def _more(res: AblateResult) -> str:
    extra = len(res.configurations) - MAX_PANELS
    return f"; the first {MAX_PANELS} of {len(res.configurations)} configurations" if extra > 0 else ""


def plot_accuracies(res: AblateResult, out_dir: Path, fmt: str = "png") -> Path:
    """Test accuracy of every seed by variant; grey lines join runs of the same seed."""
    shown = _shown(res)
    rows, cols = _grid(len(shown))
    fig, axes = new_figure(rows, cols, figsize=(4.6 * cols + 0.6, 4.2 * rows), layout="constrained", squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, cfg in zip(axes.flat, shown):
        names = list(cfg.variants)
        x = np.arange(len(names))
        accs = np.array([cfg.variants[v].test_acc for v in names])  # (variants, seeds)
        for s in range(accs.shape[1]):
            ax.plot(x, accs[:, s], color="grey", lw=0.8, alpha=0.6, zorder=1)
        for i, v in enumerate(names):
            sm = cfg.variants[v].summary
            ax.scatter(np.full(accs.shape[1], i), accs[i], color=_color(v, i), s=28, zorder=2, alpha=0.85)
            ax.errorbar(i + 0.18, sm.mean, yerr=[[sm.mean - sm.ci_low], [sm.ci_high - sm.mean]], fmt="D",
                        color=_color(v, i), mec="black", ms=7, capsize=5, lw=2, zorder=3)
        ax.set_xticks(x, [f"{v}\n({cfg.variants[v].params} params)" for v in names], fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.3)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, min(hi, 1.0 + 0.03 * (1.0 - lo)))
        ax.set_ylabel("test accuracy")
        comp = cfg.comparisons[0]
        ax.set_title(f"{_title(cfg)}: {comp.verdict}\n{comp.a} − {comp.b} = "
                     f"{fmt_signed(100 * comp.diff_mean, 2, ' pp')}, {_p(comp)}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    n = len(res.configurations[0].seeds)
    fig.suptitle(f"Test accuracy of each seed (dots; grey lines join a seed's runs) and the mean with its\n"
                 f"{_pct(_confidence(res))} t confidence interval, clipped to [0, 1] (diamonds); {n} seeds{_more(res)}",
                 fontsize=11)
    return save_figure(fig, out_dir, "ablate_accuracy", fmt)


def _band(ax, x: np.ndarray, band: Band, variant: str, i: int) -> None:
    ax.plot(x, band.mean, color=_color(variant, i), ls=_style(variant), lw=2, label=variant)
    ax.fill_between(x, band.low, band.high, color=_color(variant, i), alpha=0.2, lw=0)


def plot_curves(res: AblateResult, out_dir: Path, fmt: str = "png") -> Path:
    """Per configuration: test accuracy and training loss per epoch, mean ± std over seeds."""
    shown = _shown(res)
    n = len(shown)
    fig, axes = new_figure(n, 2, figsize=(11, 3.4 * n + 0.4), layout="constrained", squeeze=False)
    for (acc_ax, loss_ax), cfg in zip(axes, shown):
        for i, (v, r) in enumerate(cfg.variants.items()):
            epochs = np.arange(1, r.curves["test_acc"].shape[1] + 1)
            _band(acc_ax, epochs, r.curve_bands["test_acc"], v, i)
            _band(loss_ax, epochs, r.curve_bands["train_loss"], v, i)
        acc_ax.set_title(f"{_title(cfg)}: test accuracy", fontsize=10)
        acc_ax.set_ylabel("test accuracy")
        loss_ax.set_title(f"{_title(cfg)}: training loss", fontsize=10)
        losses = np.concatenate([np.ravel(r.curve_bands["train_loss"].mean) for r in cfg.variants.values()])
        if losses.size and np.all(np.isfinite(losses)) and np.all(losses > 0):  # else log scale cannot show them
            loss_ax.set_ylabel("cross-entropy (log scale)")
            loss_ax.set_yscale("log")
        else:
            loss_ax.set_ylabel("cross-entropy")
        for ax in (acc_ax, loss_ax):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        acc_ax.legend(fontsize=9, loc="lower right")
    fig.suptitle(f"Learning curves: mean over seeds, band = {_band_label('std', None)}{_more(res)}", fontsize=11)
    return save_figure(fig, out_dir, "ablate_curves", fmt)


def plot_shift(res: AblateResult, out_dir: Path, fmt: str = "png") -> Path:
    """Per configuration: test accuracy under each shift (mean and its clipped t interval over seeds)."""
    shown = _shown(res)
    n = len(shown)
    kinds = list(res.configurations[0].shift_levels)
    fig, axes = new_figure(n, len(kinds), figsize=(4.4 * len(kinds) + 0.4, 3.4 * n + 0.6), layout="constrained",
                           squeeze=False, sharey="row")
    for row, cfg in zip(axes, shown):
        for ax, kind in zip(row, kinds):
            label, invert = _SHIFT_AXES[kind]
            levels = np.array(cfg.shift_levels[kind])
            order = np.argsort(levels, kind="stable")  # levels may be given in any order
            for i, (v, r) in enumerate(cfg.variants.items()):
                b = r.shift_bands[kind]
                _band(ax, levels[order], Band(b.mean[order], b.low[order], b.high[order], b.kind, b.confidence), v, i)
            if invert:
                ax.invert_xaxis()
            ax.set_xlabel(label)
            ax.set_title(f"{_title(cfg)}: {kind}", fontsize=10)
            ax.grid(alpha=0.3)
        row[0].set_ylabel("test accuracy")
        row[0].legend(fontsize=9, loc="lower left")
    fig.suptitle("Accuracy under distribution shift of the test inputs (no retraining; shift grows to the right)\n"
                 f"line = mean over seeds, band = {_band_label('ci', _confidence(res))}{_more(res)}", fontsize=11)
    return save_figure(fig, out_dir, "ablate_shift", fmt)


def figures(res: AblateResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    figs = [plot_accuracies(res, out_dir, fmt), plot_curves(res, out_dir, fmt)]
    if res.configurations[0].shift_levels:
        figs.append(plot_shift(res, out_dir, fmt))
    return figs


def _table(res: AblateResult) -> list[dict[str, object]]:
    rows = []
    for cfg in res.configurations:
        for c in cfg.comparisons:
            rows.append({
                "configuration": cfg.name, "a": c.a, "b": c.b,
                "acc a": fmt_fixed(cfg.variants[c.a].summary.mean, 4),
                "acc b": fmt_fixed(cfg.variants[c.b].summary.mean, 4),
                "a − b": fmt_signed(100 * c.diff_mean, 2, " pp"),
                "p (sign-flip)": _pv(c.p_value),
                "p adjusted": _pv(c.p_adjusted),
                "p (t)": _pv(c.t_p),
                "p (Wilcoxon)": _pv(c.wilcoxon_p),
                "bootstrap CI (a − b)": f"{fmt_signed(100 * c.boot_ci_low, 2)} to {fmt_signed(100 * c.boot_ci_high, 2, ' pp')}",
                "P(a > b)": f"{fmt_fixed(c.prob_a_better, 2)} [{fmt_fixed(c.prob_ci_low, 2)}, {fmt_fixed(c.prob_ci_high, 2)}]",
                "effect": fmt_effect(c.effect_size),
                "seeds a > b": f"{c.a_wins}/{c.n}", "verdict": c.verdict,
                "seeds to decide": "—" if c.seeds_needed is None else c.seeds_needed,
            })
    return rows


def _pv(p: float) -> str:
    return fmt_p(p).removeprefix("p ").removeprefix("= ")


def console_table(res: AblateResult) -> str:
    """The comparisons of a grid, one line each (empty for a single configuration)."""
    rows = _table(res)
    if len(res.configurations) < 2:
        return ""
    cols = ["configuration", "b", "acc a", "acc b", "a − b", "p (sign-flip)", "p adjusted", "verdict"]
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def sections(res: AblateResult, figs: list[Path]) -> list[Section]:
    alpha = res.params.get("alpha", 0.05)
    margin = res.params.get("margin", 0.01)
    text = [
        "The same network trained with and without (some of) its biases: same seeds (initial weights and "
        "batch order shared across variants), same data; only the biases switched. Each comparison is an exact "
        "sign-flip permutation test over the seeds' paired differences (all 2^n sign patterns; the t-test and "
        f"Wilcoxon signed-rank beside it); the run's comparisons are one family, Holm-adjusted, at α = {alpha:g}. "
        "A verdict is 'bias helps' or 'bias hurts' for a significant difference, 'equivalent' when both one-sided "
        f"tests reject a difference of ±{100 * margin:g} pp or more (TOST), and otherwise 'inconclusive' (not "
        "significant is not 'no effect'). With n seeds no p-value can be below 2/2^n."
        f" Accuracy intervals are {_pct(_confidence(res))} t intervals, clipped to [0, 1].",
    ]
    if res.params.get("seeds_mode") == "auto":
        looks = res.params.get("looks", [])
        text.append(f"Seeds chosen by a group-sequential design: looks at {', '.join(map(str, looks))} seeds, "
                    f"{res.params.get('spending')} α spending (per-look levels "
                    f"{', '.join(format(a, '.2g') for a in res.params.get('look_alphas', []))}); stopped at "
                    f"{res.params.get('stopped_at')} seeds. A decision stands at the look that made it.")
    text += ["\n".join([_config_head(c) + ":"] + [_acc_line(c, v).strip() for v in c.variants])
             for c in res.configurations]  # one paragraph per configuration
    text += _notes(res)
    if res.configurations[0].shift_levels:
        text.append(_SHIFT_METHOD)
    return [Section("Ablation: training with and without bias", "\n\n".join(text), figs, _table(res),
                    claims=list(res.claims), anchor="ablate")]
