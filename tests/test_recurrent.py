"""The plain-op twins of nn.RNN/GRU/LSTM compute what the nn modules compute, also under vmap."""

import itertools

import pytest
import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.utils.rnn import pack_sequence

from biaslab.nets.recurrent import PlainGRU, PlainLSTM, PlainRNN, plain_recurrent, plain_twin

F64 = torch.float64
#: nn class and keyword arguments of each kind of recurrent layer.
KINDS = {
    "rnn-tanh": (nn.RNN, {}),
    "rnn-relu": (nn.RNN, {"nonlinearity": "relu"}),
    "gru": (nn.GRU, {}),
    "lstm": (nn.LSTM, {}),
}
IN, HID, L, N = 3, 5, 4, 2  # input size ≠ hidden size, so a swapped matrix cannot go unnoticed


def _module(kind, seed=0, **options):
    cls, kwargs = KINDS[kind]
    torch.manual_seed(seed)
    return cls(IN, HID, dtype=F64, **kwargs, **options)


def _twin(module):
    twin = plain_twin(module)
    twin.load_state_dict(module.state_dict())
    return twin


def _inputs(module, unbatched, with_hx, seed=1):
    """Input and initial state (None, h0, or (h0, c0)) for ``module``, requiring gradients."""
    g = torch.Generator().manual_seed(seed)
    shape = (L, IN) if unbatched else (N, L, IN) if module.batch_first else (L, N, IN)
    x = torch.randn(shape, generator=g, dtype=F64, requires_grad=True)
    if not with_hx:
        return x, None
    hshape = (module.num_layers * (2 if module.bidirectional else 1), *(() if unbatched else (N,)), HID)
    states = [torch.randn(hshape, generator=g, dtype=F64, requires_grad=True)
              for _ in range(2 if isinstance(module, nn.LSTM) else 1)]
    return x, tuple(states) if len(states) == 2 else states[0]


def _flat(result):
    """(output, h_n) or (output, (h_n, c_n)) as a flat list of tensors."""
    output, hidden = result
    return [output, *(hidden if isinstance(hidden, tuple) else (hidden,))]


