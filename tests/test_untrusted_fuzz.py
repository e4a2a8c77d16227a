"""Fuzzing results.json (issue 22): mutate real files of every command and read them back.

Every mutation (types, sizes, nesting, strings, arrays, deleted and added keys) must end in
one of two ways: one :class:`BiaslabError` line (the CLI's exit 2), or a result that renders
(its report text here; its figures in the slow test, through the CLI, in place, with a
snapshot proving nothing outside the folder changed). Memory stays bounded: a results.json
under 10 MB costs at most 512 MiB, measured in a child process, bombs included.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biaslab.infra.io import BiaslabError
from biaslab.results import Result, load_results

FIXTURES = Path(__file__).parent / "data" / "results"
COMMANDS = ["regression", "relu", "conv", "ablate", "audit", "denoise", "denoise-apply", "demo"]
MAX_RSS_MIB = 512


def _sample(command: str) -> dict:
    return json.loads((FIXTURES / command / "results.json").read_text())


def _paths(value, prefix=()):
    """Every path into a JSON tree (array records count as one leaf, plus their own keys)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "data" and isinstance(v, list) and len(v) > 8:
                yield (*prefix, k)
                continue
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:6]):
            yield from _paths(v, (*prefix, i))


def _deep(n: int):
    out: list = []
    for _ in range(n):
        out = [out]
    return out


SCALARS = [None, True, False, 0, -1, 1, 2**31, 2**63, -(2**70), 10**30, 0.5, -1e-300, 1e308, -1e308,
           float("nan"), float("inf"), "", "yes", "x" * 300, "../../outside", "<script>alert(1)</script>",
           "\u202e\x00\n\r", "$\\frac{$", "$x^$", [], [1], [None], ["a", 1], {}, {"a": 1}, {"__ndarray__": "float64", "shape": [1],
                                                                       "data": [1.0]}]
DTYPES = ["bool", "int8", "uint64", "float16", "float64", "object", "<U5", "datetime64[ns]", "V8", "complex128",
          "float128", ">f8", "", 7, None]


def _set(tree, path, value):
    if not path:
        return value
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return tree


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


