"""``--engine ray``: the same results as local, one writer of runs.jsonl, resume, a killed worker retried.

Ray takes several seconds to start, so the module starts it once (2 CPUs) and the default suite
runs one test on it, plus the CLI starting and stopping its own Ray; the others are marked slow.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import biaslab.experiments.ablate.run
from biaslab.experiments.ablate import AblationInterrupted, read_runs, run_ablate
from biaslab.results import payload

ray = pytest.importorskip("ray")

GRID = dict(models=["linear", "mlp"], datasets=["iris", "wine"], epochs=2, seeds=2)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_ray_gives_the_local_results_and_only_the_driver_writes(local_ray, tmp_path):
    local = run_ablate(out_dir=tmp_path / "local", **GRID)
    remote = run_ablate(engine="ray", out_dir=tmp_path / "ray", **GRID)
    assert remote.engine == "ray" and remote.trained == 16
    assert payload(remote)["configurations"] == payload(local)["configurations"]
    assert payload(remote)["claims"] == payload(local)["claims"]
    lines = (tmp_path / "ray" / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 16 and len(read_runs(tmp_path / "ray" / "runs.jsonl")) == 16  # one line per run
    assert sorted(os.listdir(tmp_path / "ray")) == ["runs.jsonl"]


@pytest.mark.slow
def test_ray_resumes_after_an_interrupt(local_ray, tmp_path, monkeypatch):
    real = biaslab.experiments.ablate.run.append_runs
    calls = []

    def interrupted_on_second(path, records):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(path, records)

    monkeypatch.setattr(biaslab.experiments.ablate.run, "append_runs", interrupted_on_second)
    with pytest.raises(AblationInterrupted):
        run_ablate(engine="ray", out_dir=tmp_path, **GRID)
    assert len(read_runs(tmp_path / "runs.jsonl")) == 4  # the first finished configuration
    monkeypatch.setattr(biaslab.experiments.ablate.run, "append_runs", real)
    again = run_ablate(engine="ray", out_dir=tmp_path, **GRID)
    assert again.trained == 12 and again.resumed == 4
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 16


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_nothing_is_written_twice(local_ray, tmp_path):
    marker = tmp_path / "kill-once"
    marker.write_text(str(os.getpid()))
    model = tmp_path / "killer.py"
    model.write_text(textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from torch import nn

        def factory():
            marker = Path({str(marker)!r})
            if marker.exists() and int(marker.read_text()) != os.getpid():  # in a Ray worker, once
                marker.unlink()
                os.kill(os.getpid(), signal.SIGKILL)
            return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    """))
    args = dict(models=[f"{model}:factory"], datasets=["iris"], epochs=2, seeds=2)
    res = run_ablate(engine="ray", out_dir=tmp_path / "out", **args)
    assert not marker.exists()  # the first attempt's worker died
    assert res.trained == 4 and len((tmp_path / "out" / "runs.jsonl").read_text().splitlines()) == 4
    local = run_ablate(out_dir=None, **args)
    assert payload(res)["configurations"] == payload(local)["configurations"]
    assert json.loads(json.dumps(payload(res)))["engine"] == "ray"


