"""Activation functions and the threshold the bias sets.

For a unit ``a = φ(w·x + b)`` the pre-activation crosses zero where ``w·x = −b``: a ReLU
fires only when the weighted sum exceeds ``−b``, and for any activation φ the bias
shifts the curve along its input axis by ``−b/w``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..infra.io import BiaslabError
from ..results import Claim
from ..results.relu import PlaneRegion, ReluResult, Threshold
from ..infra.validate import check_choice, finite_number

__all__ = [
    "ACTIVATIONS",
    "activate",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "gelu",
    "identity",
    "threshold",
    "MAX_BIASES",
    "MAX_ABS_PARAMETER",
    "MIN_ABS_WEIGHT",
    "MAX_ABS_X",
    "MIN_X_SPAN",
    "GRID_POINTS",
    "relu_claims",
    "run_relu",
]


def relu(z: np.ndarray) -> np.ndarray:
    """max(z, 0)."""
    return np.maximum(z, 0)


def leaky_relu(z: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """z for z > 0, ``negative_slope``·z otherwise (PyTorch's default slope 0.01)."""
    return np.where(z > 0, z, negative_slope * z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^−z), computed without overflow."""
    z = np.asarray(z, dtype=np.result_type(z, np.float32))
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def tanh(z: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(z)


def gelu(z: np.ndarray) -> np.ndarray:
    """Exact GELU, z·Φ(z), as ``torch.nn.functional.gelu`` (approximate='none')."""
    from scipy.special import erf

    z = np.asarray(z)
    return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))


def identity(z: np.ndarray) -> np.ndarray:
    """No activation."""
    return z


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "gelu": gelu,
    "identity": identity,
}


def activate(z: np.ndarray, name: str = "relu") -> np.ndarray:
    """Apply the activation called ``name`` (relu, leaky_relu, sigmoid, tanh, gelu, identity)."""
    try:
        fn = ACTIVATIONS[name]
    except KeyError:
        raise BiaslabError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
    return fn(z)


def threshold(w: float, b: float) -> float | None:
    """The input ``x`` at which ``w·x + b = 0``, i.e. ``−b/w``; None when ``w == 0`` (no crossing)."""
    return None if w == 0 else -b / w + 0.0  # + 0.0 turns −0.0 into 0.0


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
#: Number of weighted sums w·x on which the threshold claims are checked (plus each −b itself).
GRID_POINTS = 100_001
#: Points of each stored activation curve.
CURVE_POINTS = 801


def _active_when(w: float, b: float) -> str:
    t = threshold(w, b)
    if t is None:
        return "always" if b > 0 else "never"
    return f"x {'>' if w > 0 else '<'} {t:g}"


def _active_region(w: tuple[float, float], b: float, half: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of the square [−half, half]² where w1·x1 + w2·x2 + b > 0, and its boundary.

    The square clipped by one half-plane (Sutherland–Hodgman): keep the corners inside, add
    the points where the boundary line crosses an edge. Returns the (k, 2) corners of the
    active part and the (0 or 2, 2) ends of the boundary segment inside the square.
    """
    square = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    z = square @ np.asarray(w) + b
    corners, crossings = [], []
    for k in range(4):
        p, zp, q, zq = square[k], z[k], square[(k + 1) % 4], z[(k + 1) % 4]
        if zp > 0:
            corners.append(p)
        if (zp > 0) != (zq > 0):
            crossings.append(p + (q - p) * (zp / (zp - zq)))
            corners.append(crossings[-1])
    return np.array(corners).reshape(-1, 2), np.array(crossings).reshape(-1, 2)


def _polygon_area(corners: np.ndarray) -> float:
    """Shoelace formula."""
    if len(corners) < 3:
        return 0.0
    x, y = corners[:, 0], corners[:, 1]
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def _weighted_sums(w: float, biases: list[float], x_range: tuple[float, float]) -> np.ndarray:
    """A dense grid of weighted sums w·x over ``x_range``, plus each threshold value −b exactly."""
    grid = w * np.linspace(x_range[0], x_range[1], GRID_POINTS)
    return np.concatenate([grid, [-b + 0.0 for b in biases]])


def _fmt_biases(biases: list[float]) -> str:
    return ", ".join(f"{b:g}" for b in biases)


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


def _check_relu_inputs(w: float, biases: Sequence[float], activation: str, plane_w: tuple[float, float],
                       x_range: tuple[float, float] | None) -> tuple[float, list[float], tuple[float, float]]:
    """Every input checked (:mod:`biaslab.infra.validate`) before anything is computed; −0.0 becomes 0.0."""
    check_choice("activation", activation, list(ACTIVATIONS))
    if not biases:
        raise BiaslabError("give at least one bias value (--b)")
    if len(biases) > MAX_BIASES:
        raise BiaslabError(f"{len(biases)} bias values given; at most {MAX_BIASES} (each is a curve and a panel)")
    bound = (-MAX_ABS_PARAMETER, MAX_ABS_PARAMETER)
    w = finite_number("--w", w, *bound) + 0.0
    if w != 0 and abs(w) < MIN_ABS_WEIGHT:
        raise BiaslabError(f"--w must be 0 or |w| ≥ {MIN_ABS_WEIGHT:g} (the threshold −b/w must stay finite), "
                           f"got {w:g}")
    biases = [finite_number("--b", b, *bound) + 0.0 for b in biases]
    if len(plane_w) != 2:
        raise BiaslabError(f"--plane-w needs two numbers w1,w2 (got {len(plane_w)})")
    pw = (finite_number("--plane-w", plane_w[0], *bound) + 0.0, finite_number("--plane-w", plane_w[1], *bound) + 0.0)
    if math.hypot(*pw) < MIN_ABS_WEIGHT:
        raise BiaslabError(f"--plane-w must not be (almost) 0,0: ‖(w1, w2)‖ must be ≥ {MIN_ABS_WEIGHT:g} "
                           "or the 2-D unit ignores its input")
    if x_range is not None:
        if len(x_range) != 2:
            raise BiaslabError(f"--x-range needs two numbers LO,HI (got {len(x_range)})")
        lo, hi = (finite_number("--x-range", v, -MAX_ABS_X, MAX_ABS_X) for v in x_range)
        if not hi - lo >= MIN_X_SPAN:
            raise BiaslabError(f"--x-range must be increasing, HI − LO ≥ {MIN_X_SPAN:g} (got {lo:g}, {hi:g})")
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
        corners, boundary = _active_region(plane_w, b, half)
        plane.append(PlaneRegion(b, abs(b) / norm, b > 0, _polygon_area(corners) / (2 * half) ** 2, corners,
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
