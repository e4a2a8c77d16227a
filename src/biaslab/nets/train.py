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

Pairing: a run's seed fixes its initial weights (:func:`biaslab.nets.models.init_model`, shared
across variants) and its mini-batch order (:func:`batch_order`), so two variants of one seed
differ only in their biases.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.datasets import Dataset
from ..infra.io import BiaslabError, first_line
from .biases import is_bias_parameter
from .models import ScaleOnlyBatchNorm2d, bias_mask, init_model
from .recurrent import plain_recurrent, twinless

__all__ = [
    "OPTIMIZERS",
    "TrainConfig",
    "RunHistory",
    "batch_order",
    "train_model",
    "evaluate_model",
    "ModelStack",
    "FuncStack",
    "LoopStack",
    "hold_at_zero",
    "make_stack",
    "train_batched",
]


#: Optimisers ``--optimizer`` accepts.
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """The optimiser on the mean cross-entropy, fixed learning rate, mini-batches of ``batch_size``.

    ``optimizer`` is ``adam`` or ``sgd`` (with ``momentum``); ``weight_decay`` is L2 decay
    (coupled, as ``torch.optim`` applies it); ``decay_bias=False`` exempts every bias parameter
    (:func:`biaslab.nets.biases.is_bias_parameter`) from it.
    """

    epochs: int = 20
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.0
    decay_bias: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise BiaslabError(f"`epochs` must be at least 1 (got {self.epochs})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise BiaslabError(f"`lr` must be a positive finite number (got {self.lr})")
        if self.batch_size < 1:
            raise BiaslabError(f"`batch_size` must be at least 1 (got {self.batch_size})")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise BiaslabError(f"`weight_decay` must be a finite number >= 0 (got {self.weight_decay})")
        if self.optimizer not in OPTIMIZERS:
            raise BiaslabError(f"unknown `optimizer` {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise BiaslabError(f"`momentum` must be in [0, 1) (got {self.momentum})")
        if self.momentum and self.optimizer != "sgd":
            raise BiaslabError("`momentum` applies to `optimizer` sgd only (Adam has its own running averages)")

    def optimizer_for(self, named: list[tuple[str, torch.Tensor]], foreach: bool | None = None) -> torch.optim.Optimizer:
        """The optimiser over ``named`` parameters; bias parameters get no decay with ``decay_bias=False``.

        ``foreach=True`` updates all tensors with one multi-tensor op per step of the update
        instead of a Python loop over them: the same arithmetic, bit for bit (``tests/test_train.py``),
        a few hundred microseconds less per step; ``None`` is torch's default for the device.
        """
        groups = [{"params": [p for n, p in named if self.decay_bias or not is_bias_parameter(n)]},
                  {"params": [p for n, p in named if not self.decay_bias and is_bias_parameter(n)],
                   "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        if self.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                                   foreach=foreach)
        return torch.optim.Adam(groups, lr=self.lr, weight_decay=self.weight_decay, foreach=foreach)


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
    mask: dict[str, bool] | None = None,
) -> RunHistory:
    """Train one model in place with a plain loop: the reference :func:`train_batched` matches.

    ``mask`` (parameter name -> kept) holds the parameters it does not keep at exactly zero.
    """
    device = torch.device(device)
    model.to(device=device, dtype=dtype)
    if mask is not None:
        hold_at_zero(model, mask)
    Xtr, ytr, Xte, yte = _tensors(ds, device, dtype)
    opt = config.optimizer_for(list(model.named_parameters()))
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


class _Stack:
    """What every stack of ``M`` models offers: train/eval mode, evaluation, per-model state dicts.

    Subclasses set ``size``, ``params`` (name -> (M, ...) tensors or, for a loop, the models'
    own parameters), ``masks`` and ``fallback`` (None, or why the models are not batched).
    """

    size: int
    fallback: str | None = None
    training: bool = True

    def train(self, mode: bool = True) -> "_Stack":
        self.training = mode
        return self

    def eval(self) -> "_Stack":
        return self.train(False)

    def _stack(self, models: Sequence[nn.Module], masks: Sequence[dict[str, bool]] | None) -> None:
        """Stack the weights (a leading model dimension, as :func:`torch.func.stack_module_state`
        makes, without its same-class check: a user's factory file imported once per seed defines
        its class anew each time) and zero what each model's mask drops."""
        self.size = len(models)
        named = [(dict(m.named_parameters()), dict(m.named_buffers())) for m in models]
        for p, b in named[1:]:
            if [(k, v.shape) for k, v in {**p, **b}.items()] != [(k, v.shape) for k, v in {**named[0][0], **named[0][1]}.items()]:
                raise ValueError("the models to stack have different parameters or buffers")
        self.params = {k: torch.stack([p[k].detach() for p, _ in named]).requires_grad_(True) for k in named[0][0]}
        self.buffers = {k: torch.stack([b[k] for _, b in named]) for k in named[0][1]}
        self.masks: dict[str, torch.Tensor] = {}
        for name, p in self.params.items():
            keep = [True if masks is None else masks[m].get(name, True) for m in range(self.size)]
            if all(k is True for k in keep):
                continue
            if all(isinstance(k, bool) for k in keep):
                mask = torch.tensor(keep, dtype=p.dtype).reshape(-1, *[1] * (p.dim() - 1))
            else:  # parts of a parameter (a packed bias's redundant part): one 0/1 entry per element
                mask = torch.stack([keep_tensor(k, p[m]) for m, k in enumerate(keep)])
            with torch.no_grad():
                p.mul_(mask)
            self.masks[name] = mask

    def masked_params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters with each dropped one multiplied by its 0 (exact zeros, zero gradients)."""
        return {k: v * self.masks[k] if k in self.masks else v for k, v in self.params.items()}

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "_Stack":
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

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each model's weights and buffers (masked parameters omitted), detached, on the CPU."""
        out = []
        for m in range(self.size):
            sd = {k: v[m].detach().cpu().clone() for k, v in self.params.items()
                  if k not in self.masks or bool(self.masks[k][m].any())}
            sd.update({k: v[m].detach().cpu().clone() for k, v in self.buffers.items()})
            out.append(sd)
        return out

    def named_parameters(self) -> list[tuple[str, torch.Tensor]]:
        """(name, tensor) of every optimised tensor (names as in the single model)."""
        return list(self.params.items())

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and mean cross-entropy of every model on the same ``X, y``: two (M,) arrays.

        ``X`` goes through in chunks of ``chunk`` examples (default: 2048 on a GPU; on a CPU
        1024 / M, at least 64, so that all models' activations together stay small enough for the
        CPU's caches: the 10-model cnn evaluates 1.3–1.8× faster than in chunks of 2048). The
        chunking changes the mean loss in its last float32 digits (it left the accuracies of the
        built-in models on digits unchanged).
        """
        self.eval()
        correct = torch.zeros(self.size, dtype=torch.long, device=X.device)
        loss = torch.zeros(self.size, dtype=torch.float64, device=X.device)
        if chunk is None:
            chunk = 2048 if X.device.type != "cpu" else max(64, 1024 // self.size)
        for i in range(0, len(X), chunk):
            xb, yb = X[i:i + chunk], y[i:i + chunk]
            out = self(xb.unsqueeze(0).expand(self.size, *xb.shape))
            loss += F.cross_entropy(out.transpose(1, 2), yb.expand(self.size, -1), reduction="none").sum(1)
            correct += (out.argmax(-1) == yb).sum(1)
        return correct.cpu().numpy() / len(X), loss.cpu().numpy() / len(X)


def keep_tensor(keep: bool | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A mask entry as a 0/1 tensor shaped and typed like ``like``: ``True``/``False`` for the whole
    parameter, or a boolean tensor (one entry per element) for parts of it."""
    if isinstance(keep, bool):
        return torch.full_like(like, float(keep)).detach()
    return torch.as_tensor(keep).to(device=like.device, dtype=like.dtype).reshape(like.shape)


def kept(keep: bool | torch.Tensor) -> bool:
    """Does a mask entry keep any of its parameter?"""
    return keep if isinstance(keep, bool) else bool(torch.as_tensor(keep).any())


def hold_at_zero(model: nn.Module, mask: dict[str, bool | torch.Tensor]) -> nn.Module:
    """Zero what ``mask`` does not keep — whole parameters (``False``) or their elements (a boolean
    tensor, ``False`` where dropped) — and zero the gradients there from now on.

    With a zero gradient and a zero value, Adam and SGD (momentum, weight decay) never move them:
    the model computes the function of the variant built without those tensors (or parts), and the
    kept parts of a partly dropped parameter train as before.
    """
    for name, p in model.named_parameters():
        keep = mask.get(name, True)
        if keep is True:
            continue
        if keep is False:
            with torch.no_grad():
                p.zero_()
            p.register_hook(torch.zeros_like)
            continue
        factor = keep_tensor(keep, p)
        with torch.no_grad():
            p.mul_(factor)
        p.register_hook(lambda grad, factor=factor: torch.where(factor.to(grad.device) != 0, grad, 0.0))
    return model


class ModelStack(_Stack):
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
        if not self.supports(models[0]):
            unsupported = [type(m).__name__ for m in models[0].children() if not isinstance(m, self.LAYERS)]
            raise TypeError(
                "ModelStack runs nn.Sequential models of Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten "
                f"and Linear layers; got {type(models[0]).__name__} with {', '.join(unsupported) or 'no layers'}"
            )
        self._stack(models, masks)
        self.layers = list(copy.deepcopy(models[0]).to("meta").named_children())  # hyper-parameters only

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        """True for an ``nn.Sequential`` of the layers this stack replays (and nothing else)."""
        children = list(model.children())
        return (type(model) is nn.Sequential and bool(children)
                and all(type(m) in cls.LAYERS or type(m) is ScaleOnlyBatchNorm2d for m in children))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (M, B, ...) — one batch per model — → logits (M, B, n_classes)."""
        M, B = x.shape[:2]
        params = self.masked_params()
        image = x.dim() == 5
        h = x.transpose(0, 1).reshape(B, -1, *x.shape[3:]) if image else x  # (B, M·C, H, W)
        if image and h.dtype != torch.float64:  # float64 has only reference kernels, slower in this layout
            h = h.contiguous(memory_format=torch.channels_last)
        relu_after_pool = False
        for i, (name, layer) in enumerate(self.layers):
            w, b = params.get(f"{name}.weight"), params.get(f"{name}.bias")
            if isinstance(layer, nn.ReLU) and i + 1 < len(self.layers) and isinstance(self.layers[i + 1][1], nn.MaxPool2d):
                # max-pooling commutes with ReLU (both monotone; exactly, in floats and in gradients):
                # pooling first applies the ReLU to a quarter of the values
                relu_after_pool = True
            elif isinstance(layer, nn.Conv2d):
                h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1),
                             layer.stride, layer.padding, layer.dilation, M * layer.groups)
            elif isinstance(layer, nn.BatchNorm2d):
                h = self._batch_norm(name, layer, h, w, b)
            elif isinstance(layer, nn.ReLU):
                h = F.relu(h, inplace=True)
            elif isinstance(layer, nn.MaxPool2d):
                h = F.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                                 layer.ceil_mode)
                if relu_after_pool:
                    h, relu_after_pool = F.relu(h, inplace=True), False  # max_pool2d keeps its input, not its output
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


class FuncStack(_Stack):
    """``M`` models of any architecture run as one: :func:`torch.func.vmap` over
    :func:`torch.func.functional_call` with the stacked weights.

    Each model sees its own batch, keeps its own buffers (BatchNorm running statistics update
    the stacked buffers), and a dropped parameter is multiplied by its 0 in every forward pass.
    ``nn.RNN``/``nn.GRU``/``nn.LSTM`` layers, whose fused kernels vmap cannot batch, run as their
    plain-op twins (:mod:`biaslab.nets.recurrent`: same parameters, same results) in the stack only.
    ``check(x)`` runs one training and one evaluation step to find out whether vmap can batch
    the model at all (it cannot with data-dependent control flow, random ops such as dropout,
    or the recurrent configurations the twins leave alone: LSTM ``proj_size``, dropout between
    layers, ``PackedSequence`` inputs).
    """

    def __init__(self, models: Sequence[nn.Module], masks: Sequence[dict[str, bool]] | None = None) -> None:
        self._stack(models, masks)
        # the architecture (weights come from the stack), with recurrent layers vmap can batch
        self.base = plain_recurrent(copy.deepcopy(models[0]).to("meta"))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (M, B, ...) — one batch per model — → outputs (M, B, ...)."""
        from torch.func import functional_call, vmap

        self.base.train(self.training)

        def one(params, buffers, xb):
            return functional_call(self.base, (params, buffers), (xb,))

        with warnings.catch_warnings():  # ops without a batching rule run vmap's (correct) slow fallback
            warnings.filterwarnings("ignore", message="There is a performance drop")
            return vmap(one)(self.masked_params(), self.buffers, x)

    def check(self, x: torch.Tensor) -> None:
        """One forward and backward pass in train mode and one in eval mode on ``x`` (B, ...); no state changes."""
        saved = {k: v.clone() for k, v in self.buffers.items()}
        try:
            self.train()
            self(x.unsqueeze(0).expand(self.size, *x.shape)).sum().backward()
            self.eval()
            with torch.no_grad():
                self(x.unsqueeze(0).expand(self.size, *x.shape))
        finally:
            for k, v in saved.items():
                self.buffers[k].copy_(v)
            for p in self.params.values():
                p.grad = None
            self.train()


class LoopStack(_Stack):
    """The fallback when vmap cannot batch a model: ``M`` separate models, one after another.

    Dropped parameters are held at exactly zero (:func:`hold_at_zero`); ``fallback`` says why
    the models are not batched.
    """

    def __init__(self, models: Sequence[nn.Module], masks: Sequence[dict[str, bool]] | None, fallback: str) -> None:
        self.models = list(models)
        self.size = len(self.models)
        self.model_masks = list(masks) if masks is not None else [{} for _ in self.models]
        self.fallback = fallback

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "LoopStack":
        for model, mask in zip(self.models, self.model_masks):
            model.to(device=device, dtype=dtype)
            hold_at_zero(model, mask)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([model.train(self.training)(x[i]) for i, model in enumerate(self.models)])

    def named_parameters(self) -> list[tuple[str, torch.Tensor]]:
        return [(n, p) for model in self.models for n, p in model.named_parameters()]

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        return [{k: v.detach().cpu().clone() for k, v in model.state_dict().items() if kept(mask.get(k, True))}
                for model, mask in zip(self.models, self.model_masks)]


def make_stack(models: Sequence[nn.Module], masks: Sequence[dict[str, bool]] | None, example: torch.Tensor,
               device: torch.device, dtype: torch.dtype) -> _Stack:
    """The fastest stack that runs ``models``: :class:`ModelStack` for the plain built-in
    ``nn.Sequential`` models, :class:`FuncStack` (vmap) for anything vmap can batch (GRU/LSTM
    layers included, as plain-op twins), else a :class:`LoopStack` whose ``fallback`` says why
    (e.g. data-dependent control flow, an LSTM with ``proj_size``). ``example`` is a small input
    batch (B, ...)."""
    if ModelStack.supports(models[0]):
        return ModelStack(models, masks).to(device, dtype)
    try:
        stack = FuncStack(models, masks).to(device, dtype)
        stack.check(example)
        return stack
    except Exception as exc:  # noqa: BLE001 - any failure to batch means: train them one by one
        twinless_layers = [f"{name or 'the model'} ({why})" for name, m in models[0].named_modules()
                           if (why := twinless(m)) is not None]
        cause = (f"its recurrent layer {', '.join(twinless_layers)} has no plain-op twin" if twinless_layers
                 else f"{type(exc).__name__}: {first_line(exc)}")
        reason = f"vmap cannot batch {type(models[0]).__name__} ({cause}); its runs train one after another"
        return LoopStack(models, masks, reason).to(device, dtype)


def train_batched(
    model: str | Callable[[int], nn.Module],
    ds: Dataset,
    runs: Sequence[tuple[str, int]],
    config: TrainConfig,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int], None] | None = None,
    dtype: torch.dtype = torch.float32,
    masks: dict[str, dict[str, bool]] | None = None,
    **model_kwargs,
) -> tuple[_Stack, list[RunHistory]]:
    """Train one model per ``(variant, seed)`` in ``runs``, all at once.

    Parameters
    ----------
    model : a built-in name (:data:`biaslab.nets.models.MODEL_NAMES`) or a function ``seed -> nn.Module``
        returning the model with every bias and the initial weights of that seed.
    runs : ``(variant, seed)`` pairs; every variant of a seed starts from the same weights and
        sees the batches of :func:`batch_order` for its seed, exactly as :func:`train_model` would.
    masks : variant -> parameter name -> kept: ``True``/``False``, or a boolean tensor over the parameter's
        elements for a partly dropped one (default for a built-in name: :func:`biaslab.nets.models.bias_mask`).
    on_epoch : called with the epoch number after each epoch.
    dtype : the precision of weights and inputs.

    Returns
    -------
    The trained stack (model ``i`` is ``runs[i]``; ``stack.fallback`` is None when batched) and
    one history per run.
    """
    device = torch.device(device)
    shape, k = ds.in_shape, ds.n_classes
    if isinstance(model, str):
        name = model
        masks = masks or {v: bias_mask(name, v, shape, k, **model_kwargs) for v in {v for v, _ in runs}}

        def model(seed: int) -> nn.Module:
            return init_model(name, "with-bias", seed, shape, k, **model_kwargs)

    elif masks is None:
        raise ValueError("train_batched needs masks for a model factory")
    full = [model(s) for _, s in runs]
    Xtr, ytr, Xte, yte = _tensors(ds, device, dtype)
    stack = make_stack(full, [masks[v] for v, _ in runs], Xtr[:2], device, dtype)
    opt = config.optimizer_for(stack.named_parameters(), foreach=True)
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
