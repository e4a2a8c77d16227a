"""The Ray engine: each configuration one Ray task, results streamed back to the driver.

``ray.init()`` starts a local Ray with this machine's CPUs unless ``address`` (or the
``RAY_ADDRESS`` environment variable) names a running cluster to join. A task runs
:func:`biaslab.ablate.engines.train_unit` on a worker and returns the run records; it writes
nothing. Each data set is put into Ray's object store once and shared by its configurations. The driver appends each task's records to ``runs.jsonl`` as it finishes, so the file
has exactly one line per run wherever the runs trained. A worker that dies mid-task (killed,
out of memory, node lost) makes Ray run the task again, up to :data:`MAX_RETRIES` times;
nothing of the dead attempt reaches the file.

Ray is imported only here, only when ``--engine ray`` is asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from ..io import BiaslabError
from .engines import Unit, train_unit

__all__ = ["MAX_RETRIES", "check_ray", "run_ray"]

#: How often Ray re-runs a configuration whose worker died.
MAX_RETRIES = 3


def check_ray() -> None:
    """Raise :class:`BiaslabError` when Ray is not installed (checked before any work)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise BiaslabError("--engine ray needs Ray: pip install 'biaslab[ray]'")


def _task(unit: Unit, ds) -> list[dict[str, Any]]:
    """On a worker: train ``unit`` on ``ds`` (Ray resolves the object-store reference)."""
    return train_unit(dataclasses.replace(unit, ds=ds))[0]


def run_ray(units: list[Unit], address: str | None, advance: Callable[..., None]) -> Iterator[list[dict[str, Any]]]:
    """Submit every unit as a task; yield each one's records as soon as it finishes.

    A Ray started here is shut down at the end; one the caller started (``ray.is_initialized()``)
    is left running. On Ctrl-C the pending tasks are cancelled.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = address or "a local Ray"
            raise BiaslabError(f"cannot start or join Ray at {where}: {exc}") from None
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(_task)
    data = {}  # each data set goes into the object store once, however many configurations use it
    for u in units:
        if id(u.ds) not in data:
            data[id(u.ds)] = ray.put(u.ds)
    pending = [task.remote(dataclasses.replace(u, ds=None), data[id(u.ds)]) for u in units]
    labels = {ref: u.label for ref, u in zip(pending, units)}
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            records = ray.get(done[0])
            advance(1, description=f"ablate on Ray: {labels[done[0]]} done")
            yield records
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
