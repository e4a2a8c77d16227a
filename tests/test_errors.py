"""The CLI's error boundary: every failure is one line on stderr and a documented exit code.

0 done · 1 a bug (traceback + how to report) · 2 bad input or the machine · 130 Ctrl-C.
"""

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

import biaslab.experiments.regression.run
from biaslab.cli import app, main
from biaslab.infra.errors import ctrl_c_pressed, one_line_errors
from biaslab.infra.io import BiaslabError
from biaslab.infra.validate import call_user_code

runner = CliRunner()

#: One invocation of every command; each must refuse a bad --seed or --out before any work.
COMMANDS = {
    "regression": ["regression"],
    "relu": ["relu"],
    "conv": ["conv", "--no-check-torch"],
    "demo": ["demo"],
    "ablate": ["ablate", "--quick", "--model", "linear", "--dataset", "iris"],
    "audit": ["audit", "linear"],
    "denoise": ["denoise", "--quick"],
    "denoise apply": ["denoise", "apply", "--model", "m.pt", "--image", "i.png"],
}
#: The library call each command's work starts with: a guard there proves a refusal came first.
WORK = {
    "regression": "biaslab.experiments.regression.run.run_regression",
    "relu": "biaslab.experiments.relu.run.run_relu",
    "conv": "biaslab.experiments.conv.run.run_conv",
    "demo": "biaslab.experiments.demo.run_demo",
    "ablate": "biaslab.experiments.ablate.run_ablate",
    "audit": "biaslab.experiments.audit.run_audit",
    "denoise": "biaslab.experiments.denoise.run_denoise",
    "denoise apply": "biaslab.experiments.denoise.apply_denoiser",
}


def one_error_line(res) -> str:
    assert "Traceback" not in res.output, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("biaslab: error: "), lines[0]
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Make every command's work raise: a test passes only if the refusal comes before it."""

    def guard(*args, **kwargs):
        raise AssertionError("the work started before the input was refused")

    for target in WORK.values():
        monkeypatch.setattr(target, guard)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("seed", ["-1", str(2**32), "99999999999999999999"])
