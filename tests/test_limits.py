"""Limits checked before allocation: headers, sizes, values. Each case is refused with one clear line."""

import gzip
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

from biaslab.data import formats
from biaslab.cli import app
from biaslab.data.datasets import load_data_path
from biaslab.data.formats import load_csv_columns, load_idx_dir, load_image_folder, load_npy, load_npz
from biaslab.data.images import load_image
from biaslab.infra.io import BiaslabError
from biaslab.experiments.regression.run import run_regression
from biaslab.infra.threads import set_threads
from biaslab.infra.validate import (
    bounded_int, check_allocation, check_seed, finite_number, readable_file,
)

runner = CliRunner()


def refused(res, match):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biaslab: error:") and match in lines[0], res.stderr


# --------------------------------------------------------------------------------------
# validate.py
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_finite_number_refuses_nan_and_inf(value):
    with pytest.raises(BiaslabError, match="--lr must be a finite number"):
        finite_number("--lr", value, 0.0, open_low=True)


def test_finite_number_bounds():
    assert finite_number("--lr", 0.5, 0.0, 1.0, open_low=True) == 0.5
    with pytest.raises(BiaslabError, match=r"must be in \(0, 1\]"):
        finite_number("--lr", 0.0, 0.0, 1.0, open_low=True)
    with pytest.raises(BiaslabError, match=r"must be in \[0, 1\]"):
        finite_number("--x", 1.5, 0.0, 1.0)
    assert finite_number("--x", 0.0, 0.0, 1.0) == 0.0


def test_bounded_int_and_the_seed_rule():
    assert bounded_int("--n", 5, 1, 5) == 5
    for bad in (0, 6, True, 2.0, "3"):
        with pytest.raises(BiaslabError, match="--n"):
            bounded_int("--n", bad, 1, 5)
    assert check_seed(0) == 0 and check_seed(2**32 - 1) == 2**32 - 1
    for bad in (-1, 2**32):
        with pytest.raises(BiaslabError, match="`seed` must be between 0 and 4294967295"):
            check_seed(bad)


def test_check_allocation():
    assert check_allocation("a", (10, 10), 8) == 800
    with pytest.raises(BiaslabError, match="would need"):
        check_allocation("a", (10**11, 1), 8)
    with pytest.raises(BiaslabError, match="negative"):
        check_allocation("a", (-1, 3), 8)


def test_readable_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    for path, match in [("/dev/null", "not a regular file"), (tmp_path, "not a regular file"),
                        (tmp_path / "missing", "does not exist"), (tmp_path / "empty", "is empty")]:
        with pytest.raises(BiaslabError, match=match):
            readable_file("--data", path)


def test_threads_bounds():
    import torch

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        for bad in (0, 10**6):
            with pytest.raises(BiaslabError, match="`threads` must be between 1 and"):
                set_threads(bad)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", [
    ["conv"], ["ablate"], ["audit", "linear"], ["denoise"], ["denoise", "apply", "--model", "m", "--image", "i"],
    ["demo"],
])
def test_every_torch_command_takes_threads(tmp_path, command):
    res = runner.invoke(app, [*command, "--threads", "0", "--out", str(tmp_path)])
    refused(res, "--threads must be between 1 and")


# --------------------------------------------------------------------------------------
# IDX: the header is checked against the limit and the file size before decompressing
# --------------------------------------------------------------------------------------

