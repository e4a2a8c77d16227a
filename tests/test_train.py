from pathlib import Path

import numpy as np
import pytest
import torch

from biaslab.data.datasets import load_dataset
from biaslab.infra.io import BiaslabError
from biaslab.nets.models import init_model
from biaslab.nets.train import FuncStack, LoopStack, ModelStack, TrainConfig, batch_order, train_batched, train_model


@pytest.fixture(scope="module")
def tiny_digits():
    ds = load_dataset("digits", max_train=40)  # batches of 32 and 8: the last one is partial
    ds.X_test, ds.y_test = ds.X_test[:40], ds.y_test[:40]
    return ds


CFG = TrainConfig(epochs=2, lr=3e-3, batch_size=32)
#: Each kind of missing conv / head bias, two seeds (head-no-bias: SOME_RUNS below).
RUNS = [("with-bias", 0), ("conv-no-bias", 0), ("no-bias", 1)]
#: Enough to cover each kind of missing bias and two seeds, in one batch.
SOME_RUNS = [("with-bias", 0), ("no-bias", 0), ("head-no-bias", 1), ("with-bias", 1)]


def _check_equivalent(name, ds, runs, dtype=torch.float64, atol=1e-9):
    stack, hists = train_batched(name, ds, runs, CFG, dtype=dtype)
    states = stack.state_dicts()
    for i, (variant, seed) in enumerate(runs):
        model = init_model(name, variant, seed, ds.in_shape, ds.n_classes)
        hist = train_model(model, ds, seed, CFG, dtype=dtype)
        ref = model.state_dict()
        assert set(states[i]) == set(ref), f"{variant}: batched model has other tensors"
        for key, value in ref.items():
            torch.testing.assert_close(states[i][key], value, atol=atol, rtol=0, msg=f"{variant} {key}")
        assert hists[i].final["test_acc"] == hist.final["test_acc"]
        assert hists[i].final["train_acc"] == hist.final["train_acc"]
        assert hists[i].test_acc == hist.test_acc
        np.testing.assert_allclose(hists[i].train_loss, hist.train_loss, rtol=1e-6)


@pytest.mark.parametrize("name,runs", [
    ("linear", SOME_RUNS),
    ("mlp", SOME_RUNS),
    ("cnn-bn", [("with-bias", 0), ("no-bias", 1)]),  # float64 grouped convolutions are slow on CPUs
])
def test_batched_training_equals_training_each_model_alone(name, runs, tiny_digits):
    """In float64 the batched run reproduces every tensor of every single run to 1e-9.

    (In float32 the rounding of two implementations differs by ~1e-7, and Adam rescales the
    near-zero gradients of a few weights — dead units, the conv bias that BatchNorm cancels —
    into steps of size ~lr, so some of those weights wander apart while the function does not.)
    """
    _check_equivalent(name, tiny_digits, runs)


def test_batched_cnn_equals_training_each_variant_and_seed_alone(tiny_digits):
    _check_equivalent("cnn", tiny_digits, RUNS)


def test_batched_cnn_in_float32_matches_to_float_tolerance(tiny_digits):
    _check_equivalent("cnn", tiny_digits, [("with-bias", 0), ("no-bias", 0)], torch.float32, atol=1e-4)


def test_missing_biases_stay_exactly_zero_in_the_stack(tiny_digits):
    stack, _ = train_batched("cnn", tiny_digits, [("with-bias", 0), ("no-bias", 0)], CFG)
    assert torch.all(stack.params["0.bias"][1] == 0) and torch.all(stack.params["3.bias"][1] == 0) \
        and torch.all(stack.params["7.bias"][1] == 0)
    assert torch.any(stack.params["0.bias"][0] != 0)
    assert "0.bias" not in stack.state_dicts()[1] and "0.bias" in stack.state_dicts()[0]


def test_same_seed_same_batches_across_variants_and_epochs_differ():
    a, b = batch_order(100, 32, seed=5, epoch=0), batch_order(100, 32, seed=5, epoch=0)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert [len(x) for x in a] == [32, 32, 32, 4]
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    assert not torch.equal(torch.cat(a), torch.cat(batch_order(100, 32, seed=6, epoch=0)))
    assert not torch.equal(torch.cat(a), torch.cat(batch_order(100, 32, seed=5, epoch=1)))


def test_stack_evaluate_matches_each_model():
    models = [init_model("mlp", "with-bias", s, (1, 8, 8)) for s in range(3)]
    stack = ModelStack(models)
    X, y = torch.randn(50, 1, 8, 8), torch.randint(0, 10, (50,))
    acc, loss = stack.evaluate(X, y)
    for m, model in enumerate(models):
        with torch.no_grad():
            out = model.eval()(X)
        assert acc[m] == pytest.approx(float((out.argmax(1) == y).float().mean()))
        assert loss[m] == pytest.approx(float(torch.nn.functional.cross_entropy(out, y)), rel=1e-5)


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"lr": 0.0}, {"batch_size": 0}, {"weight_decay": -1.0}])
def test_config_validation(kwargs):
    with pytest.raises(BiaslabError):
        TrainConfig(**kwargs)


# ---------------------------------------------------------------- any model, batched with torch.func

USER = Path(__file__).parent / "models" / "user_models.py"


def _user(factory):
    from biaslab.experiments.ablate.engines import ModelSpec

    return ModelSpec(f"{USER}:{factory}")


