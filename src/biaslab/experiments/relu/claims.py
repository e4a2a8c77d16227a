"""The relu command's conclusions: where a unit ``φ(w·x + b)`` starts to fire, checked on a dense grid of
weighted sums, against the folk rule "zero when the weighted sum is less than the bias"."""

from __future__ import annotations

import math

import numpy as np

from ...math.activations import activate, relu
from ...infra.numfmt import fmt_num
from ...results import Claim

__all__ = ["relu_claims", "GRID_POINTS"]

#: Number of weighted sums w·x on which the threshold claims are checked (plus each −b itself).
GRID_POINTS = 100_001


def _weighted_sums(w: float, biases: list[float], x_range: tuple[float, float]) -> np.ndarray:
    """A dense grid of weighted sums w·x over ``x_range``, plus each threshold value −b exactly."""
    grid = w * np.linspace(x_range[0], x_range[1], GRID_POINTS)
    return np.concatenate([grid, [-b + 0.0 for b in biases]])


def _fmt_biases(biases: list[float]) -> str:
    return ", ".join(fmt_num(b, 6) for b in biases)


def relu_claims(activation: str, w: float, biases: list[float], x_range: tuple[float, float],
                plane_w: tuple[float, float]) -> list[Claim]:
    """The threshold claims, each checked numerically.

    - ``relu_zero_below_minus_b`` (relu only, else not measured): relu(w·x + b) is 0 exactly
      where the weighted sum w·x is at most −b and positive where it exceeds −b, on
      :data:`GRID_POINTS` weighted sums plus each −b. The evidence also counts how many of
      them the folk rule "zero when the weighted sum is less than the bias" gets wrong.
    - ``crossing_at_minus_b`` (every activation): activation(w·x + b) equals activation(0)
      where w·x = −b, is at least that where w·x > −b and at most that where w·x < −b.
    - ``boundary_through_origin_without_bias``: with b = 0 the 2-D boundary w1·x1 + w2·x2 = −b
      passes through the origin; a bias moves it |b|/‖w‖ away.
    """
    s = _weighted_sums(w, biases, x_range)
    text = _fmt_biases(biases)
    zero = float(activate(np.zeros(1), activation)[0])
    claims = []
    if activation == "relu":
        mismatches = folk = 0
        for b in biases:
            is_zero = relu(s + b) == 0
            mismatches += int(np.count_nonzero(is_zero != (s <= -b)))
            folk += int(np.count_nonzero(is_zero != (s < b)))
        evidence = {"biases": list(biases), "bias_list": text, "grid_points": int(s.size),
                    "checks": int(s.size) * len(biases), "mismatches": mismatches, "folk_mismatches": folk}
    else:
        evidence = {"activation": activation, "biases": list(biases), "bias_list": text}
        mismatches = folk = 0
    folk_note = (' The folk rule "zero when the weighted sum is less than the bias" gets {folk_mismatches} of '
                 'them wrong: the threshold is −b, and at w·x = −b the output is already 0.' if folk else "")
    claims.append(Claim.decide(
        "relu_zero_below_minus_b", None if activation != "relu" else mismatches == 0, evidence,
        statement="relu(w·x + b) is 0 exactly when the weighted sum w·x is at most −b",
        true="A ReLU outputs zero exactly when the weighted sum w·x is at most −b, and a positive value when "
             "it exceeds −b: checked on {grid_points} weighted sums for b = {bias_list} ({checks} checks, "
             "{mismatches} mismatches)." + folk_note,
        false="relu(w·x + b) does not switch exactly at w·x = −b: {mismatches} of {checks} checks disagree "
              "(b = {bias_list}).",
        unknown="Not measured: this run uses {activation}, which does not output zero below its threshold; "
                "run `biaslab relu --activation relu` to check the ReLU rule.",
    ))
    above = below = at = 0
    for b in biases:
        out = activate(s + b, activation)
        above += int(np.count_nonzero(out[s > -b] < zero))
        below += int(np.count_nonzero(out[s < -b] > zero))
        at += int(np.count_nonzero(out[s == -b] != zero))
    crossing = {"activation": activation, "value_at_zero": zero, "biases": list(biases), "bias_list": text,
                "grid_points": int(s.size), "mismatches": above + below + at}
    claims.append(Claim.decide(
        "crossing_at_minus_b", above + below + at == 0, crossing,
        statement="{activation}(w·x + b) crosses {activation}(0) exactly at w·x = −b",
        true="{activation}(w·x + b) equals {activation}(0) = {value_at_zero:g} where the weighted sum w·x is "
             "−b, is at least that where w·x > −b and at most that where w·x < −b: the bias sets the "
             "threshold at w·x = −b (b = {bias_list}; {grid_points} weighted sums each, {mismatches} exceptions).",
        false="{activation}(w·x + b) does not cross {activation}(0) = {value_at_zero:g} at w·x = −b: "
              "{mismatches} exceptions on {grid_points} weighted sums (b = {bias_list}).",
    ))
    norm = math.hypot(*plane_w)
    w1, w2 = plane_w
    plane = {"w1": w1, "w2": w2, "line": f"{w1:g}·x1 {'−' if w2 < 0 else '+'} {abs(w2):g}·x2",
             "distance_at_b0": abs(0.0) / norm,
             "pre_activation_at_origin": plane_w[0] * 0.0 + plane_w[1] * 0.0 + 0.0,
             "max_shift": max(abs(b) for b in biases) / norm}
    claims.append(Claim.decide(
        "boundary_through_origin_without_bias",
        plane["distance_at_b0"] == 0 and plane["pre_activation_at_origin"] == 0, plane,
        statement="Without bias the boundary of a 2-D unit passes through the origin",
        true="Without bias (b = 0) the boundary {line} = 0 of the 2-D unit passes through the "
             "origin (distance {distance_at_b0:g}, pre-activation {pre_activation_at_origin:g} there); a bias b "
             "moves it |b|/‖w‖ away (up to {max_shift:.3g} here), so only with a bias can the unit separate "
             "regions that do not touch the origin.",
        false="The boundary without bias misses the origin by {distance_at_b0:g}.",
    ))
    return claims
