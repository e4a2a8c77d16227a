"""Which biases can a model do without? Decide it from the model's torch.fx graph.

A layer with a per-channel bias ``b`` computes ``y = W·x + b``. Follow ``y`` through the graph:

* ops that keep "a constant added per channel" a constant per channel (identity, max/average
  pooling without zero padding counted in, flatten / view / reshape / transpose / permute of the
  channel layout, mean over positions, scaling by a number, adding an unrelated tensor, and a
  product with a softmax's rows, which sum to one) pass the offset on, its values carried along
  exactly; a matrix product makes it data-dependent but keeps it constant along one axis;
* a normalisation that subtracts a mean over everything the offset is constant on removes it —
  BatchNorm (batch and positions), InstanceNorm (positions), GroupNorm (a group of channels and
  positions, so only when the offset is constant within each group), LayerNorm (its normalised
  axes), softmax (its axis; this is why the *key* bias of attention is redundant) — and the bias is
  ``redundant``;
* anything non-linear (ReLU, GELU, ...), a second consumer (a skip connection) or the model output
  stops the search: the bias is ``active``, unless in eval mode it can be merged into a neighbour
  with an identical function (BatchNorm with running statistics right after a conv / linear layer;
  an affine layer followed, with nothing non-linear between, by a linear layer or a conv without
  padding — e.g. attention's *value* bias, which reaches the output projection unchanged):
  ``foldable``.

Where fx cannot trace the model, :func:`find_biases` runs it once with forward hooks and decides
from the order of execution; that guess is weaker (a skip connection that reuses an output is
invisible) and is flagged with ``traced = False`` and a warning.
"""

from __future__ import annotations

import math
import operator
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.nn.modules.pooling import (
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    _AvgPoolNd,
    _MaxPoolNd,
)

from ..biases import is_bias_parameter
from ..io import BiaslabError
from ..results.audit import STATUSES, Finding

__all__ = ["STATUSES", "Finding", "find_biases", "batchnorm_pairs", "is_bias_parameter", "bias_axes"]

_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)
_ANALYSED = (_ConvNd, nn.Linear, *_NORMS)
_ACTIVATION_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus,
)
_RELU_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU)
_RELU_NAMES = {"relu", "relu_", "relu6", "leaky_relu", "prelu"}
_ACTIVATION_NAMES = _RELU_NAMES | {"gelu", "silu", "sigmoid", "tanh", "elu", "selu", "mish", "softplus",
                                   "hardswish", "hardtanh", "hardsigmoid", "abs", "exp", "square", "pow"}
_DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_POOL_FUNCTIONS = {
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
    F.adaptive_max_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
}
_RESHAPES = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "unflatten"}
_RESHAPE_FUNCTIONS = (torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)


def bias_axes(module: nn.Module, rank: int) -> tuple[int, ...] | None:
    """Axes of ``module``'s output (of ``rank`` dims) along which its ``bias`` varies; None if not per-channel."""
    if getattr(module, "bias", None) is None:
        return None
    if isinstance(module, nn.Linear):
        return (rank - 1,)
    if isinstance(module, nn.LayerNorm):
        return tuple(range(rank - len(module.normalized_shape), rank))
    if isinstance(module, _ConvNd):
        return (rank - len(module.kernel_size) - 1,)
    if isinstance(module, (_BatchNorm, _InstanceNorm, nn.GroupNorm)):
        return (1,) if rank >= 2 else None
    return None


@dataclass
class _Offset:
    """What the bias adds to a tensor: it may vary only along ``varies``; ``value`` broadcasts to it.

    ``value`` is None once the offset depends on the data (after a matrix product); axis 0 (the
    batch) is then in ``varies``.
    """

    varies: frozenset[int]
    value: torch.Tensor | None
    dropout: float = 0.0


@dataclass
class _Verdict:
    status: str
    short: str  # the reason in a few words, for tables
    reason: str
    consumer: str | None = None
    cancelled_fraction: float | None = None
    correction: torch.Tensor | None = None


def _name(module: nn.Module) -> str:
    return type(module).__name__


