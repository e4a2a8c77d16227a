"""`biaslab regression --out TMP` versus the original snippet, as separate processes.

Prints the ratio of median wall times (target ≤ 1.0) and of peak RSS (target ≤ 1.0),
both measured in this same invocation (the machine is noisy; absolute times mean little).

    python benchmarks/bench_regression.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _proc import compare  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    biaslab = shutil.which("biaslab") or sys.exit("install the package first: pip install -e .")
    try:
        res = compare(
            "biaslab", [biaslab, "regression", "--quiet", "--out", str(tmp / "out")],
            "original", [sys.executable, str(Path(__file__).with_name("original_snippet.py")), str(tmp / "o.png")],
            args.repeats,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in ("biaslab", "original"):
        print(f"{name:9s} median {res['median_s'][name]:.3f} s   peak RSS {res['peak_rss_kib'][name] / 1024:.1f} MiB")
    print(f"time ratio   biaslab/original = {res['time_ratio']:.2f}  (target <= 1.0)")
    print(f"memory ratio biaslab/original = {res['memory_ratio']:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
