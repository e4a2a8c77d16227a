"""Every file biaslab reads back is untrusted (issue 22): results.json, demo folders, runs.jsonl.

Each case of the issue's probe is here: one line and exit 2 (or a correct report), nothing
written outside the folder, no run destroyed. The samples in tests/data/results are real
results.json files of every command (small settings; large arrays stored as zlib).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from biaslab.cli import main
from biaslab.infra.io import BiaslabError
from biaslab.results import RESULT_TYPES, load_results
from biaslab.results.base import _decode_array

FIXTURES = Path(__file__).parent / "data" / "results"
COMMANDS = ["regression", "relu", "conv", "ablate", "audit", "denoise", "denoise-apply"]


def sample(command: str) -> dict:
    return json.loads((FIXTURES / command / "results.json").read_text())


def write_run(folder: Path, data: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return folder


def demo_run(folder: Path, sections=("regression", "relu")) -> Path:
    """A demo folder made of the samples (its results.json lists ``sections``)."""
    data = sample_demo()
    data["sections"] = list(sections)
    write_run(folder, data)
    for name in sections:
        if name in COMMANDS:
            shutil.copytree(FIXTURES / name, folder / name)
    return folder


def sample_demo() -> dict:
    return json.loads((FIXTURES / "demo" / "results.json").read_text())


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) and a hash of its bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = ("link:" + os.readlink(p)) if p.is_symlink() else \
                hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def report(capsys, *args) -> tuple[int, str]:
    code = main(["report", "-q", *map(str, args)])
    err = capsys.readouterr().err
    return code, err


def refused(capsys, *args, words=()) -> str:
    code, err = report(capsys, *args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("biaslab: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


# --------------------------------------------------------------------------------------------
# The samples are valid; the schema's limits are the commands' own


@pytest.mark.parametrize("command", [*COMMANDS, "demo"])
def test_every_sample_validates_and_decodes(command):
    from biaslab.results.schema import check_payload

    data = sample(command) if command != "demo" else sample_demo()
    check_payload(data, command)
    if command != "demo":
        assert load_results(FIXTURES / command).command == command


def test_the_schema_limits_are_the_commands_own():
    from biaslab.experiments.ablate import run as ablate_run
    from biaslab.experiments.ablate import shifts
    from biaslab.experiments.conv import run as conv_run
    from biaslab.experiments.demo import DEMO_STEPS
    from biaslab.experiments.denoise import apply, data, run as denoise_run
    from biaslab.experiments.regression import data as regression_data
    from biaslab.experiments.relu import run as relu_run
    from biaslab.math import kernels
    from biaslab.results import schema

    assert schema.REL_MAX_BIASES == relu_run.MAX_BIASES
    assert schema.REL_CURVE_POINTS == relu_run.CURVE_POINTS
    assert schema.CONV_MAX_KERNELS == kernels.MAX_KERNELS
    assert schema.CONV_MAX_KERNEL_SIZE == kernels.MAX_KERNEL_SIZE
    assert schema.CONV_MAX_BIASES == conv_run.MAX_BIASES
    assert schema.CONV_MAX_IMAGE_SIDE == conv_run.MAX_IMAGE_SIDE
    assert schema.CONV_PREVIEW_SIDE == conv_run.PREVIEW_SIDE
    assert schema.CONV_SWEEP_POINTS == conv_run.SWEEP_POINTS
    assert schema.CONV_MAX_PADDING == conv_run.MAX_PADDING
    assert schema.CONV_EXPLAIN_MARGIN == conv_run.EXPLAIN_MARGIN
    assert schema.REG_MAX_POINTS == regression_data.MAX_POINTS
    assert schema.ABL_MAX_SEEDS == ablate_run.MAX_SEEDS
    assert schema.ABL_MAX_EPOCHS == ablate_run.MAX_EPOCHS
    assert schema.ABL_MAX_LEVELS == shifts.MAX_LEVELS
    assert schema.DEN_MAX_SIGMA == data.MAX_SIGMA
    assert schema.DEN_MAX_CROP == denoise_run._BOUNDS["eval_crop"][1]
    assert schema.DEN_PREVIEW_SIDE == apply.PREVIEW_SIDE
    assert set(schema.DEMO_SECTIONS) >= {s.name for s in DEMO_STEPS}


def test_every_command_has_a_schema_and_the_published_schema_accepts_the_samples(capsys, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["schema", "relu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"].endswith("2020-12/schema") and "properties" in printed
    for command in RESULT_TYPES:
        out = tmp_path / f"{command}.json"
        assert main(["schema", command, "--out", str(out)]) == 0
        schema = json.loads(out.read_text())
        if command in COMMANDS or command == "demo":
            data = sample(command) if command != "demo" else sample_demo()
            jsonschema.Draft202012Validator(schema).validate(data)
            bad = dict(data, claims=[{"id": "x", "text": 12, "holds": "yes"}])
            assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
    assert main(["schema", "nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# No path ever comes from a file


@pytest.mark.parametrize("sections", [["../outside/victim"], "ABSOLUTE", ["."], [""], [1, 2], ["regression", "regression"],
                                      "notalist", [["regression"]]])
def test_demo_sections_are_fixed_names(tmp_path, capsys, sections):
    victim = write_run(tmp_path / "outside" / "victim", sample("regression"))
    run = demo_run(tmp_path / "run", sections=())
    data = json.loads((run / "results.json").read_text())
    data["sections"] = [str(victim)] if sections == "ABSOLUTE" else sections
    (run / "results.json").write_text(json.dumps(data))
    before = snapshot(tmp_path)
    refused(capsys, run)
    assert snapshot(tmp_path) == before


def test_a_symlinked_section_is_refused_and_its_target_untouched(tmp_path, capsys):
    run = demo_run(tmp_path / "run", sections=("regression",))
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run / "regression", elsewhere)
    (run / "regression").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(tmp_path)
    refused(capsys, run, words=["symbolic link"])
    assert snapshot(tmp_path) == before


def test_a_section_holding_another_commands_run_is_refused(tmp_path, capsys):
    run = demo_run(tmp_path / "run", sections=("regression",))
    shutil.rmtree(run / "regression")
    shutil.copytree(FIXTURES / "relu", run / "regression")
    before = snapshot(tmp_path)
    refused(capsys, run, words=["not of the demo's regression section"])
    assert snapshot(tmp_path) == before


def test_save_demo_never_writes_through_a_symlinked_section(tmp_path):
    from biaslab.outputs import save_demo

    demo = load_results(demo_run(tmp_path / "src", sections=("regression",)))
    part = load_results(tmp_path / "src" / "regression")
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "victim").mkdir()
    (out / "regression").symlink_to(tmp_path / "victim", target_is_directory=True)
    with pytest.raises(BiaslabError, match="symbolic link"):
        save_demo(demo, {"regression": part}, out)
    assert list((tmp_path / "victim").iterdir()) == []


def test_runs_jsonl_is_never_followed_through_a_symlink(tmp_path):
    from biaslab.experiments.ablate.runs import append_runs, read_runs

    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.jsonl").symlink_to(victim)
    with pytest.raises(BiaslabError, match="symbolic link"):
        append_runs(out / "runs.jsonl", [{"config": "k", "variant": "v", "seed": 0}])
    with pytest.raises(BiaslabError, match="symbolic link"):
        read_runs(out / "runs.jsonl")
    assert victim.read_text() == "keep\n"
    (out / "runs.jsonl").unlink()
    os.mkfifo(out / "runs.jsonl")
    with pytest.raises(BiaslabError, match="not a regular file"):
        read_runs(out / "runs.jsonl")


def test_runs_jsonl_is_read_line_by_line_within_bounds(tmp_path, monkeypatch):
    """A shared runs.jsonl is untrusted: an over-long line is skipped (never held whole), the lines after it
    are still read, and only records of the command's own configurations are kept, so memory is bounded by
    the command's grid, not by the file."""
    import tracemalloc

    from biaslab.experiments.ablate import runs

    def rec(config, seed):
        return json.dumps({"config": config, "variant": "none", "seed": seed,
                           "record_version": runs.RECORD_VERSION}) + "\n"

    path = tmp_path / "runs.jsonl"
    monkeypatch.setattr(runs, "MAX_RUN_LINE_BYTES", 4096)
    path.write_text(rec("mine", 0) + '{"config": "' + "x" * 100_000 + '"}\n' + rec("mine", 1) + rec("other", 0))
    assert set(runs.read_runs(path)) == {("mine", "none", 0), ("mine", "none", 1), ("other", "none", 0)}
    assert set(runs.read_runs(path, {"mine"})) == {("mine", "none", 0), ("mine", "none", 1)}
    path.write_bytes(rec("mine", 0).encode() + b"\xff\n")
    with pytest.raises(BiaslabError, match=f"byte {len(rec('mine', 0))}"):
        runs.read_runs(path)

    with path.open("w") as fh:  # 10 MB of records of other configurations
        fh.writelines(rec(f"other{i}", i) for i in range(120_000))
    tracemalloc.start()
    try:
        assert runs.read_runs(path, {"mine"}) == {}
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 8e6 and peak < 2e6, peak


