"""Start-up cost of the command line, as ratios to ``python -c pass`` (separate processes).

Measures ``biaslab --help``, ``biaslab relu`` and ``biaslab regression`` (each writing into a
temporary folder) and reports, per command, the median wall time over that of a bare
interpreter, plus which heavy libraries each one imported. ``--help`` must import neither
torch nor matplotlib; ``regression`` and ``relu`` must not import torch.

    python benchmarks/bench_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _proc import measure  # noqa: E402

HEAVY = ("torch", "matplotlib", "sklearn", "scipy", "PIL", "skimage")
#: Runs the console entry point and prints which heavy modules it loaded (on stderr, after it finishes).
PROBE = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr))\n"
    "sys.argv = ['biaslab', *sys.argv[1:]]\n"
    "import runpy\nrunpy.run_module('biaslab', run_name='__main__')\n"
)


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "--help": ["--help"],
        "relu": ["relu", "--quiet", "--out", str(out / "relu")],
        "regression": ["regression", "--quiet", "--out", str(out / "regression")],
    }


def imported(args: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        cmds = commands(tmp)
        bare = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {"python -c pass": [], **{k: [] for k in cmds}}
        for _ in range(args.repeats):  # interleaved, so load changes hit every command alike
            times["python -c pass"].append(measure(bare)[0])
            for name, argv in cmds.items():
                times[name].append(measure([sys.executable, "-m", "biaslab", *argv])[0])
        base = statistics.median(times["python -c pass"])
        print(f"{'python -c pass':18s} median {base * 1000:7.1f} ms")
        for name, argv in cmds.items():
            med = statistics.median(times[name])
            heavy = imported(argv)
            print(f"biaslab {name:10s} median {med * 1000:7.1f} ms  ratio {med / base:6.1f}x  "
                  f"imports: {', '.join(heavy) or 'none of ' + '/'.join(HEAVY)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
