"""Fuzz the CLI's bad-input contract: whatever the option values or file bytes, exit 0 or 2, never a traceback.

Exit 2 must come with exactly one line, ``biaslab: error: ...``. Options whose valid values
start long work are left out; file-taking options get random bytes and damaged valid files.
"""

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from biaslab.cli import app

pytestmark = pytest.mark.filterwarnings("error")  # a warning would be a second line on stderr
runner = CliRunner()
FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                database=None)
#: For cases whose valid draws do real work (a fit and its figure): fewer examples.
FUZZ_WORK = settings(FUZZ, max_examples=6)


def assert_contract(res):
    assert res.exit_code in (0, 2), (res.exit_code, res.output)
    assert "Traceback" not in res.output, res.output
    if res.exit_code == 2:
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("biaslab: error: "), res.stderr


def invoke(args):
    with tempfile.TemporaryDirectory() as tmp:
        res = runner.invoke(app, [*[a.replace("{tmp}", tmp) for a in args], "--quiet", "--out", f"{tmp}/out"])
        assert_contract(res)


def with_file(data: bytes, suffix: str, args):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        res = runner.invoke(app, [*[a.replace("{file}", str(path)) for a in args], "--quiet", "--out", f"{tmp}/out"])
        assert_contract(res)


# --------------------------------------------------------------------------------------
# Option values
# --------------------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e-320", "1e308", "-0.0", "1e150", "2e150", "nan", "inf", "", "x", "1,2"]),
)
counts = st.one_of(st.integers(-10, 200), st.integers(1_000_001, 10**13), st.sampled_from(["1e11", "", "2.5"]))
seeds = st.one_of(st.integers(-(2**40), 2**40), st.just(str(2**32)))


@FUZZ
@given(n=counts.map(str), slope=numbers, intercept=numbers, noise=numbers, x_min=numbers, x_max=numbers,
       test_fraction=st.one_of(st.none(), numbers), seed=seeds.map(str))
def test_regression_options(n, slope, intercept, noise, x_min, x_max, test_fraction, seed):
    args = ["regression", "--n", n, "--slope", slope, "--intercept", intercept, "--noise", noise,
            "--x-min", x_min, "--x-max", x_max, "--seed", seed]
    invoke(args + (["--test-fraction", test_fraction] if test_fraction is not None else []))


@FUZZ_WORK
@given(dataset=st.sampled_from([None, "diabetes", "nope", ""]), feature=st.sampled_from([None, "bmi", "all", "zz"]),
       x=st.sampled_from([None, "a", ""]), y=st.sampled_from([None, "b"]))
def test_regression_option_combinations(dataset, feature, x, y):
    args = ["regression"]
    for flag, value in (("--dataset", dataset), ("--feature", feature), ("--x", x), ("--y", y)):
        if value is not None:
            args += [flag, value]
    invoke(args)


@FUZZ_WORK
@given(command=st.sampled_from([["relu"], ["conv", "--no-check-torch"], ["audit", "linear"], ["demo"]]),
       seed=seeds.map(str), fmt=st.sampled_from(["png", "svg", "gif", ""]))
def test_common_options_of_every_command(command, seed, fmt):
    if command == ["demo"] and fmt in ("png", "svg"):
        fmt = "gif"  # keep the demo's work out of a fuzz test: only its refusals are exercised
    invoke([*command, "--seed", seed, "--format", fmt])


# --------------------------------------------------------------------------------------
# File bytes: random, and valid files damaged
# --------------------------------------------------------------------------------------

def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.arange(64, dtype=np.uint8).reshape(8, 8) * 3)).save(buf, format="PNG")
    return buf.getvalue()


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((12, 4)), y=np.arange(12) % 2)
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ones((3, 3)))
    return buf.getvalue()


VALID = {".png": _png(), ".npz": _npz(), ".npy": _npy(), ".csv": b"a,b\n1,2\n2,3.5\n3,5\n4,7\n",
         ".txt": b"0 1 0\n1 -4 1\n0 1 0\n", ".pt": b""}


@st.composite
def file_bytes(draw, suffix):
    """Random bytes, or the valid file truncated, or with a few bytes overwritten."""
    valid = VALID[suffix]
    kind = draw(st.sampled_from(["random", "truncated", "flipped"] if valid else ["random"]))
    if kind == "random":
        return draw(st.binary(max_size=600))
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


FILE_OPTIONS = [
    (".png", ["conv", "--no-check-torch", "--image", "{file}"]),
    (".npy", ["conv", "--no-check-torch", "--kernel-file", "{file}"]),
    (".txt", ["conv", "--no-check-torch", "--kernel-file", "{file}"]),
    (".csv", ["regression", "--csv", "{file}", "--x", "a", "--y", "b"]),
    (".npz", ["ablate", "--data", "{file}", "--model", "linear", "--seeds", "2", "--epochs", "1"]),
    (".pt", ["audit", "{file}", "--arch", "linear"]),
    (".pt", ["denoise", "apply", "--model", "{file}", "--image", "{file}"]),
    (".png", ["denoise", "apply", "--model", "{file}", "--image", "{file}"]),
]


@pytest.mark.parametrize("suffix, args", FILE_OPTIONS, ids=lambda v: v if isinstance(v, str) else " ".join(v[:3]))
def test_file_bytes(suffix, args):
    @(FUZZ_WORK if suffix in (".png", ".txt", ".npz", ".npy") else FUZZ)
    @given(data=file_bytes(suffix))
    def check(data):
        with_file(data, suffix, args)

    check()
