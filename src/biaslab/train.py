"""Training: a plain loop for one model, and many models trained at once as one batched model.

``biaslab ablate`` trains every (variant, seed) of a configuration together: the weights are
stacked with :func:`torch.func.stack_module_state` and :class:`ModelStack` runs all models
in one grouped convolution / one batched matmul per layer, each model on its own mini-batch,
so ten small models cost a few times one model instead of ten.

Variants have different parameter sets (``no-bias`` has no bias tensors). In the stack every
model carries the parameters of the ``with-bias`` architecture; a bias that the variant lacks
is set to zero and multiplied by a 0/1 mask in the forward pass, so it contributes exactly
``0.0`` to the output and gets an exactly zero gradient. Adam (elementwise, no global norms)
then never moves it. The model therefore computes the same function and follows the same
trajectory as the variant built without those tensors; ``tests/test_train.py`` checks this
against :func:`train_model` on single models (to 1e-9 in float64; in float32 the two
implementations round differently, and Adam — which divides by the gradient's own scale —
turns the rounding noise on near-zero gradients, such as the conv bias BatchNorm cancels,
into steps of size ~lr, so those few weights wander apart while the function does not).

Pairing: a run's seed fixes its initial weights (:func:`biaslab.models.init_model`, shared
across variants) and its mini-batch order (:func:`batch_order`), so two variants of one seed
differ only in their biases.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import stack_module_state
from torch.nn import functional as F

from .datasets import Dataset
from .io import BiaslabError
from .models import bias_mask, init_model

__all__ = [
    "TrainConfig",
    "RunHistory",
    "batch_order",
    "train_model",
    "evaluate_model",
    "ModelStack",
    "train_batched",
]


@dataclass(frozen=True)
class TrainConfig:
    """Adam on the mean cross-entropy, fixed learning rate, mini-batches of ``batch_size``."""

    epochs: int = 20
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise BiaslabError(f"--epochs must be at least 1 (got {self.epochs})")
        if not self.lr > 0:
            raise BiaslabError(f"--lr must be positive (got {self.lr})")
        if self.batch_size < 1:
            raise BiaslabError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if not self.weight_decay >= 0:
            raise BiaslabError(f"weight decay must be >= 0 (got {self.weight_decay})")


@dataclass
class RunHistory:
    """Per-epoch learning curves and final metrics of one trained model."""

    train_loss: list[float] = field(default_factory=list)  # mean mini-batch loss of each epoch
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)  # train/test accuracy and loss at the end


def batch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The mini-batch indices of ``epoch`` for a run with ``seed`` (last batch may be smaller)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return list(torch.randperm(n, generator=g).split(batch_size))


def _tensors(ds: Dataset, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    return (
        torch.as_tensor(ds.X_train, device=device, dtype=dtype),
        torch.as_tensor(ds.y_train, device=device),
        torch.as_tensor(ds.X_test, device=device, dtype=dtype),
        torch.as_tensor(ds.y_test, device=device),
    )


@torch.no_grad()
def evaluate_model(model: nn.Module, X: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` (put in eval mode) on ``X, y``."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(X), chunk):
        out = model(X[i:i + chunk])
        loss += float(F.cross_entropy(out, y[i:i + chunk], reduction="sum"))
        correct += int((out.argmax(1) == y[i:i + chunk]).sum())
    return correct / len(X), loss / len(X)


def train_model(
    model: nn.Module,
    ds: Dataset,
    seed: int,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> RunHistory:
    """Train one model in place with a plain loop: the reference :func:`train_batched` matches."""
    device = torch.device(device)
    model.to(device=device, dtype=dtype)
    Xtr, ytr, Xte, yte = _tensors(ds, device, dtype)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    hist = RunHistory()
    for epoch in range(config.epochs):
        model.train()
        total = 0.0
        batches = batch_order(len(ytr), config.batch_size, seed, epoch)
        for idx in batches:
            idx = idx.to(device)
            loss = F.cross_entropy(model(Xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        acc, tl = evaluate_model(model, Xte, yte)
        hist.train_loss.append(total / len(batches))
        hist.test_acc.append(acc)
        hist.test_loss.append(tl)
    tr_acc, tr_loss = evaluate_model(model, Xtr, ytr)
    hist.final = {"train_acc": tr_acc, "train_loss": tr_loss,
                  "test_acc": hist.test_acc[-1], "test_loss": hist.test_loss[-1]}
    return hist


class ModelStack:
    """``M`` models of one architecture run as one batched model.

    The weights are stacked with :func:`torch.func.stack_module_state` (a leading model
    dimension ``M``), and the ``nn.Sequential`` is replayed layer by layer on all models at
    once: convolutions as one grouped convolution over ``M × C`` channels, BatchNorm as one
    BatchNorm over ``M × C`` channels (each model's channels keep their own statistics),
    linear layers as one batched matmul. Images travel as ``(B, M·C, H, W)`` in channels-last
    memory order, where PyTorch's CPU max-pooling kernel is ~10× faster than in the default
    order; on a 2-core CPU this trained the 10-model cnn about 1.5× faster than
    ``vmap(functional_call)`` over the same stacked weights.

    Parameters
    ----------
    models : the models, all built from the same architecture with every bias present:
        ``nn.Sequential`` of Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten and Linear layers.
    masks : for each model, ``{parameter name: kept}``; a parameter that is not kept is
        zeroed and multiplied by 0 in every forward pass (see the module docstring).
    """

    LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear)

    def __init__(self, models: Sequence[nn.Module], masks: Sequence[dict[str, bool]] | None = None) -> None:
        if not models:
            raise ValueError("ModelStack needs at least one model")
        base = models[0]
        unsupported = [type(m).__name__ for m in base.children() if not isinstance(m, self.LAYERS)]
        if not isinstance(base, nn.Sequential) or unsupported:
            raise TypeError(
                "ModelStack runs nn.Sequential models of Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten "
                f"and Linear layers; got {type(base).__name__} with {', '.join(unsupported) or 'no layers'}"
            )
        self.size = len(models)
        self.params, self.buffers = stack_module_state(list(models))
        self.masks: dict[str, torch.Tensor] = {}
        for name, p in self.params.items():
            keep = [True if masks is None else masks[m][name] for m in range(self.size)]
            if not all(keep):
                mask = torch.tensor(keep, dtype=p.dtype).reshape(-1, *[1] * (p.dim() - 1))
                with torch.no_grad():
                    p.mul_(mask)
                self.masks[name] = mask
        self.layers = list(copy.deepcopy(base).to("meta").named_children())  # hyper-parameters only
        self.training = True

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "ModelStack":
        """Move weights, buffers and masks to ``device`` and floating tensors to ``dtype``.

        Parameters stay optimisable leaves.
        """
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if dtype is not None and t.is_floating_point() else t.dtype)

        with torch.no_grad():
            self.params = {k: move(v).detach().requires_grad_(True) for k, v in self.params.items()}
        self.buffers = {k: move(v) for k, v in self.buffers.items()}
        self.masks = {k: move(v) for k, v in self.masks.items()}
        return self

    def train(self, mode: bool = True) -> "ModelStack":
        self.training = mode
        return self

    def eval(self) -> "ModelStack":
        return self.train(False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (M, B, ...) — one batch per model — → logits (M, B, n_classes)."""
        M, B = x.shape[:2]
        params = {k: v * self.masks[k] if k in self.masks else v for k, v in self.params.items()}
        image = x.dim() == 5
        h = x.transpose(0, 1).reshape(B, -1, *x.shape[3:]) if image else x  # (B, M·C, H, W)
        if image and h.dtype != torch.float64:  # float64 has only reference kernels, slower in this layout
            h = h.contiguous(memory_format=torch.channels_last)
        for name, layer in self.layers:
            w, b = params.get(f"{name}.weight"), params.get(f"{name}.bias")
            if isinstance(layer, nn.Conv2d):
                h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1),
                             layer.stride, layer.padding, layer.dilation, M * layer.groups)
            elif isinstance(layer, nn.BatchNorm2d):
                h = self._batch_norm(name, layer, h, w, b)
            elif isinstance(layer, nn.ReLU):
                h = F.relu(h)
            elif isinstance(layer, nn.MaxPool2d):
                h = F.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                                 layer.ceil_mode)
            elif isinstance(layer, nn.Flatten):  # each model's (C, H, W) in nn.Flatten's order
                h = h.reshape(B, M, -1).transpose(0, 1) if image else h.reshape(M, B, -1)
                image = False
            else:  # nn.Linear on (M, B, F)
                h = torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        return h

    def _batch_norm(self, name: str, layer: nn.BatchNorm2d, h: torch.Tensor, w, b) -> torch.Tensor:
        """BatchNorm over M·C channels; running statistics update the stacked buffers in place."""
        mean, var = self.buffers.get(f"{name}.running_mean"), self.buffers.get(f"{name}.running_var")
        use_batch = self.training or mean is None
        momentum = 0.0 if layer.momentum is None else layer.momentum
        if self.training and mean is not None:
            tracked = self.buffers[f"{name}.num_batches_tracked"]
            tracked.add_(1)
            if layer.momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(tracked[0])
        return F.batch_norm(
            h, None if mean is None else mean.view(-1), None if var is None else var.view(-1),
            None if w is None else w.reshape(-1), None if b is None else b.reshape(-1),
            use_batch, momentum, layer.eps,
        )

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each model's weights and buffers (masked parameters omitted), detached, on the CPU."""
        out = []
        for m in range(self.size):
            sd = {k: v[m].detach().cpu().clone() for k, v in self.params.items()
                  if k not in self.masks or bool(self.masks[k][m].flatten()[0])}
            sd.update({k: v[m].detach().cpu().clone() for k, v in self.buffers.items()})
            out.append(sd)
        return out

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and mean cross-entropy of every model on the same ``X, y``: two (M,) arrays."""
        self.eval()
        correct = torch.zeros(self.size, dtype=torch.long, device=X.device)
        loss = torch.zeros(self.size, dtype=torch.float64, device=X.device)
        for i in range(0, len(X), chunk):
            xb, yb = X[i:i + chunk], y[i:i + chunk]
            out = self(xb.unsqueeze(0).expand(self.size, *xb.shape))
            loss += F.cross_entropy(out.transpose(1, 2), yb.expand(self.size, -1), reduction="none").sum(1)
            correct += (out.argmax(-1) == yb).sum(1)
        return correct.cpu().numpy() / len(X), loss.cpu().numpy() / len(X)


def train_batched(
    model_name: str,
    ds: Dataset,
    runs: Sequence[tuple[str, int]],
    config: TrainConfig,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int], None] | None = None,
    dtype: torch.dtype = torch.float32,
    **model_kwargs,
) -> tuple[ModelStack, list[RunHistory]]:
    """Train one model per ``(variant, seed)`` in ``runs``, all at once.

    Each run starts from :func:`biaslab.models.init_model` of its seed and sees the batches
    of :func:`batch_order` for its seed, exactly as :func:`train_model` would. ``on_epoch``
    is called with the epoch number after each epoch; ``dtype`` is the precision of weights
    and inputs.

    Returns
    -------
    The trained :class:`ModelStack` (model ``i`` is ``runs[i]``) and one history per run.
    """
    device = torch.device(device)
    shape, k = ds.in_shape, ds.n_classes
    # Every variant of a seed shares the with-bias initial weights; masks remove what it lacks.
    full = [init_model(model_name, "with-bias", s, shape, k, **model_kwargs) for _, s in runs]
    masks = {v: bias_mask(model_name, v, shape, k, **model_kwargs) for v in {v for v, _ in runs}}
    stack = ModelStack(full, [masks[v] for v, _ in runs]).to(device, dtype)
    Xtr, ytr, Xte, yte = _tensors(ds, device, dtype)
    opt = torch.optim.Adam(stack.params.values(), lr=config.lr, weight_decay=config.weight_decay)
    hists = [RunHistory() for _ in runs]
    seeds = [s for _, s in runs]
    n = len(ytr)
    for epoch in range(config.epochs):
        stack.train()
        orders = torch.stack([torch.cat(batch_order(n, config.batch_size, s, epoch)) for s in seeds]).to(device)
        total = torch.zeros(len(runs), dtype=torch.float64, device=device)
        starts = range(0, n, config.batch_size)
        for start in starts:
            idx = orders[:, start:start + config.batch_size]  # (M, B): each model's own batch
            out = stack(Xtr[idx])
            losses = F.cross_entropy(out.transpose(1, 2), ytr[idx], reduction="none").mean(1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # models are independent: d(sum)/dθ_m = dL_m/dθ_m
            opt.step()
            total += losses.detach()
        acc, tl = stack.evaluate(Xte, yte)
        for m, h in enumerate(hists):
            h.train_loss.append(float(total[m]) / len(starts))
            h.test_acc.append(float(acc[m]))
            h.test_loss.append(float(tl[m]))
        if on_epoch is not None:
            on_epoch(epoch)
    tr_acc, tr_loss = stack.evaluate(Xtr, ytr)
    for m, h in enumerate(hists):
        h.final = {"train_acc": float(tr_acc[m]), "train_loss": float(tr_loss[m]),
                   "test_acc": h.test_acc[-1], "test_loss": h.test_loss[-1]}
    return stack, hists
