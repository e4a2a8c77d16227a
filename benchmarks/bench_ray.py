"""Benchmark: ``biaslab ablate --engine ray`` against ``--engine local`` on a 4-configuration quick grid.

Grid: models cnn, mlp × data sets digits, faces, ``--quick`` (3 seeds; 6 or 10 epochs), nothing
kept on disk. Every measurement runs in a fresh Python process (as a user's command does), timed
from after ``import biaslab.ablate`` (the same for every engine):

* local   — the local engine (one configuration after another, each batched);
* ray, N  — a local Ray with N worker CPUs (N = 1, 2), each configuration one task, timed without
  Ray's start-up (``ray.init`` beforehand, its workers still cold) and with it (``ray.init`` +
  the run + ``ray.shutdown``: what a user waits for).

Each measurement is repeated ``--repeat`` times and the median kept. Prints configurations per
minute and ray / local wall time; the target is ≤ 1.5×. The results of every engine are checked
to be identical.

    python benchmarks/bench_ray.py [--workers 1,2] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time

GRID = dict(models=["cnn", "mlp"], datasets=["digits", "faces"], quick=True, out_dir=None)
#: The issue's target: ray wall time at most this multiple of local's.
TARGET_RATIO = 1.5


def _one(engine: str, workers: int, threads: int) -> dict[str, float | str]:
    """In this (fresh) process: one run; its times and a digest of its configurations."""
    from biaslab.ablate import run_ablate
    from biaslab.results import payload

    start = stop = 0.0
    if engine == "ray":
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        start = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_ablate(**GRID, engine=engine, threads=threads)
    wall = time.perf_counter() - t0
    if engine == "ray":
        t0 = time.perf_counter()
        ray.shutdown()
        stop = time.perf_counter() - t0
    digest = hashlib.sha256(json.dumps(payload(res)["configurations"], sort_keys=True).encode()).hexdigest()
    return {"start": start, "wall": wall, "stop": stop, "digest": digest}


def _measure(engine: str, workers: int, threads: int, repeat: int) -> dict[str, float | str]:
    """Median times of ``repeat`` fresh processes (their digests must agree)."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, __file__, "--one", engine, "--workers", str(workers),
                              "--threads", str(threads)], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert len({r["digest"] for r in runs}) == 1, "a run's results differ from another's"
    med = {k: statistics.median(r[k] for r in runs) for k in ("start", "wall", "stop")}
    med["total"] = statistics.median(r["start"] + r["wall"] + r["stop"] for r in runs)
    return {**med, "digest": runs[0]["digest"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="Ray worker CPUs to try, comma-separated")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per configuration")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per measurement (median kept)")
    ap.add_argument("--one", choices=["local", "ray"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, int(args.workers), args.threads)))
        return
    n = len(GRID["models"]) * len(GRID["datasets"])
    local = _measure("local", 1, args.threads, args.repeat)
    print(f"{n} configurations (cnn, mlp x digits, faces; --quick), torch threads {args.threads}, "
          f"median of {args.repeat} fresh processes")
    print(f"  local               {local['wall']:5.1f} s  {60 * n / local['wall']:5.1f} configurations/minute")
    for workers in (int(w) for w in args.workers.split(",")):
        ray = _measure("ray", workers, args.threads, args.repeat)
        assert ray["digest"] == local["digest"], "ray results differ from local"
        without, with_ = ray["wall"] / local["wall"], ray["total"] / local["wall"]
        print(f"  ray, {workers} worker(s)    {ray['wall']:5.1f} s  {60 * n / ray['wall']:5.1f} configurations/minute"
              f"  ray / local = {without:.2f}x ({'within' if without <= TARGET_RATIO else 'over'} {TARGET_RATIO}x)")
        print(f"    + Ray start-up {ray['start']:.1f} s, shut-down {ray['stop']:.1f} s = {ray['total']:5.1f} s  "
              f"{60 * n / ray['total']:5.1f} configurations/minute  ray / local = {with_:.2f}x "
              f"({'within' if with_ <= TARGET_RATIO else 'over'} {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
