"""``biaslab relu``: the threshold each bias sets, for a 1-D unit ``φ(w·x + b)`` and a 2-D unit
``φ(w1·x1 + w2·x2 + b)`` (its active half-plane), with the claims of :mod:`.claims`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ...infra.io import BiaslabError
from ...infra.validate import check_choice, finite_number
from ...math.activations import ACTIVATIONS, activate, active_region, polygon_area, threshold
from ...results.relu import PlaneRegion, ReluResult, Threshold
from .claims import relu_claims

__all__ = ["run_relu", "MAX_BIASES", "MAX_ABS_PARAMETER", "MIN_ABS_WEIGHT", "MAX_ABS_X", "MIN_X_SPAN"]

#: At most this many biases (``relu --b``): each is a curve and a panel of the figures.
MAX_BIASES = 50
#: |w|, |b|, |w1| and |w2| may be at most this large.
MAX_ABS_PARAMETER = 1e6
#: A non-zero weight w, and the norm of (w1, w2), must be at least this large (so that the
#: threshold −b/w stays a finite, plottable number).
MIN_ABS_WEIGHT = 1e-6
#: The ends of ``--x-range`` may be at most this large in absolute value ...
MAX_ABS_X = 1e12
#: ... and at least this far apart.
MIN_X_SPAN = 1e-6
#: Points of each stored activation curve.
CURVE_POINTS = 801


def _active_when(w: float, b: float) -> str:
    t = threshold(w, b)
    if t is None:
        return "always" if b > 0 else "never"
    return f"x {'>' if w > 0 else '<'} {t:g}"


def _check_relu_inputs(w: float, biases: Sequence[float], activation: str, plane_w: tuple[float, float],
                       x_range: tuple[float, float] | None) -> tuple[float, list[float], tuple[float, float]]:
    """Every input checked (:mod:`biaslab.infra.validate`) before anything is computed; −0.0 becomes 0.0."""
    check_choice("activation", activation, list(ACTIVATIONS))
    if not biases:
        raise BiaslabError("give at least one bias value (`biases`)")
    if len(biases) > MAX_BIASES:
        raise BiaslabError(f"{len(biases)} bias values given; at most {MAX_BIASES} (each is a curve and a panel)")
    bound = (-MAX_ABS_PARAMETER, MAX_ABS_PARAMETER)
    w = finite_number("w", w, *bound) + 0.0
    if w != 0 and abs(w) < MIN_ABS_WEIGHT:
        raise BiaslabError(f"`w` must be 0 or |w| ≥ {MIN_ABS_WEIGHT:g} (the threshold −b/w must stay finite), "
                           f"got {w:g}")
    biases = [finite_number("biases", b, *bound) + 0.0 for b in biases]
    if len(plane_w) != 2:
        raise BiaslabError(f"`plane_w` needs two numbers w1,w2 (got {len(plane_w)})")
    pw = (finite_number("plane_w", plane_w[0], *bound) + 0.0, finite_number("plane_w", plane_w[1], *bound) + 0.0)
    if math.hypot(*pw) < MIN_ABS_WEIGHT:
        raise BiaslabError(f"`plane_w` must not be (almost) 0,0: ‖(w1, w2)‖ must be ≥ {MIN_ABS_WEIGHT:g} "
                           "or the 2-D unit ignores its input")
    if x_range is not None:
        if len(x_range) != 2:
            raise BiaslabError(f"`x_range` needs two numbers LO,HI (got {len(x_range)})")
        lo, hi = (finite_number("x_range", v, -MAX_ABS_X, MAX_ABS_X) for v in x_range)
        if not hi - lo >= MIN_X_SPAN:
            raise BiaslabError(f"`x_range` must be increasing, HI − LO ≥ {MIN_X_SPAN:g} (got {lo:g}, {hi:g})")
    return w, biases, pw


def run_relu(
    w: float = 1.0,
    biases: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0),
    activation: str = "relu",
    plane_w: tuple[float, float] = (1.0, 1.0),
    x_range: tuple[float, float] | None = None,
    seed: int = 0,
) -> ReluResult:
    """Thresholds of ``activation(w·x + b)`` for each ``b`` in ``biases``, and the claims they support.

    Parameters
    ----------
    w : weight of the 1-D unit; 0 or ``MIN_ABS_WEIGHT ≤ |w| ≤ MAX_ABS_PARAMETER``.
    biases : 1 to :data:`MAX_BIASES` finite values, ``|b| ≤ MAX_ABS_PARAMETER``.
    activation : one of :data:`ACTIVATIONS`.
    plane_w : weights (w1, w2) of the 2-D unit, not (almost) zero.
    x_range : plotted inputs (LO, HI); default: ±3, widened to 1.5× the farthest threshold.
    seed : recorded only (nothing here is random).

    Returns
    -------
    A :class:`~biaslab.results.relu.ReluResult` with the thresholds, the curves, the active
    regions of the 2-D unit and the claims of :func:`relu_claims`.
    """
    w, biases, plane_w = _check_relu_inputs(w, biases, activation, plane_w, x_range)
    if x_range is None:
        reach = [abs(t) for b in biases if (t := threshold(w, b)) is not None]
        half = max([3.0, *(1.5 * t for t in reach)])
        x_range = (-half, half)
    x_range = (float(x_range[0]), float(x_range[1]))
    curve_x = np.linspace(*x_range, CURVE_POINTS)
    half = max(abs(x_range[0]), abs(x_range[1]))
    norm = math.hypot(*plane_w)
    plane = []
    for b in biases:
        corners, boundary = active_region(plane_w, b, half)
        plane.append(PlaneRegion(b, abs(b) / norm, b > 0, polygon_area(corners) / (2 * half) ** 2, corners,
                                 boundary))
    return ReluResult(
        activation=activation,
        w=w,
        biases=biases,
        x_range=x_range,
        thresholds=[Threshold(b, threshold(w, b), _active_when(w, b)) for b in biases],
        value_at_threshold=float(activate(np.zeros(1), activation)[0]),
        curve_x=curve_x,
        curves=np.stack([activate(w * curve_x + b, activation) for b in biases]),
        plane_w=plane_w,
        plane_half=half,
        plane=plane,
        params={"w": w, "biases": biases, "activation": activation, "plane_w": list(plane_w),
                "x_range": list(x_range), "seed": seed},
        claims=relu_claims(activation, w, biases, x_range, plane_w),
    )
