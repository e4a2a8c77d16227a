"""``biaslab conv``: feature maps of a real image with and without bias.

Each kernel gives one map of weighted sums Σ(input * kernel); each bias b turns it into the
feature map activation(Σ + b). With a ReLU a unit fires exactly where Σ(input * kernel) > −b
(checked on every map: claim ``fires_where_sum_exceeds_minus_b``). Inputs are scaled to [0, 1].
Every option is checked before any map is computed, so a bad one costs nothing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...math.activations import ACTIVATIONS, activate
from ...math.conv import (
    Padding,
    conv_output_shape,
    explain_pixel,
    fraction_active,
    padding_border,
    rounding_bound,
    weighted_sum,
)
from ...infra.io import BiaslabError
from ...math.kernels import MAX_KERNEL_SIZE, MAX_KERNELS
from ...infra.validate import bounded_int, check_choice, finite_number
from ...results.conv import (
    BiasOutput,
    BiasStats,
    ConvResult,
    Explanation,
    ImageInfo,
    KernelExplanation,
    KernelMap,
    Sweep,
    SweepCurve,
    TorchCheck,
)
from .claims import TORCH_TOLERANCE, conv_claims

__all__ = ["ConvPlan", "plan_conv", "convolve_all", "analyse_maps", "prepare_image", "downscale", "block_mean", "kernel_sums", "run_conv", "DEFAULT_KERNELS",
           "MAX_KERNELS", "MAX_BIASES", "MAX_ABS_BIAS", "MAX_KERNEL_SIZE", "MAX_PADDING", "MAX_STRIDE", "MAX_IMAGE_SIDE",
           "TORCH_TOLERANCE"]

DEFAULT_KERNELS = ("gaussian", "sobel-x", "laplacian")
#: At most this many biases (``--bias``): each is a column of every feature-map figure.
MAX_BIASES = 12
#: Biases must be finite with |b| at most this (inputs are in [0, 1]).
MAX_ABS_BIAS = 1e6
#: ``--padding`` adds at most this many zeros on each side.
MAX_PADDING = 64
#: ``--stride`` is at most this.
MAX_STRIDE = 64
#: ``--max-size`` is at most this: images are block-averaged to at most this many pixels a side.
MAX_IMAGE_SIDE = 2048
#: Biases in the sweep of active share and mean activation.
SWEEP_POINTS = 61
#: Stored maps (previews) are block-averaged to at most this many pixels a side ...
PREVIEW_SIDE = 256
#: ... and to at most this many values in all (every map and the input image together).
PREVIEW_BUDGET = 1_000_000
#: The explanation's view of the input reaches this many pixels (at least) around the receptive field.
EXPLAIN_MARGIN = 12


def downscale(image: np.ndarray, max_size: int) -> np.ndarray:
    """Shrink (H, W[, C]) by the smallest integer factor that brings both sides to ≤ ``max_size``.

    Block averaging (a box filter, so no aliasing); edge rows/columns that do not fill a block
    are dropped. Images already small enough are returned unchanged.
    """
    h, w = image.shape[:2]
    factor = math.ceil(max(h, w) / max_size)
    if factor <= 1:
        return image
    hh, ww = h // factor, w // factor
    if hh == 0 or ww == 0:
        return image
    blocks = image[: hh * factor, : ww * factor].reshape(hh, factor, ww, factor, *image.shape[2:])
    return blocks.mean(axis=(1, 3))


def prepare_image(
    builtin: str | None = "camera", image: str | Path | None = None, color: bool = False, max_size: int = 512
) -> tuple[np.ndarray, str, tuple[int, int]]:
    """Load the input as (C, H, W) in [0, 1] (C = 3 with ``color``, else 1).

    Returns the image, the name of its source and its size (H, W) before any downscaling.
    """
    from ...data.images import builtin_image, load_image

    if image is not None and builtin is not None:
        raise BiaslabError("give either `builtin` or `image`, not both")
    if not 1 <= max_size <= MAX_IMAGE_SIDE:
        raise BiaslabError(f"`max_size` must be ≥ 1 and ≤ {MAX_IMAGE_SIDE}, got {max_size}")
    if image is not None:
        picture, source = load_image(image, color=color), str(image)
    else:
        name = builtin or "camera"
        picture, source = builtin_image(name, color=color), name
    small = downscale(picture, max_size)
    chw = small[None] if small.ndim == 2 else np.moveaxis(small, -1, 0)
    return np.ascontiguousarray(chw), source, picture.shape[:2]


def _kernels(
    names: Sequence[str], kernel_file: str | Path | None, random: int, kernel_size: int, channels: int,
    rng: np.random.Generator,
) -> list[tuple[str, np.ndarray]]:
    from ...math.kernels import load_kernel_file, named_kernel, random_kernels

    chosen = list(dict.fromkeys(names))
    kernels = [(n, named_kernel(n, channels)) for n in chosen]
    if kernel_file is not None:
        loaded = load_kernel_file(kernel_file, channels)
        stem = Path(kernel_file).stem
        kernels += [(stem if len(loaded) == 1 else f"{stem}-{i + 1}", k) for i, k in enumerate(loaded)]
    kernels += [(f"random-{i + 1}", k) for i, k in enumerate(random_kernels(random, channels, kernel_size, rng))]
    if not kernels:
        kernels = [(n, named_kernel(n, channels)) for n in DEFAULT_KERNELS]
    if len(kernels) > MAX_KERNELS:
        raise BiaslabError(f"{len(kernels)} kernels requested; at most {MAX_KERNELS} (each gets a figure)")
    seen: dict[str, int] = {}
    unique = []
    for name, kernel in kernels:  # a file named like a bank kernel must not hide it in the results
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else f"{name} ({seen[name]})", kernel))
    return unique


def block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` × ``factor`` block of the last two axes; edge blocks may be smaller."""
    a = np.asarray(a, dtype=np.float64)
    if factor <= 1:
        return a.copy()
    h, w = a.shape[-2:]
    rows, cols = np.arange(0, h, factor), np.arange(0, w, factor)
    sums = np.add.reduceat(np.add.reduceat(a, rows, axis=-2), cols, axis=-1)
    counts = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))
    return sums / counts