def idx_bytes(shape, dtype_code=0x08, data=b""):
    return bytes([0, 0, dtype_code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + data


def write_idx_pair(d, images, labels, gz=False):
    d.mkdir(exist_ok=True)
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    with opener(d / f"train-images-idx3-ubyte{suffix}", "wb") as fh:
        fh.write(images)
    with opener(d / f"train-labels-idx1-ubyte{suffix}", "wb") as fh:
        fh.write(labels)
    return d


@pytest.fixture
def gzip_reads(monkeypatch):
    """Sizes of every read from a gzip stream: proves what was (not) decompressed."""
    reads = []
    real_open = gzip.open

    def counting_open(*args, **kwargs):
        fh = real_open(*args, **kwargs)
        read = fh.read
        fh.read = lambda n=-1: reads.append(n) or read(n)
        return fh

    monkeypatch.setattr(gzip, "open", counting_open)
    return reads


def test_gzip_idx_claiming_gigabytes_is_refused_without_decompressing(tmp_path, gzip_reads):
    # A small gz whose header claims 70000 × 245 × 245 bytes (4.2 GB), like the sweep's 1.9 MB file.
    d = tmp_path / "bomb"
    write_idx_pair(d, idx_bytes((70000, 245, 245), data=b"\0" * 100_000), idx_bytes((70000,), data=b"\0" * 70000), gz=True)
    with pytest.raises(BiaslabError, match=r"would need 3.91 GiB \(shape \(70000, 245, 245\)\)"):
        load_idx_dir(d)
    assert gzip_reads and max(gzip_reads) <= 12  # magic and dims only: never a bulk read, never read(-1)


def test_gzip_idx_whose_size_disagrees_with_its_header_is_refused_before_reading(tmp_path, gzip_reads):
    d = write_idx_pair(tmp_path / "d", idx_bytes((1000, 28, 28), data=b"\0" * 100), idx_bytes((1000,), data=b"\0" * 1000),
                       gz=True)
    with pytest.raises(BiaslabError, match="its header says shape"):
        load_idx_dir(d)
    assert max(gzip_reads) <= 12


def test_gzip_idx_stream_is_never_read_past_its_header(tmp_path, monkeypatch):
    d = write_idx_pair(tmp_path / "d", idx_bytes((2, 2, 2), data=b"\1" * 5000), idx_bytes((2,), data=b"\0\1"), gz=True)
    monkeypatch.setattr(formats, "_gzip_size", lambda path: 4 + 12 + 8 if "images" in path.name else 4 + 4 + 2)
    with pytest.raises(BiaslabError, match="8 bytes of data.* but it holds 9 or more"):
        load_idx_dir(d)


def test_idx_with_zero_items_and_truncated_idx(tmp_path):
    d = write_idx_pair(tmp_path / "zero", idx_bytes((0, 28, 28)), idx_bytes((0,)))
    with pytest.raises(BiaslabError, match="zero items"):
        load_idx_dir(d)
    d = write_idx_pair(tmp_path / "trunc", idx_bytes((5, 2, 2), data=b"\0" * 7), idx_bytes((5,), data=b"\0" * 5))
    with pytest.raises(BiaslabError, match="truncated or corrupt"):
        load_idx_dir(d)


def test_nan_label_in_idx_is_refused(tmp_path):
    labels = np.array([0, 1, np.nan, 1], dtype=">f4").tobytes()
    d = write_idx_pair(tmp_path / "d", idx_bytes((4, 2, 2), data=bytes(16)), idx_bytes((4,), 0x0D, labels))
    with pytest.raises(BiaslabError, match="NaN"):
        load_idx_dir(d)


# --------------------------------------------------------------------------------------
# .npy / .npz: the header is read before the array
# --------------------------------------------------------------------------------------

def forged_npy(shape, dtype="<f8", body=b""):
    """An .npy file: a real header claiming ``shape``, followed by ``body`` (however short)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + body


def test_npy_header_claiming_1e11_rows_is_refused(tmp_path):
    p = tmp_path / "k.npy"
    p.write_bytes(forged_npy((10**11, 3)))
    with pytest.raises(BiaslabError, match=r"^kernel file .*k.npy would need"):
        load_npy(p, "kernel file")
    res = runner.invoke(app, ["conv", "--kernel-file", str(p), "--no-check-torch", "--out", str(tmp_path / "o")])
    refused(res, "would need")


def test_truncated_npy_is_refused(tmp_path):
    p = tmp_path / "k.npy"
    p.write_bytes(forged_npy((3, 3), body=b"\0" * 10))
    with pytest.raises(BiaslabError, match="truncated"):
        load_npy(p, "kernel file")


def test_npz_member_claiming_1e11_rows_is_refused(tmp_path):
    p = tmp_path / "d.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("X.npy", forged_npy((10**11, 4)))
        zf.writestr("y.npy", forged_npy((10,), "<i8", bytes(80)))
    with pytest.raises(BiaslabError, match="^array 'X' in .* would need"):
        load_npz(p)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", None], ids=["empty", "garbage", "truncated"])
def test_empty_truncated_or_corrupt_npz(tmp_path, content):
    p = tmp_path / "d.npz"
    if content is None:
        np.savez(p, X=np.zeros((20, 4)), y=np.arange(20) % 2)
        content = p.read_bytes()[: len(p.read_bytes()) // 2]
    p.write_bytes(content)
    with pytest.raises(BiaslabError):
        load_npz(p)
    res = runner.invoke(app, ["ablate", "--data", str(p), "--out", str(tmp_path / "o")])
    refused(res, str(p))


@pytest.mark.parametrize("path", ["/dev/null", "/proc/self"])
def test_data_that_is_not_a_data_file(path):
    with pytest.raises(BiaslabError):
        load_data_path(path)


def test_nan_label_in_npz_is_refused(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.zeros((6, 4)), y=np.array([0, 1, np.nan, 1, 0, 1]))
    with pytest.raises(BiaslabError, match="NaN"):
        load_data_path(p)


# --------------------------------------------------------------------------------------
# Images: the pixel count is checked from the header, before decoding
# --------------------------------------------------------------------------------------

def bomb_png(path, width=100_000, height=100_000):
    """A valid 1×1 PNG whose IHDR then claims width × height (a decompression bomb)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4: ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17: ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr: ihdr + 17])))
    path.write_bytes(bytes(data))
    return path


