"""Several runs of one command side by side: their claims in one table, then each run's sections."""

from __future__ import annotations

from pathlib import Path

from ..results import Result
from . import render_figures, render_sections
from .report import Section, write_report

__all__ = ["compare_report"]


def _labels(dirs: list[Path]) -> list[str]:
    labels: list[str] = []
    for i, d in enumerate(dirs):
        name = d.resolve().name or f"run{i + 1}"
        labels.append(name if name not in labels else f"{name}-{i + 1}")
    return labels


def compare_report(results: list[Result], dirs: list[Path], out_dir: Path, fmt: str = "png") -> tuple[list[Path], Path]:
    """Render each run's figures into ``out_dir/<run>/`` and one report comparing them.

    Returns the figures and the path of report.html.
    """
    labels = _labels(dirs)
    ids = list(dict.fromkeys(c.id for r in results for c in r.claims))
    table = []
    for cid in ids:
        row: dict[str, object] = {"claim": cid}
        for label, r in zip(labels, results):
            found = [c for c in r.claims if c.id == cid]
            row[label] = found[0].verdict if found else "—"
        table.append(row)
    sections = [Section("Claims across runs", f"{len(results)} runs of biaslab {results[0].command}: "
                        + "; ".join(f"{lab} = {d}" for lab, d in zip(labels, dirs)) + ".",
                        table=table or None, anchor="claims-across-runs")]
    figures: list[Path] = []
    for label, r in zip(labels, results):
        figs = render_figures(r, out_dir / label, fmt)
        figures += figs
        for s in render_sections(r, figs):
            s.title = f"{label}: {s.title}"
            s.anchor = f"{label}-{s.anchor}"
            sections.append(s)
    report = write_report(out_dir, f"biaslab {results[0].command}: {len(results)} runs compared", sections)
    return figures, report