def _per_channel(off: _Offset, channels: int) -> torch.Tensor:
    """The offset as a vector over axis 1 (constant along every other axis)."""
    v = off.value
    return v.expand(*[channels if a == 1 else 1 for a in range(v.dim())]).reshape(channels)


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def _normalise(norm: nn.Module, name: str, shape: tuple[int, ...], off: _Offset) -> _Verdict | None:
    """Does the normalisation module ``norm`` (input ``shape``) cancel the offset? None if not a norm."""
    rank = len(shape)
    label = f"{_name(norm)} '{name}'"
    if not isinstance(norm, _NORMS):
        return None
    if off.dropout:
        return _Verdict("active", f"Dropout before {label}",
                        f"Dropout(p={off.dropout:g}) before {label} rescales it at random in "
                        "training, so the normalisation does not cancel it exactly",
                        name)
    spatial = frozenset(range(2, rank))
    if isinstance(norm, (_BatchNorm, _InstanceNorm)):
        averaged = "the batch and all positions" if isinstance(norm, _BatchNorm) else "all positions of each sample"
        tracks = norm.running_mean is not None
        blocked = off.varies - {1} if isinstance(norm, _BatchNorm) or tracks else off.varies & spatial
        if blocked or (tracks and off.value is None):
            return _Verdict("active", f"{label} does not cancel it",
                            f"{label} averages over {averaged}, but what the bias adds there varies "
                            f"along axes {sorted(blocked or off.varies)}",
                            name)
        correction = _per_channel(off, shape[1]) if tracks else None
        tail = "; its running_mean absorbs it (corrected on removal)" if tracks else ""
        return _Verdict("redundant", f"cancelled by {label}",
                        f"feeds only {label}, which subtracts the per-channel mean over {averaged}: "
                        f"the bias cancels{tail}",
                        name, 1.0, correction)
    if isinstance(norm, nn.GroupNorm):
        if off.varies & spatial or off.value is None:
            return _Verdict("active", f"{label} does not cancel it",
                            f"{label} averages over channel groups and positions, but what the bias "
                            "adds there varies along positions or samples",
                            name)
        v = _per_channel(off, shape[1]).double().view(norm.num_groups, -1)
        return _partial(v, v.mean(dim=1, keepdim=True), label, name,
                        f"subtracts the mean over each of its {norm.num_groups} channel groups")
    # LayerNorm over the last len(normalized_shape) axes.
    axes = frozenset(range(rank - len(norm.normalized_shape), rank))
    if not off.varies & axes:
        return _Verdict("redundant", f"cancelled by {label}",
                        f"feeds only {label}, which subtracts the mean over axes {sorted(axes)}, "
                        "along which the bias adds a constant: it cancels",
                        name, 1.0)
    if off.value is None:
        return _Verdict("active", f"{label} does not cancel it",
                        f"{label} normalises over axes along which the (data-dependent) shift varies",
                        name)
    v = off.value.double()
    return _partial(v, v.mean(dim=tuple(sorted(axes)), keepdim=True), label, name,
                    f"subtracts the mean over its {math.prod(norm.normalized_shape)} normalised features")


def _partial(v: torch.Tensor, mean: torch.Tensor, label: str, name: str, what: str) -> _Verdict:
    """Verdict when a normalisation removes only the mean part ``mean`` of the offset ``v``."""
    total = float(v.pow(2).sum())
    rest = v - mean
    if not bool(rest.abs().max() > 0):
        return _Verdict("redundant", f"cancelled by {label}",
                        f"feeds only {label}, which {what}; the bias is constant there, so it "
                        "cancels",
                        name, 1.0)
    frac = float(mean.expand_as(v).pow(2).sum()) / total
    return _Verdict("active", f"{label} cancels only {_pct(frac)}",
                    f"feeds {label}, which {what}: only that mean of the bias ({_pct(frac)} of ‖b‖²) "
                    "cancels; the rest still shifts features relative to each other",
                    name, frac)


