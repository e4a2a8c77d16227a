"""What every command writes, and ``biaslab report``, which rebuilds it from results.json alone.

The layout is the same for every command::

    OUT/results.json   versioned, machine-readable (the same payload ``--json`` prints)
    OUT/*.png|*.svg    figures rendered from the result
    OUT/report.html    self-contained report (figures embedded)
    OUT/report.md      the same as Markdown

A run renders everything into a staging folder inside OUT first and moves the files into
place only when all of them exist, results.json last: a failure while rendering leaves the
previous complete set, never a results.json that disagrees with its report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .io import BiaslabError, atomic_write_json
from .results import Result, load_results, payload

__all__ = ["SavedOutputs", "FIGURE_FORMATS", "check_format", "prepare_out_dir", "save_outputs", "rebuild"]

FIGURE_FORMATS = ("png", "svg")


@dataclass
class SavedOutputs:
    out_dir: Path
    results: Path | None  # None for a comparison of several runs, which has no results.json of its own
    figures: list[Path]
    report: Path


def check_format(fmt: str) -> str:
    if fmt not in FIGURE_FORMATS:
        raise BiaslabError(f"unknown figure format {fmt!r}; use one of {', '.join(FIGURE_FORMATS)}")
    return fmt


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and check that files can be written there, before any work is done."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BiaslabError(f"--out {out} is a file; pass a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".biaslab-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BiaslabError(f"cannot write to --out {out}: {exc.strerror or exc}; choose a writable directory") from None
    return out


def _title(result: Result) -> str:
    return f"biaslab {result.command.replace('-', ' ')}"


def save_outputs(result: Result, out_dir: str | Path, fmt: str = "png") -> SavedOutputs:
    """Write results.json, the figures and the report of ``result`` into ``out_dir``."""
    from .render import render_figures, render_sections
    from .render.report import write_report

    check_format(fmt)
    out = prepare_out_dir(out_dir)
    stage = Path(tempfile.mkdtemp(prefix=".biaslab-staging-", dir=out))
    try:
        figures = render_figures(result, stage, fmt)
        write_report(stage, _title(result), render_sections(result, figures))
        atomic_write_json(stage / "results.json", payload(result))
        names = [f.name for f in figures] + ["report.md", "report.html", "results.json"]
        for name in names:
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return SavedOutputs(out, out / "results.json", [out / f.name for f in figures], out / "report.html")


def save_demo(result: Result, parts: dict[str, Result], out_dir: str | Path, fmt: str = "png") -> SavedOutputs:
    """Save each part in ``out_dir/<name>/`` and the demo's own results.json and report."""
    from .explore import write_explorer
    from .render.demo import demo_report

    check_format(fmt)
    out = prepare_out_dir(out_dir)
    saved = {name: save_outputs(part, out / name, fmt) for name, part in parts.items()}
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
        out = Path(out_dir) if out_dir is not None else Path(dirs[0])
        if result.command == "demo":
            parts = {name: load_results(Path(dirs[0]) / name) for name in result.sections}
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
    out = prepare_out_dir(out_dir if out_dir is not None else Path("biaslab-out") / "report")
    figures, report = compare_report(results, [Path(d) for d in dirs], out, fmt)
    return SavedOutputs(out, None, figures, report)
