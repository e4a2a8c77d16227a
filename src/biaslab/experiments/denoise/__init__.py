"""``biaslab denoise``: bias-free denoising (Mohan et al., ICLR 2020), a DnCNN with and without
every additive constant.

Both networks are trained on the same noisy patches with noise levels σ drawn from a small
range ``[0, sigma_max]`` (0–255 scale), then tested on held-out images at σ up to 100. Without
biases the network is positively homogeneous, ``f(α·y) = α·f(y)``, and piecewise linear with no
offset, so ``f(y) = J(y)·y``: an adaptive linear filter whose weights (a row of the Jacobian)
depend on the image. What the run concludes is computed (:mod:`.claims`), not assumed.

Library API::

    from biaslab.experiments.denoise import run_denoise, apply_denoiser, DnCNN, load_denoiser

    res = run_denoise(quick=True, save_dir="out")    # DenoiseResult, claims included
    res.claim("bias_free_generalises").text
    apply_denoiser("out/denoiser_bias_free.pt", "photo.jpg", sigma=50, compare=True)

Modules: :mod:`.model` (DnCNN), :mod:`.data` (pictures, patches, noise), :mod:`.train`,
:mod:`.analysis` (PSNR, equivariance, Jacobian rows), :mod:`.claims`, :mod:`.checkpoint`
(weights and architecture file), :mod:`.run` (the experiment), :mod:`.tiling` and
:mod:`.apply` (a user's image).
"""

from ...results.denoise import DenoiseApplyResult, DenoiseResult
from .analysis import EQUIVARIANCE_ALPHAS, equivariance_error, evaluate_psnr, filter_stats, jacobian_rows, \
    linearity_residual, psnr
from .apply import apply_denoiser, twin_path
from .checkpoint import load_denoiser, save_denoiser
from .data import TEST_IMAGES, TRAIN_IMAGES, add_noise, sample_patches
from .model import DnCNN
from .run import EVAL_SIGMAS, PRESETS, run_denoise
from .tiling import denoise_tiled
from .train import train_denoisers

__all__ = [
    "EVAL_SIGMAS",
    "EQUIVARIANCE_ALPHAS",
    "TRAIN_IMAGES",
    "TEST_IMAGES",
    "PRESETS",
    "DnCNN",
    "psnr",
    "add_noise",
    "sample_patches",
    "train_denoisers",
    "evaluate_psnr",
    "equivariance_error",
    "linearity_residual",
    "jacobian_rows",
    "filter_stats",
    "save_denoiser",
    "load_denoiser",
    "denoise_tiled",
    "DenoiseResult",
    "run_denoise",
    "DenoiseApplyResult",
    "apply_denoiser",
    "twin_path",
]
