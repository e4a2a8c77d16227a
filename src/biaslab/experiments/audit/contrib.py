"""What each bias contributes on data: its size next to the signal, the ReLU decisions it flips, and
what the model loses without it.

For a layer ``y = W·x + b`` over a data set:

* ``bias_to_signal = ‖b‖ / ‖W·x‖`` — both norms over every output element of every sample
  (``W·x = y − b``; for a normalisation layer, ``γ·x̂``);
* ``relu_flips`` — when the layer feeds a ReLU: the fraction of units whose on/off state differs
  between ``W·x + b`` and ``W·x`` (the bias moved the threshold across the input);
* ``output_change = ‖f(x) − f₀(x)‖ / ‖f(x)‖`` with ``f₀`` the model with this one bias zeroed
  (a redundant bias is zeroed the way removal does it, running mean corrected), and, with labels,
  the accuracy change ``acc(f₀) − acc(f)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from ...results.audit import Contribution, Finding
from .verdicts import bias_axes

__all__ = ["Contribution", "bias_contributions"]


def _logits(model: nn.Module, batches: list[torch.Tensor]) -> torch.Tensor:
    outs = []
    for xb in batches:
        leaves = [t for t in tree_leaves(model(xb)) if isinstance(t, torch.Tensor)]
        outs.append(leaves[0].double().reshape(xb.shape[0], -1))
    return torch.cat(outs)


def _accuracy(logits: torch.Tensor, y: torch.Tensor | None) -> float | None:
    if y is None or logits.shape[1] < 2:
        return None
    return float((logits.argmax(dim=1) == y).double().mean())


def bias_contributions(
    model: nn.Module,
    findings: list[Finding],
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    batch_size: int = 256,
    advance: Callable[..., None] = lambda n=1, description=None: None,
) -> tuple[list[Contribution], float | None]:
    """Measure every finding's bias on inputs ``X`` (labels ``y`` optional), model in eval mode.

    Returns the contributions (in the order of ``findings``) and the model's accuracy on ``(X, y)``
    (None without labels). ``model`` is left as it was; ``advance`` is called once per finding.
    """
    flags = {m: m.training for m in model.modules()}
    model.eval()
    batches = list(X.split(batch_size))
    params = dict(model.named_parameters())
    stats: dict[str, list[float]] = {}
    handles = []

    def hook(module: nn.Module, inputs: Any, output: Any, name: str, relu: bool) -> None:
        if not isinstance(output, torch.Tensor):
            return
        axes = bias_axes(module, output.dim())
        shape = [1] * output.dim()
        for a, s in zip(axes, module.bias.shape):
            shape[a] = s
        b = module.bias.detach().reshape(shape)
        wx = output - b
        s = stats.setdefault(name, [0.0, 0.0, 0.0, 0.0])
        s[0] += float(b.double().pow(2).sum()) * output.numel() / b.numel()
        s[1] += float(wx.double().pow(2).sum())
        if relu:
            s[2] += float(((output > 0) != (wx > 0)).sum())
            s[3] += output.numel()

    try:
        for f in findings:
            m = model.get_submodule(f.module)
            if f.part is None and f.param.rsplit(".", 1)[-1] == "bias" and bias_axes(m, 4) is not None:
                handles.append(m.register_forward_hook(
                    lambda mod, i, o, name=f.param, relu=f.feeds_relu: hook(mod, i, o, name, relu)))
        with torch.no_grad():
            base = _logits(model, batches)
            for h in handles:
                h.remove()
            handles.clear()
            base_acc = _accuracy(base, y)
            norm = float(base.norm()) or 1.0
            out: list[Contribution] = []
            for f in findings:
                p = params[f.param]
                saved = p.detach().clone()
                buffers = {name: model.get_buffer(name) for name in f.corrections or {}}
                saved_buffers = {name: b.clone() for name, b in buffers.items()}
                p.view(-1)[slice(*f.span) if f.span is not None else slice(None)] = 0.0
                for name, b in buffers.items():
                    b.sub_(torch.as_tensor(f.corrections[name]).to(b))
                try:
                    zeroed = _logits(model, batches)
                finally:
                    p.copy_(saved)
                    for name, b in buffers.items():
                        b.copy_(saved_buffers[name])
                acc = _accuracy(zeroed, y)
                s = stats.get(f.param) if f.part is None else None
                out.append(Contribution(
                    param=f.label, module=f.module, status=f.status,
                    bias_to_signal=(s[0] ** 0.5 / s[1] ** 0.5 if s[1] > 0 else None) if s else None,
                    relu_flips=(s[2] / s[3] if s[3] else None) if s else None,
                    output_change=float((zeroed - base).norm()) / norm,
                    accuracy_change=acc - base_acc if acc is not None and base_acc is not None else None,
                ))
                advance()
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.training = flag
    return out, base_acc
