"""The ground-truth check of a ``redundant`` verdict: perturb the bias and see whether the output moves.

The model is copied to float64 and run on :data:`N_VERIFY_INPUTS` fresh inputs, never used to
record the graph (:func:`fresh_inputs`: new random draws, shifted and scaled both ways, so that
value-dependent control flow takes its branches), in training mode and in eval mode:

* training mode (a normalisation cancels a bias through its batch statistics): each bias in
  question gets a random perturbation — a random vector plus a constant, so that both the
  per-channel and the shared part move;
* eval mode: where the bias reaches a normalisation that keeps running statistics, removal lowers
  those running means by what the bias adds (``Finding.corrections``), so the perturbation is a
  scaled removal, ``b → b − t·b`` with the running means lowered by ``t·correction``; elsewhere the
  same random perturbation as in training mode.

Each model runs again with the same random state (same dropout masks). The verdict is confirmed
when the largest output change, in either mode on any input, stays within
:data:`VERIFY_TOLERANCE` of the largest output. :func:`verify_findings` perturbs all redundant
biases at once first and splits the group only where the output moves, so a model whose verdicts
all hold costs one perturbed pass per input and mode.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from ...results.audit import Finding
from .check import check_inputs

__all__ = ["VERIFY_TOLERANCE", "N_VERIFY_INPUTS", "fresh_inputs", "output_moves", "verify_findings"]

#: ``--verify``: a perturbed bias counts as cancelled when the output moves by at most this much
#: relative to the largest output (float64 rounding through a deep network stays below 1e-12).
VERIFY_TOLERANCE = 1e-8

#: Fresh inputs each perturbation is checked on, in each mode.
N_VERIFY_INPUTS = 4

#: The eval-mode perturbation of a bias with running-mean corrections: ``b → b − t·b``.
_EVAL_SCALE = 1.7


def _as_double(args: tuple) -> tuple:
    return tuple(t.double() if torch.is_tensor(t) and t.is_floating_point() else t for t in args)


def fresh_inputs(example: tuple, n: int = N_VERIFY_INPUTS, seed: int = 0,
                 shape: tuple[int, ...] | None = None) -> list[tuple]:
    """``n`` inputs like ``example`` (the first one shaped ``shape`` if given) from a random stream the
    recording never uses: normal draws scaled by 1, 2, 0.5, 3, … and shifted by +1, −1, +2, −2, …, so
    sums and means take both signs; integer tensors (token ids) are drawn from the example's range."""
    g = torch.Generator().manual_seed(seed + 104_729)
    out = []
    for i in range(n):
        scale, shift = (1.0, 2.0, 0.5, 3.0)[i % 4], (1 + i // 2) * (1.0 if i % 2 == 0 else -1.0)
        args = []
        for j, t in enumerate(example):
            if not torch.is_tensor(t):
                args.append(t)
                continue
            size = shape if (j == 0 and shape is not None) else tuple(t.shape)
            if t.is_floating_point():
                z = torch.randn(size, generator=g, dtype=torch.float64) * scale + shift
                args.append(z.to(t.device, t.dtype))
            else:
                high = max(int(t.max()) + 1, 1) if t.numel() else 1
                args.append(torch.randint(0, high, size, generator=g).to(t.device, t.dtype))
        out.append(tuple(args))
    return out


def _forward(net: nn.Module, args: tuple, seed: int, train: bool) -> list[torch.Tensor]:
    """The outputs, float64, in train or eval mode; running statistics restored afterwards."""
    buffers = [(b, b.clone()) for b in net.buffers()]
    net.train(train)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return [t.double() for t in tree_leaves(net(*args)) if isinstance(t, torch.Tensor)]
    finally:
        for b, saved in buffers:
            b.copy_(saved)


def output_moves(model: nn.Module, example: torch.Tensor | tuple, seed: int = 0,
                 modes: tuple[str, ...] = ("train",),
                 n_inputs: int = N_VERIFY_INPUTS) -> Callable[..., float]:
    """A function ``moves(param, span=None, corrections=None)``: the largest relative output change, over
    ``n_inputs`` fresh inputs (:func:`fresh_inputs`) and ``modes``, when ``param`` (or its slice ``span``)
    is perturbed in a float64 copy of ``model`` (in eval mode with ``corrections``: a scaled removal that
    lowers those running means too; see the module docstring). ``model`` is untouched."""
    net = copy.deepcopy(model).double()
    example64 = _as_double(example if isinstance(example, tuple) else (example,))
    train_batch = check_inputs(net, example64, 1, seed)[0][0][0]
    train_shape = tuple(train_batch.shape) if torch.is_tensor(train_batch) else None
    inputs = {"train": fresh_inputs(example64, n_inputs, seed, train_shape),
              "eval": fresh_inputs(example64, n_inputs, seed + 1)}
    params = dict(net.named_parameters())
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        base = {mode: [_forward(net, args, seed + i, mode == "train") for i, args in enumerate(inputs[mode])]
                for mode in modes}
        scale = max((float(t.abs().max()) for outs in base.values() for out in outs for t in out if t.numel()),
                    default=0.0) or 1.0

        @torch.no_grad()
        def jointly(targets: list[tuple[str, slice | None, dict[str, np.ndarray] | None]]) -> float:
            """The largest relative output change with every ``(param, span, corrections)`` perturbed at once."""
            saved = {param: params[param].detach().clone() for param, _, _ in targets}
            views = [(params[param][span] if span is not None else params[param], corrections)
                     for param, span, corrections in targets]
            random = [(torch.randn(t.shape, generator=g, dtype=torch.float64) + torch.randn(
                (), generator=g, dtype=torch.float64)).to(t.device) for t, _ in views]
            worst = 0.0
            for mode in modes:
                shifted: dict[str, torch.Tensor] = {}
                deltas = []
                for (target, corrections), rand in zip(views, random):
                    if mode == "eval" and corrections:
                        deltas.append(-_EVAL_SCALE * target.detach().clone())
                        for name, c in corrections.items():
                            shifted[name] = shifted.get(name, 0.0) - _EVAL_SCALE * torch.as_tensor(
                                c, dtype=torch.float64)
                    else:
                        deltas.append(rand)
                buffers = {name: net.get_buffer(name) for name in shifted}
                saved_buffers = {name: b.clone() for name, b in buffers.items()}
                for (target, _), delta in zip(views, deltas):
                    target.add_(delta)
                for name, b in buffers.items():
                    b.add_(shifted[name].to(b))
                try:
                    for i, args in enumerate(inputs[mode]):
                        out = _forward(net, args, seed + i, mode == "train")
                        change = max((float((a - b).abs().max()) for a, b in zip(base[mode][i], out) if a.numel()),
                                     default=0.0)
                        worst = max(worst, change / scale)
                finally:
                    for param, value in saved.items():
                        params[param].copy_(value)
                    for name, b in buffers.items():
                        b.copy_(saved_buffers[name])
            return worst

        def moves(param: str, span: slice | None = None, corrections: dict[str, np.ndarray] | None = None) -> float:
            return jointly([(param, span, corrections)])

        moves.jointly = jointly  # type: ignore[attr-defined]
        return moves


def verify_findings(model: nn.Module, findings: list[Finding], example: torch.Tensor | tuple,
                    seed: int = 0) -> list[Finding]:
    """Set ``verified`` on every ``redundant`` finding: True when perturbing it leaves the output
    unchanged (:data:`VERIFY_TOLERANCE`) on every fresh input, in training and in eval mode; False when
    it does not. Returns ``findings``."""
    redundant = [f for f in findings if f.status == "redundant"]
    if not redundant:
        return findings
    moves = output_moves(model, example, seed, modes=("train", "eval"))

    def check(group: list[Finding]) -> None:
        """Perturb the whole group at once: unchanged output verifies all of it (a change hidden by
        random perturbations cancelling each other has probability zero); else split it in two."""
        targets = [(f.param, slice(*f.span) if f.span is not None else None, f.corrections) for f in group]
        unchanged = moves.jointly(targets) <= VERIFY_TOLERANCE
        if unchanged or len(group) == 1:
            for f in group:
                f.verified = unchanged
            return
        check(group[: len(group) // 2])
        check(group[len(group) // 2:])

    check(redundant)
    return findings
