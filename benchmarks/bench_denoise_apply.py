"""Peak memory of `biaslab denoise apply` on a large colour photo (tiled, overlap-add).

Target: a 4000×3000 RGB photo needs ≤ 1 GiB peak RSS (the whole process, torch included).
The network is the default `biaslab denoise` architecture (depth 8, width 32) with random
weights: memory does not depend on what the weights are. A quarter-size photo is measured too,
to show that memory grows with the image arrays (a few bytes per pixel), not with the
network's activations (one tile at a time).

    python benchmarks/bench_denoise_apply.py [--width 4000 --height 3000] [--threads 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _proc import measure  # noqa: E402

TARGET_MIB = 1024


def _photo(path: Path, width: int, height: int) -> None:
    """A smooth colour gradient with texture: compresses like a photo, not like noise."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width, y / height, 0.5 + 0.4 * np.sin(x / 37.0) * np.cos(y / 23.0)], axis=-1)
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    biaslab = shutil.which("biaslab") or sys.exit("install the package first: pip install -e .")
    import torch

    from biaslab.experiments.denoise import DnCNN, save_denoiser

    tmp = Path(tempfile.mkdtemp())
    try:
        torch.manual_seed(0)
        model = save_denoiser(DnCNN(depth=8, width=32, bias=False), tmp / "denoiser_bias_free.pt")
        for scale in (2, 1):
            w, h = args.width // scale, args.height // scale
            photo = tmp / f"photo_{w}x{h}.png"
            _photo(photo, w, h)
            wall, rss_kib = measure([biaslab, "denoise", "apply", "--model", str(model), "--image", str(photo),
                                     "--sigma", "25", "--threads", str(args.threads), "--quiet",
                                     "--out", str(tmp / f"out{scale}")])
            mib = rss_kib / 1024
            verdict = "" if scale != 1 else f"  (target <= {TARGET_MIB} MiB: {'met' if mib <= TARGET_MIB else 'MISSED'})"
            print(f"{w}x{h} RGB: peak RSS {mib:.0f} MiB, {wall:.0f} s{verdict}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
