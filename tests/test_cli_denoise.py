"""`biaslab denoise` and `biaslab denoise apply` end to end on tiny settings."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.experiments.denoise import EVAL_SIGMAS

runner = CliRunner()
TINY = ["--depth", "3", "--width", "4", "--steps", "3", "--batch-size", "4", "--patch-size", "16",
        "--eval-crop", "32", "--sigma-max", "15", "--quiet"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(res, *words):
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biaslab: error:"), res.stderr
    assert "Traceback" not in res.output
    for w in words:
        assert w in lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("denoise")
    res = run("denoise", *TINY, "--json", "--seed", "3", "--threads", "1", "--out", out)
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    ramp = np.add.outer(np.arange(36), np.arange(44)) * 3
    Image.fromarray(ramp.astype(np.uint8)).save(path)
    return path


def test_denoise_json_shape_claims_and_files(trained):
    out, d = trained
    assert d["sigmas"] == [float(s) for s in EVAL_SIGMAS]
    assert set(d["psnr"]) == {"with_bias", "bias_free", "noisy"}
    assert all(len(v) == len(EVAL_SIGMAS) and all(isinstance(x, float) for x in v) for v in d["psnr"].values())
    assert d["gain_db"] == pytest.approx([b - w for b, w in zip(d["psnr"]["bias_free"], d["psnr"]["with_bias"])])
    assert d["equivariance_error"]["bias_free"] < 1e-5 < d["equivariance_error"]["with_bias"]
    assert d["train_sigma_max"] == 15.0
    assert d["params"]["depth"] == 3 and d["params"]["steps"] == 3 and d["params"]["seed"] == 3
    assert d["test_images"] and not set(d["test_images"]) & set(d["train_images"])
    claims = {c["id"]: c for c in d["claims"]}
    assert {"bias_free_generalises", "tie_in_training_range", "bias_free_equivariant"} <= set(claims)
    gen = claims["bias_free_generalises"]
    assert gen["evidence"]["sigma"] == 100 and gen["evidence"]["gain_db"] == pytest.approx(d["gain_db"][-1])
    assert claims["bias_free_equivariant"]["evidence"]["with_bias_max_relative_error"] == \
        d["equivariance_error"]["with_bias"]
    for f in d["filters"]:  # Jacobian rows and their numbers, per σ
        assert len(f["row_sum"]) == len(f["effective_width"]) == len(f["pixels"]) == 3
    saved = json.loads((out / "results.json").read_text())
    assert saved == d and saved["schema"] == "biaslab.denoise/2"
    for name in ("denoise_psnr", "denoise_examples", "denoise_jacobian", "denoise_equivariance"):
        assert (out / f"{name}.png").stat().st_size > 5_000, name
    assert "held-out" in (out / "report.md").read_text().lower()
    for k in ("with_bias", "bias_free"):
        assert json.loads((out / f"denoiser_{k}.json").read_text())["bias"] is (k == "with_bias")
        assert d["weights"][k].endswith(f"denoiser_{k}.pt")


def test_a_tiny_run_does_not_claim_that_bias_free_generalises(trained):
    out, d = trained
    gen = next(c for c in d["claims"] if c["id"] == "bias_free_generalises")
    assert gen["holds"] is False and gen["text"].startswith("Bias-free is not")
    report = (out / "report.md").read_text()
    headings = [line for line in report.splitlines() if line.startswith("#")]
    assert not any("generalise" in h.lower() for h in headings)
    assert gen["text"] in report
    assert "weighted average" not in report and "spreading" not in report


def test_report_rebuilds_from_results_json_without_torch(trained, tmp_path):
    out, _ = trained
    code = ("import sys, builtins; real = builtins.__import__\n"
            "def guard(name, *a, **k):\n"
            "    if name == 'torch' or name.startswith('torch.'): raise ImportError('torch imported')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = guard\n"
            "from biaslab.cli import app\n"
            f"app([ 'report', {str(out)!r}, '--out', {str(tmp_path)!r}, '--quiet'])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "denoise_jacobian.png").is_file() and (tmp_path / "report.html").is_file()


def test_denoise_on_a_folder_of_user_images(tmp_path):
    from PIL import Image

    folder = tmp_path / "pics"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray((rng.random((40, 48)) * 255).astype(np.uint8)).save(folder / name)
    res = run("denoise", *TINY, "--images", folder, "--json", "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["train_images"] == ["a.png", "b.png"] and d["test_images"] == ["c.png"]
    assert d["params"]["eval_crop"] == 32 and len(d["psnr"]["bias_free"]) == len(EVAL_SIGMAS)


def test_out_that_is_a_file_fails_before_training(tmp_path, monkeypatch):
    import biaslab.experiments.denoise

    def must_not_run(**kwargs):
        raise AssertionError("training started although --out cannot be written")

    monkeypatch.setattr(biaslab.experiments.denoise, "run_denoise", must_not_run)
    target = tmp_path / "file"
    target.write_text("x")
    assert_one_line_error(run("denoise", *TINY, "--out", target), "--out", "is a file")
    assert target.read_text() == "x"


@pytest.mark.parametrize("args, words", [
    (["--sigma-max", "-1"], ["--sigma-max"]),
    (["--sigma-max", "1e30"], ["--sigma-max", "255"]),
    (["--lr", "inf"], ["--lr"]),
    (["--width", "100000"], ["--width"]),
    (["--threads", "0"], ["--threads"]),
])
def test_bad_settings_are_refused_before_training(tmp_path, args, words):
    res = run("denoise", *TINY, *args, "--out", tmp_path)
    assert_one_line_error(res, *words)
    assert "--lr" not in res.stderr or "--lr" in words  # --sigma-max 1e30 used to blame --lr
    assert not (tmp_path / "results.json").exists()


def test_denoise_apply_writes_pngs_and_psnr(trained, image, tmp_path):
    out, _ = trained
    res = run("denoise", "apply", "--model", out / "denoiser_bias_free.pt", "--image", image,
              "--sigma", "30", "--json", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["sigma"] == 30.0 and d["shape"] == [36, 44] and d["colour"] == "grey" and d["tiles"] == 1
    [o] = d["outputs"]
    assert o["architecture"]["bias"] is False and isinstance(o["psnr"], float) and isinstance(d["psnr_noisy"], float)
    from PIL import Image

    for name in ("noisy", "denoised"):
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.size == (44, 36)
    assert (tmp_path / "denoise_apply.png").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["schema"] == "biaslab.denoise-apply/2"


def test_denoise_apply_compare_and_colour(trained, tmp_path):
    from PIL import Image

    out, _ = trained
    rgb = tmp_path / "rgb.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(rgb)
    res = run("denoise", "apply", "--model", out / "denoiser_with_bias.pt", "--image", rgb, "--compare",
              "--tile", "30", "--threads", "1", "--json", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["colour"] == "per-channel" and d["shape"] == [40, 50, 3] and d["tiles"] == 3 * 4  # overlap 2·3 + 16
    assert [o["architecture"]["bias"] for o in d["outputs"]] == [True, False]
    assert [c["id"] for c in d["claims"]] == ["bias_free_ahead_on_image"]
    for name in ("denoised_with_bias", "denoised_bias_free"):
        with Image.open(tmp_path / "o" / f"{name}.png") as im:
            assert im.size == (50, 40) and im.mode == "RGB"


def test_help_shows_both_commands():
    res = run("denoise", "--help")
    assert res.exit_code == 0 and "--sigma-max" in res.output and "apply" in res.output and "--threads" in res.output
    res = run("denoise", "apply", "--help")
    assert res.exit_code == 0 and all(o in res.output for o in ("--model", "--sigma", "--compare", "--tile"))


def test_apply_refuses_bad_sigma_and_tile(trained, image, tmp_path):
    out, _ = trained
    for args, word in [(["--sigma", "-3"], "--sigma"), (["--sigma", "1e30"], "--sigma"), (["--tile", "4"], "--tile")]:
        res = run("denoise", "apply", "--model", out / "denoiser_bias_free.pt", "--image", image, *args,
                  "--out", tmp_path)
        assert_one_line_error(res, word)
    assert not (tmp_path / "results.json").exists()


def test_apply_refuses_nan_weights_and_a_lying_sidecar(trained, image, tmp_path):
    out, _ = trained
    state = torch.load(out / "denoiser_bias_free.pt", weights_only=True)
    state["body.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    assert_one_line_error(run("denoise", "apply", "--model", tmp_path / "nan.pt", "--image", image,
                              "--out", tmp_path / "o"), "NaN")
    huge = tmp_path / "huge.pt"
    huge.write_bytes((out / "denoiser_bias_free.pt").read_bytes())
    (tmp_path / "huge.json").write_text('{"depth": 3, "width": 8000, "channels": 1, "bias": false}')
    assert_one_line_error(run("denoise", "apply", "--model", huge, "--image", image, "--out", tmp_path / "o"),
                          "width must be between")
    assert not (tmp_path / "o" / "results.json").exists()


def test_apply_refuses_unreadable_image(trained, tmp_path):
    out, _ = trained
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    res = run("denoise", "apply", "--model", out / "denoiser_with_bias.pt", "--image", bad, "--out", tmp_path / "o")
    assert_one_line_error(res, "broken.png")
    res = run("denoise", "apply", "--model", out / "denoiser_with_bias.pt", "--image", tmp_path / "missing.png",
              "--out", tmp_path / "o")
    assert_one_line_error(res, "does not exist")
    assert not (tmp_path / "o" / "results.json").exists()


def test_apply_refuses_untrusted_pickle_without_running_it(image, tmp_path):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"body.0.weight": Payload()}))
    res = run("denoise", "apply", "--model", evil, "--image", image, "--out", tmp_path / "o")
    assert_one_line_error(res, "refusing to load")
    assert not marker.exists()
    assert not (tmp_path / "o" / "results.json").exists()


def test_apply_refuses_a_state_dict_of_another_architecture(trained, image, tmp_path):
    out, _ = trained
    other = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.bias": torch.zeros(10)}, other)
    assert_one_line_error(run("denoise", "apply", "--model", other, "--image", image, "--out", tmp_path / "o"),
                          "not a biaslab DnCNN")
    # right keys, wrong shapes: the weights say width 4, the architecture file says 8
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes((out / "denoiser_bias_free.pt").read_bytes())
    (tmp_path / "wrong.json").write_text(
        json.dumps({"model": "DnCNN", "depth": 3, "width": 8, "channels": 1, "bias": False}))
    assert_one_line_error(run("denoise", "apply", "--model", wrong, "--image", image, "--out", tmp_path / "o"),
                          "does not match a DnCNN with depth=3, width=8")