class _ShapeRecorder(fx.Interpreter):
    """Runs the graph once and stores each tensor-valued node's output shape in ``node.meta["shape"]``."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            n.meta["shape"] = tuple(result.shape)
        return result


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    return node.meta.get("shape")


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{_name(modules[node.target])} '{node.target}'"
    if node.op == "call_method":
        return f".{node.target}()"
    return getattr(node.target, "__name__", str(node.target))


def _is_nonlinear(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], _ACTIVATION_MODULES)
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return str(name).strip("_") in _ACTIVATION_NAMES


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], _RELU_MODULES)
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return str(name) in _RELU_NAMES


def _arg(node: fx.Node, i: int, key: str, default: Any = None) -> Any:
    return node.args[i] if len(node.args) > i else node.kwargs.get(key, default)


def _axis_groups(a: tuple[int, ...], b: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """Pair runs of axes of shape ``a`` with runs of shape ``b`` of equal size (a reshape's structure)."""
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        ins, outs, pa, pb = [i], [j], a[i], b[j]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb:
                if i >= len(a):
                    return None
                pa, i = pa * a[i], i + 1
                ins.append(i - 1)
            else:
                if j >= len(b):
                    return None
                pb, j = pb * b[j], j + 1
                outs.append(j - 1)
        groups.append((ins, outs))
    if any(s != 1 for s in a[i:]) or any(s != 1 for s in b[j:]) or not groups:
        return None
    groups[-1][0].extend(range(i, len(a)))
    groups[-1][1].extend(range(j, len(b)))
    return groups


def _reshape(off: _Offset, shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> _Offset | None:
    groups = _axis_groups(shape_in, shape_out)
    if groups is None:
        return None
    varies = frozenset(o for ins, outs in groups if off.varies & set(ins) for o in outs)
    value = None
    if off.value is not None:
        full = off.value.expand(shape_in).reshape(shape_out)
        value = full[tuple(slice(None) if a in varies else slice(0, 1) for a in range(len(shape_out)))].clone()
    return _Offset(varies, value, off.dropout)


def _permute(off: _Offset, perm: list[int]) -> _Offset:
    varies = frozenset(k for k, d in enumerate(perm) if d in off.varies)
    value = off.value.permute(perm) if off.value is not None else None
    return _Offset(varies, value, off.dropout)


def _transfer(user: fx.Node, src: fx.Node, off: _Offset, modules: dict[str, nn.Module]) -> _Offset | None:
    """The offset after ``user`` when its input ``src`` carries ``off``; None if ``user`` does not keep it."""
    shape_in, shape_out = _shape(src), _shape(user)
    if shape_in is None or shape_out is None:
        return None
    rank = len(shape_in)
    spatial = frozenset(range(2, rank))
    first = bool(user.args) and user.args[0] is src
    pooled = off if first and not off.varies & spatial and len(shape_out) == rank else None
    if user.op == "call_module":
        m = modules[user.target]
        if isinstance(m, nn.Identity):
            return off
        if isinstance(m, _DROPOUT_MODULES):
            return _Offset(off.varies, off.value, max(off.dropout, float(m.p)))
        if isinstance(m, (_MaxPoolNd, _AdaptiveMaxPoolNd)):
            return None if getattr(m, "return_indices", False) else pooled
        if isinstance(m, _AvgPoolNd):
            padded = any(p != 0 for p in (m.padding if isinstance(m.padding, tuple) else (m.padding,)))
            return None if (padded and m.count_include_pad) or getattr(m, "divisor_override", None) else pooled
        if isinstance(m, _AdaptiveAvgPoolNd):
            return pooled
        if isinstance(m, (nn.Flatten, nn.Unflatten)):
            return _reshape(off, shape_in, shape_out)
        return None
    target = user.target
    name = target if user.op == "call_method" else getattr(target, "__name__", "")
    if user.op == "call_function" and target in _POOL_FUNCTIONS:
        return pooled
    if user.op == "call_function" and target is F.dropout:
        return _Offset(off.varies, off.value, max(off.dropout, float(_arg(user, 1, "p", 0.5))))
    if name in _RESHAPES and first and (user.op == "call_method" or target in _RESHAPE_FUNCTIONS):
        return _reshape(off, shape_in, shape_out)
    if name == "contiguous" and first:
        return off
    if name in ("transpose", "swapaxes") and first:
        d0, d1 = (int(_arg(user, 1, "dim0")) % rank, int(_arg(user, 2, "dim1")) % rank)
        perm = list(range(rank))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return _permute(off, perm)
    if name == "permute" and first:
        dims = _arg(user, 1, "dims")
        if not isinstance(dims, (list, tuple)):  # x.permute(0, 2, 1) rather than x.permute((0, 2, 1))
            dims = user.args[1:]
        return _permute(off, [int(d) % rank for d in dims])
    if name == "mean" and first:
        return _mean(user, off, rank)
    if target in (operator.mul, operator.truediv, torch.mul, torch.div) or name in ("mul", "div"):
        other = user.args[1] if first else user.args[0]
        if not isinstance(other, (int, float)) or (not first and target in (operator.truediv, torch.div)):
            return None
        scale = 1 / other if target in (operator.truediv, torch.div) or name == "div" else other
        return _Offset(off.varies, off.value * scale if off.value is not None else None, off.dropout)
    if target in (operator.add, operator.sub, torch.add, torch.sub) or name in ("add", "sub"):
        if len(user.args) != 2 or user.kwargs or user.args[0] is user.args[1] or shape_out != shape_in:
            return None  # (alpha= would scale one operand)
        negate = not first and (target in (operator.sub, torch.sub) or name == "sub")
        return _Offset(off.varies, -off.value if negate and off.value is not None else off.value, off.dropout)
    if target in (operator.matmul, torch.matmul, torch.bmm) or name == "matmul":
        other = user.args[1] if first else user.args[0]
        if not isinstance(other, fx.Node) or len(shape_out) != rank or rank < 2:
            return None
        if not first and rank - 2 not in off.varies and _is_row_softmax(other, rank, modules):
            return off  # each row of a softmax sums to one: A·(V + b) = A·V + b, as in attention's values
        kept = rank - 2 if first else rank - 1  # the axis along which the product keeps the offset constant
        if kept in off.varies:
            return None
        return _Offset(frozenset(range(rank)) - {kept}, None, off.dropout)
    return None


def _mean(user: fx.Node, off: _Offset, rank: int) -> _Offset:
    dim = _arg(user, 1, "dim")
    keep = bool(_arg(user, 2, "keepdim", False))
    dims = sorted({int(d) % rank for d in ((dim,) if isinstance(dim, int) else (dim or range(rank)))})
    value = None
    if off.value is not None:
        value = off.value.mean(dim=dims, keepdim=True)
        if not keep:
            value = value.squeeze(dims) if dims else value
    if keep:
        varies = off.varies - set(dims)
    else:
        varies = frozenset(a - sum(d < a for d in dims) for a in off.varies if a not in dims)
    return _Offset(varies, value, off.dropout)


def _softmax_dim(user: fx.Node, src: fx.Node, modules: dict[str, nn.Module]) -> int | None:
    if not user.args or user.args[0] is not src:
        return None
    if user.op == "call_module":
        m = modules[user.target]
        return m.dim if isinstance(m, (nn.Softmax, nn.LogSoftmax)) and m.dim is not None else None
    name = user.target if user.op == "call_method" else getattr(user.target, "__name__", "")
    if name in ("softmax", "log_softmax"):
        dim = _arg(user, 1, "dim")
        return dim if isinstance(dim, int) else None
    return None


def _is_row_softmax(node: fx.Node, rank: int, modules: dict[str, nn.Module]) -> bool:
    """Is ``node`` a softmax over its last axis (every row sums to one)?"""
    if node.op == "call_module":
        m = modules[node.target]
        return type(m) is nn.Softmax and m.dim is not None and m.dim % rank == rank - 1
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    dim = _arg(node, 1, "dim")
    return name == "softmax" and bool(node.args) and isinstance(dim, int) and dim % rank == rank - 1


def _data_users(node: fx.Node) -> list[fx.Node]:
    """Users that read the tensor's values (``x.size(0)``, ``x.shape``, ``x.dim()`` only read its shape)."""
    def meta_only(u: fx.Node) -> bool:
        if u.op == "call_method":
            return u.target in ("size", "dim", "numel")
        return u.op == "call_function" and u.target is getattr and u.args[1] in ("shape", "dtype", "device", "ndim")
    return [u for u in node.users if not meta_only(u)]


def _follow(node: fx.Node, off: _Offset, modules: dict[str, nn.Module], calls: dict[str, int]) -> _Verdict:
    """Walk from ``node`` (a bias layer's output) until the offset is cancelled or kept."""
    via: list[str] = []
    while True:
        where = f" (through {', '.join(via)})" if via else ""
        users = _data_users(node)
        if not users:
            return _Verdict("active", "output unused",
                            f"its output{where} is not used by the traced graph")
        if len(users) > 1:
            return _Verdict("active", f"output reused ({len(users)} consumers)",
                            f"its output{where} has {len(users)} consumers (a skip connection or "
                            "reuse): the bias reaches a path that no normalisation cancels")
        user = users[0]
        if user.op == "output":
            return _Verdict("active", "reaches the model output",
                            f"it reaches the model output{where}")
        shape = _shape(node)
        if user.op == "call_module" and isinstance(modules[user.target], _NORMS) and user.args[0] is node and shape:
            if calls.get(user.target, 0) > 1:
                return _Verdict("active", "shared normalisation",
                                f"the normalisation '{user.target}' after it is shared "
                                f"({calls[user.target]} calls); not analysed")
            verdict = _normalise(modules[user.target], user.target, shape, off)
            verdict.reason += where
            return verdict
        dim = _softmax_dim(user, node, modules)
        if dim is not None and shape:
            if off.dropout:
                return _Verdict("active", "Dropout before softmax",
                                f"Dropout before the softmax{where} rescales it at random in training")
            if dim % len(shape) not in off.varies:
                return _Verdict("redundant", "cancelled by softmax",
                                f"adds the same value to every input of a softmax over axis "
                                f"{dim}{where}, which softmax ignores: it cancels",
                                "softmax", 1.0)
            return _Verdict("active", "varies along the softmax axis",
                            f"it varies along the softmax axis{where}")
        nxt = _transfer(user, node, off, modules)
        if nxt is None:
            kind = "non-linear" if _is_nonlinear(user, modules) else "does not keep a per-channel constant per-channel"
            into = _fold_target(user, node, off, modules, calls)
            if into is not None:
                return _Verdict("foldable", f"folds into '{into}'",
                                f"nothing non-linear between it and the affine layer '{into}'{where}: in eval "
                                "mode it folds into that layer's bias", into)
            return _Verdict("active", f"{_describe(user, modules)} follows",
                            f"its output{where} goes through {_describe(user, modules)} ({kind}) "
                            "before any normalisation")
        via.append(_describe(user, modules))
        node, off = user, nxt


def _fold_target(user: fx.Node, src: fx.Node, off: _Offset, modules: dict[str, nn.Module],
                 calls: dict[str, int]) -> str | None:
    """The layer ``user`` that can absorb the offset in eval mode (linear, or conv without padding)."""
    if user.op != "call_module" or not user.args or user.args[0] is not src or calls.get(user.target, 0) != 1:
        return None
    m = modules[user.target]
    if isinstance(m, nn.Linear):
        return user.target
    if isinstance(m, _ConvNd) and not m.transposed and off.value is not None and not off.varies - {1}:
        if m.padding == "valid" or (not isinstance(m.padding, str) and all(p == 0 for p in m.padding)):
            return user.target
    return None


def _bn_after_affine(node: fx.Node, modules: dict[str, nn.Module], calls: dict[str, int]) -> str | None:
    """For a BatchNorm node: the conv / linear layer it can be folded into, if any."""
    src = node.args[0] if node.args else None
    m = modules[node.target]
    if (not isinstance(src, fx.Node) or src.op != "call_module" or len(_data_users(src)) != 1
            or m.running_mean is None or calls.get(node.target, 0) != 1 or calls.get(src.target, 0) != 1):
        return None
    prev = modules[src.target]
    if isinstance(prev, nn.Linear) or (isinstance(prev, _ConvNd) and (not prev.transposed or prev.groups == 1)):
        return src.target
    return None


def _call_counts(gm: fx.GraphModule) -> dict[str, int]:
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    return calls


def batchnorm_pairs(gm: fx.GraphModule) -> list[tuple[str, str]]:
    """``(layer, batchnorm)`` module paths where a BatchNorm with running statistics reads, and is the only
    reader of, the output of a conv / linear layer; each called once."""
    modules = dict(gm.named_modules())
    calls = _call_counts(gm)
    pairs = []
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], _BatchNorm):
            into = _bn_after_affine(node, modules, calls)
            if into is not None:
                pairs.append((into, node.target))
    return pairs