def _check_options(biases: Sequence[float], activation: str, random: int, kernel_size: int, stride: int,
                   padding: Padding, explain: tuple[int, int] | None) -> list[float]:
    """Every option that can be checked before reading the image; returns the biases as floats."""
    check_choice("activation", activation, list(ACTIVATIONS))
    if not biases:
        raise BiaslabError("give at least one bias value (`biases`)")
    if len(biases) > MAX_BIASES:
        raise BiaslabError(f"{len(biases)} bias values given (`biases`); at most {MAX_BIASES} "
                           "(each is a column of every figure)")
    values = [finite_number("biases", b, -MAX_ABS_BIAS, MAX_ABS_BIAS) + 0.0 for b in biases]
    bounded_int("random", random, 0, MAX_KERNELS)
    bounded_int("kernel_size", kernel_size, 1, MAX_KERNEL_SIZE)
    bounded_int("stride", stride, 1, MAX_STRIDE)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise BiaslabError(f"padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
        if padding == "same" and stride != 1:
            raise BiaslabError(f"padding='same' is not supported for strided convolutions (stride={stride}); "
                               "use `padding` 'valid' or a number")
    else:
        for p in (padding, padding) if np.isscalar(padding) else tuple(padding):
            bounded_int("padding", p, 0, MAX_PADDING)
    if explain is not None and (len(explain) != 2 or min(explain) < 0):
        raise BiaslabError(f"`explain` needs ROW,COL, two integers ≥ 0 (got {explain!r})")
    return values


def _check_geometry(image_size: tuple[int, int], kernels: list[tuple[str, np.ndarray]], stride: int,
                    padding: Padding, explain: tuple[int, int] | None) -> list[tuple[int, int]]:
    """The output size of every kernel; the explained position must lie inside each."""
    shapes = []
    for name, kernel in kernels:
        if max(kernel.shape[1:]) > MAX_KERNEL_SIZE:
            raise BiaslabError(f"kernel {name} is {kernel.shape[1]}×{kernel.shape[2]}; at most "
                               f"{MAX_KERNEL_SIZE}×{MAX_KERNEL_SIZE}")
        out = conv_output_shape(image_size, kernel.shape[1:], stride, padding)
        if explain is not None and not (explain[0] < out[0] and explain[1] < out[1]):
            raise BiaslabError(f"position ({explain[0]}, {explain[1]}) is outside the {out[0]}×{out[1]} output"
                               f"{'' if len(kernels) == 1 else ' of kernel ' + name}; "
                               f"use 0 ≤ row < {out[0]} and 0 ≤ col < {out[1]}")
        shapes.append(out)
    return shapes


def kernel_sums(picture: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: Padding = "same") -> np.ndarray:
    """Σ(input * kernel) of one (C, H, W) image and one (C, kH, kW) kernel, exact zeros kept exact.

    Where the computed sum is within its rounding error of 0 (:func:`~biaslab.math.conv.rounding_bound`)
    it is set to exactly 0: an edge kernel over a flat region sums to 0, and whether rounding
    leaves +1e-17 or −1e-17 must not decide whether the unit fires. On camera with sobel-x this
    changes the share of units with Σ > 0 from 46.9 % (im2col's summation order) or 46.6 % (the
    rows method's) to 46.3 %, the share exact integer arithmetic gives.
    """
    total = weighted_sum(picture, kernel[None], stride=stride, padding=padding)[0]
    bound = rounding_bound(picture, kernel[None], stride=stride, padding=padding)[0]
    total[np.abs(total) <= bound] = 0.0
    return total


def _stats(total: np.ndarray, bias: float, activation: str) -> BiasStats:
    out = activate(total + bias, activation)
    return BiasStats(bias=bias, threshold=-bias + 0.0, fraction_active=fraction_active(total, bias),
                     mean_activation=float(out.mean()), max_activation=float(out.max()))


def _sweep_biases(totals: list[np.ndarray], biases: list[float]) -> np.ndarray:
    """A bias range wide enough to take every map from (almost) no to (almost) all active units."""
    reach = max(float(np.quantile(np.abs(t), 0.99)) for t in totals)
    half = max(1.0, 1.1 * max(abs(b) for b in biases), 1.1 * reach)
    return np.linspace(-half, half, SWEEP_POINTS)


def _preview_factor(out_shape: tuple[int, int], maps: int) -> int:
    """Block size so that previews have ≤ PREVIEW_SIDE pixels a side and ≤ PREVIEW_BUDGET values in all."""
    side = math.ceil(max(out_shape) / PREVIEW_SIDE)
    budget = math.ceil(math.sqrt(maps * out_shape[0] * out_shape[1] / PREVIEW_BUDGET))
    return max(1, side, budget)


def _explain(picture: np.ndarray, name: str, kernel: np.ndarray, total: np.ndarray, position: tuple[int, int],
             biases: list[float], activation: str, stride: int, padding: Padding) -> KernelExplanation:
    """The breakdown of one output value for one kernel, at every bias, with the input around it."""
    per_bias = [explain_pixel(picture, kernel, position, b, activation, stride=stride, padding=padding)
                for b in biases]
    e = per_bias[0]
    _, h, w = picture.shape
    lo, hi = [], []
    for c, s, n in zip(e.corner, e.span, (h, w)):
        reach = max(4 * s, EXPLAIN_MARGIN)
        centre = min(max(c + s // 2, 0), n - 1)
        lo.append(max(0, centre - reach))
        hi.append(min(n, centre + reach + 1))
    kh, kw = kernel.shape[1:]
    rows = e.corner[0] + np.arange(kh) * ((e.span[0] - 1) // max(kh - 1, 1))
    cols = e.corner[1] + np.arange(kw) * ((e.span[1] - 1) // max(kw - 1, 1))
    in_padding = ((rows < 0) | (rows >= h))[:, None] | ((cols < 0) | (cols >= w))[None, :]
    row, col = position
    return KernelExplanation(
        kernel=name, patch=e.patch, weights=e.kernel, product=e.product, sum=e.total, corner=e.corner,
        span=e.span, in_padding=in_padding, neighbourhood=picture[:, lo[0]:hi[0], lo[1]:hi[1]].copy(),
        neighbourhood_origin=(lo[0], lo[1]),
        biases=[BiasOutput(bias=x.bias, pre_activation=x.pre_activation, output=x.output,
                           feature_map=float(activate(total[row, col] + x.bias, activation)))
                for x in per_bias],
    )


def _torch_check(image: np.ndarray, kernels: list[tuple[str, np.ndarray]], totals: list[np.ndarray],
                 biases: list[float], stride: int, padding: Padding) -> TorchCheck:
    """Largest |Σ(input * kernel) + b − torch.nn.functional.conv2d(...)| over all kernels and biases."""
    import torch

    diff = 0.0
    x = torch.from_numpy(image[None])
    for (_, kernel), total in zip(kernels, totals):
        weight = torch.from_numpy(np.repeat(kernel[None], len(biases), axis=0))
        with warnings.catch_warnings():  # torch warns that 'same' with an even kernel pads unevenly: known
            warnings.simplefilter("ignore", UserWarning)
            ref = torch.nn.functional.conv2d(x, weight, torch.tensor(biases, dtype=torch.float64),
                                             stride=stride, padding=padding)[0].numpy()
        ours = np.stack([total + b for b in biases])
        diff = max(diff, float(np.abs(ours - ref).max()))
    return TorchCheck("torch.nn.functional.conv2d", diff, TORCH_TOLERANCE)


def run_conv(
    builtin: str | None = None,
    image: str | Path | None = None,
    color: bool = False,
    kernels: Sequence[str] = (),
    kernel_file: str | Path | None = None,
    random: int = 0,
    kernel_size: int = 3,
    biases: Sequence[float] = (-0.5, 0.0, 0.5),
    activation: str = "relu",
    explain: tuple[int, int] | None = None,
    stride: int = 1,
    padding: Padding = "same",
    max_size: int = 512,
    check_torch: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> ConvResult:
    """Feature maps activation(Σ(image * kernel) + b) for each kernel and bias.

    Parameters
    ----------
    builtin, image : a scikit-image picture (default ``camera``) or a path to an image file.
    color : use the three colour channels instead of grey.
    kernels, kernel_file, random, kernel_size : named bank kernels, kernels from a .npy/.txt
        file, and ``random`` random kernels of ``kernel_size``; the defaults (gaussian,
        sobel-x, laplacian) when none is given. At most :data:`MAX_KERNELS` in all, each at
        most :data:`MAX_KERNEL_SIZE` a side.
    biases, activation : the biases to compare (1 to :data:`MAX_BIASES`, |b| ≤
        :data:`MAX_ABS_BIAS`) and the activation.
    explain : (row, col) of an output value to break down into patch, kernel, product, sum,
        + bias and activation.
    stride, padding : of the convolution (default: stride 1, "same" size as the image);
        stride ≤ :data:`MAX_STRIDE`, padding ≤ :data:`MAX_PADDING`.
    max_size : images with a side longer than this are block-averaged down (1 … :data:`MAX_IMAGE_SIDE`).
    check_torch : also compute the maps with ``torch.nn.functional.conv2d`` and record the
        largest difference (claim ``matches_torch``).
    seed : for the random kernels.
    progress : report progress on stderr, once every input has been checked.

    Returns
    -------
    A :class:`~biaslab.results.conv.ConvResult` with per-kernel statistics, the bias sweep,
    block-averaged maps for the figures, the explanation and the claims of :func:`conv_claims`.
    """
    plan = plan_conv(builtin, image, color, kernels, kernel_file, random, kernel_size, biases, activation, explain,
                     stride, padding, max_size, seed)
    totals = convolve_all(plan, progress)
    maps, sweep, mismatches = analyse_maps(plan, totals)
    explanation = None
    if explain is not None:
        position = (int(explain[0]), int(explain[1]))
        explanation = Explanation(position, [
            _explain(plan.picture, name, kernel, total, position, plan.biases, activation, stride, padding)
            for (name, kernel), total in zip(plan.kernels, totals)])
    check = _torch_check(plan.picture, plan.kernels, totals, plan.biases, stride, padding) if check_torch else None
    c, h, w = plan.picture.shape
    params = {
        "builtin": builtin, "image": None if image is None else str(image), "color": color,
        "kernels": [n for n, _ in plan.kernels], "kernel_file": None if kernel_file is None else str(kernel_file),
        "random": random, "kernel_size": kernel_size, "biases": plan.biases, "activation": activation,
        "explain": None if explain is None else list(explain), "stride": stride, "padding": padding,
        "max_size": max_size, "check_torch": check_torch, "seed": seed,
    }
    units = len(plan.biases) * sum(total.size for total in totals)
    return ConvResult(
        image=ImageInfo(plan.source, c, h, w, int(plan.original_size[0]), int(plan.original_size[1])),
        image_preview=block_mean(plan.picture, plan.preview_factor).astype(np.float32),
        preview_factor=plan.preview_factor, output_shape=plan.output_shapes[0], activation=activation,
        biases=plan.biases, kernels=maps, sweep=sweep, explain=explanation, check=check, params=params,
        claims=conv_claims(maps, sweep, activation, mismatches, units, check, explanation),
    )


@dataclass
class ConvPlan:
    """Every checked input of a conv run: the (C, H, W) picture in [0, 1], the named kernels, the biases,
    the convolution's geometry and the block size of the stored previews."""

    picture: np.ndarray
    source: str
    original_size: tuple[int, int]
    kernels: list[tuple[str, np.ndarray]]
    biases: list[float]
    activation: str
    stride: int
    padding: Padding
    output_shapes: list[tuple[int, int]]
    preview_factor: int


def plan_conv(builtin: str | None, image: str | Path | None, color: bool, kernels: Sequence[str],
              kernel_file: str | Path | None, random: int, kernel_size: int, biases: Sequence[float], activation: str,
              explain: tuple[int, int] | None, stride: int, padding: Padding, max_size: int, seed: int) -> ConvPlan:
    """Check every option, then load the image and the kernels (see :func:`run_conv`)."""
    values = _check_options(biases, activation, random, kernel_size, stride, padding, explain)
    picture, source, original_size = prepare_image(builtin, image, color, max_size)
    chosen = _kernels(kernels, kernel_file, random, kernel_size, picture.shape[0], np.random.default_rng(seed))
    shapes = _check_geometry(picture.shape[1:], chosen, stride, padding, explain)
    largest = max(shapes, key=lambda s: s[0] * s[1])
    factor = _preview_factor(largest, len(chosen) * (len(values) + 1) + picture.shape[0])
    return ConvPlan(picture, source, original_size, chosen, values, activation, stride, padding, shapes, factor)


def convolve_all(plan: ConvPlan, progress: bool = False) -> list[np.ndarray]:
    """Σ(input * kernel) of every kernel: the one convolution the maps, the sweep and the claims share."""
    from ...infra.progress import progress_bar

    totals = []
    with progress_bar(len(plan.kernels), "conv: feature maps", progress) as advance:
        for _, kernel in plan.kernels:
            totals.append(kernel_sums(plan.picture, kernel, plan.stride, plan.padding))
            advance()
    return totals


def analyse_maps(plan: ConvPlan, totals: list[np.ndarray]) -> tuple[list[KernelMap], Sweep, int]:
    """Each kernel's feature maps activation(Σ + b) with their statistics and previews, the sweep of
    the active share over biases, and how many units disagree with "fires exactly where Σ > −b"."""
    biases, activation, factor = plan.biases, plan.activation, plan.preview_factor
    sweep_bias = _sweep_biases(totals, biases)
    maps, curves, mismatches = [], {}, 0
    for (name, kernel), total in zip(plan.kernels, totals):
        outputs = [activate(total + b, activation) for b in biases]
        mismatches += sum(int(np.count_nonzero((o > 0) != (total > -b))) for o, b in zip(outputs, biases))
        maps.append(KernelMap(
            name=name, weights=kernel, output_shape=total.shape, sum_min=float(total.min()), sum_max=float(total.max()),
            sum_mean=float(total.mean()), biases=[_stats(total, b, activation) for b in biases],
            border=padding_border(plan.picture.shape[1:], kernel.shape[1:], plan.stride, plan.padding),
            preview_sum=block_mean(total, factor).astype(np.float32),
            preview_outputs=block_mean(np.stack(outputs), factor).astype(np.float32),
        ))
        curves[name] = SweepCurve(
            fraction_active=np.array([fraction_active(total, b) for b in sweep_bias]),
            mean_activation=np.array([float(activate(total + b, activation).mean()) for b in sweep_bias]),
        )
    return maps, Sweep(sweep_bias, curves), mismatches
