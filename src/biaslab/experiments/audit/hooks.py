"""The fallback where no graph can be traced or recorded: decide from the order of execution.

One hooked forward pass records which module reads each layer's output next. A bias whose next
reader is a normalisation that would cancel it is only a candidate: :func:`confirm` keeps
``redundant`` only where perturbing the bias (float64, training and eval mode) leaves the output unchanged,
because the order cannot show a second use of the same tensor or a functional op in between.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from .verdicts import RELU, Verdict, Verdicts, bias_axes

__all__ = ["hook_verdicts", "confirm"]


def hook_verdicts(model: nn.Module, example: tuple) -> tuple[Verdicts, set[str]]:
    """Order-based verdicts: run the model, match each layer's output tensor to the next module that reads it.

    A ``redundant`` here is only a candidate; :func:`confirm` keeps it only if perturbing the bias
    leaves the output unchanged.
    """
    records: list[tuple[str, nn.Module, list[torch.Tensor], Any]] = []
    handles = []
    for name, m in model.named_modules():
        if not list(m.children()):
            def hook(mod, inputs, output, name=name):
                records.append((name, mod, [t for t in inputs if isinstance(t, torch.Tensor)], output))
            handles.append(m.register_forward_hook(hook))
    try:
        _run(model, example)
    finally:
        for h in handles:
            h.remove()
    counts: dict[str, int] = {}
    for name, *_ in records:
        counts[name] = counts.get(name, 0) + 1
    out: Verdicts = {}
    relu: set[str] = set()
    for i, (name, m, ins, y) in enumerate(records):
        pname = f"{name}.bias" if name else "bias"
        if pname in out or not isinstance(getattr(m, "bias", None), nn.Parameter) or not isinstance(y, torch.Tensor):
            continue
        nxt = next(((n2, m2) for n2, m2, ins2, _ in records[i + 1:] if any(t is y for t in ins2)), None)
        if nxt is not None and type(nxt[1]).__name__ in RELU:
            relu.add(pname)
        out[pname] = [(None, None, _order_verdict(m, y, nxt, counts, records, i))]
    return out, relu


def _order_verdict(m: nn.Module, y: torch.Tensor, nxt: tuple[str, nn.Module] | None, counts: dict[str, int],
                   records: list, i: int) -> Verdict:
    name = records[i][0]
    axes = bias_axes(m, y.dim())
    if counts[name] == 1 and axes == (1,) and nxt is not None and counts[nxt[0]] == 1:
        norm = nxt[1]
        cancels = isinstance(norm, (_BatchNorm, _InstanceNorm)) or (
            isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels)
        if cancels:
            tracks = getattr(norm, "running_mean", None) is not None
            corrections = {f"{nxt[0]}.running_mean": m.bias.detach().double()} if tracks else {}
            return Verdict("redundant", f"cancelled by {type(norm).__name__} '{nxt[0]}'",
                            f"the next module to read its output is {type(norm).__name__} '{nxt[0]}', which "
                            "subtracts the per-channel mean", nxt[0], 1.0, corrections)
    prev = records[i - 1] if i else None
    if (isinstance(m, _BatchNorm) and m.running_mean is not None and prev is not None
            and isinstance(prev[1], (nn.Linear, _ConvNd)) and any(t is prev[3] for t in records[i][2])):
        return Verdict("foldable", f"folds into '{prev[0]}'",
                        f"BatchNorm with running statistics right after '{prev[0]}': in eval mode it folds into "
                        "that layer's weight and bias", prev[0])
    what = f"{type(nxt[1]).__name__} '{nxt[0]}'" if nxt else "no module (a functional op or the output)"
    return Verdict("active", f"next module: {what}", f"the next module to read its output is {what}")


def confirm(model: nn.Module, verdicts: Verdicts, example: tuple) -> None:
    """Keep an order-based ``redundant`` only where perturbing the bias leaves the output unchanged."""
    from .verify import VERIFY_TOLERANCE, output_moves

    guesses = [(pname, v) for pname, parts in verdicts.items() for _, _, v in parts if v.status == "redundant"]
    if not guesses:
        return
    moves = output_moves(model, example, modes=("train", "eval"))
    for pname, v in guesses:
        change = moves(pname, None, v.corrections)
        if change <= VERIFY_TOLERANCE:
            v.reason += (f"; confirmed by perturbing it (float64, training and eval mode): the output moved by "
                         f"{change:.1e} of its size")
        else:
            v.status, v.short, v.consumer, v.cancelled_fraction, v.corrections = (
                "active", "used elsewhere too (perturbation)", None, None, {})
            v.reason = (f"the execution order suggests it is cancelled, but perturbing the bias (float64, training "
                        f"mode) moves the output by {change:.2g} of its size: its output is also used somewhere "
                        "the order cannot show")


def _run(model: nn.Module, example: tuple) -> Any:
    """One forward pass in eval mode without gradients; the model's train/eval flags are restored."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            return model(*example)
    finally:
        for m, flag in flags.items():
            m.training = flag


