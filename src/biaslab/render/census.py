"""Census: the report section, a figure, a sortable HTML table (census.html) and census.csv.

``figures`` writes the figure and the two table files (they travel with the figures into OUT);
the report embeds the figure only. Everything here reads the :class:`CensusResult`.
"""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Any

from ..infra.io import atomic_write_text
from ..infra.numfmt import fmt_num
from ..results.census import STATUSES, CensusResult, failure_kind
from .figures import save_figure
from .report import Section

__all__ = ["summary", "figures", "sections", "console_table", "write_csv", "write_html", "type_rows",
           "finding_rows"]

STATUS_COLORS = {"redundant": "tab:red", "foldable": "tab:orange", "active": "tab:green"}
#: Types shown in the figure's share panel and in the terminal table.
TOP = 30


def _s(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def summary(res: CensusResult) -> str:
    """What was audited, how long it took, then each claim's text."""
    t = res.timing()
    slowest = max(res.models, key=lambda m: m.seconds or 0.0, default=None)
    head = (f"Census of transformers {res.transformers_version}: {len(res.audited)} of {len(res.models)} model types "
            f"audited ({res.available} available), {len(res.failed)} listed with a reason. Time: "
            f"{_s(res.seconds, 1)} s in all ({res.engine}, {res.jobs} at a time, {res.threads} thread each); per "
            f"model type {_s(t['mean_s'])} s on average, median {_s(t['median_s'])} s, at most {_s(t['max_s'])} s"
            + (f" ({slowest.model_type})" if slowest is not None and slowest.seconds else "") + ".")
    fails = res.failures()
    lines = [head]
    if fails:
        lines.append("Not audited: " + ", ".join(f"{n} {k}" for k, n in fails.items()) + ".")
    lines += [c.text + "." if not c.text.endswith(".") else c.text for c in res.claims]
    return "\n\n".join(lines)


def type_rows(res: CensusResult) -> list[dict[str, Any]]:
    """One row per model type (the HTML table, the report's table)."""
    rows = []
    for m in res.models:
        d = m.default_by_status()
        c = m.count_by_status()
        bias = m.default_bias_params or 0
        rows.append({
            "model type": m.model_type, "audited": m.audited,
            **{f"{s} kinds": c[s] if m.audited else None for s in STATUSES},
            **{f"{s} values (default size)": d[s] if m.audited else None for s in STATUSES},
            "redundant share (%)": round(100 * d["redundant"] / bias, 2) if m.audited and bias else None,
            "bias values (default size)": m.default_bias_params, "parameters (default size)": m.default_params,
            "unreached values (default size)": m.default_unreached() if m.audited else None,
            "verified": (all(f.verified for f in m.findings if f.verified is not None and f.reached) if m.audited
                         and any(f.verified is not None and f.reached for f in m.findings) else None),
            "rotary": m.rotary, "graph": m.graph, "input": m.input, "seconds": m.seconds,
            "reason": m.reason or "; ".join(m.notes) or "",
        })
    return rows


def finding_rows(res: CensusResult) -> list[dict[str, Any]]:
    """One row per kind of bias of each model type, and one per type not audited (census.csv)."""
    rows = []
    for m in res.models:
        if not m.audited:
            rows.append({"model_type": m.model_type, "audited": False, "param": "", "part": "", "status": "",
                         "layers": "", "default_count": "", "default_params": "", "verified": "", "moves": "",
                         "key_bias": "", "reason": m.reason or ""})
            continue
        for f in m.findings:
            rows.append({"model_type": m.model_type, "audited": True, "param": f.param, "part": f.part or "",
                         "status": f.status, "layers": f.layers, "default_count": f.default_count,
                         "default_params": f.default_params,
                         "verified": "" if f.verified is None else f.verified,
                         "moves": "" if f.moves is None else f"{f.moves:.3g}", "key_bias": f.key_bias,
                         "reason": f.reason})
    return rows


def write_csv(res: CensusResult, path: Path) -> Path:
    """``census.csv``: :func:`finding_rows`, with a header."""
    rows = finding_rows(res)
    buf = io.StringIO()
    fields = ["model_type", "audited", "param", "part", "status", "layers", "default_count", "default_params",
              "verified", "moves", "key_bias", "reason"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


_PAGE_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:1em 0}th,td{border:1px solid #ccc;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4;cursor:pointer;position:sticky;top:0;user-select:none}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.no td{color:#888}.redundant{color:#c62828;font-weight:600}.foldable{color:#ef6c00}.active{color:#2e7d32}
input{margin:.3em 0;padding:.2em;width:20em}"""

_PAGE_JS = """function sortable(t){const hs=t.tHead.rows[0].cells;for(let i=0;i<hs.length;i++){hs[i].onclick=()=>{
const asc=!hs[i].classList.contains('asc');for(const h of hs)h.classList.remove('asc','desc');
hs[i].classList.add(asc?'asc':'desc');const rows=[...t.tBodies[0].rows];rows.sort((a,b)=>{
const x=a.cells[i].dataset.v??a.cells[i].textContent,y=b.cells[i].dataset.v??b.cells[i].textContent;
const nx=parseFloat(x),ny=parseFloat(y);let r;if(!isNaN(nx)&&!isNaN(ny))r=nx-ny;else if(isNaN(nx)!==isNaN(ny))
r=isNaN(nx)?1:-1;else r=x.localeCompare(y);return asc?r:-r});for(const r of rows)t.tBodies[0].appendChild(r)}}}
function filter(inp,t){inp.oninput=()=>{const q=inp.value.toLowerCase();for(const r of t.tBodies[0].rows)
r.style.display=r.textContent.toLowerCase().includes(q)?'':'none'}}
for(const t of document.querySelectorAll('table.sortable')){sortable(t);const i=document.getElementById(t.id+'-q');
if(i)filter(i,t)}"""


def _html_cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        text = "–" if v is None else ("yes" if v else "no")
        return f"<td>{text}</td>"
    if isinstance(v, (int, float)):
        shown = f"{v:,}" if isinstance(v, int) else fmt_num(v)
        return f"<td class=num data-v=\"{v}\">{html.escape(shown)}</td>"
    text = html.escape(str(v))
    cls = f" class={v}" if v in STATUSES else ""
    return f"<td{cls}>{text}</td>"


def _html_table(table_id: str, rows: list[dict[str, Any]], flag: str | None = None) -> str:
    if not rows:
        return "<p>none</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(f"<tr{' class=no' if flag and r.get(flag) is False else ''}>" + "".join(
        _html_cell(r[c]) for c in cols) + "</tr>" for r in rows)
    return (f"<input id={table_id}-q placeholder='filter rows'><table class=sortable id={table_id}>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def write_html(res: CensusResult, path: Path) -> Path:
    """``census.html``: every model type and every kind of bias, in tables sorted by a click on a header."""
    findings = [{k: v for k, v in r.items() if k != "audited"} for r in finding_rows(res) if r["audited"]]
    for r in findings:
        r["default_params"] = r["default_params"] if isinstance(r["default_params"], int) else None
    title = f"biaslab census of transformers {res.transformers_version}"
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{_PAGE_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(summary(res)).replace(chr(10) + chr(10), '</p><p>')}</p>"
            f"<h2>Model types</h2>{_html_table('types', type_rows(res), 'audited')}"
            f"<h2>Every kind of bias</h2>{_html_table('findings', findings)}"
            f"<script>{_PAGE_JS}</script></body></html>")
    return atomic_write_text(path, page)


def plot_census(res: CensusResult, out_dir: Path, fmt: str = "png") -> Path:
    """Left: the share of each type's default-size bias values per status (the most redundant first).
    Right: what happened to each type, and the time each took."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(13, 9), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[1.25, 1])
    ax = fig.add_subplot(grid[:, 0])
    sized = [m for m in res.audited if m.default_bias_params]
    ranked = sorted(sized, key=lambda m: (-m.default_by_status()["redundant"] / m.default_bias_params,
                                          -m.default_by_status()["foldable"] / m.default_bias_params, m.model_type))
    shown = ranked[:TOP]
    if shown:
        y = list(range(len(shown)))
        left = [0.0] * len(shown)
        for s in STATUSES:
            widths = [100 * m.default_by_status()[s] / m.default_bias_params for m in shown]
            ax.barh(y, widths, left=left, color=STATUS_COLORS[s], label=s)
            left = [a + b for a, b in zip(left, widths)]
        widths = [100 * m.default_unreached() / m.default_bias_params for m in shown]
        if any(widths):
            ax.barh(y, widths, left=left, color="lightgrey", label="not reached by the input")
        ax.set_yticks(y, [m.model_type for m in shown], fontsize=8)
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of the bias values at the default size (%)")
        ax.legend(loc="lower right", fontsize=8, title="status")
    else:
        ax.text(0.5, 0.5, "no model type audited with default sizes", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title(f"The {len(shown)} of {len(sized)} audited types with biases, largest redundant share first "
                 "(checked statuses)", fontsize=10)

    ax2 = fig.add_subplot(grid[0, 1])
    with_red = sum(m.count_by_status()["redundant"] > 0 for m in res.audited)
    bars = [("audited, some bias redundant", with_red, "tab:red"),
            ("audited, none redundant", len(res.audited) - with_red, "tab:green")]
    bars += [(f"not audited: {k}", n, "tab:gray") for k, n in res.failures().items()]
    ax2.barh(range(len(bars)), [b[1] for b in bars], color=[b[2] for b in bars])
    ax2.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax2.set_ylim(len(bars) - 0.5, -0.5)
    for i, b in enumerate(bars):
        ax2.text(b[1], i, f" {b[1]}", va="center", fontsize=8)
    ax2.set_xlabel("model types")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_xlim(0, max([b[1] for b in bars] + [1]) * 1.15)
    ax2.set_title(f"{len(res.models)} model types of transformers {res.transformers_version}", fontsize=10)

    ax3 = fig.add_subplot(grid[1, 1])
    secs = [s for s in res.type_seconds() if s > 0]
    if secs:
        lo, hi = math.log10(min(secs)), math.log10(max(secs))
        edges = [10 ** (lo + (hi - lo + 1e-9) * i / 20) for i in range(21)]
        ax3.hist(secs, bins=edges, color="tab:blue")
        ax3.set_xscale("log")
    t = res.timing()
    ax3.set_xlabel("seconds per model type (log scale)")
    ax3.set_ylabel("model types")
    ax3.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax3.set_title(f"Time: {_s(res.seconds, 1)} s in all, {_s(t['mean_s'])} s per type on average, "
                  f"{res.jobs} at a time", fontsize=10)
    return save_figure(fig, out_dir, "census", fmt)


def figures(res: CensusResult, out_dir: Path, fmt: str = "png") -> list[Path]:
    """The figure, then census.csv and census.html (files, not images: the report links them)."""
    out_dir = Path(out_dir)
    return [plot_census(res, out_dir, fmt), write_csv(res, out_dir / "census.csv"),
            write_html(res, out_dir / "census.html")]


def _report_rows(res: CensusResult) -> list[dict[str, Any]]:
    keep = ("model type", "redundant kinds", "foldable kinds", "active kinds", "redundant values (default size)",
            "foldable values (default size)", "redundant share (%)", "bias values (default size)", "verified",
            "rotary", "seconds")
    return [{k: r[k] for k in keep} for r in type_rows(res) if r["audited"]]


def sections(res: CensusResult, figs: list[Path]) -> list[Section]:
    images = [f for f in figs if Path(f).suffix in (".png", ".svg")]
    text = summary(res) + ("\n\nEvery model type and every kind of bias: census.html (sortable) and census.csv, "
                           "beside this report.")
    out = [Section("Bias census of the transformers model zoo", text, images, _report_rows(res),
                   claims=list(res.claims), anchor="census")]
    if res.failed:
        rows = [{"model type": m.model_type, "kind": failure_kind(m.reason), "seconds": m.seconds,
                 "reason": m.reason} for m in res.failed]
        out.append(Section("Model types not audited", f"{len(res.failed)} model types could not be built or run "
                           "offline at a tiny size; each is listed with its reason.", [], rows,
                           anchor="census-failed"))
    return out


def console_table(res: CensusResult):
    """The audited types with the largest redundant share, for the terminal."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"Census: {len(res.audited)} of {len(res.models)} model types audited (top {TOP} by redundant "
                    "share)")
    for col in ("model type", "redundant", "foldable", "active", "redundant values", "share", "verified", "s"):
        t.add_column(col, justify="left" if col == "model type" else "right", no_wrap=True)
    rows = sorted((r for r in type_rows(res) if r["audited"]),
                  key=lambda r: (-(r["redundant share (%)"] or 0), r["model type"]))
    for r in rows[:TOP]:
        t.add_row(escape(r["model type"]), str(r["redundant kinds"]), str(r["foldable kinds"]),
                  str(r["active kinds"]), f"{r['redundant values (default size)']:,}",
                  "–" if r["redundant share (%)"] is None else f"{r['redundant share (%)']:.1f}%",
                  {True: "yes", False: "NO", None: "–"}[r["verified"]], _s(r["seconds"], 1))
    return t
