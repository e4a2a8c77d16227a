"""The declared schema of every command's results.json, checked before any of it is used.

results.json is an exchange format: people share run folders, and ``biaslab report`` and
``explore --from`` read them back. So a file is untrusted input, and :func:`check_payload`
validates it against its command's schema before a single value reaches the decoder, a
figure or a sentence. The schema of a command is generated from its result dataclasses
(:mod:`biaslab.results`), so it can never drift from what the command writes, and tightened
by :data:`RULES`: the command's own limits (≤ 16 kernels, ≤ 50 biases, preview sizes,
seeds, configurations), fixed choices, finite numbers. Everything else gets a generic bound:

* types are strict (``"yes"`` is not a bool, ``12`` is not a string, ``1.0`` is not an int);
* numbers are finite (``1e400`` parses as infinity and is refused; ``10**400`` is too large);
  ``null`` stands for NaN, as the writer stores it, except in fields that are always finite;
* every list, dict and string is bounded in size; free-form values (``params``, a claim's
  ``evidence``) are bounded in nesting depth (:data:`MAX_DEPTH`);
* arrays ``{"__ndarray__": dtype, "shape": [...], "data" | "zlib": ...}`` have a dtype from a
  whitelist (bool, ints, floats: never object, strings, dates, void), a non-negative shape
  whose element count matches ``data`` (or whose byte count bounds ``zlib``), a rank and a
  size per field, and all arrays of a file together decode to at most :data:`MAX_DECODED_BYTES`.

Why pydantic (v2) and not msgspec: both were generated from the same dataclasses and rules and
run on the same real files (``benchmarks/schema_libraries.py``; 2-core machine shared with other
jobs, medians of 15). On conv's 1.7 MB results.json: json.loads alone 1.6 ms; pydantic (json.loads
+ validate) 10.2 ms; msgspec (json.loads + convert) 1.7 ms, or 0.8 ms decoding the bytes directly;
peak Python memory 3.3 MiB for both from json.loads (1.65 MiB for msgspec from bytes). Building the
validators: pydantic 400 ms cold (most of it pydantic's own lazy imports; 40-95 ms for a second
command), msgspec 10 ms; importing: pydantic 130 ms, msgspec 85 ms. Generator code: pydantic 119
lines, msgspec 78 — but the msgspec version cannot express the per-field array rules, the depth
and size bounds of free-form values or the per-file decoded-bytes budget (no validators with
context), which would come back as hand-written passes over the data. msgspec is faster on every
number; pydantic is chosen because those numbers do not matter here and the rest does: 10 ms is
under 1 % of ``biaslab report`` (seconds of rendering), the cold cost is paid only by ``report``,
``explore --from`` and ``schema`` (biaslab imports it lazily, only to read a results.json), it is
already installed (typer requires it, so no new package), strict mode refuses every coercion
the probe used (``"yes"`` → True, ``1.0`` → 1), ``allow_inf_nan=False`` refuses infinities,
validators receive a context (the running total of decoded bytes), errors name the exact location
(``kernels[3].weights``), and the same models publish JSON Schema (draft 2020-12).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..math.activations import ACTIVATIONS
from . import RESULT_TYPES

__all__ = ["Rule", "RULES", "ALLOWED_DTYPES", "MAX_DEPTH", "MAX_DECODED_BYTES", "MAX_RESULTS_BYTES", "MAX_TEXT",
           "MAX_ITEMS", "MAX_ARRAY_ELEMENTS", "check_payload", "json_schema", "schema_commands", "check_json_value"]

#: Array dtypes a results.json may hold (``str(numpy.dtype)``): bool, integers and floats.
ALLOWED_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                  "float16", "float32", "float64")
#: Deepest nesting of lists and dicts in a free-form value (``params``, a claim's ``evidence``).
MAX_DEPTH = 16
#: All arrays of one results.json decode to at most this many bytes together.
MAX_DECODED_BYTES = 128 * 1024**2
#: Largest results.json read at all (checked on the file's size before it is parsed).
MAX_RESULTS_BYTES = 256 * 1024**2
#: Longest string anywhere (in free-form values: ``params``, a claim's ``evidence``).
MAX_TEXT = 100_000
#: Longest string in a typed field (names, sources, labels: what figures draw), unless its rule allows prose.
MAX_NAME = 2000
#: Longest prose (a claim's text, a reason, a warning).
MAX_PROSE = 10_000
#: Default bound on a list's items or a dict's keys where the command sets none.
MAX_ITEMS = 100_000
#: Default bound on one array's elements where the command sets none.
MAX_ARRAY_ELEMENTS = 2**24
#: Default bounds of an integer field: a signed 64-bit integer.
INT_RANGE = (-(2**63), 2**63 - 1)

# The commands' own limits, repeated here so that reading a results.json imports neither torch
# nor the experiments (tests/test_untrusted_results.py checks that they equal the originals).
REL_MAX_BIASES = 50              # biaslab.experiments.relu.run.MAX_BIASES
REL_CURVE_POINTS = 801           # biaslab.experiments.relu.run.CURVE_POINTS
CONV_MAX_KERNELS = 16            # biaslab.math.kernels.MAX_KERNELS
CONV_MAX_KERNEL_SIZE = 31        # biaslab.math.kernels.MAX_KERNEL_SIZE
CONV_MAX_BIASES = 12             # biaslab.experiments.conv.run.MAX_BIASES
CONV_MAX_IMAGE_SIDE = 2048       # biaslab.experiments.conv.run.MAX_IMAGE_SIDE
CONV_PREVIEW_SIDE = 256          # biaslab.experiments.conv.run.PREVIEW_SIDE
CONV_SWEEP_POINTS = 61           # biaslab.experiments.conv.run.SWEEP_POINTS
CONV_MAX_PADDING = 64            # biaslab.experiments.conv.run.MAX_PADDING
CONV_EXPLAIN_MARGIN = 12         # biaslab.experiments.conv.run.EXPLAIN_MARGIN
REG_MAX_POINTS = 1_000_000       # biaslab.experiments.regression.data.MAX_POINTS
ABL_MAX_SEEDS = 1000             # biaslab.experiments.ablate.run.MAX_SEEDS
ABL_MAX_EPOCHS = 10_000          # biaslab.experiments.ablate.run.MAX_EPOCHS
ABL_MAX_LEVELS = 20              # biaslab.experiments.ablate.shifts.MAX_LEVELS
DEN_MAX_SIGMA = 255.0            # biaslab.experiments.denoise.data.MAX_SIGMA
DEN_MAX_CROP = 4096              # biaslab.experiments.denoise.run._BOUNDS["eval_crop"]
DEN_PREVIEW_SIDE = 512           # biaslab.experiments.denoise.apply.PREVIEW_SIDE
# Bounds of our own where a command has none: generous for any real run, small enough to render.
MAX_FEATURES = 1024              # regression input columns
MAX_CONFIGURATIONS = 256         # ablate (model, data set) pairs of one grid
MAX_VARIANTS = 64                # ablate variants (with-bias, no-bias, ..., one per --drop)
MAX_SHIFTS = 8                   # ablate shift kinds
MAX_SIGMAS = 64                  # denoise noise levels
MAX_FINDINGS = 1_000_000         # audit biases (one per bias parameter of a model)
MAX_CLAIMS = 1_000_000           # claims of one result (audit has one per bias)
#: Names a demo's section folders may have: the commands' names (fixed names, never paths); each
#: section must hold that command's results.
DEMO_SECTIONS = tuple(c for c in RESULT_TYPES if c != "demo")


@dataclass(frozen=True)
class Rule:
    """Bounds for one field (``Class.field`` in :data:`RULES`), applied to what its type allows.

    ``items`` (min, max) bounds a list's length or a dict's keys; ``keys`` are a dict's exact
    keys; ``chars`` the length of a string (or of the strings of a list); ``ge``/``le`` bound a number; ``finite`` refuses ``null`` (NaN) in a float field or a
    list of floats; ``choices`` fixes a string; ``ndim``/``elements``/``side`` bound an array's
    rank, size and each dimension; ``kinds`` its dtype kinds (``"f"``: floats only).
    """

    items: tuple[int, int] | None = None
    keys: tuple[str, ...] | None = None
    ge: float | None = None
    le: float | None = None
    finite: bool = False
    choices: tuple[str, ...] | None = None
    ndim: tuple[int, ...] | None = None
    elements: int | None = None
    side: int | None = None
    kinds: str = "biuf"
    unique: bool = False
    chars: int | None = None


_N = Rule  # short alias for the table below
_ACTIVATIONS = tuple(ACTIVATIONS)
_PREVIEW = CONV_PREVIEW_SIDE
_CONV_PATCH = CONV_MAX_KERNEL_SIZE
_NEIGHBOURHOOD = CONV_MAX_KERNEL_SIZE + 2 * CONV_EXPLAIN_MARGIN
_FLOATS = "f"

#: Per field: the command's limits. Fields not listed get the generic bounds above.
RULES: dict[str, Rule] = {
    # Claims (every command)
    "Claim.id": _N(items=(1, 1000)),
    "Claim.text": _N(items=(0, MAX_PROSE)),
    "Claim.statement": _N(items=(0, MAX_PROSE)),
    "Finding.reason": _N(items=(0, MAX_PROSE)),
    "AuditResult.warnings": _N(items=(0, 10_000), chars=MAX_PROSE),
    "SkippedPair.reason": _N(items=(0, MAX_PROSE)),
    "ConfigResult.fallback": _N(items=(0, MAX_PROSE)),
    "FixRecord.load": _N(items=(0, MAX_PROSE)),
    "Claim.verdict": _N(choices=("holds", "refuted", "inconclusive", "not measured")),
    "Claim.evidence": _N(items=(0, 256)),
    # regression
    "RegressionResult.features": _N(items=(1, MAX_FEATURES)),
    "RegressionResult.n_samples": _N(ge=1, le=REG_MAX_POINTS),
    "RegressionResult.n_test": _N(ge=0, le=REG_MAX_POINTS),
    "RegressionResult.X": _N(ndim=(2,), elements=REG_MAX_POINTS * MAX_FEATURES, kinds=_FLOATS),
    "RegressionResult.y": _N(ndim=(1, 2), elements=REG_MAX_POINTS, kinds=_FLOATS),
    "RegressionResult.X_test": _N(ndim=(2,), elements=REG_MAX_POINTS * MAX_FEATURES, kinds=_FLOATS),
    "RegressionResult.y_test": _N(ndim=(1, 2), elements=REG_MAX_POINTS, kinds=_FLOATS),
    "RegressionResult.predictions": _N(keys=("without_bias", "with_bias"), ndim=(1, 2), elements=REG_MAX_POINTS,
                                       kinds=_FLOATS),
    "RegressionResult.residual_trends": _N(keys=("without_bias", "with_bias")),
    "RegressionResult.true": _N(items=(0, 8)),
    "FitStats.coef": _N(items=(1, MAX_FEATURES), finite=True),
    "FitStats.intercept": _N(finite=True),
    "FitStats.mse": _N(finite=True, ge=0),
    "ResidualTrend.against": _N(items=(0, 200)),
    # relu
    "ReluResult.activation": _N(choices=_ACTIVATIONS),
    "ReluResult.w": _N(finite=True),
    "ReluResult.biases": _N(items=(1, REL_MAX_BIASES), finite=True),
    "ReluResult.x_range": _N(finite=True),
    "ReluResult.thresholds": _N(items=(1, REL_MAX_BIASES)),
    "ReluResult.value_at_threshold": _N(finite=True),
    "ReluResult.curve_x": _N(ndim=(1,), elements=REL_CURVE_POINTS, kinds=_FLOATS),
    "ReluResult.curves": _N(ndim=(2,), elements=REL_MAX_BIASES * REL_CURVE_POINTS, kinds=_FLOATS),
    "ReluResult.plane_w": _N(finite=True),
    "ReluResult.plane_half": _N(finite=True, ge=0),
    "ReluResult.plane": _N(items=(1, REL_MAX_BIASES)),
    "Threshold.b": _N(finite=True),
    "Threshold.active_when": _N(items=(1, 200)),
    "PlaneRegion.b": _N(finite=True),
    "PlaneRegion.active_share": _N(ge=0, le=1),
    "PlaneRegion.active_polygon": _N(ndim=(2,), elements=2 * 16, kinds=_FLOATS),
    "PlaneRegion.boundary": _N(ndim=(2,), elements=2 * 4, kinds=_FLOATS),
    # conv
    "ImageInfo.channels": _N(ge=1, le=3),
    "ImageInfo.height": _N(ge=1, le=CONV_MAX_IMAGE_SIDE),
    "ImageInfo.width": _N(ge=1, le=CONV_MAX_IMAGE_SIDE),
    "ImageInfo.original_height": _N(ge=1, le=2**31),
    "ImageInfo.original_width": _N(ge=1, le=2**31),
    "ConvResult.image_preview": _N(ndim=(3,), side=_PREVIEW, kinds=_FLOATS),
    "ConvResult.preview_factor": _N(ge=1, le=CONV_MAX_IMAGE_SIDE),
    "ConvResult.output_shape": _N(ge=1, le=CONV_MAX_IMAGE_SIDE + 2 * CONV_MAX_PADDING),
    "ConvResult.activation": _N(choices=_ACTIVATIONS),
    "ConvResult.biases": _N(items=(1, CONV_MAX_BIASES), finite=True),
    "ConvResult.kernels": _N(items=(1, CONV_MAX_KERNELS)),
    "KernelMap.name": _N(items=(1, 500)),
    "KernelMap.weights": _N(ndim=(3,), side=_CONV_PATCH, kinds=_FLOATS),
    "KernelMap.output_shape": _N(ge=1, le=CONV_MAX_IMAGE_SIDE + 2 * CONV_MAX_PADDING),
    "KernelMap.sum_min": _N(finite=True),
    "KernelMap.sum_max": _N(finite=True),
    "KernelMap.sum_mean": _N(finite=True),
    "KernelMap.biases": _N(items=(1, CONV_MAX_BIASES)),
    "KernelMap.border": _N(ge=0, le=CONV_MAX_IMAGE_SIDE),
    "KernelMap.preview_sum": _N(ndim=(2,), side=_PREVIEW, kinds=_FLOATS),
    "KernelMap.preview_outputs": _N(ndim=(3,), side=_PREVIEW, kinds=_FLOATS),
    "BiasStats.bias": _N(finite=True),
    "BiasStats.threshold": _N(finite=True),
    "BiasStats.fraction_active": _N(ge=0, le=1, finite=True),
    "Sweep.bias": _N(ndim=(1,), elements=CONV_SWEEP_POINTS, kinds=_FLOATS),
    "Sweep.kernels": _N(items=(1, CONV_MAX_KERNELS)),
    "SweepCurve.fraction_active": _N(ndim=(1,), elements=CONV_SWEEP_POINTS, kinds=_FLOATS),
    "SweepCurve.mean_activation": _N(ndim=(1,), elements=CONV_SWEEP_POINTS, kinds=_FLOATS),
    "Explanation.kernels": _N(items=(1, CONV_MAX_KERNELS)),
    "Explanation.position": _N(ge=0, le=CONV_MAX_IMAGE_SIDE + 2 * CONV_MAX_PADDING),
    "KernelExplanation.patch": _N(ndim=(3,), side=_CONV_PATCH, kinds=_FLOATS),
    "KernelExplanation.weights": _N(ndim=(3,), side=_CONV_PATCH, kinds=_FLOATS),
    "KernelExplanation.product": _N(ndim=(3,), side=_CONV_PATCH, kinds=_FLOATS),
    "KernelExplanation.in_padding": _N(ndim=(2,), side=_CONV_PATCH),
    "KernelExplanation.neighbourhood": _N(ndim=(3,), side=_NEIGHBOURHOOD, kinds=_FLOATS),
    "KernelExplanation.corner": _N(ge=-CONV_MAX_IMAGE_SIDE, le=2 * CONV_MAX_IMAGE_SIDE),
    "KernelExplanation.span": _N(ge=0, le=2 * CONV_MAX_IMAGE_SIDE),
    "KernelExplanation.neighbourhood_origin": _N(ge=-CONV_MAX_IMAGE_SIDE, le=2 * CONV_MAX_IMAGE_SIDE),
    "KernelExplanation.biases": _N(items=(1, CONV_MAX_BIASES)),
    # ablate
    "AblateResult.configurations": _N(items=(0, MAX_CONFIGURATIONS)),
    "AblateResult.skipped": _N(items=(0, MAX_CONFIGURATIONS)),
    "ConfigResult.seeds": _N(items=(1, ABL_MAX_SEEDS)),
    "ConfigResult.variants": _N(items=(1, MAX_VARIANTS)),
    "ConfigResult.comparisons": _N(items=(0, MAX_VARIANTS)),
    "ConfigResult.shift_levels": _N(items=(0, MAX_SHIFTS)),
    "ConfigResult.shift_comparisons": _N(items=(0, MAX_SHIFTS * MAX_VARIANTS)),
    "VariantRuns.params": _N(ge=0),
    "VariantRuns.biases": _N(ge=0),
    "VariantRuns.test_acc": _N(ndim=(1,), elements=ABL_MAX_SEEDS, kinds=_FLOATS),
    "VariantRuns.train_acc": _N(ndim=(1,), elements=ABL_MAX_SEEDS, kinds=_FLOATS),
    "VariantRuns.test_loss": _N(ndim=(1,), elements=ABL_MAX_SEEDS, kinds=_FLOATS),
    "VariantRuns.train_loss": _N(ndim=(1,), elements=ABL_MAX_SEEDS, kinds=_FLOATS),
    "VariantRuns.curves": _N(items=(0, 8), ndim=(2,), elements=ABL_MAX_SEEDS * ABL_MAX_EPOCHS, kinds=_FLOATS),
    "VariantRuns.shift": _N(items=(0, MAX_SHIFTS), ndim=(2,), elements=ABL_MAX_SEEDS * ABL_MAX_LEVELS,
                            kinds=_FLOATS),
    "Band.mean": _N(ndim=(1,), elements=ABL_MAX_EPOCHS, kinds=_FLOATS),
    "Band.low": _N(ndim=(1,), elements=ABL_MAX_EPOCHS, kinds=_FLOATS),
    "Band.high": _N(ndim=(1,), elements=ABL_MAX_EPOCHS, kinds=_FLOATS),
    "VariantRuns.curve_bands": _N(items=(0, 8)),
    "VariantRuns.shift_bands": _N(items=(0, MAX_SHIFTS)),
    "Summary.n": _N(ge=0, le=ABL_MAX_SEEDS),
    "Summary.confidence": _N(ge=0, le=1, finite=True),
    "Band.kind": _N(choices=("ci", "std")),
    "Comparison.n": _N(ge=0, le=ABL_MAX_SEEDS),
    "Comparison.a_wins": _N(ge=0, le=ABL_MAX_SEEDS),
    "Comparison.b_wins": _N(ge=0, le=ABL_MAX_SEEDS),
    "Comparison.ties": _N(ge=0, le=ABL_MAX_SEEDS),
    "Comparison.alpha": _N(ge=0, le=1, finite=True),
    "ShiftComparison.level": _N(finite=True),
    "ConfigResult.settings": _N(items=(0, 256)),
    "ConfigResult.data": _N(items=(0, 256)),
    "AblateResult.trained": _N(ge=0),
    "AblateResult.resumed": _N(ge=0),
    # denoise
    "DenoiseResult.sigmas": _N(items=(1, MAX_SIGMAS), finite=True, ge=0, le=DEN_MAX_SIGMA),
    "DenoiseResult.psnr": _N(keys=("noisy", "with_bias", "bias_free")),
    "DenoiseResult.gain_db": _N(items=(1, MAX_SIGMAS)),
    "DenoiseResult.train_sigma_max": _N(finite=True, ge=0, le=DEN_MAX_SIGMA),
    "DenoiseResult.equivariance": _N(items=(1, 8)),
    "DenoiseResult.train_images": _N(items=(0, 10_000)),
    "DenoiseResult.test_images": _N(items=(0, 10_000)),
    "DenoiseResult.examples": _N(items=(0, MAX_SIGMAS)),
    "DenoiseResult.filters": _N(items=(0, MAX_SIGMAS)),
    "ExampleImages.sigma": _N(finite=True, ge=0, le=DEN_MAX_SIGMA),
    "ExampleImages.clean": _N(ndim=(2,), side=DEN_MAX_CROP, kinds=_FLOATS),
    "ExampleImages.noisy": _N(ndim=(2,), side=DEN_MAX_CROP, kinds=_FLOATS),
    "ExampleImages.denoised": _N(keys=("with_bias", "bias_free")),
    "ExampleImages.psnr": _N(keys=("with_bias", "bias_free")),
    "FilterRows.sigma": _N(finite=True, ge=0, le=DEN_MAX_SIGMA),
    "FilterRows.noisy": _N(ndim=(2,), side=DEN_MAX_CROP, kinds=_FLOATS),
    "FilterRows.pixels": _N(items=(1, 16)),
    "FilterRows.labels": _N(items=(1, 16)),
    "FilterRows.rows": _N(ndim=(3,), side=DEN_MAX_CROP, kinds=_FLOATS),
    "FilterRows.centre": _N(items=(1, 16)),
    "FilterRows.row_sum": _N(items=(1, 16)),
    "FilterRows.effective_width": _N(items=(1, 16)),
    "FilterRows.radius90": _N(items=(1, 16)),
    # denoise apply
    "DenoiseApplyResult.shape": _N(items=(2, 3), ge=1, le=2**31),
    "DenoiseApplyResult.sigma": _N(finite=True, ge=0, le=DEN_MAX_SIGMA),
    "DenoiseApplyResult.colour": _N(choices=("grey", "per-channel", "rgb")),
    "DenoiseApplyResult.tiles": _N(ge=1, le=2**31),
    "DenoiseApplyResult.preview_clean": _N(ndim=(2, 3), side=DEN_PREVIEW_SIDE),
    "DenoiseApplyResult.preview_noisy": _N(ndim=(2, 3), side=DEN_PREVIEW_SIDE),
    "DenoiseApplyResult.outputs": _N(items=(1, 2)),
    "DenoisedImage.preview": _N(ndim=(2, 3), side=DEN_PREVIEW_SIDE),
    "DenoisedImage.architecture": _N(items=(0, 64)),
    # audit
    "AuditResult.input_shape": _N(items=(1, 8), ge=1, le=2**31),
    "AuditResult.biases": _N(items=(0, MAX_FINDINGS)),
    "AuditResult.total_params": _N(ge=0),
    "AuditResult.graph": _N(choices=("fx", "recorded", "hooks")),
    "AuditResult.n_samples": _N(ge=0),
    "AuditResult.contributions": _N(items=(0, MAX_FINDINGS)),
    "AuditResult.bias_params": _N(ge=0),
    "AuditResult.bias_share": _N(ge=0),
    "AuditResult.counts": _N(keys=("redundant", "foldable", "active")),
    "Finding.status": _N(choices=("redundant", "foldable", "active")),
    "Finding.shape": _N(items=(0, 8), ge=0, le=2**31),
    "Finding.numel": _N(ge=0),
    "Contribution.status": _N(choices=("redundant", "foldable", "active")),
    "Check.n_inputs": _N(ge=0),
    "FixRecord.params_before": _N(ge=0),
    "FixRecord.params_after": _N(ge=0),
    # demo
    "DemoResult.sections": _N(items=(0, len(DEMO_SECTIONS)), choices=DEMO_SECTIONS, unique=True),
    # every result
    "*.params": _N(items=(0, 256)),
    "*.claims": _N(items=(0, 1024)),
    "AblateResult.claims": _N(items=(0, MAX_CONFIGURATIONS * 1024)),
    "AuditResult.claims": _N(items=(0, MAX_CLAIMS)),
}

#: Fields every command writes, so a results.json without them is damaged (even where the dataclass has a default).
ALWAYS_WRITTEN = ("params", "claims")


def _result_base() -> type:
    from .base import Result

    return Result


#: Keys a command's results.json holds beside its dataclass fields (derived totals written by ``to_dict``).
DERIVED: dict[str, dict[str, Any]] = {
    "audit": {"bias_params": int, "bias_share": float, "counts": dict[str, dict[str, int]], "not_analysed": int},
    # census.CensusResult.to_dict: summaries for readers (from_dict drops them)
    "census": {"counts": dict[str, int], "timing": dict[str, float | None], "failures": dict[str, int],
               "totals": dict[str, Any]},
}


# --------------------------------------------------------------------------------------------
# Free-form JSON values and arrays


def check_json_value(value: Any, depth: int = MAX_DEPTH) -> Any:
    """``value`` if it is plain JSON of at most ``depth`` nested lists/dicts, finite numbers,
    64-bit integers and strings of at most :data:`MAX_TEXT` characters; ValueError otherwise."""
    stack = [(value, 0)]
    seen = 0
    while stack:
        v, d = stack.pop()
        seen += 1
        if seen > 10 * MAX_ITEMS:
            raise ValueError(f"more than {10 * MAX_ITEMS} values")
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not INT_RANGE[0] <= v <= INT_RANGE[1]:
                raise ValueError("an integer outside the 64-bit range")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError("a number that is not finite")
        elif isinstance(v, str):
            if len(v) > MAX_TEXT:
                raise ValueError(f"a string longer than {MAX_TEXT} characters")
        elif isinstance(v, (list, dict)):
            if d >= depth:
                raise ValueError(f"nested deeper than {depth} levels")
            if isinstance(v, dict):
                if "__ndarray__" in v:
                    raise ValueError("an array where a plain value belongs")
                for k, item in v.items():
                    if not isinstance(k, str) or len(k) > 1000:
                        raise ValueError("a key that is not a short string")
                    stack.append((item, d + 1))
            else:
                stack.extend((item, d + 1) for item in v)
        else:
            raise ValueError(f"a {type(v).__name__}, which JSON cannot hold")
    return value


@functools.lru_cache(maxsize=None)
def _array_record():
    from pydantic import BaseModel, ConfigDict, Field, model_validator

    class ArrayRecord(BaseModel):
        """A NumPy array: dtype, shape and either its flat values (``data``) or zlib-compressed
        base64 little-endian bytes (``zlib``)."""

        model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, title="ndarray")
        dtype: typing.Literal[ALLOWED_DTYPES] = Field(alias="__ndarray__")  # type: ignore[valid-type]
        shape: list[typing.Annotated[int, Field(ge=0, le=2**31)]] = Field(max_length=8)
        data: list[bool | int | float] | None = Field(default=None, max_length=MAX_ARRAY_ELEMENTS)
        zlib: str | None = Field(default=None, max_length=MAX_RESULTS_BYTES)

        @model_validator(mode="after")
        def _consistent(self) -> "ArrayRecord":
            if (self.data is None) == (self.zlib is None):
                raise ValueError("an array holds exactly one of 'data' and 'zlib'")
            n = math.prod(self.shape)
            if n > MAX_ARRAY_ELEMENTS:
                raise ValueError(f"shape {self.shape} has {n} elements, more than {MAX_ARRAY_ELEMENTS}")
            if self.data is not None:
                if len(self.data) != n:
                    raise ValueError(f"shape {self.shape} needs {n} values, 'data' holds {len(self.data)}")
                kind = np.dtype(self.dtype).kind
                for v in self.data:
                    if (kind == "b") != isinstance(v, bool) or (kind in "iu" and not isinstance(v, int)):
                        raise ValueError(f"'data' holds {v!r}, which is not a {self.dtype} value")
                if kind in "iu":
                    info = np.iinfo(self.dtype)
                    if self.data and not (info.min <= min(self.data) and max(self.data) <= info.max):
                        raise ValueError(f"'data' holds values outside the range of {self.dtype}")
            else:
                nbytes = n * np.dtype(self.dtype).itemsize
                # zlib never grows data by more than ~0.03 % + a few bytes; base64 adds a third.
                if len(self.zlib) > 4 * ((nbytes + nbytes // 1000 + 64) // 3 + 1):
                    raise ValueError(f"'zlib' is longer than {nbytes} bytes of {self.dtype} can compress to")
            return self

    return ArrayRecord


def _array_check(rule: Rule | None, field: str):
    def check(record, info):
        shape = record.shape
        if rule is not None:
            if rule.ndim is not None and len(shape) not in rule.ndim:
                want = " or ".join(f"{d}-D" for d in rule.ndim)
                raise ValueError(f"a {len(shape)}-D array where a {want} array belongs")
            if rule.side is not None and any(s > rule.side for s in shape):
                raise ValueError(f"shape {shape} has a side larger than {rule.side}")
            if rule.elements is not None and math.prod(shape) > rule.elements:
                raise ValueError(f"shape {shape} has more than {rule.elements} elements")
            if np.dtype(record.dtype).kind not in rule.kinds:
                raise ValueError(f"dtype {record.dtype}; this array holds {'floats' if rule.kinds == 'f' else rule.kinds}")
        ctx = info.context
        if isinstance(ctx, dict):
            ctx["bytes"] = ctx.get("bytes", 0) + math.prod(shape) * np.dtype(record.dtype).itemsize
            if ctx["bytes"] > MAX_DECODED_BYTES:
                raise ValueError(f"the arrays of this file decode to more than {MAX_DECODED_BYTES // 1024**2} MiB")
        return record

    return check


# --------------------------------------------------------------------------------------------
# Models generated from the result dataclasses


def _rule(owner: str, name: str) -> Rule | None:
    return RULES.get(f"{owner}.{name}") or RULES.get(f"*.{name}")


def _annotation(tp: Any, rule: Rule | None, where: str, models: dict[type, Any]) -> Any:
    """The pydantic annotation of a dataclass field of type ``tp`` under ``rule``."""
    from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

    Annotated = typing.Annotated
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is np.ndarray:
        schema_extra = {}
        if rule is not None:
            schema_extra = {k: v for k, v in (("x-ndim", rule.ndim), ("x-max-side", rule.side),
                                               ("x-max-elements", rule.elements)) if v is not None}
        return Annotated[_array_record(), AfterValidator(_array_check(rule, where)),
                         Field(json_schema_extra=schema_extra or None)]
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = _annotation(options[0], rule, where, models) if len(options) == 1 else Any
        return inner | None if type(None) in args else inner
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _model(tp, models)
    if origin is typing.Literal:
        return tp
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(set(args)) > 1:  # (str, float): a JSON array of exactly these, as a tuple
                items = tuple(_annotation(a, rule, where, models) for a in args)
                return Annotated[tuple[items], BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)]
            item = _annotation(args[0], rule, where, models)
            return Annotated[list[item], Field(min_length=len(args), max_length=len(args))]
        item = _annotation(args[0] if args else Any, rule if rule and not rule.items else _item_rule(rule),
                           where, models)
        lo, hi = rule.items if rule is not None and rule.items else (0, MAX_ITEMS)
        ann = Annotated[list[item], Field(min_length=lo, max_length=hi)]
        if rule is not None and rule.unique:
            ann = Annotated[ann, AfterValidator(_unique)]
        return ann
    if origin is dict:
        vt = args[1] if len(args) == 2 else Any
        value = _annotation(vt, _item_rule(rule), where, models)
        if rule is not None and rule.keys is not None:
            from pydantic import create_model

            fields = {f"k{i}": (value, Field(alias=k)) for i, k in enumerate(rule.keys)}
            return create_model(f"{where.replace('.', '_')}_keys", __config__=_config(), **fields)
        lo, hi = rule.items if rule is not None and rule.items else (0, MAX_ITEMS)
        key = Annotated[str, Field(max_length=1000)]
        return Annotated[dict[key, value], Field(min_length=lo, max_length=hi)]
    if tp is bool:
        return bool
    if tp is int:
        lo = INT_RANGE[0] if rule is None or rule.ge is None else int(rule.ge)
        hi = INT_RANGE[1] if rule is None or rule.le is None else int(rule.le)
        return Annotated[int, Field(ge=lo, le=hi)]
    if tp is float:
        kw = {} if rule is None else {k: v for k, v in (("ge", rule.ge), ("le", rule.le)) if v is not None}
        ann = Annotated[float, Field(**kw)] if kw else float
        return ann if rule is not None and rule.finite else ann | None  # null: NaN, as the writer stores it
    if tp is str:
        if rule is not None and rule.choices is not None:
            return typing.Literal[rule.choices]
        hi = (rule.chars if rule is not None and rule.chars else
              rule.items[1] if rule is not None and rule.items else MAX_NAME)
        return Annotated[str, Field(max_length=hi)]
    # Any: a free-form JSON value of bounded depth and size.
    return Annotated[Any, AfterValidator(check_json_value), WithJsonSchema({"description": f"any JSON value, "
                                                                            f"at most {MAX_DEPTH} levels deep"})]


def _item_rule(rule: Rule | None) -> Rule | None:
    """The rule passed on to a container's items: the value bounds, not the container's."""
    if rule is None:
        return None
    return dataclasses.replace(rule, items=None, keys=None, unique=False)


def _unique(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("names repeat")
    return values


def _config():
    from pydantic import ConfigDict

    return ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, populate_by_name=False)


def _model(cls: type, models: dict[type, Any]) -> Any:
    """The pydantic model of dataclass ``cls`` (its stored fields, with their defaults)."""
    from pydantic import Field, create_model

    if cls in models:
        return models[cls]
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    fields = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        if not f.metadata.get("stored", True) or not f.init:
            continue
        ann = _annotation(hints.get(f.name, Any), _rule(cls.__name__, f.name), f"{cls.__name__}.{f.name}", models)
        required = (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING) or (
            f.name in ALWAYS_WRITTEN and issubclass(cls, _result_base()))
        fields[f"f{i}"] = (ann, Field(alias=f.name) if required else Field(default=None, alias=f.name))
    if cls.__name__ == "Claim" and "verdict" not in {spec[1].alias for spec in fields.values()}:
        # The verdict word ("holds", "refuted", ...): optional, for files that carry it.
        verdict = _annotation(str, _rule("Claim", "verdict"), "Claim.verdict", models)
        fields["verdict_word"] = (verdict | None, Field(default=None, alias="verdict"))
    model = create_model(cls.__name__, __config__=_config(), __doc__=(cls.__doc__ or "").strip() or None, **fields)
    models[cls] = model
    return model


@functools.lru_cache(maxsize=None)
def _payload_model(command: str):
    """The model of a whole results.json of ``command``: the header, the fields, the derived keys."""
    from pydantic import Field, create_model

    from . import SCHEMA_VERSION, result_type

    cls = result_type(command)
    models: dict[type, Any] = {}
    base = _model(cls, models)
    extra = {f"d{i}": (_annotation(tp, _rule(cls.__name__, name), f"{cls.__name__}.{name}", models) | None,
                       Field(default=None, alias=name))
             for i, (name, tp) in enumerate(DERIVED.get(command, {}).items())}
    return create_model(
        f"{cls.__name__}File", __base__=base,
        __doc__=f"results.json of `biaslab {command.replace('-', ' ')}` (schema biaslab.{command}/{SCHEMA_VERSION}).",
        h_schema=(typing.Literal[f"biaslab.{command}/{SCHEMA_VERSION}"], Field(alias="schema")),
        h_version=(typing.Annotated[str, Field(max_length=64)], Field(alias="biaslab_version")),
        h_command=(typing.Literal[command], Field(alias="command")),
        **extra,
    )


def schema_commands() -> list[str]:
    """Commands whose results have a schema (every command that writes results.json)."""
    return list(RESULT_TYPES)


def json_schema(command: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``command``'s results.json."""
    from . import SCHEMA_VERSION

    schema = _payload_model(command).model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://biaslab.invalid/schema/{command}/{SCHEMA_VERSION}.json", **schema}


