"""``OUT/runs.jsonl``: one JSON line per finished run, the single source of truth of an ablation.

Only the driver appends to it, and only whole runs: a run is identified by its configuration
key (a hash of the settings and of the prepared data), its variant and its seed. Running the
same command again reads the file and skips the runs already there, so an interrupted grid
resumes where it stopped; a line torn by a crash is ignored and that run is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RUNS_FILE", "RECORD_VERSION", "fingerprint", "config_key", "read_runs", "append_runs"]

RUNS_FILE = "runs.jsonl"
#: Version of a run record; records of another version are redone, not reused.
RECORD_VERSION = 2


def fingerprint(*arrays: np.ndarray) -> str:
    """Hash of arrays (shapes and bytes): edited data files never reuse stale runs."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def config_key(settings: dict[str, Any]) -> str:
    """A short stable hash of a configuration's settings (JSON with sorted keys)."""
    blob = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_runs(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Finished runs in ``path`` by (config key, variant, seed); a torn last line is ignored.

    A ``path`` that is a folder, a device or not UTF-8 raises :class:`BiaslabError` (before any training).
    """
    from ...infra.io import read_text

    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in read_text(path, "runs file").splitlines():
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
    from ...results import encode

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        if fh.tell() > 0:  # make sure a torn line from a crash does not swallow our first record
            with path.open("rb") as rb:
                rb.seek(-1, os.SEEK_END)
                if rb.read(1) != b"\n":
                    fh.write("\n")
        for rec in records:
            fh.write(json.dumps(encode(rec, tag_arrays=False)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
