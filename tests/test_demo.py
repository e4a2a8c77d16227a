import json

from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.demo import DEMO_STEPS, DemoStep, run_demo


def test_demo_runs_every_step_and_writes_one_report(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    names = [s.name for s in DEMO_STEPS]
    assert d["sections"] == names
    assert {"regression", "relu", "conv", "ablate", "audit", "denoise"} <= set(names)
    assert d["results"]["regression"]["with_bias"]["mse"] == 3.3005671804446304
    page = (tmp_path / "report.html").read_text()
    for name in names:
        saved = json.loads((tmp_path / name / "results.json").read_text())
        assert saved["command"] == name
        assert list(tmp_path.joinpath(name).glob("*.png")), f"{name} wrote no figure"
    # every section's figures are embedded: the page stands alone
    n_figures = sum(len(list(tmp_path.joinpath(n).glob("*.png"))) for n in names)
    assert page.count("data:image/png;base64,") == n_figures
    assert (tmp_path / "report.md").is_file()


def test_demo_prints_report_path_and_uses_steps_given(tmp_path):
    from biaslab.activations import run_relu

    res = run_demo(tmp_path, steps=[DemoStep("relu", lambda seed, progress: run_relu(w=2.0))])
    assert res.report == tmp_path / "report.html"
    assert list(res.results) == ["relu"] and res.results["relu"]["w"] == 2.0
    assert "Bias as the relu threshold" in res.report.read_text()
