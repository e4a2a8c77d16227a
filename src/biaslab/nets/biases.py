"""What a bias parameter is: the one definition that the audit, the bias-free converter and the
ablation share.

A bias is a learned additive constant. PyTorch stores them under names whose last component
mentions ``bias``: ``bias`` (Linear, conv, normalisation shifts), ``in_proj_bias`` (packed
attention), ``bias_k``/``bias_v`` (attention's extra key/value), ``bias_ih_l0``/``bias_hh_l0``
(RNN, GRU, LSTM). This module needs no torch import: it reads ``named_parameters()``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_bias_parameter", "bias_parameters", "count_biases"]


def is_bias_parameter(name: str) -> bool:
    """True for parameter names whose last component names a bias (``bias``, ``in_proj_bias``, ``bias_ih_l0``)."""
    return "bias" in name.rsplit(".", 1)[-1].lower()


def bias_parameters(model: Any) -> list[tuple[str, Any]]:
    """``(name, parameter)`` for every bias parameter of ``model``, in ``named_parameters`` order."""
    return [(name, p) for name, p in model.named_parameters() if is_bias_parameter(name)]


def count_biases(model: Any) -> int:
    """Number of scalars in ``model``'s bias parameters (attention and recurrent biases included)."""
    return sum(int(p.numel()) for _, p in bias_parameters(model))
