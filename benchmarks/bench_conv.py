"""Speed and memory of ``biaslab.math.conv.conv2d`` against ``torch.nn.functional.conv2d``.

Prints, for each case, the best-of-R time of both (same inputs, same dtype, torch limited to
the same number of threads as NumPy's BLAS; the two are timed in alternating blocks, so a
busy machine slows both alike), their ratio, the agreement, the method ``auto`` chose, and the peak extra
memory of the NumPy version (tracemalloc, excluding the output) as a multiple of the
unfolded input of one sample and one group. Ends with the geometric mean and the worst ratio.

    python benchmarks/bench_conv.py [--threads N] [--repeat R] [--dtype float32|float64]

Targets (issue 15): on the four benchmark shapes (the first three cases and the last, the
``biaslab conv`` workload), geometric mean ≤ 2×, worst ≤ 3×. Peak extra memory ≤ 1× the
unfolded input of one sample and one group (issue 4).

OpenBLAS picks its kernels from the CPU it detects; on some virtual machines it falls back to
AVX2 kernels on an AVX-512 CPU, about half as fast for the matrix products (which torch's
oneDNN does not). ``OPENBLAS_CORETYPE=SkylakeX`` forces the AVX-512 ones; the header line
prints what OpenBLAS uses.
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from biaslab.math.conv import conv2d, conv_method, conv_output_shape

#: (name, input shape, weight shape, conv2d keyword arguments); the first three and the last are
#: issue 15's four benchmark shapes.
CASES = [
    ("1x3x224x224 * 16x3x3x3 s1 p1", (1, 3, 224, 224), (16, 3, 3, 3), dict(stride=1, padding=1)),
    ("8x16x64x64 * 32x16x3x3", (8, 16, 64, 64), (32, 16, 3, 3), dict()),
    ("4x32x32x32 * 32x8x5x5 g4 d2", (4, 32, 32, 32), (32, 8, 5, 5), dict(groups=4, dilation=2)),
    ("2x64x56x56 * 64x64x3x3 p1", (2, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    ("4x32x64x64 * 64x32x3x3 s2 p1", (4, 32, 64, 64), (64, 32, 3, 3), dict(stride=2, padding=1)),
    ("1x3x512x512 * 1x3x7x7 same", (1, 3, 512, 512), (1, 3, 7, 7), dict(padding="same")),
]


TARGETS = (0, 1, 2, 5)  # indices of the four benchmark shapes


def best_times(fns, repeat: int, rounds: int = 3) -> list[float]:
    """Best time of each function (as ``timeit`` advises), over ``rounds`` blocks of ``repeat`` runs each.

    The functions take turns block by block, so a machine that gets busier or quieter affects
    them alike; within a block a function runs back to back (a torch call right before a NumPy
    call leaves the caches cold for it, which would penalise whichever runs second).
    """
    best = [math.inf] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            fn()  # warm up
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - t0)
    return best


def unfolded_bytes(x_shape, w_shape, kwargs, itemsize: int) -> int:
    """Size of the unfolded input of one sample and one group: Cg·kH·kW·H_out·W_out values."""
    _, group_channels, kh, kw = w_shape
    h_out, w_out = conv_output_shape(x_shape[2:], (kh, kw), kwargs.get("stride", 1),
                                     kwargs.get("padding", 0), kwargs.get("dilation", 1))
    return group_channels * kh * kw * h_out * w_out * itemsize


def peak_extra_bytes(x, w, b, kwargs) -> int:
    """Peak memory NumPy allocates during conv2d, minus the output it returns."""
    tracemalloc.start()
    out = conv2d(x, w, b, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - out.nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for NumPy's BLAS and for torch")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    ratios = []
    blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})" for i in threadpool_info()
                     if i["user_api"] == "blas")
    print(f"threads={args.threads} (NumPy BLAS and torch)  dtype={args.dtype}  torch {torch.__version__}  BLAS: {blas}")
    print(f"{'case':32s} {'numpy ms':>9s} {'torch ms':>9s} {'ratio':>6s} {'method':>7s} {'max|diff|':>10s} "
          f"{'mem/unfold':>10s}")
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, xs, ws, kwargs in CASES:
            x = rng.standard_normal(xs).astype(args.dtype)
            w = rng.standard_normal(ws).astype(args.dtype)
            b = rng.standard_normal(ws[0]).astype(args.dtype)
            tx, tw, tb = map(torch.from_numpy, (x, w, b))
            with torch.no_grad():
                ref = torch.nn.functional.conv2d(tx, tw, tb, **kwargs).numpy()
                t_numpy, t_torch = best_times([lambda: conv2d(x, w, b, **kwargs),
                                               lambda: torch.nn.functional.conv2d(tx, tw, tb, **kwargs)], args.repeat)
            diff = float(np.abs(conv2d(x, w, b, **kwargs) - ref).max())
            mem = peak_extra_bytes(x, w, b, kwargs) / unfolded_bytes(xs, ws, kwargs, x.itemsize)
            ratio = t_numpy / t_torch
            ratios.append(ratio)
            method = conv_method(xs, ws, dtype=x.dtype, **kwargs)
            print(f"{name:32s} {1e3 * t_numpy:9.2f} {1e3 * t_torch:9.2f} {ratio:6.2f} {method:>7s} "
                  f"{diff:10.2e} {mem:10.2f}")
    four = [ratios[i] for i in TARGETS]
    for label, chosen in (("the four benchmark shapes", four), (f"all {len(ratios)} cases", ratios)):
        geo = math.exp(sum(map(math.log, chosen)) / len(chosen))
        print(f"{label}: ratios {', '.join(f'{r:.2f}' for r in chosen)}; geometric mean {geo:.2f}× (target ≤ 2), "
              f"range {min(chosen):.2f}–{max(chosen):.2f}× (worst: target ≤ 3)")


if __name__ == "__main__":
    main()
