"""Calibration of biaslab's verdicts, measured by simulation (``python benchmarks/bench_stats.py``).

Paired differences d = a − b over n seeds, from three models of how seeds differ:

* ``normal``   — d ~ N(μ, (1 pp)²);
* ``t3``       — d = μ + 1 pp · t(3) (heavy tails; the t-test's assumption fails);
* ``discrete`` — accuracies of two models on 450 test items (per-seed skill ~ U(0.90, 0.97),
  items right or wrong independently): differences are multiples of 1/450, with ties.

For n = 2, 3, 5, 10, 30 and ``--sims`` simulations each (default 10,000) it prints

* the false-decision rate under the null μ = 0: a significant difference either way
  (a false ``holds`` or a false ``refuted``; equivalence is the right answer there) — must be ≤ α + 0.01;
* the false-equivalence rate at μ = +margin (1 pp): TOST must not call a 1 pp effect equivalent
  more than α of the time;
* the coverage of the three intervals of the mean difference: Hartigan's subset-mean interval
  (the exact one; its level is the largest attainable ≥ 95 %, ``inf`` when none exists), the t
  interval and the paired bootstrap percentile interval (descriptive);
* power at μ = 1 pp and 2 pp (significant in the right direction).

Then the group-sequential design (``ablate --seeds auto``): looks at
:func:`biaslab.math.stats.sequential_looks` up to 20 seeds, Pocock and O'Brien–Fleming spending,
against naive optional stopping (α at every look), under the null, with the same three models.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from biaslab.math.stats import (DEFAULT_MARGIN, look_alphas, sequential_looks, sign_flip_p,  # noqa: E402
                                subset_mean_interval)

ALPHA = 0.05
PP = 0.01
NS = (2, 3, 5, 10, 30)


def draw(kind: str, rng: np.random.Generator, shape: tuple[int, int], mu: float = 0.0) -> np.ndarray:
    if kind == "normal":
        return mu + rng.normal(0, PP, shape)
    if kind == "t3":
        return mu + PP * rng.standard_t(3, shape)
    if kind == "discrete":
        items = 450
        p = rng.uniform(0.90, 0.97, size=shape)
        pa = np.clip(p + mu, 0, 1)
        return (rng.binomial(items, pa) - rng.binomial(items, p)) / items
    raise ValueError(kind)


def t_cover(D: np.ndarray, mu: float, conf: float = 0.95) -> float:
    from scipy import stats

    n = D.shape[1]
    m, s = D.mean(1), D.std(1, ddof=1)
    half = stats.t.ppf(0.5 + conf / 2, n - 1) * s / math.sqrt(n)
    return float(np.mean((m - half <= mu) & (mu <= m + half)))


def boot_cover(D: np.ndarray, mu: float, rng: np.random.Generator, conf: float = 0.95, draws: int = 1000) -> float:
    hits = 0
    n = D.shape[1]
    for i in range(0, D.shape[0], 200):
        X = D[i:i + 200]
        idx = rng.integers(0, n, size=(draws, n))
        means = X[:, idx].mean(axis=2)  # (rows, draws)
        lo, hi = np.quantile(means, (1 - conf) / 2, axis=1), np.quantile(means, (1 + conf) / 2, axis=1)
        hits += int(np.sum((lo <= mu) & (mu <= hi)))
    return hits / D.shape[0]


def calibration(sims: int, seed: int) -> list[dict]:
    rows = []
    for kind in ("normal", "t3", "discrete"):
        for n in NS:
            rng = np.random.default_rng([seed, n, {"normal": 1, "t3": 2, "discrete": 3}[kind]])
            t0 = time.perf_counter()
            D0 = draw(kind, rng, (sims, n))
            false = float(np.mean(sign_flip_p(D0) < ALPHA))
            Dm = draw(kind, rng, (sims, n), DEFAULT_MARGIN)
            p_eq = np.maximum(sign_flip_p(Dm, "less", DEFAULT_MARGIN), sign_flip_p(Dm, "greater", -DEFAULT_MARGIN))
            false_eq = float(np.mean(p_eq < ALPHA))
            # coverage of the true centre: the discrete model's centre is 0 by symmetry
            lo, hi, level = subset_mean_interval(D0, 0.95)
            cover_h = float(np.mean((lo <= 0) & (0 <= hi)))
            cover_t = t_cover(D0, 0.0)
            cover_b = boot_cover(D0, 0.0, rng)
            power = {}
            for eff in (1, 2):
                D = draw(kind, rng, (sims, n), eff * PP)
                p = sign_flip_p(D)
                power[eff] = float(np.mean((p < ALPHA) & (D.mean(1) > 0)))
            rows.append({"model": kind, "n": n, "false": false, "false_eq": false_eq, "level": level,
                         "cover_h": cover_h, "cover_t": cover_t, "cover_b": cover_b, "power1": power[1],
                         "power2": power[2], "secs": time.perf_counter() - t0})
    return rows


def sequential(sims: int, seed: int, cap: int = 20) -> list[dict]:
    looks = sequential_looks(cap, ALPHA, 1)
    rows = []
    for kind in ("normal", "t3", "discrete"):
        rng = np.random.default_rng([seed, 99, {"normal": 1, "t3": 2, "discrete": 3}[kind]])
        D = draw(kind, rng, (sims, cap))
        pvals = {n: sign_flip_p(D[:, :n]) for n in looks}
        for name, levels in (("pocock", look_alphas(looks, ALPHA, "pocock")),
                             ("obrien-fleming", look_alphas(looks, ALPHA, "obrien-fleming")),
                             ("naive (α at every look)", [ALPHA] * len(looks))):
            reject = np.zeros(sims, bool)
            for n, a in zip(looks, levels):
                reject |= pvals[n] < a
            rows.append({"model": kind, "design": name, "fpr": float(reject.mean())})
        # power of the Pocock design at +1 pp, and the seeds it stops at
        D1 = draw(kind, rng, (sims, cap), PP)
        stop = np.full(sims, cap)
        hit = np.zeros(sims, bool)
        for n, a in zip(looks, look_alphas(looks, ALPHA, "pocock")):
            new = ~hit & (sign_flip_p(D1[:, :n]) < a)
            stop[new] = n
            hit |= new
        rows[-3]["power1"] = float(hit.mean())
        rows[-3]["mean_seeds"] = float(stop.mean())
        # a family of 4 true nulls, Holm at each look (Holm's first step decides whether any is rejected)
        m = 4
        fam_looks = sequential_looks(cap, ALPHA, m)
        F = draw(kind, rng, (sims * m, cap))
        any_false = np.zeros(sims, bool)
        for n, a in zip(fam_looks, look_alphas(fam_looks, ALPHA, "pocock")):
            pmin = sign_flip_p(F[:, :n]).reshape(sims, m).min(axis=1)
            any_false |= pmin < a / m
        rows.append({"model": kind, "design": f"pocock, Holm family of {m}", "fpr": float(any_false.mean())})
    return rows, looks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tol = ALPHA + 0.01
    t0 = time.perf_counter()
    rows = calibration(args.sims, args.seed)
    print(f"Calibration, {args.sims:,} simulations per row, α = {ALPHA}, margin = {DEFAULT_MARGIN * 100:g} pp, "
          "differences with sd ≈ 1 pp")
    head = (f"{'model':<9} {'n':>3} {'false sig. (μ=0)':>16} {'false equiv (μ=1pp)':>19} {'exact CI level':>14} "
            f"{'cover exact':>11} {'cover t':>8} {'cover boot':>10} {'power 1pp':>9} {'power 2pp':>9} {'s':>5}")
    print(head)
    ok = True
    for r in rows:
        bad = r["false"] > tol or r["false_eq"] > tol or r["cover_h"] < r["level"] - 0.01
        ok &= not bad
        print(f"{r['model']:<9} {r['n']:>3} {r['false']:>16.4f} {r['false_eq']:>19.4f} {r['level']:>14.4f} "
              f"{r['cover_h']:>11.4f} {r['cover_t']:>8.4f} {r['cover_b']:>10.4f} {r['power1']:>9.3f} "
              f"{r['power2']:>9.3f} {r['secs']:>5.1f}{'  <-- out of bounds' if bad else ''}")
    seq, looks = sequential(args.sims, args.seed)
    print(f"\nGroup-sequential (--seeds auto), looks at {looks} seeds, {args.sims:,} null simulations each")
    print(f"{'model':<9} {'design':<24} {'false-positive rate':>19} {'power 1pp':>9} {'mean seeds at 1pp':>17}")
    for r in seq:
        extra = (f"{r['power1']:>9.3f} {r['mean_seeds']:>17.1f}" if "power1" in r else "")
        if not r["design"].startswith("naive"):
            ok &= r["fpr"] <= tol
        print(f"{r['model']:<9} {r['design']:<24} {r['fpr']:>19.4f} {extra}")
    print(f"\nall bounds met: {ok} (false rates ≤ α + 0.01; the exact interval covers at least its level − 1 pp); "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
