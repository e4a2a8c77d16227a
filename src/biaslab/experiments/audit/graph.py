"""Which biases can a model do without? Decide it from the model's torch.fx graph.

A bias adds an offset to its layer's output. :func:`find_biases` follows that offset forward
through every op of the traced graph with the rules of :mod:`.offsets` — along every branch of
every fork, adding up where branches meet — and decides:

* ``redundant`` — no branch carries it to the output: each ends in a normalisation (or softmax)
  that removes it (:mod:`.norms`), or in an op that drops it (a slice away from the biased
  entries; checked by running that op with and without the offset, :func:`.offsets.vanishes`, so
  a rule that overlooks an input gives "not analysed", never "redundant"). Removing the bias
  leaves the function unchanged in training mode and, with the running means corrected, in eval
  mode;
* ``foldable`` — it matters, but in eval mode it can be merged into a neighbour: a BatchNorm with
  running statistics right after a conv / linear layer, or an offset that reaches, along one
  path of exact ops (reshapes, dropout, attention's row-stochastic weights), a linear layer or a
  conv without padding that mixes only the axis the offset varies along;
* ``active`` — otherwise, with the op where the offset stops as the reason ("not analysed: <op>"
  when no rule covers that op). When a normalisation on the way would remove the offset's mean,
  the share of ``‖b‖²`` that mean holds is reported as ``cancelled_fraction``.

Statuses come from the structure (random probes, :mod:`.offsets`), never from the bias's current
values; a bias that is zero now is flagged ``zero_now``. Packed attention biases (``in_proj_bias``,
fused ``qkv``) are judged per part (query, key, value) when their parts differ.

Where fx cannot trace the model (data-dependent control flow) or keeps a biased layer whole, the
graph is recorded from forward passes (:mod:`.record`) on the example, on inputs derived from it
(:func:`derived_inputs`: negated, shifted and scaled, so value-dependent branches flip) and on any
further inputs given (``--data`` batches); a bias whose analysis differs between the paths those
inputs take is ``active``: it "depends on the input's control flow", and no status would hold for
every input. Python attributes a pass fills (caches) are restored afterwards (:func:`kept_attributes`).

Where no graph can be traced or recorded, :func:`find_biases` runs the model once with forward
hooks and decides from the order of execution; such a guess is confirmed by perturbing the bias
before it is called ``redundant`` (:mod:`.verify`), and the findings say ``traced = False``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from ...nets.biases import is_bias_parameter
from ...infra.io import BiaslabError
from ...results.audit import Finding
from .check import kept_attributes
from .hooks import confirm, hook_verdicts
from .norms import NORM_MODULES, norm_call
from .offsets import SHAPE_QUERIES, Context, Offset, Stop, compact, describe, op_name, transfer, vanishes
from ...infra.io import first_line
from .verdicts import RELU, Verdict, Verdicts, bias_axes

__all__ = ["find_biases", "analyse", "batchnorm_pairs", "symbolic_trace", "is_conv1d", "PACKED", "CONTROL_FLOW", "derived_inputs",
           "kept_attributes"]

#: Parameter names of packed query/key/value biases, judged per third when the thirds differ.
PACKED = re.compile(r"(^|\.)(in_proj_bias|(qkv|c_attn|query_key_value|Wqkv)\.bias)$")
_PARTS = ("query", "key", "value")
_FOLD_PASS = {"Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Flatten", "Unflatten",
              "contiguous", "clone", "dropout", "view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze",
              "transpose", "permute", "getitem", "chunk", "split", "unbind", "matmul", "bmm",
              "scaled_dot_product_attention", "size", "dim", "numel", "getattr", "cat", "concat", "stack", "expand"}


class _Recorder(fx.Interpreter):
    """Runs the graph once; stores each node's output shape and type (``meta["shape"]``,
    ``meta["dtype"]``; ``meta["shapes"]`` for tuples of tensors) or, for small non-tensor values (sizes,
    ints), the value (``meta["value"]``), marked ``meta["data"]`` when it was read from a tensor's values
    (``.item()``): it holds for this input only."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            n.meta["shape"], n.meta["dtype"] = tuple(result.shape), result.dtype
        elif isinstance(result, (tuple, list)) and result and all(isinstance(t, torch.Tensor) for t in result):
            n.meta["shapes"] = [tuple(t.shape) for t in result]
        elif isinstance(result, (int, float, bool, str, slice, type(None), torch.Size, torch.dtype)) or (
                isinstance(result, (tuple, list)) and all(isinstance(v, (int, float, bool)) for v in result)):
            n.meta["value"] = result
            n.meta["data"] = _from_values(n)
        return result


def _from_values(n: fx.Node) -> bool:
    """Was this non-tensor value read from a tensor's values (not its shape)?"""
    if n.op == "placeholder" or any(a.meta.get("data") for a in n.all_input_nodes):
        return True
    if (n.op == "call_method" and n.target in _SIZE_QUERIES) or (
            getattr(n.target, "__name__", "") == "getattr" and len(n.args) > 1 and n.args[1] in _SIZE_QUERIES):
        return False
    return any("shape" in a.meta for a in n.all_input_nodes if a.op != "get_attr")


#: Methods and attributes that read a tensor's shape, never its values.
_SIZE_QUERIES = SHAPE_QUERIES | {"ndimension", "nelement"}


