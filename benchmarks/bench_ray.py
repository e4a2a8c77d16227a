"""Benchmark: ``biaslab ablate --engine ray`` against ``--engine local`` on a 4-configuration quick grid.

Grid: models cnn, mlp × data sets digits, faces, ``--quick`` (3 seeds; 6 or 10 epochs), the same
``--threads`` for both engines. Every measurement runs in a fresh process, and the rounds
interleave the engines (local, ray, local, ray, ...) so that a slow spell of the machine hits
both alike; the median of ``--repeat`` rounds is kept.

1. **The command** (what a user waits for): ``biaslab ablate … --out TMP --quiet`` from process
   start to exit, with Ray's start-up, the figures and the report, and Ray's shut-down. Ray gets
   this machine's CPUs. Target: ray ≤ 1.5 × local.
2. **Configurations per minute** with 1 and 2 Ray workers (``run_ablate`` only, timed after
   ``import biaslab.experiments.ablate``): with Ray already running (``ray.init`` beforehand, its workers
   still cold) and with Ray started and stopped by the run.

The results of every engine and worker count are checked to be identical.

    python benchmarks/bench_ray.py [--workers 1,2] [--threads 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS, DATASETS = ["cnn", "mlp"], ["digits", "faces"]
#: The issue's target: ray wall time at most this multiple of local's.
TARGET_RATIO = 1.5


def _digest(configurations) -> str:
    return hashlib.sha256(json.dumps(configurations, sort_keys=True).encode()).hexdigest()


def _command(engine: str, threads: int) -> dict[str, float | str]:
    """The CLI in a fresh process: its wall time and a digest of its configurations."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "biaslab", "ablate", "--model", ",".join(MODELS), "--dataset",
               ",".join(DATASETS), "--quick", "--threads", str(threads), "--engine", engine, "--out", tmp, "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        configurations = json.loads((Path(tmp) / "results.json").read_text())["configurations"]
    return {"wall": wall, "digest": _digest(configurations)}


def _run(mode: str, workers: int, threads: int) -> dict[str, float | str]:
    """In this (fresh) process: ``run_ablate`` alone, timed; ``mode`` local, ray-running or ray-started."""
    import functools

    from biaslab.experiments.ablate import run_ablate
    from biaslab.results import payload

    engine = "local" if mode == "local" else "ray"
    if engine == "ray":
        import ray

        ray.init = functools.partial(ray.init, num_cpus=workers)  # the Ray size under test
        if mode == "ray-running":
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    t0 = time.perf_counter()
    res = run_ablate(models=MODELS, datasets=DATASETS, quick=True, out_dir=None, engine=engine, threads=threads)
    wall = time.perf_counter() - t0
    return {"wall": wall, "digest": _digest(payload(res)["configurations"])}


def _rounds(measures: dict[str, list[str]], repeat: int) -> dict[str, dict[str, float | str]]:
    """Run every measurement once per round, ``repeat`` rounds; the median wall time of each."""
    walls: dict[str, list[float]] = {k: [] for k in measures}
    digests: dict[str, set] = {k: set() for k in measures}
    for _ in range(repeat):
        for key, argv in measures.items():
            out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=True)
            one = json.loads(out.stdout.strip().splitlines()[-1])
            walls[key].append(one["wall"])
            digests[key].add(one["digest"])
    assert len(set().union(*digests.values())) == 1, f"results differ between runs or engines: {digests}"
    return {k: {"wall": statistics.median(v), "runs": v} for k, v in walls.items()}


def _verdict(ratio: float) -> str:
    return f"ray / local = {ratio:.2f}x ({'within' if ratio <= TARGET_RATIO else 'over'} {TARGET_RATIO}x)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2", help="Ray worker CPUs to try, comma-separated")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per configuration")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median kept)")
    ap.add_argument("--command", choices=["local", "ray"], help=argparse.SUPPRESS)
    ap.add_argument("--run", choices=["local", "ray-running", "ray-started"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.command:
        print(json.dumps(_command(args.command, args.threads)))
        return
    if args.run:
        print(json.dumps(_run(args.run, int(args.workers), args.threads)))
        return
    n, t = len(MODELS) * len(DATASETS), ["--threads", str(args.threads)]
    print(f"{n} configurations ({', '.join(MODELS)} x {', '.join(DATASETS)}; --quick), torch threads "
          f"{args.threads}, {os.cpu_count()} CPUs, median of {args.repeat} interleaved rounds of fresh processes")

    cmd = _rounds({e: ["--command", e, *t] for e in ("local", "ray")}, args.repeat)
    print("\n1. the command, start to exit (Ray with every CPU)")
    for e in ("local", "ray"):
        print(f"  {e:6s} {cmd[e]['wall']:5.1f} s   (rounds: {', '.join(f'{w:.1f}' for w in cmd[e]['runs'])})")
    print(f"  {_verdict(cmd['ray']['wall'] / cmd['local']['wall'])}")

    workers = [int(w) for w in args.workers.split(",")]
    measures = {"local": ["--run", "local", "--workers", "1", *t]}
    for w in workers:
        for mode in ("ray-running", "ray-started"):
            measures[f"{mode} {w}"] = ["--run", mode, "--workers", str(w), *t]
    run = _rounds(measures, args.repeat)
    local = run["local"]["wall"]
    print("\n2. run_ablate alone: configurations per minute")
    rows = [("local", local, "")]
    for w in workers:
        for mode, what in (("ray-running", "Ray already running"), ("ray-started", "Ray started and stopped")):
            wall = run[f"{mode} {w}"]["wall"]
            rows.append((f"ray, {w} worker{'s' if w > 1 else ''}, {what}", wall, "  " + _verdict(wall / local)))
    width = max(len(label) for label, _, _ in rows)
    for label, wall, verdict in rows:
        print(f"  {label:{width}s}  {wall:5.1f} s  {60 * n / wall:5.1f} configurations/minute{verdict}")


if __name__ == "__main__":
    main()