def _where(loc: tuple) -> str:
    parts = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p in ("function-after", "nullable") or str(p).startswith(("function-", "json-or-python", "list[",
                                                                          "dict[", "literal[", "constrained")):
            continue
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "the top level"


def check_payload(data: dict[str, Any], command: str, source: str = "results.json") -> None:
    """Validate a parsed results.json of ``command`` against its schema; :class:`BiaslabError` (one line,
    naming the first wrong field) when it does not match."""
    from pydantic import ValidationError

    from ..infra.io import BiaslabError

    model = _payload_model(command)
    try:
        model.model_validate(data, context={"bytes": 0})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BiaslabError(
            f"{source} is damaged or incomplete: {_where(first['loc'])} does not match the {command} results "
            f"schema ("
            f"{first['msg'].splitlines()[0].removeprefix('Value error, ')[:200]}){more}; run the command again to "
            "regenerate it"
        ) from None
    except RecursionError:
        raise BiaslabError(f"{source} is nested too deeply to be a results file; run the command again "
                           "to regenerate it") from None


# --------------------------------------------------------------------------------------------
# Consistency across fields, checked on the decoded result (what the renderers index by)


class _Inconsistent(ValueError):
    pass


def _same(what: str, *values: Any) -> None:
    if len(set(values)) > 1:
        raise _Inconsistent(f"{what} disagree ({', '.join(map(str, values))})")


