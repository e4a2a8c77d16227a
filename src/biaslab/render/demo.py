"""The demo report: the classic claims table first, then one group of sections per command."""

from __future__ import annotations

import html
from pathlib import Path

from ..results import Result
from ..results.demo import DemoResult
from . import render_sections
from .report import Section, claims_intro_html, md_claims, write_report

__all__ = ["demo_report", "summary"]


def summary(result: DemoResult) -> str:
    lines = [f"- {c.statement}\n  {c.verdict.upper()}: {c.text}" for c in result.claims]
    return "The classic claims about the bias, measured:\n" + "\n".join(lines)


def _sections(parts: dict[str, Result], figures: dict[str, list[Path]]) -> list[Section]:
    out: list[Section] = []
    for name, part in parts.items():
        for i, s in enumerate(render_sections(part, figures.get(name, []))):
            s.anchor = name if i == 0 else f"{name}-{s.anchor}"
            out.append(s)
    return out


def demo_report(result: DemoResult, parts: dict[str, Result], figures: dict[str, list[Path]], out_dir: Path,
                explorer: str | None = None) -> Path:
    """Write ``report.html``/``report.md`` for the demo into ``out_dir``; return the HTML path.

    ``explorer`` is the file name of the interactive page written beside the report, linked first.
    """
    links = {c.id: c.evidence["section"] for c in result.claims if "section" in c.evidence}
    seed = result.params.get("seed")
    link_html = link_md = ""
    if explorer:
        link_html = (f'<p>Move the bias yourself: <a href="{html.escape(explorer)}">the interactive explorer</a> '
                     "(one offline page beside this report).</p>")
        link_md = f"Move the bias yourself: [the interactive explorer]({explorer}).\n\n"
    return write_report(
        out_dir,
        "biaslab demo: what the bias term does",
        _sections(parts, figures),
        meta=f"seed {seed}; each section's data is in <section>/results.json; `biaslab report {out_dir}` rebuilds this page",
        intro_html=link_html + claims_intro_html(result.claims, links),
        intro_md=link_md + "## The claims, measured\n\n" + md_claims(result.claims, links),
    )
