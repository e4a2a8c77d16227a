"""``biaslab demo``: every experiment on quick settings, and the classic claims measured across them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..infra.progress import progress_bar
from ..results import Claim, Result
from ..results.demo import DemoResult

__all__ = ["DEMO_ABLATE_SEEDS", "DemoStep", "DEMO_STEPS", "CLASSIC_CLAIMS", "classic_claims", "run_demo"]


#: Seeds of the demo's ablation: the fewest with which its 4-comparison family can be decided.
DEMO_ABLATE_SEEDS = 8


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

    # ``biaslab ablate --quick --seeds 8``: cnn on digits, 6 epochs; no runs.jsonl to resume from. With 3
    # seeds no exact test can reach p < 0.05 (2/2^3 = 0.25), and the run's 4 comparisons are one Holm
    # family: 8 seeds (2/2^8 = 0.0078 < 0.05/4) let the headline claims be decided; the claims say which
    # are not. Batched training makes the 8 seeds cost about as much as 3 (20 s vs 18 s, 2 cores).
    return run_ablate(quick=True, seeds=DEMO_ABLATE_SEEDS, seed=seed, out_dir=None, show_progress=show_progress)


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

#: The course's classic statements: (id, the folk statement as courses say it, section, the claim
#: there that measures it). The verdict belongs to that claim's own, precise statement, shown
#: beside the folk one, so a verdict is never read against a sentence that is false as worded.
CLASSIC_CLAIMS: list[tuple[str, str, str, str]] = [
    ("bias_lowers_regression_error", "The bias lowers the regression error.", "regression", "bias_lowers_mse"),
    ("relu_threshold", "A ReLU outputs zero when the weighted sum is less than the bias.",
     "relu", "relu_zero_below_minus_b"),
    ("bias_as_crucial_as_weights", "The bias is as crucial as the weights.", "ablate", "bias_needed"),
    ("bias_adapts_to_shift", "The bias lets the network adapt to shifted inputs.", "ablate", "bias_helps_under_shift"),
    ("bias_free_generalises", "Counter-case: bias-free networks generalise beyond the training noise.",
     "denoise", "bias_free_generalises"),
]


def classic_claims(parts: dict[str, Result]) -> list[Claim]:
    """Each classic statement with the verdict of the claim that measured it ("not measured" where none ran).

    The claim's ``statement`` is the measured claim's precise statement (what the verdict is
    about); the folk wording is ``evidence["folk"]``.
    """
    out = []
    for cid, folk, section, source in CLASSIC_CLAIMS:
        part = parts.get(section)
        found = [c for c in part.claims if c.id == source] if part is not None else []
        if not found:
            out.append(Claim.of(cid, "not measured", f"Not measured: the demo ran no {section} step with claim {source!r}.",
                                {"folk": folk, "section": section, "claim": source}, f"({section}: {source})"))
            continue
        c = found[0]
        scalars = {k: v for k, v in c.evidence.items() if not isinstance(v, (list, dict))}
        out.append(Claim.of(cid, c.verdict, c.text, {"folk": folk, "section": section, "claim": source, **scalars},
                            c.statement or folk))
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
