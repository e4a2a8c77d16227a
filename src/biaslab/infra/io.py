"""Input/output helpers: the user-error type, atomic writes, safe checkpoint loading."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from .errors import BiaslabError

__all__ = [
    "first_line",
    "BiaslabError",
    "STALE_SECONDS",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_path",
    "name_max",
    "read_text",
    "remove_stale_temps",
    "safe_torch_load",
]

#: A temporary file of ours older than this (seconds) belongs to a run that died: removed at the next run.
STALE_SECONDS = 60.0
#: mkstemp/mkdtemp's random part: 8 characters of this alphabet.
_RANDOM = "[a-z0-9_]{8}"
#: Our temporary names: atomic writes ``.NAME.XXXXXXXX.ext.tmp``, staging folders and write probes.
TEMP_PATTERN = re.compile(rf"^\..+\.{_RANDOM}(\.[^./]*)?\.tmp$|^\.biaslab-(staging|probe)-{_RANDOM}$")


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def name_max(folder: str | os.PathLike[str]) -> int:
    """The longest file name (in bytes) the file system of ``folder`` allows (255 when unknown)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def remove_stale_temps(folder: str | os.PathLike[str], prefix: str = "", suffix: str = "",
                       max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove temporary files and folders of ours in ``folder`` left by a run that died.

    Only names of our own pattern (:data:`TEMP_PATTERN`) that start with ``prefix`` and end
    with ``suffix`` and were last modified more than ``max_age`` seconds ago are removed;
    ``max_age=0`` takes every one (for a folder whose lock we hold). Returns what was removed.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(suffix) and TEMP_PATTERN.match(entry.name)):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < max_age:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue  # gone already, or not ours to remove
        removed.append(Path(entry.path))
    return removed


class atomic_path:
    """Context manager yielding a temporary path next to ``path``; renamed onto it on success.

    Readers never see a half-written file: either the old file (or none) or the
    complete new one. The target must be a regular file or a new name (a device such as
    ``/dev/null``, a folder or a symlink is refused). On error the temporary file is
    removed; temporary files of the same target left by a killed run are removed on entry.
    The new file gets the mode a plain ``open()`` gives (0666 less the umask).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __enter__(self) -> Path:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        limit = name_max(folder)
        if len(os.fsencode(self.path.name)) > limit:
            raise BiaslabError(f"file name {self.path.name[:40]}... is longer than {limit} bytes; choose a shorter name")
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise BiaslabError(
                f"refusing to write {self.path}: it exists and is not a regular file; choose a new file name"
            )
        # ".NAME.XXXXXXXX.ext.tmp" is 14 bytes longer than NAME.ext: shorten NAME in the temp name if needed.
        suffix = f"{self.path.suffix}.tmp"
        room = limit - len(os.fsencode(suffix)) - 10
        stem = os.fsencode(self.path.stem)[:max(room, 1)].decode("utf-8", "ignore")
        remove_stale_temps(folder, prefix=f".{stem}.", suffix=suffix)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=suffix, dir=folder)
        os.close(fd)
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 less the umask).
        os.chmod(tmp, 0o666 & ~_umask())
        self._tmp = Path(tmp)
        return self._tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """Read a UTF-8 text file; a folder, a non-regular file or bytes that are not UTF-8 → :class:`BiaslabError`.

    Parameters
    ----------
    path : the file.
    what : what the file is, for the message (e.g. ``"runs file"``).
    """
    p = Path(path)
    if p.exists() and not p.is_file():
        raise BiaslabError(f"{what} {p} is not a regular file; remove it or choose another location")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BiaslabError(
            f"{what} {p} is not UTF-8 text (byte {exc.start}); remove or rename it, or choose another location"
        ) from None
    except OSError as exc:
        raise BiaslabError(f"cannot read {what} {p}: {exc.strerror or exc}") from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when empty), whole and without ANSI codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically.

    ``data`` holds plain JSON types only: encode it first (a result's payload is, by
    :func:`biaslab.results.encode`). A value JSON cannot hold raises before anything is
    written: TypeError for a NumPy array, ValueError for NaN or inf (which would make a file
    that JSON readers refuse).
    """
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def safe_torch_load(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; refuse anything that needs unpickling code.

    Raises :class:`BiaslabError` for a missing, corrupt or untrusted file. The payload of a
    malicious pickle is never executed.
    """
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise BiaslabError(f"checkpoint {p} does not exist; pass the path of a saved state_dict")
    with open(p, "rb") as fh:
        head = fh.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch.save: zip, or a legacy pickle
        raise BiaslabError(f"{p} is not a PyTorch checkpoint (torch.save writes a zip archive; this file "
                           f"starts with {head!r}); pass a file saved with torch.save(model.state_dict(), path)")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of a file it then refuses
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"a pickled {found.group(1)}" if found else "pickled Python objects"
        raise BiaslabError(
            f"refusing to load {p}: it holds {what}, which only arbitrary code can unpickle; "
            "save only a state_dict (torch.save(model.state_dict(), path)) and try again"
        ) from None
    except Exception as exc:  # a corrupt file can fail anywhere inside the unpickler
        raise BiaslabError(
            f"cannot read checkpoint {p} ({first_line(exc)}); "
            "is it a complete file written by torch.save?"
        ) from None
