"""The offset algebra: what a bias adds to every tensor downstream of it, one rule per op.

Adding a bias ``b`` to a layer's output adds an *offset* to every tensor computed from it. An
:class:`Offset` holds that offset twice, in float64:

* ``value`` — the offset itself (the bias's own numbers carried through each op; None once it
  depends on the data, e.g. after a product with another activation);
* ``probe`` — the same structure filled with random numbers. Which axes an offset varies along,
  and where it is zero, is read from the probe, so a verdict never depends on the bias's
  current values (a bias that happens to be zero, or constant, is treated like any other).

Both are kept broadcastable to the tensor (size 1 along axes where they are constant).

Rules (:func:`transfer`), by what an op does to ``x + offset``:

* **linear ops** — reshapes, permutes, chunk/split, concatenation, indexing, padding with zeros,
  average pooling, interpolation, mean and sum, scaling by a constant, linear layers and
  convolutions with fixed weights: ``op(x + o) = op(x) + op(o)``; the op is replayed on the
  offset, so zero padding, border effects and the axes a layer mixes come out exactly;
* **sums** — residual additions and subtractions add the offsets of their operands;
* **products with the data** — ``o·y``, ``o @ y``: the offset becomes data-dependent; a softmax
  whose rows sum to one passes an offset constant along the rows it averages unchanged;
* **shift-equivariant ops** — max pooling (any padding) passes an offset that is constant within
  each window it compares;
* **cancellations** — a mean-subtracting normalisation (:mod:`.norms`) or a softmax removes an
  offset constant along what it averages; attention's softmax over keys removes a key offset, or
  an offset in its additive mask, that is the same for every key;
* everything else — activations, RMSNorm, ops without a rule — stops the offset
  (:class:`Stop`): the bias is active there; "not analysed: <op>" when no rule exists.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd
from torch.utils._pytree import tree_flatten

from .norms import NormCall, is_rms_norm, norm_call

__all__ = ["Offset", "Stop", "Context", "transfer", "vanishes", "SHAPE_QUERIES", "compact", "op_name", "describe",
           "PROBE_RTOL"]

#: Two slices of a probe count as equal (the offset is constant along that axis) within this
#: relative tolerance; probes are float64 and rules are linear, so real variation is far larger.
PROBE_RTOL = 1e-9

_ACTIVATIONS = {
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid",
    "tanh", "hardswish", "hardsigmoid", "hardtanh", "softplus", "softsign", "tanhshrink", "logsigmoid", "glu",
    "abs", "exp", "log", "sqrt", "rsqrt", "pow", "square", "sin", "cos", "clamp", "clip", "threshold", "erf",
    "sign", "floor", "ceil", "round", "reciprocal", "hardshrink", "softshrink", "maximum", "minimum",
}
_ACTIVATION_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Softsign, nn.GLU,
    nn.LogSigmoid, nn.Tanhshrink, nn.Threshold,
)
_IDENTITY = {"contiguous", "clone", "detach", "float", "double", "half", "bfloat16", "to", "type_as", "type",
             "identity"}
_DROPOUT = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}
#: Ops linear in their tensor arguments: replaying them on the offset gives the output offset.
_LINEAR = {
    "view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims",
    "permute", "movedim", "moveaxis", "t", "expand", "expand_as", "reshape_as", "view_as", "repeat", "tile", "flip", "roll", "narrow",
    "select", "getitem", "chunk", "split", "tensor_split", "unbind", "cat", "concat", "concatenate", "stack",
    "mean", "sum", "neg", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "unfold", "fold",
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "diagonal", "tril", "triu",
}
_MAX_POOLS = {"max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
              "adaptive_max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices"}
_ADD = {"add", "sub"}
_MUL = {"mul", "div"}
_AXIS_ORDER = {"permute", "transpose", "t", "swapaxes", "swapdims", "movedim", "moveaxis"}
_AFFINE = {"linear", "conv1d", "conv2d", "conv3d", "addmm"}
_MATMUL = {"matmul", "bmm", "mm"}
_AVG_POOLS = {"avg_pool1d", "avg_pool2d", "avg_pool3d"}
_INTERPOLATION_MODES = {"nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"}
_NORM_FUNCTIONS = {"batch_norm", "instance_norm", "group_norm", "layer_norm"}
#: Methods and attributes that read a tensor's shape or type, never its values.
SHAPE_QUERIES = {"size", "dim", "numel", "shape", "dtype", "device", "ndim", "is_contiguous", "stride"}
_LINEAR_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, _AvgPoolNd, _AdaptiveAvgPoolNd, nn.Upsample,
                   nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d)
_DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


@dataclass
class Offset:
    """What the bias adds to one tensor (see the module docstring); ``dropout`` is the largest
    dropout probability it went through (dropout rescales it at random in training)."""

    value: torch.Tensor | None
    probe: torch.Tensor
    dropout: float = 0.0

    @property
    def varies(self) -> frozenset[int]:
        """Axes along which the offset is not constant."""
        return frozenset(a for a, s in enumerate(self.probe.shape) if s > 1)

    def full(self, shape: tuple[int, ...]) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Value and probe expanded to ``shape`` (views, no copies)."""
        value = self.value.expand(shape) if self.value is not None else None
        return value, self.probe.expand(shape)


