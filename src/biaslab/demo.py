"""``biaslab demo``: every experiment on quick settings, one self-contained report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .outputs import Result, save_outputs
from .progress import progress_bar
from .report import Section, write_report

__all__ = ["DemoStep", "DEMO_STEPS", "DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoStep:
    """One section of the demo: a command name and how to run it quickly."""

    name: str
    run: Callable[[int, bool], Result]  # (seed, show_progress) -> result


def _regression(seed: int, show_progress: bool) -> Result:
    from .regression import run_regression

    return run_regression(seed=seed)


def _relu(seed: int, show_progress: bool) -> Result:
    from .activations import run_relu

    return run_relu(seed=seed)


def _conv(seed: int, show_progress: bool) -> Result:
    from .feature_maps import run_conv

    return run_conv(builtin="camera", kernels=("gaussian", "sobel-x"), max_size=256, explain=(64, 128),
                    check_torch=False, seed=seed, progress=show_progress)


def _ablate(seed: int, show_progress: bool) -> Result:
    from .ablate import run_ablate

    # ``biaslab ablate --quick``: cnn on digits, 3 seeds, 6 epochs; no runs.jsonl to resume from.
    return run_ablate(quick=True, seed=seed, out_dir=None, show_progress=show_progress)


def _audit(seed: int, show_progress: bool) -> Result:
    from .audit import run_audit

    # VGG-11-BN keeps a conv bias before each BatchNorm, as torchvision's does: 8 of them are redundant.
    return run_audit("vgg11_bn", input_shape=(2, 3, 16, 16), data="random", samples=16, seed=seed,
                     show_progress=show_progress)


def _denoise(seed: int, show_progress: bool) -> Result:
    from .denoise import run_denoise

    # ``biaslab denoise --quick`` with a smaller net and fewer steps; no weights saved.
    return run_denoise(quick=True, depth=5, width=24, steps=300, seed=seed, show_progress=show_progress)


#: The demo's steps, in report order. Each experiment module adds its quick run here.
DEMO_STEPS: list[DemoStep] = [
    DemoStep("regression", _regression),
    DemoStep("relu", _relu),
    DemoStep("conv", _conv),
    DemoStep("ablate", _ablate),
    DemoStep("audit", _audit),
    DemoStep("denoise", _denoise),
]


@dataclass
class DemoResult:
    report: Path
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"report": str(self.report), "sections": list(self.results), "results": self.results}


def run_demo(
    out_dir: str | Path,
    seed: int = 42,
    fmt: str = "png",
    show_progress: bool = False,
    steps: list[DemoStep] | None = None,
) -> DemoResult:
    """Run each step, save its outputs in ``out_dir/<name>/`` and write ``out_dir/report.html``."""
    out = Path(out_dir)
    steps = DEMO_STEPS if steps is None else steps
    sections: list[Section] = []
    results: dict[str, dict[str, Any]] = {}
    with progress_bar(len(steps), "demo", show_progress) as advance:
        for step in steps:
            advance(0, description=f"demo: {step.name}")
            result = step.run(seed, show_progress)
            saved = save_outputs(result, out / step.name, fmt)
            sections.append(result.section(saved.figures))
            results[step.name] = result.to_dict()
            advance()
    report = write_report(
        out,
        "biaslab demo: what the bias term does",
        sections,
        meta=f"seed {seed}; each section's data is in {out}/<section>/results.json",
    )
    return DemoResult(report, results)
