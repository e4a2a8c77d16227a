"""Benchmark ``biaslab audit`` (no --data) on a ResNet-50-sized model built in-process.

Targets (issue 5): the audit takes at most 3× (one forward pass + torch.fx tracing) of the same
model, and its peak memory stays under 3× the model's size. Both are ratios measured in this run.

Time: medians over ``--repeat`` interleaved rounds of (a) one eval-mode forward pass without gradients,
(b) ``torch.fx.symbolic_trace`` and (c) the audit itself (``find_biases`` plus building the result,
as the command does). Memory: in a fresh subprocess each, the growth of the peak resident set size
(VmHWM in /proc/self/status, reset through /proc/self/clear_refs) during one audit — and, for
reference, during one plain forward pass — next to the bytes of the model's parameters and buffers.

    python benchmarks/bench_audit.py [--arch resnet50] [--batch 1] [--size 224] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _build(arch: str, batch: int, size: int):
    import torch

    from biaslab.zoo import build_zoo_model

    torch.manual_seed(0)
    model = build_zoo_model(arch, (3, size, size), n_classes=1000).eval()
    x = torch.randn(batch, 3, size, size)
    return model, x


def _audit(model, x):
    from biaslab.audit import AuditResult, find_biases

    findings = find_biases(model, x)
    result = AuditResult(target="bench", input_shape=list(x.shape), findings=findings,
                         total_params=sum(p.numel() for p in model.parameters()),
                         traced=all(f.traced for f in findings))
    result.to_dict()
    return result


def memory_child(what: str, arch: str, batch: int, size: int) -> None:
    """Run in a subprocess: print the peak RSS growth (bytes) of one audit or one forward pass."""
    import torch

    torch.set_num_threads(torch.get_num_threads())
    model, x = _build(arch, batch, size)
    model_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    # import everything the measured step needs before the baseline
    import biaslab.audit  # noqa: F401
    import torch.fx  # noqa: F401

    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    if what == "audit":
        _audit(model, x)
    else:
        with torch.no_grad():
            model(x)
    peak = _status_kib("VmHWM")
    print(json.dumps({"peak_growth": (peak - before) * 1024, "model_bytes": model_bytes}))


def _memory(what: str, args: argparse.Namespace) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--arch", args.arch, "--batch", str(args.batch),
         "--size", str(args.size)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _interleaved_medians(fns: dict, repeat: int) -> dict[str, float]:
    """Median time of each function, measured in alternating rounds so machine load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=["audit", "forward"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        memory_child(args.child, args.arch, args.batch, args.size)
        return

    import torch
    import torch.fx

    model, x = _build(args.arch, args.batch, args.size)
    n_params = sum(p.numel() for p in model.parameters())
    def forward_pass():
        with torch.no_grad():
            model(x)

    forward_pass()  # warm-up
    _audit(model, x)
    t = _interleaved_medians({"forward": forward_pass, "trace": lambda: torch.fx.symbolic_trace(model),
                              "audit": lambda: _audit(model, x)}, args.repeat)
    forward, trace, audit = t["forward"], t["trace"], t["audit"]
    ratio = audit / (forward + trace)

    mem_audit, mem_forward = _memory("audit", args), _memory("forward", args)
    size = mem_audit["model_bytes"]
    mem_ratio = mem_audit["peak_growth"] / size

    print(f"model: {args.arch}, {n_params / 1e6:.1f} M parameters ({size / 2**20:.0f} MiB), "
          f"input {tuple(x.shape)}, {torch.get_num_threads()} threads")
    print(f"forward {forward * 1e3:.0f} ms, fx trace {trace * 1e3:.0f} ms, audit {audit * 1e3:.0f} ms")
    print(f"time   audit / (forward + trace) = {ratio:.2f}   (target <= 3)  {'OK' if ratio <= 3 else 'OVER'}")
    print(f"memory peak growth: audit {mem_audit['peak_growth'] / 2**20:.0f} MiB, plain forward "
          f"{mem_forward['peak_growth'] / 2**20:.0f} MiB")
    print(f"memory audit peak / model size = {mem_ratio:.2f}   (target < 3)  {'OK' if mem_ratio < 3 else 'OVER'}")


if __name__ == "__main__":
    main()
