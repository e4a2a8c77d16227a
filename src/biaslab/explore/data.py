"""The numbers the explorer page embeds, computed by the library.

The page recomputes only what a browser reproduces exactly. Everything else comes from here:

- **Regression:** the classic inputs ``X`` and NumPy's standard-normal draws ``ε`` of
  :func:`biaslab.experiments.regression.data.make_line_data` (seed 42). The page builds
  ``y = slope·X + intercept + noise·ε`` in the same order of operations as the library, so
  for any slider setting its data — and its closed-form MSEs — are those of
  ``biaslab regression --slope … --intercept … --noise …``.
- **Conv:** the image (the one ``biaslab conv`` prepares by default), the kernels (the named
  bank and ``random`` He-normal kernels from ``seed``, named like ``biaslab conv --random``)
  and the library's weighted sums Σ(input * kernel) where the page's own float64 sum could
  disagree. The page sums each pixel's taps in row-major order; :func:`browser_weighted_sum`
  does exactly that here, and every pixel whose unit would be on a different side of its
  threshold ``Σ > −b`` than the library's :func:`biaslab.experiments.conv.run.kernel_sums` (the sums
  ``biaslab conv`` counts, exact zeros kept exact) says, at any
  position of the page's bias slider, is shipped with the library's value. The active share
  shown for every slider position is therefore the library's, exactly.

Arrays travel as base64 of their little-endian bytes.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EXPLORE_KERNELS",
    "DEFAULT_RANDOM",
    "BIAS_MIN",
    "BIAS_MAX",
    "BIAS_STEP_HUNDREDTHS",
    "slider_biases",
    "encode_array",
    "decode_array",
    "browser_weighted_sum",
    "explore_kernels",
    "conv_panel",
    "regression_panel",
    "explorer_data",
]

#: The bank kernels offered by the conv panel, in menu order (the ``--kernel`` names).
EXPLORE_KERNELS = ("gaussian", "sobel-x", "sobel-y", "laplacian", "sharpen")
#: Random kernels added after the bank ones by default.
DEFAULT_RANDOM = 2
#: The conv bias slider: from BIAS_MIN to BIAS_MAX in steps of BIAS_STEP_HUNDREDTHS / 100.
BIAS_MIN, BIAS_MAX, BIAS_STEP_HUNDREDTHS = -1.0, 1.0, 1


def slider_biases() -> np.ndarray:
    """Every value the page's conv bias slider can take, as the browser parses it.

    A range input snaps to ``min + k·step`` and reports it as a short decimal ("0.37"),
    which the page parses to the nearest double, as ``float("0.37")`` does here.
    """
    lo, hi = round(BIAS_MIN * 100), round(BIAS_MAX * 100)
    return np.array([float(f"{k / 100:.2f}") for k in range(lo, hi + 1, BIAS_STEP_HUNDREDTHS)])


def encode_array(values: np.ndarray, dtype: str) -> dict[str, Any]:
    """``{"dtype", "shape", "data"}`` with ``data`` the base64 of the little-endian bytes."""
    arr = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(spec: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    raw = base64.b64decode(spec["data"])
    return np.frombuffer(raw, dtype=np.dtype(spec["dtype"]).newbyteorder("<")).reshape(spec["shape"])


def browser_weighted_sum(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Σ(image * kernel) with "same" zero padding, summed the way the page's JavaScript sums it.

    Each pixel starts at 0 and adds ``pixel · weight`` tap by tap in row-major kernel order,
    each product and sum rounded to float64 (JavaScript never fuses them). A tap over the
    padding adds ``0 · weight``, which leaves the sum unchanged, as the page's skipping it does.

    Parameters
    ----------
    image : (H, W) float64.
    kernel : (kH, kW) float64.

    Returns
    -------
    (H, W) float64, bit for bit what the page computes.
    """
    kh, kw = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2  # "same": the odd pixel goes after, as in PyTorch
    h, w = image.shape
    padded = np.pad(image, ((top, kh - 1 - top), (left, kw - 1 - left)))
    total = np.zeros((h, w))
    for i in range(kh):
        for j in range(kw):
            total = total + padded[i:i + h, j:j + w] * kernel[i, j]
    return total