def test_local_engine_never_imports_ray(tmp_path):
    code = ("import sys; from biaslab.experiments.ablate import run_ablate; "
            "run_ablate(models=['linear'], datasets=['iris'], epochs=1, seeds=2, out_dir=None); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(biaslab.__file__).parents[1])})
    assert out.stdout.strip() == "False"


def _ray_sessions() -> set[str]:
    root = Path("/tmp/ray")
    return {p.name for p in root.glob("session_2*")} if root.is_dir() else set()


def _live_processes_of(session: str) -> list[str]:
    """Processes (not zombies) whose command line names the Ray session ``session``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if session in cmdline and "Z" not in state.split()[1]:
            found.append(cmdline[:120])
    return found


def _run_starting_ray(tmp_path, code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python that starts its own Ray; asserts Ray's processes are gone after exit."""
    before = _ray_sessions()
    env = {**os.environ, "PYTHONPATH": str(Path(biaslab.__file__).parents[1])}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    new = _ray_sessions() - before
    assert new, "no Ray session was started"
    for session in new:
        assert _live_processes_of(session) == [], f"Ray processes of {session} outlived the command"
    return out


def test_cli_starts_ray_and_stops_it_when_it_exits(tmp_path):
    """The CLI shuts its Ray down in the background while it writes the report; nothing outlives it."""
    code = ("import sys; from biaslab.__main__ import main; sys.argv = ['biaslab', 'ablate', '--model', 'linear', "
            "'--dataset', 'iris', '--epochs', '1', '--seeds', '2', '--engine', 'ray', '--out', 'out']; main()")
    out = _run_starting_ray(tmp_path, code)
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["engine"] == "ray" and res["trained"] == 4 and (tmp_path / "out" / "report.html").is_file()
    stages = [line for line in out.stderr.splitlines() if line.startswith("biaslab: ")]  # not a TTY: stage lines
    assert stages[:2] == ["biaslab: starting Ray (0/1)", stages[1]] and stages[1].startswith("biaslab: starting Ray done")
    assert "biaslab: ablate on Ray: linear on iris done (1/1)" in stages


@pytest.mark.slow
def test_background_shutdown_is_finished_before_ray_starts_again(tmp_path):
    code = textwrap.dedent("""
        from biaslab.experiments.ablate import ray_engine, run_ablate
        from biaslab.results import payload
        kw = dict(models=["linear"], datasets=["iris"], epochs=1, seeds=2, out_dir=None, engine="ray",
                  ray_background_shutdown=True)
        first = run_ablate(**kw)
        assert ray_engine._stopping is not None  # returned while Ray stops in the background
        second = run_ablate(**kw)  # waits for that shut-down, then starts a fresh Ray
        assert payload(first)["configurations"] == payload(second)["configurations"]
    """)
    _run_starting_ray(tmp_path, code)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_nothing_listens_fails_at_once():
    from biaslab.experiments.ablate.ray_engine import _check_reachable
    from biaslab.infra.io import BiaslabError

    with socket.socket() as server:  # something listening: accepted
        server.bind(("127.0.0.1", 0))
        server.listen()
        _check_reachable(f"127.0.0.1:{server.getsockname()[1]}")
        _check_reachable(f"ray://127.0.0.1:{server.getsockname()[1]}")
    with pytest.raises(BiaslabError, match="cannot join Ray at 127.0.0.1:.*nothing answers there"):
        _check_reachable(f"127.0.0.1:{_closed_port()}")
    _check_reachable("auto")  # Ray's own keywords are ray.init's to resolve


@pytest.mark.parametrize("flag", ["--address", "RAY_ADDRESS"])
def test_cli_refuses_an_unreachable_cluster_and_a_missing_model_file_before_starting_ray(tmp_path, flag):
    address = f"127.0.0.1:{_closed_port()}"
    before = _ray_sessions()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [sys.executable, "-m", "biaslab", "ablate", "--model", "linear", "--dataset", "iris", "--epochs", "1",
           "--seeds", "2", "--engine", "ray", "--out", str(tmp_path / "out")]
    if flag == "RAY_ADDRESS":
        env["RAY_ADDRESS"] = address
    else:
        cmd += ["--address", address]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"biaslab: joining Ray at {address}" in out.stderr
    assert f"biaslab: error: cannot join Ray at {address}: nothing answers there" in out.stderr
    cmd[cmd.index("linear")] = str(tmp_path / "missing.py") + ":factory"
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"biaslab: error: factory file {tmp_path / 'missing.py'} does not exist; pass path/to/file.py:factory"]
    assert _ray_sessions() == before  # neither started a Ray