def test_foreign_runs_records_are_trained_again_not_trusted():
    from biaslab.experiments.ablate.runs import usable_record

    good = {"test_acc": 0.9, "train_acc": 1.0, "test_loss": 0.3, "train_loss": 0.1, "fallback": None,
            "curves": {"train_loss": [0.5, 0.1], "test_loss": [0.6, 0.3], "test_acc": [0.8, 0.9]},
            "shift": {"noise": [0.9, 0.8, 0.7]}}
    assert usable_record(good, 2, {"noise": [0.1, 0.2, 0.3]})
    for bad in [None, [], {**good, "test_acc": "0.9"}, {**good, "test_acc": 7.0},
                {**good, "curves": {**good["curves"], "test_acc": [0.8]}}, {**good, "shift": {}},
                {**good, "curves": {"train_loss": [[0.5]] * 2}}, {**good, "fallback": ["x"]},
                {**good, "train_loss": True}]:
        assert not usable_record(bad, 2, {"noise": [0.1, 0.2, 0.3]})


# --------------------------------------------------------------------------------------------
# report --out never destroys another run; report.md holds no raw HTML


def test_report_out_refuses_a_folder_holding_another_commands_run(tmp_path, capsys):
    reg = shutil.copytree(FIXTURES / "regression", tmp_path / "reg")
    other = shutil.copytree(FIXTURES / "relu", tmp_path / "other")
    (other / "relu.png").write_bytes(b"figure")
    (other / "report.md").write_text("![relu](relu.png)\n")
    before = snapshot(tmp_path)
    refused(capsys, reg, "--out", other, words=["holds the results of `biaslab relu`"])
    assert snapshot(tmp_path) == before


