"""Activation functions and the threshold the bias sets.

For a unit ``a = φ(w·x + b)`` the pre-activation crosses zero where ``w·x = −b``: a ReLU
fires only when the weighted sum exceeds ``−b``, and for any activation φ the bias
shifts the curve along its input axis by ``−b/w``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import BiaslabError
from .render.report import Section

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
    "ThresholdResult",
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


def _always(b: float) -> str:
    return "always active (b > 0)" if b > 0 else "never active (b ≤ 0)"


@dataclass
class ThresholdResult:
    """Thresholds of ``φ(w·x + b)`` for several biases, in 1-D and on a 2-D input plane."""

    activation: str
    w: float
    biases: list[float]
    plane_w: tuple[float, float]
    x_range: tuple[float, float]
    params: dict[str, Any] = field(default_factory=dict)
    command: str = "relu"

    def thresholds(self) -> list[dict[str, Any]]:
        out = []
        for b in self.biases:
            t = threshold(self.w, b)
            if t is None:
                side = _always(b)
            else:
                side = "x > " if self.w > 0 else "x < "
                side += f"{t:g}"
            out.append({"b": b, "x": t, "active_when": side})
        return out

    def boundaries(self) -> list[dict[str, Any]]:
        w1, w2 = self.plane_w
        norm = math.hypot(w1, w2)
        return [
            {
                "b": b,
                "line": f"{w1:g}·x1 + {w2:g}·x2 = {-b:g}",
                "distance_from_origin": abs(b) / norm if norm else None,
                "origin_active": b > 0,
            }
            for b in self.biases
        ]

    @property
    def rule(self) -> str:
        return (
            f"{self.activation}(w·x + b) is on the active side of its threshold exactly when the "
            "weighted sum w·x exceeds −b; the bias moves that threshold to x = −b/w."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "w": self.w,
            "biases": self.biases,
            "thresholds": self.thresholds(),
            "rule": self.rule,
            "plane": {"w": list(self.plane_w), "boundaries": self.boundaries()},
            "params": self.params,
            "summary": self.summary(),
        }

    def summary(self) -> str:
        ts = ", ".join(
            f"b={t['b']:g} → {('x=' + format(t['x'], 'g')) if t['x'] is not None else t['active_when']}"
            for t in self.thresholds()
        )
        act = "fires" if self.activation in ("relu", "leaky_relu") else "crosses its midpoint"
        return (
            f"A {self.activation} unit {act} only when the weighted sum w·x exceeds −b: with "
            f"w={self.w:g} the thresholds are {ts}. In two dimensions the boundary "
            "w1·x1 + w2·x2 = −b always passes through the origin without bias (b = 0); a bias "
            "shifts it by |b|/‖w‖, so the unit can separate regions that do not touch the origin."
        )

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        from .render.legacy_plots.activations import plot_plane, plot_thresholds

        return [plot_thresholds(self, out_dir, fmt), plot_plane(self, out_dir, fmt)]

    def section(self, figures: list[Path]) -> Section:
        rows = [{"b": t["b"], "threshold x = −b/w": t["x"], "active when": t["active_when"]} for t in self.thresholds()]
        return Section(f"Bias as the {self.activation} threshold", self.summary(), figures, rows)


def run_relu(
    w: float = 1.0,
    biases: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0),
    activation: str = "relu",
    plane_w: tuple[float, float] = (1.0, 1.0),
    x_range: tuple[float, float] | None = None,
    seed: int = 0,
) -> ThresholdResult:
    """Thresholds of ``activation(w·x + b)`` for each ``b`` in ``biases``."""
    if activation not in ACTIVATIONS:
        raise BiaslabError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    biases = [float(b) for b in biases]
    if not biases:
        raise BiaslabError("give at least one bias value (--b)")
    for name, v in (("w", w), *((f"b={b}", b) for b in biases), ("w1", plane_w[0]), ("w2", plane_w[1])):
        if not math.isfinite(v):
            raise BiaslabError(f"{name} must be a finite number")
    if plane_w == (0.0, 0.0):
        raise BiaslabError("--plane-w must not be 0,0: the 2-D unit would ignore its input")
    if x_range is None:
        ts = [abs(t) for b in biases if (t := threshold(w, b)) is not None]
        half = max([3.0, *(1.5 * t for t in ts)])
        x_range = (-half, half)
    if not x_range[1] > x_range[0]:
        raise BiaslabError(f"--x-range must be increasing (got {x_range[0]}, {x_range[1]})")
    return ThresholdResult(activation, float(w), biases, (float(plane_w[0]), float(plane_w[1])),
                           (float(x_range[0]), float(x_range[1])), params={"seed": seed})
