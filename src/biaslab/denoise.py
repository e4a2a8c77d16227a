"""Bias-free denoising (Mohan et al., ICLR 2020): a DnCNN with and without every additive constant.

Both networks are trained on the same noisy patches with noise levels σ drawn from a
small range ``[0, sigma_max]`` (on the 0–255 scale), then tested on held-out images
at σ up to 100. Inside the training range the two are equally good; far outside it
the network with biases collapses while the bias-free one keeps denoising. Without
biases the network is positively homogeneous — ``f(α·y) = α·f(y)`` — and piecewise
linear with no offset, so ``f(y) = J(y)·y``: each output pixel is a weighted average
of the noisy input, with weights (a row of the Jacobian) that adapt to the image.

Library entry points: :class:`DnCNN`, :func:`train_denoisers`, :func:`evaluate_psnr`,
:func:`equivariance_error`, :func:`linearity_residual`, :func:`jacobian_rows`,
:func:`run_denoise` (the experiment) and :func:`apply_denoiser` (a user's image).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .bias_free import BiasFreeBatchNorm2d, count_biases, make_bias_free
from .validate import check_finite
from .io import BiaslabError, atomic_path, atomic_write_json, safe_torch_load
from .render.report import Section

__all__ = [
    "EVAL_SIGMAS",
    "EQUIVARIANCE_ALPHAS",
    "TRAIN_IMAGES",
    "TEST_IMAGES",
    "PRESETS",
    "DnCNN",
    "psnr",
    "sample_patches",
    "train_denoisers",
    "evaluate_psnr",
    "equivariance_error",
    "linearity_residual",
    "jacobian_rows",
    "analyse_denoisers",
    "save_denoiser",
    "load_denoiser",
    "DenoiseResult",
    "run_denoise",
    "DenoiseApplyResult",
    "apply_denoiser",
]

#: Test noise levels on the 0–255 scale.
EVAL_SIGMAS = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100)
#: Scale factors for the equivariance test ``f(α·y) = α·f(y)``.
EQUIVARIANCE_ALPHAS = (0.25, 0.5, 2.0, 4.0)
#: scikit-image pictures used for training patches: natural photographs, documents,
#: microscopy and textures.
TRAIN_IMAGES = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cell",
    "page", "text", "brick", "grass", "moon",
)
#: Held-out test pictures, never seen in training: two photographs, a texture, an object.
TEST_IMAGES = ("camera", "coins", "gravel", "clock")

#: Settings of the default run (paper's out-of-range experiment: σ ∈ [0, 10]) and of --quick.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {"depth": 8, "width": 32, "steps": 1200, "batch_size": 32, "patch_size": 32,
                "sigma_max": 10.0, "lr": 2e-3, "eval_crop": 192},
    "quick": {"depth": 6, "width": 32, "steps": 400, "batch_size": 32, "patch_size": 24,
              "sigma_max": 20.0, "lr": 2e-3, "eval_crop": 128},
}
_JACOBIAN_CROP = 40


# --------------------------------------------------------------------------- model


class DnCNN(nn.Module):
    """Residual denoiser ``f(y) = y − body(y)`` (Zhang et al. 2017); ``body`` predicts the noise.

    ``body`` is conv → ReLU, then ``depth − 2`` blocks conv → BatchNorm → ReLU, then conv;
    all kernels 3×3, zero padding. With ``bias=False`` every convolution loses its bias
    and BatchNorm becomes :class:`~biaslab.bias_free.BiasFreeBatchNorm2d` — the same
    network :func:`~biaslab.bias_free.make_bias_free` makes from the biased one.
    """

    def __init__(self, depth: int = 6, width: int = 32, channels: int = 1, bias: bool = True) -> None:
        super().__init__()
        if depth < 2 or width < 1 or channels < 1:
            raise BiaslabError(
                f"DnCNN needs depth >= 2, width >= 1, channels >= 1 (got {depth}, {width}, {channels})"
            )
        self.depth, self.width, self.channels = depth, width, channels
        norm = nn.BatchNorm2d if bias else BiasFreeBatchNorm2d
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1, bias=bias), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=bias), norm(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=bias))
        self.body = nn.Sequential(*layers)
        # Initialisation of the paper's code (after DnCNN-PyTorch): He-normal kernels, small
        # BatchNorm gains; and a zero last layer, so training starts at the identity f(y) = y.
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, BiasFreeBatchNorm2d)):
                with torch.no_grad():
                    m.weight.normal_(0.0, math.sqrt(2.0 / 9.0 / 64.0)).clamp_(-0.025, 0.025)
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.body(y)

    @property
    def architecture(self) -> dict[str, Any]:
        """What is needed to rebuild the module: saved next to its weights."""
        return {"model": "DnCNN", "depth": self.depth, "width": self.width,
                "channels": self.channels, "bias": count_biases(self) > 0}


# --------------------------------------------------------------------------- data


def psnr(clean: np.ndarray | torch.Tensor, estimate: np.ndarray | torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``estimate`` clipped to [0, 1] (as in the paper's code)."""
    c = torch.as_tensor(clean, dtype=torch.float64)
    e = torch.as_tensor(estimate, dtype=torch.float64).clamp(0, 1)
    mse = float(torch.mean((c - e) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def sample_patches(images: Sequence[np.ndarray], n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random ``size``×``size`` crops, randomly rotated by 90° steps and flipped.

    Images are chosen with probability proportional to their area. Returns (n, 1, size, size).
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


def _center_crop(img: np.ndarray, size: int) -> np.ndarray:
    r, c = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[r:r + size, c:c + size]


def _load_sets(images: str | Path | None) -> tuple[list[str], list[np.ndarray], list[str], list[np.ndarray]]:
    """(train names, train images, test names, test images), greyscale float32 in [0, 1]."""
    from .images import builtin_image, list_images, load_image

    if images is None:
        train = [(n, builtin_image(n)) for n in TRAIN_IMAGES]
        test = [(n, builtin_image(n)) for n in TEST_IMAGES]
    else:
        files = list_images(images)
        if len(files) < 2:
            raise BiaslabError(
                f"--images {images} holds {len(files)} image; give at least 2 (one is held out for testing)"
            )
        n_test = max(1, len(files) // 5)
        loaded = [(f.name, check_finite(f"image {f}", load_image(f))) for f in files]
        train, test = loaded[:-n_test], loaded[-n_test:]
    def split(pairs: list[tuple[str, np.ndarray]]) -> tuple[list[str], list[np.ndarray]]:
        return [n for n, _ in pairs], [np.ascontiguousarray(img, dtype=np.float32) for _, img in pairs]

    return (*split(train), *split(test))


# --------------------------------------------------------------------------- training


def train_denoisers(
    models: dict[str, nn.Module],
    images: Sequence[np.ndarray],
    steps: int,
    batch_size: int,
    patch_size: int,
    sigma_max: float,
    lr: float = 2e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
) -> dict[str, list[float]]:
    """Train every model in ``models`` on the *same* noisy patches; return each one's loss per step.

    Each step draws ``batch_size`` patches, adds Gaussian noise with a per-patch σ drawn
    uniformly from ``[0, sigma_max]`` (0–255 scale; images are in [0, 1]), and takes one
    Adam step on the mean squared error to the clean patch, with a cosine-decaying
    learning rate. Deterministic for a ``seed``.
    """
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opts = {k: torch.optim.Adam(m.parameters(), lr=lr) for k, m in models.items()}
    scheds = {k: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps, eta_min=lr / 20)
              for k, o in opts.items()}
    losses: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        m.to(device).train()
    for _ in range(steps):
        clean = torch.from_numpy(sample_patches(images, batch_size, patch_size, rng))
        sigma = torch.rand(batch_size, 1, 1, 1, generator=gen) * (sigma_max / 255.0)
        noisy = (clean + sigma * torch.randn(clean.shape, generator=gen)).to(device)
        clean = clean.to(device)
        for k, m in models.items():
            loss = torch.mean((m(noisy) - clean) ** 2)
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()
            scheds[k].step()
            losses[k].append(float(loss.detach()))
        if progress is not None:
            progress()
    for k, m in models.items():
        m.eval()
        if not all(math.isfinite(v) for v in losses[k][-10:]):
            raise BiaslabError(f"training the {k} network diverged (loss is NaN); lower --lr")
    return losses


# --------------------------------------------------------------------------- analysis


def _noisy(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return clean + (sigma / 255.0) * torch.randn(clean.shape, generator=gen)


@torch.no_grad()
def evaluate_psnr(
    models: dict[str, nn.Module], clean: torch.Tensor, sigmas: Sequence[float], seed: int = 0
) -> dict[str, list[float]]:
    """Mean PSNR over the images of ``clean`` (N, C, H, W) at each σ, for each model and the noisy input.

    Every model sees the same noisy images. Returns ``{"noisy": [...], name: [...], ...}``.
    """
    out: dict[str, list[float]] = {"noisy": [], **{k: [] for k in models}}
    for j, s in enumerate(sigmas):
        noisy = _noisy(clean, float(s), seed + 7919 * j)
        out["noisy"].append(float(np.mean([psnr(c, y) for c, y in zip(clean, noisy)])))
        for k, m in models.items():
            dev = next(m.parameters()).device
            den = m(noisy.to(dev)).cpu()
            out[k].append(float(np.mean([psnr(c, d) for c, d in zip(clean, den)])))
    return out


@torch.no_grad()
def equivariance_error(model: nn.Module, y: torch.Tensor, alphas: Sequence[float] = EQUIVARIANCE_ALPHAS) -> list[float]:
    """Relative error ``‖f(α·y) − α·f(y)‖ / ‖α·f(y)‖`` for each α (``model`` in eval mode)."""
    f_y = model(y)
    return [float(torch.linalg.vector_norm(model(a * y) - a * f_y) / torch.linalg.vector_norm(a * f_y))
            for a in alphas]


def linearity_residual(model: nn.Module, y: torch.Tensor) -> float:
    """``‖f(y) − J(y)·y‖ / ‖f(y)‖``: zero for a bias-free ReLU network, the "net bias" otherwise.

    ``J(y)·y`` is one Jacobian-vector product with tangent ``y`` (by the double-backward trick).
    """
    from torch.autograd.functional import jvp

    f_y, jy = jvp(model, y, y)
    return float(torch.linalg.vector_norm(f_y - jy) / torch.linalg.vector_norm(f_y))


def jacobian_rows(model: nn.Module, y: torch.Tensor, pixels: Sequence[tuple[int, int]]) -> np.ndarray:
    """Rows of the Jacobian ``J(y)`` of ``model`` at ``y`` (1, 1, H, W), one per output pixel.

    Row ``(r, c)`` holds the weights with which the denoised pixel ``(r, c)`` combines the
    noisy input (for a bias-free network ``f(y) = J(y)·y`` exactly). Only the requested
    rows are computed, one vector-Jacobian product each. Returns (len(pixels), H, W).
    """
    from torch.func import vjp

    out, pullback = vjp(model, y)
    rows = []
    for r, c in pixels:
        e = torch.zeros_like(out)
        e[0, 0, r, c] = 1.0
        (row,) = pullback(e)
        rows.append(row[0, 0].detach().cpu().numpy())
    return np.stack(rows)


def _jacobian_window(img: np.ndarray, size: int) -> tuple[int, int, list[tuple[int, int]], list[str]]:
    """A ``size``×``size`` window of ``img`` rich in edges, and three pixels in it: edge, texture, flat."""
    from scipy import ndimage

    g = np.hypot(ndimage.sobel(img, 0), ndimage.sobel(img, 1))
    energy = ndimage.uniform_filter(g, size)
    h = size // 2
    inner = energy[h:img.shape[0] - size + h + 1, h:img.shape[1] - size + h + 1]
    r0, c0 = np.unravel_index(int(np.argmax(inner)), inner.shape)
    local = ndimage.uniform_filter(g[r0:r0 + size, c0:c0 + size], 3)
    m = max(1, min(8, size // 4))  # stay away from the border, where zero padding shapes the filter
    core = local[m:size - m, m:size - m]
    order = np.argsort(core, axis=None)
    picks = [order[-1], order[len(order) // 2], order[0]]
    pixels = [(int(p // core.shape[1]) + m, int(p % core.shape[1]) + m) for p in picks]
    return int(r0), int(c0), pixels, ["strongest edge", "median", "flattest"]


def analyse_denoisers(
    models: dict[str, nn.Module], clean: torch.Tensor, sigmas: Sequence[float], train_sigma_max: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything the experiment reports about a trained ``{"with_bias", "bias_free"}`` pair (eval mode).

    ``clean`` holds the test crops (N, 1, H, W). Returns ``psnr`` (per σ), ``equivariance``
    (per α) and ``linearity`` (both measured on the test crops with noise ``train_sigma_max``),
    and for the figures ``examples`` (first crop at a σ inside and the largest σ) and
    ``jacobian`` (rows of the bias-free network's Jacobian on an edge-rich 40×40 window).
    """
    psnrs = evaluate_psnr(models, clean, sigmas, seed=seed)
    y_eq = _noisy(clean, train_sigma_max, seed + 1)
    equiv: dict[str, list[float]] = {k: equivariance_error(m, y_eq) for k, m in models.items()}
    equiv["alphas"] = list(EQUIVARIANCE_ALPHAS)
    linearity = {k: linearity_residual(m, y_eq) for k, m in models.items()}

    s_in = max([s for s in sigmas if s <= train_sigma_max], default=min(sigmas))
    two = list(dict.fromkeys([s_in, max(sigmas)]))
    examples: dict[float, dict[str, np.ndarray]] = {}
    for j, s in enumerate(two):
        noisy = _noisy(clean[:1], s, seed + 104729 + j)
        with torch.no_grad():
            examples[s] = {"clean": clean[0, 0].numpy(), "noisy": noisy[0, 0].numpy(),
                           **{k: m(noisy)[0, 0].numpy() for k, m in models.items()}}
    size = min(_JACOBIAN_CROP, clean.shape[-2], clean.shape[-1])
    r0, c0, pixels, labels = _jacobian_window(clean[0, 0].numpy().astype(np.float64), size)
    jac: dict[float, dict[str, Any]] = {}
    for j, s in enumerate(two):
        y = _noisy(clean[:1, :, r0:r0 + size, c0:c0 + size], s, seed + 15485863 + j)
        jac[s] = {"noisy": y[0, 0].numpy(), "rows": jacobian_rows(models["bias_free"], y, pixels),
                  "pixels": pixels, "labels": labels}
    return {"psnr": psnrs, "equivariance": equiv, "linearity": linearity, "examples": examples, "jacobian": jac}


# --------------------------------------------------------------------------- weights


def save_denoiser(model: DnCNN, path: str | Path) -> Path:
    """Save ``model.state_dict()`` to ``path`` and its architecture to ``path`` with suffix .json (atomically)."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    atomic_write_json(path.with_suffix(".json"), model.architecture)
    return path


def _infer_architecture(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    convs = [k for k, v in state.items() if k.startswith("body.") and k.endswith(".weight") and v.dim() == 4]
    if not convs:
        return {}
    first = state[convs[0]]
    return {"model": "DnCNN", "depth": len(convs), "width": int(first.shape[0]),
            "channels": int(first.shape[1]), "bias": "body.0.bias" in state}


def load_denoiser(path: str | Path, device: torch.device | str = "cpu") -> DnCNN:
    """Load a :class:`DnCNN` saved by :func:`save_denoiser` (``weights_only=True``), in eval mode.

    The architecture comes from the JSON file next to the weights, or is read off the
    tensor shapes when there is none. Anything that is not a state_dict of that
    architecture is refused with a :class:`BiaslabError`.
    """
    path = Path(path)
    state = safe_torch_load(path, map_location="cpu")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BiaslabError(f"{path} is not a state_dict (a dict of tensors); save model.state_dict()")
    meta = path.with_suffix(".json")
    if meta.is_file():
        try:
            arch = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BiaslabError(f"cannot read the architecture file {meta}: {exc}") from None
    else:
        arch = _infer_architecture(state)
    try:
        model = DnCNN(int(arch["depth"]), int(arch["width"]), int(arch["channels"]), bool(arch["bias"]))
    except (KeyError, TypeError, ValueError):
        raise BiaslabError(
            f"{path} is not a biaslab DnCNN denoiser (no usable architecture in {meta.name} or the "
            "weights); train one with `biaslab denoise`"
        ) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:240]
        raise BiaslabError(
            f"{path} does not match a DnCNN with depth={model.depth}, width={model.width}, "
            f"bias={arch['bias']}: {detail}"
        ) from None
    return model.to(device).eval()


# --------------------------------------------------------------------------- the experiment


def _sci(v: float) -> str:
    """``0 exactly`` or a number in scientific notation."""
    return "0 exactly" if v == 0 else f"{v:.1e}"


@dataclass
class DenoiseResult:
    """PSNR vs noise level, equivariance and the adaptive-filter view of a biased / bias-free pair."""

    sigmas: list[float]
    psnr: dict[str, list[float]]
    train_sigma_max: float
    equivariance: dict[str, list[float]]
    linearity: dict[str, float]
    settings: dict[str, Any]
    train_images: list[str]
    test_images: list[str]
    train_loss: dict[str, float]
    train_seconds: float
    weights: dict[str, str] = field(default_factory=dict)
    #: Arrays for the figures (not in results.json): example images and Jacobian rows.
    examples: dict[float, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    jacobian: dict[float, dict[str, Any]] = field(default_factory=dict, repr=False)
    command: str = "denoise"

    def gaps(self) -> dict[str, float | None]:
        """Bias-free minus with-bias PSNR: worst |gap| inside the training range, mean gap at σ ≥ 5× its max."""
        d = [b - w for b, w in zip(self.psnr["bias_free"], self.psnr["with_bias"])]
        inside = [abs(g) for s, g in zip(self.sigmas, d) if s <= self.train_sigma_max]
        far = [g for s, g in zip(self.sigmas, d) if s >= 5 * self.train_sigma_max]
        return {"max_abs_gap_in_range_db": max(inside) if inside else None,
                "mean_gain_far_out_db": float(np.mean(far)) if far else None,
                "gain_at_max_sigma_db": d[-1]}

    def to_dict(self) -> dict[str, Any]:
        alphas = list(self.equivariance["alphas"])
        return {
            "sigmas": self.sigmas,
            "psnr": self.psnr,
            "equivariance_error": {k: max(self.equivariance[k]) for k in ("with_bias", "bias_free")},
            "equivariance": {"alphas": alphas, "with_bias": self.equivariance["with_bias"],
                             "bias_free": self.equivariance["bias_free"]},
            "linearity_residual": self.linearity,
            "train_sigma_max": self.train_sigma_max,
            "gaps": self.gaps(),
            "settings": self.settings,
            "train_images": self.train_images,
            "test_images": self.test_images,
            "final_train_loss": self.train_loss,
            "train_seconds": self.train_seconds,
            "weights": self.weights,
            "summary": self.summary(),
        }

    def summary(self) -> str:
        g = self.gaps()
        s_max = self.sigmas[-1]
        inside = (f"inside the training range σ ≤ {self.train_sigma_max:g} the two differ by at most "
                  f"{g['max_abs_gap_in_range_db']:.2f} dB" if g["max_abs_gap_in_range_db"] is not None
                  else "no test σ lies inside the training range")
        far = (f"; at σ ≥ {5 * self.train_sigma_max:g} (5× the training maximum) the bias-free network "
               f"is {g['mean_gain_far_out_db']:+.2f} dB better on average" if g["mean_gain_far_out_db"] is not None
               else "")
        return (
            f"Two DnCNN denoisers (depth {self.settings['depth']}, width {self.settings['width']}), one with "
            f"biases and one bias-free, trained on the same patches with σ ∈ [0, {self.train_sigma_max:g}] "
            f"(0–255 scale). On held-out images ({', '.join(self.test_images)}): {inside}{far}; at σ = "
            f"{s_max:g} the PSNRs are {self.psnr['with_bias'][-1]:.2f} dB (with bias) vs "
            f"{self.psnr['bias_free'][-1]:.2f} dB (bias-free), noisy input {self.psnr['noisy'][-1]:.2f} dB."
            "\n\n"
            f"Without biases the network is scale-equivariant: the largest ‖f(α·y) − α·f(y)‖/‖α·f(y)‖ "
            f"over α ∈ {{{', '.join(f'{a:g}' for a in self.equivariance['alphas'])}}} is "
            f"{_sci(max(self.equivariance['bias_free']))} (with bias: {max(self.equivariance['with_bias']):.3f}), "
            f"and locally linear: ‖f(y) − J(y)·y‖/‖f(y)‖ = {_sci(self.linearity['bias_free'])} (with bias: "
            f"{self.linearity['with_bias']:.3f}). Zeros can be exact: scaling by α = 2^k is exact in floating "
            "point, and J(y)·y repeats the very operations of f(y). Each denoised pixel is a weighted average of the noisy "
            "pixels around it — a row of J(y), an adaptive filter that widens as the noise grows."
        )

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        from .render.legacy_plots.denoise import plot_equivariance, plot_examples, plot_jacobian_rows, plot_psnr

        figs = [plot_psnr(self, out_dir, fmt), plot_equivariance(self, out_dir, fmt)]
        if self.examples:
            figs.append(plot_examples(self, out_dir, fmt))
        if self.jacobian:
            figs.append(plot_jacobian_rows(self, out_dir, fmt))
        return figs

    def section(self, figures: list[Path]) -> Section:
        rows = [
            {"σ (0-255)": f"{s:g}" + (" (train)" if s <= self.train_sigma_max else ""),
             "noisy PSNR": n, "with bias": w, "bias-free": b, "bias-free − with bias (dB)": b - w}
            for s, n, w, b in zip(self.sigmas, self.psnr["noisy"], self.psnr["with_bias"], self.psnr["bias_free"])
        ]
        st = self.settings
        text = (
            self.summary()
            + f"\n\nTraining images: {', '.join(self.train_images)}. Held-out test images: "
            f"{', '.join(self.test_images)} (centre crops of {st['eval_crop']}×{st['eval_crop']} pixels). "
            f"{st['steps']} Adam steps of {st['batch_size']} patches of {st['patch_size']}×{st['patch_size']} "
            f"in {self.train_seconds:.0f} s on {st['device']}. PSNR is computed after clipping to [0, 1], as in "
            "the paper's code (Mohan et al., ICLR 2020: DnCNN trained on [0, 10] reaches 22.8 dB at σ = 100 "
            "bias-free vs 10.5 dB with bias)."
        )
        return Section("Bias-free denoising generalises across noise levels", text, figures, rows)


def _resolve_settings(quick: bool, **overrides: Any) -> dict[str, Any]:
    st = dict(PRESETS["quick" if quick else "default"])
    st.update({k: v for k, v in overrides.items() if v is not None})
    checks = [("depth", 2), ("width", 1), ("steps", 1), ("batch_size", 2), ("patch_size", 8), ("eval_crop", 16)]
    for name, lo in checks:
        if int(st[name]) != st[name] or st[name] < lo:
            raise BiaslabError(f"--{name.replace('_', '-')} must be an integer >= {lo} (got {st[name]})")
        st[name] = int(st[name])
    if not (math.isfinite(st["sigma_max"]) and st["sigma_max"] > 0):
        raise BiaslabError(f"--sigma-max must be a positive noise level on the 0-255 scale (got {st['sigma_max']})")
    if not (math.isfinite(st["lr"]) and st["lr"] > 0):
        raise BiaslabError(f"--lr must be positive (got {st['lr']})")
    return st


def run_denoise(
    quick: bool = False,
    depth: int | None = None,
    width: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    patch_size: int | None = None,
    sigma_max: float | None = None,
    lr: float | None = None,
    eval_crop: int | None = None,
    images: str | Path | None = None,
    sigmas: Sequence[float] = EVAL_SIGMAS,
    seed: int = 0,
    device: str = "auto",
    save_dir: str | Path | None = None,
    show_progress: bool = False,
) -> DenoiseResult:
    """Train a DnCNN and its bias-free twin on the same patches, then compare them.

    Parameters left as ``None`` take the value of the preset (:data:`PRESETS`,
    ``"quick"`` with ``quick=True``). ``images`` is a folder of the user's images
    (the last fifth, at least one, is held out for testing) instead of the bundled
    scikit-image pictures. With ``save_dir`` the trained weights are written there as
    ``denoiser_with_bias.pt`` / ``denoiser_bias_free.pt`` (+ architecture JSON).
    """
    from .device import resolve_device
    from .progress import progress_bar

    st = _resolve_settings(quick, depth=depth, width=width, steps=steps, batch_size=batch_size,
                           patch_size=patch_size, sigma_max=sigma_max, lr=lr, eval_crop=eval_crop)
    sigmas = [float(s) for s in sigmas]
    if not sigmas or any(not math.isfinite(s) or s < 0 for s in sigmas):
        raise BiaslabError(f"test noise levels must be >= 0 (got {sigmas})")
    dev = resolve_device(device)
    train_names, train_imgs, test_names, test_imgs = _load_sets(images)
    small = [n for n, im in zip(train_names, train_imgs) if min(im.shape) < st["patch_size"]]
    if small:
        raise BiaslabError(f"image(s) {', '.join(small)} are smaller than --patch-size {st['patch_size']}")
    crop = min(st["eval_crop"], *(min(im.shape) for im in test_imgs))
    if crop < 16:
        raise BiaslabError(f"test image(s) {', '.join(test_names)} are too small (need at least 16×16)")
    st.update(eval_crop=crop, device=str(dev), quick=quick, seed=seed,
              images=str(images) if images is not None else "scikit-image")

    torch.manual_seed(seed)
    with_bias = DnCNN(st["depth"], st["width"], bias=True)
    bias_free = make_bias_free(with_bias)  # the same initial kernels, every additive constant removed
    models = {"with_bias": with_bias, "bias_free": bias_free}
    t0 = time.perf_counter()
    with progress_bar(st["steps"], "training denoisers (with bias, bias-free)", show_progress) as advance:
        losses = train_denoisers(models, train_imgs, st["steps"], st["batch_size"], st["patch_size"],
                                 st["sigma_max"], st["lr"], seed=seed, device=dev, progress=advance)
    train_seconds = time.perf_counter() - t0
    for m in models.values():
        m.cpu().eval()

    clean = torch.from_numpy(np.stack([_center_crop(im, crop) for im in test_imgs])[:, None].copy())
    analysis = analyse_denoisers(models, clean, sigmas, st["sigma_max"], seed=seed)

    weights: dict[str, str] = {}
    if save_dir is not None:
        for k, m in models.items():
            weights[k] = str(save_denoiser(m, Path(save_dir) / f"denoiser_{k}.pt"))

    final = {k: float(np.mean(v[-max(1, len(v) // 20):])) for k, v in losses.items()}
    return DenoiseResult(sigmas, analysis["psnr"], float(st["sigma_max"]), analysis["equivariance"],
                         analysis["linearity"], st, train_names, test_names, final, train_seconds, weights,
                         analysis["examples"], analysis["jacobian"])


# --------------------------------------------------------------------------- a user's image


@dataclass
class DenoiseApplyResult:
    """A user's image, with noise of level σ added, denoised by a saved network."""

    model: str
    image: str
    sigma: float
    architecture: dict[str, Any]
    psnr_noisy: float | None
    psnr_denoised: float | None
    seed: int
    clean: np.ndarray = field(repr=False)
    noisy: np.ndarray = field(repr=False)
    denoised: np.ndarray = field(repr=False)
    command: str = "denoise-apply"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "image": self.image, "sigma": self.sigma,
                "architecture": self.architecture, "psnr": {"noisy": self.psnr_noisy,
                                                           "denoised": self.psnr_denoised},
                "shape": list(self.clean.shape), "seed": self.seed, "summary": self.summary()}

    def summary(self) -> str:
        kind = "bias-free" if not self.architecture["bias"] else "with-bias"
        if self.psnr_noisy is None:
            return (f"Denoised {self.image} as given (σ = 0: no noise added) with the {kind} DnCNN "
                    f"from {self.model}; no clean reference, so no PSNR.")
        return (f"Added Gaussian noise σ = {self.sigma:g} (0–255 scale) to {self.image} and denoised it with "
                f"the {kind} DnCNN from {self.model}: PSNR {self.psnr_noisy:.2f} dB → {self.psnr_denoised:.2f} dB "
                f"({self.psnr_denoised - self.psnr_noisy:+.2f} dB).")

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        from .render.legacy_plots.denoise import plot_apply, save_image

        return [save_image(self.noisy, out_dir, "noisy"), save_image(self.denoised, out_dir, "denoised"),
                plot_apply(self, out_dir, fmt)]

    def section(self, figures: list[Path]) -> Section:
        return Section("Denoising your image", self.summary(), [f for f in figures if f.stem == "denoise_apply"])


def apply_denoiser(
    model: str | Path, image: str | Path, sigma: float, seed: int = 0, device: str = "auto"
) -> DenoiseApplyResult:
    """Add Gaussian noise of level ``sigma`` (0–255 scale; 0 = none) to ``image`` and denoise it."""
    from .device import resolve_device
    from .images import load_image

    if not math.isfinite(sigma) or sigma < 0:
        raise BiaslabError(f"--sigma must be a noise level >= 0 on the 0-255 scale (got {sigma})")
    dev = resolve_device(device)
    net = load_denoiser(model, dev)
    img = check_finite(f"image {image}", load_image(image, color=net.channels == 3))
    chw = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    clean = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None]
    noisy = _noisy(clean, sigma, seed) if sigma > 0 else clean
    with torch.no_grad():
        den = net(noisy.to(dev)).cpu()

    def to_img(t: torch.Tensor) -> np.ndarray:  # (1, C, H, W) -> (H, W) or (H, W, C)
        hwc = np.moveaxis(t[0].numpy(), 0, -1)
        return hwc[..., 0] if net.channels == 1 else hwc

    p_noisy = psnr(clean, noisy) if sigma > 0 else None
    p_den = psnr(clean, den) if sigma > 0 else None
    return DenoiseApplyResult(str(model), str(image), float(sigma), net.architecture, p_noisy, p_den, seed,
                              to_img(clean), to_img(noisy), to_img(den))
