"""Convolution from the formula: ``output = activation(Σ(input * kernel) + bias)``.

One output value of a conv layer is a weighted sum of the input patch under the kernel,
plus the bias, through the activation::

    z[n, o, r, c] = Σ_{k,i,j} x_pad[n, g·Cg + k, r·sH + i·dH, c·sW + j·dW] · w[o, k, i, j]  +  b[o]
    a[n, o, r, c] = activation(z[n, o, r, c])

with ``x_pad`` the zero-padded input, ``Cg = C / groups`` input channels per group and ``g``
the group of output channel ``o``. :func:`explain_pixel` computes exactly this for one
output value; :func:`conv2d` computes it for all of them at once, with the same semantics,
shapes and argument names as ``torch.nn.functional.conv2d``.

Like every deep-learning framework this is **cross-correlation**: the kernel slides over
the input as it is. The convolution of the textbooks (and of ``scipy.signal.convolve2d``)
flips the kernel first, ``w[o, k, kH−1−i, kW−1−j]``. For symmetric kernels (Gaussian,
Laplacian) the two agree; for a Sobel kernel they differ in sign.

All output values are computed together, by one of two exact methods (no Python loop runs
over output pixels or channels):

- *im2col* (:func:`unfold`): copy the receptive field of every output pixel into one column,
  then one matrix product per sample and group weighs every column with every kernel.
- *rows*: copy the input only ``kW`` times, shifted by each kernel column, so that the
  patches under kernel row ``i`` are one strided matrix; one matrix product per kernel row
  then adds that row's contribution. It reads ``kH`` times less memory than im2col, in
  cache-sized tiles of output rows, which is what a few-channel image with a large kernel
  (the ``biaslab conv`` workload) needs.

:func:`weighted_sum` picks *rows* unless its scratch memory would exceed im2col's. Either way
the extra memory is at most the unfolded input of one sample and one group.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .activations import activate
from ..infra.io import BiaslabError

__all__ = [
    "METHODS",
    "activate",
    "fraction_active",
    "conv2d",
    "conv2d_pre_activation",
    "feature_map",
    "weighted_sum",
    "unfold",
    "conv_output_shape",
    "conv_method",
    "padding_border",
    "rounding_bound",
    "explain_pixel",
    "PixelExplanation",
]

IntPair = int | tuple[int, int]
Padding = int | tuple[int, int] | str
_Tap = tuple[int, int, tuple[slice, slice], tuple[slice, slice]]  # (i, j, output slices, input slices)


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    """``3`` → ``(3, 3)``; checks both entries are integers ≥ ``minimum``."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise BiaslabError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise BiaslabError(f"{name} must be ≥ {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class _Geometry:
    """Where each kernel tap reads the input: sizes, stride, dilation, padding before and after."""

    in_size: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad_before: tuple[int, int]
    pad_after: tuple[int, int]

    @property
    def out_size(self) -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            (n + p0 + p1 - d * (k - 1) - 1) // s + 1
            for n, k, s, d, p0, p1 in zip(self.in_size, self.kernel, self.stride, self.dilation,
                                          self.pad_before, self.pad_after)
        )

    def _axis_taps(self, axis: int) -> list[tuple[slice, slice]]:
        """For each tap i along ``axis``: (output positions reading real input, input positions read)."""
        n, s, d, p = self.in_size[axis], self.stride[axis], self.dilation[axis], self.pad_before[axis]
        n_out = self.out_size[axis]
        taps = []
        for i in range(self.kernel[axis]):
            offset = i * d - p  # output position r reads input position r·s + offset
            first = max(0, -(offset // s))  # ceil(−offset / s): first r with r·s + offset ≥ 0
            stop = min(n_out, (n - 1 - offset) // s + 1)  # past the last r with r·s + offset ≤ n − 1
            if stop <= first:  # this tap only ever reads padding
                taps.append((slice(0, 0), slice(0, 0)))
            else:
                taps.append((slice(first, stop), slice(first * s + offset, (stop - 1) * s + offset + 1, s)))
        return taps

    def taps(self) -> Iterator[_Tap]:
        """Every kernel tap (i, j) with its (rows, cols) slices in the output and in the input."""
        rows, cols = self._axis_taps(0), self._axis_taps(1)
        for i, (out_r, in_r) in enumerate(rows):
            for j, (out_c, in_c) in enumerate(cols):
                yield i, j, (out_r, out_c), (in_r, in_c)


def _geometry(
    in_size: tuple[int, int], kernel: tuple[int, int], stride: IntPair, padding: Padding, dilation: IntPair
) -> _Geometry:
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            before = after = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise BiaslabError(
                    f"padding='same' is not supported for strided convolutions (stride={stride}); "
                    "use padding='valid' or a number"
                )
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]  # PyTorch puts the odd pixel after
            before = (total[0] // 2, total[1] // 2)
            after = (total[0] - before[0], total[1] - before[1])
        else:
            raise BiaslabError(f"padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    else:
        before = after = _pair(padding, "padding", 0)
    geom = _Geometry(in_size, kernel, stride, dilation, before, after)
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    padded = [n + p0 + p1 for n, p0, p1 in zip(in_size, before, after)]
    if span[0] > padded[0] or span[1] > padded[1]:
        raise BiaslabError(
            f"kernel of size {kernel} with dilation {dilation} spans {tuple(span)}, larger than the "
            f"padded input {tuple(padded)} (input {in_size}); use a smaller kernel or more padding"
        )
    return geom


def conv_output_shape(
    in_size: tuple[int, int], kernel_size: IntPair, stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1
) -> tuple[int, int]:
    """(H_out, W_out) = ⌊(H + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1, per axis."""
    return _geometry(tuple(in_size), _pair(kernel_size, "kernel_size", 1), stride, padding, dilation).out_size


def padding_border(
    in_size: tuple[int, int], kernel_size: IntPair, stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1
) -> tuple[int, int, int, int]:
    """How many output rows and columns (top, bottom, left, right) have a kernel window that
    overlaps the zero padding; (0, 0, 0, 0) without padding."""
    geom = _geometry(tuple(in_size), _pair(kernel_size, "kernel_size", 1), stride, padding, dilation)
    counts = []
    for axis in range(2):
        n, n_out, s = geom.in_size[axis], geom.out_size[axis], geom.stride[axis]
        before = geom.pad_before[axis]
        span = geom.dilation[axis] * (geom.kernel[axis] - 1) + 1
        first_inside = min(n_out, -(-before // s))  # first r with r·s − before ≥ 0
        last_inside = (n + before - span) // s  # last r with r·s − before + span − 1 ≤ n − 1
        counts += [first_inside, max(0, n_out - 1 - last_inside)]
    return counts[0], counts[1], counts[2], counts[3]


def unfold(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1
) -> np.ndarray:
    """im2col: the receptive field of every output pixel of one image, as columns.

    Parameters
    ----------
    x : (C, H, W) array.
    kernel_size, stride, padding, dilation : as in :func:`conv2d`.

    Returns
    -------
    (C, kH, kW, H_out, W_out) array ``u`` with ``u[k, i, j, r, c] = x_pad[k, r·sH + i·dH, c·sW + j·dW]``
    (zero where the kernel hangs over the padding). Reshaped to (C·kH·kW, H_out·W_out), column
    ``r·W_out + c`` is the patch that output pixel (r, c) sees.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise BiaslabError(f"unfold expects one image of shape (C, H, W), got shape {x.shape}")
    geom = _geometry(x.shape[1:], _pair(kernel_size, "kernel_size", 1), stride, padding, dilation)
    cols = np.zeros((x.shape[0], *geom.kernel, *geom.out_size), dtype=x.dtype)
    _unfold_into(cols, x, list(geom.taps()))
    return cols


def _unfold_into(cols: np.ndarray, x: np.ndarray, taps: list[_Tap]) -> None:
    """Copy the receptive fields of ``x`` into ``cols`` (already zero where they read padding).

    One strided block copy per kernel tap (i, j): the input pixels tap (i, j) reads for every
    output pixel at once. Unlike a sliding-window view of a zero-padded copy, this needs no
    padded copy of the input, so the columns are the only extra memory.
    """
    for i, j, (out_r, out_c), (in_r, in_c) in taps:
        cols[:, i, j, out_r, out_c] = x[:, in_r, in_c]


def _check(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, groups: int):
    x, weight = np.asarray(x), np.asarray(weight)
    batched = x.ndim == 4
    if x.ndim not in (3, 4):
        raise BiaslabError(f"input must have shape (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise BiaslabError(
            f"weight must have shape (out_channels, in_channels/groups, kH, kW), got shape {weight.shape}"
        )
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise BiaslabError(f"groups must be a positive int, got {groups!r}")
    xb = x if batched else x[None]
    channels, (out_channels, group_channels, kh, kw) = xb.shape[1], weight.shape
    if min(kh, kw, group_channels, out_channels) < 1:
        raise BiaslabError(f"weight of shape {weight.shape} is empty")
    if channels % groups:
        raise BiaslabError(f"groups={groups} does not divide the {channels} input channels of input {x.shape}")
    if out_channels % groups:
        raise BiaslabError(
            f"groups={groups} does not divide the {out_channels} output channels of weight {weight.shape}"
        )
    if group_channels * groups != channels:
        raise BiaslabError(
            f"input {x.shape} has {channels} channels but weight {weight.shape} with groups={groups} "
            f"expects {group_channels * groups}"
        )
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (out_channels,):
            raise BiaslabError(
                f"bias must have shape ({out_channels},) for weight {weight.shape}, got shape {bias.shape}"
            )
    dtype = np.result_type(x.dtype, weight.dtype, np.float32)
    return xb.astype(dtype, copy=False), weight.astype(dtype, copy=False), bias, batched


def weighted_sum(
    x: np.ndarray,
    weight: np.ndarray,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    method: str = "auto",
) -> np.ndarray:
    """Σ(input * kernel) at every output position: :func:`conv2d` without the bias.

    Arguments and shapes as in :func:`conv2d`. ``method`` is ``"im2col"``, ``"rows"`` (see the
    module docstring) or ``"auto"``: rows, unless its scratch memory would exceed im2col's.
    The methods agree to rounding (the sums are added in another order).
    """
    x, weight, _, batched = _check(x, weight, None, groups)
    z = _weighted_sum(x, weight, stride, padding, dilation, groups, method)
    return z if batched else z[0]


METHODS = ("auto", "rows", "im2col")

#: Scratch memory, in bytes, of one tile of the rows method: about a core's L2 cache, so the
#: shifted copies are still in cache when the matrix products read them.
TILE_BYTES = 1 << 20


def _weighted_sum(
    x: np.ndarray, weight: np.ndarray, stride: IntPair, padding: Padding, dilation: IntPair, groups: int,
    method: str = "auto",
) -> np.ndarray:
    """:func:`weighted_sum` of a checked (N, C, H, W) input and weight of the same dtype."""
    n = x.shape[0]
    out_channels, group_channels, kh, kw = weight.shape
    geom = _geometry(x.shape[2:], (kh, kw), stride, padding, dilation)
    h_out, w_out = geom.out_size
    group_out = out_channels // groups
    if method not in METHODS:
        raise BiaslabError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        method = _auto_method(geom, group_channels, group_out, x.dtype)
    one_group = _Rows(geom, group_channels, group_out, x.dtype).allocate() if method == "rows" \
        else _Im2col(geom, group_channels, x.dtype)
    z = np.empty((n, out_channels, h_out, w_out), dtype=x.dtype)
    for g in range(groups):
        kernels = weight[g * group_out:(g + 1) * group_out]
        prepared = one_group.prepare(kernels)
        for s in range(n):
            out = z[s, g * group_out:(g + 1) * group_out].reshape(group_out, h_out * w_out)
            one_group(x[s, g * group_channels:(g + 1) * group_channels], prepared, out)
    return z


def _auto_method(geom: _Geometry, group_channels: int, group_out: int, dtype: np.dtype) -> str:
    """``rows`` unless its scratch memory would exceed im2col's (then ``im2col``)."""
    rows = _Rows(geom, group_channels, group_out, dtype)
    return "rows" if rows.scratch_bytes <= _Im2col.scratch_bytes_for(geom, group_channels, dtype) else "im2col"


def conv_method(
    x_shape: tuple[int, ...], weight_shape: tuple[int, int, int, int], stride: IntPair = 1, padding: Padding = 0,
    dilation: IntPair = 1, groups: int = 1, dtype: np.dtype = np.float64,
) -> str:
    """The method (``"rows"`` or ``"im2col"``) that :func:`weighted_sum` uses with ``method="auto"``."""
    geom = _geometry(tuple(x_shape[-2:]), tuple(weight_shape[2:]), stride, padding, dilation)
    return _auto_method(geom, weight_shape[1], weight_shape[0] // groups, np.dtype(dtype))


class _Im2col:
    """One sample and group by im2col: unfold the patches, then one matrix product."""

    def __init__(self, geom: _Geometry, channels: int, dtype: np.dtype):
        self.patches = np.zeros((channels, *geom.kernel, *geom.out_size), dtype=dtype)
        self.columns = self.patches.reshape(channels * geom.kernel[0] * geom.kernel[1], -1)
        self.taps = list(geom.taps())

    @staticmethod
    def scratch_bytes_for(geom: _Geometry, channels: int, dtype: np.dtype) -> int:
        """Size of the unfolded input of one sample and one group."""
        return channels * int(np.prod(geom.kernel)) * int(np.prod(geom.out_size)) * np.dtype(dtype).itemsize

    @staticmethod
    def prepare(kernels: np.ndarray) -> np.ndarray:
        return kernels.reshape(kernels.shape[0], -1)  # one row of Cg·kH·kW weights per kernel

    def __call__(self, x: np.ndarray, kernels: np.ndarray, out: np.ndarray) -> None:
        _unfold_into(self.patches, x, self.taps)
        np.matmul(kernels, self.columns, out=out)  # Σ(input * kernel), all pixels at once


class _Rows:
    """One sample and group, one kernel row at a time, in tiles of output rows.

    For kernel column j, ``shifted[c, j, t, col]`` holds input row ``t·sH + q − pad_top`` at
    column ``col·sW + j·dW − pad_left`` (zero in the padding), where ``q`` is the residue of
    the row offset modulo the stride. Kernel row i reads input rows ``r·sH + i·dH − pad_top``,
    i.e. rows ``t = r + m_i`` of residue ``q_i`` with ``i·dH = q_i + m_i·sH``; for every
    output pixel (r, col) at once that is the strided matrix ``shifted[q_i][:, :, m_i + r, :]``
    with one row per (c, j). So Σ(input * kernel) is ``Σ_i kernel[:, :, i, :] @ that matrix``.
    """

    def __init__(self, geom: _Geometry, channels: int, out_channels: int, dtype: np.dtype):
        self.geom, self.channels, self.out_channels, self.dtype = geom, channels, out_channels, np.dtype(dtype)
        (kh, kw), (sh, _), (dh, _) = geom.kernel, geom.stride, geom.dilation
        self.h_out, self.w_out = geom.out_size
        self.row_of = [(i * dh % sh, i * dh // sh) for i in range(kh)]  # (residue q_i, first row m_i)
        self.residues = sorted({q for q, _ in self.row_of})
        self.reach = max(m for _, m in self.row_of)  # rows a tile reads beyond its own
        row_bytes = len(self.residues) * channels * kw * self.w_out * self.dtype.itemsize
        self.tile = int(min(self.h_out, max(1, TILE_BYTES // row_bytes - self.reach)))
        self.scratch_bytes = row_bytes * (self.tile + self.reach) + (
            out_channels * self.tile * self.w_out * self.dtype.itemsize if kh > 1 else 0)

    def allocate(self) -> "_Rows":
        kw = self.geom.kernel[1]
        self.shifted = np.zeros((len(self.residues), self.channels, kw, self.tile + self.reach, self.w_out),
                                dtype=self.dtype)
        self.partial = np.empty((self.out_channels, self.tile * self.w_out), dtype=self.dtype) \
            if self.geom.kernel[0] > 1 else None
        self.columns = self.geom._axis_taps(1)
        return self

    def prepare(self, kernels: np.ndarray) -> np.ndarray:
        """(Og, Cg, kH, kW) → (kH, Og, Cg·kW): the weights of each kernel row as one matrix."""
        kh = kernels.shape[2]
        return np.ascontiguousarray(kernels.transpose(2, 0, 1, 3)).reshape(kh, self.out_channels, -1)

    def _fill(self, x: np.ndarray, first: int, count: int) -> None:
        """Copy the input rows that output rows ``first … first + count − 1`` read."""
        h, (sh, _), pad = x.shape[1], self.geom.stride, self.geom.pad_before[0]
        rows = count + self.reach
        for a, q in enumerate(self.residues):
            lo = max(first, -((q - pad) // sh))  # first t whose input row q + t·sH − pad is ≥ 0
            hi = min(first + rows, (h - 1 + pad - q) // sh + 1)  # past the last t inside the input
            block = self.shifted[a]
            if hi <= lo:
                block[:, :, :rows] = 0
                continue
            if lo > first:  # top padding
                block[:, :, :lo - first] = 0
            if hi < first + rows:  # bottom padding
                block[:, :, hi - first:rows] = 0
            in_rows = slice(q + lo * sh - pad, q + (hi - 1) * sh - pad + 1, sh)
            for j, (out_c, in_c) in enumerate(self.columns):
                block[:, j, lo - first:hi - first, out_c] = x[:, in_rows, in_c]

    def __call__(self, x: np.ndarray, kernels: np.ndarray, out: np.ndarray) -> None:
        w_out, flat = self.w_out, self.shifted.reshape(len(self.residues), -1, (self.tile + self.reach) * self.w_out)
        for first in range(0, self.h_out, self.tile):
            count = min(self.tile, self.h_out - first)
            self._fill(x, first, count)
            tile_out = out[:, first * w_out:(first + count) * w_out]
            for i, (q, m) in enumerate(self.row_of):
                patches = flat[self.residues.index(q), :, m * w_out:(m + count) * w_out]
                if i == 0:
                    np.matmul(kernels[0], patches, out=tile_out)
                else:
                    partial = self.partial[:, :count * w_out]
                    np.matmul(kernels[i], patches, out=partial)  # kernel row i's share of Σ
                    tile_out += partial


def conv2d_pre_activation(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Both stages of the pre-activation: ``(Σ(input * kernel), Σ(input * kernel) + bias)``.

    The second is what :func:`conv2d` returns; without ``bias`` both are the same array.
    """
    x, weight, bias, batched = _check(x, weight, bias, groups)
    total = _weighted_sum(x, weight, stride, padding, dilation, groups)
    pre = total if bias is None else total + _per_channel(bias, total.dtype)
    return (total, pre) if batched else (total[0], pre[0])


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """2-D convolution (cross-correlation) of ``x`` with ``weight``, plus ``bias``: Σ(input * kernel) + bias.

    Same semantics, shapes and argument names as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : (N, C, H, W) or (C, H, W) input.
    weight : (O, C/groups, kH, kW) kernels, one per output channel.
    bias : (O,) or None.
    stride, dilation : int or (int, int), ≥ 1.
    padding : int or (int, int) zeros on each side, or ``"valid"`` (none) or ``"same"`` (output
        as large as the input; stride 1 only, the odd pixel goes after, as in PyTorch).
    groups : split the channels into this many independent groups.

    Returns
    -------
    (N, O, H_out, W_out), or (O, H_out, W_out) for an unbatched input, in the result dtype of
    the inputs (float32 stays float32; integers become float64).
    """
    x, weight, bias, batched = _check(x, weight, bias, groups)
    z = _weighted_sum(x, weight, stride, padding, dilation, groups)  # Σ(input * kernel)
    if bias is not None:
        z += _per_channel(bias, z.dtype)  # + bias, in place: no second output-sized array
    return z if batched else z[0]


def _per_channel(bias: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(O,) bias → (O, 1, 1), broadcast over every pixel of its output channel."""
    return np.asarray(bias, dtype=dtype)[:, None, None]


def feature_map(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    activation: str = "relu",
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """The whole formula, activation(Σ(input * kernel) + bias): a conv layer's output.

    ``activation`` is one of relu, leaky_relu, sigmoid, tanh, gelu, identity; the other
    arguments are those of :func:`conv2d`.
    """
    return activate(conv2d(x, weight, bias, stride, padding, dilation, groups), activation)


def rounding_bound(
    x: np.ndarray,
    weight: np.ndarray,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """A bound on |computed − exact| Σ(input * kernel) at every output, whatever the summation order.

    A sum of n products computed in floating point is off by at most γ_n · Σ|input|·|kernel|,
    γ_n = n·u / (1 − n·u) with u the unit roundoff (Higham, *Accuracy and Stability of Numerical
    Algorithms*, §3.1). A computed Σ smaller than this may be an exact 0 (a flat image region
    under an edge kernel) that rounding left at ±1e-17. Arguments as in :func:`conv2d`.
    """
    x, weight, _, batched = _check(x, weight, None, groups)
    n = weight.shape[1] * weight.shape[2] * weight.shape[3]
    u = np.finfo(x.dtype).eps / 2
    bound = _weighted_sum(np.abs(x), np.abs(weight), stride, padding, dilation, groups)
    bound *= n * u / (1 - n * u)
    return bound if batched else bound[0]


def fraction_active(total: np.ndarray, bias: float) -> float:
    """Share of units that fire: Σ(input * kernel) + bias > 0, i.e. Σ(input * kernel) > −bias.

    Strictly greater: a unit whose pre-activation is exactly 0 outputs relu(0) = 0, so it is
    not active (flat image regions give many such ties for edge kernels).
    """
    total = np.asarray(total)
    return float(np.count_nonzero(total > -bias)) / total.size if total.size else 0.0


@dataclass(frozen=True)
class PixelExplanation:
    """How one output value comes about: activation(Σ(patch * kernel) + bias)."""

    position: tuple[int, int]
    patch: np.ndarray  # (C, kH, kW) input under the kernel (zeros over the padding)
    kernel: np.ndarray  # (C, kH, kW)
    bias: float
    activation: str
    corner: tuple[int, int] = (0, 0)  # input (row, col) under the kernel's first tap; < 0 in the padding
    span: tuple[int, int] = (1, 1)  # input rows and columns the (dilated) kernel covers

    @property
    def product(self) -> np.ndarray:
        """input * kernel, element by element."""
        return self.patch * self.kernel

    @property
    def total(self) -> float:
        """Σ(input * kernel)."""
        return float(self.product.sum())

    @property
    def pre_activation(self) -> float:
        """Σ(input * kernel) + bias."""
        return self.total + self.bias

    @property
    def output(self) -> float:
        """activation(Σ(input * kernel) + bias)."""
        return float(activate(np.array(self.pre_activation), self.activation))

    def __repr__(self) -> str:
        return (f"PixelExplanation(at {self.position}: {self.activation}(Σ(input * kernel) = {self.total:.6g}"
                f" + bias {self.bias:.6g}) = {self.output:.6g})")


def explain_pixel(
    x: np.ndarray,
    kernel: np.ndarray,
    position: tuple[int, int],
    bias: float = 0.0,
    activation: str = "relu",
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
) -> PixelExplanation:
    """The breakdown of output value ``position = (row, col)`` of one kernel on one image.

    Parameters
    ----------
    x : (C, H, W) image.
    kernel : (C, kH, kW) weights of one output channel.
    position : (row, col) in the output feature map.
    bias, activation : the unit's bias and activation.
    stride, padding, dilation : as in :func:`conv2d`.

    Returns
    -------
    A :class:`PixelExplanation` whose ``output`` equals
    ``feature_map(x, kernel[None], [bias], activation, stride, padding, dilation)[0, row, col]``.
    """
    x, kernel = np.asarray(x), np.asarray(kernel)
    if x.ndim != 3 or kernel.ndim != 3 or x.shape[0] != kernel.shape[0]:
        raise BiaslabError(
            f"explain_pixel needs an image (C, H, W) and a kernel (C, kH, kW) with the same C; "
            f"got image {x.shape} and kernel {kernel.shape}"
        )
    geom = _geometry(x.shape[1:], kernel.shape[1:], stride, padding, dilation)
    row, col = (int(v) for v in position)
    if not (0 <= row < geom.out_size[0] and 0 <= col < geom.out_size[1]):
        raise BiaslabError(
            f"position ({row}, {col}) is outside the {geom.out_size[0]}×{geom.out_size[1]} output; "
            f"use 0 ≤ row < {geom.out_size[0]} and 0 ≤ col < {geom.out_size[1]}"
        )
    (pt, pl), (pb, pr) = geom.pad_before, geom.pad_after
    padded = np.pad(x, ((0, 0), (pt, pb), (pl, pr)))
    (sh, sw), (dh, dw), (kh, kw) = geom.stride, geom.dilation, geom.kernel
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    patch = padded[:, row * sh: row * sh + span[0]: dh, col * sw: col * sw + span[1]: dw]
    return PixelExplanation((row, col), patch.copy(), kernel.copy(), float(bias), activation,
                            corner=(row * sh - pt, col * sw - pl), span=span)
