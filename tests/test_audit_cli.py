"""``biaslab audit`` end to end: targets, --json shape, contributions, --fix checks, security, errors."""

import json
import textwrap

import pytest
import torch
from typer.testing import CliRunner

from biaslab.experiments.audit import bias_contributions, find_biases, load_fixed, run_audit
from biaslab.experiments.audit.graph import analyse
from biaslab.cli import app
from biaslab.nets.models import build_model
from biaslab.render import summary
from biaslab.results import load_results

runner = CliRunner()

FACTORY = textwrap.dedent("""
    import torch
    from torch import nn

    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def broken():
        raise RuntimeError("weights server unreachable")

    def not_a_model():
        return 42

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.head = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return self.head((y if x.sum() > -1e9 else -y).mean((2, 3)))

    def branchy():
        return Branchy()

    class Text(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc, self.norm = nn.Embedding(50, 8), nn.Linear(8, 8), nn.LayerNorm(8)

        def forward(self, ids):
            return self.norm(self.fc(self.emb(ids)).sum(-1, keepdim=True).expand(-1, -1, 8))

    def text():
        return Text()

    def double():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2)).double()
""")


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(FACTORY)
    return path


def run(*args):
    return runner.invoke(app, ["audit", *map(str, args)])


def assert_clean_error(res, out_dir, *words):
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in res.output
    for w in words:
        assert w in err, err
    assert not (out_dir / "results.json").exists()


