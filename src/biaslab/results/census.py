"""The census result: every ``transformers`` model type, audited tiny, its biases by status, and
their sizes at the configuration's default (released) size.

One :class:`CensusModel` per model type. An audited type lists :class:`CensusFinding` rows, one
per *kind* of bias: the parameter name with layer numbers as ``*`` (``encoder.layer.*.attention.
self.key.bias``), the part of a packed bias, the status and its reason. ``layers`` counts the tiny
model's biases in the row, ``default_count``/``default_params`` the default-size model's biases
and values that the row stands for. ``moves`` is the largest relative output change when one of
them is perturbed (float64, training mode), and ``verified`` says whether perturbation agrees with
the status (``redundant``: the output does not move; ``foldable``/``active``: it does). ``reached``
is False for a bias the example input never uses (a vision tower of a model given text only): its
status says nothing, and it is counted apart. ``rotary`` says, for an attention key bias, whether
that part of the model uses rotary position embeddings. Counts per status use the *checked*
status: a ``redundant`` that perturbation refutes counts as ``active`` (and a claim lists it).

A type that could not be built or run offline has ``audited`` False and a one-line ``reason``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .base import Claim, Result

__all__ = ["STATUSES", "CensusFinding", "CensusModel", "CensusResult", "failure_kind"]

STATUSES = ("redundant", "foldable", "active")


@dataclass
class CensusFinding:
    """One kind of bias of one model type (see the module docstring)."""

    param: str
    status: str
    part: str | None = None
    reason: str = ""
    detail: str = ""
    layers: int = 0
    tiny_params: int = 0
    default_count: int = 0
    default_params: int = 0
    moves: float | None = None
    verified: bool | None = None
    key_bias: bool = False
    not_analysed: bool = False
    reached: bool = True
    rotary: bool | None = None

    @property
    def label(self) -> str:
        return f"{self.param}[{self.part}]" if self.part else self.param

    @property
    def checked_status(self) -> str:
        """The status, except that a ``redundant`` which perturbation refutes counts as ``active``."""
        return "active" if self.status == "redundant" and self.verified is False else self.status


@dataclass
class CensusModel:
    """One model type: audited or not (and why), its bias findings, sizes and times."""

    model_type: str
    audited: bool
    reason: str | None = None
    findings: list[CensusFinding] = field(default_factory=list)
    config_class: str | None = None
    model_class: str | None = None
    shrink: str | None = None
    input: str | None = None
    graph: str | None = None
    rotary: bool | None = None
    tiny_params: int | None = None
    default_params: int | None = None
    default_bias_params: int | None = None
    default_unmatched_params: int | None = None
    seconds: float | None = None
    stage: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def default_by_status(self) -> dict[str, int]:
        """Bias values of the default-size model per checked status (biases the example input reaches)."""
        return {s: sum(f.default_params for f in self.findings if f.checked_status == s and f.reached)
                for s in STATUSES}

    def count_by_status(self) -> dict[str, int]:
        """Kinds of bias (rows) per checked status (biases the example input reaches)."""
        return {s: sum(f.checked_status == s and f.reached for f in self.findings) for s in STATUSES}

    def default_unreached(self) -> int:
        """Bias values of the default-size model that the example input never reaches."""
        return sum(f.default_params for f in self.findings if not f.reached)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "CensusModel":
        """From an engine's plain record (extra keys ignored)."""
        from .base import decode

        keys = set(cls.__dataclass_fields__)
        return decode(cls, {k: v for k, v in rec.items() if k in keys})


#: Failure kinds, by the start of the reason (first match wins).
_KINDS = (
    ("timed out", "timed out"),
    ("its process died", "crashed"),
    ("its Ray task failed", "crashed"),
    ("fails on every example input", "no example input runs"),
    ("takes ", "no example input runs"),
    ("cannot build a small model", "cannot build small"),
    ("its configuration cannot be created", "configuration refused"),
)


def failure_kind(reason: str | None) -> str:
    """A short category for a type's failure reason."""
    text = reason or ""
    if "requires the" in text and "library" in text:
        return "needs a missing library"
    for start, kind in _KINDS:
        if text.startswith(start):
            return kind
    return "fails in the audit"


@dataclass
class CensusResult(Result):
    """Every model type of the installed ``transformers``: audited tiny, statuses verified by
    perturbation, sizes counted at the default configuration."""

    command: ClassVar[str] = "census"
    models: list[CensusModel]
    transformers_version: str = ""
    available: int = 0
    seconds: float = 0.0
    engine: str = "local"
    jobs: int = 1
    threads: int = 1
    time_limit: float = 60.0
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)

    @property
    def audited(self) -> list[CensusModel]:
        return [m for m in self.models if m.audited]

    @property
    def failed(self) -> list[CensusModel]:
        return [m for m in self.models if not m.audited]

    def type_seconds(self) -> list[float]:
        """Seconds each model type took (audited or not), in model order."""
        return [m.seconds for m in self.models if m.seconds is not None]

    def timing(self) -> dict[str, float | None]:
        """Total wall time and per-type times (mean, median, largest)."""
        t = self.type_seconds()
        return {"total_s": self.seconds, "mean_s": statistics.fmean(t) if t else None,
                "median_s": statistics.median(t) if t else None, "max_s": max(t) if t else None,
                "sum_s": sum(t)}

    def failures(self) -> dict[str, int]:
        """Types not audited, per failure kind."""
        out: dict[str, int] = {}
        for m in self.failed:
            kind = failure_kind(m.reason)
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def totals(self) -> dict[str, Any]:
        """Bias values per status over every audited type, at default sizes, and the types with each."""
        out: dict[str, Any] = {}
        for s in STATUSES:
            out[s] = {"default_params": sum(m.default_by_status()[s] for m in self.audited),
                      "types": sum(m.count_by_status()[s] > 0 for m in self.audited),
                      "kinds": sum(m.count_by_status()[s] for m in self.audited)}
        out["unreached"] = {"default_params": sum(m.default_unreached() for m in self.audited),
                            "types": sum(any(not f.reached for f in m.findings) for m in self.audited),
                            "kinds": sum(not f.reached for m in self.audited for f in m.findings)}
        out["default_bias_params"] = sum(m.default_bias_params or 0 for m in self.audited)
        out["default_params"] = sum(m.default_params or 0 for m in self.audited)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The fields, plus derived summaries (``counts``, ``timing``, ``failures``, ``totals``) for readers."""
        return {**super().to_dict(), "counts": {"available": self.available, "types": len(self.models),
                                                "audited": len(self.audited), "failed": len(self.failed)},
                "timing": self.timing(), "failures": self.failures(), "totals": self.totals()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CensusResult":
        derived = ("counts", "timing", "failures", "totals")
        return super().from_dict({k: v for k, v in data.items() if k not in derived})