@dataclass
class _Graph:
    source: str
    modules: dict[str, nn.Module]
    tensors: dict[str, torch.Tensor]
    order: list[fx.Node]
    index: dict[fx.Node, int]
    calls: dict[str, list[fx.Node]]
    attrs: dict[str, list[fx.Node]]
    value_dependent: str | None = None  # a recorded pass: how the input's values could steer it (None: no way)
    train: bool = False  # traced in training mode (fx); recorded passes run in eval mode
    float64: dict[str, torch.Tensor] = field(default_factory=dict)  # tensors converted once for every bias

    @cached_property
    def norm_uses(self) -> dict[str, int]:
        """Running-mean buffer → the normalisation calls that use it."""
        uses: dict[str, int] = {}
        for n in self.order:
            norm = norm_call(n, self.modules) if n.op in ("call_module", "call_function") else None
            if norm is not None and norm.running_mean is not None:
                uses[norm.running_mean] = uses.get(norm.running_mean, 0) + 1
        return uses

    @cached_property
    def changed(self) -> frozenset[str]:
        """Parameters and buffers the forward changes in place (a running value it keeps): not constants."""
        bases = (_memory_base(self, _mutated(self, n)) for n in self.order
                 if n.op in ("call_method", "call_function", "call_module"))
        return frozenset(str(b.target) for b in bases if isinstance(b, fx.Node) and b.op == "get_attr")

    @cached_property
    def aliases(self) -> dict[int, list[str]]:
        """id of a parameter or buffer → the names the graph reads it by (a module's bias, a ``get_attr``)."""
        out: dict[int, list[str]] = {}
        for name in [f"{m}.bias" for m in self.calls if m] + list(self.attrs):
            owner, _, attr = name.rpartition(".")
            t = getattr(self.modules.get(owner), attr, None)
            if isinstance(t, torch.Tensor):
                out.setdefault(id(t), []).append(name)
        return out


def _index(graph: fx.Graph, modules: dict[str, nn.Module], tensors: dict[str, torch.Tensor],
           source: str = "fx") -> _Graph:
    order = list(graph.nodes)
    calls: dict[str, list[fx.Node]] = {}
    attrs: dict[str, list[fx.Node]] = {}
    for node in order:
        if node.op == "call_module":
            calls.setdefault(str(node.target), []).append(node)
        elif node.op == "get_attr":
            attrs.setdefault(str(node.target), []).append(node)
    return _Graph(source, modules, {k: v.detach().cpu() for k, v in tensors.items()}, order,
                  {n: i for i, n in enumerate(order)},
                  calls, attrs)