def _regression(r: Any) -> None:
    n, d = r.X.shape
    _same("the samples of X, y and n_samples", n, r.y.shape[0], r.n_samples)
    _same("the features of X and 'features'", d, len(r.features), len(r.with_bias.coef), len(r.without_bias.coef))
    for name, p in r.predictions.items():
        _same(f"the shapes of y and predictions.{name}", r.y.shape, p.shape)
    if (r.X_test is None) != (r.y_test is None):
        raise _Inconsistent("X_test and y_test come together")
    if r.X_test is not None:
        _same("the test samples of X_test, y_test and n_test", r.X_test.shape[0], r.y_test.shape[0], r.n_test)
        _same("the features of X and X_test", d, r.X_test.shape[1])
    if r.y.ndim == 2 and r.y.shape[1] != 1:
        raise _Inconsistent(f"y has {r.y.shape[1]} columns; it holds one target")


def _relu(r: Any) -> None:
    _same("the numbers of biases, thresholds, plane regions and curves", len(r.biases), len(r.thresholds),
          len(r.plane), r.curves.shape[0])
    _same("the points of curve_x and curves", r.curve_x.shape[0], r.curves.shape[1])
    if not r.x_range[0] < r.x_range[1]:
        raise _Inconsistent(f"x_range {r.x_range} is empty")
    for p in r.plane:
        for name in ("active_polygon", "boundary"):
            a = getattr(p, name)
            if a.shape[0] and a.shape[1] != 2:
                raise _Inconsistent(f"plane {name} has {a.shape[1]} columns; it holds (x1, x2) points")


