"""Draw the README's gallery: one picture of each command's output, from the library and its renderers.

    python docs/images/make_images.py            # every picture (a few minutes on 2 cores)
    python docs/images/make_images.py conv relu  # some of them

Each picture is the command's key figure, as ``result.figure(NAME)`` returns it (the same
figure ``biaslab <command> --out DIR`` writes), saved small, with the settings below (seed 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DPI = 60


def regression():
    from biaslab import run_regression

    return run_regression(), "regression"


def relu():
    from biaslab import run_relu

    return run_relu(), "relu_threshold"


def conv():
    from biaslab import run_conv

    return run_conv(builtin="camera", kernels=["sobel-x"], biases=[-0.5, 0.0, 0.5], max_size=128), "conv_maps_1_sobel-x"


def ablate():
    from biaslab import run_ablate

    return run_ablate(models=["cnn"], datasets=["digits"], quick=True, out_dir=None), "ablate_accuracy"


def denoise():
    from biaslab import run_denoise

    return run_denoise(quick=True), "denoise_psnr"


def audit():
    from biaslab import run_audit

    return run_audit("transformer"), "audit_biases"


PICTURES = {"regression": regression, "relu": relu, "conv": conv, "ablate": ablate, "denoise": denoise,
            "audit": audit}


def main(names: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    for name in names or PICTURES:
        if name.endswith(".png"):  # an existing picture (the widget's screenshot): only shrink it
            shrink(Path(name))
            continue
        result, figure = PICTURES[name]()
        path = HERE / f"{name}.png"
        result.figure(figure).savefig(path, dpi=DPI, bbox_inches="tight")
        shrink(path)
        print(path, flush=True)


def shrink(path: Path, colours: int = 128) -> None:
    """Re-save as a palette PNG (README pictures load fast; the figures are flat colours)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


if __name__ == "__main__":
    main(sys.argv[1:])
