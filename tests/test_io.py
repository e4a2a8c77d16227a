import json
import math
import os

import numpy as np
import pytest
import torch

from biaslab.infra.io import BiaslabError, atomic_path, atomic_write_json, safe_torch_load


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "results.json"
    atomic_write_json(p, {"a": 1.5, "b": [0, 1, 2], "c": None})
    assert json.loads(p.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None}
    assert os.listdir(tmp_path) == ["results.json"]


def test_atomic_write_json_refuses_what_json_cannot_hold(tmp_path):
    p = tmp_path / "results.json"
    with pytest.raises(ValueError):  # NaN would make a file that strict JSON readers refuse
        atomic_write_json(p, {"c": math.nan})
    with pytest.raises(TypeError):  # arrays are encoded by the caller (results.encode)
        atomic_write_json(p, {"b": np.arange(3)})
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path):
    p = tmp_path / "results.json"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["results.json"]


def test_safe_torch_load_reads_state_dict(tmp_path):
    p = tmp_path / "w.pt"
    torch.save({"w": torch.ones(2)}, p)
    assert torch.equal(safe_torch_load(p)["w"], torch.ones(2))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_safe_torch_load_refuses_pickled_code_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"x": _Payload(str(marker))}, p)
    with pytest.raises(BiaslabError, match="refusing to load"):
        safe_torch_load(p)
    assert not marker.exists()


def test_safe_torch_load_missing_and_corrupt(tmp_path):
    with pytest.raises(BiaslabError, match="does not exist"):
        safe_torch_load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(BiaslabError):
        safe_torch_load(bad)