def _conv(r: Any) -> None:
    _same("the channels of image and image_preview", r.image.channels, r.image_preview.shape[0])
    nb = len(r.biases)
    names = [k.name for k in r.kernels]
    if len(set(names)) != len(names):
        raise _Inconsistent("kernel names repeat")
    for k in r.kernels:
        _same(f"the biases of kernel {k.name!r} and of the result", len(k.biases), nb, k.preview_outputs.shape[0])
        _same(f"the preview shapes of kernel {k.name!r}", k.preview_sum.shape, k.preview_outputs.shape[1:])
        _same(f"the channels of kernel {k.name!r} and the image", k.weights.shape[0], r.image.channels)
    if set(r.sweep.kernels) != set(names):
        raise _Inconsistent("the sweep's kernels are not the result's kernels")
    for name, curve in r.sweep.kernels.items():
        _same(f"the sweep points of {name!r}", len(r.sweep.bias), len(curve.fraction_active),
              len(curve.mean_activation))
    if r.explain is not None:
        for k in r.explain.kernels:
            if k.kernel not in names:
                raise _Inconsistent(f"explain names a kernel {k.kernel[:40]!r} the result does not have")
            _same(f"the shapes of explain {k.kernel!r} patch, weights and product", k.patch.shape, k.weights.shape,
                  k.product.shape)
            _same(f"the shapes of explain {k.kernel!r} in_padding and weights", k.in_padding.shape,
                  k.weights.shape[1:])
            _same(f"the channels of explain {k.kernel!r} neighbourhood and weights", k.neighbourhood.shape[0],
                  k.weights.shape[0])
            _same(f"the biases of explain {k.kernel!r} and of the result", len(k.biases), nb)


