"""What every command writes, and ``biaslab report``, which rebuilds it from results.json alone.

The layout is the same for every command::

    OUT/results.json   versioned, machine-readable (the same payload ``--json`` prints)
    OUT/*.png|*.svg    figures rendered from the result
    OUT/report.html    self-contained report (figures embedded)
    OUT/report.md      the same as Markdown

A run renders everything into a staging folder inside OUT first and moves the files into
place only when all of them exist, results.json last: a failure while rendering leaves the
previous complete set, never a results.json that disagrees with its report.

A run holds ``OUT/.biaslab.lock`` (:func:`locked_out_dir`) from before its work starts until
its files are written: a second run into the same folder fails at once with a clear message.
Temporary files of ours left there by a killed run are removed when the next run takes the lock.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .infra.io import BiaslabError, atomic_write_json, remove_stale_temps
from .results import Result, load_results, payload

__all__ = [
    "SavedOutputs", "FIGURE_FORMATS", "OUTPUT_FILES", "MIN_FREE_BYTES", "LOCK_NAME",
    "check_format", "check_same_command", "out_dir_path", "previous_figures", "prepare_out_dir", "locked_out_dir",
    "save_outputs", "rebuild", "check_no_run", "section_dir",
]

FIGURE_FORMATS = ("png", "svg")
#: Files every command writes into OUT: each must be a regular file or absent before a run starts.
OUTPUT_FILES = ("results.json", "report.html", "report.md")
#: A run refuses to start with less free space than this in OUT (results, figures, report, weights).
MIN_FREE_BYTES = 32 * 1024**2
#: The lock file a run holds in OUT.
LOCK_NAME = ".biaslab.lock"
_held_locks: dict[str, int] = {}  # real path of OUT → nesting depth, so one run may lock its OUT twice


@dataclass
class SavedOutputs:
    out_dir: Path
    results: Path | None  # None for a comparison of several runs, which has no results.json of its own
    figures: list[Path]
    report: Path


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FIGURE_FORMATS`, else :class:`BiaslabError`."""
    from .infra.validate import check_choice

    return check_choice("figure format", fmt, FIGURE_FORMATS)


def check_same_command(out_dir: str | Path, command: str) -> None:
    """Refuse an ``out_dir`` whose results.json belongs to another command: a run never replaces
    another command's results (and leaves its figures behind). An unreadable file is left to the
    other checks."""
    from .results.schema import MAX_RESULTS_BYTES

    path = out_dir_path(out_dir, command) / "results.json"
    if not path.is_file():
        return
    try:
        if path.stat().st_size > MAX_RESULTS_BYTES:
            return
        existing = json.loads(path.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError, RecursionError):
        return
    if isinstance(existing, str) and existing != command:
        raise BiaslabError(f"--out {out_dir} holds the results of `biaslab {existing.replace('-', ' ')}`; "
                           f"choose another folder for `biaslab {command.replace('-', ' ')}`")


def check_no_run(out_dir: str | Path) -> None:
    """Refuse an ``out_dir`` that holds a run (a results.json): a comparison of several runs, which has
    no results.json of its own, would replace that run's report.html and report.md."""
    from .results.schema import MAX_RESULTS_BYTES

    path = Path(out_dir) / "results.json"
    if not (path.is_file() or path.is_symlink()):
        return
    try:
        existing = None if path.stat().st_size > MAX_RESULTS_BYTES else \
            json.loads(path.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError, RecursionError):
        existing = None
    what = f"the results of `biaslab {existing.replace('-', ' ')}`" if isinstance(existing, str) else "a results.json"
    raise BiaslabError(f"--out {out_dir} holds {what[:80]}; a comparison of several runs would replace its "
                       "report: choose another folder")


def section_dir(run: Path, name: str) -> Path:
    """``run/name``, the folder of one section of a demo; :class:`BiaslabError` unless ``name`` is a plain
    folder name (no path, no ``..``) and ``run/name`` is not a symlink (nor leads out of ``run``)."""
    from .results.schema import DEMO_SECTIONS

    if not isinstance(name, str) or name not in DEMO_SECTIONS:
        raise BiaslabError(f"demo section {str(name)[:40]!r} is not one of {', '.join(DEMO_SECTIONS)}; "
                           "run `biaslab demo` again to regenerate the folder")
    path = Path(run) / name
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise BiaslabError(f"demo section {path} is a symbolic link or not a folder; biaslab reads and writes only "
                           "its own folders: remove it, or run `biaslab demo` again into a new folder")
    if path.exists() and os.path.commonpath([os.path.realpath(path), os.path.realpath(run)]) != os.path.realpath(run):
        raise BiaslabError(f"demo section {path} leads out of {run}; remove it or choose another folder")
    return path


