"""Audit one model type: build it tiny, find its biases, check each status by perturbation, and
count each bias at the configuration's default size. Returns a plain record (a dict), never raises.

Records cross process boundaries (:mod:`.engines`), so they hold plain JSON types only. A record
is sent twice: once audited, then again with the default-size counts (the meta-device build of
a huge default model may be what runs out of time; the audit is kept even then).
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["audit_type", "key_bias", "OFFLINE_ENV"]

#: Set in every process that builds models: nothing is downloaded from the Hugging Face hub.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}

#: The audit's reason for a bias the example input never reaches (a tower the input does not use).
UNREACHED = "not analysed: the traced graph never uses it"

_KEY = re.compile(r"(^|[._])(k|key|keys|k_proj|key_proj|k_lin|to_k|wk|k_linear|key_linear|k_net|kv_k)\.bias$")


def key_bias(param: str, part: str | None) -> bool:
    """Is this bias (or part) an attention key's bias, by its name?"""
    return part == "key" or (part is None and bool(_KEY.search(param)))


def _strip(name: str) -> str:
    return name[len("model."):] if name.startswith("model.") else name


def _general(text: str) -> str:
    """A reason without the wrapper's ``model.`` prefix and with layer numbers as ``*``."""
    from .build import pattern

    return pattern(re.sub(r"(?<=[' (])model\.", "", text.replace("'model.", "'")))


def _layer_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\.(\d+)(?=\.)", name))


def _rows(findings: list, moved: dict[int, float], tolerance: float) -> tuple[list[dict], dict[str, list], list[dict]]:
    """Findings grouped by (name pattern, part, status, general reason): one row per kind of bias.

    Returns the rows, each row's members (tiny name, part, size) by row id, and each finding's row.
    ``moved`` (finding index → relative output change when perturbed) sets ``moves`` and ``verified``."""
    from .build import pattern

    rows: dict[tuple, dict[str, Any]] = {}
    members: dict[str, list] = {}  # row id -> [(tiny name, part, numel, whole)]
    index: list[dict] = []
    for f in findings:
        name = _strip(f.param)
        key = (pattern(name), f.part, f.status, _general(f.short_reason or f.reason))
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"param": key[0], "part": f.part, "status": f.status, "reason": key[3],
                               "detail": _general(f.reason), "layers": 0, "tiny_params": 0, "moves": None,
                               "verified": None, "key_bias": key_bias(name, f.part),
                               "reached": not f.reason.startswith(UNREACHED), "rotary": None,
                               "not_analysed": f.reason.startswith("not analysed"),
                               "default_count": 0, "default_params": 0, "id": len(rows)}
        row["layers"] += 1
        row["tiny_params"] += f.numel
        index.append(row)
        members.setdefault(str(row["id"]), []).append((name, f.part, f.numel, int(f.numel) if f.part is None else None))
    _apply_moves(list(rows.values()), index, moved, tolerance)
    return list(rows.values()), members, index


def _apply_moves(rows: list[dict], index: list[dict], moved: dict[int, float], tolerance: float) -> None:
    """Each row's largest output change under perturbation, and whether it agrees with the status
    (``redundant``: within ``tolerance``; otherwise above it)."""
    for row in rows:
        row["moves"], row["verified"] = None, None
    for i, m in moved.items():
        row = index[i]
        if not math.isfinite(m):  # a NaN output decides nothing
            continue
        row["moves"] = max(row["moves"] or 0.0, m)
        agrees = (m <= tolerance) == (row["status"] == "redundant")
        row["verified"] = agrees if row["verified"] is None else (row["verified"] and agrees)


def _copy(rec: dict[str, Any]) -> dict[str, Any]:
    return dict(rec, findings=[dict(r) for r in rec["findings"]], notes=list(rec["notes"]),
                timings=dict(rec["timings"]))


def _default_counts(rows: list[dict], members: dict[str, list], tiny_sizes: dict[str, int],
                    default: dict[str, int]) -> int:
    """Add each default-size bias to the row of its tiny twin (same name, else the same pattern's
    deepest layer); returns the default-size bias values no tiny bias matches."""
    from .build import pattern

    by_name: dict[str, list[tuple[dict, int]]] = {}
    for row in rows:
        for name, part, numel, _ in members[str(row["id"])]:
            by_name.setdefault(name, []).append((row, numel))
    by_pattern: dict[str, list[str]] = {}
    for name in by_name:
        by_pattern.setdefault(pattern(name), []).append(name)
    unmatched = 0
    for name, size in default.items():
        twin = name if name in by_name else None
        if twin is None:
            names = by_pattern.get(pattern(name))
            twin = max(names, key=_layer_key) if names else None
        if twin is None:
            unmatched += size
            continue
        for row, numel in by_name[twin]:
            share = numel / max(tiny_sizes.get(twin, numel), 1)
            row["default_count"] += 1
            row["default_params"] += int(round(size * share))
    return unmatched


