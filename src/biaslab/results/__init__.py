"""Results are data: one dataclass per command, ``to_dict()`` ⇄ ``from_dict()`` ⇄ results.json.

A result holds the numbers an experiment measured and the :class:`Claim` records concluded from
them; it neither draws nor writes prose (that is :mod:`biaslab.render`). The modules here import
NumPy alone, so reading a results.json never imports torch.

results.json holds ``schema`` (``biaslab.<command>/<version>``), ``biaslab_version``, ``command``,
``params`` and ``claims`` beside the command's own numbers; ``--json`` prints the same payload.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from .base import SCHEMA_VERSION, Claim, Result, decode, encode

__all__ = ["SCHEMA_VERSION", "Claim", "Result", "encode", "decode", "RESULT_TYPES", "result_type", "payload",
           "from_payload", "load_results"]

#: command -> "module:Class" of its result, imported on demand.
RESULT_TYPES = {
    "regression": "biaslab.results.regression:RegressionResult",
    "relu": "biaslab.results.relu:ReluResult",
    "conv": "biaslab.results.conv:ConvResult",
    "ablate": "biaslab.results.ablate:AblateResult",
    "denoise": "biaslab.results.denoise:DenoiseResult",
    "denoise-apply": "biaslab.results.denoise:DenoiseApplyResult",
    "audit": "biaslab.results.audit:AuditResult",
    "census": "biaslab.results.census:CensusResult",
    "demo": "biaslab.results.demo:DemoResult",
}


def result_type(command: str) -> type[Result]:
    """The result class of ``command``."""
    from ..infra.io import BiaslabError

    spec = RESULT_TYPES.get(command)
    if spec is None:
        raise BiaslabError(f"unknown command {command!r} in results; known: {', '.join(RESULT_TYPES)}")
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def payload(result: Result) -> dict[str, Any]:
    """What results.json and ``--json`` hold: the schema header, then the result's fields."""
    from .. import __version__

    return {
        "schema": f"biaslab.{result.command}/{SCHEMA_VERSION}",
        "biaslab_version": __version__,
        "command": result.command,
        **result.to_dict(),
    }


def from_payload(data: Any, source: str = "results.json") -> Result:
    """The result stored in a results.json payload; a clear error for another schema."""
    from ..infra.io import BiaslabError

    if not isinstance(data, dict) or not isinstance(data.get("command"), str) or "schema" not in data:
        raise BiaslabError(f"{source} is not a biaslab results file (no 'schema' and 'command')")
    command = data["command"]
    expected = f"biaslab.{command}/{SCHEMA_VERSION}"
    if data["schema"] != expected:
        raise BiaslabError(
            f"{source} has schema {data['schema']!r} (biaslab {data.get('biaslab_version', '?')}); this biaslab "
            f"reads {expected!r}: run the command again to regenerate it"
        )
    cls = result_type(command)
    fields = {k: v for k, v in data.items() if k not in ("schema", "biaslab_version", "command")}
    try:
        return cls.from_dict(fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise BiaslabError(f"{source} is damaged or incomplete ({type(exc).__name__}: {exc}); "
                           "run the command again to regenerate it") from None


def load_results(path: str | Path) -> Result:
    """Read ``path`` (a results.json, or a directory holding one) into its result object."""
    from ..infra.io import BiaslabError

    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise BiaslabError(f"{p} does not exist; pass a directory written by a biaslab command (--out DIR)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if p.name != "results.json":  # a file given in place of a run's directory, not a damaged results.json
            raise BiaslabError(f"{p} is a file, not a run: pass a directory written by a biaslab command "
                               "(its --out DIR, which holds results.json)") from None
        raise BiaslabError(f"{p} is not valid JSON ({exc}); run the command again to regenerate it") from None
    return from_payload(data, str(p))
