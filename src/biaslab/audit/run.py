"""``biaslab audit``: the command's library function and its result."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import BiaslabError, atomic_path
from ..render.report import Section
from .contrib import Contribution, bias_contributions
from .fix import Equivalence, compare_outputs, drop_biases, fold_batchnorm
from .graph import STATUSES, Finding, _run, find_biases
from .target import CHECKPOINT_SUFFIXES, build_target, builtin_names, default_input_shape, load_checkpoint

__all__ = ["AuditResult", "run_audit", "parse_shape"]

#: Largest relative output difference a fix may show and still count as proven equivalent, by dtype.
_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.bfloat16: 3e-2, torch.float16: 1e-2}


@dataclass
class AuditResult:
    """Every bias of one model, its status, optionally its contribution on data and a proven fix."""

    target: str
    input_shape: list[int]
    findings: list[Finding]
    total_params: int
    traced: bool
    warnings: list[str] = field(default_factory=list)
    data: str | None = None
    n_samples: int = 0
    contributions: list[Contribution] | None = None
    baseline_accuracy: float | None = None
    fix: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    command: str = "audit"

    @property
    def bias_params(self) -> int:
        return sum(f.numel for f in self.findings)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per status: how many bias parameters and how many scalars."""
        return {s: {"biases": sum(f.status == s for f in self.findings),
                    "params": sum(f.numel for f in self.findings if f.status == s)} for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "input_shape": self.input_shape,
            "biases": [f.to_dict() for f in self.findings],
            "bias_params": self.bias_params,
            "total_params": self.total_params,
            "bias_share": self.bias_params / self.total_params if self.total_params else 0.0,
            "traced": self.traced,
            "counts": self.counts(),
            "warnings": self.warnings,
            "data": self.data,
            "n_samples": self.n_samples,
            "baseline_accuracy": self.baseline_accuracy,
            "contributions": [c.to_dict() for c in self.contributions] if self.contributions is not None else None,
            "fix": self.fix,
            "params": self.params,
            "summary": self.summary(),
        }

    def summary(self) -> str:
        c = self.counts()
        share = self.bias_params / self.total_params if self.total_params else 0.0
        parts = [
            f"{self.target}: {len(self.findings)} bias parameters hold {self.bias_params:,} of "
            f"{self.total_params:,} parameters ({100 * share:.3g}%). "
            + ", ".join(f"{c[s]['biases']} {s} ({c[s]['params']:,} values)" for s in STATUSES) + ". "
            + ("Statuses decided from the torch.fx graph." if self.traced else
               "torch.fx could not trace the model: statuses are a weaker guess from the execution order.")
        ]
        if self.params.get("initial_weights"):
            parts.append("This built-in model has its random initial weights (BatchNorm shifts start at 0); "
                         "to audit trained weights pass their state_dict: biaslab audit FILE.pt --arch "
                         f"{self.target}.")
        if self.contributions:
            top = max(self.contributions, key=lambda x: x.output_change)
            ratios = [x.bias_to_signal for x in self.contributions if x.bias_to_signal is not None]
            line = (f"On {self.n_samples} {self.data} inputs, zeroing one bias changes the output by up to "
                    f"{100 * top.output_change:.3g}% ({top.param})")
            if ratios:
                line += f"; ‖b‖/‖W·x‖ ranges from {min(ratios):.2g} to {max(ratios):.2g}"
            if self.baseline_accuracy is not None:
                worst = min(self.contributions, key=lambda x: x.accuracy_change or 0.0)
                line += (f"; accuracy {100 * self.baseline_accuracy:.1f}%, at worst "
                         f"{100 * (worst.accuracy_change or 0.0):+.1f} points without {worst.param}")
            parts.append(line + ".")
        if self.fix:
            parts.append(_fix_summary(self.fix))
        parts += [f"Warning: {w}" for w in self.warnings]
        return "\n\n".join(parts)

    def table(self):
        """The findings (and contributions) as a rich Table for the terminal."""
        from rich.markup import escape
        from rich.table import Table

        colours = {"redundant": "red", "foldable": "yellow", "active": "green"}
        t = Table(title=f"Biases of {self.target}", show_lines=False, expand=False)
        for col in ("bias", "type", "numel", "|b| mean", "status"):
            t.add_column(col, justify="right" if col in ("numel", "|b| mean") else "left", no_wrap=col != "type")
        contrib = {c.param: c for c in self.contributions or []}
        if contrib:
            for col in ("‖b‖/‖Wx‖", "ReLU flips", "Δ output", *(("Δ acc",) if self.baseline_accuracy is not None else ())):
                t.add_column(col, justify="right", no_wrap=True)
        t.add_column("why")
        for f in self.findings:
            row = [f.param, f.type, f"{f.numel:,}", f"{f.abs_mean:.3g}", f"[{colours[f.status]}]{f.status}[/]"]
            if contrib:
                c = contrib[f.param]
                row += [_fmt(c.bias_to_signal), _fmt(c.relu_flips, pct=True), _fmt(c.output_change, pct=True)]
                if self.baseline_accuracy is not None:
                    row.append(_fmt(c.accuracy_change, pct=True, sign=True))
            t.add_row(*row, escape(f.short_reason))
        return t

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        from ..render.legacy_plots.audit import plot_bias_status, plot_contributions

        figs = [plot_bias_status(self, out_dir, fmt)]
        if self.contributions:
            figs.append(plot_contributions(self, out_dir, fmt))
        return figs

    def section(self, figures: list[Path]) -> Section:
        contrib = {c.param: c for c in self.contributions or []}
        rows = []
        for f in self.findings:
            row: dict[str, Any] = {"bias": f.param, "type": f.type, "numel": f.numel, "status": f.status}
            if f.param in contrib:
                c = contrib[f.param]
                row.update({"‖b‖/‖W·x‖": _fmt(c.bias_to_signal), "ReLU flips": _fmt(c.relu_flips, pct=True),
                            "Δ output": _fmt(c.output_change, pct=True)})
            row["reason"] = f.reason
            rows.append(row)
        return Section(f"Bias audit of {self.target}", self.summary(), figures, rows)


