"""Who audits the model types: each type in a child process with a time limit, ``jobs`` at once
(``local``), or one Ray task per type (``ray``, through ablate's :class:`RaySession`).

A child is forked from a parent that has imported torch and ``transformers`` but run nothing, so a
child starts in milliseconds. It sends its record through a pipe three times (audited, with the
default-size counts, with the perturbation check); the parent keeps the last record it received. A
child still running at its time limit is killed, and its type is listed with the reason (or, when
the audit had finished and only the counts or the check were missing, kept with a note). A child that dies (out of memory,
a crash in native code) is listed with its exit code. Nothing a model does stops the census. On CUDA
children are spawned instead (a forked child cannot re-initialise CUDA), each importing torch anew.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .audit_type import OFFLINE_ENV, audit_type

__all__ = ["ENGINES", "run_types", "run_local", "run_ray", "failed_record"]

ENGINES = ("local", "ray")


def failed_record(model_type: str, reason: str, seconds: float | None = None) -> dict[str, Any]:
    """The record of a type whose child gave no answer."""
    return {"model_type": model_type, "audited": False, "reason": reason, "stage": "process", "findings": [],
            "seconds": seconds, "timings": {}, "notes": []}


def _child(conn, model_type: str, seed: int, device: str, threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
        audit_type(model_type, seed, device, send=conn.send)
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing the parent's inherited buffers twice


def _context(device: str = "cpu"):
    """Fork where it is safe (CPU work, a POSIX system); spawn for CUDA, which a forked child cannot
    re-initialise."""
    import multiprocessing as mp

    fork = "fork" in mp.get_all_start_methods() and not device.startswith("cuda")
    return mp.get_context("fork" if fork else "spawn")


def _prepare() -> None:
    """Import what every child needs, once, before forking."""
    os.environ.update(OFFLINE_ENV)
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import transformers.modeling_utils  # noqa: F401 - the slow import every model module needs (about 1 s)
    from transformers import AutoConfig, AutoModel  # noqa: F401

    from ..audit import graph, verify  # noqa: F401


def _finish(model_type: str, rec: dict[str, Any] | None, why: str, seconds: float) -> dict[str, Any]:
    if rec is None:
        return failed_record(model_type, why, round(seconds, 4))
    if not rec.get("final"):  # the audit finished; the default-size counts or the perturbation check did not
        unfinished = {"default sizes": "default-size counts unavailable", "verify": "perturbation check unfinished"}
        note = f"{unfinished.get(rec.get('stage'), 'unfinished')}: {why}"
        rec = dict(rec, stage="done", seconds=round(seconds, 4))
        rec["notes"] = [*rec.get("notes", []), note]
    rec.pop("final", None)
    for row in rec.get("findings", []):
        row.pop("id", None)
    return rec


def run_local(model_types: list[str], seed: int = 0, device: str = "cpu", threads: int = 1, jobs: int = 1,
              time_limit: float = 60.0, done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Audit each type in its own child process, ``jobs`` at a time, each within ``time_limit`` seconds."""
    from multiprocessing.connection import wait

    _prepare()
    ctx = _context(device)
    queue = list(model_types)
    running: dict[Any, dict[str, Any]] = {}  # pipe end -> {type, process, start, record}
    results: list[dict[str, Any]] = []

    def close(conn, why: str) -> None:
        job = running.pop(conn)
        proc = job["process"]
        if proc.is_alive():
            proc.kill()
        proc.join()
        conn.close()
        if why == "":
            why = f"its process died (exit code {proc.exitcode}) before answering"
        rec = _finish(job["type"], job["record"], why, time.perf_counter() - job["start"])
        results.append(rec)
        if done is not None:
            done(rec)

    try:
        while queue or running:
            while queue and len(running) < jobs:
                mt = queue.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(send, mt, seed, device, threads), daemon=True)
                proc.start()
                send.close()
                running[recv] = {"type": mt, "process": proc, "start": time.perf_counter(), "record": None}
            now = time.perf_counter()
            timeout = max(0.0, min(j["start"] + time_limit for j in running.values()) - now)
            for conn in wait(list(running), timeout=timeout):
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    close(conn, "")
                    continue
                running[conn]["record"] = msg
                if msg.get("final"):
                    close(conn, "")
            now = time.perf_counter()
            for conn in [c for c, j in running.items() if now - j["start"] >= time_limit]:
                close(conn, f"timed out after {time_limit:g} s")
    finally:
        for conn in list(running):
            running[conn]["process"].kill()
            running[conn]["process"].join()
            conn.close()
            running.pop(conn)
    return results


def _ray_task(model_type: str, seed: int, device: str, threads: int, time_limit: float) -> dict[str, Any]:
    """On a Ray worker: one type, in a child process with the time limit."""
    return run_local([model_type], seed, device, threads, 1, time_limit)[0]


def run_ray(model_types: list[str], seed: int = 0, device: str = "cpu", threads: int = 1, time_limit: float = 60.0,
            address: str | None = None, done: Callable[[dict[str, Any]], None] | None = None,
            background_shutdown: bool = False) -> list[dict[str, Any]]:
    """One Ray task per type (``num_cpus=1``); each task forks a child with the time limit."""
    from ..ablate.ray_engine import RaySession

    results = []
    with RaySession(address, workers=len(model_types), background_shutdown=background_shutdown):
        import ray

        task = ray.remote(num_cpus=1, max_retries=1, retry_exceptions=False)(_ray_task)
        pending = [task.remote(mt, seed, device, threads, time_limit) for mt in model_types]
        names = dict(zip(pending, model_types))
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    rec = ray.get(ready[0])
                except Exception as exc:  # noqa: BLE001 - a lost worker: the type is listed, not fatal
                    from ...infra.io import first_line

                    rec = failed_record(names[ready[0]], f"its Ray task failed: {first_line(exc)[:200]}")
                results.append(rec)
                if done is not None:
                    done(rec)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    return results


def run_types(model_types: list[str], engine: str = "local", **kwargs: Any) -> list[dict[str, Any]]:
    """Every type's record, sorted by type name whatever order they finished in."""
    if engine == "ray":
        kwargs.pop("jobs", None)
        records = run_ray(model_types, **kwargs)
    else:
        kwargs.pop("address", None)
        kwargs.pop("background_shutdown", None)
        records = run_local(model_types, **kwargs)
    return sorted(records, key=lambda r: r["model_type"])
