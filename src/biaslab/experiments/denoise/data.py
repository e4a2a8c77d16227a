"""Images for the denoising experiment: the training and test pictures, patches, and noise."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...infra.io import BiaslabError
from ...infra.validate import check_finite, finite_number, param

__all__ = ["TRAIN_IMAGES", "TEST_IMAGES", "MAX_SIGMA", "sample_patches", "center_crop", "load_sets", "add_noise",
           "check_sigma"]

#: scikit-image pictures used for training patches: natural photographs, documents,
#: microscopy and textures.
TRAIN_IMAGES = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cell",
    "page", "text", "brick", "grass", "moon",
)
#: Held-out test pictures, never seen in training: two photographs, a texture, an object.
TEST_IMAGES = ("camera", "coins", "gravel", "clock")
#: Largest noise level accepted, on the 0–255 scale: noise as strong as the whole intensity range.
MAX_SIGMA = 255.0


def check_sigma(name: str, sigma: float, positive: bool = False) -> float:
    """``sigma`` as a float in [0, :data:`MAX_SIGMA`] (``(0, MAX_SIGMA]`` if ``positive``), else a
    :class:`BiaslabError` naming the option ``name``."""
    return finite_number(f"{param(name)} (a noise level on the 0-255 scale)", sigma, 0.0, MAX_SIGMA, open_low=positive)


def sample_patches(images: Sequence[np.ndarray], n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random ``size``×``size`` crops, randomly rotated by 90° steps and flipped.

    Images are chosen with probability proportional to their area. Returns (n, 1, size, size) float32.
    """
    areas = np.array([img.shape[0] * img.shape[1] for img in images], dtype=np.float64)
    which = rng.choice(len(images), size=n, p=areas / areas.sum())
    out = np.empty((n, 1, size, size), dtype=np.float32)
    for k, i in enumerate(which):
        img = images[i]
        r = rng.integers(0, img.shape[0] - size + 1)
        c = rng.integers(0, img.shape[1] - size + 1)
        patch = np.rot90(img[r:r + size, c:c + size], k=int(rng.integers(4)))
        out[k, 0] = patch[:, ::-1] if rng.integers(2) else patch
    return out


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central ``size``×``size`` square of ``img`` (H, W, ...)."""
    r, c = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[r:r + size, c:c + size]


def load_sets(images: str | Path | None) -> tuple[list[str], list[np.ndarray], list[str], list[np.ndarray]]:
    """(train names, train images, test names, test images), greyscale float32 in [0, 1].

    ``images`` is a folder of the user's pictures (the last fifth, at least one, held out for
    testing), or None for the bundled scikit-image pictures.
    """
    from ...data.images import builtin_image, list_images, load_image

    if images is None:
        train = [(n, builtin_image(n)) for n in TRAIN_IMAGES]
        test = [(n, builtin_image(n)) for n in TEST_IMAGES]
    else:
        files = list_images(images)
        if len(files) < 2:
            raise BiaslabError(
                f"`images` {images} holds {len(files)} image; give at least 2 (one is held out for testing)"
            )
        n_test = max(1, len(files) // 5)
        loaded = [(f.name, check_finite(f"image {f}", load_image(f))) for f in files]
        train, test = loaded[:-n_test], loaded[-n_test:]

    def split(pairs: list[tuple[str, np.ndarray]]) -> tuple[list[str], list[np.ndarray]]:
        return [n for n, _ in pairs], [np.ascontiguousarray(img, dtype=np.float32) for _, img in pairs]

    return (*split(train), *split(test))


def add_noise(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``clean`` plus Gaussian noise of standard deviation ``sigma`` on the 0–255 scale (images in [0, 1])."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
    return noise.mul_(sigma / 255.0).add_(clean)  # in place: one image-sized allocation
