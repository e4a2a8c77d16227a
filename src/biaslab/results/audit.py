"""The audit result: every bias of one model, its status and why, what it contributes, and the fix.

A bias's status is decided from the model's structure (what its offset passes through), never
from the bias's current values: a bias that happens to be zero is flagged ``zero_now`` beside
its status. Equivalence checks are numerical: a fixed model is compared with the original on a
number of inputs, in training and in eval mode, against a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .base import Claim, Result

__all__ = ["STATUSES", "Finding", "Contribution", "Check", "FixRecord", "AuditResult"]

#: The three verdicts, from "delete it" to "it matters".
STATUSES = ("redundant", "foldable", "active")

#: Reasons that start with this prefix mean: no rule for that op, so the status is a default.
NOT_ANALYSED = "not analysed"



@dataclass
class Finding:
    """One bias parameter (or one part of a packed bias) and the verdict on it.

    ``param`` is the parameter's name; for a part of a packed bias (attention's ``in_proj_bias``)
    ``part`` names it (``query``, ``key``, ``value``) and ``span`` is its ``[start, stop)`` slice.
    ``consumer`` names the layer that decided the verdict (the normalisation that cancels the bias,
    the layer it folds into). ``cancelled_fraction`` is the share of ``‖b‖²`` that following
    normalisations remove when they remove only its mean (LayerNorm, GroupNorm), for the current
    values. ``zero_now`` says the bias is exactly zero today, whatever its status.
    ``verified`` is set by ``--verify``: True when perturbing the bias left the output unchanged.
    ``corrections`` (in memory only) maps each running-mean buffer downstream to the per-channel
    shift that removal subtracts from it; ``fold_value`` (in memory only) is what a ``foldable`` bias
    adds at the input of the layer it folds into.
    """

    module: str
    param: str
    type: str
    shape: tuple[int, ...]
    numel: int
    abs_mean: float
    abs_max: float
    status: str
    reason: str
    traced: bool
    short_reason: str = ""
    consumer: str | None = None
    cancelled_fraction: float | None = None
    feeds_relu: bool = False
    zero_now: bool = False
    part: str | None = None
    span: tuple[int, int] | None = None
    verified: bool | None = None
    corrections: dict[str, np.ndarray] | None = field(default=None, repr=False, metadata={"stored": False})
    fold_value: np.ndarray | None = field(default=None, repr=False, metadata={"stored": False})

    @property
    def label(self) -> str:
        """``param``, or ``param[part]`` for a part of a packed bias."""
        return f"{self.param}[{self.part}]" if self.part else self.param


@dataclass
class Contribution:
    """What one bias parameter contributes on data (model in eval mode).

    ``bias_to_signal = ‖b‖ / ‖W·x‖`` over every output element; ``relu_flips`` the share of ReLU
    on/off decisions the bias changes (None when the layer feeds no ReLU); ``output_change =
    ‖f(x) − f₀(x)‖ / ‖f(x)‖`` with the bias zeroed; ``accuracy_change`` with labels.
    """

    param: str
    module: str
    status: str
    bias_to_signal: float | None
    relu_flips: float | None
    output_change: float
    accuracy_change: float | None = None


@dataclass
class Check:
    """A numerical equivalence check of a fixed model against the original.

    ``what`` was done (``biases removed``, ``folded``), in ``mode`` (train or eval) and ``dtype``,
    on ``n_inputs`` inputs: the largest absolute output difference and that difference relative
    to the largest original output, against ``tolerance``.
    """

    what: str
    mode: str
    dtype: str
    n_inputs: int
    max_abs_diff: float
    max_rel_diff: float
    tolerance: float
    passed: bool | None = None  # decided by the check (max_rel_diff ≤ tolerance); None in older files


@dataclass
class FixRecord:
    """What ``--fix`` wrote: the file, the biases removed, what was folded, the checks it passed.

    ``removed`` lists the redundant biases taken out (a part of a packed bias is zeroed instead);
    ``folded`` lists BatchNorm modules folded into the layer before them, then ``"bias → layer"``
    for every other bias moved into the layer it reaches; ``not_folded`` names each BatchNorm left
    in place and why.
    """

    path: str
    removed: list[str]
    folded: list[str]
    not_folded: list[str]
    fold: bool
    params_before: int
    params_after: int
    checks: list[Check]
    load: str

    @property
    def params_saved(self) -> int:
        return self.params_before - self.params_after


@dataclass
class AuditResult(Result):
    """Every bias of one model: status, reason, optionally contributions on data and a checked fix.

    ``graph`` says where the statuses come from: ``fx`` (the symbolic torch.fx graph), ``recorded``
    (graphs recorded from forward passes on several inputs, for models fx cannot trace) or ``hooks`` (the
    order-based fallback; ``traced`` is False).
    """

    command: ClassVar[str] = "audit"
    target: str
    input_shape: list[int]
    biases: list[Finding]
    total_params: int
    traced: bool
    graph: str = "fx"
    warnings: list[str] = field(default_factory=list)
    data: str | None = None
    n_samples: int = 0
    contributions: list[Contribution] | None = None
    baseline_accuracy: float | None = None
    fix: FixRecord | None = None
    initial_weights: bool = False
    verified: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)

    @property
    def bias_params(self) -> int:
        """Scalars held by bias parameters (a packed bias is the sum of its parts)."""
        return sum(f.numel for f in self.biases)

    @property
    def not_analysed(self) -> int:
        """Biases (or parts) whose status is a cautious default: no rule covers an op on their path."""
        return sum(f.reason.startswith(NOT_ANALYSED) for f in self.biases)

    def to_dict(self) -> dict[str, Any]:
        """The fields, plus the derived totals (``bias_params``, ``bias_share``, ``counts``,
        ``not_analysed``) for readers."""
        share = self.bias_params / self.total_params if self.total_params else 0.0
        return {**super().to_dict(), "bias_params": self.bias_params, "bias_share": share, "counts": self.counts(),
                "not_analysed": self.not_analysed}

    def counts(self) -> dict[str, dict[str, int]]:
        """Per status: how many biases (or parts) and how many scalars."""
        return {s: {"biases": sum(f.status == s for f in self.biases),
                    "params": sum(f.numel for f in self.biases if f.status == s)} for s in STATUSES}
