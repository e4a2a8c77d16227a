"""Which biases a variant removes: a 0/1 mask over the bias parameters of any ``nn.Module``.

Every variant trains the ``with-bias`` model with some bias parameters held at exactly zero
(:mod:`biaslab.nets.train`); the mask names them. A bias parameter is what
:func:`biaslab.nets.biases.bias_parameters` says it is (packed attention and RNN biases included).

==================  =========================================================================
``with-bias``       nothing removed
``no-bias``         every bias parameter (BatchNorm/LayerNorm shifts, attention, RNN included)
``conv-no-bias``    the biases of convolutions
``head-no-bias``    the bias of the last ``nn.Linear`` (the classifier)
``audit``           exactly the biases (and parts of packed biases) ``biaslab audit`` proves redundant
``drop:PATTERN``    the bias parameters whose name matches the glob ``PATTERN`` (``--drop``)
==================  =========================================================================
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from ...nets.biases import bias_parameters
from ...infra.io import BiaslabError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["NAMED_VARIANTS", "DROP_PREFIX", "check_variants", "removed_biases", "removed_parts", "variant_mask",
           "parts_mask", "removed_count"]

#: Variants with a fixed meaning (``--drop PATTERN`` adds ``drop:PATTERN``).
NAMED_VARIANTS = ("with-bias", "no-bias", "conv-no-bias", "head-no-bias", "audit")
DROP_PREFIX = "drop:"


def check_variants(variants: list[str], drop: list[str] | None = None) -> list[str]:
    """The variants to run: ``variants`` then one ``drop:PATTERN`` per ``drop`` pattern."""
    out = list(variants) + [DROP_PREFIX + p for p in (drop or [])]
    for v in variants:
        if v not in NAMED_VARIANTS:
            raise BiaslabError(f"unknown variant {v!r} in `variants`; choose from {', '.join(NAMED_VARIANTS)} "
                               "(or remove biases by name with `drop` PATTERN)")
    for p in drop or []:
        if not p.strip():
            raise BiaslabError("`drop` needs a non-empty glob pattern over parameter names, e.g. '*.in_proj_bias'")
    if len(set(out)) != len(out):
        raise BiaslabError(f"a variant is listed twice ({', '.join(out)})")
    if len(out) < 2:
        raise BiaslabError(f"`variants` needs at least two variants to compare (got {', '.join(out) or 'none'})")
    return out


def removed_biases(model: "nn.Module", variant: str, example: "torch.Tensor | None" = None) -> list[str]:
    """Names of the bias parameters ``variant`` removes whole from ``model`` (``named_parameters`` order).

    ``example`` (an input batch) is needed by ``audit``, which traces the model. A bias of which
    ``audit`` removes only some parts (the key part of a packed ``in_proj_bias``) is not listed here:
    :func:`removed_parts` says which parts.
    """
    return [n for n, spans in removed_parts(model, variant, example).items() if spans is None]


def removed_parts(model: "nn.Module", variant: str,
                  example: "torch.Tensor | None" = None) -> dict[str, list[tuple[int, int]] | None]:
    """What ``variant`` removes: bias parameter name → None (all of it) or the ``[start, stop)`` spans of
    its flattened elements it removes (``audit``: exactly the redundant parts of a packed bias)."""
    from torch import nn

    biases = [n for n, _ in bias_parameters(model)]
    if variant == "with-bias":
        return {}
    if variant == "no-bias":
        return dict.fromkeys(biases)
    if variant == "conv-no-bias":
        convs = {name for name, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)}
        return dict.fromkeys(n for n in biases if n.rpartition(".")[0] in convs)
    if variant == "head-no-bias":
        linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
        return dict.fromkeys(n for n in biases if linears and n.rpartition(".")[0] == linears[-1])
    if variant == "audit":
        from ..audit import find_biases

        if example is None:
            raise ValueError("the audit variant needs an example input")
        out: dict[str, list[tuple[int, int]] | None] = {}
        for f in find_biases(model, example):
            if f.status != "redundant":
                continue
            if f.part is None or f.span is None:
                out[f.param] = None
            elif out.get(f.param, []) is not None:
                out.setdefault(f.param, []).append((int(f.span[0]), int(f.span[1])))
        return out
    if variant.startswith(DROP_PREFIX):
        pattern = variant[len(DROP_PREFIX):]
        hit = [n for n in biases if fnmatchcase(n, pattern)]
        if not hit:
            raise BiaslabError(f"`drop` {pattern!r} matches no bias parameter; the model's biases are: "
                               f"{', '.join(biases[:12]) or 'none'}{' …' if len(biases) > 12 else ''}")
        return dict.fromkeys(hit)
    raise BiaslabError(f"unknown variant {variant!r}; choose from {', '.join(NAMED_VARIANTS)}")


def variant_mask(model: "nn.Module", variant: str,
                 example: "torch.Tensor | None" = None) -> "dict[str, bool | torch.Tensor]":
    """For every parameter name of ``model``: does ``variant`` keep it? ``True``/``False``, or — for a bias
    of which only parts are removed — a boolean tensor of its shape, ``False`` on the removed parts
    (training holds them at zero: :func:`biaslab.nets.train.hold_at_zero`)."""
    return parts_mask(model, removed_parts(model, variant, example))


def parts_mask(model: "nn.Module", removed: dict[str, list[tuple[int, int]] | None]) -> "dict[str, bool | torch.Tensor]":
    """The mask of :func:`variant_mask` from what :func:`removed_parts` returns."""
    import torch

    mask: dict[str, bool | torch.Tensor] = {}
    for n, p in model.named_parameters():
        spans = removed.get(n, []) if n in removed else []
        if n in removed and spans is None:
            mask[n] = False
        elif spans:
            keep = torch.ones(p.numel(), dtype=torch.bool)
            for a, b in spans:
                keep[a:b] = False
            mask[n] = keep.reshape(p.shape)
        else:
            mask[n] = True
    return mask


def removed_count(model: "nn.Module", removed: dict[str, list[tuple[int, int]] | None]) -> int:
    """How many scalars :func:`removed_parts`' answer removes."""
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    return sum(sizes[n] if spans is None else sum(b - a for a, b in spans) for n, spans in removed.items())
