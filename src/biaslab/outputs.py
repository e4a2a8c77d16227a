"""What every command writes: ``results.json`` first, then figures, then the report.

A command's library function returns an object following :class:`Result`. The CLI
(and ``biaslab demo``) hand it to :func:`save_outputs`, so the on-disk layout is the
same for every command::

    OUT/results.json   versioned, machine-readable (the same data ``--json`` prints)
    OUT/*.png|*.svg    figures rendered from the result
    OUT/report.html    self-contained report (figures embedded)
    OUT/report.md      the same as Markdown
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .io import BiaslabError, atomic_write_json
from .report import Section, write_report

__all__ = ["Result", "SavedOutputs", "save_outputs", "SCHEMA_VERSION", "FIGURE_FORMATS"]

SCHEMA_VERSION = 1
FIGURE_FORMATS = ("png", "svg")


class Result(Protocol):
    """The protocol every command result follows."""

    command: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; printed by ``--json`` and stored in results.json."""

    def summary(self) -> str:
        """A short human explanation of the result (one or two paragraphs)."""

    def figures(self, out_dir: Path, fmt: str) -> list[Path]:
        """Render the result's figures into ``out_dir``; return their paths."""

    def section(self, figures: list[Path]) -> Section:
        """The result as one report section."""


@dataclass
class SavedOutputs:
    out_dir: Path
    results: Path
    figures: list[Path]
    report: Path


def check_format(fmt: str) -> str:
    if fmt not in FIGURE_FORMATS:
        raise BiaslabError(f"unknown figure format {fmt!r}; use one of {', '.join(FIGURE_FORMATS)}")
    return fmt


def save_outputs(result: Result, out_dir: str | Path, fmt: str = "png") -> SavedOutputs:
    """Write results.json, the figures and the report of ``result`` into ``out_dir``."""
    check_format(fmt)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BiaslabError(f"--out {out} is a file; pass a directory")
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "schema": f"biaslab.{result.command}/{SCHEMA_VERSION}",
        "biaslab_version": __version__,
        "command": result.command,
        **result.to_dict(),
    }
    results = atomic_write_json(out / "results.json", payload)
    figures = result.figures(out, fmt)
    section = result.section(figures)
    report = write_report(out, f"biaslab {result.command}", [section])
    return SavedOutputs(out, results, figures, report)
