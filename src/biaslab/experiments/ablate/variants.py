"""Which biases a variant removes: a 0/1 mask over the bias parameters of any ``nn.Module``.

Every variant trains the ``with-bias`` model with some bias parameters held at exactly zero
(:mod:`biaslab.nets.train`); the mask names them. A bias parameter is what
:func:`biaslab.nets.biases.bias_parameters` says it is (packed attention and RNN biases included).

==================  =========================================================================
``with-bias``       nothing removed
``no-bias``         every bias parameter (BatchNorm/LayerNorm shifts, attention, RNN included)
``conv-no-bias``    the biases of convolutions
``head-no-bias``    the bias of the last ``nn.Linear`` (the classifier)
``audit``           exactly the biases ``biaslab audit`` proves redundant (:func:`biaslab.experiments.audit.find_biases`)
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

__all__ = ["NAMED_VARIANTS", "DROP_PREFIX", "check_variants", "removed_biases", "variant_mask"]

#: Variants with a fixed meaning (``--drop PATTERN`` adds ``drop:PATTERN``).
NAMED_VARIANTS = ("with-bias", "no-bias", "conv-no-bias", "head-no-bias", "audit")
DROP_PREFIX = "drop:"


def check_variants(variants: list[str], drop: list[str] | None = None) -> list[str]:
    """The variants to run: ``variants`` then one ``drop:PATTERN`` per ``drop`` pattern."""
    out = list(variants) + [DROP_PREFIX + p for p in (drop or [])]
    for v in variants:
        if v not in NAMED_VARIANTS:
            raise BiaslabError(f"unknown variant {v!r} in --variants; choose from {', '.join(NAMED_VARIANTS)} "
                               "(or remove biases by name with --drop PATTERN)")
    for p in drop or []:
        if not p.strip():
            raise BiaslabError("--drop needs a non-empty glob pattern over parameter names, e.g. '*.in_proj_bias'")
    if len(set(out)) != len(out):
        raise BiaslabError(f"a variant is listed twice ({', '.join(out)})")
    if len(out) < 2:
        raise BiaslabError(f"--variants needs at least two variants to compare (got {', '.join(out) or 'none'})")
    return out


def removed_biases(model: "nn.Module", variant: str, example: "torch.Tensor | None" = None) -> list[str]:
    """Names of the bias parameters ``variant`` removes from ``model`` (``named_parameters`` order).

    ``example`` (an input batch) is needed by ``audit``, which traces the model.
    """
    from torch import nn

    biases = [n for n, _ in bias_parameters(model)]
    if variant == "with-bias":
        return []
    if variant == "no-bias":
        return biases
    if variant == "conv-no-bias":
        convs = {name for name, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)}
        return [n for n in biases if n.rpartition(".")[0] in convs]
    if variant == "head-no-bias":
        linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
        return [n for n in biases if linears and n.rpartition(".")[0] == linears[-1]]
    if variant == "audit":
        from ..audit import find_biases

        if example is None:
            raise ValueError("the audit variant needs an example input")
        return [f.param for f in find_biases(model, example) if f.status == "redundant"]
    if variant.startswith(DROP_PREFIX):
        pattern = variant[len(DROP_PREFIX):]
        hit = [n for n in biases if fnmatchcase(n, pattern)]
        if not hit:
            raise BiaslabError(f"--drop {pattern!r} matches no bias parameter; the model's biases are: "
                               f"{', '.join(biases[:12]) or 'none'}{' …' if len(biases) > 12 else ''}")
        return hit
    raise BiaslabError(f"unknown variant {variant!r}; choose from {', '.join(NAMED_VARIANTS)}")


def variant_mask(model: "nn.Module", variant: str, example: "torch.Tensor | None" = None) -> dict[str, bool]:
    """For every parameter name of ``model``: does ``variant`` keep it?"""
    removed = set(removed_biases(model, variant, example))
    return {n: n not in removed for n, _ in model.named_parameters()}
