"""Activation functions and the threshold the bias sets.

For a unit ``a = φ(w·x + b)`` the pre-activation crosses zero where ``w·x = −b``: a ReLU
fires only when the weighted sum exceeds ``−b``, and for any activation φ the bias
shifts the curve along its input axis by ``−b/w``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..infra.io import BiaslabError

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
    "active_region",
    "polygon_area",
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


def active_region(w: tuple[float, float], b: float, half: float) -> tuple[np.ndarray, np.ndarray]:
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


def polygon_area(corners: np.ndarray) -> float:
    """Shoelace formula."""
    if len(corners) < 3:
        return 0.0
    x, y = corners[:, 0], corners[:, 1]
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))
