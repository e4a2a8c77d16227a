"""`biaslab denoise` and `biaslab denoise apply` end to end on tiny settings."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biaslab.cli import app
from biaslab.denoise import EVAL_SIGMAS

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
    res = run("denoise", *TINY, "--json", "--seed", "3", "--out", out)
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    ramp = np.add.outer(np.arange(36), np.arange(44)) * 3
    Image.fromarray(ramp.astype(np.uint8)).save(path)
    return path


def test_denoise_json_shape_and_files(trained):
    out, d = trained
    assert d["sigmas"] == [float(s) for s in EVAL_SIGMAS]
    assert set(d["psnr"]) == {"with_bias", "bias_free", "noisy"}
    assert all(len(v) == len(EVAL_SIGMAS) and all(isinstance(x, float) for x in v) for v in d["psnr"].values())
    assert set(d["equivariance_error"]) == {"with_bias", "bias_free"}
    assert d["equivariance_error"]["bias_free"] < 1e-5 < d["equivariance_error"]["with_bias"]
    assert d["train_sigma_max"] == 15.0
    assert d["settings"]["depth"] == 3 and d["settings"]["steps"] == 3 and d["settings"]["seed"] == 3
    assert d["test_images"] and not set(d["test_images"]) & set(d["train_images"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["schema"] == "biaslab.denoise/2" and saved["psnr"] == d["psnr"]
    for name in ("denoise_psnr", "denoise_examples", "denoise_jacobian", "denoise_equivariance"):
        assert (out / f"{name}.png").stat().st_size > 5_000, name
    assert "held-out" in (out / "report.md").read_text().lower()
    for k in ("with_bias", "bias_free"):
        assert (out / f"denoiser_{k}.pt").is_file()
        assert json.loads((out / f"denoiser_{k}.json").read_text())["bias"] is (k == "with_bias")
        assert d["weights"][k].endswith(f"denoiser_{k}.pt")


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
    assert d["settings"]["eval_crop"] == 32 and len(d["psnr"]["bias_free"]) == len(EVAL_SIGMAS)


def test_denoise_apply_writes_pngs_and_psnr(trained, image, tmp_path):
    out, _ = trained
    res = run("denoise", "apply", "--model", out / "denoiser_bias_free.pt", "--image", image,
              "--sigma", "30", "--json", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["sigma"] == 30.0 and d["architecture"]["bias"] is False and d["shape"] == [36, 44]
    assert isinstance(d["psnr"]["noisy"], float) and isinstance(d["psnr"]["denoised"], float)
    from PIL import Image

    for name in ("noisy", "denoised"):
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.size == (44, 36)
    assert (tmp_path / "denoise_apply.png").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["schema"] == "biaslab.denoise-apply/2"


def test_help_shows_both_commands():
    res = run("denoise", "--help")
    assert res.exit_code == 0 and "--sigma-max" in res.output and "apply" in res.output
    res = run("denoise", "apply", "--help")
    assert res.exit_code == 0 and "--model" in res.output and "--sigma" in res.output


def test_negative_sigma_max_is_refused(tmp_path):
    res = run("denoise", *TINY, "--sigma-max", "-1", "--out", tmp_path)
    assert_one_line_error(res, "--sigma-max")
    assert not (tmp_path / "results.json").exists()


def test_apply_refuses_negative_sigma(trained, image, tmp_path):
    out, _ = trained
    res = run("denoise", "apply", "--model", out / "denoiser_bias_free.pt", "--image", image,
              "--sigma", "-3", "--out", tmp_path)
    assert_one_line_error(res, "--sigma")
    assert not (tmp_path / "results.json").exists()


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
    res = run("denoise", "apply", "--model", other, "--image", image, "--out", tmp_path / "o")
    assert_one_line_error(res, "not a biaslab DnCNN")
    # right keys, wrong shapes: the weights say width 4, the architecture file says 8
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes((out / "denoiser_bias_free.pt").read_bytes())
    (tmp_path / "wrong.json").write_text(
        json.dumps({"model": "DnCNN", "depth": 3, "width": 8, "channels": 1, "bias": False}))
    res = run("denoise", "apply", "--model", wrong, "--image", image, "--out", tmp_path / "o")
    assert_one_line_error(res, "does not match a DnCNN with depth=3, width=8")
