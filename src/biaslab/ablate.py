"""``biaslab ablate``: the same network trained with and without bias, over seeds and data sets.

For each configuration (model × data set) every (variant, seed) trains at once as one batched
model (:func:`biaslab.train.train_batched`). Runs of one seed share their initial weights and
mini-batch order, so the per-seed differences between variants measure the bias and not the
luck of the seed; :mod:`biaslab.stats` turns them into a paired test and a verdict.

Each finished run is appended to ``OUT/runs.jsonl`` as soon as its batch completes; running
the same command again skips the runs already there, so an interrupted grid resumes where it
stopped. The result (``results.json``, figures, report) is rebuilt from those records.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .datasets import DATASETS, Dataset, load_data_path, load_dataset
from .shifts import SHIFTS, apply_shift
from .io import BiaslabError
from .models import MODEL_NAMES, VARIANTS
from .render.report import Section
from .stats import Comparison, paired_comparison, summarize

__all__ = [
    "MODEL_DEFAULTS",
    "QUICK_SEEDS",
    "AblationInterrupted",
    "ConfigResult",
    "AblateResult",
    "run_ablate",
]

#: Per-model training defaults (Adam): learning rate, batch size, epochs, epochs with --quick.
MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "linear": {"lr": 5e-2, "batch_size": 32, "epochs": 30, "quick_epochs": 10},
    "mlp": {"lr": 3e-3, "batch_size": 32, "epochs": 30, "quick_epochs": 10},
    "cnn": {"lr": 3e-3, "batch_size": 64, "epochs": 20, "quick_epochs": 6},
    "cnn-bn": {"lr": 3e-3, "batch_size": 64, "epochs": 20, "quick_epochs": 6},
}
DEFAULT_SEEDS = 5
QUICK_SEEDS = 3
RUNS_FILE = "runs.jsonl"
RECORD_VERSION = 1

_NOTES = {
    "cnn-bn": (
        "Why cnn-bn should show no difference for the conv bias: every convolution feeds a "
        "BatchNorm, which subtracts the per-channel mean of its input (over the batch in "
        "training, the running mean at test time) — and with it any constant the convolution "
        "added. The conv bias cannot change the output, and its gradient is zero up to rounding "
        "(Adam may still let it drift, which BatchNorm cancels again). The biases that act are "
        "BatchNorm's shift β and the classifier's bias; the no-bias variant removes those too, "
        "conv-no-bias only the redundant ones."
    ),
    "conv-no-bias-dense": (
        "{model} has no convolutions, so its conv-no-bias variant is the with-bias model."
    ),
}


class AblationInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``run_ablate``; the message says what is saved and how to resume."""


