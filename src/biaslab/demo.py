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


#: The demo's steps, in report order. Each experiment module adds its quick run here.
DEMO_STEPS: list[DemoStep] = [
    DemoStep("regression", _regression),
    DemoStep("relu", _relu),
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
