import json

from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.experiments.demo import DEMO_STEPS, DemoStep, run_demo


def test_demo_runs_every_step_and_writes_one_report(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    names = [s.name for s in DEMO_STEPS]
    assert d["sections"] == names
    assert {"regression", "relu", "conv", "ablate", "audit", "denoise"} <= set(names)
    assert json.loads((tmp_path / "results.json").read_text()) == d
    regression = json.loads((tmp_path / "regression" / "results.json").read_text())
    assert regression["with_bias"]["mse"] == 3.3005671804446304
    page = (tmp_path / "report.html").read_text()
    # the report opens with the classic claims, each linked to its section
    assert page.index("The claims, measured") < page.index("<nav class='toc'>")
    classic = {c["id"]: c for c in d["claims"]}
    assert classic["bias_lowers_regression_error"]["holds"] is True
    assert all(c["verdict"] in ("holds", "refuted", "inconclusive", "not measured") for c in d["claims"])
    # the folk wording and the precise statement the verdict is about sit in separate columns
    assert "<th>as it is usually said</th><th>precise statement tested</th><th>verdict</th>" in page
    relu = classic["relu_threshold"]
    assert "less than the bias" in relu["evidence"]["folk"] and "at most −b" in relu["statement"]
    assert "less than the bias" not in relu["statement"]
    # the demo's ablation has seeds enough to decide its headline claims (8 seeds, 4 comparisons)
    for cid in ("bias_as_crucial_as_weights", "bias_adapts_to_shift"):
        assert classic[cid]["verdict"] in ("holds", "refuted"), classic[cid]
    assert "does not hold" not in page
    assert "href=\"#regression\"" in page and "id='regression'" in page
    assert (tmp_path / "explore.html").is_file() and 'href="explore.html"' in page
    for name in names:
        saved = json.loads((tmp_path / name / "results.json").read_text())
        assert saved["command"] == name
        assert list(tmp_path.joinpath(name).glob("*.png")), f"{name} wrote no figure"
    # every section's figures are embedded: the page stands alone
    n_figures = sum(len(list(tmp_path.joinpath(n).glob("*.png"))) for n in names)
    assert page.count("data:image/png;base64,") == n_figures
    assert (tmp_path / "report.md").is_file()

    # `biaslab report` rebuilds the demo's page and every section from the results files alone
    for f in [tmp_path / "report.html", *tmp_path.glob("*/*.png")]:
        f.unlink()
    rebuilt = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == n_figures


def test_demo_uses_the_steps_given(tmp_path):
    from biaslab.experiments.relu.run import run_relu

    from biaslab.outputs import save_demo

    res = run_demo(steps=[DemoStep("relu", lambda seed, progress: run_relu(w=2.0))])
    assert res.sections == ["relu"] and res.parts["relu"].w == 2.0
    # claims of sections that did not run are "not measured", never guessed
    assert {c.id: c.holds for c in res.claims}["bias_lowers_regression_error"] is None
    saved = save_demo(res, res.parts, tmp_path)
    assert saved.report == tmp_path / "report.html"
    assert "Bias as the relu threshold" in saved.report.read_text()