@dataclass
class ConfigResult:
    """All runs of one configuration (model, data set, training settings)."""

    model: str
    dataset: str
    settings: dict[str, Any]
    data: dict[str, Any]
    variants: list[str]
    seeds: list[int]
    runs: dict[str, list[dict[str, Any]]]  # variant -> one record per seed, in seed order
    comparisons: list[Comparison]
    shift_comparisons: dict[str, list[Comparison]]  # shift kind -> comparisons at its strongest setting

    def test_acc(self, variant: str) -> np.ndarray:
        return np.array([r["test_acc"] for r in self.runs[variant]])

    def notes(self) -> list[str]:
        out = []
        if self.model == "cnn-bn":
            out.append(_NOTES["cnn-bn"])
        if self.model in ("linear", "mlp") and "conv-no-bias" in self.variants:
            out.append(_NOTES["conv-no-bias-dense"].format(model=self.model))
        return out

    def variant_dict(self, variant: str) -> dict[str, Any]:
        runs = self.runs[variant]
        acc = self.test_acc(variant)
        s = summarize(acc)
        curves = {k: [r["curves"][k] for r in runs] for k in ("train_loss", "test_loss", "test_acc")}
        shift = {
            kind: {"strengths": list(SHIFTS[kind]), "test_acc": [r["shift"][kind] for r in runs],
                   "mean": np.mean([r["shift"][kind] for r in runs], axis=0)}
            for kind in SHIFTS
        }
        return {
            "test_acc": acc,
            "mean": s.mean,
            "std": s.std,
            "ci95": [s.ci_low, s.ci_high],
            "params": runs[0]["params"],
            "train_acc": [r["train_acc"] for r in runs],
            "train_loss": [r["train_loss"] for r in runs],
            "test_loss": [r["test_loss"] for r in runs],
            "seeds": self.seeds,
            "curves": curves,
            "shift": shift,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "settings": self.settings,
            "data": self.data,
            "seeds": self.seeds,
            "variants": {v: self.variant_dict(v) for v in self.variants},
            "comparisons": [c.to_dict() for c in self.comparisons],
            "shift_comparisons": {k: [c.to_dict() for c in cs] for k, cs in self.shift_comparisons.items()},
            "notes": self.notes(),
        }

    def headline(self) -> str:
        """A few short lines: accuracy per variant, each verdict, the verdicts under shift."""
        offset = f", input offset {self.settings['input_offset']:+g}" if self.settings["input_offset"] else ""
        raw = "" if self.settings["standardize"] else ", not standardised"
        lines = [f"{self.model} on {self.dataset} ({len(self.seeds)} seeds, {self.settings['epochs']} epochs{offset}{raw})"]
        for v in self.variants:
            sm = summarize(self.test_acc(v))
            lines.append(f"  {v:<13} test acc {sm.mean:.4f} ± {sm.std:.4f}  "
                         f"95% CI [{sm.ci_low:.4f}, {sm.ci_high:.4f}]  {self.runs[v][0]['params']} params")
        for c in self.comparisons:
            lines += [
                f"  {c.a} vs {c.b}: {c.verdict}",
                f"    diff {c.diff_mean:+.4f} [{c.diff_ci_low:+.4f}, {c.diff_ci_high:+.4f}]  "
                f"p = {c.p_value:.3g} (t), {c.wilcoxon_p:.3g} (Wilcoxon)  d_z {c.effect_size:.2f}",
                f"    {c.a} better in {c.a_wins}, worse in {c.b_wins}, tied in {c.ties} of {c.n} seeds",
            ]
        for kind, cs in self.shift_comparisons.items():
            lines += [f"  under {kind} {SHIFTS[kind][-1]:g}, {c.a} vs {c.b}: {c.verdict}"
                      f"\n    diff {c.diff_mean:+.4f}  p = {c.p_value:.3g}" for c in cs]
        return "\n".join(lines)


    def paragraph(self) -> str:
        """The headline as prose, for the report."""
        accs = ", ".join(
            f"{v} {summarize(self.test_acc(v)).mean:.4f} ± {summarize(self.test_acc(v)).std:.4f} "
            f"({self.runs[v][0]['params']} params)" for v in self.variants
        )
        comps = " ".join(f"{c.a} vs {c.b}: {c.sentence()}." for c in self.comparisons)
        shifts = "; ".join(
            f"{kind} {SHIFTS[kind][-1]:g}, {c.a} vs {c.b}: {c.verdict} ({c.diff_mean:+.4f}, p = {c.p_value:.3g})"
            for kind, cs in self.shift_comparisons.items() for c in cs
        )
        inputs = "standardised" if self.settings["standardize"] else "not standardised"
        if self.settings["input_offset"]:
            inputs += f", offset by {self.settings['input_offset']:+g}"
        return (f"{self.model} on {self.dataset} ({len(self.seeds)} seeds, {self.settings['epochs']} epochs, "
                f"inputs {inputs}): test accuracy {accs}. {comps} At the strongest shifts: {shifts}.")


