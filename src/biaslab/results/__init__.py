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
    """The result stored in a results.json payload; a clear error for another schema.

    The payload is untrusted: it is validated against its command's declared schema
    (:mod:`biaslab.results.schema`: types, the command's limits, array dtypes and shapes,
    nesting) before anything in it is decoded, then checked for consistency across fields.
    """
    from ..infra.io import BiaslabError
    from .schema import check_consistency, check_payload

    if not isinstance(data, dict) or not isinstance(data.get("command"), str) or "schema" not in data:
        raise BiaslabError(f"{source} is not a biaslab results file (no 'schema' and 'command')")
    command = data["command"]
    if command not in RESULT_TYPES:
        raise BiaslabError(f"{source} holds results of an unknown command {command[:40]!r}; known: "
                           f"{', '.join(RESULT_TYPES)}")
    expected = f"biaslab.{command}/{SCHEMA_VERSION}"
    if data["schema"] != expected:
        found = data["schema"] if isinstance(data["schema"], str) else type(data["schema"]).__name__
        version = data.get("biaslab_version", "?")
        raise BiaslabError(
            f"{source} has schema {found[:60]!r} (biaslab {str(version)[:20]}); this biaslab "
            f"reads {expected!r}: run the command again to regenerate it"
        )
    check_payload(data, command, source)
    cls = result_type(command)
    fields = {k: v for k, v in data.items() if k not in ("schema", "biaslab_version", "command")}
    try:
        result = cls.from_dict(fields)
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise BiaslabError(f"{source} is damaged or incomplete ({type(exc).__name__}: {str(exc)[:200]}); "
                           "run the command again to regenerate it") from None
    check_consistency(result, source)
    return result


def load_results(path: str | Path) -> Result:
    """Read ``path`` (a results.json, or a directory holding one) into its result object.

    The file is untrusted: at most :data:`~biaslab.results.schema.MAX_RESULTS_BYTES` are read,
    and anything that is not a valid results file of a known command is one
    :class:`~biaslab.infra.io.BiaslabError`.
    """
    from ..infra.io import BiaslabError
    from .schema import MAX_RESULTS_BYTES

    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if p.exists() and not p.is_file():
        raise BiaslabError(f"{p} is not a regular file; pass a folder written by a biaslab command (it holds results.json)")
    if not p.is_file():
        raise BiaslabError(f"{p} does not exist; pass a folder written by a biaslab command (it holds results.json)")
    try:
        size = p.stat().st_size
        if size > MAX_RESULTS_BYTES:
            raise BiaslabError(f"{p} is {size / 1024**2:.0f} MiB; a results file is at most "
                               f"{MAX_RESULTS_BYTES // 1024**2} MiB: pass a directory written by a biaslab command")
        with open(p, "rb") as fh:
            raw = fh.read(MAX_RESULTS_BYTES + 1)
    except OSError as exc:
        raise BiaslabError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError, a 5000-digit number
        if p.name != "results.json":  # a file given in place of a run's directory, not a damaged results.json
            raise BiaslabError(f"{p} is a file, not a run: pass a directory written by a biaslab command "
                               "(the output folder, which holds results.json)") from None
        what = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:200]
        raise BiaslabError(f"{p} is not valid JSON ({what}); run the command again to regenerate it") from None
    return from_payload(data, str(p))
