"""Distribution shifts of test inputs: brightness, contrast and noise (no retraining).

Each shift has a grid of levels whose FIRST entry leaves the data unchanged (the identity:
brightness 0, contrast ×1, noise σ = 0). The ablation's shift verdicts are taken at the
STRONGEST level, the one furthest from the identity (:func:`strength`), whatever order the levels
were given in; equally strong levels (brightness −2 and +2) each get a verdict.
"""

from __future__ import annotations

import numpy as np

from ...infra.io import BiaslabError

__all__ = ["SHIFTS", "MAX_LEVELS", "apply_shift", "shift_label", "check_shifts", "strength", "strongest"]


#: Default levels, in the units the model sees (standardised inputs); first = none, last = strongest.
SHIFTS = {
    "brightness": (0.0, 0.5, 1.0, 1.5, 2.0),
    "contrast": (1.0, 0.75, 0.5, 0.25, 0.1),
    "noise": (0.0, 0.25, 0.5, 0.75, 1.0),
}
#: At most this many levels per shift (each level is one pass over the test set per model).
MAX_LEVELS = 20


def apply_shift(X: np.ndarray, kind: str, strength: float, seed: int = 0) -> np.ndarray:
    """Shift test inputs ``X`` (images (N, C, H, W) or tables (N, F)).

    ``brightness`` adds ``strength`` to every input; ``contrast`` scales the deviation from
    the mean by ``strength`` (each image's own mean; each column's mean for tables);
    ``noise`` adds Gaussian noise of standard deviation ``strength`` (deterministic for ``seed``).
    """
    X = np.asarray(X, dtype=np.float32)
    if kind == "brightness":
        return X + np.float32(strength)
    if kind == "contrast":
        axes = tuple(range(1, X.ndim)) if X.ndim == 4 else (0,)
        mean = X.mean(axis=axes, keepdims=True)
        return mean + np.float32(strength) * (X - mean)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return X + rng.normal(0.0, strength, size=X.shape).astype(np.float32)
    raise BiaslabError(f"unknown shift {kind!r}; choose one of {', '.join(SHIFTS)}")


def strength(kind: str, level: float) -> float:
    """How far ``level`` is from the identity: ``|level|`` for brightness and noise, ``|ln level|``
    for contrast (×0.1 is further from ×1 than ×0.5; the scale is multiplicative)."""
    if kind == "contrast":
        return abs(float(np.log(level)))
    return abs(float(level))


def strongest(kind: str, levels) -> list[int]:
    """Indices of the strongest levels of a grid (several when equally strong, e.g. brightness ±2),
    in grid order."""
    s = [strength(kind, v) for v in levels]
    top = max(s)
    return [i for i, v in enumerate(s) if v >= top - 1e-12 * max(1.0, top)]


def shift_label(kind: str, level: float) -> str:
    """``brightness +2``, ``contrast ×0.1``, ``noise σ = 1``."""
    if kind == "brightness":
        return f"brightness {level:+g}"
    if kind == "contrast":
        return f"contrast ×{level:g}"
    return f"noise σ = {level:g}"


def check_shifts(kinds: list[str] | None, levels: list[float] | None) -> dict[str, tuple[float, ...]]:
    """The shift grid to run: ``kinds`` (default: all) with their default levels, or ``levels``.

    ``levels`` (one shift only) are the strengths after "none", in any order; the grid starts
    with the unshifted level followed by the levels as given (the verdict is taken at the
    strongest, :func:`strongest`). Raises :class:`BiaslabError` for an
    unknown kind, a non-finite or out-of-range level.
    """
    kinds = list(SHIFTS) if kinds is None else kinds
    for k in kinds:
        if k not in SHIFTS:
            raise BiaslabError(f"unknown shift {k!r} in `shifts`; choose from {', '.join(SHIFTS)}")
    if len(set(kinds)) != len(kinds):
        raise BiaslabError(f"`shifts` lists a shift twice ({', '.join(kinds)})")
    if levels is None:
        return {k: SHIFTS[k] for k in kinds}
    if len(kinds) != 1:
        raise BiaslabError("`shift_levels` needs exactly one `shifts` (levels differ in meaning per shift)")
    kind = kinds[0]
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise BiaslabError(f"`shift_levels` takes 1 to {MAX_LEVELS} levels (got {len(levels)})")
    for v in levels:
        ok = np.isfinite(v) and (0 < v <= 1 if kind == "contrast" else abs(v) <= 100 if kind == "brightness"
                                 else 0 < v <= 100)
        if not ok:
            rule = {"contrast": "in (0, 1]", "brightness": "finite, |level| <= 100", "noise": "in (0, 100]"}[kind]
            raise BiaslabError(f"`shift_levels` {v:g} is out of range for {kind}: levels must be {rule}")
    return {kind: (SHIFTS[kind][0], *(float(v) for v in levels))}
