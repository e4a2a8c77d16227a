"""What every command writes, and `biaslab report`, which rebuilds it from results.json alone."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.outputs import save_outputs
from biaslab.experiments.regression.run import run_regression


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def regression_dir(tmp_path):
    out = tmp_path / "reg"
    assert run("regression", "--quiet", "--out", out).exit_code == 0
    return out


def test_a_failed_render_keeps_the_previous_complete_set(tmp_path, monkeypatch):
    save_outputs(run_regression(), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr("biaslab.render.render_figures", broken)
    with pytest.raises(RuntimeError):
        save_outputs(run_regression(intercept=7.0), tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no new results.json beside an old report, no staging folder left


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        saved = save_outputs(run_regression(), tmp_path)
    finally:
        os.umask(old)
    for path in (saved.results, saved.report, *saved.figures, tmp_path / "report.md"):
        assert path.stat().st_mode & 0o777 == mode, path


def test_report_rebuilds_figures_and_report_from_results_json_alone(regression_dir):
    md = (regression_dir / "report.md").read_text()
    for name in ("report.html", "report.md", "regression.png"):
        (regression_dir / name).unlink()
    res = run("report", regression_dir)
    assert res.exit_code == 0, res.output
    assert (regression_dir / "regression.png").stat().st_size > 10_000
    assert (regression_dir / "report.md").read_text() == md
    assert "bias lowers the train MSE" in (regression_dir / "report.html").read_text()


def test_report_puts_several_runs_side_by_side(tmp_path, regression_dir):
    other = tmp_path / "flat"
    assert run("regression", "--quiet", "--intercept", "0", "--out", other).exit_code == 0
    out = tmp_path / "cmp"
    res = run("report", regression_dir, other, "--out", out)
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert "Claims across runs" in page and "reg: Linear regression" in page and "flat: Linear regression" in page
    md = (out / "report.md").read_text()
    # the claim that holds on the classic data is refuted when the true intercept is 0 (an exact check)
    assert "| bias_lowers_mse | holds | refuted |" in md
    assert (out / "reg" / "regression.png").is_file() and (out / "flat" / "regression.png").is_file()


@pytest.mark.parametrize("content,words", [
    ('{"schema": "biaslab.regression/1", "command": "regression", "biaslab_version": "0.1.0"}',
     "schema 'biaslab.regression/1'"),
    ("not json", "not valid JSON"),
])
def test_report_refuses_old_or_broken_results_in_one_line(tmp_path, content, words):
    (tmp_path / "results.json").write_text(content)
    res = run("report", tmp_path)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in res.output


def test_report_refuses_to_mix_commands(tmp_path, regression_dir):
    relu = tmp_path / "relu"
    assert run("relu", "--quiet", "--out", relu).exit_code == 0
    res = run("report", regression_dir, relu, "--out", tmp_path / "cmp")
    assert res.exit_code == 2 and "one command" in res.stderr


def test_report_of_a_regression_run_does_not_import_torch(regression_dir):
    code = (
        "import sys\nfrom biaslab.cli import app\n"
        f"try:\n    app(['report', {str(regression_dir)!r}, '--quiet'])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_json_output_is_the_results_file(regression_dir, tmp_path):
    res = run("regression", "--json", "--out", tmp_path / "again")
    assert json.loads(res.stdout) == json.loads((regression_dir / "results.json").read_text())


def test_a_run_never_replaces_another_commands_results(regression_dir):
    before = (regression_dir / "results.json").read_bytes()
    res = run("relu", "--out", regression_dir)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds the results of `biaslab regression`" in lines[0]
    assert (regression_dir / "results.json").read_bytes() == before
    assert run("regression", "--quiet", "--out", regression_dir).exit_code == 0  # the same command may rerun


@pytest.mark.parametrize("content", ["a,b\n1,2\n", b"\x89PNG\r\n\x1a\n\xff"])
def test_report_of_a_file_says_dir_must_be_a_run_directory(tmp_path, content):
    data = tmp_path / "d.csv"
    data.write_bytes(content if isinstance(content, bytes) else content.encode())
    res = run("report", data)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a run: pass a directory written by a biaslab command" in lines[0]
    assert "valid JSON" not in lines[0] and "run the command again" not in lines[0]


@pytest.mark.parametrize("command", [
    ["regression"], ["relu"], ["conv"], ["demo"], ["ablate"], ["denoise"],
    ["denoise", "apply", "--model", "m.pt", "--image", "i.png"], ["audit", "linear"], ["explore"], ["report", "RUN"],
])
def test_an_empty_out_is_refused_by_every_command(tmp_path, monkeypatch, regression_dir, command):
    monkeypatch.chdir(regression_dir)
    before = sorted(p.name for p in regression_dir.iterdir())
    res = run(*[str(regression_dir) if a == "RUN" else a for a in command], "--out", "")
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out is empty" in lines[0], res.stderr
    assert sorted(p.name for p in regression_dir.iterdir()) == before  # nothing written into the current directory


def test_prepare_out_dir_refuses_the_empty_string(tmp_path, monkeypatch):
    from biaslab.infra.io import BiaslabError
    from biaslab.outputs import prepare_out_dir

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BiaslabError, match="--out is empty"):
        prepare_out_dir("")


def test_a_comparison_names_each_run_directory_and_the_parameters_that_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("relu", "--quiet", "--out", "r1").exit_code == 0
    assert run("relu", "--quiet", "--w", "2", "--seed", "5", "--out", "r2").exit_code == 0
    res = run("report", "r1", "r2", "--out", "cmp")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert f"r1: {tmp_path / 'r1'}; r2: {tmp_path / 'r2'}" in md and "r1 = r1" not in md
    table = md.split("Parameters of each run", 2)[2].split("\n## ")[0]
    assert "| parameter | r1 | r2 |" in table and "| w | 1 | 2 |" in table and "| seed | 0 | 5 |" in table
    assert "activation" not in table and "biases" not in table  # equal in both runs: left out
    assert "Parameters of each run" in (tmp_path / "cmp" / "report.html").read_text()


def test_report_in_another_format_removes_only_the_previous_runs_figures(regression_dir):
    assert run("report", regression_dir, "--format", "svg").exit_code == 0
    assert (regression_dir / "regression.svg").is_file() and not (regression_dir / "regression.png").exists()
    mine = regression_dir / "mine.svg"  # not linked from the report: never ours to delete
    mine.write_text("<svg/>")
    res = run("report", regression_dir, "--format", "png")
    assert res.exit_code == 0, res.output
    assert (regression_dir / "regression.png").is_file() and not (regression_dir / "regression.svg").exists()
    assert mine.read_text() == "<svg/>"


def test_previous_figures_are_bare_figure_links_of_a_run_report(tmp_path):
    from biaslab.outputs import previous_figures

    (tmp_path / "report.md").write_text("![a](a.svg)\n![b](sub/b.png)\n![c](../c.png)\n![d](d.txt)\ntext ![e](e.png)\n")
    assert previous_figures(tmp_path) == set()  # no results.json: not a folder a run wrote
    (tmp_path / "results.json").write_text("{}")
    assert previous_figures(tmp_path) == {"a.svg"}