def _initial_offset(module: nn.Module, rank: int) -> _Offset | None:
    axes = bias_axes(module, rank)
    if axes is None:
        return None
    shape = [1] * rank
    for a, s in zip(axes, module.bias.shape):
        shape[a] = s
    return _Offset(frozenset(axes), module.bias.detach().clone().reshape(shape))


def _trace_verdicts(model: nn.Module, example: tuple) -> tuple[dict[str, _Verdict], set[str]]:
    """Verdicts for every analysable bias module from the fx graph; also the modules seen as ReLU inputs."""
    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    _ShapeRecorder(gm).run(*example)
    calls = _call_counts(gm)
    verdicts: dict[str, _Verdict] = {}
    relu_fed: set[str] = set()
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target in verdicts:
            continue
        m = modules[node.target]
        shape = _shape(node)
        if not isinstance(m, _ANALYSED) or getattr(m, "bias", None) is None or shape is None:
            continue
        if calls[node.target] > 1:
            verdicts[node.target] = _Verdict("active", "shared layer",
                                             f"the layer is called {calls[node.target]} times (shared); "
                                             "not analysed")
            continue
        if len(_data_users(node)) == 1 and _is_relu(_data_users(node)[0], modules):
            relu_fed.add(node.target)
        off = _initial_offset(m, len(shape))
        if off is None:
            verdicts[node.target] = _Verdict("active", "not a per-channel bias",
                                             "not a per-channel bias")
            continue
        verdict = _follow(node, off, modules, calls)
        if verdict.status == "active":
            into = _bn_after_affine(node, modules, calls) if isinstance(m, _BatchNorm) else None
            if into is not None:
                verdict = _Verdict("foldable", f"folds into '{into}'",
                                   f"BatchNorm with running statistics right after '{into}': in eval "
                                   "mode it folds into that layer's weight and bias",
                                   into)
        verdicts[node.target] = verdict
    return verdicts, relu_fed


