"""Equivalent fixes, in the style of ``torch.nn.utils.fusion``: drop redundant biases, fold BatchNorm.

Each transformation is a pair: a module-level function that checks the state it needs and refuses
loudly, deep-copies the model and changes the copy (the input is never touched), and a pure tensor
function that does the math (:func:`fold_bn_weights`). dtype and ``requires_grad`` are preserved.

* :func:`remove_redundant_biases` — ``bias = None`` for every bias :func:`find_biases` proves
  redundant; a following BatchNorm / InstanceNorm that keeps running statistics gets its
  ``running_mean`` lowered by what the bias added, so the model is unchanged in eval mode as well
  as in training mode.
* :func:`fold_batchnorm` — ``W' = W·s``, ``b' = (b − μ)·s + β`` with ``s = γ / √(σ² + ε)``; the
  BatchNorm becomes ``nn.Identity``. Valid in eval mode only.
* :func:`load_fixed` — load a state_dict written by ``biaslab audit --fix`` into a freshly built
  model of the original architecture.
* :func:`compare_outputs` — the proof: the largest output difference over several inputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.nn.modules.conv import _ConvNd
from torch.utils._pytree import tree_leaves

from ..io import BiaslabError, safe_torch_load
from .graph import _NORMS, Finding, batchnorm_pairs, find_biases
from .target import load_state

__all__ = [
    "remove_redundant_biases",
    "drop_biases",
    "fold_batchnorm",
    "fold_bn_weights",
    "load_fixed",
    "Equivalence",
    "compare_outputs",
]


def drop_biases(model: nn.Module, findings: list[Finding]) -> nn.Module:
    """Set the biases of ``findings`` to None in ``model`` (in place), correcting running means.

    For each finding with a ``correction`` the consumer's ``running_mean`` is lowered by it: that
    buffer estimates the mean of an input which, without the bias, is lower by exactly that much.
    """
    with torch.no_grad():
        for f in findings:
            layer = model.get_submodule(f.module)
            if f.correction is not None:
                norm = model.get_submodule(f.consumer)
                norm.running_mean.sub_(f.correction.to(norm.running_mean))
            layer.bias = None
    return model


def remove_redundant_biases(model: nn.Module, example_input: torch.Tensor | tuple) -> nn.Module:
    """A copy of ``model`` without the biases that :func:`find_biases` proves redundant.

    The copy computes the same function as ``model`` in training mode and, thanks to the
    running-mean correction, in eval mode. ``model`` is not modified.
    """
    findings = [f for f in find_biases(model, example_input) if f.status == "redundant"]
    return drop_biases(copy.deepcopy(model), findings)


def fold_bn_weights(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    eps: float,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    out_axis: int = 0,
) -> tuple[nn.Parameter, nn.Parameter]:
    """Weight and bias of ``BN(layer(x))`` as one affine layer (eval mode).

    Parameters
    ----------
    weight, bias : the layer's parameters (``bias`` may be None); ``weight``'s output channels lie
        along ``out_axis`` (0 for Linear and ConvNd, 1 for ConvTransposeNd).
    running_mean, running_var, eps, gamma, beta : the BatchNorm's statistics and affine parameters
        (``gamma`` / ``beta`` None when ``affine=False``).

    Returns
    -------
    ``(W·s, (b − μ)·s + β)`` with ``s = γ / √(σ² + ε)``, computed in float64 and returned in the
    dtypes of ``weight`` (and ``bias``, when given) with their ``requires_grad``.
    """
    scale = torch.rsqrt(running_var.double() + eps)
    if gamma is not None:
        scale = scale * gamma.double()
    b = bias.double() if bias is not None else torch.zeros_like(scale)
    new_b = (b - running_mean.double()) * scale + (beta.double() if beta is not None else 0.0)
    shape = [1] * weight.dim()
    shape[out_axis] = -1
    new_w = weight.double() * scale.reshape(shape)
    ref = bias if bias is not None else weight
    return (nn.Parameter(new_w.to(weight.dtype), weight.requires_grad),
            nn.Parameter(new_b.to(ref.dtype), ref.requires_grad))


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every BatchNorm that directly follows a conv / linear
    layer folded into that layer and replaced by ``nn.Identity``.

    Raises :class:`BiaslabError` when the model is in training mode (folding uses the running
    statistics, so it is valid for inference only) or cannot be traced by torch.fx.
    """
    training = [n or "<model>" for n, m in model.named_modules() if m.training]
    if training:
        raise BiaslabError(f"fold_batchnorm needs a model in eval mode (call model.eval()); in training mode: "
                           f"{', '.join(training[:3])}{' ...' if len(training) > 3 else ''}")
    try:
        pairs = batchnorm_pairs(fx.symbolic_trace(model))
    except Exception as exc:  # noqa: BLE001 - tracing failures have many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise BiaslabError(f"cannot fold BatchNorm: torch.fx cannot trace the model ({first})") from None
    folded = copy.deepcopy(model)
    for layer_name, bn_name in pairs:
        layer, bn = folded.get_submodule(layer_name), folded.get_submodule(bn_name)
        out_axis = 1 if isinstance(layer, _ConvNd) and layer.transposed else 0
        layer.weight, layer.bias = fold_bn_weights(layer.weight, layer.bias, bn.running_mean, bn.running_var,
                                                   bn.eps, bn.weight, bn.bias, out_axis)
        _set_submodule(folded, bn_name, nn.Identity())
    return folded