def image_folder(root, extra=None):
    from PIL import Image

    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            Image.new("L", (4, 4), color=i * 60).save(root / cls / f"{i}.png")
    if extra:
        extra(root / "a")
    return root


def test_image_bomb_is_refused_from_its_header(tmp_path):
    p = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(BiaslabError, match="its header claims more than 50,000,000 pixels"):
        load_image(p)
    res = runner.invoke(app, ["conv", "--image", str(p), "--no-check-torch", "--out", str(tmp_path / "o")])
    refused(res, "pixels")


def test_image_over_the_limit_but_under_pils_own_guard(tmp_path):
    p = bomb_png(tmp_path / "big.png", 8000, 7000)  # 56 MP: over our 50 MP, under PIL's 2 × 50 MP error
    with pytest.raises(BiaslabError, match="too large"):
        load_image(p)


def test_image_bomb_inside_an_image_folder(tmp_path):
    d = image_folder(tmp_path / "d", lambda c: bomb_png(c / "bomb.png"))
    with pytest.raises(BiaslabError, match="pixels"):
        load_image_folder(d)
    refused(runner.invoke(app, ["ablate", "--data", str(d), "--out", str(tmp_path / "o")]), "pixels")


def test_corrupt_file_inside_an_image_folder(tmp_path):
    d = image_folder(tmp_path / "d", lambda c: (c / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"))
    with pytest.raises(BiaslabError, match="broken.png"):
        load_image_folder(d)


def test_nan_float_tiff_is_refused(tmp_path):
    from PIL import Image

    arr = np.ones((8, 8), dtype=np.float32)
    arr[2, 3] = np.nan
    p = tmp_path / "nan.tif"
    Image.fromarray(arr, mode="F").save(p)
    with pytest.raises(BiaslabError, match="NaN or infinite"):
        load_image(p)


# --------------------------------------------------------------------------------------
# regression: CSV shape, extreme values, sizes, options that would be ignored
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, match", [
    ("a,a,b\n1,2,3\n2,3,4\n3,4,5\n", "names column(s) 'a' more than once"),
    ("a,b\n1,2\n", "1 data row(s); a fit needs at least 3"),
    ("a,b\n1,2\n2,3\n", "2 data row(s)"),
    ("a,b\n", "0 data row(s)"),
    ("a,b\n0,1\n0,2\n0,3\n", "input 'a' spans 0"),
    ("a,b\n1e308,1\n2,2\n3,3\n", "values up to 1e+150"),
    ("a,b\n1,1e300\n2,2\n3,3\n", "targets reach"),
    ("a,b\n1,1\n1.0000000000000002,2\n1,3\n", "too little to fit a slope"),
])
def test_csv_refusals(tmp_path, text, match):
    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(BiaslabError, match=match.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        run_regression(csv=p, x_columns=["a"], y_column="b")
    refused(runner.invoke(app, ["regression", "--csv", str(p), "--x", "a", "--y", "b", "--out", str(tmp_path / "o")]),
            "")
    assert not (tmp_path / "o" / "results.json").exists()


def test_csv_row_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "MAX_CSV_ROWS", 5)
    p = tmp_path / "d.csv"
    p.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(6)))
    with pytest.raises(BiaslabError, match="more than 5 data rows"):
        load_csv_columns(p, ["a"], "b")


@pytest.mark.parametrize("args, match", [
    (["--x-max", "1e-320"], "too little to fit a slope"),
    (["--x-min", "1e300", "--x-max", "2e300"], "--x-min must be in"),
    (["--n", str(10**11)], "--n must be between 3 and 1000000"),
    (["--n", "2"], "--n must be between 3"),
    (["--noise", "nan"], "--noise must be a finite number"),
    (["--slope", "inf"], "--slope must be a finite number"),
    (["--feature", "bmi"], "--feature chooses a column of --dataset"),
    (["--x", "a"], "--x and --y choose columns of --csv"),
    (["--y", "b"], "--x and --y choose columns of --csv"),
    (["--csv", "/dev/null", "--x", "a", "--y", "b"], "not a regular file"),
])
def test_regression_refusals(tmp_path, args, match):
    res = runner.invoke(app, ["regression", *args, "--out", str(tmp_path)])
    refused(res, match)
    assert not (tmp_path / "results.json").exists()


def test_threads_reach_torch_in_a_command(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        res = runner.invoke(app, ["audit", "linear", "--threads", "1", "-q", "--out", str(tmp_path)])
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_set_before_torch_loads_apply_when_it_does():
    import subprocess
    import sys

    code = ("import os; os.environ.pop('OMP_NUM_THREADS', None)\n"
            "from biaslab.infra.threads import set_threads; set_threads(1)\n"
            "import torch; print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
