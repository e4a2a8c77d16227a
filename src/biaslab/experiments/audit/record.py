"""Record a model's graph from one forward pass, where torch.fx cannot trace it symbolically.

torch.fx traces with proxies: it fails on data-dependent control flow, and it keeps library layers
such as ``nn.MultiheadAttention`` whole. Here the model runs once on the example input under a
``TorchFunctionMode`` that writes every torch function and tensor method it calls into an
``fx.Graph``, with the tensors' shapes (``F.multi_head_attention_forward`` is opened up: its
inner ops are recorded). Parameters and buffers become ``get_attr`` nodes; tensors
made inside ``forward`` become constants. Attention, Hugging Face models and models with Python
control flow come out as plain functional graphs that the offset algebra (:mod:`.offsets`) reads
like any other. The graph holds the control flow taken for this input; the recording also says
whether anything computed from the input was read into Python or shaped by its values
(:class:`Recording`), the only ways the input's values can steer the path.

Library fast paths (``nn.TransformerEncoderLayer``'s fused kernel) are not taken while a torch
function mode is active ("some Tensor argument has_torch_function"), so the pass runs without
gradients (no autograd graph is built) and still records the ops they stand for.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F
from torch.nn.modules.conv import _ConvNd
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

__all__ = ["record_graph", "record", "Recording"]

#: Calls that only read metadata or convert to Python: never part of the data flow.
_META = {"size", "dim", "numel", "stride", "is_floating_point", "is_contiguous", "data_ptr", "element_size",
         "item", "tolist", "__len__", "__bool__", "__index__", "__int__", "__float__", "__repr__", "__format__",
         "__hash__", "__contains__", "get_device", "nelement", "ndimension", "is_complex",
         "requires_grad_", "retain_grad", "__iter__", "untyped_storage", "storage_offset"}


#: Calls that read a tensor's values into Python: control flow can branch on what they return.
_TO_PYTHON = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy", "__array__",
              "__complex__"}

#: Calls that return a Python number about a tensor's shape or storage, never about its values.
_SHAPE_META = {"size", "dim", "numel", "stride", "__len__", "element_size", "get_device", "nelement", "ndimension",
               "is_floating_point", "is_complex", "is_contiguous", "data_ptr", "storage_offset", "__hash__",
               "is_signed", "is_inference", "is_shared", "is_pinned", "__get__"}

#: Ops whose output shape depends on the values of their input.
_VALUE_SHAPED = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "bincount", "histc",
                 "repeat_interleave", "nonzero_static"}


@dataclass
class Recording:
    """One recorded forward pass: the graph, the tensors its ``get_attr`` nodes name, and
    ``value_dependent`` — None when nothing computed from the inputs was read into Python (a branch, an
    ``.item()``) or shaped by their values (``nonzero``, boolean masks), so that every input of the same
    shape takes this same path; else the first such call."""

    graph: fx.Graph
    tensors: dict[str, torch.Tensor]
    value_dependent: str | None = None


class _Recorder(TorchFunctionMode):
    def __init__(self, names: dict[int, str], tensors: dict[str, torch.Tensor]):
        super().__init__()
        self.graph = fx.Graph()
        self.names = names
        self.tensors = tensors
        self.nodes: dict[int, tuple[torch.Tensor, fx.Node]] = {}
        self.tainted: set[fx.Node] = set()  # nodes computed from the inputs
        self.modules: list[str] = []  # the linear / conv layers whose forward is running, innermost last
        self.value_dependent: str | None = None

    def _from_inputs(self, values: Any) -> bool:
        for t in tree_flatten(values)[0]:
            if isinstance(t, torch.Tensor):
                entry = self.nodes.get(id(t))
                if entry is not None and entry[0] is t and entry[1] in self.tainted:
                    return True
        return False

    def _note(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        """Remember the first call through which the inputs' values can steer the pass: one that hands a
        value computed from them to Python (``bool(t)``, ``.item()``, ``torch.equal``), or shapes a tensor
        by their values."""
        if self.value_dependent is not None:
            return
        to_python = name in _TO_PYTHON or (isinstance(out, (bool, int, float, complex)) and name not in _SHAPE_META)
        if to_python or name in _VALUE_SHAPED:
            if self._from_inputs((args, kwargs)):
                self.value_dependent = name
        elif name in ("__getitem__", "__setitem__", "index_put", "index_put_") and len(args) > 1:
            index = [t for t in tree_flatten(args[1])[0] if isinstance(t, torch.Tensor) and t.dtype == torch.bool]
            if index and self._from_inputs(index):
                self.value_dependent = f"{name} with a boolean mask"

    def node_for(self, t: torch.Tensor) -> fx.Node:
        entry = self.nodes.get(id(t))
        if entry is not None and entry[0] is t:
            return entry[1]
        name = self.names.get(id(t))
        if name is None:
            name = f"_constant_{len(self.tensors)}"
            self.tensors[name] = t.detach()
        node = self.graph.get_attr(name)
        node.meta["shape"], node.meta["dtype"] = tuple(t.shape), t.dtype
        self.nodes[id(t)] = (t, node)
        return node

    def bind(self, t: torch.Tensor, node: fx.Node) -> None:
        node.meta["shape"], node.meta["dtype"] = tuple(t.shape), t.dtype
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
        self._note(name, args, kwargs, out)
        if name in _TO_PYTHON and args and isinstance(args[0], torch.Tensor):
            # the values leave the graph (a Python number, a numpy array): a node marks where, so that an
            # offset reaching it stops there instead of vanishing
            self.graph.call_method(name, (self.node_for(args[0]),))
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
        node.meta["module"] = self.modules[-1] if self.modules else None  # whose forward made the call
        if any(a in self.tainted for a in node.all_input_nodes):
            self.tainted.add(node)
        if isinstance(out, torch.Tensor):
            self.bind(out, node)
        elif isinstance(out, (tuple, list)):
            node.meta["shapes"] = [tuple(t.shape) if isinstance(t, torch.Tensor) else None for t in out]
            for i, t in enumerate(out):
                if isinstance(t, torch.Tensor):
                    item = self.graph.call_function(operator.getitem, (node, i))
                    if node in self.tainted:
                        self.tainted.add(item)
                    self.bind(t, item)
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
    rec = record(model, example)
    return rec.graph, rec.tensors


def record(model: nn.Module, example: tuple) -> Recording:
    """:func:`record_graph`, also saying whether the inputs' values could steer the pass."""
    names: dict[int, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, t in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        names.setdefault(id(t), name)
        tensors.setdefault(name, t.detach())
    recorder = _Recorder(names, tensors)
    inputs = []
    for i, t in enumerate(example):
        node = recorder.graph.placeholder(f"input_{i}")
        recorder.tainted.add(node)
        if isinstance(t, torch.Tensor):
            recorder.bind(t, node)
        inputs.append(node)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    hooks = []

    def enter(name: str) -> Callable[..., None]:
        return lambda *_: recorder.modules.append(name)

    def leave(*_: Any) -> None:  # a forward hook that returned a value would replace the output
        recorder.modules.pop()

    for name, m in model.named_modules():  # the layers a fold can go into: whose forward made a linear call
        if isinstance(m, (nn.Linear, _ConvNd)) or type(m).__name__ == "Conv1D":
            hooks += [m.register_forward_pre_hook(enter(name)), m.register_forward_hook(leave)]
    try:
        with torch.no_grad(), recorder:
            out = model(*example)
    finally:
        for h in hooks:
            h.remove()
        for m, flag in flags.items():
            m.training = flag
    leaves, _ = tree_flatten(out if not hasattr(out, "to_tuple") else out.to_tuple())
    outputs = [recorder.node_for(t) for t in leaves if isinstance(t, torch.Tensor)]
    recorder.graph.output(tuple(outputs))
    return Recording(recorder.graph, tensors, recorder.value_dependent)
