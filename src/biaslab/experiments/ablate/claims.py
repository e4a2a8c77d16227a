"""The ablation's conclusions as claims, each a function of the numbers it quotes.

* ``<model>/<dataset>/<variant>`` — one per compared variant: does the configuration's
  reference variant (the one with the most biases) beat ``<variant>``? ``holds`` is True for
  "bias helps", False for "no significant difference" or "bias hurts" (the text says which).
* ``<model>/<dataset>/<variant>/<shift>`` — the same comparison under the STRONGEST level of
  the shift (the last of its levels).
* ``bias_needed`` — removing every bias costs significant accuracy: paired t-test
  ``p < alpha`` and a mean drop of at least :data:`MIN_DROP`, in every configuration run that
  compares ``with-bias`` with ``no-bias``.
* ``bias_helps_under_shift`` — under the strongest level of every shift, ``with-bias`` is
  significantly more accurate than ``no-bias``, in every configuration.

The sentences are built only from each claim's evidence, with :mod:`biaslab.infra.numfmt`'s
number formats.
"""

from __future__ import annotations

from typing import Any

from ...infra.numfmt import fmt_fixed, fmt_p, fmt_signed
from ...results import Claim
from ...results.ablate import Comparison, ConfigResult

__all__ = ["MIN_DROP", "FULL", "NONE", "comparison_claim", "shift_claim", "bias_needed", "bias_helps_under_shift",
           "ablate_claims"]

#: ``bias_needed``: the smallest mean accuracy drop (a fraction: 0.01 = 1 percentage point) that
#: counts as a cost, on top of significance; a significant 0.1-point drop is not "crucial".
MIN_DROP = 0.01
#: The two variants the aggregate claims compare: every bias, and none.
FULL, NONE = "with-bias", "no-bias"


def _pp(x: float) -> str:
    """A difference of accuracies in percentage points."""
    return fmt_signed(100.0 * x, 2, " pp")


def _evidence(cfg: ConfigResult, c: Comparison, acc_a: float, acc_b: float) -> dict[str, Any]:
    removed = cfg.variants[c.a].params - cfg.variants[c.b].params
    return {"config": cfg.name, "a": c.a, "b": c.b, "removed": removed, "acc_a": acc_a, "acc_b": acc_b,
            "diff": c.diff_mean,
            "ci_low": c.diff_ci_low, "ci_high": c.diff_ci_high, "p_value": c.p_value, "wilcoxon_p": c.wilcoxon_p,
            "effect_size": c.effect_size, "a_wins": c.a_wins, "b_wins": c.b_wins, "ties": c.ties, "n": c.n,
            "alpha": c.alpha, "verdict": c.verdict, "constant": c.constant}


def _test(e: dict[str, Any]) -> str:
    """The difference, its interval and p, or why the t-test is undefined."""
    if e["constant"]:
        return (f"{_pp(e['diff'])} on every one of {e['n']} seeds (zero spread: the t-test is undefined, "
                "a constant non-zero difference counts as significant)")
    lo, hi = max(e["ci_low"], -1.0), min(e["ci_high"], 1.0)  # a difference of accuracies lies in [-1, 1]
    clip = ", clipped to ±100 pp" if (lo, hi) != (e["ci_low"], e["ci_high"]) else ""
    return (f"{_pp(e['diff'])} (95% CI {_pp(lo)} to {_pp(hi)}{clip}), paired t-test "
            f"{fmt_p(e['p_value'])}, Wilcoxon {fmt_p(e['wilcoxon_p'])}; {e['a']} better on {e['a_wins']}, "
            f"worse on {e['b_wins']}, tied on {e['ties']} of {e['n']} seeds")


def _comparison_text(e: dict[str, Any], where: str) -> str:
    accs = f"{e['a']} {fmt_fixed(e['acc_a'], 4)} vs {e['b']} {fmt_fixed(e['acc_b'], 4)}"
    if e["removed"] == 0:
        return (f"{where}: {e['b']} removes no parameter from this model, so it trains the same network as "
                f"{e['a']} (accuracy {fmt_fixed(e['acc_a'], 4)} vs {fmt_fixed(e['acc_b'], 4)}).")
    if e["constant"] and e["diff"] == 0:
        return (f"{where}: {e['a']} and {e['b']} have the same accuracy on every one of {e['n']} seeds "
                f"({fmt_fixed(e['acc_a'], 4)}, paired difference exactly 0): removing those {e['removed']} bias "
                "values does not change it here.")
    if e["verdict"] == "bias helps":
        head = f"{where}: the biases {e['b']} removes help"
    elif e["verdict"] == "bias hurts":
        head = f"{where}: the biases {e['b']} removes hurt here; {e['b']} is significantly better"
    else:
        head = f"{where}: no significant difference between {e['a']} and {e['b']} (α = {e['alpha']:g})"
    return f"{head}: {accs}, {_test(e)}."


def comparison_claim(cfg: ConfigResult, c: Comparison) -> Claim:
    """``<model>/<dataset>/<b>``: the paired test of ``c.a`` against ``c.b`` on clean test data."""
    e = _evidence(cfg, c, cfg.variants[c.a].summary.mean, cfg.variants[c.b].summary.mean)
    return Claim(f"{cfg.name}/{c.b}", _comparison_text(e, cfg.name), c.verdict == "bias helps", e,
                 f"{cfg.name}: the biases {c.b} removes help ({c.a} significantly more accurate)")


