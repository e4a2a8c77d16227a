"""Pick the torch device: ``auto`` takes a GPU when one is there, else the CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .io import BiaslabError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device"]


def resolve_device(name: str = "auto") -> "torch.device":
    """Return a ``torch.device`` for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    import torch

    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise BiaslabError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BiaslabError(f"device {name!r} requested but no CUDA GPU is available; use `device` cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BiaslabError("device 'mps' requested but MPS is not available; use `device` cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise BiaslabError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return dev