class Stop(Exception):
    """The offset cannot be followed through an op: the bias matters from here on.

    ``short`` is a few words for tables, ``reason`` the sentence; ``unknown`` marks a missing rule
    ("not analysed"); ``partial`` marks a normalisation or softmax that would remove the offset's
    constant part.
    """

    def __init__(self, short: str, reason: str, unknown: bool = False, partial: bool = False):
        super().__init__(reason)
        self.short, self.reason, self.unknown, self.partial = short, reason, unknown, partial


@dataclass
class Context:
    """What the rules read besides the offsets: modules, parameters and buffers, call counts, and a
    random generator for stand-ins of data tensors; ``cancelled`` (label, consumer) and
    ``corrections`` (consumer → running-mean buffer and per-channel shift) collect what the
    normalisations on the way removed, ``via`` the ops the offset passed through."""

    modules: dict[str, nn.Module]
    tensors: dict[str, torch.Tensor]
    generator: torch.Generator
    cancelled: list[tuple[str, str]]
    via: list[str]
    corrections: dict[str, tuple[str, torch.Tensor]]
    float64: dict[str, torch.Tensor] = field(default_factory=dict)  # parameters and buffers as rules read them
    norm_uses: dict[str, int] = field(default_factory=dict)  # running-mean buffer → normalisation calls using it
    train: bool = False  # the graph was traced in training mode: a norm called with training=False is frozen
    changed: frozenset[str] = frozenset()  # parameters and buffers the forward changes in place

    def constant(self, name: str) -> torch.Tensor:
        """The parameter or buffer ``name`` as the rules use it (:func:`_constant`), converted once."""
        t = self.float64.get(name)
        if t is None:
            t = self.float64[name] = _constant(self.tensors[name])
        return t


def compact(value: torch.Tensor | None, probe: torch.Tensor, rank: int) -> Offset | None:
    """An :class:`Offset` from full (or broadcastable) tensors: left-padded to ``rank`` axes, reduced
    to size 1 along every axis where the probe is constant; None where the probe is all zero."""
    probe = probe.reshape((1,) * (rank - probe.dim()) + tuple(probe.shape))
    if value is not None:
        value = value.reshape((1,) * (rank - value.dim()) + tuple(value.shape))
    scale = float(probe.abs().max()) if probe.numel() else 0.0
    if scale == 0.0:
        return None
    for axis in range(rank):
        if probe.shape[axis] > 1:
            first = probe.narrow(axis, 0, 1)
            if torch.equal(probe, first.expand_as(probe)) or bool(((probe - first).abs() <= PROBE_RTOL * scale).all()):
                probe = first
                if value is not None and value.shape[axis] > 1:
                    value = value.narrow(axis, 0, 1)
    if value is not None:
        value = value.contiguous()
    return Offset(value, probe.contiguous())


