"""Benchmark ``biaslab audit`` (no --data) on ResNet-50 and on a BERT-base-sized model, built in-process.

Targets (issue 12): the audit takes at most 3× (one forward pass + tracing) of the same model, and
its peak memory stays under 1.5× the model's size; issue 21: at most 3× one forward pass alone.
``--verify`` may cost more and its ratio is reported. All are ratios measured in this run, printed,
never asserted.

Time: medians over ``--repeat`` interleaved rounds of (a) one eval-mode forward pass without
gradients, (b) tracing as the audit does it (``torch.fx.symbolic_trace`` for ResNet-50; for the
Hugging Face BERT, which fx cannot trace, the graph recorded from one forward pass), (c) the audit
itself (``find_biases`` plus building the result, as the command does) and (d) ``--verify``'s
perturbation check. Memory: in a fresh subprocess each, the growth of the peak resident set size
(VmHWM in /proc/self/status, reset through /proc/self/clear_refs) during one audit — and, for
reference, during one plain forward pass — next to the bytes of the model's parameters and buffers.

    python benchmarks/bench_audit.py [--arch resnet50|bert-base] [--batch 1] [--size 224] [--repeat 3]
    python benchmarks/bench_audit.py --battery   # recall / wrong 'redundant' against the ground truth

``--size`` is the image side for ResNet-50 and the sequence length for BERT (default 128 there).
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


#: BERT-base's shape: 12 layers, 768 wide, 12 heads, random weights.
BERT_BASE = ('{"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, '
             '"vocab_size": 30522, "max_position_embeddings": 512}')


def _build(arch: str, batch: int, size: int):
    import torch

    torch.manual_seed(0)
    if arch == "bert-base":
        from biaslab.experiments.audit.hf import build_hf

        model = build_hf("hf:bert", BERT_BASE).eval()
        return model, torch.randint(0, 30522, (batch, size if size != 224 else 128))
    from biaslab.nets.zoo import build_zoo_model

    model = build_zoo_model(arch, (3, size, size), n_classes=1000).eval()
    return model, torch.randn(batch, 3, size, size)


def _trace(model, x):
    import torch

    if next((True for m in model.modules() if type(m).__module__.startswith("transformers")), False):
        from biaslab.experiments.audit.record import record_graph

        return record_graph(model, (x,))
    return torch.fx.symbolic_trace(model)


def _audit(model, x):
    from biaslab.experiments.audit.graph import analyse
    from biaslab.results.audit import AuditResult

    findings, source = analyse(model, x)
    result = AuditResult(target="bench", input_shape=list(x.shape), biases=findings,
                         total_params=sum(p.numel() for p in model.parameters()), traced=source != "hooks",
                         graph=source)
    result.to_dict()
    return result


def battery() -> None:
    """Recall and precision of ``redundant`` against the ground truth on every built-in architecture and
    the tiny Hugging Face models: each bias (each third of a packed one) perturbed in float64, training
    mode (:func:`biaslab.experiments.audit.verify.output_moves`)."""
    import warnings

    import torch
    from torch import nn

    from biaslab.experiments.audit.graph import PACKED, analyse
    from biaslab.experiments.audit.hf import TINY, build_hf
    from biaslab.experiments.audit.verify import VERIFY_TOLERANCE, output_moves
    from biaslab.nets.zoo import ZOO, build_zoo_model

    models = {name: (lambda name=name: build_zoo_model(name, (3, 32, 32)), torch.randn(4, 3, 32, 32)) for name in ZOO}
    models.update({f"hf:{k}": (lambda k=k: build_hf(f"hf:{k}"),
                               torch.randn(2, 3, 16, 16) if k == "vit" else torch.randint(0, 128, (2, 8)))
                   for k in TINY})
    models["nn.TransformerEncoder"] = (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False), torch.randn(2, 5, 32))
    total = {"truly": 0, "found": 0, "false": 0, "biases": 0}
    for name, (make, x) in models.items():
        torch.manual_seed(0)
        model = make().eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            findings, source = analyse(model, x)
        moves = output_moves(model, x)
        said = {(f.param, f.span): f.status for f in findings}
        truly, found, false, n = 0, 0, 0, 0
        for pname, p in model.named_parameters():
            if "bias" not in pname.rsplit(".", 1)[-1]:
                continue
            thirds = PACKED.search(pname) and p.numel() % 3 == 0
            spans = [(i * p.numel() // 3, (i + 1) * p.numel() // 3) for i in range(3)] if thirds else [None]
            for span in spans:
                n += 1
                status = said.get((pname, span), said.get((pname, None)))
                cancelled = moves(pname, slice(*span) if span else None) <= VERIFY_TOLERANCE
                truly += cancelled
                found += cancelled and status == "redundant"
                false += (not cancelled) and status == "redundant"
        print(f"{name:24s} {source:9s} biases/parts {n:4d}  truly redundant {truly:3d}  found {found:3d}  "
              f"wrong 'redundant' {false}")
        for k, v in zip(("truly", "found", "false", "biases"), (truly, found, false, n)):
            total[k] += v
    print(f"all: {total['biases']} biases/parts, {total['truly']} truly redundant, {total['found']} found "
          f"({100 * total['found'] / max(total['truly'], 1):.0f} %), {total['false']} wrong 'redundant'")


def memory_child(what: str, arch: str, batch: int, size: int) -> None:
    """Run in a subprocess: print the peak RSS growth (bytes) of one audit or one forward pass."""
    import torch

    torch.set_num_threads(torch.get_num_threads())
    model, x = _build(arch, batch, size)
    model_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    # import everything the measured step needs before the baseline
    import biaslab.experiments.audit  # noqa: F401
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
    parser.add_argument("--arch", default="resnet50", help="a zoo name (resnet50, ...) or bert-base")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--battery", action="store_true",
                        help="instead: recall of 'redundant' against perturbation on every built-in and hf: model")
    parser.add_argument("--child", choices=["audit", "forward"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.battery:
        battery()
        return
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

    from biaslab.experiments.audit.verify import verify_findings

    forward_pass()  # warm-up
    findings = _audit(model, x).biases
    t = _interleaved_medians({"forward": forward_pass, "trace": lambda: _trace(model, x),
                              "audit": lambda: _audit(model, x),
                              "verify": lambda: verify_findings(model, findings, x)}, args.repeat)
    forward, trace, audit = t["forward"], t["trace"], t["audit"]
    ratio = audit / (forward + trace)
    verify_ratio = t["verify"] / (forward + trace)

    mem_audit, mem_forward = _memory("audit", args), _memory("forward", args)
    size = mem_audit["model_bytes"]
    mem_ratio = mem_audit["peak_growth"] / size

    print(f"model: {args.arch}, {n_params / 1e6:.1f} M parameters ({size / 2**20:.0f} MiB), "
          f"input {tuple(x.shape)}, {torch.get_num_threads()} threads")
    print(f"forward {forward * 1e3:.0f} ms, trace {trace * 1e3:.0f} ms, audit {audit * 1e3:.0f} ms, "
          f"--verify {t['verify'] * 1e3:.0f} ms ({sum(f.status == 'redundant' for f in findings)} redundant biases)")
    print(f"time   audit / (forward + trace) = {ratio:.2f}   (target <= 3)  {'OK' if ratio <= 3 else 'OVER'}")
    print(f"time   audit / forward = {audit / forward:.2f}   (issue 21's target <= 3: one forward pass alone)  "
          f"{'OK' if audit / forward <= 3 else 'OVER'}")
    print(f"time   --verify / (forward + trace) = {verify_ratio:.2f}   (reported, no target)")
    print(f"memory peak growth: audit {mem_audit['peak_growth'] / 2**20:.0f} MiB, plain forward "
          f"{mem_forward['peak_growth'] / 2**20:.0f} MiB")
    print(f"memory audit peak / model size = {mem_ratio:.2f}   (target <= 1.5)  {'OK' if mem_ratio <= 1.5 else 'OVER'}")


if __name__ == "__main__":
    main()
