"""The ablation result: every configuration's runs, their paired comparisons, and the verdicts.

A *configuration* is one model on one data set with one set of training settings; it trains
every variant (``with-bias``, ``no-bias``, ...) on the same seeds. Its numbers are stored per
variant (:class:`VariantRuns`, arrays over seeds), and its conclusions are paired tests
(:class:`Comparison`) turned into :class:`Claim` records by :mod:`biaslab.experiments.ablate.claims`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..math.stats import Band, Comparison, Summary  # the statistics own their records; re-exported here
from .base import Claim, Result

__all__ = ["Summary", "Band", "Comparison", "VariantRuns", "ShiftComparison", "ConfigResult", "SkippedPair",
           "AblateResult"]


@dataclass
class VariantRuns:
    """One variant of a configuration over its seeds (arrays indexed by seed, in seed order).

    ``curves`` hold per-epoch ``train_loss``, ``test_loss`` and ``test_acc`` (seeds × epochs);
    ``shift`` the test accuracy under each shift (seeds × levels); ``curve_bands`` and
    ``shift_bands`` the bands the figures draw around their means.
    """

    variant: str
    params: int
    biases: int
    test_acc: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray
    train_loss: np.ndarray
    summary: Summary
    curves: dict[str, np.ndarray]
    shift: dict[str, np.ndarray]
    curve_bands: dict[str, Band]
    shift_bands: dict[str, Band]


@dataclass
class ShiftComparison:
    """The paired comparison at the strongest ``level`` of the shift ``kind`` (``label``: e.g. "contrast ×0.1").

    ``index`` is the level's position in the configuration's grid (``shift_levels[kind]``);
    ``-1`` (the last) in files written before the strongest level was the one furthest from the identity.
    """

    kind: str
    level: float
    label: str
    comparison: Comparison
    index: int = -1


@dataclass
class ConfigResult:
    """All runs of one configuration (model, data set, training settings)."""

    model: str
    dataset: str
    settings: dict[str, Any]
    data: dict[str, Any]
    seeds: list[int]
    variants: dict[str, VariantRuns]
    comparisons: list[Comparison]
    shift_levels: dict[str, list[float]]
    shift_comparisons: list[ShiftComparison]
    batched: bool = True
    fallback: str | None = None  # why the runs trained one by one, when they did

    @property
    def name(self) -> str:
        """``model/dataset``: the prefix of this configuration's claim ids."""
        return f"{self.model}/{self.dataset}"


@dataclass
class SkippedPair:
    """A (model, data set) pair of a grid that cannot run, and why."""

    model: str
    dataset: str
    reason: str


@dataclass
class AblateResult(Result):
    """Every configuration of one ``biaslab ablate`` invocation, and the claims they support."""

    command: ClassVar[str] = "ablate"
    configurations: list[ConfigResult]
    skipped: list[SkippedPair] = field(default_factory=list)
    runs_file: str | None = None
    trained: int = 0
    resumed: int = 0
    device: str = "cpu"
    engine: str = "local"
    params: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)

    def __post_init__(self) -> None:
        if "margin" not in self.params:  # written before verdicts had four values (or built by hand)
            self.claims = [_legacy_verdict(c) for c in self.claims]


def _legacy_verdict(c: Claim) -> Claim:
    """A claim of a results.json written before verdicts (no ``p_adjusted`` in its evidence):
    ``holds: false`` there meant "not significant" as often as "shown false", so it reads as
    inconclusive unless the evidence shows the opposite (a significant loss, a variant that
    removes nothing, a shift case where bias hurt)."""
    e = c.evidence
    if c.holds is not False or "p_adjusted" in e or "iqm" in e or c.verdict != "refuted":
        return c
    opposite = (e.get("verdict") == "bias hurts" or e.get("removed") == 0 or (e.get("hurts") or 0) > 0)
    if opposite:
        return c
    return Claim(c.id, c.text, None, dict(e), c.statement, "inconclusive")
