"""Writes that cannot destroy: regular targets only, complete sets, no temp files left, umask modes, one run per folder."""

import errno
import fcntl
import json
import os
import stat
import subprocess
import time

import pytest
from typer.testing import CliRunner

import biaslab.outputs
from biaslab.cli import app
from biaslab.infra.io import BiaslabError, atomic_path, atomic_write_bytes, read_text, remove_stale_temps
from biaslab.outputs import LOCK_NAME, locked_out_dir
from biaslab.infra.validate import writable_file

runner = CliRunner()


def regression(out, *args):
    return runner.invoke(app, ["regression", "-q", "--out", str(out), *args])


@pytest.fixture
def char_device(tmp_path):
    """A character device like /dev/null, made in tmp_path (never touch the real one)."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return node


def test_atomic_write_refuses_a_device_and_leaves_it_a_device(char_device):
    with pytest.raises(BiaslabError, match="not a regular file"):
        atomic_write_bytes(char_device, b"x")
    assert stat.S_ISCHR(char_device.stat().st_mode)


def test_atomic_write_refuses_real_dev_null():
    with pytest.raises(BiaslabError, match="not a regular file"):
        atomic_write_bytes("/dev/null", b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("kind", ["folder", "symlink"])
def test_atomic_write_refuses_folders_and_symlinks(tmp_path, kind):
    target = tmp_path / "t.json"
    (tmp_path / "real").write_text("keep")
    if kind == "folder":
        target.mkdir()
    else:
        target.symlink_to(tmp_path / "real")
    with pytest.raises(BiaslabError, match="not a regular file"):
        atomic_write_bytes(target, b"x")
    assert (tmp_path / "real").read_text() == "keep"


def test_writable_file_checks_a_target_before_work(tmp_path, char_device):
    assert writable_file("--fix", tmp_path / "new" / "m.pt") == tmp_path / "new" / "m.pt"
    for bad, match in [
        (char_device, "not a regular file"),
        (tmp_path, "not a regular file"),
        (tmp_path / ("m" * 300 + ".pt"), "longer than"),
        (tmp_path / "null" / "m.pt", "not a folder"),
        ("/proc/biaslab/m.pt", "cannot write"),
    ]:
        with pytest.raises(BiaslabError, match=match):
            writable_file("--fix", bad)


def test_audit_fix_to_a_device_is_refused(tmp_path, char_device):
    res = runner.invoke(app, ["audit", "linear", "--fix", str(char_device), "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert stat.S_ISCHR(char_device.stat().st_mode)


def test_long_names_get_a_short_enough_temp_name(tmp_path):
    name = "r" * 250 + ".json"  # legal, but ".NAME.XXXXXXXX.json.tmp" would not be
    atomic_write_bytes(tmp_path / name, b"{}")
    assert os.listdir(tmp_path) == [name]


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def test_stale_temp_files_of_ours_are_removed_at_the_next_run(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    stale = [".regression.ab12cd34.png.tmp", ".results.x_y9z8w7.json.tmp", ".biaslab-probe-abcd1234"]
    for name in stale:
        (out / name).write_text("half")
        _age(out / name, 3600)
    (out / ".biaslab-staging-q1w2e3r4").mkdir()
    (out / ".biaslab-staging-q1w2e3r4" / "f.png").write_text("half")
    fresh = ".report.zz99yy88.html.tmp"  # a write in progress elsewhere: younger than a minute
    (out / fresh).write_text("busy")
    mine = ["notes.tmp", ".notes.tmp", ".cache.abc.tmp", "data.ab12cd34.png.tmp"]  # not our pattern
    for name in mine:
        (out / name).write_text("user")
        _age(out / name, 3600)
    assert regression(out).exit_code == 0
    left = set(os.listdir(out))
    assert not left & set(stale) and ".biaslab-staging-q1w2e3r4" not in left
    assert fresh in left and set(mine) <= left


def test_atomic_write_removes_stale_temps_of_the_same_target(tmp_path):
    (tmp_path / ".fixed.k3j4h5g6.pt.tmp").write_text("half")
    (tmp_path / ".other.k3j4h5g6.pt.tmp").write_text("half")
    for name in os.listdir(tmp_path):
        _age(tmp_path / name, 120)
    atomic_write_bytes(tmp_path / "fixed.pt", b"x")
    assert sorted(os.listdir(tmp_path)) == [".other.k3j4h5g6.pt.tmp", "fixed.pt"]
    assert remove_stale_temps(tmp_path, max_age=0) == [tmp_path / ".other.k3j4h5g6.pt.tmp"]


def test_temp_removed_when_the_write_fails(tmp_path):
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "f.png") as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == []


def _replace_with_folder(path):
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("name", ["results.json", "report.html", "report.md"])
def test_an_output_name_that_is_a_folder_is_refused_before_work(tmp_path, name):
    out = tmp_path / "o"
    assert regression(out).exit_code == 0
    _replace_with_folder(out / name)
    res = regression(out, "--seed", "1")
    assert res.exit_code == 2
    assert "not a regular file" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_figure_name_that_is_a_folder_keeps_the_previous_set(tmp_path):
    """Whichever figure it is, no file of the new run replaces one of the old: all or nothing."""
    out = tmp_path / "o"
    assert runner.invoke(app, ["relu", "-q", "--out", str(out)]).exit_code == 0
    figures = sorted(p.name for p in out.glob("*.png"))
    assert len(figures) >= 2
    for name in figures:
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != name}
        _replace_with_folder(out / name)
        res = runner.invoke(app, ["relu", "-q", "--w", "2", "--out", str(out)])
        assert res.exit_code == 2
        assert "not a regular file" in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before, name
        assert not [p for p in os.listdir(out) if p.endswith(".tmp") or p.startswith(".biaslab-staging")]
        (out / name).rmdir()
        (out / name).write_bytes(b"old figure")


def test_disk_full_while_saving_keeps_the_previous_set_and_leaves_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "o"
    assert regression(out).exit_code == 0
    before = (out / "results.json").read_bytes()
    import biaslab.render.report as report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "report.md"))

    monkeypatch.setattr(report, "render_markdown", full)
    res = regression(out, "--seed", "1")
    assert res.exit_code == 2 and "No space left on device" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert (out / "results.json").read_bytes() == before
    assert sorted(os.listdir(out)) == ["regression.png", "report.html", "report.md", "results.json"]


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 64 KiB file system (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                          capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_really_full_disk(tiny_tmpfs, monkeypatch):
    monkeypatch.setattr(biaslab.outputs, "MIN_FREE_BYTES", 0)  # get past the up-front check to the real ENOSPC
    res = regression(tiny_tmpfs / "o")
    assert res.exit_code == 2 and "No space left on device" in res.stderr, res.output
    assert len(res.stderr.strip().splitlines()) == 1
    assert os.listdir(tiny_tmpfs / "o") == []


def test_a_read_only_file_system(tiny_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    res = regression(tiny_tmpfs / "o")
    assert res.exit_code == 2 and "Read-only file system" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_second_run_into_a_locked_folder_fails_at_once(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)  # another process holds the lock
    os.write(fd, b"4242\n")
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        res = regression(out)
        assert res.exit_code == 2
        assert "another biaslab run (pid 4242) is writing into" in res.stderr
        assert not (out / "results.json").exists()
    finally:
        os.close(fd)
    assert regression(out).exit_code == 0  # released: the next run goes ahead
    assert not (out / LOCK_NAME).exists()  # and removes the lock file when it is done


def test_the_lock_is_reentrant_within_a_run(tmp_path):
    with locked_out_dir(tmp_path) as out:
        with locked_out_dir(out):
            assert int((out / LOCK_NAME).read_text()) == os.getpid()
        fd = os.open(out / LOCK_NAME, os.O_RDWR)  # still held after the inner block ends
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_file_left_by_a_killed_run_is_reused(tmp_path):
    (tmp_path / LOCK_NAME).write_text("99999\n")  # nobody holds it
    assert regression(tmp_path).exit_code == 0
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_run_that_loses_the_race_for_a_removed_lock_file_takes_a_new_one(tmp_path, monkeypatch):
    """Between our open() and our flock(), the previous run removes its lock file: we must not lock a ghost."""
    real_flock = fcntl.flock
    calls = []

    def flock_after_unlink(fd, op):
        if not calls:
            (tmp_path / LOCK_NAME).unlink()  # the previous run finishes right now
        calls.append(fd)
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_unlink)
    with locked_out_dir(tmp_path):
        assert len(calls) == 2  # the ghost, then the real file
        assert os.stat(tmp_path / LOCK_NAME).st_ino == os.fstat(calls[-1]).st_ino


def test_read_text_refuses_folders_devices_and_bytes_that_are_not_utf8(tmp_path, char_device):
    (tmp_path / "runs.jsonl").mkdir()
    with pytest.raises(BiaslabError, match="runs file .* is not a regular file"):
        read_text(tmp_path / "runs.jsonl", "runs file")
    with pytest.raises(BiaslabError, match="not a regular file"):
        read_text(char_device, "runs file")
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps({"a": 1}).encode() + b"\n\xe9\xff\n")
    with pytest.raises(BiaslabError, match=r"not UTF-8 text \(byte 9\)"):
        read_text(bad, "runs file")
    (tmp_path / "ok.jsonl").write_text('{"a": 1}\n')
    assert read_text(tmp_path / "ok.jsonl", "runs file") == '{"a": 1}\n'


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; see test_a_read_only_file_system")
def test_a_read_only_folder(tmp_path):
    out = tmp_path / "o"
    out.mkdir(mode=0o500)
    res = regression(out)
    assert res.exit_code == 2 and "Permission denied" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
