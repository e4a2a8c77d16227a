import json

import numpy as np
import pytest
from typer.testing import CliRunner

import biaslab.train
from biaslab.ablate import MODEL_DEFAULTS, AblationInterrupted, read_runs, run_ablate
from biaslab.cli import app
from biaslab.io import BiaslabError, to_jsonable

runner = CliRunner()
TINY = dict(epochs=2, seeds=2, max_train=60)


def test_library_run_structure_and_resume(tmp_path):
    res = run_ablate(models=["linear"], datasets=["iris"], out_dir=tmp_path, **TINY)
    d = res.to_dict()
    assert res.trained == 4 and res.resumed == 0
    v = d["variants"]
    assert set(v) == {"with-bias", "no-bias"}
    assert v["with-bias"]["params"] == 4 * 3 + 3 and v["no-bias"]["params"] == 4 * 3
    for side in v.values():
        assert len(side["test_acc"]) == 2 and side["mean"] == pytest.approx(np.mean(side["test_acc"]))
        assert side["std"] == pytest.approx(np.std(side["test_acc"], ddof=1))
        assert len(side["curves"]["test_acc"]) == 2 and len(side["curves"]["test_acc"][0]) == 2
        assert set(side["shift"]) == {"brightness", "contrast", "noise"}
    (c,) = d["comparisons"]
    assert (c["a"], c["b"]) == ("with-bias", "no-bias")
    assert c["verdict"] in ("bias helps", "no significant difference", "bias hurts")
    assert c["diff_mean"] == pytest.approx(np.mean(v["with-bias"]["test_acc"]) - np.mean(v["no-bias"]["test_acc"]))
    assert len(read_runs(tmp_path / "runs.jsonl")) == 4

    again = run_ablate(models=["linear"], datasets=["iris"], out_dir=tmp_path, **TINY)
    assert again.trained == 0 and again.resumed == 4
    assert to_jsonable(again.to_dict()["variants"]) == to_jsonable(d["variants"])  # rebuilt from runs.jsonl
    more = run_ablate(models=["linear"], datasets=["iris"], out_dir=tmp_path, epochs=2, seeds=3, max_train=60)
    assert more.trained == 2 and more.resumed == 4  # only the new seed trains
    longer = run_ablate(models=["linear"], datasets=["iris"], out_dir=tmp_path, epochs=3, seeds=2, max_train=60)
    assert longer.trained == 4  # other settings: a different configuration


def test_edited_data_file_is_not_resumed(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "t.npz", X=rng.normal(size=(40, 3)), y=np.arange(40) % 2)
    args = dict(models=["linear"], data_path=tmp_path / "t.npz", out_dir=tmp_path / "o", epochs=1, seeds=2)
    assert run_ablate(**args).trained == 4
    assert run_ablate(**args).trained == 0
    np.savez(tmp_path / "t.npz", X=rng.normal(size=(40, 3)), y=np.arange(40) % 2)  # same path, new data
    assert run_ablate(**args).trained == 4


def test_same_seed_is_deterministic(tmp_path):
    a = run_ablate(models=["mlp"], datasets=["wine"], out_dir=tmp_path / "a", **TINY)
    b = run_ablate(models=["mlp"], datasets=["wine"], out_dir=None, **TINY)  # as in the demo: nothing kept
    assert b.runs_file is None and b.to_dict()["runs_file"] is None and "reused" not in b.summary()
    assert to_jsonable(a.to_dict()["variants"]) == to_jsonable(b.to_dict()["variants"])


def test_interrupt_keeps_finished_batches_and_resume_skips_them(tmp_path, monkeypatch):
    real = biaslab.train.train_batched
    calls = []

    def interrupted_on_second(model, *args, **kwargs):
        calls.append(model)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(model, *args, **kwargs)

    monkeypatch.setattr(biaslab.train, "train_batched", interrupted_on_second)
    grid = dict(models=["linear", "mlp"], datasets=["iris"], out_dir=tmp_path, **TINY)
    with pytest.raises(AblationInterrupted, match="4 new runs were saved.*run the same command again"):
        run_ablate(**grid)
    assert len(read_runs(tmp_path / "runs.jsonl")) == 4
    monkeypatch.setattr(biaslab.train, "train_batched", real)
    res = run_ablate(**grid)
    assert res.trained == 4 and res.resumed == 4
    assert [(c.model, c.dataset) for c in res.configs] == [("linear", "iris"), ("mlp", "iris")]
    assert len(res.summary_table()) == 2


def test_torn_last_line_is_ignored_and_redone(tmp_path):
    run_ablate(models=["linear"], datasets=["iris"], out_dir=tmp_path, **TINY)
    path = tmp_path / "runs.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])  # a crash mid-write
    res = run_ablate(models=["linear"], datasets=["iris"], out_dir=tmp_path, **TINY)
    assert res.trained == 1 and res.resumed == 3
    assert len(read_runs(path)) == 4