@dataclass
class AblateResult:
    """Every configuration of one ``biaslab ablate`` invocation."""

    configs: list[ConfigResult]
    runs_file: Path | None
    trained: int
    resumed: int
    device: str
    settings: dict[str, Any] = field(default_factory=dict)
    command: str = "ablate"

    def summary_table(self) -> list[dict[str, Any]]:
        rows = []
        for c in self.configs:
            for comp in c.comparisons:
                rows.append({
                    "model": c.model,
                    "dataset": c.dataset,
                    "a": comp.a,
                    "b": comp.b,
                    "acc a": float(c.test_acc(comp.a).mean()),
                    "acc b": float(c.test_acc(comp.b).mean()),
                    "diff": comp.diff_mean,
                    "p (t)": comp.p_value,
                    "p (Wilcoxon)": comp.wilcoxon_p,
                    "d_z": comp.effect_size,
                    "seeds a>b": f"{comp.a_wins}/{comp.n}",
                    "verdict": comp.verdict,
                })
        return rows

    def to_dict(self) -> dict[str, Any]:
        configs = [c.to_dict() for c in self.configs]
        first = configs[0]
        return {
            # The first configuration at the top level (the whole result for a single one) ...
            "model": first["model"],
            "dataset": first["dataset"],
            "variants": first["variants"],
            "comparisons": first["comparisons"],
            # ... and every configuration of a grid.
            "configurations": configs,
            "table": self.summary_table(),
            "settings": self.settings,
            "runs_file": str(self.runs_file) if self.runs_file else None,
            "trained_runs": self.trained,
            "resumed_runs": self.resumed,
            "device": self.device,
        }

    def summary(self) -> str:
        lines = [c.headline() for c in self.configs]
        if len(self.configs) > 1:
            table = self.summary_table()
            refs = " / ".join(dict.fromkeys(r["a"] for r in table))
            rows = [f"Summary (a = {refs}, b = the variant it is compared with):",
                    f"{'model':<7}{'dataset':<12}{'b':<13}{'acc a':>6} {'acc b':>6} {'p (t)':>7}  verdict"]
            rows += [f"{r['model']:<7}{r['dataset'][:11]:<12}{r['b']:<13}{r['acc a']:.4f} {r['acc b']:.4f} "
                     f"{r['p (t)']:>7.2g}  {r['verdict']}" for r in table]
            lines.append("\n".join(rows))
        notes = sorted({n for c in self.configs for n in c.notes()})
        lines += notes
        if self.runs_file is not None:
            lines.append(
                f"{self.trained} runs trained, {self.resumed} reused from {self.runs_file} "
                "(re-running the same command skips finished runs)."
            )
        return "\n\n".join(lines)

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        from .render.legacy_plots.ablate import plot_accuracies, plot_curves, plot_shift

        return [plot_accuracies(self, out_dir, fmt), plot_curves(self, out_dir, fmt),
                plot_shift(self, out_dir, fmt)]

    def section(self, figures: list[Path]) -> Section:
        text = [
            "The same network trained with and without its biases: same seeds (initial weights "
            "and batch order shared across variants), same data; only the bias switched. "
            "Verdicts use a paired t-test over seeds at α = 0.05 (Wilcoxon alongside)."
        ]
        text += [c.paragraph() for c in self.configs]
        text += sorted({n for c in self.configs for n in c.notes()})
        text.append(
            "Shifted test inputs (no retraining): brightness adds a constant to every input, "
            "contrast scales each input's deviation from its mean, noise adds Gaussian noise; all in "
            "units of the standardised data. A ReLU network without biases (and without BatchNorm) "
            "is positively homogeneous: scaling its input by c > 0 scales its logits by c^depth, so "
            "its decisions cannot change. A contrast drop x → m + c·(x − m) is close to such a "
            "scaling when the per-input mean m is small, which is why no-bias models often hold up "
            "better there; biases break that symmetry."
        )
        return Section("Ablation: training with and without bias", "\n\n".join(text), figures,
                       self.summary_table())


# --------------------------------------------------------------------------------------
# Resumable run records
# --------------------------------------------------------------------------------------