def test_one_seed_rule_for_every_command(tmp_path, no_work, command, seed):
    res = runner.invoke(app, [*COMMANDS[command], "--seed", seed, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    line = one_error_line(res)
    assert "--seed" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_figure_format_is_refused_before_any_work(tmp_path, no_work, command):
    res = runner.invoke(app, [*COMMANDS[command], "--format", "bmp", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "unknown figure format 'bmp'" in one_error_line(res)


@pytest.mark.parametrize("command", ["regression", "relu"])
def test_largest_seed_is_accepted(tmp_path, command):
    res = runner.invoke(app, [command, "--seed", str(2**32 - 1), "--quiet", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output


def _out_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    return tmp_path / "f", "is a file"


def _parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    return tmp_path / "f" / "sub", "Not a directory"


def _under_proc(tmp_path):
    return "/proc/biaslab-test/out", "cannot write to --out"


def _name_too_long(tmp_path):
    return tmp_path / ("n" * 300), "too long"


def _results_json_is_a_folder(tmp_path):
    (tmp_path / "o" / "results.json").mkdir(parents=True)
    return tmp_path / "o", "not a regular file"


def _disk_full(tmp_path):
    return tmp_path / "o", "MiB free"


OUT_PROBLEMS = [_out_is_a_file, _parent_is_a_file, _under_proc, _name_too_long, _results_json_is_a_folder, _disk_full]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run for ``biaslab report`` to rebuild."""
    out = tmp_path_factory.mktemp("regression")
    assert runner.invoke(app, ["regression", "-q", "--out", str(out)]).exit_code == 0
    return out


@pytest.mark.parametrize("command", [*COMMANDS, "report"])
@pytest.mark.parametrize("problem", OUT_PROBLEMS, ids=lambda f: f.__name__[1:])
def test_output_location_refused_before_any_work(tmp_path, monkeypatch, finished_run, no_work, command, problem):
    out, message = problem(tmp_path)
    if problem is _disk_full:
        import shutil
        import types

        monkeypatch.setattr(shutil, "disk_usage", lambda p: types.SimpleNamespace(total=10**9, used=10**9, free=4096))
    if command == "report":  # rebuilds from results.json: the input is a valid run, the output is bad
        args = ["report", str(finished_run), "--out", str(out)]
    else:
        args = [*COMMANDS[command], "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert message in one_error_line(res)


# --------------------------------------------------------------------------------------
# main(): each kind of exception → its code and one line
# --------------------------------------------------------------------------------------

def _pil_bomb():
    from PIL import Image

    return Image.DecompressionBombError("Image size (10000000000 pixels) exceeds limit")


@pytest.mark.parametrize(
    "exc, code, text",
    [
        (BiaslabError("bad value"), 2, "biaslab: error: bad value"),
        (OSError(errno.ENOSPC, "No space left on device", "/x/results.json"), 2, "No space left on device: /x/results.json; free"),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), 2, "Permission denied: /x"),
        (OSError(errno.EROFS, "Read-only file system", "/x"), 2, "read-only"),
        (MemoryError(), 2, "out of memory"),
        (_pil_bomb(), 2, "decompression bomb"),
        (SystemExit(7), 2, "exited (sys.exit(7))"),
        (KeyboardInterrupt(), 130, "biaslab: interrupted"),
    ],
    ids=["biaslab", "enospc", "eacces", "erofs", "memory", "pil-bomb", "sys-exit", "ctrl-c"],
)
def test_main_maps_each_failure_to_one_line(tmp_path, monkeypatch, capsys, exc, code, text):
    def fail(**kwargs):
        if isinstance(exc, KeyboardInterrupt):  # a real Ctrl-C: only SIGINT means "interrupted"
            os.kill(os.getpid(), signal.SIGINT)
        raise exc

    monkeypatch.setattr(biaslab.experiments.regression.run, "run_regression", fail)
    assert main(["regression", "--out", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err and "Traceback" not in err
    assert not (tmp_path / "results.json").exists()


def test_a_bug_shows_the_traceback_and_how_to_report_it(tmp_path, monkeypatch, capsys):
    def bug(**kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(biaslab.experiments.regression.run, "run_regression", bug)
    assert main(["regression", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: oops" in err
    assert err.strip().splitlines()[-1].startswith("biaslab: internal error") and "report" in err


@pytest.mark.parametrize("args", [["regression", "--n", "abc"], ["--bogus"], ["no-such-command"],
                                  ["relu", "--no-such-option"]])
def test_usage_errors_are_one_line(capsys, args):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("biaslab: error: ") and "--help" in err


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert main(["--version"]) == 0
    assert "biaslab" in capsys.readouterr().out


def test_main_leaves_the_sigint_handler_as_it_found_it(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    assert main(["relu", "-q", "--out", str(tmp_path)]) == 0
    assert signal.getsignal(signal.SIGINT) is before


# --------------------------------------------------------------------------------------
# user code: sys.exit and KeyboardInterrupt must not set biaslab's exit code silently
# --------------------------------------------------------------------------------------

def test_call_user_code_reports_sys_exit():
    with pytest.raises(BiaslabError, match=r"the model factory f\.py:make exited \(sys\.exit\(7\)\)"):
        call_user_code(lambda: sys.exit(7), "model factory f.py:make")


def test_call_user_code_reports_exceptions_by_type():
    def bad():
        raise ValueError("width must be even\nmore detail")

    with pytest.raises(BiaslabError, match="the forward pass failed: ValueError: width must be even$"):
        call_user_code(bad, "forward pass")


def test_call_user_code_passes_arguments_and_results():
    assert call_user_code(lambda a, b=0: a + b, "f", 2, b=3) == 5


def test_keyboard_interrupt_raised_by_user_code_is_not_a_ctrl_c():
    def factory():
        raise KeyboardInterrupt

    with pytest.raises(typer_exit()) as info, one_line_errors():
        call_user_code(factory, "model factory")
    assert info.value.exit_code == 2


def test_a_real_ctrl_c_inside_user_code_is_an_interrupt():
    def factory():
        os.kill(os.getpid(), signal.SIGINT)  # the handler raises KeyboardInterrupt right here

    with pytest.raises(typer_exit()) as info, one_line_errors():
        call_user_code(factory, "model factory")
    assert info.value.exit_code == 130


def test_without_the_cli_handler_a_keyboard_interrupt_passes_through():
    assert ctrl_c_pressed() is None

    def factory():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_user_code(factory, "model factory")


def typer_exit():
    import typer

    return typer.Exit


def test_a_sys_exit_reaching_the_boundary_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(biaslab.experiments.regression.run, "run_regression", lambda **kw: sys.exit(7))
    res = runner.invoke(app, ["regression", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "exited (sys.exit(7))" in one_error_line(res)


# --------------------------------------------------------------------------------------
# stdout closed, full or a closed pipe; Ctrl-C at awkward moments (real processes)
# --------------------------------------------------------------------------------------

def biaslab_process(args, tmp_path, prelude="", **kwargs):
    """Run ``python -m biaslab ARGS`` (the console entry point) after ``prelude``; return the process."""
    code = textwrap.dedent(prelude) + "\nimport runpy, sys\nsys.argv = ['biaslab', *sys.argv[1:]]\n" \
        "runpy.run_module('biaslab', run_name='__main__')\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=tmp_path, **kwargs)


def assert_one_line(stderr: bytes, text: str):
    err = stderr.decode()
    assert err.count("\n") == 1 and text in err, err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_json_to_a_closed_stdout_is_refused_before_work(tmp_path):
    p = biaslab_process(["regression", "--json", "--out", "o"], tmp_path, stderr=subprocess.PIPE,
                        preexec_fn=lambda: os.close(1))
    assert p.returncode == 2
    assert_one_line(p.stderr, "stdout is closed")
    assert not (tmp_path / "o" / "results.json").exists()


def test_json_to_a_full_stdout(tmp_path):
    with open("/dev/full", "wb") as full:
        p = biaslab_process(["regression", "--json", "--out", "o"], tmp_path, stdout=full, stderr=subprocess.PIPE)
    assert p.returncode == 2
    assert_one_line(p.stderr, "cannot write to stdout: No space left on device")


def test_json_to_a_closed_pipe(tmp_path):
    r, w = os.pipe()
    os.close(r)  # nobody will ever read: the first write gets EPIPE
    p = biaslab_process(["regression", "--json", "--out", "o"], tmp_path, stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    assert p.returncode == 2
    assert_one_line(p.stderr, "cannot write to stdout")


#: Deliver a real SIGINT the moment a module starts to load (deterministic "Ctrl-C while X loads").
INTERRUPT_ON_IMPORT = """
import builtins, os, signal
_import = builtins.__import__
def _interrupting_import(name, *args, **kwargs):
    if name == {module!r}:
        builtins.__import__ = _import
        os.kill(os.getpid(), signal.SIGINT)
    return _import(name, *args, **kwargs)
builtins.__import__ = _interrupting_import
"""


@pytest.mark.parametrize("module, args", [
    ("matplotlib", ["regression"]),
    ("typer", ["regression"]),  # while the command line itself loads
    ("torch", ["audit", "linear"]),
])
def test_ctrl_c_while_a_library_loads(tmp_path, module, args):
    p = biaslab_process([*args, "--out", "o"], tmp_path, prelude=INTERRUPT_ON_IMPORT.format(module=module),
                        capture_output=True)
    assert p.returncode == 130
    assert_one_line(p.stderr, "biaslab: interrupted")
    left = [f.name for f in (tmp_path / "o").iterdir()] if (tmp_path / "o").exists() else []
    assert left == []  # no results, no figure, no temporary file, no lock file


def test_ctrl_c_during_shutdown_after_the_files_are_written(tmp_path):
    prelude = "import atexit, os, signal, time\n" \
              "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5)))\n"
    p = biaslab_process(["relu", "-q", "--out", "o"], tmp_path, prelude=prelude, capture_output=True)
    assert p.returncode == 130
    assert_one_line(p.stderr, "biaslab: interrupted")
    assert (tmp_path / "o" / "results.json").is_file() and (tmp_path / "o" / "report.html").is_file()