def _hook_verdicts(model: nn.Module, example: tuple) -> tuple[dict[str, _Verdict], set[str]]:
    """Order-based verdicts: run the model, match each layer's output tensor to the next module that reads it."""
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
    calls: dict[str, int] = {}
    for name, *_ in records:
        calls[name] = calls.get(name, 0) + 1
    verdicts: dict[str, _Verdict] = {}
    relu_fed: set[str] = set()
    for i, (name, m, _, out) in enumerate(records):
        if name in verdicts or not isinstance(m, _ANALYSED) or not isinstance(out, torch.Tensor):
            continue
        off = _initial_offset(m, out.dim())
        if off is None:
            continue
        if calls[name] > 1:
            verdicts[name] = _Verdict("active", "shared layer",
                                      f"the layer is called {calls[name]} times (shared); not analysed")
            continue
        nxt = next(((n2, m2) for n2, m2, ins, _ in records[i + 1:] if any(t is out for t in ins)), None)
        verdict = None
        if nxt is not None and isinstance(nxt[1], _NORMS) and calls[nxt[0]] == 1:
            verdict = _normalise(nxt[1], nxt[0], tuple(out.shape), off)
        if nxt is not None and isinstance(nxt[1], _RELU_MODULES):
            relu_fed.add(name)
        if verdict is None or verdict.status == "active":
            prev = records[i - 1] if i else None
            if (isinstance(m, _BatchNorm) and m.running_mean is not None and prev is not None
                    and isinstance(prev[1], (nn.Linear, _ConvNd)) and any(t is prev[3] for t in records[i][2])):
                verdict = _Verdict("foldable", f"folds into '{prev[0]}'",
                                   f"BatchNorm with running statistics right after '{prev[0]}': in "
                                   "eval mode it folds into that layer's weight and bias",
                                   prev[0])
            elif verdict is None:
                what = f"{_name(nxt[1])} '{nxt[0]}'" if nxt else "no module (a functional op or the output)"
                verdict = _Verdict("active", f"next module: {what} (order-based)",
                                   f"the next module to read its output is {what}")
        verdicts[name] = verdict
    return verdicts, relu_fed


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


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def find_biases(model: nn.Module, example_input: torch.Tensor | tuple) -> list[Finding]:
    """Every bias parameter of ``model`` with its status: ``redundant``, ``foldable`` or ``active``.

    Parameters
    ----------
    model : the network; it is not modified (the analysis runs one forward pass in eval mode
        without gradients and restores each module's train/eval flag).
    example_input : a tensor (or tuple of tensors) the model accepts; it fixes the shapes the
        analysis reasons about.

    Returns
    -------
    One :class:`Finding` per bias parameter, in ``named_parameters`` order. Where torch.fx cannot
    trace the model the verdicts come from the execution order of a hooked forward pass
    (``Finding.traced`` is False) and a :class:`UserWarning` says so.

    Raises
    ------
    BiaslabError
        if the model cannot run on ``example_input``.
    """
    example = example_input if isinstance(example_input, tuple) else (example_input,)
    traced = True
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            verdicts, relu_fed = _trace_verdicts(model, example)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: use the weaker fallback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        traced = False
        try:
            verdicts, relu_fed = _hook_verdicts(model, example)
        except Exception as run_exc:  # noqa: BLE001 - the model itself fails on this input
            msg = (str(run_exc).strip().splitlines() or [type(run_exc).__name__])[0][:200]
            shapes = ", ".join(str(tuple(t.shape)) for t in example if isinstance(t, torch.Tensor))
            raise BiaslabError(f"the model fails on an example input of shape {shapes}: {msg}; "
                               "pass an --input-shape the model accepts") from None
        warnings.warn(f"torch.fx could not trace the model ({first}); statuses come from the execution order of "
                      "one forward pass, a weaker guess that cannot see skip connections: a bias is called "
                      "redundant there only when perturbing it leaves the output unchanged", stacklevel=2)
    finally:
        for m, flag in flags.items():
            m.training = flag
    if not traced:
        _confirm_guesses(model, verdicts, example)
    modules = dict(model.named_modules())
    inside = _owners_of_leaves(modules)
    findings = []
    for pname, p in model.named_parameters():
        if not is_bias_parameter(pname):
            continue
        mname = _owner(pname)
        m = modules[mname]
        verdict = verdicts.get(mname) if pname.endswith(".bias") or pname == "bias" else None
        if verdict is None:
            verdict = _Verdict("active", "not analysed",
                               _unanalysed_reason(mname, m, pname, inside))
        reason = verdict.reason if traced or mname not in verdicts else (
            f"{verdict.reason} (order-based guess: torch.fx could not trace the model)")
        a = p.detach().abs().double()
        findings.append(Finding(
            module=mname, param=pname, type=_name(m), shape=tuple(p.shape), numel=p.numel(),
            abs_mean=float(a.mean()) if p.numel() else 0.0, abs_max=float(a.max()) if p.numel() else 0.0,
            status=verdict.status, reason=reason, traced=traced, consumer=verdict.consumer,
            cancelled_fraction=verdict.cancelled_fraction, feeds_relu=mname in relu_fed, short_reason=verdict.short,
            zero_now=bool(p.numel()) and not bool(p.detach().any()),
            correction=verdict.correction.double().numpy() if verdict.correction is not None else None,
        ))
    return findings