def _fmt(x: float | None, pct: bool = False, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:{'+' if sign else ''}.3g}%" if pct else f"{x:.3g}"


def _fix_summary(fix: dict[str, Any]) -> str:
    lines = [f"Fixed state_dict written to {fix['path']}: {len(fix['removed'])} redundant biases removed "
             f"({fix['params_saved']:,} parameters saved)"
             + (f", {len(fix['folded'])} BatchNorm layers folded" if fix["folded"] else "") + "."]
    for p in fix["proofs"]:
        lines.append(f"Proof ({p['what']}, {p['mode']} mode, {p['n_inputs']} inputs): max |Δ| = "
                     f"{p['max_abs_diff']:.3g}, relative {p['max_rel_diff']:.3g}.")
    lines.append(f"Load it with: {fix['load']}")
    return " ".join(lines)


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,3,224,224"`` → ``(1, 3, 224, 224)``; a clear error for anything but positive integers."""
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) < 2 or min(shape) < 1:
        raise BiaslabError(f"--input-shape must be positive integers N,C,... with a batch size first "
                           f"(got {text!r}), e.g. 2,3,32,32")
    return shape


def _load_data(data: str, seed: int) -> Any:
    from ..datasets import DATASETS, load_data_path, load_dataset

    return load_dataset(data, seed=seed) if data in DATASETS else load_data_path(data, seed=seed)


def _is_checkpoint(target: str) -> bool:
    return ":" not in target and target not in builtin_names() and (
        Path(target).suffix in CHECKPOINT_SUFFIXES or Path(target).is_file())


