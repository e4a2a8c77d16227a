"""Render results into a small self-contained HTML report and a Markdown twin.

A report is a list of :class:`Section`; each command's result turns itself into one
section (``Result.section``), and ``biaslab demo`` concatenates them.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .io import atomic_write_text

__all__ = ["Section", "render_html", "render_markdown", "write_report"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{margin-top:2em;border-bottom:1px solid #eee}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
code{background:#f4f4f4;padding:0 .2em}
.meta{color:#777;font-size:.9em}
"""


@dataclass
class Section:
    """One part of a report: a title, a paragraph, figures and an optional table."""

    title: str
    text: str
    figures: list[Path] = field(default_factory=list)
    table: list[dict[str, Any]] | None = None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _html_table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _embed(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:{mime};base64,{data}">'


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def render_html(title: str, sections: list[Section], meta: str = "") -> str:
    """Return a standalone HTML page with every figure embedded as a data URI."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if meta:
        parts.append(f"<p class='meta'>{html.escape(meta)}</p>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>{_paragraphs(s.text)}")
        if s.table:
            parts.append(_html_table(s.table))
        parts.extend(_embed(f) for f in s.figures if Path(f).is_file())
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section], base: Path, meta: str = "") -> str:
    """Return a Markdown report; figures are linked relative to ``base``."""
    out = [f"# {title}", ""]
    if meta:
        out += [f"_{meta}_", ""]
    for s in sections:
        out += [f"## {s.title}", "", s.text.strip(), ""]
        if s.table:
            out += [_md_table(s.table), ""]
        out += [f"![{Path(f).stem}]({os.path.relpath(f, base)})" for f in s.figures]
        out.append("")
    return "\n".join(out)


def write_report(out_dir: Path, title: str, sections: list[Section], meta: str = "") -> Path:
    """Write ``report.html`` and ``report.md`` into ``out_dir``; return the HTML path."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "report.md", render_markdown(title, sections, out_dir, meta))
    return atomic_write_text(out_dir / "report.html", render_html(title, sections, meta))
