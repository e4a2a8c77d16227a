"""``biaslab ablate``: the same network trained with and without bias, over seeds and data sets.

The driver here checks every input, plans the grid (models × data sets; invalid pairs are
listed and skipped), hands the configurations that still miss runs to an engine
(:mod:`biaslab.experiments.ablate.engines`), appends each finished configuration's runs to
``OUT/runs.jsonl`` (:mod:`biaslab.experiments.ablate.runs`) and builds the result from those records:
summaries, paired comparisons (:mod:`biaslab.math.stats`) and claims (:mod:`biaslab.experiments.ablate.claims`).

Runs of one seed share their initial weights and mini-batch order, so the per-seed differences
between variants measure the bias and not the luck of the seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...data.datasets import DATASETS, Dataset, load_data_path, load_dataset
from ...infra.io import BiaslabError
from ...nets.models import MODEL_NAMES
from ...results.ablate import AblateResult, ConfigResult, ShiftComparison, SkippedPair, VariantRuns
from ...math.stats import DEFAULT_MARGIN, adjust_family, ci_band, look_alphas, paired_comparison, sequential_looks, std_band, summarize
from ...infra.threads import available_cpus
from ...infra.validate import bounded_int, call_user_code, factory_file, finite_number, param
from .claims import ablate_claims
from .engines import ENGINES, ModelSpec, Unit
from .runs import RUNS_FILE, append_runs, config_key, fingerprint, read_runs, usable_record
from .shifts import check_shifts, shift_label, strongest
from .variants import check_variants, parts_mask, removed_count, removed_parts

__all__ = ["MODEL_DEFAULTS", "DEFAULT_SEEDS", "QUICK_SEEDS", "MAX_SEEDS", "MAX_EPOCHS", "AblationInterrupted",
           "run_ablate", "AUTO_MAX_SEEDS"]

#: Training defaults per built-in model ("file" for a user's factory): learning rate, batch
#: size, epochs, epochs with --quick.
MODEL_DEFAULTS: dict[str, dict[str, float]] = {
    "linear": {"lr": 5e-2, "batch_size": 32, "epochs": 30, "quick_epochs": 10},
    "mlp": {"lr": 3e-3, "batch_size": 32, "epochs": 30, "quick_epochs": 10},
    "cnn": {"lr": 3e-3, "batch_size": 64, "epochs": 20, "quick_epochs": 6},
    "cnn-bn": {"lr": 3e-3, "batch_size": 64, "epochs": 20, "quick_epochs": 6},
    "file": {"lr": 3e-3, "batch_size": 64, "epochs": 20, "quick_epochs": 6},
}
DEFAULT_SEEDS = 5
QUICK_SEEDS = 3
#: ``seeds="auto"``: the default last look.
AUTO_MAX_SEEDS = 20
#: Bounds that keep a typo from starting a week-long run.
MAX_SEEDS = 1000
MAX_EPOCHS = 10_000
#: Largest |input offset|: beyond it float32 activations overflow (a 1e38 offset makes every logit inf).
MAX_INPUT_OFFSET = 1e6
#: The per-seed curves kept for the learning-curve figure.
CURVES = ("train_loss", "test_loss", "test_acc")


class AblationInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``run_ablate``; the message says what is saved and how to resume."""


