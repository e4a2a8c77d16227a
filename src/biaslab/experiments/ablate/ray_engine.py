"""The Ray engine: each configuration one Ray task, results streamed back to the driver.

:class:`RaySession` starts a local Ray with this machine's CPUs (``ray.init()``) unless
``address`` (or the ``RAY_ADDRESS`` environment variable) names a running cluster to join.
A task runs :func:`biaslab.experiments.ablate.engines.train_unit` on a worker and returns the run records;
it writes nothing. Each data set is put into Ray's object store once and shared by its
configurations. The driver appends each task's records to ``runs.jsonl`` as it finishes, so the
file has exactly one line per run wherever the runs trained. A worker that dies mid-task
(killed, out of memory, node lost) makes Ray run the task again, up to :data:`MAX_RETRIES`
times; nothing of the dead attempt reaches the file.

Start-up and shut-down are what make Ray slower than the local engine on a small grid, so the
session hides what it can (``benchmarks/bench_ray.py`` measures it):

* it is opened before the data are loaded, and its first act is a warm-up task per worker
  that imports torch and biaslab and builds an optimizer (about 2 s per worker process, half
  of it ``torch._dynamo``, which torch imports when the first optimizer is built), so the
  workers do that while the driver loads and checks the data;
* Ray's processes take over a second to stop gracefully. With ``background_shutdown`` (the
  CLI's choice) a Ray started here stops in a background thread while the driver writes the
  report; the thread is joined before this module starts Ray again and when the interpreter
  exits.

Ray is imported only here, only when ``--engine ray`` is asked for.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ...infra.io import BiaslabError, first_line
from .engines import Unit, train_unit

__all__ = ["MAX_RETRIES", "CONNECT_TIMEOUT", "check_ray", "cluster_address", "RaySession"]

#: How often Ray re-runs a configuration whose worker died.
MAX_RETRIES = 3
#: Seconds to wait for a cluster's address to accept a connection.
CONNECT_TIMEOUT = 5.0

_stopping: threading.Thread | None = None  # a Ray started here, still shutting down


def check_ray() -> None:
    """Raise :class:`BiaslabError` when Ray is not installed (checked before any work)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise BiaslabError("`engine` ray needs Ray: pip install 'biaslab[ray]'")


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``$RAY_ADDRESS``; None means start a local Ray."""
    return address or os.environ.get("RAY_ADDRESS") or None


def _check_reachable(address: str) -> None:
    """Raise :class:`BiaslabError` unless something accepts a connection at ``HOST:PORT``.

    ``ray.init`` retries an address where nothing listens for minutes, printing Ray's own log
    lines; this fails in at most :data:`CONNECT_TIMEOUT` seconds with one line instead. Ray's
    own keywords (``auto``, ``local``) are left to ``ray.init``.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise BiaslabError(f"cannot join Ray at {address}: nothing answers there ({exc.strerror or exc}); "
                           "start one with `ray start --head`, or drop `address` (and RAY_ADDRESS) "
                           "to start a local Ray") from None


def _task(unit: Unit, ds) -> list[dict[str, Any]]:
    """On a worker: train ``unit`` on ``ds`` (Ray resolves the object-store reference)."""
    return train_unit(dataclasses.replace(unit, ds=ds))[0]


def _warm_up() -> None:
    """On a worker, before its first task: import what :func:`_task` needs, torch above all, and
    build an optimizer, whose first construction imports ``torch._dynamo`` (about a second)."""
    import torch

    from ...nets.train import TrainConfig

    TrainConfig().optimizer_for([("warm_up", torch.zeros(1, requires_grad=True))])


def _finish_shutdown() -> None:
    """Wait until the Ray this module started has stopped (if it is stopping)."""
    global _stopping
    if _stopping is not None:
        _stopping.join()
        _stopping = None


def _shut_down_in_background(ray) -> None:
    """Start ``ray.shutdown()`` in a thread; :func:`_finish_shutdown` waits for it, at the
    latest when the interpreter exits."""
    global _stopping
    _stopping = threading.Thread(target=ray.shutdown, name="biaslab-ray-shutdown")
    _stopping.start()
    # Exit handlers run last-registered first: registered after ``import ray`` (which registers
    # its own shutdown), the join runs before Ray's handler.
    atexit.unregister(_finish_shutdown)
    atexit.register(_finish_shutdown)


class RaySession:
    """Ray for one ablation: ``with RaySession(...) as session: ... session.run(units, advance)``.

    Parameters
    ----------
    address : ``HOST:PORT`` of a cluster to join; None starts a local Ray (or joins
        ``RAY_ADDRESS``). A Ray already initialised in this process is used as it is and left
        running.
    workers : how many workers to warm up (at most the cluster's CPUs): the number of
        configurations that can run at once.
    background_shutdown : return from ``__exit__`` while a Ray started here is still stopping
        (see the module docstring). Do not start Ray yourself right after such a session.
    """

    def __init__(self, address: str | None = None, workers: int = 1, background_shutdown: bool = False) -> None:
        self.address, self.workers, self.background_shutdown = address, workers, background_shutdown
        self.started = False

    def __enter__(self) -> "RaySession":
        import ray

        _finish_shutdown()
        if not ray.is_initialized():
            address = cluster_address(self.address)
            if address is not None:
                _check_reachable(address)
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = address or "a local Ray"
                raise BiaslabError(f"cannot start or join Ray at {where}: {first_line(exc)}") from None
            self.started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        warm = ray.remote(num_cpus=1)(_warm_up)
        for _ in range(max(1, min(self.workers, cpus))):
            warm.remote()  # nothing to wait for: a worker busy importing takes its first task after
        return self

    def __exit__(self, *exc_info) -> None:
        import ray

        if self.started and self.background_shutdown:
            _shut_down_in_background(ray)
        elif self.started:
            ray.shutdown()

    def run(self, units: list[Unit], advance: Callable[..., None]) -> Iterator[list[dict[str, Any]]]:
        """Submit every unit as a task; yield each one's records as soon as it finishes.

        On Ctrl-C (or any error) the pending tasks are cancelled.
        """
        import ray

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
