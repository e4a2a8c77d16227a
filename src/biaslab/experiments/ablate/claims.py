"""The ablation's conclusions as claims, each a function of the numbers it quotes.

The comparisons of one run are one family: their p-values are Holm-adjusted together
(:func:`biaslab.math.stats.adjust_family`) before any claim is made, and each claim's verdict
(``holds`` / ``refuted`` / ``inconclusive`` / ``not measured``) follows from the adjusted values.

* ``<model>/<dataset>/<variant>`` — one per compared variant: do the biases ``<variant>``
  removes help (the reference variant, with the most biases, significantly more accurate)?
  holds: a significant gain; refuted: a significant loss, or equivalence within ±margin
  (TOST); otherwise inconclusive, with the seeds the observed spread says would decide it.
* ``<model>/<dataset>/<variant>/<shift>`` — the same under the STRONGEST level of the shift
  (furthest from the identity; ``.../<shift>@<level>`` for each of equally strong levels).
* ``bias_needed`` — removing every bias costs significant accuracy and at least
  :data:`MIN_DROP`, in every configuration that compares ``with-bias`` with ``no-bias``.
  Refuted where some configuration shows a significant gain without bias, or a drop
  significantly below :data:`MIN_DROP` (one-sided sign-flip test, Bonferroni over the family).
* ``bias_helps_under_shift`` — under the strongest level of every shift, ``with-bias`` is
  significantly more accurate than ``no-bias``, in every configuration. Refuted where a case
  is significantly worse, or equivalent within the margin.

Aggregates report the interquartile mean of the per-seed differences pooled over their cases
with rliable's stratified bootstrap interval. The sentences are built only from each claim's
evidence, with :mod:`biaslab.infra.numfmt`'s number formats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...infra.numfmt import fmt_fixed, fmt_p, fmt_signed
from ...math.stats import VERDICTS, min_seeds, sign_flip_p, stratified_iqm_interval
from ...results import Claim
from ...results.ablate import Comparison, ConfigResult

__all__ = ["MIN_DROP", "FULL", "NONE", "comparison_claim", "shift_claim", "bias_needed", "bias_helps_under_shift",
           "ablate_claims", "claim_verdict"]

#: ``bias_needed``: the smallest mean accuracy drop (a fraction: 0.01 = 1 percentage point) that
#: counts as a cost, on top of significance; a significant 0.1-point drop is not "crucial".
MIN_DROP = 0.01
#: The two variants the aggregate claims compare: every bias, and none.
FULL, NONE = "with-bias", "no-bias"
#: A comparison's verdict → the verdict of the claim "the biases b removes help".
_CLAIM_VERDICT = {VERDICTS[0]: "holds", VERDICTS[1]: "refuted", VERDICTS[2]: "refuted", VERDICTS[3]: "inconclusive"}


def claim_verdict(c: Comparison) -> str:
    """The claim verdict of "the biases ``c.b`` removes help" (results.json written before
    verdicts had three values: "no significant difference" → inconclusive)."""
    return _CLAIM_VERDICT.get(c.verdict, "inconclusive")


def _pp(x: float) -> str:
    """A difference of accuracies in percentage points."""
    return fmt_signed(100.0 * x, 2, " pp")


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def _diffs(cfg: ConfigResult, c: Comparison, kind: str | None = None, index: int = -1) -> np.ndarray:
    """The per-seed differences the comparison tested (recomputed from the runs for older files)."""
    if c.diffs is not None:
        return np.asarray(c.diffs, dtype=np.float64)
    if kind is None:
        return cfg.variants[c.a].test_acc - cfg.variants[c.b].test_acc
    return cfg.variants[c.a].shift[kind][:, index] - cfg.variants[c.b].shift[kind][:, index]


def _evidence(cfg: ConfigResult, c: Comparison, acc_a: float, acc_b: float) -> dict[str, Any]:
    removed = cfg.variants[c.a].params - cfg.variants[c.b].params
    return {"config": cfg.name, "a": c.a, "b": c.b, "removed": removed, "acc_a": acc_a, "acc_b": acc_b,
            "diff": c.diff_mean, "ci_low": c.diff_ci_low, "ci_high": c.diff_ci_high, "confidence": c.confidence,
            "test": c.test, "p_value": c.p_value, "p_adjusted": c.p_adjusted, "family": c.family,
            "min_p": c.min_p, "t_p": c.t_p, "wilcoxon_p": c.wilcoxon_p, "margin": c.margin,
            "p_equiv": c.p_equiv, "p_equiv_adjusted": c.p_equiv_adjusted,
            "perm_ci_low": c.perm_ci_low, "perm_ci_high": c.perm_ci_high, "perm_ci_level": c.perm_ci_level,
            "boot_ci_low": c.boot_ci_low, "boot_ci_high": c.boot_ci_high,
            "prob_a_better": c.prob_a_better, "prob_ci_low": c.prob_ci_low, "prob_ci_high": c.prob_ci_high,
            "effect_size": c.effect_size, "a_wins": c.a_wins, "b_wins": c.b_wins, "ties": c.ties, "n": c.n,
            "alpha": c.alpha, "look_alpha": c.look_alpha, "verdict": c.verdict, "seeds_needed": c.seeds_needed,
            "constant": c.constant}


def _test(e: dict[str, Any]) -> str:
    """The difference, its intervals and the tests, in one clause."""
    conf = _pct(e["confidence"])
    if e["constant"]:
        spread = f"{_pp(e['diff'])} on every one of {e['n']} seeds (zero spread)"
    else:
        lo, hi = max(e["ci_low"], -1.0), min(e["ci_high"], 1.0)  # a difference of accuracies lies in [-1, 1]
        clip = ", clipped to ±100 pp" if (lo, hi) != (e["ci_low"], e["ci_high"]) else ""
        spread = f"{_pp(e['diff'])} ({conf} t interval {_pp(lo)} to {_pp(hi)}{clip})"
    adj = (f", Holm-adjusted over {e['family']} comparisons {fmt_p(e['p_adjusted'])}" if e["family"] > 1 else "")
    t = "t-test n/a (zero spread)" if e["constant"] else f"t-test {fmt_p(e['t_p'])}"
    return (f"{spread}; exact sign-flip test {fmt_p(e['p_value'])}{adj} ({t}, Wilcoxon {fmt_p(e['wilcoxon_p'])}); "
            f"P({e['a']} > {e['b']}) = {fmt_fixed(e['prob_a_better'], 2)} (bootstrap {fmt_fixed(e['prob_ci_low'], 2)} "
            f"to {fmt_fixed(e['prob_ci_high'], 2)}; mean difference {_pp(e['boot_ci_low'])} to {_pp(e['boot_ci_high'])}); "
            f"{e['a']} better on {e['a_wins']}, "
            f"worse on {e['b_wins']}, tied on {e['ties']} of {e['n']} seeds")


def _undecided(e: dict[str, Any]) -> str:
    """Why an inconclusive comparison is undecided, and how many seeds would decide it."""
    level = e["look_alpha"] if e["look_alpha"] == e["look_alpha"] else e["alpha"]
    if e["min_p"] * e["family"] >= level:
        need = min_seeds(level, e["family"])
        where = "" if e["family"] == 1 else f" after Holm over {e['family']} comparisons"
        more = (f"; the observed spread says about {e['seeds_needed']} seeds would decide it"
                if e["seeds_needed"] is not None and e["seeds_needed"] > need else "")
        return (f"with {e['n']} seeds no test can reach p < {level:.2g}{where} (the smallest possible p is "
                f"{e['min_p']:.2g}); use ≥ {need} seeds{more}")
    if e["seeds_needed"] is not None:
        return f"the observed spread says about {e['seeds_needed']} seeds would decide it"
    return "the observed difference is too small for its spread to decide with any practical number of seeds"


def _comparison_text(e: dict[str, Any], where: str) -> str:
    accs = f"{e['a']} {fmt_fixed(e['acc_a'], 4)} vs {e['b']} {fmt_fixed(e['acc_b'], 4)}"
    if e["removed"] == 0:
        return (f"{where}: {e['b']} removes no parameter from this model, so it trains the same network as "
                f"{e['a']} (accuracy {fmt_fixed(e['acc_a'], 4)} vs {fmt_fixed(e['acc_b'], 4)}).")
    margin = f"{100 * e['margin']:g} pp"
    if e["verdict"] == VERDICTS[0]:
        head = f"{where}: the biases {e['b']} removes help"
    elif e["verdict"] == VERDICTS[1]:
        head = f"{where}: the biases {e['b']} removes hurt here; {e['b']} is significantly more accurate"
    elif e["verdict"] == VERDICTS[2]:
        head = (f"{where}: {e['a']} and {e['b']} are equivalent within ±{margin} (TOST "
                f"{fmt_p(e['p_equiv_adjusted'])}), so the biases {e['b']} removes do not help by that much")
    else:
        head = (f"{where}: inconclusive: neither a significant difference between {e['a']} and {e['b']} nor "
                f"equivalence within ±{margin} at α = {e['alpha']:g}; {_undecided(e)}")
    look = ""
    if e["look_alpha"] == e["look_alpha"] and e["look_alpha"] < e["alpha"] * (1 - 1e-9):
        look = f" Tested at this sequential look's level {e['look_alpha']:.2g} (α spent over the looks)."
    return f"{head}: {accs}, {_test(e)}.{look}"


def _statement(where: str, c: Comparison) -> str:
    return (f"{where}: the biases {c.b} removes help ({c.a} significantly more accurate; refuted by a "
            f"significant loss or by equivalence within ±{100 * c.margin:g} pp)")


def _claim(cid: str, e: dict[str, Any], where: str, c: Comparison) -> Claim:
    verdict = "refuted" if e["removed"] == 0 else claim_verdict(c)
    return Claim.of(cid, verdict, _comparison_text(e, where), e, _statement(where, c))


def comparison_claim(cfg: ConfigResult, c: Comparison) -> Claim:
    """``<model>/<dataset>/<b>``: the paired test of ``c.a`` against ``c.b`` on clean test data."""
    e = _evidence(cfg, c, cfg.variants[c.a].summary.mean, cfg.variants[c.b].summary.mean)
    return _claim(f"{cfg.name}/{c.b}", e, cfg.name, c)


def _shift_id(cfg: ConfigResult, b: str, kind: str, level: float) -> str:
    tied = sum(1 for s in cfg.shift_comparisons if s.kind == kind and s.comparison.b == b) > 1
    return f"{cfg.name}/{b}/{kind}" + (f"@{level:+g}" if tied else "")


def shift_claim(cfg: ConfigResult, kind: str, label: str, level_index: int, c: Comparison) -> Claim:
    """``<model>/<dataset>/<b>/<kind>``: the paired test at the shift level ``label``."""
    e = _evidence(cfg, c, float(cfg.variants[c.a].shift_bands[kind].mean[level_index]),
                  float(cfg.variants[c.b].shift_bands[kind].mean[level_index]))
    level = cfg.shift_levels[kind][level_index]
    e.update({"shift": kind, "level": level, "label": label})
    return _claim(_shift_id(cfg, c.b, kind, level), e, f"{cfg.name} under {label}", c)


def _find(cfg: ConfigResult, b: str) -> Comparison | None:
    return next((c for c in cfg.comparisons if c.a == FULL and c.b == b), None)


def _brief(where: str, c: Comparison) -> str:
    adj = f", adjusted {fmt_p(c.p_adjusted)}" if c.family > 1 else ""
    return f"{where} {_pp(c.diff_mean)} ({c.verdict}; {fmt_p(c.p_value)}{adj}, {c.n} seeds)"


def _iqm(evidence: dict[str, Any], groups: list[np.ndarray], confidence: float) -> str:
    mid, lo, hi = stratified_iqm_interval(groups, confidence)
    evidence.update({"iqm": mid, "iqm_ci_low": lo, "iqm_ci_high": hi})
    return (f"interquartile mean of the per-seed differences {_pp(mid)} ({_pct(confidence)} stratified "
            f"bootstrap interval {_pp(lo)} to {_pp(hi)})")


NEEDED_STATEMENT = (f"Removing every bias costs significant accuracy (p < α after Holm, and at least "
                    f"{100 * MIN_DROP:g} pp) in every configuration; refuted by a significant gain without bias "
                    f"or a drop significantly below {100 * MIN_DROP:g} pp")
SHIFT_STATEMENT = ("With bias is significantly more accurate under the strongest level of every shift; refuted "
                   "by a significant loss or by equivalence within the margin in some case")


def bias_needed(configs: list[ConfigResult]) -> Claim:
    """Removing every bias costs significant accuracy (p < alpha, drop ≥ MIN_DROP) in every configuration."""
    cases = [(cfg, c) for cfg in configs if (c := _find(cfg, NONE)) is not None]
    evidence: dict[str, Any] = {"threshold": MIN_DROP, "configurations": len(cases)}
    if not cases:
        return Claim.of("bias_needed", "not measured", f"Not measured: no configuration compared {FULL} with {NONE}.",
                        evidence, NEEDED_STATEMENT)
    alpha = cases[0][1].alpha
    needed = [cfg.name for cfg, c in cases if c.verdict == VERDICTS[0] and c.diff_mean >= MIN_DROP]
    small = []  # drop significantly below MIN_DROP: one-sided sign-flip test, Bonferroni over the family
    for cfg, c in cases:
        p_small = min(1.0, sign_flip_p(_diffs(cfg, c), "less", MIN_DROP) * max(1, c.family))
        level = c.look_alpha if c.look_alpha == c.look_alpha else alpha
        if c.verdict == VERDICTS[1] or p_small < level:
            small.append(cfg.name)
    evidence.update({"alpha": alpha, "needed": len(needed), "needed_in": needed, "refuted_in": small})
    if len(cases) == 1:
        c = cases[0][1]
        evidence.update({"diff": c.diff_mean, "p_value": c.p_value, "p_adjusted": c.p_adjusted, "n": c.n})
    iqm = _iqm(evidence, [_diffs(cfg, c) for cfg, c in cases], cases[0][1].confidence)
    details = "; ".join(_brief(cfg.name, c) for cfg, c in cases)
    rule = f"p < {alpha:g} after Holm and a drop of at least {100 * MIN_DROP:g} pp"
    if len(needed) == len(cases):
        verdict = "holds"
        text = f"Removing every bias costs significant accuracy ({rule}) in all {len(cases)} configuration(s): {details}; {iqm}."
    elif small:
        verdict = "refuted"
        text = (f"Refuted: removing every bias costs significantly less than {100 * MIN_DROP:g} pp, or "
                f"significantly raises accuracy, in {len(small)} of {len(cases)} configuration(s) "
                f"({', '.join(small)}): {details}; {iqm}.")
    else:
        verdict = "inconclusive"
        text = (f"Inconclusive: removing every bias costs significant accuracy ({rule}) in {len(needed)} of "
                f"{len(cases)} configuration(s), and no configuration shows a drop significantly below "
                f"{100 * MIN_DROP:g} pp: {details}; {iqm}.")
    return Claim.of("bias_needed", verdict, text, evidence, NEEDED_STATEMENT)


def bias_helps_under_shift(configs: list[ConfigResult]) -> Claim:
    """With-bias significantly beats no-bias under the strongest level of every shift, in every configuration."""
    cases = [(f"{cfg.name} {s.label}", cfg, s) for cfg in configs for s in cfg.shift_comparisons
             if s.comparison.a == FULL and s.comparison.b == NONE]
    evidence: dict[str, Any] = {"cases": len(cases)}
    if not cases:
        return Claim.of("bias_helps_under_shift", "not measured",
                        f"Not measured: no shifted test data compared {FULL} with {NONE}.", evidence, SHIFT_STATEMENT)
    helps = [w for w, _, s in cases if s.comparison.verdict == VERDICTS[0]]
    hurts = [w for w, _, s in cases if s.comparison.verdict == VERDICTS[1]]
    equal = [w for w, _, s in cases if s.comparison.verdict == VERDICTS[2]]
    first = cases[0][2].comparison
    evidence.update({"alpha": first.alpha, "margin": first.margin, "helps": len(helps), "hurts": len(hurts),
                     "equivalent": len(equal), "helps_in": helps, "hurts_in": hurts, "equivalent_in": equal})
    iqm = _iqm(evidence, [_diffs(cfg, s.comparison, s.kind, s.index) for _, cfg, s in cases], first.confidence)
    details = "; ".join(_brief(w, s.comparison) for w, _, s in cases)
    counts = (f"significantly more accurate in {len(helps)} of {len(cases)} cases, significantly less accurate in "
              f"{len(hurts)}, equivalent within ±{100 * first.margin:g} pp in {len(equal)}")
    if len(helps) == len(cases):
        verdict = "holds"
        text = f"Under the strongest shift of each kind, {FULL} is significantly more accurate in all {len(cases)} cases: {details}; {iqm}."
    elif hurts or equal:
        verdict = "refuted"
        text = f"Refuted: under the strongest shift of each kind, {FULL} is {counts}: {details}; {iqm}."
    else:
        verdict = "inconclusive"
        text = f"Inconclusive: under the strongest shift of each kind, {FULL} is {counts}: {details}; {iqm}."
    return Claim.of("bias_helps_under_shift", verdict, text, evidence, SHIFT_STATEMENT)


def ablate_claims(configs: list[ConfigResult]) -> list[Claim]:
    """Every claim of an ablation: the two aggregates first, then per configuration and per shift."""
    out = [bias_needed(configs), bias_helps_under_shift(configs)]
    for cfg in configs:
        out += [comparison_claim(cfg, c) for c in cfg.comparisons]
        for s in cfg.shift_comparisons:
            index = s.index if s.index >= 0 else len(cfg.shift_levels[s.kind]) - 1
            out.append(shift_claim(cfg, s.kind, s.label, index, s.comparison))
    return out
