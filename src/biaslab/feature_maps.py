"""``biaslab conv``: feature maps of a real image with and without bias.

Each kernel gives one map of weighted sums Σ(input * kernel); each bias b turns it into the
feature map activation(Σ + b). The bias is the unit's threshold: with a ReLU a unit fires
exactly where Σ(input * kernel) > −b, so a negative bias keeps only the strongest responses
and a positive one lets almost everything through. Inputs are scaled to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, activate
from .conv import Padding, PixelExplanation, explain_pixel, weighted_sum
from .io import BiaslabError
from .render.report import Section

__all__ = ["KernelMap", "ConvResult", "prepare_image", "downscale", "run_conv", "DEFAULT_KERNELS", "MAX_KERNELS"]

DEFAULT_KERNELS = ("gaussian", "sobel-x", "laplacian")
MAX_KERNELS = 16  # each kernel gets a figure
SWEEP_POINTS = 61


@dataclass
class KernelMap:
    """One kernel and its map of weighted sums Σ(input * kernel) (before any bias)."""

    name: str
    kernel: np.ndarray  # (C, kH, kW)
    total: np.ndarray  # (H_out, W_out)

    def pre_activation(self, bias: float) -> np.ndarray:
        """Σ(input * kernel) + bias."""
        return self.total + bias

    def output(self, bias: float, activation: str) -> np.ndarray:
        """The feature map activation(Σ(input * kernel) + bias)."""
        return activate(self.pre_activation(bias), activation)

    def stats(self, bias: float, activation: str) -> dict[str, float]:
        """Fraction of units past the threshold (Σ > −bias), mean and max activation."""
        out = self.output(bias, activation)
        return {
            "bias": bias,
            "threshold": -bias + 0.0,
            "fraction_active": float(np.mean(self.total > -bias)),
            "mean_activation": float(out.mean()),
            "max_activation": float(out.max()),
        }


@dataclass
class ConvResult:
    """Feature maps of one image for several kernels and biases."""

    image: np.ndarray  # (C, H, W) in [0, 1]
    source: str
    original_size: tuple[int, int]  # (H, W) before downscaling
    maps: list[KernelMap]
    biases: list[float]
    activation: str
    explanations: list[list[PixelExplanation]] | None = None  # [kernel][bias]
    torch_max_abs_diff: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    command: str = "conv"

    def stats(self) -> list[dict[str, Any]]:
        return [{"kernel": m.name, **m.stats(b, self.activation)} for m in self.maps for b in self.biases]

    def sweep_biases(self) -> np.ndarray:
        """A bias range wide enough to take every map from (almost) all to (almost) no active units."""
        reach = max(float(np.quantile(np.abs(m.total), 0.99)) for m in self.maps)
        half = max(1.0, 1.1 * max(abs(b) for b in self.biases), 1.1 * reach)
        return np.linspace(-half, half, SWEEP_POINTS)

    def sweep(self) -> dict[str, Any]:
        """Fraction active and mean activation of each map over :meth:`sweep_biases`."""
        biases = self.sweep_biases()
        curves = {}
        for m in self.maps:
            ordered = np.sort(m.total, axis=None)
            above = ordered.size - np.searchsorted(ordered, -biases, side="right")  # count of Σ > −b
            curves[m.name] = {
                "fraction_active": above / ordered.size,
                "mean_activation": np.array([m.output(b, self.activation).mean() for b in biases]),
            }
        return {"bias": biases, "kernels": curves}

    def explain_dict(self) -> dict[str, Any] | None:
        if not self.explanations:
            return None
        row, col = self.explanations[0][0].position
        kernels = []
        for m, per_bias in zip(self.maps, self.explanations):
            e = per_bias[0]
            kernels.append({
                "kernel": m.name,
                "patch": e.patch,
                "weights": e.kernel,
                "product": e.product,
                "sum": e.total,
                "biases": [
                    {"bias": x.bias, "pre_activation": x.pre_activation, "output": x.output,
                     "feature_map": float(m.output(x.bias, self.activation)[row, col])}
                    for x in per_bias
                ],
            })
        return {"position": [row, col], "activation": self.activation, "kernels": kernels}

    def to_dict(self) -> dict[str, Any]:
        c, h, w = self.image.shape
        stats = self.stats()
        return {
            "image": {"source": self.source, "channels": c, "height": h, "width": w,
                      "original_height": self.original_size[0], "original_width": self.original_size[1]},
            "output_shape": list(self.maps[0].total.shape),
            "activation": self.activation,
            "biases": self.biases,
            "kernels": [
                {
                    "name": m.name,
                    "weights": m.kernel,
                    "sum_min": float(m.total.min()),
                    "sum_max": float(m.total.max()),
                    "sum_mean": float(m.total.mean()),
                    "biases": [{k: v for k, v in s.items() if k != "kernel"} for s in stats if s["kernel"] == m.name],
                }
                for m in self.maps
            ],
            "sweep": self.sweep(),
            "explain": self.explain_dict(),
            "check": None if self.torch_max_abs_diff is None else {
                "reference": "torch.nn.functional.conv2d", "max_abs_diff": self.torch_max_abs_diff,
            },
            "params": self.params,
            "summary": self.summary(),
        }

    def _explain_text(self) -> str:
        """The --explain breakdown as plain-text tables (3×3 grids side by side, larger ones stacked)."""
        d = self.explain_dict()
        if d is None:
            return ""
        row, col = d["position"]
        lines = [f"Output ({row}, {col}) = {self.activation}(Σ(input * kernel) + b):"]
        for k, per_bias in zip(d["kernels"], self.explanations or []):
            e = per_bias[0]
            channels = e.patch.shape[0]
            grids = [("input patch", e.patch.sum(0)), ("kernel", e.kernel.sum(0)), ("input * kernel", e.product.sum(0))]
            summed = f" (each grid summed over the {channels} channels)" if channels > 1 else ""
            lines.append(f"  {k['kernel']}{summed}:")
            width = 7 * e.kernel.shape[2]
            rows = [["".join(f"{v:7.3f}" for v in g[r]) for r in range(g.shape[0])] for _, g in grids]
            if e.kernel.shape[2] <= 3:
                lines.append("    " + "  ".join(f"{name:<{width}s}" for name, _ in grids))
                lines += ["    " + "  ".join(cells) for cells in zip(*rows)]
            else:
                for (name, _), block in zip(grids, rows):
                    lines += [f"    {name}:", *(f"    {cells}" for cells in block)]
            lines.append(f"    Σ(input * kernel) = {k['sum']:.6g}")
            lines += [
                f"    b = {b['bias']:+g}: Σ + b = {b['pre_activation']:.4g} → {self.activation} = {b['output']:.4g}"
                f" (feature map: {b['feature_map']:.4g})"
                for b in k["biases"]
            ]
        return "\n".join(lines)

    def summary(self) -> str:
        explain = self._explain_text()
        return f"{self._prose()}\n\n{explain}" if explain else self._prose()

    def _prose(self) -> str:
        c, h, w = self.image.shape
        oh, ow = self.original_size
        shrunk = "" if (h, w) == (oh, ow) else f", block-averaged from {oh}×{ow}"
        parts = [
            f"Feature maps {self.activation}(Σ(input * kernel) + b) of {self.source} "
            f"({h}×{w}{shrunk}, {'colour' if c == 3 else 'grey'}, values in [0, 1]). The bias is each unit's "
            f"threshold: it is active exactly where Σ(input * kernel) > −b, so b = 0 (no bias) cuts at zero, "
            "a negative bias keeps only strong responses and a positive one lets weak ones through."
        ]
        for m in self.maps:
            cells = [
                f"b = {s['bias']:g}: {100 * s['fraction_active']:.1f}% active, mean {s['mean_activation']:.3g}"
                for s in (m.stats(b, self.activation) for b in self.biases)
            ]
            parts.append(f"{m.name}: " + "; ".join(cells) + ".")
        if self.torch_max_abs_diff is not None:
            parts.append(
                f"The NumPy conv2d agrees with torch.nn.functional.conv2d to max |difference| "
                f"{self.torch_max_abs_diff:.2g}."
            )
        d = self.explain_dict()
        if d is not None:
            parts += [
                f"Output {tuple(d['position'])} of {k['kernel']}: Σ(input * kernel) = {k['sum']:.4g}; "
                + "; ".join(f"+ b = {b['bias']:g} → {self.activation} {b['output']:.4g}" for b in k["biases"]) + "."
                for k in d["kernels"]
            ]
        return "\n\n".join(parts)

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        from .render.legacy_plots.conv import plot_activity, plot_explain, plot_feature_maps

        paths = [plot_feature_maps(self, i, out_dir, fmt) for i in range(len(self.maps))]
        paths.append(plot_activity(self, out_dir, fmt))
        if self.explanations:
            paths.append(plot_explain(self, out_dir, fmt))
        return paths

    def section(self, figures: list[Path]) -> Section:
        rows = [
            {
                "kernel": s["kernel"], "bias": s["bias"], "active where Σ >": s["threshold"],
                "% active": 100 * s["fraction_active"], "mean activation": s["mean_activation"],
                "max activation": s["max_activation"],
            }
            for s in self.stats()
        ]
        return Section(f"Conv feature maps with and without bias ({self.activation})",
                       self._prose(), figures, rows)


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
    from .images import builtin_image, load_image

    if image is not None and builtin is not None:
        raise BiaslabError("give either --builtin or --image, not both")
    if max_size < 1:
        raise BiaslabError(f"--max-size must be ≥ 1, got {max_size}")
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
    from .kernels import load_kernel_file, named_kernel, random_kernels

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


def _torch_max_abs_diff(image: np.ndarray, maps: list[KernelMap], biases: list[float], stride: int,
                        padding: Padding) -> float:
    """Largest |Σ(input * kernel) + b − torch.nn.functional.conv2d(...)| over all kernels and biases."""
    import torch

    diff = 0.0
    x = torch.from_numpy(image[None])
    for m in maps:
        weight = torch.from_numpy(np.repeat(m.kernel[None], len(biases), axis=0))
        ref = torch.nn.functional.conv2d(x, weight, torch.tensor(biases, dtype=torch.float64),
                                         stride=stride, padding=padding)[0].numpy()
        ours = np.stack([m.pre_activation(b) for b in biases])
        diff = max(diff, float(np.abs(ours - ref).max()))
    return diff


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
        sobel-x, laplacian) when none is given.
    biases, activation : the biases to compare and the activation.
    explain : (row, col) of an output value to break down into patch, kernel, product, sum,
        + bias and activation.
    stride, padding : of the convolution (default: stride 1, "same" size as the image).
    max_size : images with a side longer than this are block-averaged down (0 < max_size).
    check_torch : also compute the maps with ``torch.nn.functional.conv2d`` and record the
        largest difference.
    seed : for the random kernels.
    """
    from .progress import progress_bar

    if activation not in ACTIVATIONS:
        raise BiaslabError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    biases = [float(b) + 0.0 for b in biases]
    if not biases:
        raise BiaslabError("give at least one --bias value")
    if not all(math.isfinite(b) for b in biases):
        raise BiaslabError(f"--bias values must be finite numbers, got {biases}")
    picture, source, original_size = prepare_image(builtin, image, color, max_size)
    rng = np.random.default_rng(seed)
    chosen = _kernels(kernels, kernel_file, random, kernel_size, picture.shape[0], rng)
    maps = []
    with progress_bar(len(chosen), "conv: feature maps", progress) as advance:
        for name, kernel in chosen:
            total = weighted_sum(picture, kernel[None], stride=stride, padding=padding)[0]
            maps.append(KernelMap(name, kernel, total))
            advance()
    explanations = None
    if explain is not None:
        explanations = [
            [explain_pixel(picture, m.kernel, explain, b, activation, stride=stride, padding=padding) for b in biases]
            for m in maps
        ]
    diff = _torch_max_abs_diff(picture, maps, biases, stride, padding) if check_torch else None
    params = {
        "builtin": builtin, "image": None if image is None else str(image), "color": color,
        "kernels": [n for n, _ in chosen], "kernel_file": None if kernel_file is None else str(kernel_file),
        "random": random, "kernel_size": kernel_size, "stride": stride, "padding": padding,
        "max_size": max_size, "seed": seed,
    }
    return ConvResult(picture, source, original_size, maps, biases, activation, explanations, diff, params)
