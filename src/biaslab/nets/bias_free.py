"""Bias-free layers and the converter that removes every additive constant from a model.

A network built only from bias-free convolutions / linear maps, bias-free batch
normalisation and ReLUs is *positively homogeneous*: ``f(α·x) = α·f(x)`` for every
``α > 0`` (in eval mode). It is piecewise linear with no offset, so locally
``f(y) = J(y)·y``: an adaptive linear filter. Mohan, Kadkhodaie, Simoncelli and
Fernandez-Granda ("Robust and Interpretable Blind Image Denoising via Bias-Free
Convolutional Neural Networks", ICLR 2020) showed that such denoisers generalise to
noise levels never seen in training.

:class:`BiasFreeBatchNorm2d` follows the definition of ``BFBatchNorm2d`` in the
paper's code (github.com/LabForComputationalVision/bias_free_denoising,
``models/BFBatchNorm2d.py``; re-implemented here, not copied): the batch statistics
are used only for the *scale* — in training the input is divided by the batch
standard deviation ``sqrt(var) + eps`` (the variance is the unbiased one, taken
around the mean, but the mean itself is *not* subtracted), the running variance is
tracked with ``momentum``, and in eval mode the input is divided by
``sqrt(running_var) + eps``. A learned gain ``weight`` multiplies the result; there
is no shift.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .biases import bias_parameters
from ..infra.io import BiaslabError

__all__ = [
    "BiasFreeBatchNorm",
    "BiasFreeBatchNorm1d",
    "BiasFreeBatchNorm2d",
    "BiasFreeBatchNorm3d",
    "make_bias_free",
]


class BiasFreeBatchNorm(nn.Module):
    """Batch normalisation without the mean and without the shift: ``y = γ · x / (σ + eps)``.

    ``σ`` is the per-channel standard deviation of the batch in training mode (over
    every dimension but the channel dimension 1) and ``sqrt(running_var)`` in eval
    mode. Subclasses fix the expected input rank.

    Parameters
    ----------
    num_features:
        Number of channels ``C`` of an input ``(N, C, ...)``.
    eps:
        Added to the standard deviation (not the variance), as in the paper's code.
    momentum:
        Weight of the new batch variance in the running average.
    affine:
        Learn a per-channel gain ``weight`` (γ, initialised to 1). There is never a bias.
    track_running_stats:
        Keep ``running_var`` for eval mode; without it the batch statistics are used always.
    """

    _input_dim: int = 0  # expected tensor rank; 0 accepts any rank >= 2

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        factory = {"device": device, "dtype": dtype}
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))
        else:
            self.register_parameter("weight", None)
        if track_running_stats:
            self.register_buffer("running_var", torch.ones(num_features, **factory))
        else:
            self.register_buffer("running_var", None)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if self._input_dim and x.dim() != self._input_dim:
            raise ValueError(
                f"{type(self).__name__} expects a {self._input_dim}-D input, got {x.dim()}-D"
            )
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) got input of shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.training or self.running_var is None:
            dims = [d for d in range(x.dim()) if d != 1]
            var = x.var(dim=dims, unbiased=True)
            if self.training and self.running_var is not None:
                with torch.no_grad():
                    self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.detach())
        else:
            var = self.running_var
        y = x / (var.sqrt() + self.eps).view(shape)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}, bias=None"
        )


class BiasFreeBatchNorm1d(BiasFreeBatchNorm):
    """:class:`BiasFreeBatchNorm` for ``(N, C)`` or ``(N, C, L)`` inputs."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"BiasFreeBatchNorm1d expects a 2-D or 3-D input, got {x.dim()}-D")
        super()._check_input_dim(x)


class BiasFreeBatchNorm2d(BiasFreeBatchNorm):
    """:class:`BiasFreeBatchNorm` for ``(N, C, H, W)`` inputs (the paper's ``BFBatchNorm2d``)."""

    _input_dim = 4


class BiasFreeBatchNorm3d(BiasFreeBatchNorm):
    """:class:`BiasFreeBatchNorm` for ``(N, C, D, H, W)`` inputs."""

    _input_dim = 5


