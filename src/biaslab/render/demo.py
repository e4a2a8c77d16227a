"""The demo report: the classic claims table first, then one group of sections per command."""

from __future__ import annotations

import html
from pathlib import Path

from ..results import Result
from ..results.demo import DemoResult
from . import render_sections
from .report import _VERDICT_CLASS, Section, write_report

__all__ = ["demo_report", "summary", "claims_markdown"]


def _folk(c) -> str:
    return str(c.evidence.get("folk", ""))


def summary(result: DemoResult) -> str:
    lines = [f"- {_folk(c)}\n  tested precisely: {c.statement}\n  {c.verdict.upper()}: {c.text}"
             for c in result.claims]
    return "The classic claims about the bias, measured (each verdict is about the precise statement):\n" + \
        "\n".join(lines)


def _claims_html(claims, links: dict[str, str]) -> str:
    rows = []
    for c in claims:
        precise = html.escape(c.statement)
        if c.id in links:
            precise = f'<a href="#{html.escape(links[c.id])}">{precise}</a>'
        cls = _VERDICT_CLASS.get(c.verdict, "unknown")
        rows.append(f"<tr><td>{html.escape(_folk(c))}</td><td>{precise}</td>"
                    f"<td><span class='{cls}'>{html.escape(c.verdict)}</span></td><td>{html.escape(c.text)}</td></tr>")
    return ("<h2 id='claims'>The claims, measured</h2><div class='wide'><table class='claims'><tr>"
            "<th>as it is usually said</th><th>precise statement tested</th><th>verdict</th>"
            "<th>what was measured</th></tr>" + "".join(rows) + "</table></div>")


def claims_markdown(claims, links: dict[str, str] | None = None) -> str:
    """The classic claims as a Markdown table: folk statement, precise statement, verdict, evidence."""
    links = links or {}
    def esc(t: str) -> str:
        return str(t).replace("|", "\\|").replace("\n", " ")

    lines = ["| as it is usually said | precise statement tested | verdict | what was measured |", "|---|---|---|---|"]
    for c in claims:
        precise = f"[{esc(c.statement)}](#{links[c.id]})" if c.id in links else esc(c.statement)
        lines.append(f"| {esc(_folk(c))} | {precise} | {c.verdict} | {esc(c.text)} |")
    return "\n".join(lines)


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
        intro_html=link_html + _claims_html(result.claims, links),
        intro_md=link_md + "## The claims, measured\n\n" + claims_markdown(result.claims, links),
    )
