"""Results in a notebook: the HTML a result shows itself as, and its figures as matplotlib objects.

Everything here is assembled from the command's own renderer (``render/<command>.py``): its
report sections give the claims, the paragraph of main numbers and the table; its figure
functions give the pictures. Nothing is recomputed. :meth:`biaslab.results.Result._repr_html_`
and :meth:`~biaslab.results.Result.figure` call into this module lazily, so reading a
results.json still imports neither matplotlib nor this module.
"""

from __future__ import annotations

import base64
import html
import io
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results import Claim, Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["result_html", "figure_names", "result_figure", "verdict_of"]

#: Styles scoped to the result's own box, so a notebook's page keeps its look.
_CSS = """
.biaslab-result{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;line-height:1.45;max-width:1100px}
.biaslab-result h3{margin:.2em 0 .1em;font-size:1.15em}
.biaslab-result h4{margin:1em 0 .3em;font-size:1em}
.biaslab-result .meta{color:#666;font-size:.85em;margin:0 0 .4em}
.biaslab-result table{border-collapse:collapse;margin:.4em 0;font-size:.88em}
.biaslab-result th,.biaslab-result td{border:1px solid #ccc;padding:.2em .5em;text-align:left!important;vertical-align:top}
.biaslab-result th{background:#f4f4f4}
.biaslab-result td.num{text-align:right!important;font-variant-numeric:tabular-nums}
.biaslab-result .holds{color:#1a7f37;font-weight:600}.biaslab-result .fails{color:#cf222e;font-weight:600}
.biaslab-result .unknown{color:#777;font-weight:600}
.biaslab-result .evidence{color:#555;font-size:.88em}
.biaslab-result img{max-width:100%;border:1px solid #eee}
.biaslab-result .wide{overflow-x:auto;max-width:100%}
"""

_VERDICT_CLASS = {"holds": "holds", "refuted": "fails", "does not hold": "fails"}


def verdict_of(claim: Claim) -> str:
    """The claim's verdict: its ``verdict`` when it has one, else read off ``holds``."""
    verdict = getattr(claim, "verdict", None)
    if isinstance(verdict, str) and verdict:
        return verdict
    return {True: "holds", False: "refuted", None: "not measured"}[claim.holds]


def _claims_table(claims: list[Claim]) -> str:
    from .report import _evidence

    rows = []
    for c in claims:
        verdict = verdict_of(c)
        rows.append(
            f"<tr><td>{html.escape(c.statement or c.id)}</td>"
            f"<td><span class='{_VERDICT_CLASS.get(verdict, 'unknown')}'>{html.escape(verdict)}</span></td>"
            f"<td>{html.escape(c.text)}<div class='evidence'>{html.escape(_evidence(c))}</div></td></tr>")
    return ("<div class='wide'><table class='claims'><tr><th>claim tested</th><th>verdict</th>"
            "<th>what was measured (evidence)</th></tr>" + "".join(rows) + "</table></div>")


def _img(path: Path) -> str:
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" title="result.figure({path.stem!r})" src="data:{mime};base64,{data}">'


def _has_renderer(result: Result) -> bool:
    from . import renderer

    module = renderer(result.command)
    return hasattr(module, "figures") and hasattr(module, "sections")


def _meta(result: Result) -> str:
    params: dict[str, Any] = getattr(result, "params", {}) or {}
    seed = params.get("seed")
    return f"seed {seed}" if seed is not None else ""


def result_html(result: Result) -> str:
    """``result`` as one HTML block: per report section its claims, numbers and table; the key figure inline.

    The key figure is the first figure the command's renderer draws; the names of the others
    are listed, each available as ``result.figure(NAME)``.
    """
    from .report import _html_table, _paragraphs

    parts = [f"<style>{_CSS}</style><div class='biaslab-result'>",
             f"<h3>biaslab {html.escape(result.command)}</h3>"]
    meta = _meta(result)
    if meta:
        parts.append(f"<p class='meta'>{html.escape(meta)}</p>")
    if not _has_renderer(result):  # the demo: its claims table, then each part it holds in memory
        parts.append(_claims_table(list(result.claims)))
        parts.append("</div>")
        for part in (getattr(result, "parts", None) or {}).values():
            parts.append(result_html(part))
        return "\n".join(parts)
    from . import render_sections
    from .figures import capture_figures

    with tempfile.TemporaryDirectory(prefix="biaslab-nb-") as tmp, capture_figures():
        figs = _render(result, Path(tmp))
        sections = render_sections(result, figs)
        key = figs[0] if figs else None
        for s in sections:
            parts.append(f"<h4>{html.escape(s.title)}</h4>")
            if s.claims:
                parts.append(_claims_table(list(s.claims)))
            parts.append(_paragraphs(s.text))
            if s.table:
                parts.append(_html_table(s.table))
            if key is not None and key in [Path(f) for f in s.figures]:
                parts.append(_img(key))
                key = None
        if key is not None:
            parts.append(_img(key))
        others = [f.stem for f in figs[1:]]
        if others:
            names = ", ".join(f"<code>{html.escape(repr(n))}</code>" for n in others)
            parts.append(f"<p class='meta'>More figures: {names}; show one with "
                         "<code>result.figure(NAME)</code>.</p>")
    parts.append("</div>")
    return "\n".join(parts)


def _render(result: Result, out_dir: Path) -> list[Path]:
    from . import render_figures

    return [Path(p) for p in render_figures(result, out_dir)]


def _figures(result: Result) -> dict[str, "Figure"]:
    from .figures import capture_figures

    if not _has_renderer(result):
        return {}
    with tempfile.TemporaryDirectory(prefix="biaslab-nb-") as tmp, capture_figures() as figures:
        _render(result, Path(tmp))
    return figures


def _figure_png(fig: "Figure") -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _show_figures_in_ipython() -> None:
    """Let IPython display a bare matplotlib Figure as a PNG (pyplot's inline backend does this only
    once pyplot is imported, and biaslab draws without pyplot). An existing formatter is kept."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is None:
        return
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, _figure_png)


def figure_names(result: Result) -> list[str]:
    """The names of ``result``'s figures, in the renderer's order (the file stems of ``--out DIR``)."""
    return list(_figures(result))


def result_figure(result: Result, name: str) -> "Figure":
    """The matplotlib Figure ``name`` of ``result``, as the renderer drew it, to restyle or save.

    Raises
    ------
    BiaslabError : when the result has no figure of that name (the message lists the names).
    """
    from ..infra.io import BiaslabError

    figures = _figures(result)
    if name not in figures:
        known = ", ".join(repr(n) for n in figures) or "none"
        raise BiaslabError(f"the {result.command} result has no figure {name!r}; its figures: {known}")
    _show_figures_in_ipython()
    return figures[name]
