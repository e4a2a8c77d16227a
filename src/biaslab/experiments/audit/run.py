"""``biaslab audit``: the command's library function and its result."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...infra.io import BiaslabError, atomic_path
from ...results.audit import AuditResult, FixRecord
from .claims import finding_claim
from ...infra.validate import parse_count, parse_shape, writable_file
from .contrib import bias_contributions
from .fix import fold_biases, load_fixed, plain_state_dict, remove_biases
from .graph import MAX_RECORDED_INPUTS, analyse
from .hf import check_sequence_length, hf_example_shape, is_hf
from .verify import verify_findings
from .target import build_target, builtin_names, default_input_shape, is_checkpoint_path

__all__ = ["run_audit", "input_shape_arg", "input_ids_arg", "samples_arg", "MAX_SAMPLES", "MAX_INPUT_ELEMENTS"]

#: Tokens per sequence of the random example for text models (``--input-ids`` overrides it).
DEFAULT_TOKENS = 8

#: Most data inputs ``--samples`` may ask for (each bias is zeroed and the model re-run on all of them).
MAX_SAMPLES = 100_000

#: Most elements an example input (``--input-shape``), or all contribution inputs together, may hold:
#: 2**27 float32 values are 512 MiB.
MAX_INPUT_ELEMENTS = 2**27


def input_shape_arg(text: str | None) -> tuple[int, ...] | None:
    """``"2,3,32,32"`` → ``(2, 3, 32, 32)``, bounded by :data:`MAX_INPUT_ELEMENTS`; None stays None."""
    return None if text is None else parse_shape("--input-shape", text, MAX_INPUT_ELEMENTS, "2,3,32,32")


def input_ids_arg(text: str | None) -> tuple[int, int] | None:
    """``"2,16"`` → ``(2, 16)``: N sequences of L token ids; None stays None."""
    if text is None:
        return None
    shape = parse_shape("--input-ids", text, MAX_INPUT_ELEMENTS, "2,16")
    if len(shape) != 2:
        raise BiaslabError(f"`input_ids` takes two numbers N,L (sequences, tokens each), got {text!r}")
    return shape


def samples_arg(text: str | int) -> int:
    """``--samples`` as a whole number in ``[1, MAX_SAMPLES]``."""
    return parse_count("--samples", text, 1, MAX_SAMPLES)


def _load_data(data: str, seed: int) -> Any:
    from ...data.datasets import DATASETS, load_data_path, load_dataset

    return load_dataset(data, seed=seed) if data in DATASETS else load_data_path(data, seed=seed)


def _is_checkpoint(target: str) -> bool:
    return ":" not in target and target not in builtin_names() and is_checkpoint_path(target)


def _make_fix(model: nn.Module, findings: list, example: torch.Tensor, path: Path, fold: bool,
              load_expr: str, seed: int) -> FixRecord:
    """Remove redundant biases (and fold), check equivalence, then write the state_dict atomically."""
    fixed, checks = remove_biases(model, findings, example, seed=seed)
    folded: list[str] = []
    not_folded: list[str] = []
    if fold:
        fixed, folded, fold_checks = fold_biases(fixed.eval(), example, seed=seed)
        checks += fold_checks
        not_folded = [f"{n} ({type(m).__name__}): " + (
            "not right after a conv / linear layer whose output only it reads" if type(m).__module__.startswith(
                "torch.nn") else "a BatchNorm subclass whose normalisation does not come first, right after a conv / "
                                  "linear layer whose output only it reads, so it is left as it is")
            for n, m in fixed.named_modules() if isinstance(m, _BatchNorm) and n not in folded]
    try:
        with atomic_path(path) as tmp:
            torch.save(plain_state_dict(fixed), tmp)
    except OSError as exc:
        raise BiaslabError(f"cannot write `fix` {path}: {exc.strerror or exc}; pass a writable file path") from None
    removed = [f.label for f in findings if f.status == "redundant"]
    load = f"model = {load_expr}; biaslab.experiments.audit.load_fixed(model, {str(path)!r})"
    if fold:
        load += "; model.eval()  (folded BatchNorm: inference only)"
    return FixRecord(path=str(path), removed=removed, folded=folded, not_folded=not_folded, fold=fold,
                     params_before=sum(p.numel() for p in model.parameters()),
                     params_after=sum(p.numel() for p in fixed.parameters()), checks=checks, load=load)


def _example_input(model: nn.Module, shape: tuple[int, ...], ds: Any, g: torch.Generator,
                   dev: torch.device) -> torch.Tensor:
    """The example input: the data's first samples, or standard-normal values in the model's dtype."""
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    if ds is not None:
        return torch.as_tensor(ds.X_test[: shape[0]]).to(dev, dtype)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dev, dtype)


def _check_output(model: nn.Module, example: Any, spec: str) -> None:
    """One eval-mode forward pass of the user's model on the example: it must return tensors (not None)
    whose values are finite, before anything is analysed or drawn."""
    from torch.utils._pytree import tree_leaves

    from ...infra.validate import call_user_code

    args = example if isinstance(example, tuple) else (example,)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
            out = call_user_code(model, f"model {spec}", *args, _verb=f"fails on an example input of shape {shape}:")
    finally:
        for m, flag in flags.items():
            m.training = flag
    try:
        leaves = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    except Exception:  # noqa: BLE001 - an output type pytree cannot walk
        leaves = [out] if isinstance(out, torch.Tensor) else []
    if not leaves:
        raise BiaslabError(f"the forward pass of {spec} returned {type(out).__name__}, no tensor; its forward must "
                           "return the output tensor (or a tuple/dict of tensors)")
    if not all(bool(torch.isfinite(t).all()) for t in leaves if t.is_floating_point() or t.is_complex()):
        raise BiaslabError(f"the forward pass of {spec} returns NaN or infinite values on an example input; "
                           "fix the model (or its weights) before auditing it")


def run_audit(
    target: str,
    arch: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    input_ids: tuple[int, int] | None = None,
    config: str | None = None,
    data: str | None = None,
    samples: int = 128,
    fix: str | Path | None = None,
    fold: bool = False,
    verify: bool = False,
    seed: int = 0,
    device: str = "cpu",
    show_progress: bool | None = None,  # None: a live bar in a Jupyter kernel only
) -> AuditResult:
    """Audit the biases of ``target`` (``file.py:factory``, ``module:factory``, a built-in name, or a
    state_dict ``FILE.pt`` with ``arch``).

    Parameters
    ----------
    input_shape : shape of the example input with the batch first, e.g. ``(2, 3, 32, 32)``;
        defaults per built-in model (batch 2) or from ``data``.
    input_ids : ``(N, L)``: the example is N sequences of L random token ids (from the model's
        first embedding's vocabulary); the default for ``hf:`` text models (``hf:bert``, ``hf:gpt2``)
        only. An explicit ``input_shape`` is always used as it is: a model holding an ``nn.Embedding``
        may take float embeddings.
    config : JSON fields for a ``hf:TYPE`` model's configuration (:mod:`.hf`).
    data : ``random`` (standard-normal inputs of ``input_shape``), a built-in data set
        (``digits``, ...) or a data path; measures each bias's contribution on ``samples`` inputs.
    fix : write a state_dict without the redundant biases there (and, with ``fold``, everything
        foldable folded), after checking on sample inputs that the outputs are unchanged.
    verify : perturb every ``redundant`` bias (float64, fresh inputs, training and eval mode) and
        record whether the output stayed put (``Finding.verified``).

    Returns
    -------
    An :class:`AuditResult` with one finding and one claim per bias.

    Raises
    ------
    BiaslabError
        for bad input (checked before any work starts), or when a fix fails its check.
    """
    from ...infra.progress import progress_bar

    samples = samples_arg(samples)
    _check_inputs(target, arch, input_shape, input_ids, config, data, fix, fold)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        plan = prepare_target(target, arch, input_shape, input_ids, config, data, samples, seed, device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            findings, source = analyse(plan.model, plan.example, plan.recorded)
        notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        if plan.adapted:
            notes.append(f"{target} has no {', '.join(plan.adapted[:6])}{' ...' if len(plan.adapted) > 6 else ''} "
                         "(removed or folded by --fix): the architecture was adapted and is audited without them")
        result = AuditResult(
            target=target, input_shape=list(plan.input_shape), biases=findings,
            total_params=sum(p.numel() for p in plan.model.parameters()),
            traced=source != "hooks", graph=source, warnings=notes,
            initial_weights=not plan.checkpoint and (":" not in target or is_hf(target)),
            params={"target": target, "arch": arch, "config": config, "input_shape": list(plan.input_shape),
                    "input_ids": plan.token_ids, "data": data, "samples": samples, "fix": str(fix) if fix else None,
                    "fold": fold, "verify": verify, "seed": seed, "device": str(plan.device)},
        )
        if plan.X is not None:
            with progress_bar(len(findings), "zeroing each bias", show_progress) as advance:
                result.contributions, result.baseline_accuracy = bias_contributions(
                    plan.model, findings, plan.X, plan.y, advance=advance)
            result.data, result.n_samples = (plan.ds.name if plan.ds is not None else "random"), len(plan.X)
        if verify:
            with progress_bar(1, "verifying redundant biases", show_progress) as advance:
                verify_findings(plan.model, findings, plan.example, seed)
                advance()
            result.verified = True
        if fix is not None:
            load_expr = _load_expression(plan.spec, plan.sample_shape, plan.ds)
            result.fix = _make_fix(plan.model, findings, plan.example, Path(fix), fold, load_expr, seed)
    result.claims = [finding_claim(f) for f in findings]
    return result


def _check_inputs(target: str, arch: str | None, input_shape, input_ids, config: str | None, data: str | None,
                  fix: str | Path | None, fold: bool) -> None:
    """What :func:`run_audit` can refuse before loading anything."""
    if config is not None and not is_hf(arch or target):
        raise BiaslabError("`config` applies to Hugging Face models only: pass hf:TYPE (e.g. hf:bert)")
    if input_ids is not None and (input_shape is not None or (data not in (None, "random"))):
        raise BiaslabError("`input_ids` makes random token ids: drop `input_shape` and `data` DATASET")
    if fold and fix is None:
        raise BiaslabError("`fold` needs `fix` OUT.pt (where to write the folded model)")
    if fix is not None:
        if Path(fix).is_dir():
            raise BiaslabError(f"cannot write `fix` {fix}: it is a folder; pass a file path such as "
                               f"{Path(fix) / 'fixed.pt'}")
        writable_file("fix", fix)
    if _is_checkpoint(target) and arch is None:
        raise BiaslabError(f"{target} is a checkpoint: pass `arch` (a built-in name or file.py:factory) to say "
                           "which architecture its state_dict belongs to")


@dataclass
class AuditPlan:
    """The audited model on its device, its example input (``input_shape``, token ids or not), the
    inputs its graph is also recorded from, and the data (``X``, ``y``) contributions are measured on."""

    model: nn.Module
    spec: str
    checkpoint: bool
    adapted: list[str]
    device: Any
    input_shape: tuple[int, ...]
    token_ids: bool
    example: torch.Tensor
    recorded: list[torch.Tensor]
    ds: Any
    sample_shape: tuple[int, ...] | None
    X: torch.Tensor | None
    y: torch.Tensor | None


def prepare_target(target: str, arch: str | None, input_shape, input_ids, config: str | None, data: str | None,
                   samples: int, seed: int, device: str) -> AuditPlan:
    """Build (or load) the model, choose its example input (the user's shape wins; token ids only
    when asked for, or for a ``hf:`` text model) and draw the data; one forward pass checks its output."""
    from ...infra.device import resolve_device

    checkpoint = _is_checkpoint(target)
    dev = resolve_device(device)
    ds = _load_data(data, seed) if data not in (None, "random") else None
    if ds is not None and input_shape is not None and tuple(input_shape[1:]) != tuple(ds.in_shape):
        raise BiaslabError(f"`input_shape` {','.join(map(str, input_shape))} does not match the data's input "
                           f"shape {tuple(ds.in_shape)}; drop `input_shape`")
    spec = arch if checkpoint else target
    sample_shape = tuple(ds.in_shape) if ds is not None else (tuple(input_shape[1:]) if input_shape else None)
    if data is not None and input_shape is not None and samples * math.prod(input_shape[1:]) > MAX_INPUT_ELEMENTS:
        raise BiaslabError(f"`samples` {samples} inputs of shape {input_shape[1:]} hold more than "
                           f"{MAX_INPUT_ELEMENTS:,} values; pass fewer `samples`")
    model = build_target(spec, sample_shape, ds.n_classes if ds is not None else 10, config)
    adapted: list[str] = []
    if checkpoint:
        before = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_modules()}
        load_fixed(model, target)
        after = {n for n, _ in model.named_parameters()} | {n for n, m in model.named_modules()
                                                             if not isinstance(m, nn.Identity)}
        adapted = sorted(before - after)
    wants_ids = input_ids is not None or (is_hf(spec) and input_shape is None and ds is None)
    vocab = _vocabulary(model, spec) if wants_ids else None
    if vocab is not None:
        input_shape = input_ids or (2, DEFAULT_TOKENS)
        if is_hf(spec):
            check_sequence_length(model, input_shape[1])
    elif input_shape is None:
        default = sample_shape or default_input_shape(spec) or _hf_shape(model, spec)
        if default is None:
            raise BiaslabError(f"pass `input_shape` N,C,... (e.g. 2,3,32,32) or `input_ids` N,L: {spec} is a "
                               "factory, so the audit does not know what input it takes")
        input_shape = (2, *default)
    model = model.to(dev)
    g = torch.Generator().manual_seed(seed)
    example = (torch.randint(0, vocab, input_shape, generator=g).to(dev) if vocab is not None
               else _example_input(model, input_shape, ds, g, dev))
    _check_output(model, example, spec)
    X = y = None
    if data is not None:
        if ds is not None:
            X = torch.as_tensor(ds.X_test[:samples]).to(dev, example.dtype)
            y = torch.as_tensor(ds.y_test[:samples]).to(dev)
        elif vocab is not None:
            X = torch.randint(0, vocab, (samples, *input_shape[1:]), generator=g).to(dev)
        else:
            X = torch.randn((samples, *input_shape[1:]), generator=g, dtype=torch.float64).to(dev, example.dtype)
    # where fx cannot trace, the graph is also recorded from batches of the data (control flow may differ)
    batches = list(X.split(len(example))) if X is not None else []
    recorded = [b for b in batches if len(b) == len(example)][:MAX_RECORDED_INPUTS - 3]
    return AuditPlan(model, spec, checkpoint, adapted, dev, tuple(input_shape), vocab is not None, example, recorded,
                     ds, sample_shape, X, y)


def _vocabulary(model: nn.Module, spec: str) -> int | None:
    """The vocabulary of a text model (its first embedding), when it reads token ids."""
    if is_hf(spec) and hf_example_shape(model)[0] != "ids":
        return None
    emb = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if emb is None or not (is_hf(spec) or ":" in spec):
        return None
    return emb.num_embeddings


def _hf_shape(model: nn.Module, spec: str) -> tuple[int, ...] | None:
    return hf_example_shape(model)[1] if is_hf(spec) else None


def _load_expression(spec: str, sample_shape: tuple[int, ...] | None, ds: Any) -> str:
    """Python that rebuilds the audited architecture, for the load instructions."""
    from ...nets import zoo

    if is_hf(spec):
        return f"transformers.AutoModel.from_config(<the {spec} configuration of this run>)"
    n_classes = ds.n_classes if ds is not None else 10
    if spec in zoo.ZOO:
        return f"biaslab.nets.zoo.build_zoo_model({spec!r}, {sample_shape or zoo.ZOO_INPUT_SHAPES[spec]}, {n_classes})"
    if ":" not in spec:
        return f"biaslab.nets.models.build_model({spec!r}, in_shape={sample_shape or (1, 8, 8)}, n_classes={n_classes})"
    return f"{spec.rpartition(':')[2]}()  (your factory from {spec.rpartition(':')[0]})"