def _ablate(r: Any) -> None:
    for c in r.configurations:
        n = len(c.seeds)
        for v in c.variants.values():
            _same(f"the seeds of {c.model}/{c.dataset} {v.variant}", n, *(len(a) for a in (
                v.test_acc, v.train_acc, v.test_loss, v.train_loss)))
            epochs = {a.shape[1] for a in v.curves.values()}
            for name, a in v.curves.items():
                _same(f"the seeds of curve {name}", n, a.shape[0])
            if len(epochs) > 1:
                raise _Inconsistent("curves of one variant differ in length")
            for name, a in v.shift.items():
                _same(f"the seeds of shift {name}", n, a.shape[0])
                if name not in c.shift_levels:
                    raise _Inconsistent(f"shift {name[:40]!r} has no levels")
                _same(f"the levels of shift {name}", a.shape[1], len(c.shift_levels[name]))
            for bands, arrays in ((v.curve_bands, v.curves), (v.shift_bands, v.shift)):
                for name, band in bands.items():
                    if name not in arrays:
                        raise _Inconsistent(f"band {name[:40]!r} has no curve")
                    _same(f"the points of band {name}", arrays[name].shape[1], len(band.mean), len(band.low),
                          len(band.high))
        for comp in [*c.comparisons, *(s.comparison for s in c.shift_comparisons)]:
            if comp.a not in c.variants or comp.b not in c.variants:
                raise _Inconsistent(f"a comparison names a variant {comp.a[:40]!r}/{comp.b[:40]!r} that did not run")
        for s in c.shift_comparisons:
            if s.kind not in c.shift_levels:
                raise _Inconsistent(f"shift comparison {s.kind[:40]!r} has no levels")


