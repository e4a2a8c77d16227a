"""Run a command as a child process and measure its wall time and peak memory (RSS)."""

from __future__ import annotations

import os
import statistics
import subprocess
import time


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Return (wall seconds, peak RSS in KiB) of one run of ``cmd``; raise if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss


def compare(label_a: str, cmd_a: list[str], label_b: str, cmd_b: list[str], repeats: int) -> dict:
    """Interleave runs of two commands; return medians and ratios (a / b)."""
    runs = {label_a: [], label_b: []}
    for _ in range(repeats):
        for label, cmd in ((label_a, cmd_a), (label_b, cmd_b)):
            runs[label].append(measure(cmd))
    med = {k: (statistics.median(w for w, _ in v), max(m for _, m in v)) for k, v in runs.items()}
    return {
        "median_s": {k: v[0] for k, v in med.items()},
        "peak_rss_kib": {k: v[1] for k, v in med.items()},
        "time_ratio": med[label_a][0] / med[label_b][0],
        "memory_ratio": med[label_a][1] / med[label_b][1],
    }
