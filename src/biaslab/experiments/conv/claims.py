"""The conv command's conclusions, computed from the full-resolution maps: a unit fires exactly where
Σ(input * kernel) > −b, the active share rises with the bias, the maps equal PyTorch's, and a pixel's
breakdown equals the feature map there."""

from __future__ import annotations

import numpy as np

from ...infra.numfmt import fmt_num
from ...results import Claim
from ...results.conv import Explanation, KernelMap, Sweep, TorchCheck

__all__ = ["conv_claims", "TORCH_TOLERANCE", "EXPLAIN_TOLERANCE"]

#: The maps agree with ``torch.nn.functional.conv2d`` when no value differs by more than this (float64).
TORCH_TOLERANCE = 1e-10
#: An explained output equals the full feature map when they differ by at most this.
EXPLAIN_TOLERANCE = 1e-12


def _pct(x: float) -> str:
    return f"{x:.1%}"  # as the claim templates write shares


def conv_claims(maps: list[KernelMap], sweep: Sweep, activation: str, mismatches: int, units: int,
                check: TorchCheck | None, explanation: Explanation | None = None) -> list[Claim]:
    """Claims computed from the full-resolution maps.

    - ``fires_where_sum_exceeds_minus_b``: activation(Σ + b) > 0 exactly where Σ > −b, at every
      unit of every map and bias (``mismatches`` of ``units`` disagree); not measured for
      sigmoid, which is positive everywhere.
    - ``active_share_rises_with_bias:<kernel>``: the share of active units never falls as the
      bias grows over the sweep, and rises from its first to its last bias.
    - ``matches_torch``: the maps equal torch.nn.functional.conv2d's to ``TORCH_TOLERANCE``;
      not measured when the check was not run.
    - ``explain_matches_feature_map`` (with an explanation): the output computed from the
      patch equals the full feature map there, to ``EXPLAIN_TOLERANCE``, for every kernel and bias.
    """
    claims = [_fires_claim(activation, mismatches, units)]
    claims += [_rises_claim(m, sweep) for m in maps]
    claims.append(_torch_claim(check))
    if explanation is not None:
        claims.append(_explain_claim(explanation))
    return claims


def _fires_claim(activation: str, mismatches: int, units: int) -> Claim:
    fires = {"activation": activation} if activation == "sigmoid" else \
        {"activation": activation, "units": units, "mismatches": mismatches}
    return Claim.decide(
        "fires_where_sum_exceeds_minus_b", None if activation == "sigmoid" else mismatches == 0, fires,
        statement="A unit fires exactly where Σ(input * kernel) > −b",
        true="Each unit of every map fires ({activation}(Σ + b) > 0) exactly where Σ(input * kernel) > −b: "
             "{units} units checked, {mismatches} mismatches.",
        false="{mismatches} of {units} units do not follow 'fires exactly where Σ(input * kernel) > −b'.",
        unknown="Not measured: sigmoid is positive everywhere, so no unit is ever silent; its midpoint "
                "sigmoid(0) = 0.5 sits at Σ = −b.",
    )


def _rises_claim(m: KernelMap, sweep: Sweep) -> Claim:
    curve = sweep.kernels[m.name].fraction_active
    drop = float(max(0.0, -float(np.min(np.diff(curve))))) if curve.size > 1 else 0.0
    ordered = sorted(m.biases, key=lambda s: s.bias)
    shown = ", ".join(f"{_pct(s.fraction_active)} at b = {fmt_num(s.bias, 6)}" for s in ordered)
    evidence = {"kernel": m.name, "sweep_points": int(curve.size), "sweep_min_bias": float(sweep.bias[0]),
                "sweep_max_bias": float(sweep.bias[-1]), "share_at_min_bias": float(curve[0]),
                "share_at_max_bias": float(curve[-1]), "largest_drop": drop, "at_biases_shown": shown,
                "biases": [s.bias for s in m.biases], "shares": [s.fraction_active for s in m.biases]}
    return Claim.decide(
        f"active_share_rises_with_bias:{m.name}", drop == 0 and curve[-1] > curve[0], evidence,
        statement="{kernel}: the share of active units rises with the bias",
        true="{kernel}: the share of active units rises with the bias and never falls, from "
             "{share_at_min_bias:.1%} at b = {sweep_min_bias:.3g} to {share_at_max_bias:.1%} at "
             "b = {sweep_max_bias:.3g} ({sweep_points} biases); at the biases shown: {at_biases_shown}.",
        false="{kernel}: the share of active units does not rise steadily with the bias (largest fall "
              "{largest_drop:.1%}; {share_at_min_bias:.1%} at b = {sweep_min_bias:.3g}, "
              "{share_at_max_bias:.1%} at b = {sweep_max_bias:.3g}).",
    )


def _torch_claim(check: TorchCheck | None) -> Claim:
    if check is None:
        return Claim("matches_torch", "Not measured: the maps were not compared with "
                     "torch.nn.functional.conv2d (`biaslab conv` compares them unless --no-check-torch).",
                     None, {}, "The NumPy maps equal torch.nn.functional.conv2d's")
    evidence = {"reference": check.reference, "max_abs_diff": check.max_abs_diff, "tolerance": check.tolerance}
    return Claim.decide(
        "matches_torch", check.max_abs_diff <= check.tolerance, evidence,
        statement="The NumPy maps equal torch.nn.functional.conv2d's (max |difference| ≤ {tolerance:g})",
        true="The NumPy maps equal {reference}'s: max |difference| {max_abs_diff:.2g} ≤ {tolerance:g}.",
        false="The NumPy maps differ from {reference}'s by up to {max_abs_diff:.2g} > {tolerance:g}.",
    )


def _explain_claim(explanation: Explanation) -> Claim:
    diff = max(abs(b.output - b.feature_map) for k in explanation.kernels for b in k.biases)
    evidence = {"row": explanation.position[0], "col": explanation.position[1], "max_abs_diff": diff,
                "tolerance": EXPLAIN_TOLERANCE, "values": sum(len(k.biases) for k in explanation.kernels)}
    return Claim.decide(
        "explain_matches_feature_map", diff <= EXPLAIN_TOLERANCE, evidence,
        statement="The breakdown of output ({row}, {col}) equals the feature map there",
        true="The breakdown of output ({row}, {col}), patch × kernel summed plus b, equals the full feature map "
             "there: {values} values, max |difference| {max_abs_diff:.2g} ≤ {tolerance:g}.",
        false="The breakdown of output ({row}, {col}) differs from the full feature map by up to "
              "{max_abs_diff:.2g} > {tolerance:g}.",
    )
