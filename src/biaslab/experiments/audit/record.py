"""Record a model's graph from one forward pass, where torch.fx cannot trace it symbolically.

torch.fx traces with proxies: it fails on data-dependent control flow, and it keeps library layers
such as ``nn.MultiheadAttention`` whole. Here the model runs once on the example input under a
``TorchFunctionMode`` that writes every torch function and tensor method it calls into an
``fx.Graph``, with the tensors' shapes (``F.multi_head_attention_forward`` is opened up: its
inner ops are recorded). Parameters and buffers become ``get_attr`` nodes; tensors
made inside ``forward`` become constants. Attention, Hugging Face models and models with Python
control flow come out as plain functional graphs that the offset algebra (:mod:`.offsets`) reads
like any other. The graph holds the control flow taken for this input.

Library fast paths (``nn.TransformerEncoderLayer``'s fused kernel) run only without gradients,
so the pass runs with gradients enabled to record the ops they stand for.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

__all__ = ["record_graph"]

#: Calls that only read metadata or convert to Python: never part of the data flow.
_META = {"size", "dim", "numel", "stride", "is_floating_point", "is_contiguous", "data_ptr", "element_size",
         "item", "tolist", "__len__", "__bool__", "__index__", "__int__", "__float__", "__repr__", "__format__",
         "__hash__", "__contains__", "get_device", "nelement", "ndimension", "is_complex",
         "requires_grad_", "retain_grad", "__iter__", "untyped_storage", "storage_offset"}


class _Recorder(TorchFunctionMode):
    def __init__(self, names: dict[int, str], tensors: dict[str, torch.Tensor]):
        super().__init__()
        self.graph = fx.Graph()
        self.names = names
        self.tensors = tensors
        self.nodes: dict[int, tuple[torch.Tensor, fx.Node]] = {}

    def node_for(self, t: torch.Tensor) -> fx.Node:
        entry = self.nodes.get(id(t))
        if entry is not None and entry[0] is t:
            return entry[1]
        name = self.names.get(id(t))
        if name is None:
            name = f"_constant_{len(self.tensors)}"
            self.tensors[name] = t.detach()
        node = self.graph.get_attr(name)
        node.meta["shape"] = tuple(t.shape)
        self.nodes[id(t)] = (t, node)
        return node

    def bind(self, t: torch.Tensor, node: fx.Node) -> None:
        node.meta["shape"] = tuple(t.shape)
        self.nodes[id(t)] = (t, node)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.multi_head_attention_forward:
            return self._inside(func, args, kwargs)
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name == "__get__":  # a property: .shape, .dtype (metadata), .T, .mT (tensors)
            if not isinstance(out, torch.Tensor):
                return out
            name = getattr(getattr(func, "__self__", None), "__name__", "property")
        if name in _META:
            return out
        flat_in, _ = tree_flatten((args, kwargs))
        if not any(isinstance(a, torch.Tensor) for a in flat_in):
            return out
        if name == "__setitem__":  # x[i] = y changes x in place
            out = args[0]
        flat_out, _ = tree_flatten(out)
        if not any(isinstance(t, torch.Tensor) for t in flat_out):
            return out
        nodes_args, nodes_kwargs = tree_map(lambda a: self.node_for(a) if isinstance(a, torch.Tensor) else a,
                                            (args, kwargs))
        if getattr(torch.Tensor, name, None) is func or name == "__setitem__":
            node = self.graph.call_method(name, tuple(nodes_args), dict(nodes_kwargs))
        else:
            node = self.graph.call_function(func, tuple(nodes_args), dict(nodes_kwargs))
        if isinstance(out, torch.Tensor):
            self.bind(out, node)
        elif isinstance(out, (tuple, list)):
            node.meta["shapes"] = [tuple(t.shape) if isinstance(t, torch.Tensor) else None for t in out]
            for i, t in enumerate(out):
                if isinstance(t, torch.Tensor):
                    self.bind(t, self.graph.call_function(operator.getitem, (node, i)))
        return out


    def _inside(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Record the ops inside ``func`` instead of ``func`` itself: it re-dispatches to the mode through
        ``torch.nn.functional.has_torch_function``, which is switched off for the one call."""
        saved = F.has_torch_function
        F.has_torch_function = lambda *a, **k: False
        try:
            with self:
                return func(*args, **kwargs)
        finally:
            F.has_torch_function = saved


def record_graph(model: nn.Module, example: tuple) -> tuple[fx.Graph, dict[str, torch.Tensor]]:
    """The graph of one eval-mode forward pass of ``model`` on ``example``, and the tensors its
    ``get_attr`` nodes name (parameters and buffers by their qualified names, plus constants).

    ``model`` is left as it was (train/eval flags restored; gradients are not kept).
    """
    names: dict[int, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, t in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        names.setdefault(id(t), name)
        tensors.setdefault(name, t.detach())
    recorder = _Recorder(names, tensors)
    inputs = []
    for i, t in enumerate(example):
        node = recorder.graph.placeholder(f"input_{i}")
        if isinstance(t, torch.Tensor):
            recorder.bind(t, node)
        inputs.append(node)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.enable_grad(), recorder:
            out = model(*example)
    finally:
        for m, flag in flags.items():
            m.training = flag
    leaves, _ = tree_flatten(out if not hasattr(out, "to_tuple") else out.to_tuple())
    outputs = [recorder.node_for(t) for t in leaves if isinstance(t, torch.Tensor)]
    recorder.graph.output(tuple(outputs))
    return recorder.graph, tensors