def test_cnn_bn_note_and_four_variants(tmp_path):
    res = run_ablate(models=["cnn-bn"], datasets=["digits"], variants=["with-bias", "no-bias", "conv-no-bias",
                     "head-no-bias"], out_dir=tmp_path, epochs=1, seeds=2, max_train=40)
    d = res.to_dict()
    assert [(c["a"], c["b"]) for c in d["comparisons"]] == [
        ("with-bias", "no-bias"), ("with-bias", "conv-no-bias"), ("with-bias", "head-no-bias")]
    assert "BatchNorm" in res.summary() and "subtracts" in res.summary()
    assert d["variants"]["with-bias"]["params"] - d["variants"]["conv-no-bias"]["params"] == 16 + 32


@pytest.mark.parametrize("kwargs,match", [
    ({"models": ["resnet"]}, "unknown model 'resnet'"),
    ({"datasets": ["mnist"]}, "unknown dataset 'mnist'"),
    ({"variants": ["with-bias", "half"]}, "unknown variant 'half'"),
    ({"variants": ["with-bias"]}, "at least two variants"),
    ({"seeds": 1}, "at least 2 for paired statistics"),
    ({"models": ["cnn"], "datasets": ["wine"]}, "needs images"),
])
def test_bad_input_fails_before_training(tmp_path, kwargs, match):
    with pytest.raises(BiaslabError, match=match):
        run_ablate(out_dir=tmp_path, **{"epochs": 1, **kwargs})
    assert not (tmp_path / "runs.jsonl").exists()


# ---------------------------------------------------------------- command line


def test_cli_json_shape_files_and_resume(tmp_path):
    args = ["ablate", "--model", "linear", "--dataset", "iris", "--epochs", "2", "--seeds", "2",
            "--out", str(tmp_path), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    for name in ("with-bias", "no-bias"):
        side = d["variants"][name]
        assert isinstance(side["test_acc"], list) and len(side["test_acc"]) == 2
        assert isinstance(side["mean"], float) and isinstance(side["std"], float)
        assert isinstance(side["params"], int)
    (c,) = d["comparisons"]
    assert c["a"] == "with-bias" and c["b"] == "no-bias"
    assert isinstance(c["diff_mean"], float) and isinstance(c["p_value"], float)
    assert c["verdict"] in ("bias helps", "no significant difference", "bias hurts")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["schema"] == "biaslab.ablate/2" and saved["variants"] == d["variants"]
    for fig in ("ablate_accuracy", "ablate_curves", "ablate_shift"):
        assert (tmp_path / f"{fig}.png").stat().st_size > 10_000
    assert "data:image/png;base64" in (tmp_path / "report.html").read_text()
    again = runner.invoke(app, args[:-1])
    assert again.exit_code == 0 and "0 runs trained, 4 reused" in again.stdout


def test_cli_grid_with_npz_images(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 8, 8)).astype(np.float32)
    y = np.arange(48) % 2
    X[y == 1, 2:6, 2:6] += 2.0  # a learnable square
    np.savez(tmp_path / "sq.npz", X=X, y=y)
    res = runner.invoke(app, ["ablate", "--data", str(tmp_path / "sq.npz"), "--model", "cnn,linear",
                              "--epochs", "2", "--seeds", "2", "--input-offset", "1.5", "--out",
                              str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.stdout == ""
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(c["model"], c["dataset"]) for c in saved["configurations"]] == [("cnn", "sq.npz"), ("linear", "sq.npz")]
    assert len(saved["table"]) == 2
    assert saved["configurations"][0]["data"]["preprocessing"]["input_offset"] == 1.5


@pytest.mark.parametrize("args,match", [
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--variants", "with-bias,half"], "unknown variant 'half'"),
    (["--seeds", "1"], "--seeds must be at least 2"),
    (["--model", "cnn", "--dataset", "iris"], "needs images"),
    (["--data", "/nonexistent/x.npz"], "does not exist"),
    (["--epochs", "0"], "--epochs must be at least 1"),
])
def test_cli_errors(tmp_path, args, match):
    res = runner.invoke(app, ["ablate", "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biaslab: error:") and match in lines[0]
    assert "Traceback" not in res.output
    assert not (tmp_path / "results.json").exists()


def test_cli_labels_that_do_not_match_images(tmp_path):
    np.savez(tmp_path / "bad.npz", X=np.zeros((10, 8, 8)), y=np.arange(9) % 2)
    res = runner.invoke(app, ["ablate", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "labels do not match" in res.stderr
    assert not (tmp_path / "o" / "results.json").exists()


def test_cli_ctrl_c_says_how_to_resume(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(biaslab.train, "train_batched", interrupt)
    res = runner.invoke(app, ["ablate", "--model", "linear", "--dataset", "iris", "--out", str(tmp_path)])
    assert res.exit_code == 130
    assert "run the same command again to resume" in res.stderr
    assert not (tmp_path / "results.json").exists()


def test_help_states_the_per_model_defaults():
    res = runner.invoke(app, ["ablate", "--help"], terminal_width=200)
    text = " ".join(res.output.split())
    for name, d in MODEL_DEFAULTS.items():
        label = "cnn and cnn-bn" if name.startswith("cnn") else name
        assert f"{label} lr {d['lr']:g}, batch {d['batch_size']}, {d['epochs']} epochs ({d['quick_epochs']}" in text
