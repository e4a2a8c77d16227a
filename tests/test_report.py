import base64

from biaslab.report import Section, render_html, render_markdown, write_report

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_html_embeds_figures_and_escapes_text(tmp_path):
    fig = tmp_path / "f.png"
    fig.write_bytes(PNG_1PX)
    page = render_html("T", [Section("S <1>", "a < b\n\nsecond", [fig], [{"k": "v", "x": 0.123456}])])
    assert "data:image/png;base64," + base64.b64encode(PNG_1PX).decode() in page
    assert "S &lt;1&gt;" in page and "<p>a &lt; b</p><p>second</p>" in page
    assert "<td>0.1235</td>" in page


def test_markdown_links_figures_relative_and_writes_both(tmp_path):
    fig = tmp_path / "sub" / "f.png"
    fig.parent.mkdir()
    fig.write_bytes(PNG_1PX)
    md = render_markdown("T", [Section("S", "text", [fig], [{"a": 1}])], tmp_path)
    assert "![f](sub/f.png)" in md and "| a |" in md
    html_path = write_report(tmp_path, "T", [Section("S", "text", [fig])])
    assert html_path.name == "report.html" and (tmp_path / "report.md").is_file()
