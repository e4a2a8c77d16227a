"""The census's conclusions, each computed from the records with its evidence."""

from __future__ import annotations

from ...results import Claim
from ...results.census import CensusModel, CensusResult

__all__ = ["TARGET_AUDITED", "census_claims"]

#: How many model types the census should audit (issue 21).
TARGET_AUDITED = 150

#: Most model types a claim's text names.
_NAMED = 8


def _names(models: list[CensusModel]) -> str:
    names = [m.model_type for m in models]
    return ", ".join(names[:_NAMED]) + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "") or "none"


def _pct(a: int, b: int) -> float:
    return 100.0 * a / b if b else 0.0


def _coverage(res: CensusResult) -> Claim:
    t = res.timing()
    ev = {"audited": len(res.audited), "types": len(res.models), "available": res.available,
          "failed": len(res.failed), "target": TARGET_AUDITED, "total_s": round(res.seconds, 1),
          "mean_s": round(t["mean_s"] or 0.0, 2), "jobs": res.jobs, "limited": bool(res.params.get("only"))}
    holds = None if ev["limited"] else ev["audited"] >= TARGET_AUDITED
    return Claim.decide("coverage", holds, ev,
                        statement="the census audits at least {target} model types",
                        true="{audited} of {available} model types audited ({failed} listed with a reason), in "
                             "{total_s} s ({mean_s} s per type, {jobs} at a time)",
                        false="only {audited} of {available} model types audited ({failed} listed with a reason), "
                              "in {total_s} s",
                        unknown="{audited} of the {types} model types asked for audited (a limited run: the target "
                                "of {target} is measured on the full census), in {total_s} s")


def _ground_truth(res: CensusResult) -> list[Claim]:
    rows = [(m, f) for m in res.audited for f in m.findings]
    reached = [(m, f) for m, f in rows if f.reached]
    checked = [(m, f) for m, f in reached if f.verified is not None]
    false_red = [(m, f) for m, f in checked if f.status == "redundant" and not f.verified]
    missed = [(m, f) for m, f in checked if f.status != "redundant" and not f.verified]
    ev = {"checked": len(checked), "kinds": len(reached), "redundant": sum(f.status == "redundant" for _, f in checked),
          "false_redundant": len(false_red), "unreached": len(rows) - len(reached),
          "false_examples": "; ".join(f"{m.model_type}: {f.label}" for m, f in false_red[:4]) or "none"}
    sound = Claim.decide("no_false_redundant", None if not checked else not false_red, ev,
                         statement="no bias the census calls redundant moves the output when perturbed",
                         true="all {redundant} redundant kinds of bias left the output unchanged when perturbed "
                              "(float64, training mode); {checked} of {kinds} kinds the example inputs reach were "
                              "checked",
                         false="{false_redundant} kinds of bias called redundant move the output when perturbed: "
                               "{false_examples}",
                         unknown="no status was checked by perturbation")
    types_missed = sorted({m.model_type for m, _ in missed})
    ev2 = {"missed": len(missed), "types_missed": len(types_missed), "checked": len(checked),
           "examples": "; ".join(f"{m.model_type}: {f.label} ({f.reason})" for m, f in missed[:3]) or "none",
           "not_analysed": sum(f.not_analysed for _, f in missed)}
    complete = Claim.decide("none_missed", None if not checked else not missed, ev2,
                            statement="every bias whose perturbation leaves the output unchanged is found redundant",
                            true="no bias that does nothing was missed ({checked} kinds checked)",
                            false="{missed} of {checked} kinds of bias checked, in {types_missed} model types, do "
                                  "nothing when perturbed but are not called redundant ({not_analysed} of them not "
                                  "analysed: no rule covers an op on their path), e.g. {examples}",
                            unknown="no status was checked by perturbation")
    return [sound, complete]


def _key_rows(m: CensusModel):
    return [f for f in m.findings if f.key_bias and f.reached]


def _softmax_key(res: CensusResult) -> Claim:
    with_key = [m for m in res.audited if _key_rows(m)]
    cancelled = [m for m in with_key if any(f.status == "redundant" and f.verified for f in _key_rows(m))]
    ev = {"types": len(cancelled), "with_key_bias": len(with_key), "audited": len(res.audited),
          "examples": _names(cancelled),
          "default_params": sum(f.default_params for m in cancelled for f in _key_rows(m) if f.status == "redundant")}
    return Claim.decide("softmax_cancels_key_bias", (len(cancelled) > 0) if with_key else None, ev,
                        statement="softmax cancels the attention key bias in some of today's architectures",
                        true="softmax cancels the key bias in {types} of the {with_key_bias} model types that have "
                             "one ({default_params:,} values at default sizes, confirmed by perturbation): {examples}",
                        false="in none of the {with_key_bias} model types with a key bias does softmax cancel it",
                        unknown="no audited model type has an attention key bias")


