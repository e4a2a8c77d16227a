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

from .base import Claim, Result

__all__ = ["Summary", "Band", "Comparison", "VariantRuns", "ShiftComparison", "ConfigResult", "SkippedPair",
           "AblateResult"]


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and two-sided t confidence interval of values over seeds.

    ``clipped`` is True when the interval was cut to the range the values live in (an
    accuracy's t interval can pass 1; the accuracy cannot).
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float
    clipped: bool = False


@dataclass
class Band:
    """A curve over seeds: ``mean`` and the band ``low .. high`` around it, per x value.

    ``kind`` names the band: ``"ci"`` (``confidence`` t interval of the mean, clipped to
    [0, 1]) or ``"std"`` (± one sample standard deviation).
    """

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    kind: str
    confidence: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of variant ``a`` (more biases) with ``b`` over the same seeds.

    ``p_value`` is the two-sided paired t-test; when every seed differs by the same amount the
    t statistic is undefined (``constant`` is True): p is then 1 for a zero difference and 0
    for a non-zero one, which the verdict counts as significant. ``wilcoxon_p`` is the two-sided
    Wilcoxon signed-rank test (``zero_method="zsplit"``; 1.0 when every difference is 0).
    """

    a: str
    b: str
    n: int
    diff_mean: float  # mean of a − b
    diff_std: float
    diff_ci_low: float
    diff_ci_high: float
    t_stat: float
    p_value: float
    wilcoxon_p: float
    effect_size: float  # Cohen's d_z = mean(d) / sd(d); ±inf when constant and non-zero
    a_wins: int  # seeds where a is better
    b_wins: int
    ties: int
    alpha: float
    verdict: str
    constant: bool = False


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
    """The paired comparison at the strongest ``level`` of the shift ``kind`` (``label``: e.g. "contrast ×0.1")."""

    kind: str
    level: float
    label: str
    comparison: Comparison


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