def _denoise(r: Any) -> None:
    n = len(r.sigmas)
    _same("the noise levels of sigmas, gain_db and psnr", n, len(r.gain_db), *(len(v) for v in r.psnr.values()))
    if "alphas" not in r.equivariance:
        raise _Inconsistent("equivariance has no 'alphas'")
    _same("the scales of equivariance", *(len(v) for v in r.equivariance.values()))
    for e in r.examples:
        _same("the shapes of an example's images", e.clean.shape, e.noisy.shape,
              *(a.shape for a in e.denoised.values()))
    for f in r.filters:
        _same("the pixels, labels and row statistics of a filter", len(f.pixels), len(f.labels), f.rows.shape[0],
              len(f.centre), len(f.row_sum), len(f.effective_width), len(f.radius90))
        _same("the shapes of a filter's window and rows", f.noisy.shape, f.rows.shape[1:])
        for (row, col) in f.pixels:
            if not (0 <= row < f.noisy.shape[0] and 0 <= col < f.noisy.shape[1]):
                raise _Inconsistent(f"filter pixel ({row}, {col}) lies outside its window {f.noisy.shape}")


def _denoise_apply(r: Any) -> None:
    _same("the shapes of the clean and noisy previews", r.preview_clean.shape, r.preview_noisy.shape)
    for o in r.outputs:
        _same("the shapes of the previews", r.preview_clean.shape, o.preview.shape)
    if r.preview_clean.ndim == 3 and r.preview_clean.shape[2] not in (1, 3, 4):
        raise _Inconsistent(f"preview has {r.preview_clean.shape[2]} channels")