class _Tracer(fx.Tracer):
    """torch.fx's tracer, except that a module with a parametrization (a part held at zero by removal) is
    traced into: its class, made by ``torch.nn.utils.parametrize``, would pass for a ``torch.nn`` leaf."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        from torch.nn.utils import parametrize

        return not parametrize.is_parametrized(m) and super().is_leaf_module(m, module_qualified_name)


def symbolic_trace(model: nn.Module) -> fx.GraphModule:
    """:func:`torch.fx.symbolic_trace` with :class:`_Tracer`."""
    tracer = _Tracer()
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def _fx_graph(model: nn.Module, example: tuple) -> _Graph:
    """The symbolic torch.fx graph, traced in training mode (a forward that reads ``self.training`` takes
    its training path, as statuses are about training first), shapes recorded on one eval-mode run whose
    buffer updates are undone."""
    flags = {m: m.training for m in model.modules()}
    model.train()
    try:
        gm = symbolic_trace(model)
    finally:
        for m, flag in flags.items():
            m.training = flag
    buffers = [(b, b.detach().clone()) for b in gm.buffers()]
    try:
        _Recorder(gm).run(*example)
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    # the model's own modules: the GraphModule keeps only the called ones (and empty stand-ins for their
    # parents), so a BatchNorm subclass fx traces into would not be recognised as one
    g = _index(gm.graph, {**dict(gm.named_modules()), **dict(model.named_modules())},
               {**dict(gm.named_parameters()), **dict(gm.named_buffers())})
    g.train = True
    return g


def _recorded_graph(model: nn.Module, example: tuple) -> _Graph:
    """The graph of one forward pass (:mod:`.record`), for models fx cannot trace or keeps whole."""
    from .record import record

    rec = record(model, example)
    g = _index(rec.graph, dict(model.named_modules()), rec.tensors, "recorded")
    g.value_dependent = rec.value_dependent
    return g


def _opaque(g: _Graph, model: nn.Module) -> bool:
    """Does the fx graph keep a layer whole that holds a bias no rule looks into (attention, RNNs)?"""
    return any(leaf and not isinstance(g.modules[leaf], (nn.Linear, _ConvNd, *NORM_MODULES)) and
               any(is_bias_parameter(n) for n, _ in g.modules[leaf].named_parameters()) for leaf in g.calls)


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _seeds(g: _Graph, pname: str, p: torch.Tensor, gen: torch.Generator, span: slice | None,
           constant: bool) -> dict[fx.Node, Offset] | None:
    """Where the bias enters the graph, each with its offset; None if it never does."""
    value = p.detach().double().cpu().reshape(-1).clone()
    probe = torch.randn(value.shape, generator=gen, dtype=torch.float64)
    if constant:
        mask = torch.zeros_like(value, dtype=torch.bool)
        mask[span if span is not None else slice(None)] = True
        value = torch.where(mask, value[mask].mean(), 0.0)
        probe = torch.where(mask, probe[0], 0.0)
    if span is not None:
        keep = torch.zeros_like(value)
        keep[span] = 1.0
        value, probe = value * keep, probe * keep
    value, probe = value.reshape(p.shape), probe.reshape(p.shape)
    seeds: dict[fx.Node, Offset] = {}
    for name in _aliases(g, pname, p):
        mname, attr = _owner(name), name.rsplit(".", 1)[-1]
        if attr == "bias" and mname in g.calls:
            m = g.modules[mname]
            for node in g.calls[mname]:
                shape = node.meta.get("shape")
                axes = bias_axes(m, len(shape)) if shape is not None else None
                if axes is None:
                    return None
                placed = [1] * len(shape)
                for a, s in zip(axes, p.shape):
                    placed[a] = s
                seeds[node] = compact(value.reshape(placed), probe.reshape(placed), len(shape))
        for node in g.attrs.get(name, []):
            seeds[node] = compact(value, probe, p.dim())
    return {n: o for n, o in seeds.items() if o is not None} or None


def _aliases(g: _Graph, pname: str, p: torch.Tensor) -> list[str]:
    """``pname`` and every other name the graph reads the same parameter by (a bias tied between two
    layers: ``b.bias = a.bias``), so that every use of it is followed."""
    return list(dict.fromkeys([pname, *g.aliases.get(id(p), [])]))


def _propagate(g: _Graph, seeds: dict[fx.Node, Offset], gen: torch.Generator,
               fold: bool = False) -> tuple[Context, Stop | None, tuple[str, torch.Tensor] | None]:
    """Follow the offsets from ``seeds`` through the graph (topological order).

    Returns the context (what was cancelled, running-mean corrections), the :class:`Stop` where the
    offset matters (None if every branch was cancelled) and, with ``fold``, the linear / conv
    layer that the offset reaches along one path of exact ops with the offset at its input (None if
    it forks or stops first).
    """
    ctx = Context(g.modules, g.tensors, gen, [], [], {}, g.float64, g.norm_uses, g.train, g.changed)
    offsets: dict[fx.Node, Any] = dict(seeds)
    pending = {n: len(n.users) for n in seeds}
    start = min(g.index[n] for n in seeds)
    if fold and len(seeds) != 1:
        return ctx, None, None
    for node in g.order[start:]:
        ins = [a for a in node.all_input_nodes if a in offsets]
        if node in seeds:
            if ins:  # the layer is called again on what its bias already shifted
                what = describe(node, g.modules)
                return ctx, Stop(f"not analysed: {what} called on its own output",
                                 f"not analysed: {what}{_where(node, g)} adds the bias again to an input that "
                                 "already carries it", unknown=True), None
            continue
        if not ins:
            continue
        if node.op == "output":
            return ctx, Stop("reaches the model output", "it reaches the model output"), None
        if fold:
            if sum(isinstance(offsets[n], Offset) for n in pending) > 1:
                return ctx, None, None  # a fork: one layer cannot absorb it
            target = _fold_target(g, node, ins, offsets)
            adds_it = all(a.op == "get_attr" for a in ins)  # the functional call that adds the bias itself
            if target is not None:
                alone = not any(_carries(u, offsets, ctx) for u in _data_users(ins[0]) if u is not node)
                return ctx, None, ((target, offsets[ins[0]].value) if alone else None)
            if op_name(node, g.modules) not in _FOLD_PASS and not adds_it:
                return ctx, None, None
        try:
            known = len(ctx.cancelled)
            out = transfer(node, offsets, ctx)
            if not _mutation_is_local(g, node):  # (a Stop above is safe either way: the bias matters there)
                what = describe(node, g.modules)
                return ctx, Stop(f"not analysed: in-place {what}", f"not analysed: {what}{_where(node, g)} changes a "
                                 "tensor in place that is read elsewhere too", unknown=True), None
            if _lost(node, out, offsets, ctx, known, g):
                what = describe(node, g.modules)
                return ctx, Stop(f"not analysed: {what}", f"not analysed: the offset vanishes at {what}"
                                 f"{_where(node, g)}, and no rule says why", unknown=True), None
        except Stop as stop:
            stop.reason = f"{stop.reason}{_where(node, g)}"
            return ctx, stop, None
        except (RuntimeError, ValueError, TypeError, IndexError, KeyError) as exc:
            what = describe(node, g.modules)
            first = first_line(exc)
            return ctx, Stop(f"not analysed: {what}", f"not analysed: {what} ({first})", unknown=True), None
        for a in ins:
            pending[a] -= 1
            if pending[a] <= 0:
                del pending[a]
                if a not in seeds:
                    del offsets[a]
        if isinstance(out, list) and all(o is None for o in out):
            out = None
        if out is not None:
            ctx.via.append(describe(node, g.modules))
            offsets[node] = out
            pending[node] = len(node.users)
            if pending[node] == 0:
                del pending[node]
    return ctx, None, None


#: Ops whose result may share memory with their first argument: an in-place change to one is seen by the other.
_VIEWS = {"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims",
          "permute", "movedim", "moveaxis", "t", "T", "mT", "expand", "expand_as", "view_as", "reshape_as", "narrow",
          "select", "getitem", "chunk", "split", "tensor_split", "unbind", "diagonal", "as_strided", "detach",
          "contiguous", "unfold", "real", "imag", "alias", "identity", "to", "type_as", "float", "double"}
_IN_PLACE_FUNCTIONS = {"iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "imatmul", "iand", "ior",
                       "ixor", "ilshift", "irshift", "setitem"}


def _mutated(g: _Graph, node: fx.Node) -> Any:
    """The tensor ``node`` changes in place (its first argument, or its ``out=``), or None."""
    if "out" in node.kwargs:
        return node.kwargs["out"]
    raw = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
    if node.op == "call_module":
        in_place = bool(getattr(g.modules[node.target], "inplace", False))
    else:
        in_place = (raw.endswith("_") and not raw.startswith("_")) or raw.strip("_") in _IN_PLACE_FUNCTIONS or (
            node.kwargs.get("inplace") is True)
    return node.args[0] if in_place and node.args else None


def _memory_base(g: _Graph, node: Any) -> Any:
    """The tensor whose memory ``node`` views (itself when it is no view); what is not a node, as it is."""
    while isinstance(node, fx.Node) and node.op in ("call_method", "call_function") and node.args \
            and op_name(node, g.modules) in _VIEWS and isinstance(node.args[0], fx.Node):
        node = node.args[0]
    return node


def _mutation_is_local(g: _Graph, node: fx.Node) -> bool:
    """Is an in-place change by ``node`` seen only through ``node`` itself? Not when the changed tensor, or
    any view of the same memory, is read after ``node``, or is a parameter, buffer or input (it outlives
    the call); the rules follow values, not memory."""
    base = _memory_base(g, _mutated(g, node))
    if not isinstance(base, fx.Node):
        return True
    if base.op in ("placeholder", "get_attr"):
        return False
    here, seen, todo = g.index[node], set(), [base]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for u in n.users:
            if u is node:
                continue
            if g.index[u] > here:
                return False
            if u.op in ("call_method", "call_function") and op_name(u, g.modules) in _VIEWS:
                todo.append(u)
    return True


def _lost(node: fx.Node, out: Any, offsets: dict[fx.Node, Any], ctx: Context, known: int, g: _Graph) -> bool:
    """Did a rule drop the offset without saying why? A rule that returns no offset has either recorded a
    cancellation, or computed a zero offset (a slice away from the biased entries, a part of a packed
    tensor the bias is not in); the latter is checked by running the op itself (:func:`vanishes`)."""
    empty = out is None or (isinstance(out, list) and all(o is None for o in out))
    if not empty or len(ctx.cancelled) > known or "shape" not in node.meta and "shapes" not in node.meta:
        return False  # an offset, a recorded cancellation, or a non-tensor result (a size, a shape)
    if op_name(node, g.modules) == "getitem" and isinstance(offsets.get(node.args[0]), list):
        return False  # a part of a tuple whose offset was computed (and checked) with the tuple
    return not vanishes(node, offsets, ctx)


def _carries(node: fx.Node, offsets: dict[fx.Node, Any], ctx: Context) -> bool:
    """Does ``node`` receive any of the offset (a second branch of a fork, for a fold)?"""
    try:
        out = transfer(node, offsets, ctx)
    except Stop:
        return True
    return out is not None and not (isinstance(out, list) and all(o is None for o in out))


def _where(node: fx.Node, g: _Graph) -> str:
    return "" if node.op == "call_module" else f" (at {node.name})"


def _fold_target(g: _Graph, node: fx.Node, ins: list[fx.Node], offsets: dict[fx.Node, Any]) -> str | None:
    """``node``'s layer when it can absorb the offset of its input in eval mode: a linear layer mixing
    only the axis the offset varies along, or a conv without padding (offset constant per channel)."""
    layer = _layer_of(g, node)
    data = node.args[1] if op_name(node, g.modules) == "addmm" else node.args[0]
    if layer is None or ins != [data]:
        return None
    name, m = layer
    off = offsets[ins[0]]
    if not isinstance(off, Offset) or off.value is None or off.dropout:
        return None
    rank = off.probe.dim()
    if (isinstance(m, nn.Linear) or is_conv1d(m)) and off.varies <= {rank - 1}:
        return name
    batched = isinstance(m, _ConvNd) and rank == len(m.kernel_size) + 2  # not (C, *spatial)
    if batched and not m.transposed and off.varies <= {1}:
        padding = m.padding if isinstance(m.padding, tuple) else (m.padding,)
        if m.padding == "valid" or all(isinstance(p, int) and p == 0 for p in padding):
            return name
    return None


def _layer_of(g: _Graph, node: fx.Node) -> tuple[str, nn.Module] | None:
    """The conv / linear module ``node`` runs, called exactly once: a ``call_module`` node, or a
    functional ``linear`` / ``convNd`` / ``addmm`` (GPT-2's ``Conv1D``) whose weight is that
    module's (as in a recorded graph)."""
    if node.op == "call_module":
        name = str(node.target)
        read_elsewhere = any(g.attrs.get(f"{name}.{k}") for k in ("weight", "bias"))
        return (name, g.modules[name]) if len(g.calls[name]) == 1 and not read_elsewhere else None
    kind = op_name(node, g.modules)
    if kind not in ("linear", "conv1d", "conv2d", "conv3d", "addmm") or len(node.args) < (3 if kind == "addmm" else 2):
        return None
    weight = node.args[2] if kind == "addmm" else node.args[1]
    if not isinstance(weight, fx.Node) or weight.op != "get_attr" or len(weight.users) != 1:
        return None
    name = _owner(str(weight.target))
    bias = node.args[0] if kind == "addmm" else (node.args[2] if len(node.args) > 2 else node.kwargs.get("bias"))
    m = g.modules.get(name)
    own = isinstance(bias, fx.Node) and bias.op == "get_attr" and str(bias.target) == f"{name}.bias" \
        and len(bias.users) == 1 and len(g.attrs.get(f"{name}.bias", [])) == 1
    # without a bias, the fold creates one: only the layer's own forward (as recorded) would add it
    created = bias is None and getattr(m, "bias", None) is None and node.meta.get("module") == name
    if not (own or created):
        return None  # the fold goes into this layer's own bias: the call must add it, and only it
    ok = is_conv1d(m) if kind == "addmm" else isinstance(m, (nn.Linear, _ConvNd))
    return (name, m) if ok and str(weight.target).endswith("weight") else None


def is_conv1d(m: nn.Module | None) -> bool:
    """Is ``m`` a GPT-2-style ``Conv1D``: a linear layer with its weight stored as (in, out), run by addmm?"""
    return type(m).__name__ == "Conv1D" and hasattr(m, "nf") and getattr(m, "bias", None) is not None


def _layer_output(g: _Graph, pname: str) -> fx.Node | None:
    """The node that adds the bias ``pname`` to its layer's output (its module call, or the functional
    call that takes it as its bias argument), if there is exactly one."""
    nodes = g.calls.get(_owner(pname), []) if pname.endswith("bias") else []
    if not nodes:
        nodes = [u for a in g.attrs.get(pname, []) for u in a.users]
    return nodes[0] if len(nodes) == 1 else None


def _listing(items: list[str], limit: int = 3) -> str:
    unique = list(dict.fromkeys(items))
    return ", ".join(unique[:limit]) + (f" and {len(unique) - limit} more" if len(unique) > limit else "")


def _cancelled_text(cancelled: list[tuple[str, str]]) -> str:
    return _listing([label for label, _ in cancelled])


def _via(ctx: Context) -> str:
    return f" (through {_listing(ctx.via, 4)})" if ctx.via else ""


def _verdict(g: _Graph, pname: str, p: torch.Tensor, span: slice | None = None) -> Verdict:
    gen = torch.Generator().manual_seed(hash(pname) % (2**31))
    seeds = _seeds(g, pname, p, gen, span, constant=False)
    if seeds is None:
        return _unseeded(g, pname)
    ctx, stop, _ = _propagate(g, seeds, gen)
    if stop is None:
        if not ctx.cancelled:
            return Verdict("redundant", "output unused", "nothing downstream uses what it adds")
        by = _cancelled_text(ctx.cancelled)
        corrections = {buf: vec for buf, vec in ctx.corrections.values()}
        tail = "; the running means absorb it (corrected on removal)" if corrections else ""
        return Verdict("redundant", f"cancelled by {by}",
                        f"every path from it{_via(ctx)} ends in a normalisation or softmax that removes it: {by}{tail}",
                        ctx.cancelled[0][1], 1.0, corrections)
    _, _, reached = _propagate(g, seeds, torch.Generator().manual_seed(1), fold=True)
    if reached is not None:
        target, value = reached
        return Verdict("foldable", f"folds into '{target}'",
                        f"reaches '{target}' through exact ops only: in eval mode it folds into that layer's bias "
                        f"(it matters otherwise: {stop.reason})", target, fold_value=value)
    bn = _bn_after_affine(g, pname)
    if bn is not None:
        return Verdict("foldable", f"folds into '{bn}'",
                        f"BatchNorm with running statistics right after '{bn}': in eval mode it folds into that "
                        "layer's weight and bias", bn)
    verdict = Verdict("active", stop.short, f"{stop.reason}{_via(ctx)}", unknown=stop.unknown)
    if stop.partial:
        const = _seeds(g, pname, p, gen, span, constant=True)
        if const is not None:
            cctx, cstop, _ = _propagate(g, const, gen)
            if cstop is None and cctx.cancelled:
                v = p.detach().double().reshape(-1)[span if span is not None else slice(None)]
                total = float(v.pow(2).sum())
                verdict.cancelled_fraction = float(v.numel() * v.mean() ** 2) / total if total > 0 else None
                verdict.reason += (f"; its mean (the same value in every entry) cancels in "
                                   f"{_cancelled_text(cctx.cancelled)}")
    return verdict


def _unseeded(g: _Graph, pname: str) -> Verdict:
    """A bias the traced graph never adds: inside a layer fx keeps whole, or unused."""
    mname = _owner(pname)
    for leaf in g.calls:
        if leaf and (mname == leaf or mname.startswith(leaf + ".")):
            what = f"{type(g.modules[leaf]).__name__} '{leaf}'"
            return Verdict("active", f"not analysed: {type(g.modules[leaf]).__name__}",
                            f"not analysed: {what} is traced as one op, and no rule looks inside it", unknown=True)
    return Verdict("active", "not analysed: not in the graph",
                    "not analysed: the traced graph never uses it (it may be used outside forward)", unknown=True)


def _bn_after_affine(g: _Graph, pname: str) -> str | None:
    """For a BatchNorm's shift: the conv / linear layer that BatchNorm folds into, if any."""
    name = _owner(pname)
    node = _layer_output(g, pname)
    if node is None or not pname.endswith(".bias") or not isinstance(g.modules.get(name), _BatchNorm):
        return None
    return _affine_before(g, node)


def _affine_before(g: _Graph, node: fx.Node) -> str | None:
    """The conv / linear layer whose output only the BatchNorm ``node`` reads (running statistics kept);
    ``nn.Identity`` modules in between (a BatchNorm folded before) are looked through."""
    src = node.args[0] if node.args else None
    norm = norm_call(node, g.modules)
    if norm is None or norm.kind != "batch" or norm.running_mean is None or not isinstance(src, fx.Node):
        return None
    flattened = False  # tokens flattened into the batch, features kept last: (B, N, C) → (B·N, C)
    while len(_data_users(src)) == 1 and src.args and isinstance(src.args[0], fx.Node):
        if src.op == "call_module" and isinstance(g.modules.get(str(src.target)), nn.Identity):
            src = src.args[0]
        elif op_name(src, g.modules) in ("flatten", "reshape", "view") and _keeps_features(src):
            src, flattened = src.args[0], True
        else:
            break
    layer = _layer_of(g, src)
    if layer is None or len(_data_users(src)) != 1:
        return None
    name, prev = layer
    if isinstance(prev, nn.Linear) or (isinstance(prev, _ConvNd) and not flattened
                                       and (not prev.transposed or prev.groups == 1)):
        return name
    return None


def _keeps_features(node: fx.Node) -> bool:
    """Does ``node`` reshape its input to 2-D keeping the last axis (LeViT's ``x.flatten(0, 1)``)?"""
    src = node.args[0]
    before, after = src.meta.get("shape"), node.meta.get("shape")
    return (before is not None and after is not None and len(after) == 2 and len(before) >= 2
            and before[-1] == after[-1])


def _data_users(node: fx.Node) -> list[fx.Node]:
    """Users that read the tensor's values (``x.size(0)``, ``x.shape`` only read its shape)."""
    def meta_only(u: fx.Node) -> bool:
        if u.op == "call_method" and u.target in ("reshape_as", "view_as", "expand_as", "type_as"):
            return u.args[0] is not node  # only the shape (or dtype) of the template is read
        if u.op == "call_method":
            return u.target in ("size", "dim", "numel")
        return u.op == "call_function" and getattr(u.target, "__name__", "") == "getattr"
    return [u for u in node.users if not meta_only(u)]


def batchnorm_pairs(gm: fx.GraphModule, model: nn.Module | None = None,
                    example: tuple | None = None) -> list[tuple[str, str]]:
    """``(layer, batchnorm)`` module paths where a BatchNorm with running statistics reads, and is the only
    reader of, the output of a conv / linear layer; each called once.

    The BatchNorm is a ``torch.nn`` module fx keeps whole, or a BatchNorm subclass (``model``'s module,
    e.g. timm's ``BatchNormAct2d``) whose forward fx traces into: its ``F.batch_norm`` call, reading the
    module's own running statistics, comes first and whatever it does next (an activation) after it.
    With ``example`` (the graph is run on it, without gradients) a BatchNorm1d over tokens flattened
    into the batch (LeViT's ``Linear → flatten(0, 1) → BatchNorm1d``) pairs with its linear layer too.
    """
    if example is not None:
        with torch.no_grad():
            _Recorder(gm).run(*example)
    g = _index(gm.graph, {**dict(gm.named_modules()), **dict((model or gm).named_modules())}, {})
    pairs = []
    for name, nodes in g.calls.items():
        if isinstance(g.modules[name], _BatchNorm) and len(nodes) == 1:
            into = _affine_before(g, nodes[0])
            if into is not None:
                pairs.append((into, name))
    for node in g.order:
        owner = _functional_batchnorm(g, node)
        if owner is not None and owner not in g.calls:
            into = _affine_before(g, node)
            if into is not None:
                pairs.append((into, owner))
    return pairs


def _functional_batchnorm(g: _Graph, node: fx.Node) -> str | None:
    """The BatchNorm module whose own statistics and affine parameters an ``F.batch_norm`` call uses
    (in eval mode), each read once; None for any other node."""
    if node.op != "call_function" or getattr(node.target, "__name__", "") != "batch_norm":
        return None
    norm = norm_call(node, g.modules)
    if norm is None or norm.running_mean is None:
        return None
    owner = _owner(norm.running_mean)
    m = g.modules.get(owner)
    if not isinstance(m, _BatchNorm):
        return None
    expected = {1: "running_mean", 2: "running_var", 3: "weight", 4: "bias"}
    for i, attr in expected.items():
        arg = _norm_arg(node, i, attr)
        if getattr(m, attr, None) is None:
            if arg is not None:
                return None
        elif not (isinstance(arg, fx.Node) and arg.op == "get_attr" and str(arg.target) == f"{owner}.{attr}"
                  and len(g.attrs.get(str(arg.target), [])) == 1 and len(arg.users) == 1):
            return None
    training = _norm_arg(node, 5, "training")
    return owner if (training.meta.get("value") if isinstance(training, fx.Node) else training) is False else None


def _norm_arg(node: fx.Node, i: int, key: str) -> Any:
    return node.args[i] if len(node.args) > i else node.kwargs.get(key)


def _feeds_relu(g: _Graph, pname: str) -> bool:
    node = _layer_output(g, pname)
    users = _data_users(node) if node is not None else []
    return len(users) == 1 and op_name(users[0], g.modules) in RELU


def _trace_verdicts(model: nn.Module, g: _Graph) -> tuple[Verdicts, set[str]]:
    """Verdicts per bias parameter (a list of parts for packed biases) and the biases that feed a ReLU."""
    out: Verdicts = {}
    relu: set[str] = set()
    for pname, p in model.named_parameters():
        if not is_bias_parameter(pname):
            continue
        whole = _verdict(g, pname, p)
        out[pname] = [(None, None, whole)]
        if whole.status == "active" and PACKED.search(pname) and p.dim() == 1 and p.numel() % 3 == 0:
            n = p.numel() // 3
            parts = [(part, slice(i * n, (i + 1) * n)) for i, part in enumerate(_PARTS)]
            verdicts = [(part, span, _verdict(g, pname, p, span)) for part, span in parts]
            if any(v.status != "active" for _, _, v in verdicts):
                out[pname] = verdicts
        if _feeds_relu(g, pname):
            relu.add(pname)
    return out, relu


#: Most inputs a graph is recorded from (the example, its derived inputs, batches of data samples).
MAX_RECORDED_INPUTS = 16

#: The reason given for a bias whose analysis differs between the paths recorded inputs take.
CONTROL_FLOW = "depends on the input's control flow"


def derived_inputs(example: tuple, n: int = 2, seed: int = 0) -> list[tuple]:
    """``n`` inputs shaped like ``example`` that take other branches of value-dependent control flow:
    the example negated (the sign of every sum flips), then shifted and scaled fresh normal draws; token ids
    (integer tensors) are drawn again from the range the example uses."""
    g = torch.Generator().manual_seed(seed + 7919)

    def one(t: Any, i: int) -> Any:
        if not torch.is_tensor(t):
            return t
        if not t.is_floating_point():
            high = int(t.max()) + 1 if t.numel() else 1
            return torch.randint(0, max(high, 1), t.shape, generator=g).to(t.device, t.dtype)
        if i == 0:
            return -t
        z = torch.randn(t.shape, generator=g, dtype=torch.float64)
        return (z * (1.0 + i) + (1.0 if i % 2 else -1.0) * i).to(t.device, t.dtype)

    return [tuple(one(t, i) for t in example) for i in range(n)]


def _graphs(model: nn.Module, example: tuple, inputs: list[tuple]) -> list[_Graph]:
    """The fx graph; where fx fails, or keeps a biased layer whole, the graphs recorded from the example and
    each of ``inputs`` (one per distinct path through the model's control flow)."""
    try:
        hooked = _hooked(model)
        if hooked:
            raise RuntimeError(f"{hooked} has forward hooks, which torch.fx does not see")
        with kept_attributes(model):
            g = _fx_graph(model, example)
    except Exception as exc:  # noqa: BLE001 - tracing failures have many types
        first = first_line(exc)
        graphs = _recorded_graphs(model, example, inputs)
        steer = graphs[0].value_dependent
        if steer is None:
            how = ("its graph was recorded from a forward pass instead; nothing computed from the input was read "
                   "into Python, so every input of this shape takes the same path")
        else:
            paths = f"{len(graphs)} different paths" if len(graphs) > 1 else "the same path"
            how = (f"its graph was recorded from {min(1 + len(inputs), MAX_RECORDED_INPUTS)} forward passes on "
                   f"different inputs instead (the model reads values computed from its input: {steer}), which "
                   f"took {paths}: a bias whose analysis differs between paths is active ({CONTROL_FLOW})")
        warnings.warn(f"torch.fx could not trace the model ({first}); {how}", stacklevel=3)
        return graphs
    return _recorded_graphs(model, example, inputs) if _opaque(g, model) else [g]


def _hooked(model: nn.Module) -> str | None:
    """A module with forward hooks (or any global ones), whose work a symbolic trace would miss."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return "the model"
    for name, m in model.named_modules():
        if m._forward_hooks or m._forward_pre_hooks:
            return f"'{name}'" if name else "the model"
    return None


def _signature(g: _Graph) -> tuple:
    return tuple((n.format_node(), n.meta.get("shape"), str(n.meta.get("value"))) for n in g.order)


def _recorded_graphs(model: nn.Module, example: tuple, inputs: list[tuple]) -> list[_Graph]:
    """One graph per distinct path. When the example's pass read nothing computed from the input into
    Python and made no value-shaped tensor (:class:`.record.Recording`), every input of its shape takes the
    same path, and the other inputs need not be run."""
    graphs: dict[tuple, _Graph] = {}
    for i, args in enumerate([example, *inputs][:MAX_RECORDED_INPUTS]):
        with kept_attributes(model):
            g = _recorded_graph(model, args)
        graphs.setdefault(_signature(g), g)
        if i == 0 and g.value_dependent is None and all(_same_shapes(example, x) for x in inputs):
            break
    return list(graphs.values())


def _same_shapes(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(
        (tuple(x.shape), x.dtype) == (tuple(y.shape), y.dtype) if torch.is_tensor(x) and torch.is_tensor(y)
        else not (torch.is_tensor(x) or torch.is_tensor(y)) for x, y in zip(a, b))


def _path_verdicts(model: nn.Module, graphs: list[_Graph]) -> tuple[Verdicts, set[str]]:
    """Verdicts that hold on every recorded path: where a bias's analysis differs between paths, it is
    ``active`` because it depends on the input's control flow."""
    results = [_trace_verdicts(model, g) for g in graphs]
    verdicts, relu = results[0]
    if len(results) == 1:
        return verdicts, relu
    for _, more in results[1:]:
        relu |= more

    def values(t: torch.Tensor | None) -> tuple:
        """A tensor as a comparable tuple (rounded: the paths compute it in different orders)."""
        return () if t is None else tuple(round(float(x), 9) for x in torch.as_tensor(t).double().flatten())

    def key(parts: list) -> tuple:
        # the status alone is not enough: a removal's running-mean correction and a fold's value must
        # be the same on every path too (a branch that scales the bias before BatchNorm changes them)
        return tuple((part, v.status, v.consumer, v.short, values(v.fold_value),
                      tuple(sorted((buf, values(vec)) for buf, vec in v.corrections.items())))
                     for part, _, v in parts)

    for pname in verdicts:
        seen = [r[0].get(pname, []) for r in results]
        if len({key(parts) for parts in seen}) > 1:
            statuses = sorted({f"{v.status} ({v.short})" for parts in seen for _, _, v in parts})
            verdicts[pname] = [(None, None, Verdict(
                "active", CONTROL_FLOW,
                f"{CONTROL_FLOW}: the {len(graphs)} paths that the recorded inputs take through the model's "
                f"control flow disagree about it ({'; '.join(statuses)}), so no status holds for every input"))]
    return verdicts, relu


def find_biases(model: nn.Module, example_input: torch.Tensor | tuple,
                inputs: list[torch.Tensor | tuple] | None = None) -> list[Finding]:
    """Every bias parameter of ``model`` with its status: ``redundant``, ``foldable`` or ``active``.

    Parameters
    ----------
    model : the network; it is not modified (the analysis runs forward passes in eval mode and restores
        each module's train/eval flag and Python attributes, such as caches).
    example_input : a tensor (or tuple of tensors) the model accepts; it fixes the shapes the
        analysis reasons about.
    inputs : more inputs of the same shape (data samples, say). Where torch.fx cannot trace the model,
        its graph is recorded from the example, from inputs derived from it (:func:`derived_inputs`) and
        from these, and a bias whose analysis differs between the paths they take is ``active``.

    Returns
    -------
    One :class:`Finding` per bias parameter, in ``named_parameters`` order — one per part for a
    packed attention bias whose parts differ. Where no graph can be traced or recorded the verdicts
    come from the execution order of a hooked forward pass (``Finding.traced`` is False), every
    ``redundant`` there confirmed by perturbation, and a :class:`UserWarning` says so.

    Raises
    ------
    BiaslabError
        if the model cannot run on ``example_input``.
    """
    return analyse(model, example_input, inputs)[0]


def analyse(model: nn.Module, example_input: torch.Tensor | tuple,
            inputs: list[torch.Tensor | tuple] | None = None) -> tuple[list[Finding], str]:
    """:func:`find_biases`, also saying where the graph came from: ``fx`` (symbolic trace), ``recorded``
    (forward passes, :mod:`.record`) or ``hooks`` (the order-based fallback)."""
    example = example_input if isinstance(example_input, tuple) else (example_input,)
    extra = derived_inputs(example) + [x if isinstance(x, tuple) else (x,) for x in inputs or []]
    traced = True
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad(), kept_attributes(model):  # tracing may leave proxies in caches: restore them
            graphs = _graphs(model, example, extra)
            verdicts, relu_fed = _path_verdicts(model, graphs)
    except Exception as exc:  # noqa: BLE001 - neither tracer copes: use the weaker fallback
        first = first_line(exc)
        traced = False
        try:
            with kept_attributes(model):
                verdicts, relu_fed = hook_verdicts(model, example)
        except Exception as run_exc:  # noqa: BLE001 - the model itself fails on this input
            msg = first_line(run_exc)
            shapes = ", ".join(str(tuple(t.shape)) for t in example if isinstance(t, torch.Tensor))
            raise BiaslabError(f"the model fails on an example input of shape {shapes}: {msg}; "
                               "pass an `input_shape` (or `input_ids`) the model accepts") from None
        warnings.warn(f"the model's graph could not be traced or recorded ({first}); statuses come from the "
                      "execution order of one forward pass, a weaker guess that cannot see skip connections: a "
                      "bias is called redundant there only when perturbing it leaves the output unchanged",
                      stacklevel=2)
    finally:
        for m, flag in flags.items():
            m.training = flag
    if not traced:
        confirm(model, verdicts, example)
    return _findings(model, verdicts, relu_fed, traced), (graphs[0].source if traced else "hooks")


def _findings(model: nn.Module, verdicts: Verdicts, relu_fed: set[str], traced: bool) -> list[Finding]:
    modules = dict(model.named_modules())
    findings = []
    for pname, p in model.named_parameters():
        if not is_bias_parameter(pname):
            continue
        mname = _owner(pname)
        parts = verdicts.get(pname) or [(None, None, Verdict(
            "active", f"not analysed: {type(modules[mname]).__name__}",
            f"not analysed: a bias inside {type(modules[mname]).__name__} '{mname}', which the order-based "
            "fallback does not model", unknown=True))]
        for part, span, v in parts:
            values = p.detach().double().reshape(-1)[span if span is not None else slice(None)]
            a = values.abs()
            reason = v.reason if traced else f"{v.reason} (order-based: torch.fx could not trace the model)"
            findings.append(Finding(
                module=mname, param=pname, type=type(modules[mname]).__name__,
                shape=(values.numel(),) if part else tuple(p.shape), numel=values.numel(),
                abs_mean=float(a.mean()) if a.numel() else 0.0, abs_max=float(a.max()) if a.numel() else 0.0,
                status=v.status, reason=reason, traced=traced, short_reason=v.short, consumer=v.consumer,
                cancelled_fraction=v.cancelled_fraction, feeds_relu=pname in relu_fed,
                zero_now=bool(values.numel()) and not bool(values.any()),
                part=part, span=(span.start, span.stop) if span is not None else None,
                corrections={k: t.numpy() for k, t in v.corrections.items()} or None,
                fold_value=v.fold_value.numpy() if v.fold_value is not None else None,
            ))
    return findings