def check_targets(out: Path, names: list[str] | tuple[str, ...]) -> None:
    """Refuse if any ``out/name`` exists and is not a regular file (a folder, a device, a symlink)."""
    for name in names:
        target = out / name
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise BiaslabError(
                f"cannot write {target}: it exists and is not a regular file; remove it or choose another --out"
            )


def out_dir_path(out: str | Path | None, command: str) -> Path:
    """The output folder of ``command``: ``out``, or ``biaslab-out/<command>`` when it is None.

    Refuses (:class:`BiaslabError`) the empty string, which ``Path`` would turn into the current
    directory: the CLI passes ``--out`` here as typed, before it becomes a path.
    """
    if out is None:
        return Path("biaslab-out") / command
    if isinstance(out, str) and not out:
        raise BiaslabError("--out is empty; pass a directory (e.g. --out results), or leave --out out for the "
                           "default folder")
    return Path(out)


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and check that files can be written there, before any work is done.

    Refuses (:class:`BiaslabError`) an empty name, a path that is a file, a folder that cannot be
    created or written (read-only, a parent that is a file, ``/proc``, a name that is too long),
    less than :data:`MIN_FREE_BYTES` free, and an output name (:data:`OUTPUT_FILES`) that is a folder.
    """
    out = out_dir_path(out_dir, "<command>")
    if out.exists() and not out.is_dir():
        raise BiaslabError(f"--out {out} is a file; pass a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".biaslab-probe-", dir=out)
        try:
            os.write(fd, b"biaslab")
        finally:
            os.close(fd)
            os.unlink(probe)
        free = shutil.disk_usage(out).free
    except OSError as exc:
        raise BiaslabError(f"cannot write to --out {out}: {exc.strerror or exc}; choose a writable directory") from None
    if free < MIN_FREE_BYTES:
        raise BiaslabError(
            f"only {free // 1024**2} MiB free in --out {out}; a run needs {MIN_FREE_BYTES // 1024**2} MiB: "
            "free some space or choose another directory"
        )
    check_targets(out, OUTPUT_FILES)
    return out


def _lock_owner(path: Path) -> str:
    try:
        return f" (pid {int(path.read_text().strip())})"
    except (OSError, ValueError):
        return ""


def _take_lock(lock: Path, out: Path) -> int | None:
    """Open and flock ``lock``; the fd, or None where the file system has no flock."""
    import fcntl

    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise BiaslabError(f"cannot create the lock file {lock}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BiaslabError(
                f"another biaslab run{_lock_owner(lock)} is writing into {out}; wait for it to finish "
                "or choose another --out"
            ) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return None
            raise
        try:  # the run before us may have removed the file between our open and our flock: start again
            if os.stat(lock, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def locked_out_dir(out_dir: str | Path) -> Iterator[Path]:
    """:func:`prepare_out_dir`, then hold ``OUT/.biaslab.lock`` for the block.

    A second run (another process) into the same folder gets :class:`BiaslabError` at once.
    Taking the lock also removes temporary files of ours that a killed run left in OUT; the
    lock file is removed when the block ends. Re-entrant within a process. File systems
    without ``flock`` are used unlocked.
    """
    out = prepare_out_dir(out_dir)
    key = os.path.realpath(out)
    if key in _held_locks:
        _held_locks[key] += 1
        try:
            yield out
        finally:
            _held_locks[key] -= 1
        return
    lock = out / LOCK_NAME
    fd = _take_lock(lock, out)
    try:
        if fd is not None:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        remove_stale_temps(out, prefix=".biaslab-", max_age=0)  # staging and probes exist only under the lock
        remove_stale_temps(out)
        _held_locks[key] = 1
        try:
            yield out
        finally:
            del _held_locks[key]
    finally:
        if fd is not None:
            lock.unlink(missing_ok=True)  # while still holding it: see _take_lock
            os.close(fd)


_FIGURE_LINK = re.compile(r"!\[[^\]]*\]\(([^)/\\]+\.(?:png|svg))\)")


def previous_figures(out: Path) -> set[str]:
    """The figures of the run already in ``out``: the file names its report.md links to.

    Only a folder holding results.json and a regular report.md counts, and only links to a bare
    ``NAME.png`` or ``NAME.svg`` beside the report (no folder, no ``..``): files we wrote.
    """
    report = out / "report.md"
    if not (out / "results.json").is_file() or report.is_symlink() or not report.is_file():
        return set()
    try:
        text = report.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {m.group(1) for line in text.splitlines() if (m := _FIGURE_LINK.fullmatch(line.strip()))}


def _title(result: Result) -> str:
    return f"biaslab {result.command.replace('-', ' ')}"


def save_outputs(result: Result, out_dir: str | Path, fmt: str = "png") -> SavedOutputs:
    """Write results.json, the figures and the report of ``result`` into ``out_dir``."""
    from .render import render_figures, render_sections
    from .render.report import write_report

    check_format(fmt)
    check_same_command(out_dir, result.command)  # never replace another command's run (and its figures)
    with locked_out_dir(out_dir) as out:
        check_same_command(out, result.command)  # again under the lock: another run may have finished meanwhile
        stage = Path(tempfile.mkdtemp(prefix=".biaslab-staging-", dir=out))
        try:
            figures = render_figures(result, stage, fmt)
            write_report(stage, _title(result), render_sections(result, figures))
            atomic_write_json(stage / "results.json", payload(result))
            names = [f.name for f in figures] + ["report.md", "report.html", "results.json"]
            check_targets(out, names)  # all or nothing: refuse before the first file is moved
            stale = previous_figures(out) - set(names)  # e.g. the .svg figures of a run now rendered as .png
            for name in names:
                os.replace(stage / name, out / name)
            for name in stale:
                target = out / name
                if target.is_file() and not target.is_symlink():
                    target.unlink()
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return SavedOutputs(out, out / "results.json", [out / f.name for f in figures], out / "report.html")


def save_demo(result: Result, parts: dict[str, Result], out_dir: str | Path, fmt: str = "png") -> SavedOutputs:
    """Save each part in ``out_dir/<name>/`` and the demo's own results.json and report."""
    from .explore import write_explorer
    from .render.demo import demo_report

    check_format(fmt)
    check_same_command(out_dir, "demo")
    with locked_out_dir(out_dir) as out:
        check_same_command(out, "demo")
        for name in parts:
            section_dir(out, name)  # before anything is written
        saved = {name: save_outputs(part, section_dir(out, name), fmt) for name, part in parts.items()}
        # The explorer beside the report, on the demo's conv settings (camera at 256 pixels).
        explorer = write_explorer(out, max_size=256, seed=result.params.get("seed", 0))
        report = demo_report(result, parts, {n: s.figures for n, s in saved.items()}, out, explorer=explorer.name)
        results = atomic_write_json(out / "results.json", payload(result))
    return SavedOutputs(out, results, [f for s in saved.values() for f in s.figures], report)


