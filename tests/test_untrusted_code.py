"""User code biaslab runs (model factories, their forward passes) is untrusted too (issue 22).

Whatever it raises, ``BaseException`` subclasses included, at import, at call or many epochs
later, is one line naming the user's file, function and error, with exit 2; "interrupted"
(130) only for a real Ctrl-C (tests/test_errors.py sends SIGINT). Non-finite outputs and
extreme inputs are refused before any figure is drawn.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from biaslab.cli import main

MODELS = Path(__file__).parent / "models"
HOSTILE = MODELS / "hostile_models.py"


def one_line(capsys, args, *words) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("biaslab: note:")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("biaslab: error: ") and "Traceback" not in err, err
    assert "interrupted" not in err and "bug in biaslab" not in err
    for w in words:
        assert w in lines[0], err
    return lines[0]


def audit(factory: str, tmp_path):
    return ["audit", factory, "--input-shape", "2,4", "-q", "--out", tmp_path / "out"]


def ablate(factory: str, tmp_path, *extra):
    return ["ablate", "--model", factory, "--dataset", "iris", "--seeds", "2", "--epochs", "1", "-q",
            "--out", tmp_path / "out", *extra]


@pytest.mark.parametrize("function, words", [
    ("raise_keyboard_interrupt", ["KeyboardInterrupt", "no Ctrl-C", "raise_keyboard_interrupt()",
                                  "hostile_models.py"]),
    ("raise_custom", ["Custom: custom base exception", "raise_custom()", "hostile_models.py"]),
    ("raise_exit", ["sys.exit(3)", "raise_exit()"]),
    ("returns_none", ["returned NoneType", "no tensor"]),
    ("nan_logits", ["NaN or infinite"]),
])
def test_audit_factory_failures_are_one_line(tmp_path, capsys, function, words):
    one_line(capsys, audit(f"{HOSTILE}:{function}", tmp_path), *words)
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("module, words", [
    ("hostile_import_kbd.py", ["KeyboardInterrupt", "no Ctrl-C", "while importing hostile_import_kbd.py"]),
    ("hostile_import_custom.py", ["Boom: import-time boom", "while importing hostile_import_custom.py"]),
])
def test_a_factory_file_that_raises_at_import_is_one_line(tmp_path, capsys, module, words):
    one_line(capsys, audit(f"{MODELS / module}:make", tmp_path), *words)


@pytest.mark.parametrize("function, words", [
    ("raise_custom", ["Custom: custom base exception", "raise_custom()"]),
    ("raise_keyboard_interrupt", ["KeyboardInterrupt", "no Ctrl-C"]),
    ("nan_logits", ["NaN, infinite"]),
    ("late_value_error", ["ValueError: forward broke in epoch 1", "forward()", "hostile_models.py"]),
    ("late_keyboard_interrupt", ["KeyboardInterrupt", "no Ctrl-C", "forward()"]),
    ("late_custom", ["Custom: late custom", "forward()"]),
])
def test_ablate_user_code_failures_are_one_line(tmp_path, capsys, function, words):
    one_line(capsys, ablate(f"{HOSTILE}:{function}", tmp_path), *words)
    assert not (tmp_path / "out" / "results.json").exists()
    assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True


def test_an_extreme_input_offset_is_refused_before_any_figure(tmp_path, capsys):
    one_line(capsys, ablate("linear", tmp_path, "--input-offset", "1e38"), "--input-offset must be in [−1e6, 1e6]")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_diverged_training_is_refused_before_any_figure():
    import numpy as np

    from biaslab.experiments.ablate.run import _check_finite_runs
    from biaslab.infra.io import BiaslabError
    from biaslab.results import load_results

    res = load_results(Path(__file__).parent / "data" / "results" / "ablate")
    _check_finite_runs(res.configurations)
    variant = next(iter(res.configurations[0].variants.values()))
    variant.curves["train_loss"][0, 0] = np.nan
    with pytest.raises(BiaslabError, match="diverged"):
        _check_finite_runs(res.configurations)


def test_an_error_in_biaslab_code_called_from_user_code_is_still_a_bug():
    """A hook of ours, called from the user's forward, that fails is our bug, not theirs."""
    from biaslab.infra import errors

    path = str(HOSTILE.resolve())
    errors.register_user_code(path)

    from biaslab.results.base import _decode_array  # raises KeyError inside biaslab for a record without keys

    ns = {"ours": _decode_array}
    exec(compile("def forward():\n    ours({})\n", path, "exec"), ns)  # a frame "in" the user's file
    with pytest.raises(KeyError) as info:
        ns["forward"]()
    assert errors.user_frame(info.value) is None
    exec(compile("def forward():\n    1 / 0\n", path, "exec"), ns)
    with pytest.raises(ZeroDivisionError) as info:
        ns["forward"]()
    assert errors.user_frame(info.value)[1:] == ("forward", 2)