def _proof_inputs(model: nn.Module, example: torch.Tensor, n: int, seed: int) -> tuple[list[tuple], list[tuple]]:
    """Inputs for the training-mode and the eval-mode proofs.

    Eval mode: the example plus ``n`` standard-normal inputs of its shape. Training mode: ``n``
    standard-normal inputs with a batch of at least 8 when the model accepts it, because
    training-mode BatchNorm over a tiny batch (or 1×1 maps) amplifies float rounding far beyond
    anything the bias does.
    """
    if not example.is_floating_point():
        return [(example,)], [(example,)]
    g = torch.Generator().manual_seed(seed)
    same = [(torch.randn(example.shape, generator=g).to(example),) for _ in range(n)]
    big = (max(8, example.shape[0]), *example.shape[1:]) if example.dim() > 1 else tuple(example.shape)
    try:
        _run(model, (torch.zeros(big).to(example),))
    except Exception:  # noqa: BLE001 - the model fixes its batch size: keep the example's
        return [(example,), *same], [(example,), *same]
    return [(torch.randn(big, generator=g).to(example),) for _ in range(n)], [(example,), *same]


def _make_fix(model: nn.Module, findings: list[Finding], example: torch.Tensor, path: Path, fold: bool,
              load_expr: str, seed: int) -> dict[str, Any]:
    """Remove redundant biases (and fold BatchNorm), prove equivalence, write the state_dict atomically."""
    redundant = [f for f in findings if f.status == "redundant"]
    fixed = drop_biases(copy.deepcopy(model), redundant)
    train_inputs, eval_inputs = _proof_inputs(model, example, 3, seed)
    proofs: list[tuple[str, Equivalence]] = []
    if redundant:
        proofs += [("biases removed", compare_outputs(model, fixed, train_inputs, "train", seed)),
                   ("biases removed", compare_outputs(model, fixed, eval_inputs, "eval", seed))]
    folded: list[list[str]] = []
    if fold:
        fixed = fold_batchnorm(fixed.eval())
        folded = [n for n, m in fixed.named_modules()
                  if isinstance(m, nn.Identity) and not isinstance(model.get_submodule(n), nn.Identity)]
        proofs.append(("BatchNorm folded", compare_outputs(model, fixed, eval_inputs, "eval", seed)))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    tol = _TOLERANCE.get(dtype, 1e-4)
    bad = [(what, e) for what, e in proofs if not e.max_rel_diff <= tol]
    if bad:
        what, e = bad[0]
        raise BiaslabError(f"the fixed model differs from the original ({what}, {e.mode} mode: relative "
                           f"difference {e.max_rel_diff:.3g} > {tol:g}); nothing written — please report this model")
    state = fixed.state_dict()
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except OSError as exc:
        raise BiaslabError(f"cannot write --fix {path}: {exc.strerror or exc}; pass a writable file path") from None
    n_before = sum(p.numel() for p in model.parameters())
    n_after = sum(p.numel() for p in fixed.parameters())
    removed = [f.param for f in redundant]
    load = f"model = {load_expr}; biaslab.audit.load_fixed(model, {str(path)!r})"
    if fold:
        load += "; model.eval()  (folded BatchNorm: inference only)"
    elif removed:
        load += (f"  — or in plain PyTorch: build the model with bias=False in {', '.join(f.module for f in redundant[:4])}"
                 f"{' ...' if len(redundant) > 4 else ''}, then model.load_state_dict(torch.load({str(path)!r}, "
                 "weights_only=True))")
    return {
        "path": str(path), "removed": removed, "folded": folded, "fold": fold,
        "params_before": n_before, "params_after": n_after, "params_saved": n_before - n_after,
        "proofs": [{"what": what, **e.to_dict(), "tolerance": tol} for what, e in proofs],
        "load": load,
    }


