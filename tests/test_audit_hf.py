"""Hugging Face models built offline from tiny configurations (random weights, nothing downloaded):
the graph is recorded from one forward pass, attention is analysed, and each verdict is checked
against the perturbation ground truth."""

import json

import pytest
import torch
from typer.testing import CliRunner

from biaslab.experiments.audit import run_audit
from biaslab.experiments.audit.target import build_target
from biaslab.experiments.audit.verify import VERIFY_TOLERANCE, output_moves
from biaslab.cli import app

pytest.importorskip("transformers")

EXPECTED = {  # (param suffix, part) -> status, in every layer
    "hf:bert": {("attention.self.key.bias", None): "redundant", ("attention.self.value.bias", None): "foldable",
                ("attention.self.query.bias", None): "active"},
    "hf:gpt2": {("attn.c_attn.bias", "key"): "redundant", ("attn.c_attn.bias", "query"): "active"},
    "hf:vit": {("attention.k_proj.bias", None): "redundant", ("attention.v_proj.bias", None): "foldable",
               ("attention.q_proj.bias", None): "active"},
    # rotary embeddings rotate the key bias by position: softmax does not remove it
    "hf:llama": {("self_attn.k_proj.bias", None): "active", ("self_attn.q_proj.bias", None): "active"},
}


@pytest.mark.parametrize("target", list(EXPECTED))
def test_attention_biases_of_hugging_face_models(target):
    res = run_audit(target, seed=0)
    assert res.graph == "recorded" and res.traced
    found = {}
    for f in res.biases:
        for (suffix, part), status in EXPECTED[target].items():
            if f.param.endswith(suffix) and f.part == part:
                found.setdefault((suffix, part), []).append(f)
                assert f.status == status, (f.label, f.reason)
    assert set(found) == set(EXPECTED[target]) and all(len(v) == 2 for v in found.values())  # two layers
    torch.manual_seed(0)
    model = build_target(target)
    x = torch.randint(0, 128, (2, 8)) if target != "hf:vit" else torch.randn(2, 3, 16, 16)
    moves = output_moves(model, x)
    for f in res.biases:
        moved = moves(f.param, slice(*f.span) if f.span else None) > VERIFY_TOLERANCE
        assert moved is (f.status != "redundant"), (f.label, f.status)


def test_cli_audits_and_folds_a_bert_config(tmp_path):
    res = CliRunner().invoke(app, ["audit", "hf:bert", "--config", '{"num_hidden_layers": 1}', "--input-ids", "3,5",
                                   "--fix", str(tmp_path / "bert.pt"), "--fold", "--json",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["input_shape"] == [3, 5] and d["params"]["config"] == '{"num_hidden_layers": 1}'
    assert "encoder.layer.0.attention.self.value.bias → encoder.layer.0.attention.output.dense" in d["fix"]["folded"]
    assert d["fix"]["removed"] == ["encoder.layer.0.attention.self.key.bias"]
    assert all(c["max_rel_diff"] <= c["tolerance"] for c in d["fix"]["checks"])


@pytest.mark.parametrize("args, words", [
    (["hf:nope"], ["unknown Hugging Face model type", "hf:bert"]),
    (["hf:bert", "--config", "{oops"], ["--config must be a JSON object"]),
    (["cnn-bn", "--config", "{}"], ["--config applies to Hugging Face models only"]),
    (["hf:bert", "--input-ids", "2"], ["--input-ids must be at least 2"]),
    (["hf:bert", "--input-ids", "2,100"], ["100 tokens", "max_position_embeddings = 64", "--config"]),
    (["hf:bert", "--config", '{"num_hidden_layers": -1}'], ["num_hidden_layers must be an integer from 1 to 256",
                                                            "got -1"]),
    (["hf:bert", "--config", '{"num_hidden_layers": 0}'], ["num_hidden_layers must be an integer from 1", "got 0"]),
    (["hf:bert", "--config", '{"num_attention_heads": 1000000}'], ["num_attention_heads", "1 to 256"]),
    (["hf:bert", "--config", '{"hidden_size": 32.5}'], ["hidden_size must be an integer", "got 32.5"]),
    (["hf:bert", "--config", '{"vocab_size": true}'], ["vocab_size must be an integer", "got true"]),
    (["hf:gpt2", "--config", '{"n_embd": 0}'], ["n_embd must be an integer from 1 to 65536"]),
    (["hf:distilbert", "--config", '{"n_layers": 100000}'], ["n_layers must be an integer from 1 to 256"]),
    (["hf:vit", "--config", '{"patch_size": -4}'], ["patch_size must be an integer"]),
])
def test_bad_hugging_face_input_is_one_line(tmp_path, args, words):
    res = CliRunner().invoke(app, ["audit", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert all(w in res.stderr for w in words), res.stderr


def test_gpt2_value_bias_folds_into_its_conv1d_projection():
    from biaslab.experiments.audit import fold_biases

    torch.manual_seed(0)
    model = build_target("hf:gpt2").eval()
    with torch.no_grad():  # Hugging Face starts biases at zero: give them values, so the fold has work to do
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    x = torch.randint(0, 128, (2, 8))
    folded, names, checks = fold_biases(model, x)
    assert "h.0.attn.c_attn.bias[value] → h.0.attn.c_proj" in names
    assert all(c.passed for c in checks) and {c.dtype for c in checks} == {"float32", "float64"}
    assert min(c.max_rel_diff for c in checks if c.dtype == "float64") < 1e-10
    with torch.no_grad():
        assert torch.allclose(folded(x).last_hidden_state, model(x).last_hidden_state, atol=1e-5)
