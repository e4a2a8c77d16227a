"""Recognise normalisations by what they compute, in a module or in a functional call.

A normalisation that subtracts a mean cancels any offset that is constant over what it averages:

* batch norm — the batch and every position, per channel (axis 1);
* instance norm — every position of each sample, per channel;
* group norm — every position and the channels of one group, per sample;
* layer norm — its trailing ``normalized_shape`` axes, per sample and position.

RMSNorm divides by the root mean square without subtracting the mean: it cancels nothing.

Modules from ``torch.nn`` (and their subclasses, which torch.fx keeps as leaves only when they
come from ``torch.nn``) are read from their attributes; everything else (timm's
``BatchNormAct2d``, ``LayerNorm2d``, ``GroupNorm1``, torchvision's ``LayerNorm2d``) is traced into
and appears as ``F.batch_norm`` / ``F.layer_norm`` / ``F.group_norm`` / ``F.instance_norm`` calls,
read from their arguments. Either way the result is a :class:`NormCall`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

__all__ = ["NormCall", "norm_call", "is_rms_norm", "NORM_MODULES"]

NORM_MODULES = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)

_FUNCTIONS = {"batch_norm": "batch", "instance_norm": "instance", "group_norm": "group", "layer_norm": "layer"}


@dataclass
class NormCall:
    """One normalisation in the graph.

    ``kind`` is ``batch``, ``instance``, ``group`` or ``layer``; ``label`` names it for reasons;
    ``running_mean`` is the qualified name of the buffer that holds its running mean (None when it
    normalises with batch statistics in eval mode too); ``groups`` (group norm) and ``n_axes``
    (layer norm: how many trailing axes) say what it averages over. ``frozen`` and ``unbatched`` mark
    calls whose cancellation the rules do not claim.
    """

    kind: str
    label: str
    consumer: str
    running_mean: str | None = None
    groups: int = 1
    n_axes: int = 0
    frozen: bool = False  # a functional batch norm called with training=False: running statistics only
    training: bool | None = None  # a functional batch norm's training argument, when it is a constant
    unbatched: bool = False  # an instance norm module on an input without a batch axis


def _value(arg: Any) -> Any:
    """A constant argument, or the recorded value of a node that computed one."""
    return arg.meta.get("value") if isinstance(arg, fx.Node) else arg


def _arg(node: fx.Node, i: int, key: str, default: Any = None) -> Any:
    return node.args[i] if len(node.args) > i else node.kwargs.get(key, default)


def _module_norm(m: nn.Module, name: str, rank: int | None) -> NormCall | None:
    label = f"{type(m).__name__} '{name}'"
    if isinstance(m, _BatchNorm):
        return NormCall("batch", label, name, f"{name}.running_mean" if m.running_mean is not None else None)
    if isinstance(m, _InstanceNorm):
        return NormCall("instance", label, name, f"{name}.running_mean" if m.running_mean is not None else None,
                        unbatched=rank is None or rank == m._get_no_batch_dim())
    if isinstance(m, nn.GroupNorm):
        return NormCall("group", label, name, groups=m.num_groups)
    if isinstance(m, nn.LayerNorm):
        return NormCall("layer", label, name, n_axes=len(m.normalized_shape))
    return None


def _function_norm(node: fx.Node, modules: dict[str, nn.Module]) -> NormCall | None:
    name = getattr(node.target, "__name__", "")
    kind = _FUNCTIONS.get(name)
    if kind is None:
        return None
    owner = ""
    for arg in (*node.args, *node.kwargs.values()):
        if isinstance(arg, fx.Node) and arg.op == "get_attr":
            owner = str(arg.target).rpartition(".")[0]
            break
    label = f"{name} in '{owner}'" if owner else name
    if kind in ("batch", "instance"):
        mean = _arg(node, 1, "running_mean")
        use_input_stats = kind == "instance" and bool(_value(_arg(node, 5, "use_input_stats", True)))
        buffer = str(mean.target) if isinstance(mean, fx.Node) and mean.op == "get_attr" else None
        if buffer is None and isinstance(mean, fx.Node):
            return None  # a running mean computed on the fly: not a normalisation we can reason about
        # a norm module's own call follows its train/eval flag; any other call with training=False (a
        # constant) uses the running statistics alone, in training too
        frozen = (kind == "batch" and buffer is not None and _value(_arg(node, 5, "training", False)) is False
                  and not isinstance(modules.get(buffer.rpartition(".")[0]), (_BatchNorm, _InstanceNorm)))
        training = _value(_arg(node, 5, "training", False)) if kind == "batch" else None
        return NormCall(kind, label, owner or label, None if use_input_stats and kind == "instance" else buffer,
                        frozen=frozen, training=training if isinstance(training, bool) else None)
    if kind == "group":
        return NormCall(kind, label, owner or label, groups=int(_value(_arg(node, 1, "num_groups"))))
    shape = _value(_arg(node, 1, "normalized_shape"))
    return NormCall(kind, label, owner or label, n_axes=len(shape) if isinstance(shape, (tuple, list)) else 1)


def norm_call(node: fx.Node, modules: dict[str, nn.Module]) -> NormCall | None:
    """The normalisation ``node`` computes on its first argument, or None if it is not one."""
    if node.op == "call_module":
        first = node.args[0] if node.args else None
        rank = len(first.meta["shape"]) if isinstance(first, fx.Node) and "shape" in first.meta else None
        return _module_norm(modules[node.target], str(node.target), rank)
    if node.op == "call_function":
        return _function_norm(node, modules)
    return None


def is_rms_norm(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Does ``node`` compute an RMSNorm (which divides by the root mean square, subtracting nothing)?"""
    if node.op == "call_module":
        m = modules[node.target]
        return type(m).__name__.lower().replace("_", "") in ("rmsnorm", "llamarmsnorm") or (
            hasattr(nn, "RMSNorm") and isinstance(m, nn.RMSNorm))
    return node.op == "call_function" and getattr(node.target, "__name__", "") == "rms_norm"