def run_audit(
    target: str,
    arch: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    data: str | None = None,
    samples: int = 128,
    fix: str | Path | None = None,
    fold: bool = False,
    seed: int = 0,
    device: str = "cpu",
    show_progress: bool = False,
) -> AuditResult:
    """Audit the biases of ``target`` (``file.py:factory``, ``module:factory``, a built-in name, or a
    state_dict ``FILE.pt`` with ``arch``).

    Parameters
    ----------
    input_shape : shape of the example input with the batch first, e.g. ``(2, 3, 32, 32)``;
        defaults per built-in model (batch 2) or from ``data``.
    data : ``random`` (standard-normal inputs of ``input_shape``), a built-in data set
        (``digits``, ...) or a data path; measures each bias's contribution on ``samples`` inputs.
    fix : write a state_dict without the redundant biases there (and, with ``fold``, BatchNorm
        folded), after proving the outputs unchanged.
    """
    from ..device import resolve_device
    from ..progress import progress_bar

    if samples < 1:
        raise BiaslabError(f"--samples must be at least 1 (got {samples})")
    if fold and fix is None:
        raise BiaslabError("--fold needs --fix OUT.pt (where to write the folded model)")
    dev = resolve_device(device)
    ds = _load_data(data, seed) if data not in (None, "random") else None
    if ds is not None and input_shape is not None and tuple(input_shape[1:]) != tuple(ds.in_shape):
        raise BiaslabError(f"--input-shape {','.join(map(str, input_shape))} does not match the data's input "
                           f"shape {tuple(ds.in_shape)}; drop --input-shape")
    checkpoint = _is_checkpoint(target)
    if checkpoint and arch is None:
        raise BiaslabError(f"{target} is a checkpoint: pass --arch (a built-in name or file.py:factory) to say "
                           "which architecture its state_dict belongs to")
    spec = arch if checkpoint else target
    sample_shape = tuple(ds.in_shape) if ds is not None else (tuple(input_shape[1:]) if input_shape else None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_target(spec, sample_shape, ds.n_classes if ds is not None else 10)
        if checkpoint:
            load_checkpoint(target, model)
        if input_shape is None:
            default = sample_shape or default_input_shape(spec)
            if default is None:
                raise BiaslabError(f"pass --input-shape N,C,... (e.g. 2,3,32,32): {spec} is a factory, so the "
                                   "audit does not know what input it takes")
            input_shape = (2, *default)
        model = model.to(dev)
        g = torch.Generator().manual_seed(seed)
        if ds is not None:
            example = torch.as_tensor(ds.X_test[: input_shape[0]]).to(dev)
        else:
            example = torch.randn(input_shape, generator=g).to(dev)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            findings = find_biases(model, example)
        notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        result = AuditResult(
            target=target, input_shape=list(input_shape), findings=findings,
            total_params=sum(p.numel() for p in model.parameters()),
            traced=all(f.traced for f in findings) if findings else True, warnings=notes,
            params={"target": target, "arch": arch, "input_shape": list(input_shape), "data": data,
                    "samples": samples, "fix": str(fix) if fix else None, "fold": fold, "seed": seed,
                    "device": str(dev), "initial_weights": not checkpoint and ":" not in target},
        )
        if data is not None:
            if ds is not None:
                X = torch.as_tensor(ds.X_test[:samples]).to(dev)
                y = torch.as_tensor(ds.y_test[:samples]).to(dev)
            else:
                X, y = torch.randn((samples, *input_shape[1:]), generator=g).to(dev), None
            with progress_bar(len(findings), "zeroing each bias", show_progress) as advance:
                result.contributions, result.baseline_accuracy = bias_contributions(model, findings, X, y,
                                                                                     advance=advance)
            result.data, result.n_samples = (ds.name if ds is not None else "random"), len(X)
        if fix is not None:
            load_expr = _load_expression(spec, sample_shape, ds)
            result.fix = _make_fix(model, findings, example, Path(fix), fold, load_expr, seed)
    return result


def _load_expression(spec: str, sample_shape: tuple[int, ...] | None, ds: Any) -> str:
    """Python that rebuilds the audited architecture, for the load instructions."""
    from .. import zoo

    n_classes = ds.n_classes if ds is not None else 10
    if spec in zoo.ZOO:
        return f"biaslab.zoo.build_zoo_model({spec!r}, {sample_shape or zoo.ZOO_INPUT_SHAPES[spec]}, {n_classes})"
    if ":" not in spec:
        return f"biaslab.models.build_model({spec!r}, in_shape={sample_shape or (1, 8, 8)}, n_classes={n_classes})"
    return f"{spec.rpartition(':')[2]}()  (your factory from {spec.rpartition(':')[0]})"
