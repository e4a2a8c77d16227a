"""The relu result: where ``activation(w·x + b)`` switches, for several biases, in 1-D and in 2-D."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .base import Claim, Result

__all__ = ["Threshold", "PlaneRegion", "ReluResult"]


@dataclass
class Threshold:
    """The 1-D unit ``activation(w·x + b)`` for one bias ``b``.

    ``x = −b/w`` is where the pre-activation crosses 0 (None when ``w = 0``: no crossing);
    ``active_when`` is the side of it where ``w·x + b > 0``: ``"x > t"``, ``"x < t"``, or
    ``"always"`` / ``"never"`` when ``w = 0``.
    """

    b: float
    x: float | None
    active_when: str


@dataclass
class PlaneRegion:
    """The 2-D unit ``activation(w1·x1 + w2·x2 + b)`` on the square ``[−half, half]²`` of the result.

    ``distance_from_origin`` is ``|b| / ‖w‖``, the distance of the boundary line ``w·x = −b``
    from the origin. ``active_polygon`` holds the (k, 2) corners of the part of the square
    where ``w·x + b > 0`` (no rows when there is none), ``active_share`` its share of the
    square's area, ``boundary`` the ends of the line ``w·x = −b`` inside the square (no rows
    when the line misses it).
    """

    b: float
    distance_from_origin: float
    origin_active: bool
    active_share: float
    active_polygon: np.ndarray
    boundary: np.ndarray


@dataclass
class ReluResult(Result):
    """Thresholds of ``activation(w·x + b)`` for each bias, and what a figure needs to draw them.

    ``curves[k]`` is ``activation(w·curve_x + biases[k])``; ``value_at_threshold`` is
    ``activation(0)``, the output where ``w·x = −b``. ``plane`` describes the 2-D unit with
    weights ``plane_w`` on the square ``[−plane_half, plane_half]²``.
    """

    command: ClassVar[str] = "relu"
    activation: str
    w: float
    biases: list[float]
    x_range: tuple[float, float]
    thresholds: list[Threshold]
    value_at_threshold: float
    curve_x: np.ndarray
    curves: np.ndarray
    plane_w: tuple[float, float]
    plane_half: float
    plane: list[PlaneRegion]
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