def _confirm_guesses(model: nn.Module, verdicts: dict[str, _Verdict], example: tuple) -> None:
    """Keep an order-based ``redundant`` only where perturbing the bias leaves the output unchanged."""
    from .verify import VERIFY_TOLERANCE, output_moves

    guesses = [name for name, v in verdicts.items() if v.status == "redundant"]
    if not guesses:
        return
    moves = output_moves(model, example)
    for name in guesses:
        v = verdicts[name]
        change = moves(f"{name}.bias" if name else "bias")
        if change <= VERIFY_TOLERANCE:
            v.reason += (f"; confirmed by perturbing it (float64, training mode): the output moved by "
                         f"{change:.1e} of its size")
        else:
            verdicts[name] = _Verdict("active", "used elsewhere too (perturbation)",
                                      f"the execution order suggests {v.short}, but perturbing the bias "
                                      f"(float64, training mode) moves the output by {change:.2g} of its size: "
                                      "its output is also used somewhere the order cannot show")


def _owners_of_leaves(modules: dict[str, nn.Module]) -> dict[str, str]:
    """For every module nested in a library (torch.nn) container module: that container's path."""
    inside: dict[str, str] = {}
    for name, m in modules.items():
        containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        if name and type(m).__module__.startswith("torch.nn") and not isinstance(m, containers):
            for sub, _ in m.named_modules():
                if sub:
                    inside.setdefault(f"{name}.{sub}", name)
    return inside


def _unanalysed_reason(mname: str, m: nn.Module, pname: str, inside: dict[str, str]) -> str:
    if mname in inside:
        return f"inside {_name(m)} of the opaque library layer '{inside[mname]}'; not analysed, counted as active"
    if not isinstance(m, _ANALYSED) or not (pname.endswith(".bias") or pname == "bias"):
        return f"a bias inside {_name(m)}, which the audit does not model; counted as active"
    return "its layer is not called as a module in the forward pass (used directly or not at all); counted as active"