def test_a_comparison_refuses_a_folder_holding_a_run(tmp_path, capsys):
    reg = shutil.copytree(FIXTURES / "regression", tmp_path / "reg")
    reg2 = shutil.copytree(FIXTURES / "regression", tmp_path / "reg2")
    other = shutil.copytree(FIXTURES / "relu", tmp_path / "other")
    (other / "report.html").write_text("relu's report")
    (other / "report.md").write_text("relu's report")
    before = snapshot(tmp_path)
    refused(capsys, reg, reg2, "--out", other, words=["biaslab relu"])
    assert snapshot(tmp_path) == before


def test_report_md_escapes_html_from_results(tmp_path, capsys):
    data = sample("relu")
    data["claims"][0]["text"] = "<script>alert(1)</script>"
    data["claims"][0]["statement"] = "<img src=x onerror=alert(1)>"
    data["claims"][0]["evidence"]["note"] = "<b onmouseover=alert(1)>"
    run = write_run(tmp_path / "run", data)
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("run/")}
    code, err = report(capsys, run)
    assert code == 0, err
    md = (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    for raw in ("<script", "<img src=x", "<b onmouseover"):
        assert raw not in md and raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("run/")} == before


# --------------------------------------------------------------------------------------------
# Bombs and sizes


def _zeros_zlib(nbytes: int) -> str:
    c = zlib.compressobj(9)
    chunk = bytes(1 << 22)
    out = []
    for _ in range(nbytes // len(chunk)):
        out.append(c.compress(chunk))
    out.append(c.compress(bytes(nbytes % len(chunk))))
    out.append(c.flush())
    return base64.b64encode(b"".join(out)).decode()


def test_a_zlib_bomb_is_refused_before_it_is_inflated(tmp_path, capsys):
    data = sample("relu")
    data["curve_x"] = {"__ndarray__": "uint8", "shape": [801], "zlib": _zeros_zlib(256 * 1024**2)}
    refused(capsys, write_run(tmp_path / "run", data), words=["curve_x", "zlib"])


def test_inflation_stops_at_the_declared_size():
    bomb = _zeros_zlib(64 * 1024**2)
    with pytest.raises(ValueError, match="more than the 801 bytes"):
        _decode_array({"__ndarray__": "uint8", "shape": [801], "zlib": bomb})
    raw = np.arange(10, dtype="<f8").tobytes()
    packed = base64.b64encode(zlib.compress(raw)).decode()
    assert _decode_array({"__ndarray__": "float64", "shape": [10], "zlib": packed}).tolist() == list(range(10))
    with pytest.raises(ValueError, match="truncated"):
        _decode_array({"__ndarray__": "float64", "shape": [10], "zlib": base64.b64encode(zlib.compress(raw)[:-6]).decode()})
    with pytest.raises(ValueError, match="truncated"):
        _decode_array({"__ndarray__": "float64", "shape": [11], "zlib": packed})
    with pytest.raises(ValueError, match="corrupt"):
        _decode_array({"__ndarray__": "float64", "shape": [10], "zlib": base64.b64encode(b"not zlib at all").decode()})
    for dtype in ("object", "<U5", "datetime64[ns]", "V8", "complex128"):
        with pytest.raises(ValueError, match="not a plain"):
            _decode_array({"__ndarray__": dtype, "shape": [1], "data": [1]})


def _kernels(data, n):
    data["kernels"] = [copy.deepcopy(data["kernels"][0]) for _ in range(n)]


CASES = {
    # sizes beyond the command's own limits
    "8192x8192 image_preview": ("conv", lambda d: d.update(image_preview={
        "__ndarray__": "float32", "shape": [1, 8192, 8192], "zlib": _zeros_zlib(1024)}), "image_preview"),
    "500 conv kernels": ("conv", lambda d: _kernels(d, 500), "kernels"),
    "10,000 relu biases": ("relu", lambda d: d.update(biases=[0.5] * 10_000), "biases"),
    # types
    "holds yes": ("regression", lambda d: d["claims"][0].update(holds="yes"), "claims[0].holds"),
    "holds [1]": ("regression", lambda d: d["claims"][0].update(holds=[1]), "claims[0].holds"),
    "evidence list": ("regression", lambda d: d["claims"][0].update(evidence=[1, 2]), "claims[0].evidence"),
    "text 12": ("regression", lambda d: d["claims"][0].update(text=12), "claims[0].text"),
    "params list": ("regression", lambda d: d.update(params=[1, 2]), "params"),
    "mse 10**400": ("regression", lambda d: d["with_bias"].update(mse=10**400), "with_bias.mse"),
    "mse 1e400": ("regression", lambda d: d["with_bias"].update(mse=float("inf")), "with_bias.mse"),
    "verdict unknown word": ("regression", lambda d: d["claims"][0].update(verdict="maybe"), "verdict"),
    "no claims": ("regression", lambda d: d.pop("claims"), "claims"),
    "unknown key": ("regression", lambda d: d.update(extra={"a": 1}), "extra"),
    "unknown command": ("regression", lambda d: d.update(command="rm -rf"), "unknown command"),
    # zlib and dtypes
    "corrupt zlib": ("conv", lambda d: d["image_preview"].update(zlib=base64.b64encode(b"garbage!" * 8).decode()),
                     "corrupt"),
    "truncated zlib": ("conv", lambda d: d["image_preview"].update(
        zlib=base64.b64encode(base64.b64decode(d["image_preview"]["zlib"])[:-50]).decode()), "truncated"),
    "base64 garbage": ("conv", lambda d: d["image_preview"].update(zlib="!!!not base64!!!"), "corrupt"),
    "dtype object": ("relu", lambda d: d["curve_x"].update(__ndarray__="object"), "curve_x"),
    "dtype <U5": ("relu", lambda d: d["curve_x"].update(__ndarray__="<U5"), "curve_x"),
    "dtype datetime": ("relu", lambda d: d["curve_x"].update(__ndarray__="datetime64[ns]"), "curve_x"),
    "dtype V8": ("relu", lambda d: d["curve_x"].update(__ndarray__="V8"), "curve_x"),
    "int data out of range": ("relu", lambda d: d.update(curve_x={"__ndarray__": "uint8", "shape": [1],
                                                                    "data": [300]}), "curve_x"),
    # shapes
    "1-D where 2-D belongs": ("relu", lambda d: d.update(curves={"__ndarray__": "float64", "shape": [3],
                                                                   "data": [1.0, 2.0, 3.0]}), "curves"),
    "array where a number belongs": ("relu", lambda d: d.update(w={"__ndarray__": "float64", "shape": [1],
                                                                   "data": [1.0]}), "w"),
    "number where an array belongs": ("relu", lambda d: d.update(curves=3.0), "curves"),
    "empty curves": ("relu", lambda d: d.update(curves={"__ndarray__": "float64", "shape": [0, 801], "data": []}),
                     "curves"),
    "empty arrays": ("regression", lambda d: d.update(X={"__ndarray__": "float64", "shape": [0, 1], "data": []},
                                                      y={"__ndarray__": "float64", "shape": [0], "data": []}), "X"),
    "negative shape": ("relu", lambda d: d["curve_x"].update(shape=[-801]), "curve_x"),
    "shape and data disagree": ("relu", lambda d: d["curve_x"].update(shape=[800]), "curve_x"),
    "biases and curves disagree": ("relu", lambda d: d.update(biases=d["biases"][:-1]), "disagree"),
    # nesting
    "params 900 deep": ("regression", lambda d: d.update(params=json.loads("[" * 900 + "]" * 900)), "params"),
    "evidence 30 deep": ("regression", lambda d: d["claims"][0]["evidence"].update(x=json.loads("[" * 30 + "]" * 30)),
                         "evidence"),
    # params a renderer reads
    "demo seed a dict": ("demo", lambda d: d["params"].update(seed={"a": 1}), "params.seed"),
    "denoise depth a string": ("denoise", lambda d: d["params"].update(depth="x"), "params.depth"),
    "denoise depth missing": ("denoise", lambda d: d["params"].pop("depth"), "depth"),
    "ablate alpha a string": ("ablate", lambda d: d["params"].update(alpha="x"), "params.alpha"),
    # denoise, as explore --from reads it
    "null sigmas": ("denoise", lambda d: d.update(sigmas=[None] * len(d["sigmas"])), "sigmas"),
    "missing PSNR key": ("denoise", lambda d: d["psnr"].pop("bias_free"), "psnr"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_hostile_results_file_is_one_line_and_exit_2(tmp_path, capsys, case):
    command, mutate, word = CASES[case]
    data = sample(command) if command != "demo" else sample_demo()
    mutate(data)
    run = demo_run(tmp_path / "run", sections=()) if command == "demo" else tmp_path / "run"
    write_run(run, data)
    before = snapshot(tmp_path)
    refused(capsys, run, words=[word])
    assert snapshot(tmp_path) == before


def test_a_file_nested_past_the_json_parser_is_one_line(tmp_path, capsys):
    text = json.dumps(sample("regression"))[:-1] + ', "params": ' + "[" * 100_000 + "]" * 100_000 + "}"
    refused(capsys, write_run(tmp_path / "run", text))


def test_a_5000_digit_number_is_one_line(tmp_path, capsys):
    text = json.dumps(sample("regression")).replace('"n_samples": 15', '"n_samples": ' + "9" * 5000)
    refused(capsys, write_run(tmp_path / "run", text), words=["not valid JSON"])


@pytest.mark.parametrize("mutation", ["null sigmas", "missing PSNR key"])
def test_explore_from_a_hostile_run_is_one_line(tmp_path, capsys, mutation):
    data = sample("denoise")
    CASES[mutation][1](data)
    run = write_run(tmp_path / "run", data)
    code = main(["explore", "--from", str(run), "--out", str(tmp_path / "page"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "page" / "explore.html").exists()


def test_tex_in_names_from_results_is_drawn_as_text(tmp_path, capsys):
    """matplotlib would parse "$...$" as TeX and fail on "$\\frac{$" while drawing."""
    data = sample("regression")
    data["source"] = "$\\frac{$"
    data["features"] = ["$x^$"]
    run = write_run(tmp_path / "run", data)
    code, err = report(capsys, run)
    assert code == 0, err
    assert list(run.glob("*.png"))


@pytest.mark.parametrize("verdict", ["holds", "refuted", "inconclusive", "not measured"])
def test_claims_may_carry_a_verdict_word_and_a_null_holds(verdict):
    from biaslab.results.schema import check_payload

    data = sample("regression")
    data["claims"][0].update(verdict=verdict, holds=None)
    check_payload(data, "regression")
