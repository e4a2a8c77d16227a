"""Benchmark: ``biaslab ablate``'s batched training against single-model training.

Two cases, 2 variants × 5 seeds = 10 models each, the same epochs everywhere, all in this process:

* ``cnn`` on digits — the built-in CNN, batched by :class:`biaslab.nets.train.ModelStack`
  (grouped convolutions); target: batched ≤ 3.5× one model (the FLOP floor is ≈ 3×);
* a user model — a residual MLP with LayerNorm given as a factory, batched by
  :class:`biaslab.nets.train.FuncStack` (``torch.func.vmap`` over ``functional_call``);
  target: batched ≤ 5× one model.

For each case every round times, back to back: one single-model run (``train_model``), the
10 models batched (``train_batched``) and the 10 models in a loop of ``train_model``. The rounds
interleave the three so a busy machine slows them alike; each ratio uses the best round of each.

    python benchmarks/bench_ablate.py [--epochs 5] [--rounds 3] [--device auto] [--threads N]

On a machine shared with other busy processes, run it with ``OMP_WAIT_POLICY=PASSIVE`` (or
``--threads 1``): OpenMP's spin-waiting threads otherwise slow these small models down by up
to 8× and the timings measure the contention, not the code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from biaslab.experiments.ablate.engines import ModelSpec
from biaslab.experiments.ablate.variants import variant_mask
from biaslab.data.datasets import load_dataset
from biaslab.infra.device import resolve_device
from biaslab.nets.models import init_model
from biaslab.nets.train import TrainConfig, train_batched, train_model

RUNS = [(v, s) for v in ("with-bias", "no-bias") for s in range(5)]
USER_MODEL = Path(__file__).resolve().parents[1] / "tests" / "models" / "user_models.py"
TARGETS = {"cnn": 3.5, "residual MLP + LayerNorm": 5.0}


def _timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _case(name: str, ds, cfg: TrainConfig, device):
    """(single, batched, loop) callables for one model."""
    shape, k = ds.in_shape, ds.n_classes
    if name == "cnn":
        def build(v, s):
            return init_model("cnn", v, s, shape, k), None

        def batched():
            train_batched("cnn", ds, RUNS, cfg, device)
    else:
        spec = ModelSpec(f"{USER_MODEL}:residual_mlp")
        probe = spec.build(0, shape, k)
        masks = {v: variant_mask(probe, v) for v in ("with-bias", "no-bias")}

        def build(v, s):
            return spec.build(s, shape, k), masks[v]

        def batched():
            stack, _ = train_batched(lambda s: spec.build(s, shape, k), ds, RUNS, cfg, device, masks=masks)
            assert stack.fallback is None, stack.fallback

    def single(v="with-bias", s=0):
        model, mask = build(v, s)
        train_model(model, ds, s, cfg, device, mask=mask)

    def loop():
        for v, s in RUNS:
            single(v, s)

    return single, batched, loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ds = load_dataset("digits")
    cfg = TrainConfig(epochs=args.epochs, lr=3e-3, batch_size=64)
    n = len(RUNS)
    print(f"digits ({len(ds.y_train)} training images), {n} models = 2 variants x 5 seeds, {args.epochs} epochs, "
          f"batch 64, device {device}, torch threads {torch.get_num_threads()}, best of {args.rounds} rounds")
    for name, target in TARGETS.items():
        single, batched, loop = _case(name, ds, cfg, device)
        warm = _case(name, ds, TrainConfig(epochs=1, batch_size=64), device)
        warm[0]()
        warm[1]()
        best = {"single": float("inf"), "batched": float("inf"), "loop": float("inf")}
        for _ in range(args.rounds):
            for key, fn in (("single", single), ("batched", batched), ("loop", loop)):
                best[key] = min(best[key], _timed(fn, device))
        ratio = best["batched"] / best["single"]
        print(f"{name}:")
        print(f"  one model {best['single']:7.3f} s   batched x{n} {best['batched']:7.3f} s   "
              f"loop x{n} {best['loop']:7.3f} s")
        print(f"  batched / one model = {ratio:.2f}x (target <= {target:g}x: {'met' if ratio <= target else 'MISSED'}); "
              f"loop / one model = {best['loop'] / best['single']:.2f}x; loop / batched = "
              f"{best['loop'] / best['batched']:.2f}x")


if __name__ == "__main__":
    main()
