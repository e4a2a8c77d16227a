import base64

from biaslab.render.report import Section, render_html, render_markdown, write_report
from biaslab.results import Claim

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_html_embeds_figures_and_escapes_text(tmp_path):
    fig = tmp_path / "f.png"
    fig.write_bytes(PNG_1PX)
    page = render_html("T", [Section("S <1>", "a < b\n\nsecond", [fig], [{"k": "v", "x": 0.123456}])])
    assert "data:image/png;base64," + base64.b64encode(PNG_1PX).decode() in page
    assert "S &lt;1&gt;" in page and "<p>a &lt; b</p><p>second</p>" in page
    # numbers right-aligned, text left-aligned
    assert "<td class=num>0.1235</td>" in page and "<td>v</td>" in page


def test_table_of_contents_links_every_section_anchor():
    sections = [Section("First part", "a"), Section("Second part", "b", anchor="two")]
    page = render_html("T", sections)
    assert "<nav class='toc'>" in page
    assert "href='#first-part'" in page and "<h2 id='first-part'>" in page
    assert "href='#two'" in page and "<h2 id='two'>" in page
    md = render_markdown("T", sections, base=__import__("pathlib").Path("."))
    assert "[Second part](#two)" in md and '<a id="two"></a>' in md


def test_claims_are_rendered_with_verdict_and_evidence():
    claims = [Claim("c1", "it holds", True, {"p": 0.01}, "proposition one"),
              Claim("c2", "it fails", False, {"gap": -0.04}, "proposition two"), Claim("c3", "unknown", None, {}),
              Claim.of("c4", "inconclusive", "cannot tell", {"p": 0.3}, "proposition four")]
    page = render_html("T", [Section("S", "t", claims=claims)])
    assert "<span class='holds'>holds</span>" in page
    assert "<span class='fails'>refuted</span>" in page
    assert "<span class='unknown'>not measured</span>" in page
    # measured but undecided is its own verdict, never "does not hold"
    assert "<span class='inconclusive'>inconclusive</span>" in page and "does not hold" not in page
    assert "p = 0.01" in page and "gap = −0.04" in page and "gap = -0.04" not in page
    # each verdict sits next to the proposition it is about (the id when there is none)
    assert "<td>proposition two</td><td><span class='fails'>refuted</span></td><td>it fails" in page
    assert "<td>c3</td>" in page


def test_markdown_links_figures_relative_and_writes_both(tmp_path):
    fig = tmp_path / "sub" / "f.png"
    fig.parent.mkdir()
    fig.write_bytes(PNG_1PX)
    md = render_markdown("T", [Section("S", "text", [fig], [{"a": 1}])], tmp_path)
    assert "![f](sub/f.png)" in md and "| a |" in md
    html_path = write_report(tmp_path, "T", [Section("S", "text", [fig])])
    assert html_path.name == "report.html" and (tmp_path / "report.md").is_file()