def _disagreements(page: np.ndarray, library: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """Flat indices where ``page > −b`` and ``library > −b`` differ for some b in ``biases``.

    They differ exactly when a threshold t = −b lies in [min, max) of the two values.
    """
    thresholds = np.sort(-biases)
    lo, hi = np.minimum(page, library).ravel(), np.maximum(page, library).ravel()
    between = np.searchsorted(thresholds, hi, side="left") - np.searchsorted(thresholds, lo, side="left")
    return np.flatnonzero(between > 0)


def _encode_image(image: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """The image as the page will decode it: uint8 levels when it is exactly k/255, else float32.

    Returns the encoded spec and the float64 image the page ends up with.
    """
    levels = np.round(image * 255.0)
    if levels.min() >= 0 and levels.max() <= 255 and np.array_equal(levels / 255.0, image):
        return {**encode_array(levels, "uint8"), "scale": 255.0}, levels / 255.0
    as_float32 = image.astype(np.float32)
    return {**encode_array(as_float32, "float32"), "scale": 1.0}, as_float32.astype(np.float64)


def explore_kernels(random: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """The conv panel's kernels as (name, (kH, kW) weights): the bank, then ``random-1`` … ``random-N``.

    The random ones are those of ``biaslab conv --random N --seed SEED`` (He-normal, 3×3,
    drawn from ``numpy.random.default_rng(seed)``).
    """
    from ..math.kernels import named_kernel, random_kernels

    bank = [(name, named_kernel(name, 1)[0]) for name in EXPLORE_KERNELS]
    drawn = random_kernels(random, 1, 3, np.random.default_rng(seed))
    return bank + [(f"random-{i + 1}", k[0]) for i, k in enumerate(drawn)]


def conv_panel(
    builtin: str | None = None, image: str | Path | None = None, max_size: int = 512,
    random: int = DEFAULT_RANDOM, seed: int = 0,
) -> dict[str, Any]:
    """The conv panel's data: image, kernels, and the library's Σ where the page's sum could disagree.

    Parameters
    ----------
    builtin, image, max_size : as for ``biaslab conv`` (default: the ``camera`` picture,
        grey, block-averaged to at most 512 pixels a side).
    random, seed : number of random kernels and their seed.

    Returns
    -------
    A JSON-ready dict: ``source``, ``original_size``, ``image`` (encoded), ``bias_slider``
    (min, max, step) and ``kernels`` (name, weights, Σ range, corrections: flat indices and
    the library's float64 values).
    """
    from ..experiments.conv.run import kernel_sums, prepare_image

    picture, source, original_size = prepare_image(builtin, image, False, max_size)
    grey = picture[0]
    encoded, page_image = _encode_image(grey)
    biases = slider_biases()
    kernels = []
    for name, weights in explore_kernels(random, seed):
        library = kernel_sums(picture, weights[None])
        page = browser_weighted_sum(page_image, weights)
        fix = _disagreements(page, library, biases)
        kernels.append({
            "name": name,
            "weights": weights.tolist(),
            "sum_min": float(library.min()),
            "sum_max": float(library.max()),
            "fix_index": encode_array(fix, "uint32"),
            "fix_value": encode_array(library.ravel()[fix], "float64"),
        })
    return {
        "source": source,
        "original_size": list(original_size),
        "image": encoded,
        "bias_slider": {"min": BIAS_MIN, "max": BIAS_MAX, "step": BIAS_STEP_HUNDREDTHS / 100},
        "kernels": kernels,
    }


def regression_panel() -> dict[str, Any]:
    """The classic data's inputs and noise draws, and its defaults (seed 42, 50 points, y = 3x + 2 + N(0, 2)).

    ``unit_noise`` is what :func:`biaslab.experiments.regression.data.make_line_data` adds at noise 1 on a flat
    line; at noise σ it adds ``σ·unit_noise`` (NumPy's ``normal(0, σ)`` is ``0 + σ·gauss``).
    """
    from ..experiments.regression.data import make_line_data

    defaults = {"n": 50, "slope": 3.0, "intercept": 2.0, "noise": 2.0, "x_min": 0.0, "x_max": 10.0, "seed": 42}
    x, unit = make_line_data(defaults["n"], 0.0, 0.0, 1.0, defaults["x_min"], defaults["x_max"], defaults["seed"])
    return {"defaults": defaults, "x": x[:, 0].tolist(), "unit_noise": unit[:, 0].tolist()}


def explorer_data(
    builtin: str | None = None, image: str | Path | None = None, max_size: int = 512,
    random: int = DEFAULT_RANDOM, seed: int = 0, run: str | Path | None = None,
) -> dict[str, Any]:
    """Everything the page embeds: ``conv`` (:func:`conv_panel`), ``regression``, the version, and
    ``run`` (:func:`biaslab.explore.runs.run_panel` of the directory ``run``, or None).
    """
    from .. import __version__
    from .runs import run_panel

    saved = None if run is None else run_panel(run)  # a bad directory fails before the image work
    return {
        "biaslab_version": __version__,
        "seed": seed,
        "conv": conv_panel(builtin, image, max_size, random, seed),
        "regression": regression_panel(),
        "run": saved,
    }
