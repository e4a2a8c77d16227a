"""Reports: a self-contained HTML page and a Markdown twin, built from :class:`Section` records.

A report opens with a table of contents; each section has an anchor, an optional table of the
claims it rests on (verdict and evidence), a paragraph, a table and figures. Figures are
embedded in the HTML as data URIs, so the page stands alone; the Markdown links them.
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import Any

from ..infra.io import atomic_write_text
from ..infra.numfmt import fmt_num
from ..results import Claim

__all__ = ["Section", "render_html", "render_markdown", "write_report", "anchor"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{margin-top:2em;border-bottom:1px solid #eee}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f4}
code{background:#f4f4f4;padding:0 .2em}
.meta{color:#777;font-size:.9em}
nav.toc{background:#fafafa;border:1px solid #eee;padding:.5em 1.2em;margin:1em 0}
nav.toc ol{margin:.3em 0}
.holds{color:#1a7f37;font-weight:600}.fails{color:#cf222e;font-weight:600}.unknown{color:#777;font-weight:600}.inconclusive{color:#9a6700;font-weight:600}
.evidence{color:#555;font-size:.9em}
.wide{overflow-x:auto;max-width:100%}
"""


@dataclass
class Section:
    """One part of a report: a title, its claims, a paragraph, an optional table, figures.

    ``anchor`` is the HTML id of the section (derived from the title when empty); links such as
    the demo's claims table point to it.
    """

    title: str
    text: str
    figures: list[Path] = field(default_factory=list)
    table: list[dict[str, Any]] | None = None
    claims: list[Claim] = field(default_factory=list)
    anchor: str = ""

    def __post_init__(self) -> None:
        if not self.anchor:
            self.anchor = anchor(self.title)


def anchor(text: str) -> str:
    """A stable HTML id for ``text``: lowercase words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, Number):
        return fmt_num(value)
    return str(value)


def _evidence(claim: Claim) -> str:
    return ", ".join(f"{k} = {_cell(v)}" for k, v in claim.evidence.items()
                     if not isinstance(v, (list, dict)))


_VERDICT_CLASS = {"holds": "holds", "refuted": "fails", "inconclusive": "inconclusive", "not measured": "unknown"}


def _statement(claim: Claim) -> str:
    return claim.statement or claim.id


def _html_claims(claims: list[Claim], links: dict[str, str] | None = None) -> str:
    rows = []
    for c in claims:
        statement = html.escape(_statement(c))
        if links and c.id in links:
            statement = f'<a href="#{html.escape(links[c.id])}">{statement}</a>'
        rows.append(
            f"<tr><td>{statement}</td><td><span class='{_VERDICT_CLASS.get(c.verdict, 'unknown')}'>{html.escape(c.verdict)}</span></td>"
            f"<td>{html.escape(c.text)}<div class='evidence'>{html.escape(_evidence(c))}</div></td></tr>"
        )
    return ("<div class='wide'><table class='claims'><tr><th>claim tested</th><th>verdict</th>"
            "<th>what was measured (evidence)</th></tr>" + "".join(rows) + "</table></div>")


def _html_table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(
            f"<td{' class=num' if isinstance(r.get(c), Number) and not isinstance(r.get(c), bool) else ''}>"
            f"{html.escape(_cell(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<div class='wide'><table><tr>{head}</tr>{body}</table></div>"


def _embed(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:{mime};base64,{data}">'


def _paragraphs(text: str) -> str:
    """Paragraphs split at blank lines; a single newline inside one is a line break."""
    paragraphs = (html.escape(p.strip()).replace("\n", "<br>") for p in text.split("\n\n") if p.strip())
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def render_html(title: str, sections: list[Section], meta: str = "", intro: str = "") -> str:
    """Return a standalone HTML page with a table of contents and every figure embedded.

    ``intro`` is trusted HTML placed before the table of contents (the demo's claims table).
    """
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if meta:
        parts.append(f"<p class='meta'>{html.escape(meta)}</p>")
    parts.append(intro)
    if len(sections) > 1:
        items = "".join(f"<li><a href='#{html.escape(s.anchor)}'>{html.escape(s.title)}</a></li>" for s in sections)
        parts.append(f"<nav class='toc'><strong>Contents</strong><ol>{items}</ol></nav>")
    for s in sections:
        parts.append(f"<h2 id='{html.escape(s.anchor)}'>{html.escape(s.title)}</h2>")
        if s.claims:
            parts.append(_html_claims(s.claims))
        parts.append(_paragraphs(s.text))
        if s.table:
            parts.append(_html_table(s.table))
        parts.extend(_embed(Path(f)) for f in s.figures if Path(f).is_file())
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_text(text: str) -> str:
    """``text`` for Markdown with no raw HTML: ``<`` and ``>`` as entities (they render the same),
    so a ``<script>`` or ``<img onerror=...>`` from a results.json stays text."""
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


def _md_escape(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(map(_md_escape, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_md_escape(_cell(r.get(c, ""))) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def md_claims(claims: list[Claim], links: dict[str, str] | None = None) -> str:
    """Claims as a Markdown table: verdict, text (linked to ``links[id]`` when given), evidence."""
    rows = []
    for c in claims:
        statement = f"[{_statement(c)}](#{anchor(links[c.id])})" if links and c.id in links else _statement(c)
        rows.append({"claim tested": statement, "verdict": c.verdict, "what was measured": c.text,
                     "evidence": _evidence(c)})
    return _md_table(rows)


def render_markdown(title: str, sections: list[Section], base: Path, meta: str = "", intro: str = "") -> str:
    """Return a Markdown report; figures are linked relative to ``base``. ``intro`` is Markdown."""
    out = [f"# {_md_escape(title)}", ""]
    if meta:
        out += [f"_{_md_escape(meta)}_", ""]
    if intro:
        out += [intro, ""]
    if len(sections) > 1:
        out += ["## Contents", ""] + [f"{i}. [{_md_escape(s.title)}](#{anchor(s.anchor)})"
                                      for i, s in enumerate(sections, 1)] + [""]
    for s in sections:
        out += [f'## <a id="{anchor(s.anchor)}"></a>{_md_escape(s.title)}', ""]
        if s.claims:
            out += [md_claims(s.claims), ""]
        out += [_md_text(s.text.strip()), ""]
        if s.table:
            out += [_md_table(s.table), ""]
        out += [f"![{Path(f).stem}]({Path(os.path.relpath(f, base)).as_posix()})" for f in s.figures]
        out.append("")
    return "\n".join(out)


def write_report(out_dir: Path, title: str, sections: list[Section], meta: str = "",
                 intro_html: str = "", intro_md: str = "") -> Path:
    """Write ``report.html`` and ``report.md`` into ``out_dir``; return the HTML path."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "report.md", render_markdown(title, sections, out_dir, meta, intro_md))
    return atomic_write_text(out_dir / "report.html", render_html(title, sections, meta, intro_html))


def claims_intro_html(claims: list[Claim], links: dict[str, str]) -> str:
    """The claims table that opens a report (the demo's), each claim linked to its section."""
    return "<h2 id='claims'>The claims, measured</h2>" + _html_claims(claims, links)
