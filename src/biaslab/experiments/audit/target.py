"""What ``biaslab audit TARGET`` audits: a factory in the user's code, a built-in model, a checkpoint.

* ``hf:TYPE`` — a Hugging Face ``transformers`` model built offline from a configuration (:mod:`.hf`);
* ``path/to/file.py:factory`` or ``package.module:factory`` — imports the user's code (it runs, by
  design) and calls ``factory()``, which must return an ``nn.Module``;
* a built-in name — the zoo (:mod:`biaslab.nets.zoo`) or the ablation models (:mod:`biaslab.nets.models`);
* ``FILE.pt`` with ``arch`` (either of the above) — a state_dict loaded with ``weights_only=True``
  (:func:`biaslab.infra.io.safe_torch_load`) into the architecture; mismatched keys are listed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...infra.errors import register_user_code
from ...infra.io import BiaslabError
from ...infra.validate import call_user_code, factory_file

__all__ = ["CHECKPOINT_SUFFIXES", "is_checkpoint_path", "builtin_names", "default_input_shape",
           "build_target", "load_state"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


def is_checkpoint_path(target: str) -> bool:
    """Is ``target`` meant as a checkpoint file (a checkpoint suffix, or any existing file)?"""
    return Path(target).suffix in CHECKPOINT_SUFFIXES or Path(target).is_file()


def builtin_names() -> list[str]:
    """Names ``biaslab audit`` accepts as a built-in target."""
    from ...nets import models, zoo

    return [*zoo.ZOO, *models.MODEL_NAMES]


def _builtin(name: str, in_shape: tuple[int, ...] | None, n_classes: int) -> nn.Module:
    from ...nets import models, zoo

    if name in zoo.ZOO:
        return zoo.build_zoo_model(name, in_shape, n_classes)
    return models.build_model(name, "with-bias", in_shape=in_shape or (1, 8, 8), n_classes=n_classes)


def default_input_shape(name: str) -> tuple[int, ...] | None:
    """The per-sample input shape a built-in model is built for, None for user factories."""
    from ...nets import models, zoo

    if name in zoo.ZOO:
        return zoo.ZOO_INPUT_SHAPES[name]
    if name in models.MODEL_NAMES:
        return (1, 8, 8)
    return None


def _factory(spec: str) -> Any:
    where, _, attr = spec.rpartition(":")
    path = factory_file(spec)
    if path is not None:
        mod_name = f"_biaslab_user_{abs(hash(str(path.resolve())))}"
        loader = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[mod_name] = module
        register_user_code(path)
        try:
            call_user_code(loader.loader.exec_module, f"import of {path}", module, _verb="raised")
        except BiaslabError:
            sys.modules.pop(mod_name, None)
            raise
    else:
        try:
            module = call_user_code(importlib.import_module, f"import of module {where!r}", where, _verb="raised")
        except BiaslabError as exc:
            raise BiaslabError(f"{exc}; pass package.module:factory or path/to/file.py:factory") from None
        if getattr(module, "__file__", None):
            register_user_code(module.__file__)
    if not hasattr(module, attr):
        raise BiaslabError(f"{where} has no attribute {attr!r}; name a function that returns an nn.Module")
    return getattr(module, attr)


def build_target(spec: str, in_shape: tuple[int, ...] | None = None, n_classes: int = 10,
                 config: str | None = None) -> nn.Module:
    """Build the model named by ``spec`` (``file.py:factory``, ``module:factory``, ``hf:TYPE`` or a
    built-in name).

    Built-ins are built for per-sample inputs of ``in_shape`` and ``n_classes`` outputs; a user
    factory is called without arguments; ``hf:TYPE`` is built offline from its configuration
    (``config``: JSON overrides, :mod:`.hf`). Raises :class:`BiaslabError` for an unknown name, a
    factory that raises, or a result that is not an ``nn.Module``.
    """
    from .hf import build_hf, is_hf

    if is_hf(spec):
        return build_hf(spec, config)
    if ":" in spec:
        factory = _factory(spec)
        if not callable(factory):
            raise BiaslabError(f"{spec} is not callable; name a function that returns an nn.Module")
        model = call_user_code(factory, f"factory {spec}", _verb="raised")
        if not isinstance(model, nn.Module):
            raise BiaslabError(f"factory {spec} returned a {type(model).__name__}, not a torch.nn.Module")
        return model
    names = builtin_names()
    if spec not in names:
        if Path(spec).suffix in CHECKPOINT_SUFFIXES:
            raise BiaslabError(f"{spec} is a checkpoint: also pass `arch` (a built-in name or file.py:factory)")
        raise BiaslabError(f"unknown target {spec!r}; use file.py:factory, package.module:factory, "
                           f"FILE.pt with `arch`, or a built-in: {', '.join(names)}")
    return _builtin(spec, in_shape, n_classes)


def _listing(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_state(model: nn.Module, state: Any, source: str = "the checkpoint") -> nn.Module:
    """``model.load_state_dict(state)`` after checking keys and shapes; lists every mismatch in one line."""
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BiaslabError(f"{source} is not a state_dict (a mapping of names to tensors); save it with "
                           "torch.save(model.state_dict(), path)")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shaped = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in expected
              if k in state and state[k].shape != expected[k].shape]
    problems = [f"{label}: {_listing(keys)}" for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("mis-shaped (file vs model)", shaped)) if keys]
    if problems:
        raise BiaslabError(f"{source} does not match the architecture — {'; '.join(problems)}; "
                           "check `arch` (and that the file is this model's state_dict)")
    model.load_state_dict(state)
    return model