def _rope_key(res: CensusResult) -> list[Claim]:
    """Key biases in attention with rotary embeddings: kept (active, the output moves) or cancelled."""
    rope = [(m, f) for m in res.audited for f in _key_rows(m) if f.rotary]
    kept = [(m, f) for m, f in rope if f.status != "redundant" and f.verified is not False]
    cancelled = [(m, f) for m, f in rope if (m, f) not in kept]
    kept_types = sorted({m.model_type for m, _ in kept})
    ev = {"types": len({m.model_type for m, _ in rope}), "kinds": len(rope), "kept": len(kept),
          "kept_types": len(kept_types), "cancelled": len(cancelled),
          "examples": ", ".join(kept_types[:_NAMED]) + (f" and {len(kept_types) - _NAMED} more"
                                                       if len(kept_types) > _NAMED else ""),
          "exceptions": "; ".join(f"{m.model_type}: {f.label} ({f.reason})" for m, f in cancelled[:4]) or "none",
          "default_params": sum(f.default_params for _, f in kept),
          "confirmed": sum(bool(f.verified) for _, f in kept)}
    general = Claim.decide("rope_keeps_key_bias", (not cancelled) if rope else None, ev,
                           statement="next to rotary position embeddings the key bias is never cancelled",
                           true="all {kinds} key biases next to rotary embeddings, in {types} model types, are active "
                                "({confirmed} of them confirmed by perturbation, the rest not checkable; "
                                "{default_params:,} values at default sizes): RoPE rotates the bias by position, so "
                                "softmax does not remove it; {examples}",
                           false="{cancelled} of {kinds} key biases next to rotary embeddings are cancelled after all: "
                                 "{exceptions}",
                           unknown="no audited model type has a key bias next to rotary embeddings")
    qwen2 = next((m for m in res.audited if m.model_type == "qwen2"), None)
    rows = _key_rows(qwen2) if qwen2 is not None else []
    ev2 = {"audited": qwen2 is not None, "kinds": len(rows), "rotary": all(f.rotary for f in rows) if rows else None,
           "statuses": ", ".join(sorted({f.status for f in rows})) or "none",
           "moves": max((f.moves or 0.0 for f in rows), default=0.0),
           "default_params": sum(f.default_params for f in rows),
           "param": rows[0].param if rows else "none"}
    holds = None if not rows else all(f.status == "active" and f.verified and f.rotary for f in rows)
    q = Claim.decide("qwen2_key_bias_kept", holds, ev2,
                     statement="Qwen2 keeps a key bias next to RoPE, where softmax does NOT cancel it",
                     true="Qwen2's key bias ({param}, {default_params:,} values at the default size) is {statuses} "
                          "next to RoPE, and perturbing it moves the output (by {moves:.3g} relative)",
                     false="Qwen2's key bias ({param}) is {statuses}: the census does not find it kept next to RoPE",
                     unknown="Qwen2 was not audited in this run")
    return [general, q]


def _share(res: CensusResult, status: str) -> Claim:
    tot = res.totals()
    with_status = [m for m in res.audited if m.count_by_status()[status] > 0]
    ev = {"status": status, "types": len(with_status), "audited": len(res.audited),
          "params": tot[status]["default_params"], "bias_params": tot["default_bias_params"],
          "pct": round(_pct(tot[status]["default_params"], tot["default_bias_params"]), 2),
          "examples": _names(sorted(with_status, key=lambda m: -m.default_by_status()[status]))}
    return Claim.decide(f"{status}_biases", (ev["params"] > 0) if res.audited else None, ev,
                        statement=f"today's architectures carry {status} biases",
                        true="{types} of {audited} audited model types have {status} biases: {params:,} values at "
                             "default sizes, {pct}% of their {bias_params:,} bias values; the most in {examples}",
                        false="none of the {audited} audited model types has a {status} bias",
                        unknown="no model type was audited")


def census_claims(res: CensusResult) -> list[Claim]:
    """The census's claims: coverage, agreement with the perturbation ground truth, the key bias next
    to softmax and next to RoPE, and the share of redundant and foldable bias values."""
    return [_coverage(res), *_ground_truth(res), _softmax_key(res), *_rope_key(res), _share(res, "redundant"),
            _share(res, "foldable"), _unreached(res)]


def _unreached(res: CensusResult) -> Claim:
    tot = res.totals()["unreached"]
    ev = {"kinds": tot["kinds"], "types": tot["types"], "params": tot["default_params"],
          "examples": _names([m for m in res.audited if any(not f.reached for f in m.findings)])}
    return Claim.decide("all_reached", (tot["kinds"] == 0) if res.audited else None, ev,
                        statement="the example inputs reach every bias of the audited model types",
                        true="the example inputs reach every bias",
                        false="{kinds} kinds of bias in {types} model types ({params:,} values at default sizes) are "
                              "never reached by the example input (a tower the input does not use): they are left "
                              "out of the counts above; {examples}",
                        unknown="no model type was audited")
