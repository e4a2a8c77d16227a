"""The ground-truth check of a ``redundant`` verdict: perturb the bias and see whether the output moves.

The model is copied to float64 and run in training mode (a normalisation cancels a bias through
its batch statistics) on a batch of random inputs; then each bias in question gets a random
perturbation — a random vector plus a constant, so that both the per-channel and the shared part
move — and the model runs again with the same random state (same dropout masks). The verdict is
confirmed when the largest output change stays within :data:`VERIFY_TOLERANCE` of the largest
output. Where the bias reaches a normalisation that keeps running statistics, eval mode would
need the running mean corrected as well; that half is what ``--fix`` checks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from ...results.audit import VERIFY_TOLERANCE, Finding
from .check import check_inputs

__all__ = ["VERIFY_TOLERANCE", "output_moves", "verify_findings"]



def _as_double(args: tuple) -> tuple:
    return tuple(t.double() if torch.is_tensor(t) and t.is_floating_point() else t for t in args)


def _forward(net: nn.Module, args: tuple, seed: int) -> list[torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [t.double() for t in tree_leaves(net(*args)) if isinstance(t, torch.Tensor)]


def output_moves(model: nn.Module, example: torch.Tensor | tuple,
                 seed: int = 0) -> Callable[[str, slice | None], float]:
    """A function ``moves(param, span)``: the relative output change when ``param`` (or its slice
    ``span``) is perturbed, in a float64 copy of ``model`` in training mode. ``model`` is untouched."""
    net = copy.deepcopy(model).double().train()
    train_inputs, _ = check_inputs(net, _as_double(example if isinstance(example, tuple) else (example,)), 1, seed)
    args = train_inputs[0]
    params = dict(net.named_parameters())
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        base = _forward(net, args, seed)
        scale = max((float(t.abs().max()) for t in base if t.numel()), default=0.0) or 1.0

        def moves(param: str, span: slice | None = None) -> float:
            p = params[param]
            saved = p.detach().clone()
            target = p[span] if span is not None else p
            delta = (torch.randn(target.shape, generator=g, dtype=torch.float64) + torch.randn(
                (), generator=g, dtype=torch.float64)).to(target.device)
            with torch.no_grad():
                target.add_(delta)
                try:
                    out = _forward(net, args, seed)
                finally:
                    p.copy_(saved)
            return max((float((a - b).abs().max()) for a, b in zip(base, out) if a.numel()), default=0.0) / scale

        return moves


def verify_findings(model: nn.Module, findings: list[Finding], example: torch.Tensor | tuple,
                    seed: int = 0) -> list[Finding]:
    """Set ``verified`` on every ``redundant`` finding: True when perturbing it leaves the output
    unchanged (:data:`VERIFY_TOLERANCE`), False when it does not. Returns ``findings``."""
    redundant = [f for f in findings if f.status == "redundant"]
    if not redundant:
        return findings
    moves = output_moves(model, example, seed)
    for f in redundant:
        span = slice(*f.span) if f.span is not None else None
        f.verified = moves(f.param, span) <= VERIFY_TOLERANCE
    return findings
