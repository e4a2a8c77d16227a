"""Engines: who trains the configurations of an ablation.

An ablation is a list of independent :class:`Unit` records (one configuration's missing runs).
An engine trains each one with :func:`train_unit` and hands the finished run records back to the
driver, which alone appends them to ``runs.jsonl``:

* ``local`` — in this process, one unit after another, each unit's runs batched;
* ``ray`` — each unit a Ray task (:mod:`biaslab.experiments.ablate.ray_engine`), retried by Ray when its
  worker dies.

Both return exactly the same records for the same seed: the unit carries everything its runs
depend on (data, settings, seeds), and nothing depends on where it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import __version__
from ...data.datasets import Dataset
from .runs import RECORD_VERSION
from .shifts import apply_shift

__all__ = ["ENGINES", "ModelSpec", "Unit", "train_unit", "run_local"]

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class ModelSpec:
    """What to train: a built-in name (:data:`biaslab.nets.models.MODEL_NAMES`) or ``file.py:factory``."""

    name: str

    @property
    def builtin(self) -> bool:
        return ":" not in self.name

    def build(self, seed: int, in_shape: tuple[int, ...], n_classes: int):
        """The ``with-bias`` model with the initial weights of ``seed`` (global RNG state restored)."""
        import torch

        if self.builtin:
            from ...nets.models import init_model

            return init_model(self.name, "with-bias", seed, in_shape, n_classes)
        from ..audit.target import build_target

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_target(self.name)


@dataclass
class Unit:
    """One configuration's runs still to train: everything a worker needs, and nothing else."""

    spec: ModelSpec
    ds: Dataset
    config: Any  # biaslab.nets.train.TrainConfig
    key: str
    settings: dict[str, Any]
    runs: list[tuple[str, int]]  # (variant, seed)
    masks: dict[str, dict[str, bool]]  # variant -> parameter name -> kept
    params: dict[str, int]  # variant -> trainable scalars
    shifts: dict[str, tuple[float, ...]]
    noise_seed: int
    device: str = "cpu"
    threads: int | None = None
    label: str = field(default="")


def _shift_accuracies(stack, ds: Dataset, device, shifts: dict[str, tuple[float, ...]],
                      noise_seed: int) -> dict[str, np.ndarray]:
    """Test accuracy of every model under every shift level: kind -> (models, levels)."""
    import torch

    y = torch.as_tensor(ds.y_test, device=device)
    out = {}
    for kind, levels in shifts.items():
        accs = [stack.evaluate(torch.as_tensor(apply_shift(ds.X_test, kind, s, seed=noise_seed), device=device), y)[0]
                for s in levels]
        out[kind] = np.stack(accs, axis=1)
    return out


def train_unit(unit: Unit, on_epoch: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Train ``unit``'s runs (batched when the model allows) and return their records.

    Returns the records (one per run, in ``unit.runs`` order) and the reason the runs were
    trained one by one instead of batched (None when batched).
    """
    import torch

    from ...nets import train
    from ...infra.device import resolve_device

    dev = resolve_device(unit.device)
    if unit.threads is not None:
        from ...infra.threads import set_threads

        set_threads(unit.threads)
    shape, k = unit.ds.in_shape, unit.ds.n_classes
    stack, hists = train.train_batched(
        lambda s: unit.spec.build(s, shape, k), unit.ds, unit.runs, unit.config, dev, on_epoch=on_epoch,
        masks=unit.masks)
    fallback = stack.fallback
    with torch.no_grad():
        shifted = _shift_accuracies(stack, unit.ds, dev, unit.shifts, unit.noise_seed)
    records = [
        {
            "record_version": RECORD_VERSION, "biaslab_version": __version__, "config": unit.key,
            "settings": unit.settings, "variant": v, "seed": s, "params": unit.params[v], **h.final,
            "curves": {"train_loss": h.train_loss, "test_loss": h.test_loss, "test_acc": h.test_acc},
            "shift": {kind: acc[m].tolist() for kind, acc in shifted.items()},
            "batched": fallback is None, "fallback": fallback,
        }
        for m, ((v, s), h) in enumerate(zip(unit.runs, hists))
    ]
    return records, fallback


def run_local(units: list[Unit], advance: Callable[..., None]) -> Iterator[list[dict[str, Any]]]:
    """Train each unit in this process; yield its records as soon as it finishes.

    ``advance`` is the progress callback: one step per epoch.
    """
    for unit in units:
        advance(0, description=f"ablate {unit.label} ({len(unit.runs)} runs)")
        records, _ = train_unit(unit, on_epoch=lambda e: advance())
        yield records