def test_builtin_json_shape_and_outputs(tmp_path):
    res = run("cnn-bn", "--json", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert set(d) >= {"biases", "bias_params", "total_params", "traced"}
    assert d["traced"] is True
    for b in d["biases"]:
        assert set(b) >= {"module", "type", "numel", "status", "reason"}
        assert isinstance(b["numel"], int) and b["status"] in ("redundant", "foldable", "active")
    status = {b["module"]: b["status"] for b in d["biases"] if b["type"] == "Conv2d"}
    assert status == {"0": "redundant", "4": "redundant"}
    assert d["bias_params"] == sum(b["numel"] for b in d["biases"])
    assert d["total_params"] == sum(p.numel() for p in build_model("cnn-bn").parameters())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["schema"] == "biaslab.audit/2" and saved["biases"] == d["biases"]
    assert (tmp_path / "audit_biases.png").is_file() and (tmp_path / "report.html").is_file()


def test_factory_with_random_data_table_and_contribution_figure(factory, tmp_path):
    res = run(f"{factory}:make", "--input-shape", "2,3,8,8", "--data", "random", "--samples", "16", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert "Biases of" in res.stdout and "redundant" in res.stdout
    d = json.loads((tmp_path / "results.json").read_text())
    contrib = {c["param"]: c for c in d["contributions"]}
    assert contrib["0.bias"]["output_change"] < 1e-5  # redundant: zeroing it (with correction) changes nothing
    assert contrib["3.bias"]["relu_flips"] > 0 and contrib["7.bias"]["output_change"] > 0
    assert (tmp_path / "audit_contributions.png").is_file()


def test_contributions_match_a_direct_computation():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    X = torch.randn(50, 3)
    y = torch.randint(0, 2, (50,))
    contribs, acc = bias_contributions(model, find_biases(model, X[:2]), X, y, batch_size=16)
    with torch.no_grad():
        wx = X @ model[0].weight.T
        b = model[0].bias.detach().clone()
        out = model(X)
        model[0].bias.zero_()
        zeroed = model(X)
        model[0].bias.copy_(b)
    c = contribs[0]
    assert c.bias_to_signal == pytest.approx(float((b.expand_as(wx)).norm() / wx.norm()), rel=1e-5)
    assert c.relu_flips == pytest.approx(float(((wx + b > 0) != (wx > 0)).double().mean()))
    assert c.output_change == pytest.approx(float((zeroed - out).norm() / out.norm()), rel=1e-5)
    assert acc == pytest.approx(float((out.argmax(1) == y).double().mean()))
    assert contribs[1].relu_flips is None  # the head feeds no ReLU


def test_digits_data_reports_accuracy():
    res = run_audit("mlp", data="digits", samples=64)
    assert res.n_samples == 64 and 0.0 <= res.baseline_accuracy <= 1.0
    assert all(c.accuracy_change is not None for c in res.contributions)


def test_fix_and_fold_write_a_loadable_checked_state_dict(tmp_path):
    out_pt = tmp_path / "fixed.pt"
    res = run("cnn-bn", "--fix", out_pt, "--fold", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "load_fixed" in res.stdout
    fix = json.loads((tmp_path / "o" / "results.json").read_text())["fix"]
    assert fix["removed"] == ["0.bias", "4.bias"] and fix["folded"] == ["1", "5"]
    assert {(p["what"], p["mode"], p["dtype"]) for p in fix["checks"]} == {
        ("biases removed", "train", "float32"), ("biases removed", "eval", "float32"),
        ("folded", "eval", "float32"), ("folded", "eval", "float64")}
    assert all(p["max_rel_diff"] <= p["tolerance"] for p in fix["checks"])
    torch.manual_seed(0)
    original = build_model("cnn-bn").eval()
    torch.manual_seed(1)
    fresh = load_fixed(build_model("cnn-bn"), out_pt).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(fresh(x), original(x), atol=1e-5)
    # conv biases removed (48) + BatchNorm γ and β folded away (96) − the new biases of the folded convs (48)
    assert fix["params_before"] - fix["params_after"] == 48 + 96 - 48


def test_checkpoint_with_arch(tmp_path):
    torch.manual_seed(3)
    ckpt = tmp_path / "w.pt"
    torch.save(build_model("mlp").state_dict(), ckpt)
    res = run(ckpt, "--arch", "mlp", "--json", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["initial_weights"] is False
    # the checkpoint's weights, not a fresh initialisation, are audited
    assert d["biases"][0]["abs_mean"] == pytest.approx(float(torch.load(ckpt)["1.bias"].abs().mean()))


def test_untraceable_factory_is_audited_with_a_warning(factory, tmp_path):
    res = run(f"{factory}:branchy", "--input-shape", "2,3,8,8", "--json", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["traced"] is True and d["graph"] == "recorded"
    assert any("recorded from 3 forward passes" in w for w in d["warnings"])
    assert {b["param"]: b["status"] for b in d["biases"]}["conv.bias"] == "redundant"


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickled_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"0.weight": Payload(str(marker))}, evil)
    assert not marker.exists()
    res = run(evil, "--arch", "cnn-bn", "--out", tmp_path / "o")
    assert_clean_error(res, tmp_path / "o", "refusing to load")
    assert not marker.exists()


def test_state_dict_mismatch_lists_the_keys(tmp_path):
    state = build_model("cnn-bn").state_dict()
    state.pop("0.weight")
    state["extra.weight"] = torch.zeros(1)
    state["9.weight"] = torch.zeros(3, 3)
    ckpt = tmp_path / "bad.pt"
    torch.save(state, ckpt)
    res = run(ckpt, "--arch", "cnn-bn", "--out", tmp_path / "o")
    assert_clean_error(res, tmp_path / "o", "missing: 0.weight", "unexpected: extra.weight", "9.weight (3, 3)")


@pytest.mark.parametrize("args, words", [
    (["{f}:broken"], ["raised RuntimeError", "weights server unreachable"]),
    (["{f}:not_a_model"], ["returned a int", "not a torch.nn.Module"]),
    (["{f}:missing_fn"], ["no attribute 'missing_fn'"]),
    (["{f}:make"], ["--input-shape"]),
    (["{f}:make", "--input-shape", "2,5,8,8"], ["fails on an example input of shape (2, 5, 8, 8)"]),
    (["{f}:make", "--input-shape", "2,x,8"], ["--input-shape must be", "positive whole numbers"]),
    (["nonexistent_model"], ["unknown target"]),
    (["weights.pt"], ["pass --arch"]),
    (["cnn-bn", "--fold"], ["--fold needs --fix"]),
    (["cnn-bn", "--fix", "{d}"], ["cannot write --fix"]),
    (["cnn-bn", "--samples", "0", "--data", "random"], ["--samples"]),
    (["cnn-bn", "--samples", "1e12", "--data", "random"], ["--samples must be between 1 and 100,000", "1e12"]),
    (["cnn-bn", "--samples", "many"], ["--samples must be a whole number"]),
    (["{f}:make", "--input-shape", "2,1,1e6,1e6"], ["--input-shape 2,1,1e6,1e6 has 2e+12 elements", "limit"]),
    (["cnn-bn", "--fix", "/dev/null"], ["--fix /dev/null exists and is not a regular file"]),
])
def test_bad_input_is_one_line_and_exit_2(factory, tmp_path, args, words):
    res = run(*[a.format(f=factory, d=tmp_path) for a in args], "--out", tmp_path / "o")
    assert_clean_error(res, tmp_path / "o", *words)


def test_help_warns_that_factories_run_code():
    res = runner.invoke(app, ["audit", "--help"])
    assert res.exit_code == 0 and "RUNS" in res.output and "weights_only" in res.output


def test_samples_and_shape_errors_come_before_any_progress(factory, tmp_path, monkeypatch):
    """Bad input is refused before a model is built or a progress line printed."""
    import biaslab.experiments.audit.run as run_module

    monkeypatch.setattr(run_module, "build_target", lambda *a, **k: pytest.fail("built a model"))
    for args in (["--samples", "1e12", "--data", "random"], ["--fix", "/dev/null"]):
        res = run("cnn-bn", *args, "--out", tmp_path / "o")
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content, name", [(b"\x89PNG\r\n\x1a\n" + bytes(64), "img.png"),
                                           (b'{"a": 1}', "w.json"), (b'{"a": 1}', "w.pt")])
def test_a_file_that_is_not_a_checkpoint_is_named_as_such(tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    res = run(path, "--arch", "cnn-bn", "--out", tmp_path / "o")
    assert_clean_error(res, tmp_path / "o", "is not a PyTorch checkpoint")


def test_pickled_model_error_has_no_ansi_codes_and_ends_a_sentence(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(build_model("cnn-bn"), path)
    res = run(path, "--arch", "cnn-bn", "--out", tmp_path / "o")
    assert_clean_error(res, tmp_path / "o", "refusing to load", "torch.nn.modules.container.Sequential")
    err = res.stderr.strip()
    assert "\x1b" not in err and err.endswith("try again")


def test_float64_models_are_audited_and_fixed_in_float64(factory, tmp_path):
    res = run(f"{factory}:double", "--input-shape", "2,3,6,6", "--fix", tmp_path / "f.pt", "--fold", "--json",
              "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert {b["param"]: b["status"] for b in d["biases"]}["0.bias"] == "redundant"
    assert {c["dtype"] for c in d["fix"]["checks"]} == {"float64"}
    assert all(c["tolerance"] == 1e-9 and c["max_rel_diff"] <= 1e-9 for c in d["fix"]["checks"])


def test_fix_is_refused_when_removal_would_change_the_function(tmp_path, monkeypatch):
    """The equivalence gate: a (wrong) redundant verdict on a bias that matters must not be written."""
    import biaslab.experiments.audit.run as run_module

    def wrong(model, example, inputs=None):
        findings, source = analyse(model, example, inputs)
        for f in findings:
            if f.param == "9.bias":  # the head's bias reaches the output: removing it changes the logits
                f.status = "redundant"
        return findings, source

    monkeypatch.setattr(run_module, "analyse", wrong)
    out_pt = tmp_path / "fixed.pt"
    res = run("cnn-bn", "--fix", out_pt, "--out", tmp_path / "o")
    assert_clean_error(res, tmp_path / "o", "differs from the original", "tolerance")
    assert not out_pt.exists()


def test_claims_one_per_bias_and_no_proof_wording(tmp_path):
    res = run("cnn-bn", "--fix", tmp_path / "f.pt", "--data", "random", "--samples", "8", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [c["id"] for c in d["claims"]] == [b["param"] for b in d["biases"]]
    for c, b in zip(d["claims"], d["biases"]):
        assert c["evidence"]["status"] == b["status"] and b["reason"] in c["text"]
        assert c["holds"] is (b["status"] != "active")
    report = (tmp_path / "o" / "report.html").read_text()
    help_text = runner.invoke(app, ["audit", "--help"]).output
    for text in (res.stdout, report, help_text):
        assert "prov" not in text.lower() and "proof" not in text.lower()
    text = summary(load_results(tmp_path / "o"))
    assert "biases removed: checked on 3 inputs in train mode (float32), max relative difference" in text
    assert "checked on 4 inputs in eval mode (float32)" in text and "tolerance 0.0001" in text
    assert "can be large next to W·x" in report


def test_zero_now_note_only_where_biases_are_zero(tmp_path):
    res = run("mlp", "--json", "--out", tmp_path / "a")
    d = json.loads(res.stdout)
    assert not any(b["zero_now"] for b in d["biases"])
    assert "zero now" not in run("mlp", "--out", tmp_path / "b").stdout
    res = run("cnn-bn", "--out", tmp_path / "c")
    assert "exactly zero now" in res.stdout and "BatchNorm shifts" not in res.stdout


@pytest.mark.parametrize("fold", [False, True])
def test_fixed_file_is_audited_again_with_the_removed_biases_gone(tmp_path, fold):
    out_pt = tmp_path / "fixed.pt"
    assert run("cnn-bn", "--fix", out_pt, *(["--fold"] if fold else []), "--out", tmp_path / "a").exit_code == 0
    res = run(out_pt, "--arch", "cnn-bn", "--json", "--out", tmp_path / "b")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    status = {b["param"]: b["status"] for b in d["biases"]}
    assert any("adapted" in w for w in d["warnings"]) and status["9.bias"] == "active"
    if fold:  # BatchNorms folded away; the convs carry their shifts now
        assert not any(p.startswith(("1.", "5.")) for p in status) and status["0.bias"] == "active"
    else:  # the redundant conv biases are gone, nothing else is
        assert "0.bias" not in status and "4.bias" not in status and status["1.bias"] == "foldable"


def test_verify_confirms_every_redundant_bias(tmp_path):
    res = run("cnn-bn", "--verify", "--json", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["verified"] is True
    for b in d["biases"]:
        assert b["verified"] is (True if b["status"] == "redundant" else None)
    assert "verified" in run("cnn-bn", "--verify", "--out", tmp_path / "p").stdout


def test_verify_catches_a_wrong_redundant_verdict():
    from biaslab.experiments.audit.verify import verify_findings

    torch.manual_seed(0)
    model = build_model("cnn-bn")
    x = torch.randn(2, 1, 8, 8)
    findings = find_biases(model, x)
    for f in findings:
        if f.param == "9.bias":
            f.status = "redundant"
    verified = {f.param: f.verified for f in verify_findings(model, findings, x)}
    assert verified == {"0.bias": True, "1.bias": None, "4.bias": True, "5.bias": None, "9.bias": False}


def test_input_ids_feed_a_text_factory_random_token_ids(factory, tmp_path):
    res = run(f"{factory}:text", "--input-ids", "3,7", "--json", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["input_shape"] == [3, 7] and d["params"]["input_ids"] is True
    assert {b["param"]: b["status"] for b in d["biases"]}["fc.bias"] == "redundant"
