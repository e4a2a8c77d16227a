"""Benchmark: ``biaslab ablate --engine ray`` against ``--engine local`` on a 4-configuration quick grid.

Grid: models cnn, mlp × data sets digits, faces, ``--quick`` (3 seeds; 6 or 10 epochs). Timed, in
this process and with nothing kept on disk:

* local      — the local engine (one configuration after another, each batched);
* ray, N     — a local Ray with N worker CPUs (N = 1, 2), each configuration one task; timed
  with Ray's start-up (what a user waits for) and without it (``ray.init`` done beforehand).

Prints configurations per minute for each, and ray / local wall time (target ≤ 1.5× with 2 workers
on a 2-core machine, start-up included). The results of every engine are checked to be identical.

    python benchmarks/bench_ray.py [--workers 1,2] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

from biaslab.ablate import run_ablate
from biaslab.results import payload

GRID = dict(models=["cnn", "mlp"], datasets=["digits", "faces"], quick=True, out_dir=None)


def _run(**kwargs):
    t0 = time.perf_counter()
    res = run_ablate(**GRID, **kwargs)
    return time.perf_counter() - t0, payload(res)["configurations"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="Ray worker CPUs to try, comma-separated")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per configuration")
    args = ap.parse_args()
    import ray

    n = len(GRID["models"]) * len(GRID["datasets"])
    local, reference = _run(threads=args.threads)
    print(f"{n} configurations (cnn, mlp x digits, faces; --quick), torch threads {args.threads}")
    print(f"  local            {local:7.1f} s   {60 * n / local:6.1f} configurations/minute")
    for workers in (int(w) for w in args.workers.split(",")):
        t0 = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        start = time.perf_counter() - t0
        wall, configs = _run(engine="ray", threads=args.threads)
        ray.shutdown()
        assert configs == reference, "ray results differ from local"
        total = start + wall
        print(f"  ray, {workers} worker(s)  {wall:7.1f} s   {60 * n / wall:6.1f} configurations/minute "
              f"(+{start:.1f} s Ray start-up: {60 * n / total:.1f}/minute; ray / local = {total / local:.2f}x)")


if __name__ == "__main__":
    main()
