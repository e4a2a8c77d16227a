"""``nn.RNN``, ``nn.GRU`` and ``nn.LSTM`` written in plain tensor ops, so that vmap can batch them.

:func:`torch.func.vmap` has no batching rule for the fused recurrent kernels (``aten::gru``,
``aten::lstm``, ``aten::rnn_tanh``), so a user's model with a GRU could only train in a loop.
:class:`PlainRNN`, :class:`PlainGRU` and :class:`PlainLSTM` subclass the ``nn`` modules: the
same constructor, the same parameters (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``, ``_reverse`` for the second direction), the same argument checks and the same
return values; only ``forward`` differs. It follows the equations of PyTorch's documentation
one time step after another, with matrix products and elementwise ops that vmap batches:

- RNN: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or ``relu``);
- GRU, gates ``r, z, n`` in that order: ``r = σ(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` alike,
  ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h' = (1 - z) ⊙ n + z ⊙ h``;
- LSTM, gates ``i, f, g, o``: ``c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)``, ``h' = σ(o) ⊙ tanh(c')``.

Layer ``k + 1`` reads the outputs of layer ``k`` (both directions concatenated); the hidden
state is indexed ``layer · directions + direction``, as in ``h_n``. :func:`plain_recurrent`
swaps them into a model. It leaves what they do not reproduce with the ``nn`` module, whose
fused kernel vmap then cannot batch: an LSTM with ``proj_size > 0``, dropout between layers;
a ``PackedSequence`` input goes to the ``nn`` module's own ``forward``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

__all__ = ["PlainRNN", "PlainGRU", "PlainLSTM", "twinless", "plain_twin", "plain_recurrent"]

State = tuple[torch.Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM


def _rnn_tanh(gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
    return (torch.tanh(gi + gh),)


def _rnn_relu(gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
    return (torch.relu(gi + gh),)


def _gru(gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * state[0],)


def _lstm(gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
    gates = gi + gh
    i, f, _, o = torch.sigmoid(gates).chunk(4, -1)  # one sigmoid on contiguous memory beats three on slices
    g = torch.tanh(gates.chunk(4, -1)[2])
    c = f * state[1] + i * g
    return o * torch.tanh(c), c


#: One time step of each ``mode`` of ``nn.RNNBase``: (input gates, hidden gates, state) -> new state.
CELLS = {"RNN_TANH": _rnn_tanh, "RNN_RELU": _rnn_relu, "GRU": _gru, "LSTM": _lstm}


class _PlainForward:
    """The ``forward`` of :class:`PlainRNN`, :class:`PlainGRU` and :class:`PlainLSTM`."""

    def forward(self, input, hx=None):
        """As the ``nn`` module: ``(output, h_n)``, or ``(output, (h_n, c_n))`` for an LSTM."""
        if isinstance(input, PackedSequence):
            return super().forward(input, hx)  # the fused kernel (vmap cannot batch it: the loop runs)
        lstm = self.mode == "LSTM"
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        states = () if hx is None else tuple(hx) if lstm else (hx,)
        if any(s.dim() != input.dim() for s in states):
            raise RuntimeError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} input, hx should also be "
                               f"{input.dim()}-D")
        batch_dim = 0 if self.batch_first else 1
        if not batched:
            input, states = input.unsqueeze(batch_dim), tuple(s.unsqueeze(1) for s in states)
        if not states:
            zeros = input.new_zeros(self.num_layers * self.directions, input.size(batch_dim), self.hidden_size)
            states = (zeros, zeros) if lstm else (zeros,)
        self._update_flat_weights()  # check_input compares the input's dtype with the weights'
        self.check_forward_args(input, states if lstm else states[0], None)
        output, finals = self._layers(input.transpose(0, 1) if self.batch_first else input, states)
        output = output.transpose(0, 1) if self.batch_first else output
        if not batched:
            output, finals = output.squeeze(batch_dim), tuple(s.squeeze(1) for s in finals)
        return output, finals if lstm else finals[0]

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _layers(self, x: torch.Tensor, states: State) -> tuple[torch.Tensor, State]:
        """Every layer and direction on ``x`` (L, N, input_size) from ``states`` (layers·directions, N, H)."""
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.directions):
                k = layer * self.directions + direction
                out, final = self._direction(x, tuple(s[k] for s in states), layer, direction == 1)
                outputs.append(out)
                finals.append(final)
            x = torch.cat(outputs, -1)
        return x, tuple(torch.stack(s) for s in zip(*finals))

    def _direction(self, x: torch.Tensor, state: State, layer: int, reverse: bool) -> tuple[torch.Tensor, State]:
        """One layer in one direction: its outputs (L, N, H) and its final state."""
        suffix = f"_l{layer}{'_reverse' if reverse else ''}"
        w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        b_ih, b_hh = (getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}")) if self.bias else (None, None)
        cell = CELLS[self.mode]
        # the input's share of the gates, every time step at once; unbind (not gi[t]) keeps the
        # backward pass one stack instead of a zero-filled copy of gi per step
        steps = F.linear(x, w_ih, b_ih).unbind(0)
        outputs = []
        for gi in reversed(steps) if reverse else steps:
            state = cell(gi, F.linear(state[0], w_hh, b_hh), state)
            outputs.append(state[0])
        return torch.stack(outputs[::-1] if reverse else outputs), state


class PlainRNN(_PlainForward, nn.RNN):
    """``nn.RNN`` (tanh or relu) in plain tensor ops: same parameters, same results."""


class PlainGRU(_PlainForward, nn.GRU):
    """``nn.GRU`` in plain tensor ops: same parameters, same results."""


class PlainLSTM(_PlainForward, nn.LSTM):
    """``nn.LSTM`` (without ``proj_size``) in plain tensor ops: same parameters, same results."""


_TWINS = {nn.RNN: PlainRNN, nn.GRU: PlainGRU, nn.LSTM: PlainLSTM}


def twinless(module: nn.Module) -> str | None:
    """Why a recurrent module (``nn.RNNBase``) gets no plain twin, or None when it gets one or
    is not recurrent: a subclass (its ``forward`` may differ), ``proj_size > 0``, or dropout
    between layers."""
    if not isinstance(module, nn.RNNBase):
        return None
    if type(module) not in _TWINS:
        return f"{type(module).__name__} (a subclass of an nn recurrent layer)"
    if getattr(module, "proj_size", 0):
        return f"{type(module).__name__} with proj_size = {module.proj_size}"
    if module.dropout and module.num_layers > 1:
        return f"{type(module).__name__} with dropout between layers"
    return None


def plain_twin(module: nn.Module) -> nn.Module | None:
    """The plain twin of an ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (same hyper-parameters, dtype and
    device, freshly initialised), or None for anything else, and for what :func:`twinless` names.
    """
    cls = _TWINS.get(type(module))
    if cls is None or twinless(module) is not None:
        return None
    kwargs = {"nonlinearity": module.nonlinearity} if cls is PlainRNN else {}
    return cls(module.input_size, module.hidden_size, num_layers=module.num_layers, bias=module.bias,
               batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional,
               device=module.weight_ih_l0.device, dtype=module.weight_ih_l0.dtype, **kwargs)


def plain_recurrent(model: nn.Module) -> nn.Module:
    """``model`` with every module :func:`plain_twin` supports replaced, in place, by its twin.

    Returns the model, or the twin when ``model`` itself is an ``nn.GRU`` (etc.). Parameter
    names do not change, so weights stacked from the original models plug in unchanged.
    """
    twins: dict[int, nn.Module] = {}  # a module under two names gets one twin
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):  # named_children() skips a second name
            if child is None:
                continue
            if id(child) not in twins:
                twins[id(child)] = plain_twin(child) or child
            if twins[id(child)] is not child:
                setattr(parent, name, twins[id(child)])
    return plain_twin(model) or model