def _weighted_sum(tensors, seed=2):
    """A loss that weights every element differently, so each output element's gradient counts."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in tensors)


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first,bias,with_hx,unbatched", [
    (kind, *options) for kind in KINDS for options in itertools.product((1, 2), *[(False, True)] * 5)
])
def test_twin_forward_and_gradients_equal_the_nn_module(kind, num_layers, bidirectional, batch_first, bias,
                                                        with_hx, unbatched):
    module = _module(kind, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    twin = _twin(module)
    assert type(twin).__bases__[-1] is type(module)
    assert [(n, p.shape) for n, p in twin.named_parameters()] == [(n, p.shape) for n, p in module.named_parameters()]
    x, hx = _inputs(module, unbatched, with_hx)
    expected, got = _flat(module(x, hx)), _flat(twin(x, hx))
    assert [t.shape for t in got] == [t.shape for t in expected]
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-12, rtol=0)
    leaves = [x, *([] if hx is None else hx if isinstance(hx, tuple) else [hx])]
    grads = torch.autograd.grad(_weighted_sum(expected), [*module.parameters(), *leaves])
    twin_grads = torch.autograd.grad(_weighted_sum(got), [*twin.parameters(), *leaves])
    for e, g in zip(grads, twin_grads):
        torch.testing.assert_close(g, e, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("options,unbatched,with_hx", [
    ({"num_layers": 2, "bidirectional": True, "batch_first": True}, False, True),
    ({"bias": False}, True, False),
])
def test_vmap_over_stacked_weights_equals_each_model_alone(kind, options, unbatched, with_hx):
    models = [_module(kind, seed, **options) for seed in range(3)]
    base = plain_twin(models[0]).to("meta")
    params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_(True)
              for n, _ in models[0].named_parameters()}
    inputs = [_inputs(models[0], unbatched, with_hx, seed=10 + i) for i in range(3)]
    xs = torch.stack([x.detach() for x, _ in inputs])
    if with_hx:
        hxs = tuple(torch.stack(s) for s in zip(*[h if isinstance(h, tuple) else (h,) for _, h in inputs]))
        hxs = hxs if len(hxs) == 2 else hxs[0]
        out = vmap(lambda p, x, h: functional_call(base, p, (x, h)))(params, xs, hxs)
    else:
        out = vmap(lambda p, x: functional_call(base, p, (x,)))(params, xs)
    out = _flat(out)
    sum(_weighted_sum([o[i] for o in out]) for i in range(3)).backward()  # each model's loss alone, summed
    for i, (model, (x, hx)) in enumerate(zip(models, inputs)):
        alone = _flat(model(x.detach(), None if hx is None else
                            tuple(h.detach() for h in hx) if isinstance(hx, tuple) else hx.detach()))
        for a, o in zip(alone, out):
            torch.testing.assert_close(o[i], a, atol=1e-12, rtol=0)
        _weighted_sum(alone).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(params[name].grad[i], p.grad, atol=1e-12, rtol=0, msg=name)


def test_packed_sequences_run_the_nn_modules_own_forward():
    module = _module("gru")
    twin = _twin(module)
    packed = pack_sequence([torch.randn(4, IN, dtype=F64), torch.randn(2, IN, dtype=F64)])
    (out, _), (twin_out, _) = module(packed), twin(packed)
    torch.testing.assert_close(twin_out.data, out.data, atol=0, rtol=0)


@pytest.mark.parametrize("make,hx", [
    (lambda: _module("gru"), torch.zeros(1, HID, dtype=F64)),                                    # 2-D hx, 3-D input
    (lambda: _module("gru", num_layers=2), torch.zeros(1, N, HID, dtype=F64)),                   # too few layers
    (lambda: _module("lstm"), (torch.zeros(1, N, HID, dtype=F64), torch.zeros(1, N, 4, dtype=F64))),  # bad c0
])
def test_twin_rejects_what_the_nn_module_rejects(make, hx):
    module = make()
    x = torch.randn(L, N, IN, dtype=F64)
    with pytest.raises(RuntimeError):
        module(x, hx)
    with pytest.raises(RuntimeError):
        _twin(module)(x, hx)
    with pytest.raises(ValueError, match="dtype"):
        _twin(module)(x.float())


class _Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(IN, IN), nn.LSTM(IN, HID))
        self.shared = nn.GRU(HID, HID)
        self.again = self.shared
        self.projected = nn.LSTM(HID, HID, proj_size=2)
        self.dropped = nn.GRU(HID, HID, num_layers=2, dropout=0.5)
        self.custom = type("MyGRU", (nn.GRU,), {})(HID, HID)


def test_plain_recurrent_swaps_supported_layers_anywhere_and_leaves_the_rest():
    model = _Wrapped()
    names = [(n, p.shape) for n, p in model.named_parameters()]
    swapped = plain_recurrent(model)
    assert swapped is model
    assert type(model.encoder[1]) is PlainLSTM and type(model.shared) is PlainGRU and model.again is model.shared
    assert type(model.projected) is nn.LSTM and type(model.dropped) is nn.GRU  # not reproduced: kept
    assert type(model.custom).__name__ == "MyGRU"  # a subclass may have its own forward
    assert [(n, p.shape) for n, p in model.named_parameters()] == names
    assert type(plain_recurrent(nn.RNN(IN, HID, nonlinearity="relu"))) is PlainRNN
    assert plain_recurrent(nn.RNN(IN, HID, nonlinearity="relu")).nonlinearity == "relu"
    with pytest.warns(UserWarning, match="dropout"):  # nn's warning: no layer to drop between
        assert type(plain_recurrent(nn.GRU(IN, HID, num_layers=1, dropout=0.5))) is PlainGRU