def _audit(r: Any) -> None:
    if r.contributions is not None and len(r.contributions) > len(r.biases):
        raise _Inconsistent("there are more contributions than biases")


def _param(r: Any, key: str, kind: type, low: float, high: float, required: bool = False) -> None:
    """``params[key]`` (which a renderer reads) is a ``kind`` in [low, high] (or absent, unless required)."""
    if key not in r.params:
        if required:
            raise _Inconsistent(f"params has no {key!r}")
        return
    v = r.params[key]
    if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int) or not low <= v <= high:
        raise _Inconsistent(f"params.{key} is {str(v)[:40]!r}; it must be a number in [{low:g}, {high:g}]")


def _demo(r: Any) -> None:
    _param(r, "seed", int, 0, 2**32 - 1)


def _denoise_params(r: Any) -> None:
    _denoise(r)
    _param(r, "depth", int, 2, 64, required=bool(r.filters))


def _ablate_params(r: Any) -> None:
    _ablate(r)
    _param(r, "alpha", float, 0, 1)


_CONSISTENCY = {"demo": _demo, "regression": _regression, "relu": _relu, "conv": _conv, "ablate": _ablate_params,
                "denoise": _denoise_params, "denoise-apply": _denoise_apply, "audit": _audit}


def check_consistency(result: Any, source: str = "results.json") -> None:
    """Refuse (:class:`BiaslabError`) a decoded result whose fields disagree with each other (a list of
    5 biases beside 4 curves), which the schema of each field alone cannot see."""
    from ..infra.io import BiaslabError

    check = _CONSISTENCY.get(result.command)
    if check is None:
        return
    try:
        check(result)
    except _Inconsistent as exc:
        raise BiaslabError(f"{source} is damaged or inconsistent: {exc}; run the command again to regenerate it") from None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise BiaslabError(f"{source} is inconsistent ({type(exc).__name__}: {str(exc)[:200]}); run the command "
                           "again to regenerate it") from None
