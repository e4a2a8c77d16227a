"""``--threads N``: how many CPU threads torch and the BLAS libraries may use."""

from __future__ import annotations

import os
import sys

from .validate import bounded_int

__all__ = ["available_cpus", "set_threads"]

#: Environment variables the OpenMP and BLAS runtimes read when they start.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_threads(n: int) -> int:
    """Use ``n`` CPU threads (1 <= n <= the CPUs available) in torch and in BLAS.

    Sets the runtimes' environment variables (read by torch and BLAS libraries loaded later),
    ``torch.set_num_threads`` when torch is already loaded, and threadpoolctl's limit for BLAS
    libraries NumPy has already loaded. torch is not imported here.

    Returns
    -------
    int
        ``n``.
    """
    n = bounded_int("threads", n, 1, available_cpus())
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    return n