@st.composite
def mutated(draw, command: str):
    """A sample of ``command`` with one to three mutations."""
    data = _sample(command)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths))
        try:
            node = _get(data, path)
        except (KeyError, IndexError, TypeError):
            continue
        kinds = ["replace", "delete", "add", "deep"]
        if isinstance(node, list):
            kinds += ["truncate", "empty", "grow", "grow_big", "reverse"]
        if isinstance(node, dict) and "__ndarray__" in node:
            kinds += ["dtype", "shape", "payload"] * 3
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            kinds += ["scale", "scale"]
        kind = draw(st.sampled_from(kinds))
        if kind == "replace":
            data = _set(data, path, copy.deepcopy(draw(st.sampled_from(SCALARS))))
        elif kind == "delete" and path:
            parent = _get(data, path[:-1])
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, list):
                parent.pop(path[-1])
        elif kind == "add" and isinstance(node, dict):
            node[draw(st.sampled_from(["extra", "__ndarray__", "shape", "zlib", "data", "", "verdict"]))] = \
                copy.deepcopy(draw(st.sampled_from(SCALARS)))
        elif kind == "deep":
            data = _set(data, path, _deep(draw(st.sampled_from([20, 900]))))
        elif kind == "truncate":
            del node[len(node) // 2:]
        elif kind == "empty":
            node.clear()
        elif kind == "grow" and node:
            node.extend(copy.deepcopy(node[:1]) * draw(st.integers(1, 3)))
        elif kind == "grow_big" and node:
            node.extend([copy.deepcopy(node[0])] * 2_000)
        elif kind == "reverse":
            node.reverse()
        elif kind == "dtype":
            node["__ndarray__"] = draw(st.sampled_from(DTYPES))
        elif kind == "shape":
            shape = node.get("shape")
            choice = draw(st.sampled_from(["negative", "plus", "extra", "none", "swap", "huge", "float"]))
            if isinstance(shape, list) and shape:
                new = {"negative": [-s for s in shape], "plus": [shape[0] + 1, *shape[1:]],
                       "extra": [*shape, 1], "none": [], "swap": shape[::-1], "huge": [2**31] * len(shape),
                       "float": [float(s) for s in shape]}[choice]
                node["shape"] = new
        elif kind == "payload":
            choice = draw(st.sampled_from(["drop", "both", "truncate", "corrupt", "bomb", "strings", "nulls"]))
            if choice == "drop":
                node.pop("data", None)
                node.pop("zlib", None)
            elif choice == "both":
                node["data"], node["zlib"] = [0], "eJwDAAAAAAE="
            elif "zlib" in node and choice in ("truncate", "corrupt", "bomb"):
                raw = base64.b64decode(node["zlib"])
                nbytes = math.prod(node["shape"]) * 8
                raw = {"truncate": raw[: len(raw) // 2], "corrupt": raw[:2] + bytes(len(raw) - 2),
                       "bomb": zlib.compress(bytes(max(nbytes, 1) * 4 + 64))}[choice]
                node["zlib"] = base64.b64encode(raw).decode()
            elif isinstance(node.get("data"), list) and node["data"]:
                node["data"][0] = "1" if choice == "strings" else None
        elif kind == "scale":
            data = _set(data, path, node * draw(st.sampled_from([-1, 0, 1e300, 1e-300])))
    return data


def _check(data, folder: Path) -> Result | None:
    """Write ``data`` as a run and read it back: one BiaslabError line, or a result whose report text renders."""
    from biaslab.outputs import section_dir
    from biaslab.render import render_sections
    from biaslab.render.report import render_html, render_markdown

    (folder / "results.json").write_text(json.dumps(data))
    try:
        result = load_results(folder)
        if result.command == "demo":
            for name in result.sections:
                part = load_results(section_dir(folder, name))
                if part.command != name:
                    raise BiaslabError("a section of another command")
            return result
    except BiaslabError as exc:
        message = str(exc)
        assert "\n" not in message and 10 < len(message) < 2000, message
        return None
    sections = render_sections(result, [])
    render_markdown("t", sections, folder)
    render_html("t", sections)
    if result.command in ("ablate", "denoise"):  # what `explore --from` reads
        from biaslab.explore.runs import run_panel

        json.dumps(run_panel(folder), allow_nan=False)
    return result


def _demo_folder(folder: Path) -> None:
    for name in ("regression", "relu", "conv", "ablate", "audit", "denoise"):
        dst = folder / name
        dst.mkdir()
        (dst / "results.json").write_bytes((FIXTURES / name / "results.json").read_bytes())


@pytest.mark.parametrize("command", COMMANDS)
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_mutated_results_are_one_line_or_a_correct_report(command, data):
    mutation = data.draw(mutated(command))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        folder.mkdir()
        if command == "demo":
            _demo_folder(folder)
        _check(mutation, folder)


@pytest.mark.parametrize("command", COMMANDS)
def test_the_unmutated_samples_render(command, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    if command == "demo":
        _demo_folder(folder)
    assert _check(_sample(command), folder) is not None


# --------------------------------------------------------------------------------------------
# Through the CLI, figures included: slow


def _snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_report_on_mutated_results_through_the_cli(command, data):
    from biaslab.cli import main

    mutation = data.draw(mutated(command))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sibling").mkdir()
        (root / "sibling" / "results.json").write_text(json.dumps(_sample("relu")))
        folder = root / "run"
        folder.mkdir()
        if command == "demo":
            _demo_folder(folder)
        (folder / "results.json").write_text(json.dumps(mutation))
        before = _snapshot(root / "sibling")
        code = main(["report", "-q", str(folder)])
        assert code in (0, 2)
        assert _snapshot(root / "sibling") == before
        if code == 0:
            assert (folder / "report.html").is_file() and (folder / "report.md").is_file()


# --------------------------------------------------------------------------------------------
# Memory and time stay bounded


# VmHWM (this process's peak resident memory), not ru_maxrss, which keeps the parent's peak across exec.
PEAK = """
import json, re, sys, time
from biaslab.infra.io import BiaslabError
from biaslab.results import load_results
t = time.perf_counter()
try:
    load_results(sys.argv[1])
    outcome = "loaded"
except BiaslabError as exc:
    outcome = str(exc)
status = open("/proc/self/status").read()
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - t,
                  "peak_mib": int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024}))
"""


def _peak(folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", PEAK, str(folder)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def zeros_bomb(gib: float) -> bytes:
    """A zlib stream that inflates to ``gib`` GiB of zeros, built in a fraction of a second: after a
    full flush, every 16 MiB block of zeros compresses to the same bytes."""
    c = zlib.compressobj(9)
    block = bytes(1 << 24)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(block) + c.flush(zlib.Z_FULL_FLUSH) == again
    return first + again * (int(gib * 64) - 1) + c.flush()


def test_the_bomb_inflates_as_claimed():
    packed = zeros_bomb(0.25)
    out = zlib.decompressobj().decompress(packed, 200 * 1024**2)  # its trailer is not checked: never reached
    assert len(out) == 200 * 1024**2 and not any(out[:: 1 << 20]) and len(packed) < 300_000


def _hostile_files():
    """(name, results.json payload, slow?) — every payload under 10 MB."""
    relu = _sample("relu")
    bomb = base64.b64encode(zeros_bomb(3)).decode()  # 3 GiB of zeros in ~4 MB of base64
    yield "3 GiB bomb, small shape", dict(relu, curve_x={"__ndarray__": "uint8", "shape": [801], "zlib": bomb}), False
    regression = _sample("regression")  # X may be large: the schema admits it, the inflation stops at 128 MB
    yield "3 GiB bomb, 128 MB shape admitted", dict(regression, X={"__ndarray__": "float64", "shape": [16_000_000, 1],
                                                                   "zlib": bomb}), False
    yield "3 GiB bomb, shape to match", dict(relu, curve_x={"__ndarray__": "uint8", "shape": [3_200_000],
                                                            "zlib": bomb}), True
    yield "3 GiB bomb as data of a free-form value", dict(relu, params={"x": bomb}), True
    yield "a million inline values", dict(relu, curve_x={"__ndarray__": "float64", "shape": [1_000_000],
                                                         "data": [0.5] * 1_000_000}), False
    claim = {"id": "c", "text": "t", "holds": True, "evidence": {}, "statement": ""}
    yield "100,000 claims of relu", dict(relu, claims=[claim] * 100_000), True
    audit = _sample("audit")
    yield "100,000 claims of audit (valid: loaded)", dict(audit, claims=[claim] * 100_000), True
    yield "9 MB string", dict(relu, activation="r" * 9_000_000), True
    yield "wide flat params", dict(relu, params={str(i): [i] * 5 for i in range(100_000)}), True


CASE_NAMES = [("3 GiB bomb, small shape", False), ("3 GiB bomb, 128 MB shape admitted", False),
              ("3 GiB bomb, shape to match", True), ("3 GiB bomb as data of a free-form value", True),
              ("a million inline values", False), ("100,000 claims of relu", True),
              ("100,000 claims of audit (valid: loaded)", True), ("9 MB string", True), ("wide flat params", True)]


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if slow else [], id=n)
                                  for n, slow in CASE_NAMES])
def test_memory_stays_bounded_for_hostile_files_under_10_mb(tmp_path, name):
    data = next(d for n, d, _ in _hostile_files() if n == name)
    text = json.dumps(data)
    assert len(text) < 10 * 1024**2, name
    (tmp_path / "results.json").write_text(text)
    measured = _peak(tmp_path)
    assert (measured["outcome"] == "loaded") == ("loaded" in name), measured
    assert measured["peak_mib"] <= MAX_RSS_MIB, measured
