"""Equivalent fixes, in the style of ``torch.nn.utils.fusion``: drop redundant biases, fold BatchNorm.

Each transformation is a pair: a module-level function that checks the state it needs and refuses
loudly, deep-copies the model and changes the copy (the input is never touched), and a pure tensor
function that does the math (:func:`fold_bn_weights`). dtype and ``requires_grad`` are preserved.
Every transformation checks its result numerically before returning it (:mod:`.check`) and
raises :class:`BiaslabError` instead of returning a model that computes something else.

* :func:`remove_redundant_biases` — ``bias = None`` for every bias :func:`find_biases` finds
  redundant (a redundant part of a packed bias, or a parameter its layer cannot run without, is
  zeroed and held at zero by a :class:`HeldAtZero` parametrization); a following BatchNorm / InstanceNorm
  that keeps running statistics gets its ``running_mean`` lowered by what the bias added, so the
  model is unchanged in eval mode as well
  as in training mode. Checked in both modes.
* :func:`fold_batchnorm` — ``W' = W·s``, ``b' = (b − μ)·s + β`` with ``s = γ / √(σ² + ε)``; the
  BatchNorm becomes ``nn.Identity``. Valid in eval mode only; checked in eval mode, in the
  model's dtype and in float64.
* :func:`fold_biases` — that, then every other ``foldable`` bias moved into the linear layer or
  unpadded conv it reaches (``b' = b + W·v``), checked the same way.
* :func:`load_fixed` — load a state_dict written by ``biaslab audit --fix`` into a freshly built
  model of the original architecture.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.linear import NonDynamicallyQuantizableLinear

from ...infra.io import BiaslabError, safe_torch_load
from ...results.audit import Check, Finding
from .check import N_CHECK_INPUTS, check_inputs, require_equivalent
from .check import kept_attributes
from .graph import batchnorm_pairs, find_biases, is_conv1d, symbolic_trace
from .norms import NORM_MODULES
from .target import load_state

__all__ = [
    "remove_redundant_biases",
    "remove_bias",
    "hold_at_zero",
    "HeldAtZero",
    "plain_state_dict",
    "drop_biases",
    "fold_batchnorm",
    "fold_bn_weights",
    "remove_biases",
    "fold_biases",
    "load_fixed",
]


class HeldAtZero(nn.Module):
    """A parametrization (:func:`torch.nn.utils.parametrize.register_parametrization`) that multiplies a
    parameter by a fixed 0/1 mask: the masked entries are exactly zero in every forward pass and get an
    exactly zero gradient, so training never moves them; the others train as before."""

    def __init__(self, keep: torch.Tensor):
        super().__init__()
        self.register_buffer("keep", keep)

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return value * self.keep


def _read_by_parent(layer: nn.Module) -> bool:
    """Is ``layer`` ``nn.MultiheadAttention``'s ``out_proj``, whose bias the attention reads itself (its
    fast path needs a tensor there)? Its bias is zeroed, never set to None."""
    return isinstance(layer, NonDynamicallyQuantizableLinear)


def _removes_whole(owner: nn.Module, attr: str) -> bool:
    """Can ``owner.<attr>`` be set to None (a layer that computes without its bias)?"""
    return attr == "bias" and isinstance(owner, (nn.Linear, _ConvNd, *NORM_MODULES)) and not _read_by_parent(owner)


def hold_at_zero(owner: nn.Module, attr: str, span: slice | None = None) -> None:
    """Zero ``owner.<attr>`` (or its flat slice ``span``) in place and keep it at zero with a
    :class:`HeldAtZero` parametrization; dtype and ``requires_grad`` are kept. A parameter cannot be
    partly deleted, and a layer that indexes its parameter (LeViT's ``attention_biases``) cannot run
    without it: this is how such a bias, or a part of a packed one, is removed."""
    from torch.nn.utils import parametrize

    p = getattr(owner, attr)
    keep = torch.ones_like(p, dtype=p.dtype).detach()
    keep.view(-1)[span if span is not None else slice(None)] = 0.0
    if parametrize.is_parametrized(owner, attr):
        layer = owner.parametrizations[attr][0]
        if isinstance(layer, HeldAtZero):
            layer.keep.mul_(keep)
            keep = layer.keep
        else:
            parametrize.register_parametrization(owner, attr, HeldAtZero(keep))
    else:
        parametrize.register_parametrization(owner, attr, HeldAtZero(keep))
    with torch.no_grad():
        owner.parametrizations[attr].original.mul_(keep)


def remove_bias(model: nn.Module, f: Finding) -> None:
    """Remove ``f``'s bias from ``model`` in place: ``bias = None`` for a conv / linear / normalisation
    layer's whole bias, else zeroed and held at zero (:func:`hold_at_zero`), its part only for a part."""
    owner = model.get_submodule(f.module)
    attr = f.param.rsplit(".", 1)[-1]
    if f.part is None and _removes_whole(owner, attr):
        setattr(owner, attr, None)
    else:
        hold_at_zero(owner, attr, slice(*f.span) if f.span is not None else None)


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state_dict with parametrizations baked in (:class:`HeldAtZero` parts as zeros), under
    the parameter names of the original architecture; ``model`` is not changed."""
    from torch.nn.utils import parametrize

    if not any(parametrize.is_parametrized(m) for m in model.modules()):
        return model.state_dict()
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if parametrize.is_parametrized(m):
            for attr in list(m.parametrizations):
                parametrize.remove_parametrizations(m, attr, leave_parametrized=True)
    return plain.state_dict()


def drop_biases(model: nn.Module, findings: list[Finding]) -> nn.Module:
    """Remove the biases of ``findings`` from ``model`` (in place, :func:`remove_bias`), correcting
    running means.

    For each finding with ``corrections`` the named ``running_mean`` buffers are lowered by them:
    each estimates the mean of an input which, without the bias, is lower by exactly that much.
    A part of a packed bias (attention's key part of ``in_proj_bias``) cannot be removed alone: it
    is zeroed and held at zero, and the other parts stay as they are, trainable.
    """
    with torch.no_grad():
        for f in findings:
            for buffer, shift in (f.corrections or {}).items():
                mean = model.get_buffer(buffer)
                mean.sub_(torch.as_tensor(shift).to(mean))
    for f in findings:
        remove_bias(model, f)
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
    redundant = [f for f in findings if f.status == "redundant"]
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
        for inference only) or a check fails.
    """
    folded = _fold(model, example_input, affine=False)[0]
    _fold_checks(model, folded, False, example_input, "BatchNorm folded", n_inputs, seed)
    return folded


def fold_biases(model: nn.Module, example_input: torch.Tensor | tuple, n_inputs: int = N_CHECK_INPUTS,
                seed: int = 0) -> tuple[nn.Module, list[str], list[Check]]:
    """Fold everything :func:`find_biases` calls ``foldable``, in eval mode, into an equivalent copy.

    First every BatchNorm right after a conv / linear layer is folded into it (as
    :func:`fold_batchnorm`); then every bias whose offset reaches a linear layer or a conv without
    padding through exact ops (an affine layer's shift, attention's value bias) is moved into that
    layer's bias (``b' = b + W·v``) and removed (a part of a packed bias is zeroed).

    Returns
    -------
    The folded copy, what was folded (BatchNorm module names, then ``"param → layer"``), and the
    checks it passed (eval mode, the model's dtype and float64).

    Raises
    ------
    BiaslabError
        in training mode, or when a check fails (nothing is returned then).
    """
    folded, names = _fold(model, example_input, affine=True)
    checks = _fold_checks(model, folded, True, example_input, "folded", n_inputs, seed)
    return folded, names, checks


def _fold_checks(model: nn.Module, folded: nn.Module, affine: bool, example_input: torch.Tensor | tuple,
                 what: str, n_inputs: int, seed: int) -> list[Check]:
    """Check ``folded`` against ``model`` in eval mode, in the model's dtype and in float64 (the fold
    redone on a float64 copy); raise :class:`BiaslabError` if either fails."""
    _, eval_inputs = check_inputs(model, example_input, n_inputs, seed)
    checks = [require_equivalent(model, folded, eval_inputs, "eval", what, seed)]
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if dtype is not None and dtype != torch.float64:
        def wide(args: tuple) -> tuple:
            return tuple(t.double() if torch.is_tensor(t) and t.is_floating_point() else t for t in args)

        model64 = copy.deepcopy(model).double()
        example = example_input if isinstance(example_input, tuple) else (example_input,)
        folded64 = _fold(model64, wide(example), affine)[0]
        checks.append(require_equivalent(model64, folded64, [wide(a) for a in eval_inputs], "eval", what, seed))
    return checks


def _bn_pairs(model: nn.Module, example_input: torch.Tensor | tuple) -> list[tuple[str, str]]:
    """``(layer, batchnorm)`` pairs to fold: from the fx graph, or (where fx fails) from the analysis."""
    try:
        example = example_input if isinstance(example_input, tuple) else (example_input,)
        with kept_attributes(model):
            return batchnorm_pairs(symbolic_trace(model), model, example)
    except Exception:  # noqa: BLE001 - tracing failures have many types: use the recorded graph's findings
        return [(f.consumer, f.module) for f in find_biases(model, example_input)
                if f.status == "foldable" and f.fold_value is None and f.consumer
                and isinstance(model.get_submodule(f.module), _BatchNorm)]


def _is_plain_batchnorm(m: nn.Module) -> bool:
    """A ``torch.nn`` BatchNorm class itself (it computes nothing but the normalisation)."""
    return isinstance(m, _BatchNorm) and type(m).__module__.startswith("torch.nn")


def neutralise_batchnorm(bn: _BatchNorm) -> None:
    """Make ``bn`` compute the identity in eval mode, in place: running mean 0, running variance
    ``1 − eps``, weight 1, bias 0 (dtype and ``requires_grad`` kept). For a BatchNorm subclass that
    does more after normalising (timm's ``BatchNormAct2d``): the normalisation is folded away and the
    rest (activation, dropout) stays."""
    with torch.no_grad():
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0).sub_(bn.eps)
        if bn.weight is not None:
            bn.weight.fill_(1.0)
        if bn.bias is not None:
            bn.bias.zero_()


def _fold(model: nn.Module, example_input: torch.Tensor | tuple, affine: bool) -> tuple[nn.Module, list[str]]:
    training = [n or "<model>" for n, m in model.named_modules() if m.training]
    if training:
        raise BiaslabError(f"folding needs a model in eval mode (call model.eval()); in training mode: "
                           f"{', '.join(training[:3])}{' ...' if len(training) > 3 else ''}")
    folded = copy.deepcopy(model)
    names: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the analysis warns about how it traced; the checks decide
        while True:  # again after each round: a BatchNorm right after a folded one follows the layer now
            pairs = [(layer, bn) for layer, bn in _bn_pairs(folded, example_input) if bn not in names]
            if not pairs:
                break
            for layer_name, bn_name in pairs:
                layer, bn = folded.get_submodule(layer_name), folded.get_submodule(bn_name)
                out_axis = 1 if isinstance(layer, _ConvNd) and layer.transposed else 0
                layer.weight, layer.bias = fold_bn_weights(layer.weight, layer.bias, bn.running_mean,
                                                           bn.running_var, bn.eps, bn.weight, bn.bias, out_axis)
                if _is_plain_batchnorm(bn):
                    _set_submodule(folded, bn_name, nn.Identity())
                else:
                    neutralise_batchnorm(bn)
                names.append(bn_name)
        if affine:
            findings = [f for f in find_biases(folded, example_input)
                        if f.status == "foldable" and f.fold_value is not None]
            for f in reversed(findings):  # later layers first: a fold never moves a bias that was already moved
                _fold_affine(folded, f)
                names.append(f"{f.label} → {f.consumer}")
    return folded, names


def _fold_affine(model: nn.Module, f: Finding) -> None:
    """Move the offset ``f.fold_value`` that ``f``'s bias adds at the input of ``f.consumer`` (a linear layer,
    GPT-2's ``Conv1D`` or a conv without padding) into that layer's bias; remove (or, for a part, zero)
    ``f``'s bias."""
    target = model.get_submodule(f.consumer)
    w = target.weight.detach().double()
    v = torch.as_tensor(f.fold_value, dtype=torch.float64, device=w.device)
    if isinstance(target, nn.Linear) or is_conv1d(target):
        n_in = w.shape[0] if is_conv1d(target) else w.shape[1]  # Conv1D stores its weight as (in, out)
        vec = v.expand(*v.shape[:-1], n_in).reshape(-1, n_in)[0]
        delta = vec @ w if is_conv1d(target) else w @ vec
    else:
        groups, per = target.groups, w.shape[1]
        vec = v.expand(1, per * groups, *v.shape[2:]).reshape(per * groups, -1)[:, 0]
        wsum = w.sum(dim=tuple(range(2, w.dim())))
        out_per = w.shape[0] // groups
        delta = torch.cat([wsum[i * out_per:(i + 1) * out_per] @ vec[i * per:(i + 1) * per] for i in range(groups)])
    old = target.bias.detach().double() if target.bias is not None else torch.zeros_like(delta)
    target.bias = nn.Parameter((old + delta).to(target.weight.dtype), target.weight.requires_grad)
    owner = model.get_submodule(f.module)
    attr = f.param.rsplit(".", 1)[-1]
    if f.part is None and _removes_whole(owner, attr):
        setattr(owner, attr, None)
    else:  # folding is for inference: the moved part is zeroed (removal holds it at zero for training)
        with torch.no_grad():
            getattr(owner, attr).view(-1)[slice(*f.span) if f.span else slice(None)] = 0.0


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