def audit_type(model_type: str, seed: int = 0, device: str = "cpu",
               send: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Audit ``model_type`` (a key of ``transformers``' model mapping); the record, also passed to
    ``send`` after the audit (stage ``default sizes``), after the default-size counts (stage
    ``verify``) and when done (``final``)."""
    os.environ.update(OFFLINE_ENV)
    import torch

    from ...infra.io import BiaslabError, first_line
    from ..audit.verify import VERIFY_TOLERANCE
    from .build import CensusSkip, build_with_input, config_class_name, rotary_for, uses_rotary

    start = time.perf_counter()
    rec: dict[str, Any] = {"model_type": model_type, "audited": False, "reason": None, "stage": "configuration",
                           "config_class": None, "model_class": None, "shrink": None, "input": None, "graph": None,
                           "rotary": None, "tiny_params": None, "default_params": None, "default_bias_params": None,
                           "default_unmatched_params": None, "findings": [], "seconds": None, "timings": {},
                           "notes": []}
    send = send or (lambda r: None)
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        rec["timings"][stage] = round(now - t, 4)
        t = now

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        rec["config_class"] = config_class_name(model_type)
        rec["stage"] = "build"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, cfg, shrink, call, args, desc = build_with_input(model_type, seed)
        rec.update(model_class=type(model).__name__, shrink=shrink, rotary=uses_rotary(cfg.to_dict()),
                   tiny_params=sum(p.numel() for p in model.parameters()), input=desc)
        dev = torch.device(device)
        call.to(dev)
        args = tuple(a.to(dev) for a in args)
        lap("build")
        rec["stage"] = "audit"
        from ..audit.graph import analyse

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            findings, source = analyse(call, args)
        rec["notes"] += [first_line(w.message)[:200] for w in caught if issubclass(w.category, UserWarning)
                         and not str(w.message).startswith("torch.fx could not trace")][:3]
        rec["graph"] = source
        lap("audit")
        rows, members, index = _rows(findings, {}, VERIFY_TOLERANCE)
        values = cfg.to_dict()
        for row in rows:
            row["rotary"] = rotary_for(row["param"], values) if row["key_bias"] else None
        tiny_sizes = {_strip(n): p.numel() for n, p in call.named_parameters()}
        rec.update(audited=True, findings=rows, stage="default sizes")
    except CensusSkip as exc:
        rec["reason"] = str(exc)
    except BiaslabError as exc:
        rec["reason"] = f"{rec['stage']}: {first_line(exc)[:300]}"
    except Exception as exc:  # noqa: BLE001 - one model type never stops the census
        rec["reason"] = f"{rec['stage']} failed: {type(exc).__name__}: {first_line(exc)[:250]}"
    rec["seconds"] = round(time.perf_counter() - start, 4)
    if not rec["audited"]:
        rec["final"] = True
        send(rec)
        return rec
    send(_copy(rec))
    _count_default_sizes(rec, model_type, members, tiny_sizes)
    lap("default sizes")
    rec["stage"] = "verify"
    send(_copy(rec))
    _verify_by_perturbation(rec, rows, index, findings, call, args, seed)
    lap("verify")
    for row in rec["findings"]:
        row.pop("id", None)
    rec["stage"] = "done"
    rec["seconds"] = round(time.perf_counter() - start, 4)
    rec["final"] = True
    send(rec)
    return rec


def _count_default_sizes(rec: dict[str, Any], model_type: str, members, tiny_sizes: dict[str, int]) -> None:
    """The configuration's default-size parameter counts (built on the meta device), into ``rec``."""
    from ...infra.io import first_line
    from .build import default_bias_counts

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total, default = default_bias_counts(model_type)
        rec["default_params"] = total
        rec["default_bias_params"] = sum(default.values())
        rec["default_unmatched_params"] = _default_counts(rec["findings"], members, tiny_sizes, default)
    except Exception as exc:  # noqa: BLE001 - counts stay unknown
        rec["notes"].append(f"default-size counts unavailable: {type(exc).__name__}: {first_line(exc)[:150]}")


def _verify_by_perturbation(rec: dict[str, Any], rows, index, findings, call, args, seed: int) -> None:
    """Perturb every bias (and part) in float64 and record whether the output moved, beside its status."""
    from ...infra.io import first_line
    from ..audit.verify import VERIFY_TOLERANCE
    from ..audit.verify import output_moves

    moved: dict[int, float] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            moves = output_moves(call, args, seed)
            for i, f in enumerate(findings):
                moved[i] = float(moves(f.param, slice(*f.span) if f.span is not None else None))
    except Exception as exc:  # noqa: BLE001 - e.g. a model that refuses float64: statuses stay unverified
        rec["notes"].append(f"perturbation check failed: {type(exc).__name__}: {first_line(exc)[:150]}")
    _apply_moves(rows, index, moved, VERIFY_TOLERANCE)
