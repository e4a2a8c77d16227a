import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from biaslab.cli import app

runner = CliRunner()


@pytest.fixture
def picture(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (18, 22, 3)).astype(np.uint8)
    path = tmp_path / "tiny.png"
    Image.fromarray(rgb).save(path)
    return path


def test_conv_end_to_end(tmp_path, picture):
    out = tmp_path / "out"
    result = runner.invoke(app, ["conv", "--image", str(picture), "--kernel", "sobel-x", "--kernel", "gaussian",
                                 "--bias", "-0.5", "--bias", "0,0.5", "--explain", "3,4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "biaslab.conv/2" and data["command"] == "conv"
    assert [k["name"] for k in data["kernels"]] == ["sobel-x", "gaussian"]
    assert data["biases"] == [-0.5, 0.0, 0.5]
    for k in data["kernels"]:
        assert [set(s) >= {"fraction_active", "mean_activation", "max_activation"} for s in k["biases"]] == [True] * 3
    for k in data["explain"]["kernels"]:
        for b in k["biases"]:
            assert b["output"] == pytest.approx(b["feature_map"], abs=1e-12)
    assert data["check"]["max_abs_diff"] < 1e-12
    names = sorted(p.name for p in out.iterdir())
    assert names == ["conv_activity.png", "conv_explain.png", "conv_maps_1_sobel-x.png", "conv_maps_2_gaussian.png",
                     "report.html", "report.md", "results.json"]
    assert "Output (3, 4) = relu(Σ(input * kernel) + b)" in result.stdout  # the explain table is printed
    assert "Σ(input * kernel) =" in result.stdout


def test_conv_json_color_kernel_file_and_svg(tmp_path, picture):
    np.save(tmp_path / "k.npy", np.ones((2, 3, 2, 2)) / 12)
    out = tmp_path / "out"
    result = runner.invoke(app, ["conv", "--image", str(picture), "--color", "--kernel-file", str(tmp_path / "k.npy"),
                                 "--random", "1", "--activation", "tanh", "--padding", "valid",
                                 "--no-check-torch", "--format", "svg", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["image"] == {"source": str(picture), "channels": 3, "height": 18, "width": 22,
                          "original_height": 18, "original_width": 22}
    assert [k["name"] for k in d["kernels"]] == ["k-1", "k-2", "random-1"]
    assert d["output_shape"] == [17, 21] and d["activation"] == "tanh"
    assert d["check"] is None and d["explain"] is None
    assert set(d["sweep"]) == {"bias", "kernels"}
    assert len(d["sweep"]["bias"]) == len(d["sweep"]["kernels"]["k-1"]["fraction_active"])
    assert (out / "conv_activity.svg").is_file() and not (out / "conv_explain.svg").exists()


def test_conv_builtin_is_deterministic(tmp_path):
    args = ["conv", "--builtin", "coins", "--max-size", "48", "--random", "1", "--no-check-torch", "--quiet",
            "--seed", "5"]
    for name in ("a", "b"):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0 and result.stdout == ""
    a, b = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("a", "b"))
    assert a == b and a["image"]["width"] == 48 and a["image"]["original_width"] == 384


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` × ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + \
        chunk(b"IEND", b"")


def test_report_rebuilds_the_figures_from_results_alone(tmp_path, picture):
    out = tmp_path / "out"
    assert runner.invoke(app, ["conv", "--image", str(picture), "--kernel", "sobel-x", "--explain", "0,0", "-q",
                               "--no-check-torch", "--out", str(out)]).exit_code == 0
    before = sorted(p.name for p in out.glob("*.png"))
    for png in out.glob("*.png"):
        png.unlink()
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == before
    page = (out / "report.html").read_text()
    assert "id='conv'" in page and "id='conv-explain'" in page
    assert "exactly where Σ(input * kernel) &gt; −b" in page


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "{tmp}/garbage.png"], "cannot read image"),
        (["--image", "{tmp}/missing.png"], "does not exist"),
        (["--kernel-file", "{tmp}/wrong.npy"], "has shape (2, 2, 3, 3) but the image has 1 channel"),
        (["--explain", "100,0"], "position (100, 0) is outside the 18×22 output"),
        (["--explain", "1"], "--explain needs ROW,COL"),
        (["--explain", "a,b"], "--explain must be a comma-separated list"),
        (["--bias", "x"], "--bias must be a comma-separated list"),
        (["--kernel", "blur"], "unknown kernel 'blur'"),
        (["--builtin", "camera"], "either --builtin or --image"),
        (["--stride", "2"], "padding='same' is not supported for strided"),
        (["--padding", "full"], "'same' or 'valid'"),
        (["--activation", "swish"], "unknown activation"),
        (["--padding", "-1"], "--padding must be"),
        (["--padding", "100000"], "between 0 and 64"),
        (["--kernel-size", "600", "--random", "1"], "--kernel-size must be between 1 and 31"),
        (["--random", "10000000000"], "--random must be between 0 and 16"),
        (["--bias", ",".join(["0.1"] * 300)], "at most 12"),
        (["--bias", "1e308"], "--bias must be in [−1e6, 1e6]"),
        (["--bias", "nan"], "finite"),
        (["--max-size", "100000"], "--max-size must be ≥ 1 and ≤ 2048"),
        (["--stride", "0", "--padding", "valid"], "--stride must be between 1 and 64"),
        (["--image", "{tmp}/nan.tif"], "NaN or infinite"),
        (["--image", "{tmp}/bomb.png"], "more than 50,000,000 pixels"),
        (["--kernel-file", "{tmp}/huge.npy"], "the limit is 2 GiB"),
    ],
)
def test_conv_errors_exit_2_with_one_line(tmp_path, picture, args, message):
    (tmp_path / "garbage.png").write_bytes(b"not an image at all")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 2, 3, 3)))
    nan = np.ones((6, 7), np.float32)
    nan[2, 3] = np.nan
    Image.fromarray(nan).save(tmp_path / "nan.tif")
    (tmp_path / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    with open(tmp_path / "huge.npy", "wb") as f:  # a header that claims 10¹¹ kernels, and no data
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 3, 3)})
    args = [a.format(tmp=tmp_path) for a in args]
    if "--image" not in args:
        args = ["--image", str(picture), *args]
    out = tmp_path / "out"
    result = runner.invoke(app, ["conv", *args, "--no-check-torch", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (out / "results.json").exists()
