"""Images as float arrays in [0, 1]: scikit-image's bundled pictures and the user's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..infra.io import BiaslabError
from ..infra.validate import MAX_IMAGE_PIXELS, check_finite

__all__ = ["BUILTIN_IMAGES", "builtin_image", "open_image", "load_image", "to_grey", "list_images"]

#: Natural images bundled with scikit-image (no download needed).
BUILTIN_IMAGES = (
    "camera", "astronaut", "coffee", "brick", "grass", "gravel", "coins", "moon",
    "text", "page", "chelsea", "rocket", "clock", "cell", "immunohistochemistry",
    "hubble_deep_field", "retina",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _as_float(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == bool:
        return img.astype(np.float64)
    if np.issubdtype(img.dtype, np.integer):
        return img.astype(np.float64) / np.iinfo(img.dtype).max
    img = img.astype(np.float64)
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img


def to_grey(img: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) → (H, W) with ITU-R 601 luma weights; grey images pass through."""
    if img.ndim == 2:
        return img
    rgb = img[..., :3]
    return rgb @ np.array([0.299, 0.587, 0.114])


def _shape(img: np.ndarray, color: bool) -> np.ndarray:
    img = _as_float(img)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]
    if color:
        return np.stack([img] * 3, axis=-1) if img.ndim == 2 else img
    return to_grey(img)


def builtin_image(name: str, color: bool = False) -> np.ndarray:
    """Return a scikit-image bundled image as float64 in [0, 1]: (H, W) grey or (H, W, 3)."""
    if name not in BUILTIN_IMAGES:
        raise BiaslabError(
            f"unknown built-in image {name!r}; choose one of {', '.join(BUILTIN_IMAGES)}"
        )
    import skimage.data

    return _shape(getattr(skimage.data, name)(), color)


def open_image(path: str | Path):
    """Open an image file lazily (header only) and check its size against :data:`MAX_IMAGE_PIXELS`.

    Returns an open ``PIL.Image.Image`` (use it in a ``with`` block). A missing, unreadable
    or corrupt file, and an image whose header claims too many pixels (a decompression bomb),
    raise :class:`BiaslabError` before any pixel is decoded.
    """
    import warnings

    from PIL import Image

    p = Path(path)
    if not p.is_file():
        raise BiaslabError(f"image {p} does not exist or is not a file; pass the path of a PNG or JPEG file")
    # PIL's guard, with our limit: it checks the header's size when the file is opened (a warning
    # over the limit, made an error here; an error over twice the limit, also for any other reader).
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(p)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BiaslabError(
            f"image {p} is too large: its header claims more than {MAX_IMAGE_PIXELS:,} pixels (the limit); "
            "downscale it first"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BiaslabError(f"cannot read image {p}: {exc}; use a PNG, JPEG or TIFF file") from None
    return im


def load_image(path: str | Path, color: bool = False) -> np.ndarray:
    """Read a PNG/JPEG/... file as float64 in [0, 1]: (H, W) grey or (H, W, 3) with ``color``.

    The header is checked first (:func:`open_image`); NaN or infinite pixels (float TIFF) are refused.
    """
    p = Path(path)
    with open_image(p) as im:
        try:
            im.load()
            if im.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F", "1"):
                im = im.convert("RGB")
            arr = np.asarray(im)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise BiaslabError(f"cannot read image {p}: {exc}; use a PNG, JPEG or TIFF file") from None
    if arr.size == 0:
        raise BiaslabError(f"image {p} is empty")
    check_finite(f"image {p}", arr)
    return _shape(arr, color)


def list_images(directory: str | Path) -> list[Path]:
    """All image files directly inside ``directory``, sorted by name."""
    d = Path(directory)
    if not d.is_dir():
        raise BiaslabError(f"{d} is not a directory of images")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise BiaslabError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {d}")
    return files