def rebuild(dirs: list[str | Path], out_dir: str | Path | None = None, fmt: str = "png") -> SavedOutputs:
    """``biaslab report``: re-render figures and reports from results.json alone.

    One directory is rebuilt in place (or into ``out_dir``); a demo directory rebuilds every
    section and the demo report. Several directories of the same command are rendered side by
    side into ``out_dir`` (default ``biaslab-out/report``), one section group per run.
    """
    from .render.compare import compare_report

    check_format(fmt)
    if not dirs:
        raise BiaslabError("pass at least one directory written by a biaslab command")
    results = [load_results(d) for d in dirs]
    if len(results) == 1:
        result = results[0]
        out = out_dir_path(out_dir, "report") if out_dir is not None else Path(dirs[0])
        check_same_command(out, result.command)
        if result.command == "demo":
            parts = {}
            for name in result.sections:
                part = load_results(section_dir(Path(dirs[0]), name))
                if part.command != name:
                    raise BiaslabError(f"{Path(dirs[0]) / name} holds the results of `biaslab "
                                       f"{part.command.replace('-', ' ')}`, not of the demo's {name} section; "
                                       "run `biaslab demo` again to regenerate it")
                parts[name] = part
            return save_demo(result, parts, out, fmt)
        return save_outputs(result, out, fmt)
    commands = sorted({r.command for r in results})
    if len(commands) > 1:
        raise BiaslabError(
            f"can only compare runs of one command side by side (got {', '.join(commands)}); "
            "run `biaslab report` on each directory separately"
        )
    if commands[0] == "demo":
        raise BiaslabError("compare demo sections one command at a time: biaslab report DEMO1/ablate DEMO2/ablate")
    target = out_dir_path(out_dir, "report")
    check_no_run(target)
    with locked_out_dir(target) as out:
        check_no_run(out)
        figures, report = compare_report(results, [Path(d) for d in dirs], out, fmt)
    return SavedOutputs(out, None, figures, report)
