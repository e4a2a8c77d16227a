"""Numerical equivalence checks: is a fixed or folded model the same function as the original?

A check runs both models on the same inputs (same random state, so dropout draws the same masks)
in training or in eval mode and compares every output. It is a measurement on a few inputs, not
a proof: :class:`~biaslab.results.audit.Check` records how many inputs, which mode and dtype, the
largest relative difference and the tolerance it was held to.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from ...infra.io import BiaslabError
from ...results.audit import Check
from ...infra.io import first_line

__all__ = ["kept_attributes", "TOLERANCE", "N_CHECK_INPUTS", "MIN_TRAIN_BATCH", "tolerance", "check_inputs", "compare_outputs",
           "require_equivalent"]

#: Largest relative output difference (max |Δ| / max |original output|) a transformation may show
#: and still count as equivalent, by the dtype of the model's parameters.
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.bfloat16: 3e-2, torch.float16: 1e-2}

#: Random inputs per check (the example input is added in eval mode).
N_CHECK_INPUTS = 3

#: Training-mode checks use a batch of at least this many samples when the model accepts it:
#: training-mode BatchNorm over a tiny batch (or 1×1 maps) amplifies float rounding far beyond
#: anything a bias does.
MIN_TRAIN_BATCH = 8


def _dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def tolerance(model: nn.Module) -> float:
    """The relative tolerance for ``model``'s parameter dtype (:data:`TOLERANCE`)."""
    return TOLERANCE.get(_dtype(model), 1e-4)


def _as_tuple(example: torch.Tensor | tuple) -> tuple:
    return example if isinstance(example, tuple) else (example,)


def _like(t: object, shape: tuple[int, ...] | None, g: torch.Generator) -> object:
    """A random tensor like ``t`` (standard normal for floats, the same values otherwise)."""
    if not torch.is_tensor(t) or not t.is_floating_point():
        return t
    return torch.randn(shape or tuple(t.shape), generator=g, dtype=torch.float64).to(t)


def _runs(model: nn.Module, args: tuple) -> bool:
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            model(*args)
        return True
    except Exception:  # noqa: BLE001 - the model fixes its batch size
        return False
    finally:
        for m, flag in flags.items():
            m.training = flag


def check_inputs(model: nn.Module, example: torch.Tensor | tuple, n: int = N_CHECK_INPUTS,
                 seed: int = 0) -> tuple[list[tuple], list[tuple]]:
    """Inputs for a training-mode and an eval-mode check.

    Eval mode: the example plus ``n`` standard-normal inputs of its shape and dtype. Training
    mode: ``n`` standard-normal inputs with a batch of at least :data:`MIN_TRAIN_BATCH` when the
    model accepts it. Integer inputs (token ids) are kept as they are.
    """
    example = _as_tuple(example)
    g = torch.Generator().manual_seed(seed)
    same = [tuple(_like(t, None, g) for t in example) for _ in range(n)]
    first = example[0]
    if not torch.is_tensor(first) or not first.is_floating_point():
        return [example, *same], [example, *same]
    big = (max(MIN_TRAIN_BATCH, first.shape[0]), *first.shape[1:]) if first.dim() > 1 else tuple(first.shape)
    if not _runs(model, (torch.zeros(big, dtype=first.dtype, device=first.device), *example[1:])):
        return [example, *same], [example, *same]
    train = [(_like(first, big, g), *example[1:]) for _ in range(n)]
    return train, [example, *same]


@contextmanager
def kept_attributes(model: nn.Module) -> Iterator[None]:
    """Run a block and restore every module's public Python attributes afterwards: a forward pass may
    fill caches (timm's LeViT keeps its attention-bias table in eval mode), which would change what a
    later pass records and keep tensors that cannot be deep-copied."""
    def snapshot(m: nn.Module) -> dict[str, Any]:
        return {k: (copy.copy(v) if isinstance(v, (dict, list, set)) else v) for k, v in vars(m).items()
                if not k.startswith("_")}

    saved = {m: snapshot(m) for m in model.modules()}
    try:
        yield
    finally:
        for m, attrs in saved.items():
            for k in [k for k in vars(m) if not k.startswith("_") and k not in attrs]:
                delattr(m, k)
            m.__dict__.update(attrs)


def _outputs(net: nn.Module, args: tuple, train: bool, seed: int) -> list[torch.Tensor]:
    """Every tensor ``net(*args)`` returns, as float64, in train or eval mode; ``net`` is restored after."""
    flags = {m: m.training for m in net.modules()}
    buffers = [(b, b.clone()) for b in net.buffers()]  # running statistics change in training mode
    net.train(train)
    try:
        with torch.random.fork_rng(devices=[]), kept_attributes(net):  # caches a pass fills are emptied again
            torch.manual_seed(seed)
            return [t.double() for t in tree_leaves(net(*args)) if isinstance(t, torch.Tensor)]
    finally:
        for m, flag in flags.items():
            m.training = flag
        for b, saved in buffers:
            b.copy_(saved)


def compare_outputs(original: nn.Module, fixed: nn.Module, inputs: list[tuple], mode: str = "eval",
                    seed: int = 0, what: str = "compared") -> Check:
    """Run both models in ``mode`` ("train" or "eval") on each input; the largest absolute difference
    of any output and that difference relative to the largest original output, as a :class:`Check`
    held to :func:`tolerance` of ``original``.

    The random state is reset to the same seed before each pair of forward passes, so dropout draws
    the same masks in both models. Neither model is modified (modes and buffers are restored).
    """
    max_abs, scale = 0.0, 0.0
    with torch.no_grad():
        for i, args in enumerate(inputs):
            try:
                ya, yb = (_outputs(net, args, mode == "train", seed + i) for net in (original, fixed))
            except ValueError as exc:
                raise BiaslabError(f"the {mode}-mode check failed ({first_line(exc)}); in training mode "
                                   "BatchNorm needs a batch of at least 2: pass `input_shape` 2,...") from None
            for a, b in zip(ya, yb):
                if a.numel():
                    max_abs = max(max_abs, float((a - b).abs().max()))
                    scale = max(scale, float(a.abs().max()))
    rel = max_abs / scale if scale > 0 else max_abs
    tol = tolerance(original)
    return Check(what, mode, str(_dtype(original)).removeprefix("torch."), len(inputs), max_abs, rel, tol,
                 passed=rel <= tol)


def require_equivalent(original: nn.Module, fixed: nn.Module, inputs: list[tuple], mode: str, what: str,
                       seed: int = 0) -> Check:
    """:func:`compare_outputs`, raising :class:`BiaslabError` when the difference exceeds the tolerance."""
    check = compare_outputs(original, fixed, inputs, mode, seed, what)
    if not check.passed:
        raise BiaslabError(
            f"the model after '{what}' differs from the original: in {mode} mode ({check.dtype}) on "
            f"{check.n_inputs} inputs the relative output difference is {check.max_rel_diff:.3g}, above the "
            f"tolerance {check.tolerance:g}; nothing was changed or written. Please report this model.")
    return check
