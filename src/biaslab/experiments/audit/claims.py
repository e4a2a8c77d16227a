"""The audit's conclusions: one claim per bias (or part of a packed bias), from its finding."""

from __future__ import annotations

from ...results import Claim
from ...results.audit import NOT_ANALYSED, Finding
from .verify import VERIFY_TOLERANCE

__all__ = ["finding_claim"]


def finding_claim(f: Finding) -> Claim:
    """The claim about one bias: "can be removed (or folded) without changing the function".

    ``holds`` is True for ``redundant`` and ``foldable``, False for ``active``, and None when no
    rule covers an op on the bias's path (the status is then a cautious default, not a finding).
    """
    unknown = f.reason.startswith(NOT_ANALYSED)
    holds = None if unknown else f.status != "active"
    evidence = {"bias": f.label, "status": f.status, "reason": f.reason, "consumer": f.consumer,
                "cancelled_fraction": f.cancelled_fraction, "zero_now": f.zero_now, "traced": f.traced,
                "verified": f.verified}
    if f.verified is not None:
        evidence["verify_tolerance"] = VERIFY_TOLERANCE
    return Claim.decide(f.label, holds, evidence,
                        statement="{bias} can be removed or folded without changing what the model computes",
                        true="{bias} is {status}: {reason}",
                        false="{bias} is {status}: {reason}", unknown="{bias} is {status} ({reason})")
