"""``biaslab census``: the command's library function."""

from __future__ import annotations

import difflib
import os
import sys
import time
from collections.abc import Callable

from ...infra.io import BiaslabError
from ...results.census import CensusModel, CensusResult
from .claims import census_claims

__all__ = ["MAX_TIME_LIMIT", "MAX_JOBS", "model_types", "run_census"]

#: Longest time limit per model type, in seconds.
MAX_TIME_LIMIT = 3600.0
#: Most model types audited at once by the local engine.
MAX_JOBS = 64


def model_types() -> list[str]:
    """Every model type the installed ``transformers`` can build with ``AutoModel.from_config``, sorted."""
    try:
        from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES
    except ImportError:
        raise BiaslabError("the census needs the transformers package: pip install 'biaslab[transformers]'") from None
    return sorted(MODEL_MAPPING_NAMES)


def _select(only: list[str] | None, available: list[str]) -> list[str]:
    if only is None:
        return available
    known = set(available)
    chosen = list(dict.fromkeys(name.strip() for name in only if name.strip()))
    if not chosen:
        raise BiaslabError("only names no model type; pass model types such as bert,gpt2")
    for name in chosen:
        if name not in known:
            close = difflib.get_close_matches(name, available, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see transformers' model types (e.g. bert, gpt2, vit)"
            raise BiaslabError(f"unknown model type {name!r} in only{hint}")
    return chosen


def run_census(only: list[str] | None = None, seed: int = 0, engine: str = "local", jobs: int = 1,
               threads: int | None = None, time_limit: float = 60.0, device: str = "cpu", address: str | None = None,
               show_progress: bool = False, notify: Callable[[str], None] | None = None,
               ray_background_shutdown: bool = False) -> CensusResult:
    """Audit the biases of every model type ``transformers`` builds offline from its configuration.

    Parameters
    ----------
    only : model types to audit (e.g. ``["bert", "gpt2"]``); all when None.
    engine : ``local`` (child processes on this machine, ``jobs`` at a time) or ``ray`` (one Ray
        task per model type; ``address`` joins a cluster).
    threads : torch threads in each child (default 1).
    time_limit : seconds one model type may take; a type still running then is listed as timed out.
    device : where the tiny models run (``cpu``, ``cuda``, ``auto``).
    notify : called with a line per finished model type (its time and outcome).

    Returns
    -------
    A :class:`CensusResult`: one record per model type (audited, or a one-line reason), with claims.
    """
    from ...infra.device import resolve_device
    from ...infra.progress import progress_bar
    from ...infra.validate import check_choice
    from .engines import ENGINES, run_types

    check_choice("engine", engine, ENGINES)
    if not 1 <= jobs <= MAX_JOBS:
        raise BiaslabError(f"jobs must be from 1 to {MAX_JOBS} (got {jobs})")
    if not (time_limit == time_limit and 1.0 <= time_limit <= MAX_TIME_LIMIT):
        raise BiaslabError(f"time_limit must be from 1 to {MAX_TIME_LIMIT:g} seconds (got {time_limit})")
    if engine == "ray":
        from ..ablate.ray_engine import check_ray

        check_ray()
    dev = str(resolve_device(device))
    available = model_types()
    chosen = _select(only, available)
    import transformers

    per_child = threads or 1
    start = time.perf_counter()
    with progress_bar(len(chosen), "census of transformers model types", show_progress) as advance:
        def done(rec: dict) -> None:
            outcome = "audited" if rec.get("audited") else f"not audited: {rec.get('reason')}"
            advance(1, description=f"census: {rec['model_type']} ({(rec.get('seconds') or 0):.1f} s)")
            if notify is not None:
                notify(f"{rec['model_type']}: {(rec.get('seconds') or 0):.2f} s, {outcome}")

        records = run_types(chosen, engine, seed=seed, device=dev, threads=per_child, jobs=jobs,
                            time_limit=float(time_limit), address=address, done=done,
                            background_shutdown=ray_background_shutdown)
    seconds = time.perf_counter() - start
    res = CensusResult(
        models=[CensusModel.from_record(r) for r in records], transformers_version=transformers.__version__,
        available=len(available), seconds=seconds, engine=engine, jobs=jobs if engine == "local" else 1,
        threads=per_child, time_limit=float(time_limit),
        params={"only": list(chosen) if only else None, "seed": seed, "engine": engine, "jobs": jobs,
                "threads": per_child, "time_limit": float(time_limit), "device": dev, "cpus": os.cpu_count(),
                "python": sys.version.split()[0]})
    res.claims = census_claims(res)
    return res
