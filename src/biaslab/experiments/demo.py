"""``biaslab demo``: every experiment on quick settings, and the classic claims measured across them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..infra.progress import progress_bar
from ..results import Claim, Result
from ..results.demo import DemoResult

__all__ = ["DemoStep", "DEMO_STEPS", "CLASSIC_CLAIMS", "classic_claims", "run_demo"]


@dataclass(frozen=True)
class DemoStep:
    """One section of the demo: a command name and how to run it quickly."""

    name: str
    run: Callable[[int, bool], Result]  # (seed, show_progress) -> result


def _regression(seed: int, show_progress: bool) -> Result:
    from .regression.run import run_regression

    return run_regression(seed=seed)


def _relu(seed: int, show_progress: bool) -> Result:
    from .relu.run import run_relu

    return run_relu(seed=seed)


def _conv(seed: int, show_progress: bool) -> Result:
    from .conv.run import run_conv

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


#: The demo's steps, in report order.
DEMO_STEPS: list[DemoStep] = [
    DemoStep("regression", _regression),
    DemoStep("relu", _relu),
    DemoStep("conv", _conv),
    DemoStep("ablate", _ablate),
    DemoStep("audit", _audit),
    DemoStep("denoise", _denoise),
]

#: The course's classic statements: (id, the statement, section, the claim there that measures it).
CLASSIC_CLAIMS: list[tuple[str, str, str, str]] = [
    ("bias_lowers_regression_error", "The bias lowers the regression error (MSE 4.47 → 3.30).",
     "regression", "bias_lowers_mse"),
    ("relu_threshold", "A ReLU outputs zero when the weighted sum is less than the bias (precisely: at most −b).",
     "relu", "relu_zero_below_minus_b"),
    ("bias_as_crucial_as_weights", "The bias is as crucial as the weights.",
     "ablate", "bias_needed"),
    ("bias_adapts_to_shift", "The bias lets the network adapt to shifted inputs.",
     "ablate", "bias_helps_under_shift"),
    ("bias_free_generalises", "Counter-case: bias-free networks generalise beyond the training noise.",
     "denoise", "bias_free_generalises"),
]


def classic_claims(parts: dict[str, Result]) -> list[Claim]:
    """Each classic statement with the verdict of the claim that measured it (null where none ran)."""
    out = []
    for cid, statement, section, source in CLASSIC_CLAIMS:
        part = parts.get(section)
        found = [c for c in part.claims if c.id == source] if part is not None else []
        if not found:
            out.append(Claim(cid, f"Not measured: the demo ran no {section} step with claim {source!r}.", None,
                             {"section": section, "claim": source}, statement))
            continue
        c = found[0]
        scalars = {k: v for k, v in c.evidence.items() if not isinstance(v, (list, dict))}
        out.append(Claim(cid, c.text, c.holds, {"section": section, "claim": source, **scalars}, statement))
    return out


def run_demo(seed: int = 42, show_progress: bool = False, steps: list[DemoStep] | None = None) -> DemoResult:
    """Run each step; the result holds every step's result (``parts``) and the classic claims."""
    steps = DEMO_STEPS if steps is None else steps
    parts: dict[str, Result] = {}
    with progress_bar(len(steps), "demo", show_progress) as advance:
        for step in steps:
            advance(0, description=f"demo: {step.name}")
            parts[step.name] = step.run(seed, show_progress)
            advance()
    return DemoResult(sections=list(parts), claims=classic_claims(parts), params={"seed": seed},
                      parts=parts)
