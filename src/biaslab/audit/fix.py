"""Equivalent fixes, in the style of ``torch.nn.utils.fusion``: drop redundant biases, fold BatchNorm.

Each transformation is a pair: a module-level function that checks the state it needs and refuses
loudly, deep-copies the model and changes the copy (the input is never touched), and a pure tensor
function that does the math (:func:`fold_bn_weights`). dtype and ``requires_grad`` are preserved.
Every transformation checks its result numerically before returning it (:mod:`.check`) and
raises :class:`BiaslabError` instead of returning a model that computes something else.

* :func:`remove_redundant_biases` — ``bias = None`` for every bias :func:`find_biases` finds
  redundant; a following BatchNorm / InstanceNorm that keeps running statistics gets its
  ``running_mean`` lowered by what the bias added, so the model is unchanged in eval mode as well
  as in training mode. Checked in both modes.
* :func:`fold_batchnorm` — ``W' = W·s``, ``b' = (b − μ)·s + β`` with ``s = γ / √(σ² + ε)``; the
  BatchNorm becomes ``nn.Identity``. Valid in eval mode only; checked in eval mode, in the
  model's dtype and in float64.
* :func:`load_fixed` — load a state_dict written by ``biaslab audit --fix`` into a freshly built
  model of the original architecture.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import fx, nn
from torch.nn.modules.conv import _ConvNd

from ..io import BiaslabError, safe_torch_load
from ..results.audit import Check, Finding
from .check import N_CHECK_INPUTS, check_inputs, require_equivalent
from .graph import batchnorm_pairs, find_biases
from .norms import NORM_MODULES
from .target import load_state

__all__ = [
    "remove_redundant_biases",
    "drop_biases",
    "fold_batchnorm",
    "fold_bn_weights",
    "remove_biases",
    "fold_with_checks",
    "load_fixed",
]


def drop_biases(model: nn.Module, findings: list[Finding]) -> nn.Module:
    """Set the biases of ``findings`` to None in ``model`` (in place), correcting running means.

    For each finding with ``corrections`` the named ``running_mean`` buffers are lowered by them:
    each estimates the mean of an input which, without the bias, is lower by exactly that much.
    """
    with torch.no_grad():
        for f in findings:
            for buffer, shift in (f.corrections or {}).items():
                mean = model.get_buffer(buffer)
                mean.sub_(torch.as_tensor(shift).to(mean))
            layer = model.get_submodule(f.module)
            if f.part is not None:
                raise BiaslabError(f"cannot remove only the {f.part} part of {f.param}; remove_redundant_biases "
                                   "keeps packed biases whole")
            setattr(layer, f.param.rsplit(".", 1)[-1], None)
    return model


def remove_biases(model: nn.Module, findings: list[Finding], example_input: torch.Tensor | tuple,
                  n_inputs: int = N_CHECK_INPUTS, seed: int = 0) -> tuple[nn.Module, list[Check]]:
    """A copy of ``model`` without the ``redundant`` biases among ``findings``, and its checks.

    The copy is compared with ``model`` on ``n_inputs`` random inputs shaped like
    ``example_input`` (plus the example itself), in training and in eval mode.

    Raises
    ------
    BiaslabError
        if either check exceeds the tolerance for the model's dtype: the copy is not returned.
    """
    redundant = [f for f in findings if f.status == "redundant" and f.part is None]
    fixed = drop_biases(copy.deepcopy(model), redundant)
    if not redundant:
        return fixed, []
    train_inputs, eval_inputs = check_inputs(model, example_input, n_inputs, seed)
    checks = [require_equivalent(model, fixed, train_inputs, "train", "biases removed", seed),
              require_equivalent(model, fixed, eval_inputs, "eval", "biases removed", seed)]
    return fixed, checks


def remove_redundant_biases(model: nn.Module, example_input: torch.Tensor | tuple,
                            n_inputs: int = N_CHECK_INPUTS, seed: int = 0) -> nn.Module:
    """A copy of ``model`` without the biases that :func:`find_biases` finds redundant.

    The copy computes the same function as ``model`` in training mode and, thanks to the
    running-mean correction, in eval mode; both are checked on ``n_inputs`` inputs before it is
    returned (:func:`remove_biases`). ``model`` is not modified.

    Raises
    ------
    BiaslabError
        if the copy's outputs differ from ``model``'s beyond the dtype's tolerance.
    """
    return remove_biases(model, find_biases(model, example_input), example_input, n_inputs, seed)[0]


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


def fold_batchnorm(model: nn.Module, example_input: torch.Tensor | tuple, n_inputs: int = N_CHECK_INPUTS,
                   seed: int = 0) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every BatchNorm that directly follows a conv / linear
    layer folded into that layer and replaced by ``nn.Identity``.

    The copy is checked against ``model`` in eval mode on ``n_inputs`` inputs shaped like
    ``example_input``, in the model's dtype and (the fold redone on float64 copies) in float64.

    Raises
    ------
    BiaslabError
        when the model is in training mode (folding uses the running statistics, so it is valid
        for inference only), cannot be traced by torch.fx, or a check fails.
    """
    return fold_with_checks(model, example_input, n_inputs, seed)[0]


def fold_with_checks(model: nn.Module, example_input: torch.Tensor | tuple, n_inputs: int = N_CHECK_INPUTS,
                     seed: int = 0) -> tuple[nn.Module, list[Check]]:
    """:func:`fold_batchnorm`, also returning its checks."""
    folded = _fold_pairs(model)
    return folded, _fold_checks(model, folded, _fold_pairs, example_input, "BatchNorm folded", n_inputs, seed)


def _fold_checks(model: nn.Module, folded: nn.Module, fold, example_input: torch.Tensor | tuple,
                 what: str, n_inputs: int, seed: int) -> list[Check]:
    """Check ``folded`` (``fold(model)``) against ``model`` in eval mode, in the model's dtype and in
    float64 (``fold`` applied to a float64 copy); raise :class:`BiaslabError` if either fails."""
    _, eval_inputs = check_inputs(model, example_input, n_inputs, seed)
    checks = [require_equivalent(model, folded, eval_inputs, "eval", what, seed)]
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if dtype is not None and dtype != torch.float64:
        wide = copy.deepcopy(model).double()
        wide_inputs = [tuple(t.double() if torch.is_tensor(t) and t.is_floating_point() else t for t in args)
                       for args in eval_inputs]
        checks.append(require_equivalent(wide, fold(wide), wide_inputs, "eval", what, seed))
    return checks


def _fold_pairs(model: nn.Module) -> nn.Module:
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
        if isinstance(m, NORM_MODULES) and name and (local := _local_state_keys(m)):
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