@pytest.mark.parametrize("factory,stack_type", [
    ("residual_mlp", FuncStack),    # residual blocks + LayerNorm
    ("attention", FuncStack),       # nn.MultiheadAttention (packed in_proj_bias) + LayerNorm
    ("conv_norms", FuncStack),      # GroupNorm and BatchNorm (running statistics per model)
    ("functional", FuncStack),      # bare parameters, F.linear in forward
    ("gru", FuncStack),             # nn.GRU runs as biaslab.nets.recurrent's plain-op twin
    ("lstm", FuncStack),            # nn.LSTM likewise
    ("lstm_proj", LoopStack),       # proj_size is not rewritten: no vmap rule for aten::lstm, the loop
    ("data_dependent", LoopStack),  # Python control flow on a tensor: the loop fallback
])
def test_user_models_batched_equal_training_each_alone_in_float64(factory, stack_type, tiny_digits):
    from biaslab.experiments.ablate.variants import variant_mask

    spec = _user(factory)
    shape, k = tiny_digits.in_shape, tiny_digits.n_classes
    probe = spec.build(0, shape, k)
    masks = {v: variant_mask(probe, v) for v in ("with-bias", "no-bias")}
    assert not all(masks["no-bias"].values())
    runs = [("with-bias", 0), ("no-bias", 0), ("no-bias", 1)]
    stack, hists = train_batched(lambda s: spec.build(s, shape, k), tiny_digits, runs, CFG, dtype=torch.float64,
                                 masks=masks)
    assert isinstance(stack, stack_type) and (stack.fallback is None) == (stack_type is FuncStack)
    if stack_type is LoopStack:  # the one-line note says which model and why
        assert stack.fallback.startswith(f"vmap cannot batch {type(probe).__name__} (") and "\n" not in stack.fallback
        if factory == "lstm_proj":  # the cause in the user's terms, not vmap's internal error
            assert "recurrent layer rnn (LSTM with proj_size = 8) has no plain-op twin" in stack.fallback
    states = stack.state_dicts()
    for i, (variant, seed) in enumerate(runs):
        model = spec.build(seed, shape, k)
        hist = train_model(model, tiny_digits, seed, CFG, dtype=torch.float64, mask=masks[variant])
        ref = {n: v for n, v in model.state_dict().items() if masks[variant].get(n, True)}
        assert set(states[i]) == set(ref)
        for key, value in ref.items():
            torch.testing.assert_close(states[i][key], value, atol=1e-9, rtol=0, msg=f"{factory} {variant} {key}")
        assert hists[i].test_acc == hist.test_acc
        np.testing.assert_allclose(hists[i].train_loss, hist.train_loss, rtol=1e-9)
    dropped = [n for n, kept in masks["no-bias"].items() if not kept]  # the last run is no-bias
    assert all(torch.all(model.state_dict()[n] == 0) for n in dropped)


@pytest.mark.parametrize("optimizer,momentum,decay_bias", [("sgd", 0.9, False), ("adam", 0.0, True)])
def test_optimizers_and_bias_decay_batched_equal_alone(optimizer, momentum, decay_bias, tiny_digits):
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=32, optimizer=optimizer, momentum=momentum,
                      weight_decay=0.1, decay_bias=decay_bias)
    runs = [("with-bias", 0), ("head-no-bias", 0)]
    stack, _ = train_batched("mlp", tiny_digits, runs, cfg, dtype=torch.float64)
    for i, (variant, seed) in enumerate(runs):
        model = init_model("mlp", variant, seed, tiny_digits.in_shape, tiny_digits.n_classes)
        train_model(model, tiny_digits, seed, cfg, dtype=torch.float64)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(stack.state_dicts()[i][key], value, atol=1e-9, rtol=0)


def test_no_decay_bias_leaves_biases_undecayed():
    model = torch.nn.Linear(3, 2)
    opt = TrainConfig(weight_decay=0.5, decay_bias=False, optimizer="sgd").optimizer_for(list(model.named_parameters()))
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay[id(model.weight)] == 0.5 and decay[id(model.bias)] == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("optimizer,momentum", [("adam", 0.0), ("sgd", 0.9)])
def test_multi_tensor_optimizer_step_is_the_loop_bit_for_bit(optimizer, momentum, dtype):
    """train_batched steps with foreach=True, train_model with torch's CPU default (a loop over tensors)."""
    cfg = TrainConfig(lr=3e-3, optimizer=optimizer, momentum=momentum, weight_decay=0.01, decay_bias=False)
    gen = torch.Generator().manual_seed(0)
    start = {n: torch.randn(s, generator=gen, dtype=dtype) for n, s in
             [("0.weight", (3, 16, 9)), ("0.bias", (3, 16)), ("2.weight", (3, 10, 32)), ("2.bias", (3, 10))]}
    grads = [{n: torch.randn(t.shape, generator=gen, dtype=dtype) * 10.0 ** -(i % 7) for n, t in start.items()}
             for i in range(25)]
    final = []
    for foreach in (False, True):
        named = [(n, t.clone().requires_grad_(True)) for n, t in start.items()]
        opt = cfg.optimizer_for(named, foreach=foreach)
        assert opt.defaults["foreach"] is foreach
        for g in grads:
            for n, p in named:
                p.grad = g[n].clone()
            opt.step()
        final.append([p.detach() for _, p in named])
    assert all(torch.equal(a, b) for a, b in zip(*final))
    assert not torch.equal(final[0][0], start["0.weight"])
