"""Distribution shifts of test inputs: brightness, contrast and noise."""

from __future__ import annotations

import numpy as np

from .io import BiaslabError

__all__ = ["SHIFTS", "apply_shift"]


#: Distribution shifts applied to test inputs (in the units the model sees: standardised).
SHIFTS = {
    "brightness": (0.0, 0.5, 1.0, 1.5, 2.0),
    "contrast": (1.0, 0.75, 0.5, 0.25, 0.1),
    "noise": (0.0, 0.25, 0.5, 0.75, 1.0),
}


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