def shift_claim(cfg: ConfigResult, kind: str, label: str, level_index: int, c: Comparison) -> Claim:
    """``<model>/<dataset>/<b>/<kind>``: the paired test at the shift level ``label``."""
    e = _evidence(cfg, c, float(cfg.variants[c.a].shift_bands[kind].mean[level_index]),
                  float(cfg.variants[c.b].shift_bands[kind].mean[level_index]))
    e.update({"shift": kind, "level": cfg.shift_levels[kind][level_index], "label": label})
    return Claim(f"{cfg.name}/{c.b}/{kind}", _comparison_text(e, f"{cfg.name} under {label}"),
                 c.verdict == "bias helps", e,
                 f"{cfg.name} under {label}: the biases {c.b} removes help ({c.a} significantly more accurate)")


def _find(cfg: ConfigResult, b: str) -> Comparison | None:
    return next((c for c in cfg.comparisons if c.a == FULL and c.b == b), None)


def _brief(where: str, c: Comparison) -> str:
    p = "constant difference" if c.constant else fmt_p(c.p_value)
    return f"{where} {_pp(c.diff_mean)} ({p})"


NEEDED_STATEMENT = (f"Removing every bias costs significant accuracy (p < α and at least {100 * MIN_DROP:g} pp) "
                    "in every configuration")
SHIFT_STATEMENT = "With bias is significantly more accurate under the strongest level of every shift"


def bias_needed(configs: list[ConfigResult]) -> Claim:
    """Removing every bias costs significant accuracy (p < alpha, drop ≥ MIN_DROP) in every configuration."""
    cases = [(cfg, c) for cfg in configs if (c := _find(cfg, NONE)) is not None]
    evidence: dict[str, Any] = {"threshold": MIN_DROP, "configurations": len(cases)}
    if not cases:
        return Claim("bias_needed", f"Not measured: no configuration compared {FULL} with {NONE}.", None, evidence,
                     NEEDED_STATEMENT)
    needed = [cfg.name for cfg, c in cases if c.verdict == "bias helps" and c.diff_mean >= MIN_DROP]
    alpha = cases[0][1].alpha
    evidence.update({"alpha": alpha, "needed": len(needed), "needed_in": needed})
    if len(cases) == 1:
        c = cases[0][1]
        evidence.update({"diff": c.diff_mean, "p_value": c.p_value})
    details = "; ".join(_brief(cfg.name, c) for cfg, c in cases)
    rule = f"paired t-test p < {alpha:g} and a drop of at least {100 * MIN_DROP:g} pp"
    holds = len(needed) == len(cases)
    if holds:
        text = f"Removing every bias costs significant accuracy ({rule}) in all {len(cases)} configuration(s): {details}."
    else:
        text = (f"Not here: removing every bias costs significant accuracy ({rule}) in {len(needed)} of "
                f"{len(cases)} configuration(s): {details}.")
    return Claim("bias_needed", text, holds, evidence, NEEDED_STATEMENT)


def bias_helps_under_shift(configs: list[ConfigResult]) -> Claim:
    """With-bias significantly beats no-bias under the strongest level of every shift, in every configuration."""
    cases = [(f"{cfg.name} {s.label}", s.comparison) for cfg in configs for s in cfg.shift_comparisons
             if s.comparison.a == FULL and s.comparison.b == NONE]
    evidence: dict[str, Any] = {"cases": len(cases)}
    if not cases:
        return Claim("bias_helps_under_shift", f"Not measured: no shifted test data compared {FULL} with {NONE}.",
                     None, evidence, SHIFT_STATEMENT)
    helps = [w for w, c in cases if c.verdict == "bias helps"]
    hurts = [w for w, c in cases if c.verdict == "bias hurts"]
    evidence.update({"alpha": cases[0][1].alpha, "helps": len(helps), "hurts": len(hurts),
                     "helps_in": helps, "hurts_in": hurts})
    details = "; ".join(_brief(w, c) for w, c in cases)
    holds = len(helps) == len(cases)
    if holds:
        text = f"Under the strongest shift of each kind, {FULL} is significantly more accurate in all {len(cases)} cases: {details}."
    else:
        text = (f"Not here: under the strongest shift of each kind, {FULL} is significantly more accurate in "
                f"{len(helps)} of {len(cases)} cases and significantly less accurate in {len(hurts)}: {details}.")
    return Claim("bias_helps_under_shift", text, holds, evidence, SHIFT_STATEMENT)


def ablate_claims(configs: list[ConfigResult]) -> list[Claim]:
    """Every claim of an ablation: the two aggregates first, then per configuration and per shift."""
    out = [bias_needed(configs), bias_helps_under_shift(configs)]
    for cfg in configs:
        out += [comparison_claim(cfg, c) for c in cfg.comparisons]
        for s in cfg.shift_comparisons:
            out.append(shift_claim(cfg, s.kind, s.label, len(cfg.shift_levels[s.kind]) - 1, s.comparison))
    return out
