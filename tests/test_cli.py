import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from biaslab import __version__
from biaslab.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_help_lists_every_command():
    res = run("--help")
    assert res.exit_code == 0
    for name in ("regression", "relu", "demo"):
        assert name in res.output


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and __version__ in res.output


def test_regression_json_shape_and_files(tmp_path):
    res = run("regression", "--json", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert set(d) >= {"without_bias", "with_bias", "n_samples"}
    for side in ("without_bias", "with_bias"):
        assert isinstance(d[side]["mse"], float) and isinstance(d[side]["coef"], list)
        assert isinstance(d[side]["intercept"], float)
    assert d["without_bias"]["intercept"] == 0.0
    assert d["without_bias"]["mse"] == 4.4679407950601835
    assert d["with_bias"]["mse"] == 3.3005671804446304
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["schema"] == "biaslab.regression/2"
    assert saved == d  # results.json and --json hold the same payload
    assert saved["with_bias"] == d["with_bias"]
    assert (tmp_path / "regression.png").stat().st_size > 10_000
    assert "data:image/png;base64" in (tmp_path / "report.html").read_text()


def test_regression_svg_and_summary(tmp_path):
    res = run("regression", "--format", "svg", "--out", str(tmp_path), "--intercept", "0")
    assert res.exit_code == 0
    svg = (tmp_path / "regression.svg").read_text()
    assert "Linear Regression Comparison" in svg and "Without Bias (MSE:" in svg
    assert "does not lower the train MSE by at least 1%" in res.stdout


def test_quiet_prints_nothing(tmp_path):
    res = run("relu", "--quiet", "--out", str(tmp_path))
    assert res.exit_code == 0 and res.stdout == ""
    assert (tmp_path / "relu_threshold.png").is_file() and (tmp_path / "relu_plane.png").is_file()


def test_relu_json(tmp_path):
    res = run("relu", "--json", "--out", str(tmp_path), "--w", "2", "--b", "-4,0", "--b", "1",
              "--activation", "sigmoid")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["activation"] == "sigmoid"
    assert [t["x"] for t in d["thresholds"]] == [2.0, 0.0, -0.5]


@pytest.mark.parametrize(
    "args",
    [
        ["regression", "--n", "0"],
        ["regression", "--n", "-5"],
        ["regression", "--noise", "-1"],
        ["regression", "--x-min", "5", "--x-max", "1"],
        ["regression", "--dataset", "nope"],
        ["regression", "--csv", "/nonexistent/file.csv", "--x", "a", "--y", "b"],
        ["regression", "--format", "gif"],
        ["relu", "--activation", "swish"],
        ["relu", "--b", "1,x"],
        ["relu", "--plane-w", "1"],
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_results(tmp_path, args):
    out = tmp_path / "out"
    res = run(*args, "--out", str(out))
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biaslab: error:")
    assert "Traceback" not in res.output
    assert not (out / "results.json").exists()


def test_csv_with_nan_column_exits_2(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b\n1,2\n2,\n3,4\n")
    res = run("regression", "--csv", str(p), "--x", "a", "--y", "b", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "not numeric" in res.stderr


def test_failed_rerun_keeps_previous_complete_results(tmp_path):
    assert run("regression", "--out", str(tmp_path), "-q").exit_code == 0
    before = (tmp_path / "results.json").read_text()
    assert run("regression", "--out", str(tmp_path), "--n", "0").exit_code == 2
    assert (tmp_path / "results.json").read_text() == before


@pytest.mark.parametrize("command", ["regression", "relu"])
def test_fast_commands_do_not_import_torch(tmp_path, command):
    code = (
        "import sys\n"
        "from biaslab.cli import app\n"
        f"try:\n    app([{command!r}, '--quiet', '--out', {str(tmp_path)!r}])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
