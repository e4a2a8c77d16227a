"""Benchmark: ``biaslab ablate``'s batched training against single-model training.

cnn on digits, 2 variants × 5 seeds, the same epochs everywhere, all in this process:

* batched   — the 10 models as one batched model (``train_batched``), as ``biaslab ablate`` runs them;
* single    — one plain single-model run (``train_model``), the reference;
* loop      — the same 10 models one after another with ``train_model``.

Prints batched / single (target ≤ 5×; a loop is 10×), loop / batched (the speed-up over a
loop) and models per second. Each timing is the best of ``--repeats`` rounds (the rounds
interleave the three, so a busy machine slows them alike).

    python benchmarks/bench_ablate.py [--epochs 5] [--repeats 3] [--device auto] [--threads N]

On a machine shared with other busy processes, run it with ``OMP_WAIT_POLICY=PASSIVE`` (or
``--threads 1``): OpenMP's spin-waiting threads otherwise slow these small models down by up
to 8× and the timings measure the contention, not the code.
"""

from __future__ import annotations

import argparse
import time

import torch

from biaslab.datasets import load_dataset
from biaslab.device import resolve_device
from biaslab.models import init_model
from biaslab.train import TrainConfig, train_batched, train_model

RUNS = [(v, s) for v in ("with-bias", "no-bias") for s in range(5)]


def _timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--no-loop", action="store_true", help="skip the sequential loop of 10 models")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ds = load_dataset("digits")
    cfg = TrainConfig(epochs=args.epochs, lr=3e-3, batch_size=64)

    def single(variant="with-bias", seed=0):
        train_model(init_model("cnn", variant, seed, ds.in_shape, ds.n_classes), ds, seed, cfg, device)

    def batched():
        train_batched("cnn", ds, RUNS, cfg, device)

    def loop():
        for v, s in RUNS:
            single(v, s)

    # warm-up (first-call costs: vmap tracing, allocator, kernels)
    train_batched("cnn", ds, RUNS, TrainConfig(epochs=1, batch_size=64), device)
    train_model(init_model("cnn", "with-bias", 0), ds, 0, TrainConfig(epochs=1, batch_size=64), device)
    best = {"single": float("inf"), "batched": float("inf"), "loop": float("inf")}
    for _ in range(args.repeats):
        best["single"] = min(best["single"], _timed(single, device))
        best["batched"] = min(best["batched"], _timed(batched, device))
    if not args.no_loop:
        best["loop"] = _timed(loop, device)

    n = len(RUNS)
    print(f"cnn on digits ({len(ds.y_train)} training images), {n} models = 2 variants x 5 seeds, "
          f"{args.epochs} epochs, batch 64, device {device}, torch threads {torch.get_num_threads()}")
    print(f"  one single-model run    {best['single']:8.3f} s")
    print(f"  batched, {n} models      {best['batched']:8.3f} s")
    if not args.no_loop:
        print(f"  loop of {n} single runs  {best['loop']:8.3f} s")
    print(f"batched / single run     = {best['batched'] / best['single']:.2f}x   (target <= 5x; a loop is {n}x)")
    if not args.no_loop:
        print(f"loop / batched           = {best['loop'] / best['batched']:.2f}x   (speed-up over a sequential loop)")
    print(f"models per second        = {n / best['batched']:.2f} batched vs {1 / best['single']:.2f} single")


if __name__ == "__main__":
    main()
