"""Images as float arrays in [0, 1]: scikit-image's bundled pictures and the user's files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .io import BiaslabError
from .validate import check_finite

__all__ = ["BUILTIN_IMAGES", "MAX_IMAGE_PIXELS", "builtin_image", "load_image", "to_grey", "list_images"]

#: Images whose header claims more pixels than this are refused before they are decoded
#: (a small file can claim 100000×100000 pixels: a decompression bomb).
MAX_IMAGE_PIXELS = 50_000_000

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
    if not np.isfinite(hi - lo):
        raise BiaslabError(f"image values span {lo:g} to {hi:g}, too wide to scale to [0, 1]")
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


def load_image(path: str | Path, color: bool = False) -> np.ndarray:
    """Read a PNG/JPEG/... file as float64 in [0, 1]: (H, W) grey or (H, W, 3) with ``color``."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise BiaslabError(f"image {p} does not exist; pass the path of a PNG or JPEG file")
    too_big = f"image {p} has more than {MAX_IMAGE_PIXELS} pixels; shrink it first"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in one line
            with Image.open(p) as im:
                if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:
                    raise BiaslabError(f"{too_big} (its header says {im.size[0]}×{im.size[1]})")
                im.load()
                if im.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F", "1"):
                    im = im.convert("RGB")
                arr = np.asarray(im)
    except Image.DecompressionBombError:
        raise BiaslabError(too_big) from None
    except BiaslabError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BiaslabError(f"cannot read image {p}: {exc}; use a PNG or JPEG file") from None
    if arr.size == 0:
        raise BiaslabError(f"image {p} is empty")
    check_finite(f"image {p}", arr)  # a float TIFF may hold NaN or infinity
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