def op_name(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """The op's name without in-place or dunder decoration (``__iadd__``, ``add_``, ``iadd`` → ``add``)."""
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    raw = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
    name = raw.strip("_")
    if name.startswith("i") and name[1:] in ("add", "sub", "mul", "truediv", "matmul"):
        name = name[1:]
    return {"truediv": "div", "true_divide": "div", "multiply": "mul", "subtract": "sub"}.get(name, name)


def describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """The op as people name it: ``ReLU 'features.2'``, ``.view()``, ``softmax``."""
    if node.op == "call_module":
        return f"{type(modules[node.target]).__name__} '{node.target}'"
    if node.op == "call_method":
        return f".{node.target}()"
    return getattr(node.target, "__name__", str(node.target))


def _arg(node: fx.Node, i: int, key: str, default: Any = None) -> Any:
    return node.args[i] if len(node.args) > i else node.kwargs.get(key, default)


def _const(arg: Any) -> Any:
    """A non-tensor argument's value (recorded for nodes that computed it)."""
    return arg.meta.get("value") if isinstance(arg, fx.Node) else arg


def _shape(node: fx.Node) -> tuple[int, ...]:
    return node.meta["shape"]


def _rank(node: fx.Node) -> int:
    return len(node.meta["shape"])


def _constant(t: torch.Tensor) -> torch.Tensor:
    """A parameter or buffer as the rules use it: float64 if floating (indices stay integers)."""
    return t.double() if t.is_floating_point() else t


def _standin(node: fx.Node, ctx: Context) -> torch.Tensor:
    """A random positive tensor shaped like ``node``'s output: the data, as far as structure goes."""
    if node.op == "get_attr":
        return ctx.constant(str(node.target))
    return torch.rand(_shape(node), generator=ctx.generator, dtype=torch.float64) + 0.5


def _replay(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, which: str, compact_ok: bool = False) -> Any:
    """Run ``node``'s op with the offset (``which`` = "value" or "probe") in place of each biased
    input, zeros in place of other data, and constants as they are; with ``compact_ok`` (an op that
    only reorders axes) on the compact offset itself, without expanding it."""
    def sub(a: Any) -> Any:
        if not isinstance(a, fx.Node):
            return a
        if a in offsets:
            off = offsets[a]
            if isinstance(off, list):
                return [None if o is None else getattr(o, which) for o in off]  # not reached: tuples are indexed
            if compact_ok:
                return getattr(off, which)
            full = off.full(_shape(a))
            return (full[0] if which == "value" else full[1]).contiguous()
        if a.op == "get_attr":
            return ctx.constant(str(a.target))
        if "shape" in a.meta:
            return torch.zeros(_shape(a), dtype=torch.float64)
        if "shapes" in a.meta:
            return [torch.zeros(s, dtype=torch.float64) for s in a.meta["shapes"]]
        return a.meta.get("value")

    return _run_op(node, fx.node.map_aggregate(node.args, sub), fx.node.map_aggregate(node.kwargs, sub))


def _run_op(node: fx.Node, args: Any, kwargs: Any, modules: dict[str, nn.Module] | None = None) -> Any:
    """Run ``node``'s op on these arguments (``view`` as ``reshape``: substitutes need not be contiguous;
    a module as a float64 copy, leaving the model untouched)."""
    if node.op == "call_method":
        return getattr(args[0], "reshape" if node.target == "view" else node.target)(*args[1:], **kwargs)
    if node.op == "call_module":
        return copy.deepcopy(modules[node.target]).double()(*args, **kwargs)
    return node.target(*args, **kwargs)


def _apply(node: fx.Node, src: fx.Node, off: Offset, fn: Callable[[torch.Tensor], torch.Tensor],
           dropout: float, last_axis: bool = False) -> Offset | None:
    """Output offset of ``fn`` (linear) applied to the offset of ``src``; with ``last_axis`` (``fn`` acts
    on the last axis alone, as a linear layer does) on the compact offset, without expanding it."""
    if last_axis:
        shape = _shape(src)
        value, probe = (t.expand(*t.shape[:-1], shape[-1]) if t is not None else None
                        for t in (off.value, off.probe))
    else:
        value, probe = off.full(_shape(src))
    out = compact(fn(value.contiguous()) if value is not None else None, fn(probe.contiguous()), _rank(node))
    if out is not None:
        out.dropout = dropout
    return out


def _linear_replay(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, dropout: float) -> Any:
    """Output offset of an op that is linear in its tensor inputs (a tuple of offsets for chunk/split)."""
    any_data_dependent = any(isinstance(offsets[a], Offset) and offsets[a].value is None
                             for a in node.all_input_nodes if a in offsets)
    first = node.args[0] if node.args else None
    # reordering axes maps a size-1 axis to a size-1 axis: the compact offset can be permuted as it is
    compact_ok = (op_name(node, ctx.modules) in _AXIS_ORDER and isinstance(offsets.get(first), Offset)
                  and _biased_inputs(node, offsets) == [first] and offsets[first].probe.dim() == _rank(first))
    value = None if any_data_dependent else _replay(node, offsets, ctx, "value", compact_ok)
    probe = _replay(node, offsets, ctx, "probe", compact_ok)
    if isinstance(probe, (tuple, list)):
        values = value if value is not None else [None] * len(probe)
        out = [compact(v, p, p.dim()) for v, p in zip(values, probe)]
        for o in out:
            if o is not None:
                o.dropout = dropout
        return out
    off = compact(value, probe, probe.dim())
    if off is not None:
        off.dropout = dropout
    return off


def _biased_inputs(node: fx.Node, offsets: dict[fx.Node, Any]) -> list[fx.Node]:
    return [a for a in node.all_input_nodes if a in offsets]


def _data_dependent(node: fx.Node, off: Offset, biased: fx.Node, offsets: dict[fx.Node, Any], ctx: Context,
                    dropout: float) -> Offset | None:
    """Output offset of an op linear in ``biased`` but multiplied by data: replay with random stand-ins
    for the data, so only the structure (and no value) comes out."""
    def sub(a: Any) -> Any:
        if not isinstance(a, fx.Node):
            return a
        if a is biased:
            return off.full(_shape(a))[1].contiguous()
        if a.op == "get_attr" or "shape" in a.meta:
            return _standin(a, ctx)
        return a.meta.get("value")

    args = fx.node.map_aggregate(node.args, sub)
    kwargs = fx.node.map_aggregate(node.kwargs, sub)
    if node.op == "call_method":
        probe = getattr(args[0], node.target)(*args[1:], **kwargs)
    else:
        probe = node.target(*args, **kwargs)
    result = compact(None, probe, probe.dim())
    if result is not None:
        result.dropout = dropout
    return result


def _cancel(norm: NormCall, node: fx.Node, off: Offset, ctx: Context) -> None:
    """Does the normalisation remove the offset? Record it (and the running-mean correction) or stop."""
    shape = _shape(node)
    rank = len(shape)
    varies = off.varies
    spatial = frozenset(range(2, rank))
    if norm.frozen or (ctx.train and norm.training is False):
        raise Stop(f"{norm.label} uses running statistics",
                   f"{norm.label} is called with training=False: it subtracts its running mean, not the batch's, so "
                   "it does not cancel the offset")
    if norm.unbatched:
        raise Stop(f"not analysed: {norm.label} on an unbatched input",
                   f"not analysed: {norm.label} on an unbatched input", unknown=True)
    if off.dropout:
        raise Stop(f"Dropout before {norm.label}",
                   f"Dropout(p={off.dropout:g}) before {norm.label} rescales the offset at random in training, "
                   "so the normalisation does not cancel it exactly")
    if norm.kind == "batch" or (norm.kind == "instance" and norm.running_mean is not None):
        over = "the batch and all positions" if norm.kind == "batch" else "all positions (running statistics)"
        if varies - {1} or off.value is None:
            raise Stop(f"{norm.label} does not cancel it",
                       f"{norm.label} subtracts a per-channel mean over {over}, but the offset "
                       f"{'depends on the data' if off.value is None else f'varies along axes {sorted(varies - {1})}'}",
                       partial=False)
    elif norm.kind == "instance":
        if varies & spatial:
            raise Stop(f"{norm.label} does not cancel it",
                       f"{norm.label} subtracts the mean over positions, but the offset varies along them")
    elif norm.kind == "group":
        channels = shape[1]
        probe = off.probe.expand(1, channels, *off.probe.shape[2:]) if rank > 1 else off.probe
        grouped = probe.reshape(probe.shape[0], norm.groups, -1, *probe.shape[2:])
        within = bool(((grouped - grouped[:, :, :1]).abs() <= PROBE_RTOL * float(probe.abs().max())).all())
        if varies & spatial or not within:
            raise Stop(f"{norm.label} does not cancel it",
                       f"{norm.label} subtracts the mean over positions and the channels of each of its "
                       f"{norm.groups} groups, but the offset varies within them",
                       partial=True)
    else:
        axes = frozenset(range(rank - norm.n_axes, rank))
        if varies & axes:
            raise Stop(f"{norm.label} cancels only its mean",
                       f"{norm.label} subtracts the mean over its last {norm.n_axes} axes, but the offset varies "
                       "along them: only its mean cancels, the rest shifts features relative to each other",
                       partial=True)
    uses = ctx.norm_uses.get(norm.running_mean, 1) if norm.running_mean is not None else 1
    if uses > 1:
        raise Stop(f"{norm.label} is called {uses} times",
                   f"{norm.label} is called {uses} times with one running mean: removing the bias could not be "
                   "corrected in eval mode for every call")
    ctx.cancelled.append((norm.label, norm.consumer))
    if norm.running_mean is not None and off.value is not None:
        vector = off.value.expand(1, shape[1], *([1] * (rank - 2))).reshape(shape[1])
        buffer, old = ctx.corrections.get(norm.consumer, (norm.running_mean, torch.zeros_like(vector)))
        ctx.corrections[norm.consumer] = (buffer, old + vector)


def _softmax(node: fx.Node, off: Offset, ctx: Context, dim: Any) -> None:
    rank = _rank(node)
    if not isinstance(dim, int):
        raise Stop("softmax without a fixed axis", "goes through a softmax whose axis is not a constant",
                   unknown=True)
    if off.dropout:
        raise Stop("Dropout before softmax", "Dropout before the softmax rescales the offset at random in training")
    if dim % rank in off.varies:
        raise Stop("varies along the softmax axis", f"the offset varies along the softmax axis {dim}", partial=True)
    ctx.cancelled.append(("softmax", "softmax"))


def _is_row_softmax(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Is ``node`` a softmax over its last axis (every row sums to one)?"""
    if "shape" not in node.meta:
        return False
    rank = _rank(node)
    if node.op == "call_module":
        m = modules[node.target]
        return type(m) is nn.Softmax and m.dim is not None and m.dim % rank == rank - 1
    dim = _const(_arg(node, 1, "dim"))
    return op_name(node, modules) == "softmax" and isinstance(dim, int) and dim % rank == rank - 1


def _matmul(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, dropout: float) -> Offset | None:
    a, b = node.args[0], node.args[1]
    biased = _biased_inputs(node, offsets)
    if len(biased) > 1 or (a is b):
        raise Stop("product of two biased tensors", "both factors of a product carry the offset (a bilinear term)")
    src = biased[0]
    other = b if src is a else a
    if isinstance(other, fx.Node) and other.op == "get_attr":
        return _linear_replay(node, offsets, ctx, dropout)
    off = offsets[src]
    rank = _rank(src)
    if src is b and isinstance(other, fx.Node) and _is_row_softmax(other, ctx.modules) and rank >= 2 \
            and rank - 2 not in off.varies and not dropout:
        # each row of a softmax sums to one: A·(V + o) = A·V + o when o is the same in every row of V
        return compact(off.value, off.probe, _rank(node))
    return _data_dependent(node, off, src, offsets, ctx, dropout)


def _attention(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, dropout: float) -> Offset | None:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask)``: a key offset, or an offset in the additive
    mask, cancels in the softmax over keys when it is the same for every key; a value offset the same
    for every key passes through."""
    q, k, v, mask = (_arg(node, i, n) for i, n in enumerate(("query", "key", "value", "attn_mask")))
    biased = set(_biased_inputs(node, offsets))
    if biased - {q, k, v, mask}:
        raise Stop("not analysed: scaled_dot_product_attention",
                   "not analysed: the offset reaches scaled_dot_product_attention through an argument other "
                   "than its queries, keys, values or mask", unknown=True)
    if q in biased:
        raise Stop("query offset", "the offset reaches attention's queries: it changes the attention weights")
    if k in biased and v in biased and k is v:
        raise Stop("key and value share the offset", "the same tensor is attention's keys and values")
    result = None
    if k in biased:
        off = offsets[k]
        if off.dropout or _rank(k) - 2 in off.varies:
            raise Stop("key offset varies across keys", "the key offset differs between keys: the softmax over keys "
                       "does not remove it", partial=True)
        ctx.cancelled.append(("softmax over keys", "softmax"))
    if mask in biased:  # added to the scores q·kᵀ·scale before the softmax over keys (the last axis)
        off = offsets[mask]
        if off.dropout or _rank(mask) - 1 in off.varies:
            raise Stop("mask offset varies across keys", "the offset reaches attention's additive mask and differs "
                       "between keys: it changes the attention weights", partial=True)
        ctx.cancelled.append(("softmax over keys", "softmax"))
    if v in biased:
        off = offsets[v]
        p = _const(_arg(node, 4, "dropout_p", 0.0)) or 0.0
        if p or _rank(v) - 2 in off.varies:
            raise Stop("value offset varies across keys",
                       "the value offset differs between keys (or attention dropout is on): attention mixes it")
        shape = _shape(node)
        result = compact(off.value, off.probe, len(shape))
        if result is not None:
            result.dropout = off.dropout
    return result


def _module_rule(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, dropout: float) -> Any:
    m = ctx.modules[node.target]
    src = node.args[0] if node.args else None
    label = describe(node, ctx.modules)
    if _biased_inputs(node, offsets) != [src]:
        raise Stop(f"not analysed: {label}", f"not analysed: {label} reads the offset through a second input",
                   unknown=True)
    off = offsets[src]
    if isinstance(m, _DROPOUT_MODULES):
        return Offset(off.value, off.probe, max(dropout, float(m.p)))
    if isinstance(m, _LINEAR_MODULES) or (isinstance(m, nn.ConstantPad2d) and m.value == 0):
        return _apply(node, src, off, m, dropout)
    if isinstance(m, nn.Linear):
        return _apply(node, src, off, lambda x: F.linear(x, m.weight.detach().double().cpu()), dropout, last_axis=True)
    if isinstance(m, _ConvNd):
        return _apply(node, src, off, lambda x: _conv_no_bias(m, x), dropout)
    if isinstance(m, (_MaxPoolNd, _AdaptiveMaxPoolNd)):
        if getattr(m, "return_indices", False):
            raise Stop(f"not analysed: {label}", f"not analysed: {label} returns indices", unknown=True)
        return _shift_equivariant(node, src, off, label, dropout, m)
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        _softmax(node, off, ctx, m.dim)
        return None
    if isinstance(m, _ACTIVATION_MODULES):
        raise Stop(f"{label} follows", f"goes through {label} (non-linear) before any normalisation")
    if is_rms_norm(node, ctx.modules):
        raise Stop(f"{label} does not cancel it",
                   f"{label} divides by the root mean square without subtracting the mean: it does not cancel")
    raise Stop(f"not analysed: {label}", f"not analysed: {label}", unknown=True)


def _conv_no_bias(m: _ConvNd, x: torch.Tensor) -> torch.Tensor:
    w = m.weight.detach().double().cpu()
    if m.transposed:
        n = len(m.kernel_size)
        fn = getattr(F, f"conv_transpose{n}d")
        return fn(x, w, None, m.stride, m.padding, m.output_padding, m.groups, m.dilation)
    return m._conv_forward(x, w, None)


def _shift_equivariant(node: fx.Node, src: fx.Node, off: Offset, label: str, dropout: float,
                       pool: Callable[[torch.Tensor], torch.Tensor]) -> Offset | None:
    """Max pooling: ``max(x + c) = max(x) + c`` when ``c`` is the same at every position of each window
    ``pool`` compares (everywhere, or within each window: a kernel of one, windows of a nearest upsampling)."""
    dims = re.search(r"(\d)d", label)
    rank = _rank(node)
    pooled = frozenset(range(rank - int(dims.group(1)), rank)) if dims else frozenset(range(rank))
    if not off.varies & pooled:
        out = compact(off.value, off.probe, _rank(node))
    else:
        value, probe = (t.contiguous() if t is not None else None for t in off.full(_shape(src)))
        high, low = pool(probe), -pool(-probe)  # the largest and the smallest offset in each window
        if not bool(((high - low).abs() <= PROBE_RTOL * float(probe.abs().max())).all()):
            raise Stop(f"{label} mixes positions", f"the offset varies between the positions that {label} compares",
                       partial=False)
        out = compact(pool(value) if value is not None else None, high, _rank(node))
    if out is not None:
        out.dropout = dropout
    return out


def _sum(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, name: str, dropout: float) -> Offset | None:
    """``a + b`` / ``a - b`` (``alpha`` scales ``b``): the offsets of the operands add up."""
    alpha = _const(node.kwargs.get("alpha", 1))
    rank = _rank(node)
    value: torch.Tensor | None = torch.zeros((), dtype=torch.float64)
    probe = torch.zeros((), dtype=torch.float64)
    scale = 0.0
    for i, a in enumerate(node.args[:2]):
        if not isinstance(a, fx.Node) or a not in offsets:
            continue
        off = offsets[a]
        sign = (-1.0 if name == "sub" else 1.0) * (alpha if isinstance(alpha, (int, float)) else 1.0) if i == 1 else 1.0
        pad = (1,) * (rank - off.probe.dim())
        probe = probe + sign * off.probe.reshape(pad + tuple(off.probe.shape))
        if value is not None and off.value is not None:
            value = value + sign * off.value.reshape(pad + tuple(off.value.shape))
        else:
            value = None
        scale += float(off.probe.abs().max())
    if float(probe.abs().max()) <= PROBE_RTOL * scale:  # e.g. pool(x) - x of an offset that pooling keeps
        if dropout:
            raise Stop("Dropout before a difference", f"Dropout(p={dropout:g}) rescales the offset at random in "
                       "training, position by position, so the two branches of the difference do not cancel")
        ctx.cancelled.append(("the difference of two branches", "difference"))
        return None
    out = compact(value, probe, rank)
    if out is not None:
        out.dropout = dropout
    return out


def _scale(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, name: str, dropout: float) -> Offset | None:
    """``o·c``, ``o / c``: exact for a constant ``c`` (a number or a parameter), data-dependent otherwise."""
    biased = _biased_inputs(node, offsets)
    a, b = node.args[0], node.args[1] if len(node.args) > 1 else None
    if len(biased) > 1 or a is b:
        raise Stop("product of two biased tensors", "both factors of a product carry the offset (a bilinear term)")
    src = biased[0]
    if name == "div" and src is not a:
        raise Stop("divides by the offset", "the offset is in a denominator (non-linear)")
    other = b if src is a else a
    constant = not isinstance(other, fx.Node) or other.op == "get_attr" or (
        "value" in other.meta and not other.meta.get("data"))  # a number, a parameter, a size (not an .item())
    if constant:
        return _linear_replay(node, offsets, ctx, dropout)
    return _data_dependent(node, offsets[src], src, offsets, ctx, dropout)


def _broadcast_shift(off: Offset, node: fx.Node, channel_axis: int | None, dropout: float) -> Offset | None:
    """A shift argument (1-D along ``channel_axis``; right-aligned if None) as the output offset."""
    rank = _rank(node)
    if channel_axis is not None:
        shape = (1,) * channel_axis + (-1,) + (1,) * (rank - channel_axis - 1)
        value = off.value.reshape(shape) if off.value is not None else None
        out = compact(value, off.probe.reshape(shape), rank)
    else:
        out = compact(off.value, off.probe, rank)
    if out is not None:
        out.dropout = dropout
    return out


def _shift_argument(node: fx.Node, norm: NormCall, offsets: dict[fx.Node, Any], biased: list[fx.Node],
                    dropout: float) -> Offset | None:
    """The bias is a normalisation's own shift (``β``): it is added after normalising."""
    shift = _arg(node, 4 if norm.kind in ("batch", "instance") else 3, "bias")
    if biased != [shift]:
        raise Stop(f"not analysed: {norm.label}", f"not analysed: the offset reaches {norm.label} as a weight",
                   unknown=True)
    return _broadcast_shift(offsets[shift], node, 1 if norm.kind != "layer" else None, dropout)


def _affine(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, name: str, biased: list[fx.Node],
            dropout: float) -> Offset | None:
    """``F.linear`` / ``F.convNd`` / ``torch.addmm`` (GPT-2's Conv1D): the offset is in the input,
    transformed by the weight, or it is the call's own bias argument, added to the output."""
    if name == "addmm":
        shift, x, weight = (_arg(node, i, k) for i, k in enumerate(("input", "mat1", "mat2")))
        if any(k in node.kwargs for k in ("beta", "alpha")):
            raise Stop("not analysed: addmm with beta/alpha", "not analysed: addmm with beta or alpha", unknown=True)
    else:
        x, weight, shift = (_arg(node, i, k) for i, k in enumerate(("input", "weight", "bias")))
    if len(biased) > 1:
        raise Stop("product of two biased tensors", "both factors of a product carry the offset (a bilinear term)")
    src = biased[0]
    if src is shift:
        # a convNd's channels are the axis before its n spatial ones (axis 1, or 0 for an unbatched input)
        channels = _rank(node) - int(name[4]) - 1 if name.startswith("conv") else None
        return _broadcast_shift(offsets[src], node, channels, dropout)
    if src is not x:
        raise Stop(f"not analysed: {name}", f"not analysed: the offset reaches {name} as a weight", unknown=True)
    if not (isinstance(weight, fx.Node) and weight.op == "get_attr"):
        return _data_dependent(node, offsets[src], src, offsets, ctx, dropout)
    w = ctx.constant(str(weight.target))
    if name == "addmm":
        return _apply(node, src, offsets[src], lambda o: o @ w, dropout, last_axis=True)
    if name == "linear":
        return _apply(node, src, offsets[src], lambda o: F.linear(o, w), dropout, last_axis=True)
    rest = {k: _const(_arg(node, i, k)) for i, k in enumerate(("stride", "padding", "dilation", "groups"), 3)
            if _arg(node, i, k) is not None}
    return _apply(node, src, offsets[src], lambda o: getattr(F, name)(o, w, None, **rest), dropout)


# --- The rules: one small pure function per op, then the op → rule table, then :func:`transfer`. ---------------


@dataclass
class _Call:
    """One op the offset reaches: the node, the offsets so far, the context, the op's name, its biased
    inputs and the largest dropout probability the offset went through."""

    node: fx.Node
    offsets: dict[fx.Node, Any]
    ctx: Context
    name: str
    biased: list[fx.Node]
    dropout: float

    @property
    def first(self) -> Any:
        return self.node.args[0] if self.node.args else None

    @property
    def only_first(self) -> bool:
        """Is the first argument the one (and only) input that carries the offset?"""
        return self.biased == [self.first]


def _not_analysed(c: _Call) -> Any:
    what = describe(c.node, c.ctx.modules)
    raise Stop(f"not analysed: {what}", f"not analysed: {what}", unknown=True)


_CASTS = {"float", "double", "half", "bfloat16", "to", "type_as", "type"}


def _identity_rule(c: _Call) -> Any:
    if not c.only_first:
        return _not_analysed(c)
    if c.name in _CASTS:
        _check_cast(c.node, c.first)
    return c.offsets[c.first]


def _check_cast(node: fx.Node, src: Any) -> None:
    """A cast passes the offset unchanged only to a floating type at least as precise as its input's
    (:func:`_check_inputs` refuses the others, for every op); one whose types were not recorded is refused."""
    if any(not isinstance(n, fx.Node) or n.meta.get("dtype") is None for n in (src, node)):
        raise Stop(f"not analysed: .{node.target}()" if node.op == "call_method" else f"not analysed: {node.name}",
                   "not analysed: a cast whose types were not recorded", unknown=True)


def _dropout_rule(c: _Call) -> Offset:
    if not c.only_first:
        return _not_analysed(c)
    off = c.offsets[c.first]
    return Offset(off.value, off.probe, max(c.dropout, float(_const(_arg(c.node, 1, "p", 0.5)))))


def _softmax_rule(c: _Call) -> None:
    if not c.only_first:
        return _not_analysed(c)
    _softmax(c.node, c.offsets[c.first], c.ctx, _const(_arg(c.node, 1, "dim")))
    return None


def _attention_rule(c: _Call) -> Offset | None:
    return _attention(c.node, c.offsets, c.ctx, c.dropout)


def _sum_rule(c: _Call) -> Offset | None:
    if len(c.node.args) != 2 or c.node.args[0] is c.node.args[1]:
        return _not_analysed(c)
    return _sum(c.node, c.offsets, c.ctx, c.name, c.dropout)


def _scale_rule(c: _Call) -> Any:
    if c.name == "div" and _const(c.node.kwargs.get("rounding_mode")) is not None:
        raise Stop("rounded division", "a division that rounds its result (non-linear)")
    return _scale(c.node, c.offsets, c.ctx, c.name, c.dropout)


def _pad_rule(c: _Call) -> Any:
    if not c.only_first:
        return _not_analysed(c)
    mode, fill = _const(_arg(c.node, 2, "mode", "constant")), _const(_arg(c.node, 3, "value", None))
    if mode == "constant" and not fill:
        return _linear_replay(c.node, c.offsets, c.ctx, c.dropout)
    raise Stop(f"pad ({mode})", f"padding with {mode} values: not analysed", unknown=True)


def _affine_rule(c: _Call) -> Offset | None:
    return _affine(c.node, c.offsets, c.ctx, c.name, c.biased, c.dropout)


def _matmul_rule(c: _Call) -> Offset | None:
    return _matmul(c.node, c.offsets, c.ctx, c.dropout)


def _max_pool_rule(c: _Call) -> Offset | None:
    if not c.only_first:
        return _not_analysed(c)
    if _const(_arg(c.node, 5 if "adaptive" not in c.name else 2, "return_indices", False)):
        raise Stop(f"not analysed: {c.name}", f"not analysed: {c.name} with indices", unknown=True)
    if c.name.endswith("_with_indices") or c.node.op != "call_function":
        return _not_analysed(c)
    rest = [_const(a) for a in c.node.args[1:]]
    options = {k: _const(v) for k, v in c.node.kwargs.items()}
    return _shift_equivariant(c.node, c.first, c.offsets[c.first], c.name, c.dropout,
                              lambda t: c.node.target(t, *rest, **options))


def _linear_rule(c: _Call) -> Any:
    return _linear_replay(c.node, c.offsets, c.ctx, c.dropout)


def _avg_pool_rule(c: _Call) -> Any:
    if _const(_arg(c.node, 6, "divisor_override")):
        raise Stop(f"not analysed: {c.name}", f"not analysed: {c.name} with a divisor override", unknown=True)
    return _linear_rule(c)


def _interpolate_rule(c: _Call) -> Any:
    if _const(_arg(c.node, 2, "mode", "nearest")) not in _INTERPOLATION_MODES:
        raise Stop(f"not analysed: {c.name}", f"not analysed: {c.name}", unknown=True)
    return _linear_rule(c)


def _activation_rule(c: _Call) -> Any:
    what = describe(c.node, c.ctx.modules)
    raise Stop(f"{what} follows", f"goes through {what} (non-linear) before any normalisation")


def _rms_norm_rule(c: _Call) -> Any:
    raise Stop("rms_norm does not cancel it",
               "rms_norm divides by the root mean square without subtracting the mean: it does not cancel")


def _norm_function_rule(c: _Call) -> Offset | None:
    """``F.batch_norm`` / ``F.layer_norm`` / ...: cancels an offset in its input, or passes its own shift."""
    norm = norm_call(c.node, c.ctx.modules)
    if norm is None:
        return _not_analysed(c)
    if c.only_first:
        _cancel(norm, c.node, c.offsets[c.first], c.ctx)
        return None
    return _shift_argument(c.node, norm, c.offsets, c.biased, c.dropout)


def _rules(names: set[str], rule: Callable[[_Call], Any]) -> dict[str, Callable[[_Call], Any]]:
    return dict.fromkeys(names, rule)


#: The op → rule table for functions and methods (modules go through :func:`_module_rule`).
RULES: dict[str, Callable[[_Call], Any]] = {
    **_rules(_LINEAR, _linear_rule),
    **_rules(_AVG_POOLS, _avg_pool_rule),
    "interpolate": _interpolate_rule,
    **_rules(_IDENTITY, _identity_rule),
    **_rules(_DROPOUT, _dropout_rule),
    **_rules({"softmax", "log_softmax"}, _softmax_rule),
    "scaled_dot_product_attention": _attention_rule,
    **_rules(_ADD, _sum_rule),
    **_rules(_MUL, _scale_rule),
    "pad": _pad_rule,
    **_rules(_AFFINE, _affine_rule),
    **_rules(_MATMUL, _matmul_rule),
    **_rules(_MAX_POOLS, _max_pool_rule),
    **_rules(_ACTIVATIONS, _activation_rule),
    "rms_norm": _rms_norm_rule,
    **_rules(_NORM_FUNCTIONS, _norm_function_rule),
}


def vanishes(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context, tol: float = 1e-7) -> bool:
    """Does the op really remove the offset? A check, independent of the rules, for an op whose rule
    returned no offset without recording a cancellation: the op is run twice on random stand-ins for
    its data, once with the offset's probe added to the biased inputs (masked at random where it went
    through dropout, as in training); True when the outputs agree (False also when the op cannot be
    run on stand-ins)."""
    if any(not isinstance(offsets[a], Offset) for a in _biased_inputs(node, offsets)):
        return False
    seed = int(torch.randint(2**31 - 1, (), generator=ctx.generator))
    masks = torch.Generator().manual_seed(seed + 1)

    def offset(a: fx.Node) -> torch.Tensor:
        """The probe as the op sees it; after dropout, in training, kept or dropped entry by entry."""
        off = offsets[a]
        probe = off.full(_shape(a))[1]
        if off.dropout:
            keep = torch.rand(probe.shape, generator=masks, dtype=torch.float64) >= off.dropout
            probe = probe * keep / (1.0 - off.dropout)
        return probe

    def run(with_offset: bool) -> Any:
        gen = torch.Generator().manual_seed(seed)

        def sub(a: Any) -> Any:
            if not isinstance(a, fx.Node):
                return a
            if a.op == "get_attr":
                return ctx.constant(str(a.target)).clone()
            if "shape" not in a.meta:
                return a.meta.get("value")
            x = torch.rand(_shape(a), generator=gen, dtype=torch.float64) + 0.5
            return x + offset(a) if with_offset and a in offsets else x

        return _run_op(node, fx.node.map_aggregate(node.args, sub), fx.node.map_aggregate(node.kwargs, sub),
                       ctx.modules)

    def peak(t: torch.Tensor) -> float:
        return float(t.abs().max()) if t.numel() else 0.0

    try:
        with torch.no_grad():
            pairs = list(zip(*(tree_flatten(run(w))[0] for w in (False, True))))
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        return False
    tensors = [(a, b) for a, b in pairs if isinstance(a, torch.Tensor) and a.is_floating_point()]
    return bool(tensors) and all(a.shape == b.shape and peak(a - b) <= tol * (1.0 + peak(a)) for a, b in tensors)


def transfer(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context) -> Any:
    """The offset of ``node``'s output, given the offsets of its biased inputs (``offsets``).

    Returns an :class:`Offset`, a list of them (ops returning several tensors), or None when the
    op removes the offset (recorded in ``ctx.cancelled``). Raises :class:`Stop` where the bias
    matters or no rule applies. Modules go through :func:`_module_rule`, functions and methods
    through the :data:`RULES` table.
    """
    biased = _biased_inputs(node, offsets)
    dropout = max((offsets[a].dropout for a in biased if isinstance(offsets[a], Offset)), default=0.0)
    name = op_name(node, ctx.modules)
    if name in SHAPE_QUERIES or (name == "getattr" and _const(node.args[1]) in SHAPE_QUERIES):
        return None
    _check_inputs(node, biased, ctx, name)
    if node.op == "call_module":
        norm = norm_call(node, ctx.modules)
        if norm is not None and node.args and node.args[0] in offsets and biased == [node.args[0]]:
            _cancel(norm, node, offsets[node.args[0]], ctx)
            return None
        return _module_rule(node, offsets, ctx, dropout)
    if name == "getitem" and isinstance(offsets.get(node.args[0]), list):
        return offsets[node.args[0]][_const(node.args[1])]
    rule = RULES.get(name, _not_analysed) if node.op != "call_function" or _library(node.target) else _not_analysed
    return rule(_Call(node, offsets, ctx, name, biased, dropout))


def _check_inputs(node: fx.Node, biased: list[fx.Node], ctx: Context, name: str) -> None:
    """What no rule may take for a constant: a number read from the input's values (``.item()``, valid for
    this input only; a product with it is data-dependent, see :func:`_scale`), a parameter or buffer the
    forward changes in place; and a result less precise than the offset (``sum(dtype=float16)``)."""
    for a in node.all_input_nodes:
        if a in biased:
            continue
        if a.meta.get("data") and "shape" not in a.meta and name not in _MUL:
            read = "a number computed from the input's values"
        elif a.op == "get_attr" and str(a.target) in ctx.changed:
            read = f"'{a.target}', which the forward changes in place"
        else:
            continue
        what = describe(node, ctx.modules)
        raise Stop(f"not analysed: {what}", f"not analysed: {what} reads {read}", unknown=True)
    after = node.meta.get("dtype")
    for a in biased:
        before = a.meta.get("dtype")
        if after is not None and before is not None and before.is_floating_point and (
                not after.is_floating_point or torch.finfo(after).eps > torch.finfo(before).eps):
            raise Stop(f"rounds to {after}", f"the result is {after}, less precise than the offset's {before}: it "
                       "rounds the offset (non-linear)")


def _library(fn: Any) -> bool:
    """Is ``fn`` torch's (or Python's ``operator``) own? A user's function that fx keeps whole may share
    a name with one (a helper called ``clone``), and the rules are looked up by name."""
    module = getattr(fn, "__module__", None)
    return module is None or module.split(".")[0] in ("torch", "_operator", "operator", "builtins")
