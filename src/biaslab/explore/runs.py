"""An optional fifth panel from a saved run (``biaslab explore --from DIR``).

A ``biaslab denoise`` output gives a σ slider over its PSNR table; a ``biaslab ablate``
output gives a shift slider over each configuration's accuracies under distribution
shift. The numbers are read from results.json (:func:`biaslab.results.load_results`) as the
run stored them, never recomputed; the sentences shown are the run's own claims.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["RUN_COMMANDS", "run_panel", "denoise_panel", "ablate_panel"]

#: Commands whose output ``--from`` accepts.
RUN_COMMANDS = ("denoise", "ablate")


def _floats(values) -> list[float | None]:
    """Plain floats for JSON; a missing or non-finite value (NaN: not measured; ∞: a noiseless input's PSNR) is None."""
    return [float(v) if v is not None and math.isfinite(v) else None for v in values]


def _claims(result, keep=lambda claim: True) -> list[dict[str, Any]]:
    return [{"id": c.id, "text": c.text, "holds": c.holds, "verdict": c.verdict} for c in result.claims if keep(c)]


def denoise_panel(result) -> dict[str, Any]:
    """The σ slider's data: PSNR of the noisy input and of both networks at each test σ (0–255 scale)."""
    return {
        "command": "denoise",
        "sigmas": _floats(result.sigmas),
        "psnr": {name: _floats(result.psnr[name]) for name in ("noisy", "with_bias", "bias_free")},
        "gain_db": _floats(result.gain_db),
        "train_sigma_max": float(result.train_sigma_max),
        "claims": _claims(result),
    }


def _slider_order(kind: str, levels) -> list[int]:
    """Grid positions from no shift to the strongest (furthest from the identity: ``|ln c|`` for
    contrast, ``|level|`` otherwise, as the ablation decides), whatever order the run used."""
    far = [abs(math.log(v)) if kind == "contrast" and v > 0 else abs(v) for v in levels]
    return sorted(range(len(levels)), key=lambda i: (far[i], levels[i]))


def _shift_claim(cfg_name: str, kind: str):
    def keep(c) -> bool:
        if not c.id.startswith(f"{cfg_name}/"):
            return False
        return c.id.endswith(f"/{kind}") or f"/{kind}@" in c.id
    return keep


def ablate_panel(result) -> dict[str, Any]:
    """The shift slider's data: per configuration and shift, each variant's accuracy band at each level
    (levels ordered from no shift to the strongest)."""
    configurations = []
    for cfg in result.configurations:
        shifts = {}
        for kind, levels in cfg.shift_levels.items():
            order = _slider_order(kind, levels)

            def pick(values, order=order):
                return _floats([values[i] for i in order])

            shifts[kind] = {
                "levels": pick(levels),
                "variants": {
                    name: {
                        "mean": pick(runs.shift_bands[kind].mean),
                        "low": pick(runs.shift_bands[kind].low),
                        "high": pick(runs.shift_bands[kind].high),
                        "band": runs.shift_bands[kind].kind,
                        "confidence": runs.shift_bands[kind].confidence,
                    }
                    for name, runs in cfg.variants.items()
                },
                "claims": _claims(result, _shift_claim(cfg.name, kind)),
            }
        configurations.append({"name": cfg.name, "seeds": len(cfg.seeds), "shifts": shifts})
    return {"command": "ablate", "configurations": configurations}


def run_panel(directory: str | Path) -> dict[str, Any]:
    """The panel for the run saved in ``directory`` (a ``biaslab denoise`` or ``biaslab ablate`` output).

    Raises
    ------
    BiaslabError : when ``directory`` holds no results.json, an unreadable one, or another command's.
    """
    from ..infra.io import BiaslabError
    from ..results import load_results

    result = load_results(directory)
    if result.command == "denoise":
        return denoise_panel(result)
    if result.command == "ablate":
        return ablate_panel(result)
    raise BiaslabError(
        f"`run` {directory} holds a biaslab {result.command} run; pass the output folder of "
        f"biaslab {' or biaslab '.join(RUN_COMMANDS)}"
    )
