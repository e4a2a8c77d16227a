"""Kernels for ``biaslab conv``: a named bank, the user's files, random kernels.

A kernel here is a (C, kH, kW) array of weights for one output channel. A 2-D (kH, kW)
kernel applied to a C-channel image is spread evenly over the channels (each gets
``kernel / C``), so its response is the kernel applied to the channel mean — on a grey
image exactly the kernel.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..infra.io import BiaslabError, first_line
from ..infra.validate import check_finite, readable_file

__all__ = ["KERNELS", "MAX_KERNELS", "MAX_KERNEL_SIZE", "named_kernel", "load_kernel_file", "random_kernels",
           "spread_over_channels"]

#: At most this many kernels in one ``biaslab conv`` run (named, from a file and random together):
#: each gets a figure.
MAX_KERNELS = 16
#: A kernel of ``biaslab conv`` has at most this many rows and columns.
MAX_KERNEL_SIZE = 31

#: The classic image-processing kernels, as 2-D weights (cross-correlation orientation).
KERNELS: dict[str, np.ndarray] = {
    "sobel-x": np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]),  # responds to left→right brightening
    "sobel-y": np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]),  # top→bottom brightening
    "laplacian": np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
    "gaussian": np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0,
    "sharpen": np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
    "emboss": np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]),
}


def spread_over_channels(kernel: np.ndarray, channels: int) -> np.ndarray:
    """(kH, kW) → (C, kH, kW) with ``kernel / C`` in every channel; (C, kH, kW) is checked and kept."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim == 2:
        return np.repeat(kernel[None] / channels, channels, axis=0)
    if kernel.ndim == 3 and kernel.shape[0] == channels:
        return kernel
    raise BiaslabError(
        f"a kernel for a {channels}-channel image must have shape (kH, kW) or ({channels}, kH, kW), "
        f"got {kernel.shape}"
    )


def named_kernel(name: str, channels: int = 1) -> np.ndarray:
    """The bank's kernel ``name`` as (C, kH, kW)."""
    try:
        kernel = KERNELS[name]
    except KeyError:
        raise BiaslabError(f"unknown kernel {name!r}; choose one of {', '.join(KERNELS)}") from None
    return spread_over_channels(kernel, channels)


#: A .txt kernel grid larger than this (bytes) is refused before it is parsed.
MAX_TEXT_KERNEL_BYTES = 1024**2


def _load_text_grid(p: Path) -> np.ndarray:
    if p.stat().st_size > MAX_TEXT_KERNEL_BYTES:
        raise BiaslabError(f"kernel file {p} is over {MAX_TEXT_KERNEL_BYTES // 1024} KiB; a kernel grid is small")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "input contained no data" and the like: refused, not printed
            return np.loadtxt(p, ndmin=2)
    except (OSError, ValueError, UserWarning) as exc:
        raise BiaslabError(f"cannot read kernel file {p}: {first_line(exc)[:200]}") from None


def load_kernel_file(path: str | Path, channels: int = 1) -> list[np.ndarray]:
    """Kernels from a .npy file ((kH, kW), (C, kH, kW) or (K, C, kH, kW)) or a .txt grid (kH, kW).

    Returns a list of (C, kH, kW) arrays. Raises :class:`BiaslabError` for a missing or
    unreadable file, a wrong shape or non-finite weights.
    """
    p = readable_file("kernel_file", path, ".npy or .txt file of weights")
    if p.suffix.lower() not in (".npy", ".txt"):
        raise BiaslabError(f"kernel file {p} must end in .npy or .txt")
    if p.suffix.lower() == ".npy":
        from ..data.formats import load_npy

        weights = load_npy(p, "kernel file")  # header checked before the weights are read
    else:
        weights = _load_text_grid(p)
    if not np.issubdtype(weights.dtype, np.number) or np.issubdtype(weights.dtype, np.complexfloating):
        raise BiaslabError(f"kernel file {p} holds {weights.dtype} values; it must hold real numbers")
    weights = weights.astype(np.float64)
    if weights.ndim not in (2, 3, 4) or weights.size == 0:
        raise BiaslabError(
            f"kernel file {p} has shape {weights.shape}; use (kH, kW), ({channels}, kH, kW) or (K, {channels}, kH, kW)"
        )
    check_finite(f"kernel file {p}", weights)
    if weights.ndim == 4:
        if weights.shape[1] != channels:
            raise BiaslabError(
                f"kernel file {p} has shape {weights.shape} but the image has {channels} channel(s); "
                f"use shape (K, {channels}, kH, kW)"
            )
        return list(weights)
    try:
        return [spread_over_channels(weights, channels)]
    except BiaslabError as exc:
        raise BiaslabError(f"kernel file {p}: {exc}") from None


def random_kernels(count: int, channels: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` random (C, size, size) kernels, He-normal: weights ~ N(0, 2 / (C·size²))."""
    if count < 0:
        raise BiaslabError(f"`random` must be ≥ 0, got {count}")
    if size < 1:
        raise BiaslabError(f"`kernel_size` must be ≥ 1, got {size}")
    std = np.sqrt(2.0 / (channels * size * size))
    return list(rng.normal(0.0, std, size=(count, channels, size, size)))
