"""``OUT/runs.jsonl``: one JSON line per finished run, the single source of truth of an ablation.

Only the driver appends to it, and only whole runs: a run is identified by its configuration
key (a hash of the settings and of the prepared data), its variant and its seed. Running the
same command again reads the file and skips the runs already there, so an interrupted grid
resumes where it stopped; a line torn by a crash is ignored and that run is redone.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RUNS_FILE", "RECORD_VERSION", "MAX_RUN_LINE_BYTES", "fingerprint", "config_key", "read_runs", "append_runs",
           "usable_record"]

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


def _open_runs(path: Path, flags: int) -> int:
    """``os.open`` of the runs file that never follows a symlink, and refuses anything but a regular file."""
    from ...infra.io import BiaslabError

    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BiaslabError(f"runs file {path} is a symbolic link; biaslab writes only its own files: remove "
                               "the link or choose another output folder") from None
        if exc.errno == errno.EISDIR:
            raise BiaslabError(f"runs file {path} is not a regular file; remove it or choose another location") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BiaslabError(f"runs file {path} is not a regular file; remove it or choose another location")
    return fd


#: A line of runs.jsonl longer than this is not a run record (one run of 10,000 epochs is well under
#: 1 MiB); it is skipped, never held whole in memory.
MAX_RUN_LINE_BYTES = 16 * 1024**2


def _lines(fh, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """``(offset, line)`` for each line of ``fh``; ``line`` is None for one longer than ``limit`` bytes,
    which is read past in bounded chunks."""
    offset = 0
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        start, offset = offset, offset + len(line)
        if len(line) <= limit or line.endswith(b"\n"):
            yield start, line
            continue
        while line and not line.endswith(b"\n"):  # the rest of an over-long line
            line = fh.readline(1024**2)
            offset += len(line)
        yield start, None


def read_runs(path: Path, configs: Collection[str] | None = None) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Finished runs in ``path`` by (config key, variant, seed); a torn last line is ignored.

    ``configs``: keep only the records of these configuration keys (the runs a command can reuse), so
    memory is bounded by the command's own grid, whatever the file holds. The file is read line by
    line; a line over :data:`MAX_RUN_LINE_BYTES` is skipped. A ``path`` that is a symlink, a folder, a
    device or not UTF-8 raises :class:`BiaslabError` (before any training). Records are untrusted:
    :func:`usable_record` decides, per configuration, whether one can stand in for a run.
    """
    from ...infra.io import BiaslabError

    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if not os.path.lexists(path):
        return done
    wanted = None if configs is None else set(configs)
    fd = _open_runs(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        for offset, raw in _lines(fh, MAX_RUN_LINE_BYTES):
            if raw is None:
                continue  # far too long to be a run record: a foreign line
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BiaslabError(f"runs file {path} is not UTF-8 text (byte {offset + exc.start}); remove or "
                                   "rename it, or choose another location") from None
            try:
                rec = json.loads(line)
                key = (rec["config"], rec["variant"], int(rec["seed"]))
                hash(key)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError, RecursionError):
                continue  # an interrupted write or a foreign line: that run is simply redone
            if rec.get("record_version") == RECORD_VERSION and (wanted is None or key[0] in wanted):
                done[key] = rec
    return done


def _numbers(value: Any, n: int, low: float = -math.inf, high: float = math.inf) -> bool:
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and (math.isnan(v) or low <= v <= high)
                    for v in value))


def usable_record(rec: dict[str, Any] | None, epochs: int, shifts: dict[str, Any]) -> bool:
    """Whether a record read from runs.jsonl holds one finished run of a configuration trained for
    ``epochs`` epochs and tested under ``shifts`` (kind → levels): the numbers and lengths the
    results are built from. Anything else (a hand-edited or foreign line) is trained again."""
    if not isinstance(rec, dict):
        return False
    curves, shift = rec.get("curves"), rec.get("shift")
    fallback = rec.get("fallback")
    return (all(_numbers([rec.get(k)], 1) for k in ("test_loss", "train_loss"))
            and all(_numbers([rec.get(k)], 1, 0.0, 1.0) for k in ("test_acc", "train_acc"))
            and isinstance(curves, dict) and all(_numbers(curves.get(k), epochs) for k in ("train_loss", "test_loss"))
            and _numbers(curves.get("test_acc"), epochs, 0.0, 1.0)
            and isinstance(shift, dict)
            and all(_numbers(shift.get(kind), len(levels), 0.0, 1.0) for kind, levels in shifts.items())
            and (fallback is None or (isinstance(fallback, str) and len(fallback) <= 10_000)))


def append_runs(path: Path, records: list[dict[str, Any]]) -> None:
    """Append records, one JSON line each, and flush them to disk; never through a symlink."""
    from ...results import encode

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_runs(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)  # read: the last byte, below
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        size = os.fstat(fd).st_size
        if size > 0:  # make sure a torn line from a crash does not swallow our first record
            if os.pread(fd, 1, size - 1) != b"\n":
                fh.write("\n")
        for rec in records:
            fh.write(json.dumps(encode(rec, tag_arrays=False)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