_BN_TO_BF: dict[type, type] = {
    nn.BatchNorm1d: BiasFreeBatchNorm1d,
    nn.BatchNorm2d: BiasFreeBatchNorm2d,
    nn.BatchNorm3d: BiasFreeBatchNorm3d,
}
_BIASED_LINEAR = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)
#: Layers with a learned shift and a data-dependent centring that the converter cannot remove.
_UNSUPPORTED = (nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)


def _bias_free_norm(bn: nn.modules.batchnorm._BatchNorm) -> BiasFreeBatchNorm:
    """A :class:`BiasFreeBatchNorm` with ``bn``'s gain, running variance and settings."""
    bf_type = _BN_TO_BF.get(type(bn), BiasFreeBatchNorm)
    ref = bn.weight if bn.weight is not None else bn.running_var
    kwargs = {"device": ref.device, "dtype": ref.dtype} if ref is not None else {}
    bf = bf_type(
        bn.num_features,
        eps=bn.eps,
        momentum=bn.momentum if bn.momentum is not None else 0.1,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
        **kwargs,
    )
    with torch.no_grad():
        if bn.affine:
            bf.weight.copy_(bn.weight)
            bf.weight.requires_grad_(bn.weight.requires_grad)
        if bn.track_running_stats and bn.running_var is not None:
            bf.running_var.copy_(bn.running_var)
    bf.train(bn.training)
    return bf


def _convert(module: nn.Module, prefix: str, problems: list[str]) -> None:
    """Replace BatchNorms and drop conv/linear biases below ``module``; note what cannot be converted."""
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, _bias_free_norm(child))
            continue
        if isinstance(child, _UNSUPPORTED):
            problems.append(f"{path} ({type(child).__name__}: centres its input per sample, so the result "
                            "would not be homogeneous; replace it with BatchNorm first)")
            continue
        if isinstance(child, _BIASED_LINEAR) and getattr(child, "bias", None) is not None:
            child.register_parameter("bias", None)
        _convert(child, f"{path}.", problems)


def make_bias_free(model: nn.Module) -> nn.Module:
    """Return a bias-free copy of ``model``; ``model`` itself is not touched.

    Every convolution (including transposed), ``Linear`` and ``Bilinear`` loses its
    bias; every ``BatchNorm{1,2,3}d`` becomes the matching :class:`BiasFreeBatchNorm`
    with the same gain, running variance, ``eps``, ``momentum`` and train/eval mode.
    Kernels, dtypes, devices and ``requires_grad`` are kept. The result computes a
    different function (the shifts are gone) and is meant to be (re)trained; with
    ReLU / LeakyReLU / PReLU / identity activations it is positively homogeneous in
    eval mode.

    Parameters
    ----------
    model:
        The network (or a single BatchNorm layer) to convert.

    Returns
    -------
    nn.Module
        The converted copy, with no bias parameter left
        (:func:`biaslab.nets.biases.bias_parameters` finds none).

    Raises
    ------
    BiaslabError
        Listing every part that cannot be made bias-free: a per-sample normalisation
        (GroupNorm, LayerNorm, InstanceNorm, LocalResponseNorm), and any bias parameter this
        converter does not know how to remove (``MultiheadAttention.in_proj_bias``,
        ``bias_k``/``bias_v``, RNN/GRU/LSTM ``bias_ih``/``bias_hh``, a custom layer's ``bias``).
    """
    if isinstance(model, nn.modules.batchnorm._BatchNorm):
        return _bias_free_norm(model)
    new = copy.deepcopy(model)
    wrapper = nn.ModuleDict({"model": new})
    problems: list[str] = []
    _convert(wrapper, "", problems)
    skipped = tuple(p.split(" ", 1)[0] + "." for p in problems)
    owners = dict(wrapper.named_modules())
    for name, _ in bias_parameters(wrapper):
        if not name.startswith(skipped):
            owner = owners.get(name.rsplit(".", 1)[0])
            problems.append(f"{name} ({type(owner).__name__}: a bias this converter cannot remove)")
    if problems:
        listed = "; ".join(p.removeprefix("model.") for p in problems)
        raise BiaslabError(f"cannot make the model bias-free: {len(problems)} part(s) keep an additive constant: "
                           f"{listed}")
    return wrapper["model"]
