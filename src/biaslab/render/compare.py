"""Several runs of one command side by side: their claims in one table, then each run's sections."""

from __future__ import annotations

from pathlib import Path

from ..results import Result
from . import render_figures, render_sections
from .report import Section, write_report

__all__ = ["compare_report", "parameter_table"]


def _labels(dirs: list[Path]) -> list[str]:
    labels: list[str] = []
    for i, d in enumerate(dirs):
        name = d.resolve().name or f"run{i + 1}"
        labels.append(name if name not in labels else f"{name}-{i + 1}")
    return labels


def parameter_table(results: list[Result], labels: list[str]) -> list[dict[str, object]]:
    """One row per ``params`` key whose value differs between the runs, plus ``seed``; one column per run.

    A key a run does not have shows as "—".
    """
    missing = object()
    keys = list(dict.fromkeys(k for r in results for k in r.params))
    rows = []
    for key in keys:
        values = [r.params.get(key, missing) for r in results]
        if key != "seed" and all(v == values[0] for v in values):
            continue
        rows.append({"parameter": key, **{lab: (None if v is missing else v) for lab, v in zip(labels, values)}})
    return rows


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
    runs = "; ".join(f"{lab}: {d.resolve()}" for lab, d in zip(labels, dirs))
    params = parameter_table(results, labels)
    sections = [Section("Claims across runs", f"{len(results)} runs of biaslab {results[0].command} ({runs}).",
                        table=table or None, anchor="claims-across-runs")]
    if params:
        sections.append(Section("Parameters of each run", "The parameters that differ between the runs, and the seed.",
                                table=params, anchor="parameters-of-each-run"))
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