def _fingerprint(ds: Dataset) -> str:
    """Hash of the prepared arrays: edited data files never reuse stale runs."""
    h = hashlib.sha256()
    for a in (ds.X_train, ds.y_train, ds.X_test, ds.y_test):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _config_key(settings: dict[str, Any]) -> str:
    blob = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_runs(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Finished runs in ``path`` by (config key, variant, seed); a torn last line is ignored."""
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            key = (rec["config"], rec["variant"], int(rec["seed"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # an interrupted write or a foreign line: that run is simply redone
        if rec.get("record_version") == RECORD_VERSION:
            done[key] = rec
    return done


def append_runs(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records, one JSON line each, and flush them to disk."""
    from .io import to_jsonable

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        if fh.tell() > 0:  # make sure a torn line from a crash does not swallow our first record
            with path.open("rb") as rb:
                rb.seek(-1, os.SEEK_END)
                if rb.read(1) != b"\n":
                    fh.write("\n")
        for rec in records:
            fh.write(json.dumps(to_jsonable(rec)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------

def _check_names(values: list[str], allowed: tuple[str, ...], what: str, flag: str) -> list[str]:
    if not values:
        raise BiaslabError(f"{flag} needs at least one {what}; choose from {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            raise BiaslabError(f"unknown {what} {v!r} in {flag}; choose from {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise BiaslabError(f"{flag} lists a {what} twice ({', '.join(values)})")
    return values


def _shift_accuracies(stack, ds: Dataset, device, noise_seed: int) -> dict[str, np.ndarray]:
    """Test accuracy of every model under every shift: kind -> (M, len(strengths))."""
    import torch

    y = torch.as_tensor(ds.y_test, device=device)
    out = {}
    for kind, strengths in SHIFTS.items():
        accs = []
        for s in strengths:
            X = torch.as_tensor(apply_shift(ds.X_test, kind, s, seed=noise_seed), device=device)
            accs.append(stack.evaluate(X, y)[0])
        out[kind] = np.stack(accs, axis=1)
    return out


def _more_biases_first(variants: list[str], params: dict[str, int]) -> list[tuple[str, str]]:
    """Pairs (a, b) comparing the variant with the most biases against each other one."""
    ref = max(variants, key=lambda v: (params[v], -variants.index(v)))
    return [(ref, v) for v in variants if v != ref]


def run_ablate(
    models: list[str] | None = None,
    datasets: list[str] | None = None,
    data_path: str | Path | None = None,
    variants: list[str] | None = None,
    seeds: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    input_offset: float = 0.0,
    standardize: bool = True,
    quick: bool = False,
    max_train: int | None = None,
    device: str = "auto",
    seed: int = 0,
    out_dir: str | Path | None = "biaslab-out/ablate",
    show_progress: bool = False,
    alpha: float = 0.05,
) -> AblateResult:
    """Train every model on every data set with and without bias, over seeds; compare.

    Parameters
    ----------
    models : names from :data:`biaslab.models.MODEL_NAMES` (default ``["cnn"]``).
    datasets : names from :data:`biaslab.datasets.DATASETS` (default ``["digits"]``); ignored
        when ``data_path`` is given.
    data_path : the user's data: an MNIST IDX directory, an image folder or an ``.npz``.
    variants : from :data:`biaslab.models.VARIANTS` (default ``with-bias, no-bias``).
    seeds : number of seeds (default 5, 3 with ``quick``); seeds are ``seed .. seed+seeds-1``.
    epochs, lr, batch_size : override :data:`MODEL_DEFAULTS` (``quick`` uses ``quick_epochs``).
    input_offset : constant added to every input after standardisation.
    standardize : z-score inputs with training statistics.
    max_train : keep at most this many training samples (stratified).
    out_dir : where ``runs.jsonl`` lives; finished runs there are reused. ``None``: keep
        nothing on disk (and resume nothing).
    alpha : significance level of the verdicts.

    Returns
    -------
    :class:`AblateResult`. Raises :class:`AblationInterrupted` on Ctrl-C after saving every
    finished batch.
    """
    from .device import resolve_device
    from .models import build_model, count_parameters
    from .progress import progress_bar
    from .train import TrainConfig, train_batched

    models = _check_names(models or ["cnn"], MODEL_NAMES, "model", "--model")
    variants = _check_names(variants or ["with-bias", "no-bias"], VARIANTS, "variant", "--variants")
    n_seeds = seeds if seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    if n_seeds < 2:
        raise BiaslabError(f"--seeds must be at least 2 for paired statistics (got {n_seeds})")
    if len(variants) < 2:
        raise BiaslabError(f"--variants needs at least two variants to compare (got {', '.join(variants)})")
    if epochs is not None and epochs < 1:
        raise BiaslabError(f"--epochs must be at least 1 (got {epochs})")
    dev = resolve_device(device)

    # Load and check everything before training anything: a bad combination fails fast.
    if data_path is not None:
        loaded = {None: load_data_path(data_path, seed=seed, standardize=standardize,
                                       input_offset=input_offset, max_train=max_train)}
        source = {None: str(Path(data_path).resolve())}
    else:
        names = _check_names(datasets or ["digits"], DATASETS, "dataset", "--dataset")
        loaded = {n: load_dataset(n, seed=seed, standardize=standardize, input_offset=input_offset,
                                  max_train=max_train) for n in names}
        source = {n: n for n in names}
    plan = []
    for model in models:
        d = MODEL_DEFAULTS[model]
        for key, ds in loaded.items():
            params = {v: count_parameters(build_model(model, v, ds.in_shape, ds.n_classes)) for v in variants}
            cfg = TrainConfig(
                epochs=int(epochs if epochs is not None else d["quick_epochs"] if quick else d["epochs"]),
                lr=float(lr if lr is not None else d["lr"]),
                batch_size=int(batch_size if batch_size is not None else d["batch_size"]),
            )
            settings = {
                "model": model, "data": source[key], "epochs": cfg.epochs, "lr": cfg.lr,
                "batch_size": cfg.batch_size, "input_offset": float(input_offset),
                "standardize": bool(standardize), "split_seed": seed, "max_train": max_train,
                "optimizer": "adam", "data_sha256": _fingerprint(ds),
            }
            plan.append((model, ds, cfg, settings, params))

    runs_path = None if out_dir is None else Path(out_dir) / RUNS_FILE
    if runs_path is not None and runs_path.parent.exists() and not runs_path.parent.is_dir():
        raise BiaslabError(f"--out {runs_path.parent} is a file; pass a directory")
    done = read_runs(runs_path) if runs_path is not None else {}
    seed_list = [seed + i for i in range(n_seeds)]
    todo = []
    resumed = 0
    for model, ds, cfg, settings, params in plan:
        key = _config_key(settings)
        missing = [(v, s) for v in variants for s in seed_list if (key, v, s) not in done]
        resumed += len(variants) * n_seeds - len(missing)
        if missing:
            todo.append((model, ds, cfg, settings, key, missing, params))

    trained = 0
    total_epochs = sum(cfg.epochs for _, _, cfg, *_ in todo)
    try:
        with progress_bar(total_epochs, "ablate", show_progress) as advance:
            for model, ds, cfg, settings, key, missing, params in todo:
                advance(0, description=f"ablate {model} on {ds.name} ({len(missing)} runs)")
                stack, hists = train_batched(model, ds, missing, cfg, dev, on_epoch=lambda e: advance())
                shifts = _shift_accuracies(stack, ds, dev, noise_seed=seed)
                records = [
                    {
                        "record_version": RECORD_VERSION, "biaslab_version": __version__,
                        "config": key, "settings": settings, "variant": v, "seed": s,
                        "params": params[v], **h.final,
                        "curves": {"train_loss": h.train_loss, "test_loss": h.test_loss, "test_acc": h.test_acc},
                        "shift": {kind: acc[m] for kind, acc in shifts.items()},
                    }
                    for m, ((v, s), h) in enumerate(zip(missing, hists))
                ]
                if runs_path is not None:
                    append_runs(runs_path, records)
                for rec in records:
                    done[(key, rec["variant"], rec["seed"])] = rec
                trained += len(records)
    except KeyboardInterrupt:
        if runs_path is None:
            raise
        raise AblationInterrupted(
            f"interrupted: {trained} new runs were saved in {runs_path} before the batch in "
            "progress; run the same command again to resume (finished runs are skipped)"
        ) from None

    configs = []
    for model, ds, _cfg, settings, params in plan:
        key = _config_key(settings)
        runs = {v: [done[(key, v, s)] for s in seed_list] for v in variants}
        pairs = _more_biases_first(variants, params)
        comparisons = [paired_comparison(a, [r["test_acc"] for r in runs[a]],
                                         b, [r["test_acc"] for r in runs[b]], alpha) for a, b in pairs]
        shift_comparisons = {
            kind: [paired_comparison(a, [r["shift"][kind][-1] for r in runs[a]],
                                     b, [r["shift"][kind][-1] for r in runs[b]], alpha) for a, b in pairs]
            for kind in SHIFTS
        }
        configs.append(ConfigResult(model, ds.name, settings, ds.describe(), variants, seed_list,
                                    runs, comparisons, shift_comparisons))
    return AblateResult(
        configs=configs, runs_file=runs_path, trained=trained, resumed=resumed, device=str(dev),
        settings={"models": models, "datasets": [ds.name for ds in loaded.values()],
                  "variants": variants, "seeds": seed_list, "alpha": alpha, "quick": quick,
                  "shifts": {k: list(v) for k, v in SHIFTS.items()}},
    )
