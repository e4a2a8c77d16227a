"""How long ``biaslab census`` takes, on a subset, extrapolated to every model type; or the numbers of
a finished census (``--from DIR``), as the Markdown lines docs/census.md quotes.

    OMP_NUM_THREADS=1 python benchmarks/bench_census.py --every 10 --jobs 2   # every 10th model type
    python benchmarks/bench_census.py --from biaslab-out/census               # a finished full census

The subset is every N-th type of the sorted list, so it mixes families the way the whole list does.
The extrapolation scales the subset's wall time by (all types / subset types); on a shared machine
the per-type times (child processes, measured in them) are the steadier figure, and are printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def describe(res) -> str:
    """The census's numbers as Markdown lines (every number read from the result)."""
    t = res.timing()
    tot = res.totals()
    lines = [
        f"- transformers {res.transformers_version}: **{len(res.audited)} of {len(res.models)} model types audited** "
        f"({res.available} available); {len(res.failed)} listed with a one-line reason: "
        + ", ".join(f"{n} {k}" for k, n in res.failures().items()) + ".",
        f"- time: {res.seconds:.0f} s wall ({res.engine}, {res.jobs} at a time, {res.threads} thread each); per type "
        f"{t['mean_s']:.2f} s mean, {t['median_s']:.2f} s median, {t['max_s']:.1f} s max; "
        f"{t['sum_s']:.0f} s summed over types.",
        f"- bias values at the configurations' default sizes, over the audited types: "
        + ", ".join(f"{s} {tot[s]['default_params']:,} ({tot[s]['types']} types)" for s in ("redundant", "foldable",
                                                                                             "active"))
        + f"; never reached by the example input {tot['unreached']['default_params']:,}; "
        f"all bias values {tot['default_bias_params']:,}.",
    ]
    lines += [f"- **{c.statement}** — {c.verdict}: {c.text}" for c in res.claims]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=10, help="audit every N-th model type")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--from", dest="source", help="print the numbers of a finished census (its --out folder)")
    args = ap.parse_args()
    if args.source:
        from biaslab.results import load_results

        print(describe(load_results(args.source)))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from biaslab.experiments.census import model_types, run_census

    every = model_types()
    subset = every[:: args.every]
    t0 = time.perf_counter()
    res = run_census(only=subset, jobs=args.jobs, time_limit=args.time_limit)
    wall = time.perf_counter() - t0
    t = res.timing()
    print(f"subset: {len(subset)} of {len(every)} model types, {args.jobs} at a time: {wall:.1f} s wall "
          f"({wall / len(subset):.2f} s per type); per type in its process: mean {t['mean_s']:.2f} s, "
          f"median {t['median_s']:.2f} s, max {t['max_s']:.1f} s")
    print(f"audited {len(res.audited)} of {len(subset)} ({100 * len(res.audited) / len(subset):.0f} %)")
    print(f"extrapolated to all {len(every)} types: {wall * len(every) / len(subset) / 60:.1f} min wall, "
          f"about {round(len(res.audited) * len(every) / len(subset))} audited")


if __name__ == "__main__":
    main()