def _local_state_keys(module: nn.Module) -> list[str]:
    return [k for k in module.state_dict(keep_vars=True) if "." not in k]


def load_fixed(model: nn.Module, checkpoint: str | Path | dict[str, torch.Tensor]) -> nn.Module:
    """Load a state_dict written by ``biaslab audit --fix`` into ``model``, a freshly built instance
    of the original architecture; ``model`` is changed in place and returned.

    The state_dict says what the fix did: a layer whose ``bias`` key is absent loses its bias
    (``bias = None``); a normalisation layer none of whose keys is present was folded and becomes
    ``nn.Identity``; a conv / linear layer without a bias whose ``bias`` key is present (the fold
    target) gets one. Then ``load_state_dict`` runs with every key and shape checked.
    """
    state = safe_torch_load(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    keys = set(state)
    for name, m in list(model.named_modules()):
        prefix = f"{name}." if name else ""
        if isinstance(m, _NORMS) and name and (local := _local_state_keys(m)):
            if not any(prefix + k in keys for k in local):
                _set_submodule(model, name, nn.Identity())
                continue
        bias = getattr(m, "bias", None)
        if isinstance(bias, nn.Parameter) and prefix + "bias" not in keys:
            m.bias = None
        elif isinstance(m, (nn.Linear, _ConvNd)) and bias is None and prefix + "bias" in keys:
            m.bias = nn.Parameter(torch.empty_like(state[prefix + "bias"], dtype=m.weight.dtype),
                                  m.weight.requires_grad)
    return load_state(model, state, str(checkpoint) if isinstance(checkpoint, (str, Path)) else "the state_dict")


@dataclass
class Equivalence:
    """How far a fixed model's outputs are from the original's: the proof of a fix."""

    mode: str
    n_inputs: int
    max_abs_diff: float
    max_rel_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "n_inputs": self.n_inputs, "max_abs_diff": self.max_abs_diff,
                "max_rel_diff": self.max_rel_diff}


def _outputs(net: nn.Module, args: tuple, train: bool, seed: int) -> list[torch.Tensor]:
    """Every tensor ``net(*args)`` returns, as float64, in train or eval mode; ``net`` is restored after."""
    flags = {m: m.training for m in net.modules()}
    buffers = [(b, b.clone()) for b in net.buffers()]  # running statistics change in training mode
    net.train(train)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return [t.double() for t in tree_leaves(net(*args)) if isinstance(t, torch.Tensor)]
    finally:
        for m, flag in flags.items():
            m.training = flag
        for b, saved in buffers:
            b.copy_(saved)


def compare_outputs(original: nn.Module, fixed: nn.Module, inputs: list[tuple], mode: str = "eval",
                    seed: int = 0) -> Equivalence:
    """Run both models in ``mode`` ("train" or "eval") on each input and return the largest absolute
    difference of any output and that difference relative to the largest original output.

    The random state is reset to the same seed before each pair of forward passes, so dropout draws
    the same masks in both models. Neither model is modified (modes and buffers are restored).
    """
    max_abs, scale = 0.0, 0.0
    with torch.no_grad():
        for i, args in enumerate(inputs):
            try:
                ya, yb = (_outputs(net, args, mode == "train", seed + i) for net in (original, fixed))
            except ValueError as exc:
                raise BiaslabError(f"the {mode}-mode check failed ({str(exc)[:120]}); in training mode "
                                   "BatchNorm needs a batch of at least 2: pass --input-shape 2,...") from None
            for a, b in zip(ya, yb):
                if a.numel():
                    max_abs = max(max_abs, float((a - b).abs().max()))
                    scale = max(scale, float(a.abs().max()))
    return Equivalence(mode, len(inputs), max_abs, max_abs / scale if scale > 0 else max_abs)
