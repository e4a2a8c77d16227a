"""Saving and loading a denoiser: a ``state_dict`` file plus a small architecture JSON (the sidecar).

Loading never trusts the sidecar for sizes: it is checked field by field, then compared with the
architecture read off the weights' shapes *before* a network is built, so a tiny JSON cannot make
biaslab allocate a huge model. Weights that are not finite are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ...infra.io import BiaslabError, atomic_path, atomic_write_json, safe_torch_load
from ...infra.validate import bounded_int
from .model import MAX_DEPTH, MAX_WIDTH, DnCNN

__all__ = ["save_denoiser", "load_denoiser", "sidecar_path", "MAX_SIDECAR_BYTES"]

#: An architecture file is a few dozen bytes; anything larger than this is not one.
MAX_SIDECAR_BYTES = 4096


def sidecar_path(path: str | Path) -> Path:
    """The architecture JSON saved next to the weights ``path``."""
    return Path(path).with_suffix(".json")


def save_denoiser(model: DnCNN, path: str | Path) -> Path:
    """Save ``model.state_dict()`` to ``path`` and its architecture to :func:`sidecar_path` (atomically)."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    atomic_write_json(sidecar_path(path), model.architecture)
    return path


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid size")


def _read_sidecar(meta: Path) -> dict[str, Any]:
    """The sidecar's depth, width, channels and bias, each checked for type and bounds."""
    try:
        if meta.stat().st_size > MAX_SIDECAR_BYTES:
            raise BiaslabError(f"{meta} is {meta.stat().st_size} bytes, not a denoiser architecture file "
                               f"(at most {MAX_SIDECAR_BYTES}); delete or replace it")
        arch = json.loads(meta.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BiaslabError(f"cannot read the architecture file {meta}: {exc}") from None
    if not isinstance(arch, dict):
        raise BiaslabError(f"{meta} must hold a JSON object with depth, width, channels and bias")
    bounds = {"depth": (2, MAX_DEPTH), "width": (1, MAX_WIDTH), "channels": (1, 3)}
    out: dict[str, Any] = {key: bounded_int(f"{meta}: {key}", arch.get(key), lo, hi)
                           for key, (lo, hi) in bounds.items()}
    if not isinstance(arch.get("bias"), bool):
        raise BiaslabError(f"{meta}: bias must be true or false (got {arch.get('bias')!r})")
    out["bias"] = arch["bias"]
    return out


def _weights_architecture(state: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """depth, width, channels and bias read off a DnCNN state_dict's shapes; None if it is not one."""
    convs = [v for k, v in state.items() if k.startswith("body.") and k.endswith(".weight") and v.dim() == 4]
    if not convs or convs[0].shape[0] == 0:
        return None
    first = convs[0]
    return {"depth": len(convs), "width": int(first.shape[0]), "channels": int(first.shape[1]),
            "bias": "body.0.bias" in state}


def load_denoiser(path: str | Path, device: torch.device | str = "cpu") -> DnCNN:
    """Load a :class:`DnCNN` saved by :func:`save_denoiser` (``weights_only=True``), in eval mode.

    The architecture is read off the tensor shapes; a sidecar JSON next to the weights, when
    present, must agree with it.

    Raises
    ------
    BiaslabError
        If the file is not a finite state_dict of a DnCNN, or the sidecar is malformed or disagrees.
    """
    path = Path(path)
    meta = sidecar_path(path)
    claimed = _read_sidecar(meta) if meta.is_file() else None
    state = safe_torch_load(path, map_location="cpu")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise BiaslabError(f"{path} is not a state_dict (a dict of tensors); save model.state_dict()")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise BiaslabError(f"{path} has NaN or infinite weights in {', '.join(bad[:5])}"
                           f"{' …' if len(bad) > 5 else ''}; retrain or use another file")
    found = _weights_architecture(state)
    if found is None:
        raise BiaslabError(f"{path} is not a biaslab DnCNN denoiser (no conv weights body.N.weight); "
                           "train one with `biaslab denoise`")
    if claimed is not None and claimed != found:
        raise BiaslabError(
            f"{path} does not match a DnCNN with depth={claimed['depth']}, width={claimed['width']}, "
            f"channels={claimed['channels']}, bias={claimed['bias']} as {meta.name} says: the weights are "
            f"depth={found['depth']}, width={found['width']}, channels={found['channels']}, bias={found['bias']}"
        )
    model = DnCNN(found["depth"], found["width"], found["channels"], found["bias"])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:240]
        raise BiaslabError(f"{path} is not a biaslab DnCNN denoiser with depth={found['depth']}, "
                           f"width={found['width']}, bias={found['bias']}: {detail}") from None
    return model.to(device).eval()