def _names(values: list[str], allowed: tuple[str, ...] | None, what: str, name: str) -> list[str]:
    """The list parameter ``name``: non-empty, known (unless ``allowed`` is None), no duplicates."""
    name = param(name)
    values = [v.strip() for v in values if v.strip()]
    if not values:
        choices = f"; choose from {', '.join(allowed)}" if allowed else ""
        raise BiaslabError(f"{name} needs at least one {what}{choices}")
    for v in values:
        if allowed is not None and v not in allowed:
            raise BiaslabError(f"unknown {what} {v!r} in {name}; choose from {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise BiaslabError(f"{name} lists a {what} twice ({', '.join(values)})")
    return values


def _check_models(models: list[str]) -> list[ModelSpec]:
    models = _names(models, None, "model", "models")
    for m in models:
        if ":" not in m and m not in MODEL_NAMES:
            raise BiaslabError(f"unknown model {m!r} in `models`; choose from {', '.join(MODEL_NAMES)} "
                               "or pass your own as path/to/file.py:factory")
    specs = []
    for m in models:  # a factory file by its absolute path: Ray workers may start elsewhere
        where, _, attr = m.rpartition(":")
        factory_file(m)  # a missing file is refused before anything starts (Ray, the data load)
        specs.append(ModelSpec(f"{Path(where).resolve()}:{attr}" if where.endswith(".py") else m))
    return specs


def _label(spec: ModelSpec) -> str:
    """The model's name in claim ids and tables: the built-in name or ``file.py:factory``."""
    if spec.builtin:
        return spec.name
    where, _, attr = spec.name.rpartition(":")
    return f"{Path(where).name}:{attr}" if where.endswith(".py") else spec.name


def _model_source(spec: ModelSpec) -> str | None:
    """A hash of the factory's file, so that an edited model never reuses stale runs."""
    where = spec.name.rpartition(":")[0]
    if spec.builtin or not where.endswith(".py"):
        return None
    import hashlib

    return hashlib.sha256(Path(where).read_bytes()).hexdigest()[:16]


@dataclass
class _Config:
    """One valid (model, data set) pair with everything the engine and the result need."""

    spec: ModelSpec
    ds: Dataset
    unit: Unit
    biases: dict[str, int]


def _prepare(spec: ModelSpec, ds: Dataset, source: str, variants: list[str], train_cfg, shifts, seed: int,
             device: str, threads: int | None, extra: dict[str, Any]) -> _Config:
    """Build the model for ``ds``, check its input and output shapes, compute each variant's mask.

    Raises :class:`BiaslabError` with the reason when the pair cannot run.
    """
    import torch

    from ...nets.biases import count_biases
    from ...nets.models import count_parameters

    model = spec.build(seed, ds.in_shape, ds.n_classes)
    example = torch.as_tensor(ds.X_train[:2])
    model.eval()
    with torch.no_grad():
        out = call_user_code(model, f"forward pass of model {_label(spec)} on {ds.name} inputs of shape "
                                    f"{tuple(ds.in_shape)}", example)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, ds.n_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BiaslabError(f"model {_label(spec)} maps a batch of 2 {ds.name} inputs {tuple(ds.in_shape)} to {got}; "
                           f"it must return logits of shape (2, {ds.n_classes})")
    if not out.is_floating_point() or not bool(torch.isfinite(out).all()):
        raise BiaslabError(f"model {_label(spec)} returns logits that are NaN, infinite or not floating point on "
                           f"{ds.name} inputs (largest |input| {float(example.abs().max()):.3g}); fix the model, or "
                           "use inputs of a smaller scale (input offset)")
    model.train()
    total, n_bias = count_parameters(model), count_biases(model)
    masks, params, biases = {}, {}, {}
    for v in variants:
        removed = removed_parts(model, v, example)
        masks[v] = parts_mask(model, removed)
        dropped = removed_count(model, removed)
        params[v], biases[v] = total - dropped, n_bias - dropped
    settings = {
        "model": _label(spec), "model_sha256": _model_source(spec), "data": source,
        "data_sha256": fingerprint(ds.X_train, ds.y_train, ds.X_test, ds.y_test),
        "epochs": train_cfg.epochs, "lr": train_cfg.lr, "batch_size": train_cfg.batch_size,
        "optimizer": train_cfg.optimizer, "momentum": train_cfg.momentum, "weight_decay": train_cfg.weight_decay,
        "decay_bias": train_cfg.decay_bias, "split_seed": seed, "shifts": {k: list(v) for k, v in shifts.items()},
        **extra,
    }
    unit = Unit(spec=spec, ds=ds, config=train_cfg, key=config_key(settings), settings=settings, runs=[],
                masks=masks, params=params, shifts=shifts, noise_seed=seed, device=device, threads=threads,
                label=f"{_label(spec)} on {ds.name}")
    return _Config(spec, ds, unit, biases)


def _more_biases_first(variants: list[str], params: dict[str, int]) -> list[tuple[str, str]]:
    """Pairs (a, b) comparing the variant with the most parameters against each other one."""
    ref = max(variants, key=lambda v: (params[v], -variants.index(v)))
    return [(ref, v) for v in variants if v != ref]


def _config_result(c: _Config, runs: dict[str, list[dict[str, Any]]], seeds: list[int], variants: list[str],
                   alpha: float) -> ConfigResult:
    """Summaries, bands and paired comparisons of one configuration's runs."""
    u = c.unit
    vr = {}
    for v in variants:
        recs = runs[v]
        col = {k: np.array([r[k] for r in recs], dtype=np.float64)
               for k in ("test_acc", "train_acc", "test_loss", "train_loss")}
        curves = {k: np.array([r["curves"][k] for r in recs], dtype=np.float64) for k in CURVES}
        shift = {kind: np.array([r["shift"][kind] for r in recs], dtype=np.float64) for kind in u.shifts}
        vr[v] = VariantRuns(
            variant=v, params=u.params[v], biases=c.biases[v], **col,
            summary=summarize(col["test_acc"], bounds=(0.0, 1.0)), curves=curves, shift=shift,
            curve_bands={k: std_band(x) for k, x in curves.items()},
            shift_bands={k: ci_band(x) for k, x in shift.items()},
        )
    pairs = _more_biases_first(variants, u.params)
    comparisons = [paired_comparison(a, vr[a].test_acc, b, vr[b].test_acc, alpha) for a, b in pairs]
    shift_comparisons = [  # at the STRONGEST level: furthest from the identity (each of equally strong ones)
        ShiftComparison(kind, levels[i], shift_label(kind, levels[i]),
                        paired_comparison(a, vr[a].shift[kind][:, i], b, vr[b].shift[kind][:, i], alpha), i)
        for kind, levels in u.shifts.items() for a, b in pairs for i in strongest(kind, levels)
    ]
    fallback = next((r.get("fallback") for rs in runs.values() for r in rs if r.get("fallback")), None)
    return ConfigResult(
        model=_label(c.spec), dataset=c.ds.name, settings=u.settings, data=c.ds.describe(), seeds=seeds,
        variants=vr, comparisons=comparisons, shift_levels={k: list(v) for k, v in u.shifts.items()},
        shift_comparisons=shift_comparisons, batched=fallback is None, fallback=fallback,
    )


def run_ablate(
    models: list[str] | None = None,
    datasets: list[str] | None = None,
    data_path: str | Path | None = None,
    variants: list[str] | None = None,
    drop: list[str] | None = None,
    seeds: int | str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    optimizer: str = "adam",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    decay_bias: bool = True,
    input_offset: float = 0.0,
    standardize: bool = True,
    quick: bool = False,
    max_train: int | None = None,
    shifts: list[str] | None = None,
    shift_levels: list[float] | None = None,
    device: str = "auto",
    threads: int | None = None,
    engine: str = "local",
    address: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = "biaslab-out/ablate",
    show_progress: bool | None = None,  # None: a live bar in a Jupyter kernel only
    alpha: float = 0.05,
    max_seeds: int | None = None,
    spending: str = "pocock",
    notify: Callable[[str], None] | None = None,
    ray_background_shutdown: bool = False,
) -> AblateResult:
    """Train every model on every data set with and without (some of) its biases, over seeds; compare.

    Parameters
    ----------
    models : built-in names (:data:`biaslab.nets.models.MODEL_NAMES`) or ``path/to/file.py:factory``
        (a function returning an ``nn.Module``; called once per seed under ``torch.manual_seed``).
        Default ``["cnn"]``.
    datasets : names from :data:`biaslab.data.datasets.DATASETS` (default ``["digits"]``); not with ``data_path``.
    data_path : the user's data: an MNIST IDX directory, an image folder or an ``.npz``.
    variants : from :data:`biaslab.experiments.ablate.variants.NAMED_VARIANTS` (default ``with-bias, no-bias``).
    drop : glob patterns over bias parameter names; each adds a variant ``drop:PATTERN``.
    seeds : number of seeds, 2 .. :data:`MAX_SEEDS` (default 5, 3 with ``quick``); seeds are
        ``seed .. seed+seeds-1``. ``"auto"``: a group-sequential design: pre-set looks
        (:func:`biaslab.math.stats.sequential_looks`) up to ``max_seeds``, each testing the run's
        family at its share of ``alpha`` (:func:`biaslab.math.stats.look_alphas` with
        ``spending``), stopping at the first look where every comparison is decided; a decision
        stands at the look that made it.
    max_seeds : with ``seeds="auto"``, the last look (default :data:`AUTO_MAX_SEEDS`).
    spending : with ``seeds="auto"``: ``pocock`` or ``obrien-fleming`` α spending.
    epochs, lr, batch_size : override :data:`MODEL_DEFAULTS` (``quick`` uses ``quick_epochs``).
    optimizer, momentum, weight_decay, decay_bias : see :class:`biaslab.nets.train.TrainConfig`.
    input_offset : constant added to every input after standardisation.
    standardize : z-score inputs with training statistics.
    max_train : keep at most this many training samples (stratified).
    shifts, shift_levels : the shift grid (:func:`biaslab.experiments.ablate.shifts.check_shifts`).
    threads : torch (and its BLAS) threads per training process.
    engine : ``local`` or ``ray`` (each configuration a Ray task; ``address`` joins a cluster).
    out_dir : where ``runs.jsonl`` lives; finished runs there are reused. ``None``: keep
        nothing on disk (and resume nothing).
    alpha : significance level of the verdicts: the run's comparisons are one family, Holm-adjusted.
    notify : called with one line per note the user should see before training starts
        (pairs of a grid that are skipped, and why).
    ray_background_shutdown : with ``engine="ray"``, return while a Ray started here is still
        stopping in a background thread (joined at exit; the CLI writes its report meanwhile).
        Do not start Ray yourself right after such a call.

    Returns
    -------
    :class:`biaslab.results.ablate.AblateResult`. Raises :class:`BiaslabError` for bad input
    before anything trains, :class:`AblationInterrupted` on Ctrl-C after saving every finished
    configuration.
    """
    settings = check_settings(
        models=models, datasets=datasets, data_path=data_path, variants=variants, drop=drop, seeds=seeds,
        epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, momentum=momentum,
        weight_decay=weight_decay, decay_bias=decay_bias, input_offset=input_offset, standardize=standardize,
        quick=quick, max_train=max_train, shifts=shifts, shift_levels=shift_levels, device=device, threads=threads,
        engine=engine, address=address, seed=seed, alpha=alpha, max_seeds=max_seeds, spending=spending)
    with ExitStack() as stack:
        session = _ray_session(stack, settings, show_progress, ray_background_shutdown) if engine == "ray" else None
        # Load and check everything before training anything: a bad combination fails fast.
        loaded, configs, skipped = plan_grid(settings)
        for s in skipped:
            if notify is not None:
                notify(f"skipping {s.model} on {s.dataset}: {s.reason}")
        runs_path = None if out_dir is None else Path(out_dir) / RUNS_FILE
        if runs_path is not None and runs_path.parent.exists() and not runs_path.parent.is_dir():
            raise BiaslabError(f"`out_dir` {runs_path.parent} is a file; pass a directory")
        done = read_runs(runs_path, {c.unit.key for c in configs}) if runs_path is not None else {}
        before = dict(done)
        results, seed_list, trained, design = train_and_compare(settings, configs, session, runs_path, done,
                                                                show_progress)
        resumed = sum(1 for c in configs for v in settings.variants for s in seed_list
                      if before.get((c.unit.key, v, s)) is done[(c.unit.key, v, s)])
    _check_finite_runs(results)
    params = {"models": [s.name for s in settings.specs], "datasets": [ds.name for ds in loaded.values()],
              "variants": settings.variants, "seeds": seed_list, "alpha": alpha, "quick": quick, "seed": seed,
              "shifts": {k: list(v) for k, v in settings.shift_grid.items()}, "engine": engine,
              "margin": DEFAULT_MARGIN, "family": sum(len(list(_keyed([r]))) for r in results), **design}
    return AblateResult(
        configurations=results, skipped=skipped, runs_file=None if runs_path is None else str(runs_path),
        trained=trained, resumed=resumed, device=settings.device, engine=engine, claims=ablate_claims(results),
        params=params,
    )


@dataclass
class AblateSettings:
    """A checked ablation: what to train (models, data, variants), how (one :class:`TrainConfig` per
    model), on how many seeds (a number, or ``auto`` up to ``n_seeds`` with ``spending``) and where."""

    specs: list[ModelSpec]
    variants: list[str]
    auto: bool
    n_seeds: int
    train: dict[ModelSpec, Any]
    shift_grid: dict[str, Any]
    dataset_names: list[str] | None
    data_path: str | Path | None
    device: str
    threads: int | None
    seed: int
    alpha: float
    spending: str
    data_options: dict[str, Any]
    engine: str
    address: str | None


def check_settings(*, models, datasets, data_path, variants, drop, seeds, epochs, lr, batch_size, optimizer,
                   momentum, weight_decay, decay_bias, input_offset, standardize, quick, max_train, shifts,
                   shift_levels, device, threads, engine, address, seed, alpha, max_seeds, spending) -> AblateSettings:
    """Every input of :func:`run_ablate` checked before anything loads or trains (same parameters)."""
    from ...infra.device import resolve_device
    from ...nets.train import TrainConfig

    specs = _check_models(["cnn"] if models is None else models)
    variant_list = check_variants(["with-bias", "no-bias"] if variants is None else variants, drop)
    n_seeds = _check_seeds(seeds, quick, max_seeds, spending)
    for name, value, low, high in (("epochs", epochs, 1, MAX_EPOCHS), ("batch_size", batch_size, 1, 10**6),
                                   ("threads", threads, 1, available_cpus()), ("max_train", max_train, 2, 10**9)):
        if value is not None:
            bounded_int(name, value, low, high)
    for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        if value is not None:
            finite_number(name, value)
    if input_offset is not None:
        finite_number("input_offset", input_offset, -MAX_INPUT_OFFSET, MAX_INPUT_OFFSET)
    if not 0 < alpha < 1:
        raise BiaslabError(f"`alpha` must be in (0, 1) (got {alpha})")
    if engine not in ENGINES:
        raise BiaslabError(f"unknown `engine` {engine!r}; choose from {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise BiaslabError("`address` joins a Ray cluster: use it with `engine` ray")
    if engine == "ray":
        from .ray_engine import check_ray

        check_ray()
    shift_grid = check_shifts(shifts, shift_levels)
    if data_path is not None and datasets is not None:
        raise BiaslabError("use either `data_path` (your files) or `datasets` (built-in sets), not both")
    dev = str(resolve_device(device))
    train = {}
    for spec in specs:
        d = MODEL_DEFAULTS[spec.name if spec.builtin else "file"]
        train[spec] = TrainConfig(
            epochs=int(epochs if epochs is not None else d["quick_epochs"] if quick else d["epochs"]),
            lr=float(lr if lr is not None else d["lr"]),
            batch_size=int(batch_size if batch_size is not None else d["batch_size"]),
            optimizer=optimizer, momentum=float(momentum), weight_decay=float(weight_decay), decay_bias=decay_bias,
        )
    names = None if data_path is not None else _names(
        ["digits"] if datasets is None else datasets, DATASETS, "dataset", "datasets")
    return AblateSettings(
        specs=specs, variants=variant_list, auto=isinstance(seeds, str), n_seeds=n_seeds, train=train,
        shift_grid=shift_grid, dataset_names=names, data_path=data_path, device=dev, threads=threads, seed=seed,
        alpha=alpha, spending=spending, engine=engine, address=address,
        data_options={"standardize": standardize, "input_offset": input_offset, "max_train": max_train})


def _check_seeds(seeds: int | str | None, quick: bool, max_seeds: int | None, spending: str) -> int:
    """The number of seeds, or with ``seeds="auto"`` the last look."""
    if isinstance(seeds, str):
        if seeds != "auto":
            raise BiaslabError(f"`seeds` must be a number of seeds or 'auto' (got {seeds!r})")
        if spending not in ("pocock", "obrien-fleming"):
            raise BiaslabError(f"unknown `spending` {spending!r}; choose pocock or obrien-fleming")
        return bounded_int("max_seeds", AUTO_MAX_SEEDS if max_seeds is None else max_seeds, 4, MAX_SEEDS)
    n_seeds = seeds if seeds is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    if n_seeds < 2:
        raise BiaslabError(f"`seeds` must be at least 2 for paired statistics (got {n_seeds})")
    return bounded_int("seeds", n_seeds, 2, MAX_SEEDS)


def _ray_session(stack: ExitStack, settings: AblateSettings, show_progress: bool | None, background: bool):
    """Ray, opened before the data load so that its workers warm up meanwhile."""
    from ...infra.progress import progress_bar
    from .ray_engine import RaySession, cluster_address

    joining = cluster_address(settings.address)
    workers = len(settings.specs) * (len(settings.dataset_names) if settings.dataset_names else 1)
    with progress_bar(1, f"joining Ray at {joining}" if joining else "starting Ray", show_progress) as advance:
        session = stack.enter_context(RaySession(settings.address, workers=workers, background_shutdown=background))
        advance()
    return session


def plan_grid(settings: AblateSettings) -> tuple[dict[str, Dataset], list["_Config"], list[SkippedPair]]:
    """Load the data sets and plan every (model, data set) pair: prepared when it fits, else skipped."""
    opts, seed = settings.data_options, settings.seed
    if settings.data_path is not None:
        loaded = {str(Path(settings.data_path).resolve()): load_data_path(settings.data_path, seed=seed, **opts)}
    else:
        loaded = {n: load_dataset(n, seed=seed, **opts) for n in settings.dataset_names}
    extra = {"input_offset": float(opts["input_offset"]), "standardize": bool(opts["standardize"]),
             "max_train": opts["max_train"]}
    configs, skipped = _plan(settings.specs, loaded, settings.variants, settings.train, settings.shift_grid, seed,
                             settings.device, settings.threads, extra)
    return loaded, configs, skipped


def train_and_compare(settings: AblateSettings, configs: list["_Config"], session, runs_path: Path | None,
                      done: dict, show_progress: bool | None) -> tuple[list[ConfigResult], list[int], int, dict]:
    """Train the runs still missing, then compare: once for a number of seeds; look by look, adding
    seeds, for ``seeds="auto"`` (a decision stands at the look that made it). Returns the results,
    the seeds used, how many runs trained, and the sequential design (empty for a fixed number)."""
    alpha, variants = settings.alpha, settings.variants
    if settings.auto:
        family = len(configs) * (len(variants) - 1) * (
            1 + sum(len(strongest(k, v)) for k, v in settings.shift_grid.items()))
        looks = sequential_looks(settings.n_seeds, alpha, family)
        levels = look_alphas(looks, alpha, settings.spending)
    else:
        looks, levels = [settings.n_seeds], [alpha]
    trained = 0
    decided: dict[tuple, Any] = {}
    for look, level in zip(looks, levels):
        seed_list = [settings.seed + i for i in range(look)]
        todo = []
        for c in configs:
            c.unit.runs = [(v, s) for v in variants for s in seed_list
                           if not usable_record(done.get((c.unit.key, v, s)), c.unit.config.epochs, c.unit.shifts)]
            if c.unit.runs:
                todo.append(c.unit)
        trained += _train(todo, session, runs_path, done, show_progress)
        results = [_config_result(c, {v: [done[(c.unit.key, v, s)] for s in seed_list] for v in variants},
                                  seed_list, variants, alpha) for c in configs]
        _adjust(results, level if settings.auto else None)
        if not settings.auto:
            return results, seed_list, trained, {}
        for key, comp in _keyed(results):
            if comp.verdict != "inconclusive" and key not in decided:
                decided[key] = comp  # a decision stands at the look that made it
        if all(key in decided for key, _ in _keyed(results)):
            break
    _apply(results, decided)
    design = {"seeds_mode": "auto", "max_seeds": settings.n_seeds, "looks": looks, "look_alphas": levels,
              "spending": settings.spending, "stopped_at": len(seed_list)}
    return results, seed_list, trained, design


def _keyed(results: list[ConfigResult]):
    """Every comparison of a run with a key that names it across sequential looks."""
    for r in results:
        for c in r.comparisons:
            yield (r.name, None, -1, c.a, c.b), c
        for s in r.shift_comparisons:
            yield (r.name, s.kind, s.index, s.comparison.a, s.comparison.b), s.comparison


def _adjust(results: list[ConfigResult], level: float | None) -> None:
    """Holm over the run's comparisons (one family), verdicts at ``level`` (default: alpha)."""
    keyed = list(_keyed(results))
    adjusted = dict(zip((k for k, _ in keyed), adjust_family([c for _, c in keyed], level)))
    _apply(results, adjusted)


def _apply(results: list[ConfigResult], comps: dict[tuple, Any]) -> None:
    for r in results:
        r.comparisons = [comps.get((r.name, None, -1, c.a, c.b), c) for c in r.comparisons]
        r.shift_comparisons = [
            dataclasses.replace(s, comparison=comps.get((r.name, s.kind, s.index, s.comparison.a, s.comparison.b),
                                                        s.comparison))
            for s in r.shift_comparisons]


def _check_finite_runs(results: list[ConfigResult]) -> None:
    """Refuse, before any figure is drawn, runs whose loss or accuracy became NaN or infinite (training diverged)."""
    for cfg in results:
        for v, r in cfg.variants.items():
            arrays = [r.test_acc, r.train_acc, r.test_loss, r.train_loss, *r.curves.values(), *r.shift.values()]
            if not all(np.isfinite(a).all() for a in arrays):
                raise BiaslabError(f"training {cfg.model} on {cfg.dataset} ({v}) diverged: its loss or accuracy became "
                                   "NaN or infinite; lower the learning rate or the input offset, or fix the model")


def _plan(specs: list[ModelSpec], loaded: dict[str, Dataset], variants: list[str], train_cfgs: dict, shifts,
          seed: int, device: str, threads: int | None, extra: dict[str, Any]) -> tuple[list[_Config], list[SkippedPair]]:
    """Every (model, data set) pair: prepared when it fits, else listed as skipped with the reason."""
    configs: list[_Config] = []
    skipped: list[SkippedPair] = []
    for spec in specs:
        for source, ds in loaded.items():
            try:
                configs.append(_prepare(spec, ds, source, variants, train_cfgs[spec], shifts, seed, device,
                                        threads, extra))
            except BiaslabError as exc:
                skipped.append(SkippedPair(_label(spec), ds.name, str(exc)))
    if not configs:
        raise BiaslabError("no (model, data set) pair can run: " + "; ".join(s.reason for s in skipped))
    return configs, skipped


def _train(todo: list[Unit], session, runs_path: Path | None,
           done: dict[tuple[str, str, int], dict[str, Any]], show_progress: bool) -> int:
    """Train ``todo`` on Ray when ``session`` (a :class:`~biaslab.experiments.ablate.ray_engine.RaySession`)
    is given, else in this process; append each finished unit's records (the driver alone writes)."""
    from ...infra.progress import progress_bar

    trained = 0
    try:
        if session is not None:
            total, batches = len(todo), lambda advance: session.run(todo, advance)
        else:
            from .engines import run_local

            total, batches = sum(u.config.epochs for u in todo), lambda advance: run_local(todo, advance)
        with progress_bar(total, f"ablate ({len(todo)} configuration{'' if len(todo) == 1 else 's'})", show_progress) as advance:
            for records in batches(advance):
                if runs_path is not None:
                    append_runs(runs_path, records)
                for rec in records:
                    done[(rec["config"], rec["variant"], rec["seed"])] = rec
                trained += len(records)
    except KeyboardInterrupt:
        from ...infra.errors import ctrl_c_pressed

        if runs_path is None or ctrl_c_pressed() is False:  # no Ctrl-C: the user's code raised it (one line)
            raise
        if trained == 0:
            raise AblationInterrupted("interrupted before any configuration finished; nothing new was saved") from None
        raise AblationInterrupted(
            f"interrupted: {trained} new runs were saved in {runs_path} before the configuration in "
            "progress; run the same command again to resume (finished runs are skipped)"
        ) from None
    return trained
