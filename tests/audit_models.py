"""Random small models from a readable "program", and a ground truth for the audit's statuses.

Differential testing of :func:`biaslab.experiments.audit.find_biases` (issue 21, item 5):

* :func:`programs` — a hypothesis strategy for a :class:`Program`: an input (an image ``(C, H, W)``,
  a sequence ``(L, D)`` or a vector ``(D,)``) and a list of :class:`Op` drawn from the vocabulary the
  audit's rules cover (conv / linear with and without bias and with padding, every pooling, every
  normalisation, residual add, concatenation, reshapes and ``*_as``, softmax attention with and
  without rotary and with a learned score bias — a relative-position table or a per-query bias, added
  to the scores or passed as SDPA's ``attn_mask`` — and Python control flow on the data). A failing program shrinks and prints as a
  listing; :class:`ProgramNet` builds it as an ``nn.Module`` (float64, random biases).
* :func:`ground_truth` — what perturbing each bias (each part of a packed bias) really does, in
  float64, on fresh inputs, in training mode and in eval mode. Eval mode runs on running statistics
  re-estimated from the same training batches (``momentum=1``), so a bias cancelled by a
  BatchNorm counts as cancelled there too (its running mean moves with it), exactly as the audit's
  "redundant, with the running means corrected" means. Nothing here reads the audit's rules.
* :func:`check_folds` — every ``foldable`` finding folded on its own (the affine fold with the
  audit's ``_fold_affine``; a BatchNorm folded into the layer before it with the textbook formula,
  written here) and compared with the original in eval mode.
* :func:`check_removal` — the redundant biases removed as the audit removes them (running means
  corrected), compared with the original in training and eval mode.
* :func:`evaluate` — all of it for one program: which statuses are wrong, which redundant biases
  were missed (:class:`Report`); :class:`Tally` adds reports up. Used by tests/test_audit_generated.py
  and benchmarks/fuzz_audit.py.

Degenerate models are not generated: normalisations over one value (or a mean-subtracting one over
two), one-wide bottlenecks, ``h - h``, attention that averages every token into the same one. In them a
bias is dead through a coincidence of sizes or values that no structural rule is meant to see, and they
would only blur the recall. A model whose output does not depend on its input at all is still possible;
it is recognised (``Report.constant``) and left out of the recall.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from biaslab.experiments.audit import find_biases
from biaslab.experiments.audit.fix import _fold_affine, drop_biases
from biaslab.experiments.audit.graph import PACKED
from biaslab.nets.biases import is_bias_parameter

__all__ = [
    "BATCH",
    "FOLD_TOL",
    "MAX_C",
    "MOVE_TOL",
    "REMOVE_TOL",
    "ZERO_TOL",
    "Op",
    "Program",
    "ProgramNet",
    "Report",
    "Tally",
    "audit_example",
    "audit_supports",
    "check_folds",
    "check_removal",
    "evaluate",
    "ground_truth",
    "op",
    "programs",
    "units",
]

#: Query and key weights are scaled up by this: with default initialisation the attention weights of such
#: small layers are nearly uniform, every token comes out as nearly the same average, and a later bias is
#: dead through that collapse rather than through a rule (a degenerate model).
ATTENTION_GAIN = 4.0
#: Samples per batch (training-mode normalisations need more than one).
BATCH = 4
#: Largest channel / feature count and spatial side. Layers output at least two channels / features: a
#: one-wide bottleneck makes the data rank one, and a normalisation of rank-one data keeps only its sign, so
#: every bias before it would be dead through a coincidence of sizes, not a rule (a degenerate model).
MAX_C = 8
#: A perturbation "moves" the output when the largest change exceeds this, relative to max(1, largest output);
#: a bias the audit calls redundant must stay below it. Real effects are far larger; float64 rounding stays
#: far below, even where a normalisation over a few nearly equal values amplifies it (seen up to 1e-11).
MOVE_TOL = 1e-7
#: A bias is truly redundant (counted for recall) when its perturbation moves the output by at most this. In
#: between the two a bias matters only through float rounding or a saturated normalisation (a LayerNorm
#: over two values is ±1 up to its eps): it is counted as "tiny", neither redundant nor missed.
ZERO_TOL = 1e-10
#: The audit's removal (``drop_biases``, running means corrected) must keep the outputs within this, in
#: training and eval mode (relative, float64, the same amplified rounding allowed for).
REMOVE_TOL = 1e-7
#: A fold is exact when the eval outputs differ by at most this (relative, float64).
FOLD_TOL = 1e-8


# --------------------------------------------------------------------------------------------- programs

@dataclass(frozen=True)
class Op:
    """One step of a program: a name and its arguments (``conv(out=4, k=3, pad=1, bias=True)``)."""

    name: str
    args: tuple = ()

    def __getitem__(self, key):
        return dict(self.args)[key]

    def get(self, key, default=None):
        return dict(self.args).get(key, default)

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.args)})"


def op(name: str, **kw) -> Op:
    return Op(name, tuple(kw.items()))


@dataclass(frozen=True)
class Program:
    """An input kind and shape (per sample), the ops applied in order, and the seed of the weights."""

    kind: str
    shape: tuple[int, ...]
    ops: tuple[Op, ...]
    seed: int = 0

    def __repr__(self) -> str:
        lines = [f"Program({self.kind} {self.shape}, seed={self.seed}):"]
        lines += [f"  {i}: {o!r}" for i, o in enumerate(self.ops)]
        return "\n".join(lines)

    def names(self) -> set[str]:
        """Every op name in the program, branch arms included."""
        out = set()
        for o in self.ops:
            out.add(o.name if o.name != "attn" else f"attn-{o['variant']}{'-rotary' if o['rotary'] else ''}"
                    f"{'-' + o.get('rel') if o.get('rel') else ''}")
            if o.name == "branch":
                out |= {f"branch:{a.name}" for a in (*o["then"], *o["else_"])}
        return out


@functools.cache
def audit_supports(name: str) -> bool:
    """Does the audit have a rule for ``name`` (``view_as``, ``reshape_as``)? Decided on conv → op → BatchNorm,
    where the conv's bias is redundant exactly when the op passes the offset on. Until the rule exists
    (issue 21, item 4) the op would only show up as "not analysed" misses, so the generator leaves it out."""
    program = Program("img", (2, 4, 4), (op("conv", out=3, k=1, pad=0, bias=True, groups=1, mode="zeros"), op(name),
                                         op("bn", affine=True, track=True)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        findings = find_biases(ProgramNet(program), audit_example(program))
    return next(f.status for f in findings if f.param == "m0.bias") == "redundant"


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# A normalisation (or softmax) over a single element outputs a constant, and one that subtracts the mean of
# two elements outputs ±1 (up to its eps): everything before it is dead, or matters only through a sign — a
# degenerate model no rule is meant for. The generator never builds one: a mean-subtracting normalisation
# averages over at least LEAST elements, an RMSNorm or a softmax over at least two.
LEAST = 3


def _ln_axes(shape: tuple, least: int = LEAST) -> list[int]:
    """How many trailing axes a LayerNorm (an RMSNorm, ``least=2``) may normalise."""
    return [n for n in range(1, len(shape) + 1) if math.prod(shape[-n:]) >= least]


def _gn_groups(kind: str, shape: tuple) -> list[int]:
    """GroupNorm group counts that leave at least LEAST elements per group."""
    chans = shape[0] if kind == "img" else shape[-1]
    per_channel = shape[1] * shape[2] if kind == "img" else shape[0]
    return [g for g in _divisors(chans) if chans // g * per_channel >= LEAST]


# Shape bookkeeping: a state is (kind, shape) with kind "img" (C, H, W), "seq" (L, D) or "vec" (D,).

def out_state(kind: str, shape: tuple, o: Op) -> tuple[str, tuple]:
    """The state after ``o``; the generator only draws ops valid in the current state."""
    n = o.name
    if kind == "img":
        c, h, w = shape
        if n == "conv":
            k, p = o["k"], o["pad"]
            return kind, (o["out"], h + 2 * p - k + 1, w + 2 * p - k + 1)
        if n == "convT":
            return kind, (o["out"], h + o["k"] - 1, w + o["k"] - 1)
        if n in ("maxpool", "avgpool"):
            k, s, p = o["k"], o["s"], o["pad"]
            return kind, (c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        if n == "adaptive":
            return kind, (c, o["size"], o["size"])
        if n == "gmean":
            return kind, (c, 1, 1)
        if n == "perm":
            return kind, (c, w, h)
        if n == "cat":
            return kind, (c + o["c"], h, w)
        if n == "to_seq":
            return "seq", (h * w, c)
        if n == "to_vec":
            return "vec", ((c * h * w) if o["how"] == "flatten" else c,)
        return kind, shape
    if kind == "seq":
        l, d = shape
        if n == "linear":
            return kind, (l, o["out"])
        if n == "conv1d":
            return kind, (l + 2 * o["pad"] - o["k"] + 1, o["out"])
        if n == "pool1d":
            return kind, ((l + 2 * o["pad"] - o["k"]) // o["s"] + 1, d)
        if n == "perm":
            return kind, (d, l)
        if n == "cat":
            return kind, (l, d + o["c"])
        if n == "to_vec":
            return "vec", ((l * d) if o["how"] == "flatten" else d,)
        return kind, shape
    (d,) = shape
    if n == "linear":
        return kind, (o["out"],)
    if n == "cat":
        return kind, (d + o["c"],)
    if n == "to_seq":
        return "seq", (o["rows"], d // o["rows"])
    return kind, shape


#: Ops that keep the shape, for the arms of a data-dependent branch.
_ARM_OPS = ("scale", "act", "bn", "ln", "gn", "dropout", "rms", "linear_same", "conv_same")


@st.composite
def _arm_op(draw, kind: str, shape: tuple) -> Op:
    name = draw(st.sampled_from([n for n in _ARM_OPS if _arm_ok(n, kind, shape)]))
    if name == "scale":
        return op("scale", c=draw(st.sampled_from([2.0, -0.5])))
    if name == "act":
        return op("act", fn=draw(st.sampled_from(["relu", "gelu", "tanh"])))
    if name == "bn":
        return op("bn", affine=True, track=True)
    if name == "ln":
        return op("ln", axes=1, functional=False)
    if name == "gn":
        return op("gn", groups=draw(st.sampled_from(_gn_groups(kind, shape))))
    if name == "dropout":
        return op("dropout", p=0.25)
    if name == "rms":
        return op("rms", axes=1)
    if name == "linear_same":
        return op("linear", out=shape[-1], bias=draw(st.booleans()))
    return op("conv", out=shape[0], k=1, pad=0, bias=draw(st.booleans()), groups=1, mode="zeros")


def _arm_ok(name: str, kind: str, shape: tuple) -> bool:
    if name == "gn":
        return kind in ("img", "seq") and bool(_gn_groups(kind, shape))
    if name in ("ln", "rms"):
        return shape[-1] >= (LEAST if name == "ln" else 2)
    if name == "conv_same":
        return kind == "img"
    if name == "linear_same":
        return kind in ("seq", "vec")
    if name == "bn":
        return kind in ("img", "seq", "vec")
    return True


@st.composite
def _branch(draw, kind: str, shape: tuple, control_flow: str) -> Op:
    """``if x.mean() > 0: then else: else_`` on the model's input. ``activations``: one activation on each
    arm, different ones; both stop every offset, so no status can depend on the arm (the model still
    cannot be traced, its graph is recorded); ``any``: arms of 0-2 arbitrary shape-keeping ops."""
    if control_flow == "activations":
        a, b = draw(st.sampled_from([("relu", "gelu"), ("tanh", "relu"), ("gelu", "tanh")]))
        return op("branch", then=(op("act", fn=a),), else_=(op("act", fn=b),))
    then = tuple(draw(st.lists(_arm_op(kind, shape), max_size=2)))
    else_ = tuple(draw(st.lists(_arm_op(kind, shape), max_size=2)))
    return op("branch", then=then, else_=else_)


def _pool_params(draw, size: int, other: int | None = None) -> tuple[int, int, int]:
    smallest = min(size, other) if other is not None else size
    k = draw(st.sampled_from([k for k in (2, 1, 3) if k <= smallest + 2]))
    pad = draw(st.integers(0, k // 2))
    if smallest + 2 * pad < k:
        pad = k // 2
    if smallest + 2 * pad < k:
        k, pad = 1, 0
    s = draw(st.sampled_from([1, 2]))
    return k, s, pad


@st.composite
def _step(draw, kind: str, shape: tuple, saved: list, control_flow: str | None) -> Op:
    """One op valid in the state ``(kind, shape)``; ``saved`` holds the states saved so far."""
    names = _candidates(kind, shape, saved, control_flow)
    name = draw(st.sampled_from(names))
    b = st.booleans()
    if kind == "img":
        c, h, w = shape
        if name == "conv":
            k = draw(st.sampled_from([k for k in (1, 3, 2) if k <= min(h, w) + 2]))
            pad = draw(st.integers(0, 1))
            if min(h, w) + 2 * pad < k:
                pad = 1
            out = draw(st.integers(2, MAX_C))
            groups = draw(st.sampled_from([1] + ([c] if out == c and c > 1 else [])))
            mode = draw(st.sampled_from(["zeros", "replicate"])) if pad else "zeros"
            return op("conv", out=out, k=k, pad=pad, bias=draw(b), groups=groups, mode=mode)
        if name == "convT":
            return op("convT", out=draw(st.integers(2, MAX_C)), k=2, bias=draw(b))
        if name in ("maxpool", "avgpool"):
            k, s, pad = _pool_params(draw, h, w)
            extra = {"count_include_pad": draw(b)} if name == "avgpool" else {}
            return op(name, k=k, s=s, pad=pad, functional=draw(b), **extra)
        if name == "adaptive":
            return op("adaptive", how=draw(st.sampled_from(["avg", "max"])),
                      size=draw(st.integers(1, min(h, w))))
        if name == "gmean":
            return op("gmean")
        if name in ("bn", "in"):
            return op(name, affine=draw(b), track=draw(b))
        if name == "bnact":
            return op("bnact")
        if name == "gn":
            return op("gn", groups=draw(st.sampled_from(_gn_groups(kind, shape))))
        if name == "ln":
            return op("ln", axes=draw(st.sampled_from(_ln_axes(shape))), functional=draw(b))
        if name == "ln2d":
            return op("ln2d")
        if name == "rms":
            return op("rms", axes=draw(st.sampled_from(_ln_axes(shape, 2))))
        if name == "expand_as":
            return op("expand_as", dims=draw(st.sampled_from([(1,), (2, 3)])))
        if name == "to_vec":
            hows = ["pool"] + (["flatten"] if c * h * w <= 32 else [])
            return op("to_vec", how=draw(st.sampled_from(hows)))
    elif kind == "seq":
        l, d = shape
        if name == "linear":
            return op("linear", out=draw(st.integers(2, MAX_C)), bias=draw(b))
        if name == "conv1d":
            k = draw(st.sampled_from([k for k in (1, 3) if k <= l + 2]))
            pad = draw(st.integers(0, 1)) if l >= k else 1
            return op("conv1d", out=draw(st.integers(2, MAX_C)), k=k, pad=pad, bias=draw(b))
        if name == "pool1d":
            k, s, pad = _pool_params(draw, l)
            return op("pool1d", how=draw(st.sampled_from(["max", "avg"])), k=k, s=s, pad=pad)
        if name in ("bn", "in"):
            return op(name, affine=draw(b), track=draw(b))
        if name == "gn":
            return op("gn", groups=draw(st.sampled_from(_gn_groups(kind, shape))))
        if name == "ln":
            return op("ln", axes=draw(st.sampled_from(_ln_axes(shape))), functional=draw(b))
        if name == "rms":
            return op("rms", axes=draw(st.sampled_from(_ln_axes(shape, 2))))
        if name == "attn":
            variant = draw(st.sampled_from(["manual", "sdpa", "packed", "mha"]))
            if variant == "mha":
                return op("attn", variant="mha", heads=draw(st.sampled_from([h for h in (1, 2) if d % h == 0])),
                          rotary=False, q=True, k=True, v=True, out=True)
            rotary = d % 2 == 0 and draw(b)
            qkv = {"q": draw(b), "k": draw(st.booleans()), "v": draw(b)} if variant != "packed" else \
                {"q": True, "k": True, "v": True}
            return op("attn", variant=variant, heads=1, rotary=rotary, **qkv,
                      out=draw(st.sampled_from([None, True, False])), rel=draw(st.sampled_from(_RELATIVE)))
        if name == "softmax":
            return op("softmax", dim=draw(st.sampled_from([dim for dim in (2, 1) if shape[dim - 1] >= 2])))
        if name == "expand_as":
            return op("expand_as", dims=draw(st.sampled_from([(1,), (2,)])))
        if name == "to_vec":
            hows = ["mean"] + (["flatten"] if l * d <= 32 else [])
            return op("to_vec", how=draw(st.sampled_from(hows)))
    else:
        (d,) = shape
        if name == "linear":
            return op("linear", out=draw(st.integers(2, MAX_C)), bias=draw(b))
        if name == "bn":
            return op("bn", affine=draw(b), track=draw(b))
        if name == "ln":
            return op("ln", axes=1, functional=draw(b))
        if name == "rms":
            return op("rms", axes=1)
        if name == "softmax":
            return op("softmax", dim=1)
        if name == "to_seq":
            return op("to_seq", rows=draw(st.sampled_from([r for r in _divisors(d) if 1 < r and d // r >= 2])))
    # ops shared by every kind
    if name == "act":
        return op("act", fn=draw(st.sampled_from(["relu", "gelu", "tanh"])))
    if name == "scale":
        return op("scale", c=draw(st.sampled_from([2.0, -0.5])))
    if name == "dropout":
        return op("dropout", p=0.25)
    if name in ("perm", "view_as", "reshape_as", "save", "ln2d", "bnact", "gmean", "to_seq"):
        return op(name)
    if name in ("add", "sub"):
        return op(name, j=draw(st.sampled_from(_add_partners(kind, shape, saved))))
    if name == "cat":
        j = draw(st.sampled_from(_cat_partners(kind, shape, saved)))
        return op("cat", j=j, c=(saved[j][1][0] if kind == "img" else saved[j][1][-1]))
    if name == "branch":
        return draw(_branch(kind, shape, control_flow))
    if name == "res":
        return op("res", inner=draw(_residual_inner(kind, shape)))
    raise AssertionError(name)


@st.composite
def _residual_inner(draw, kind: str, shape: tuple) -> Op:
    """The shape-keeping layer of a residual block ``h + layer(h)``."""
    b = st.booleans()
    if kind == "img":
        k = draw(st.sampled_from([3, 1]))
        return op("conv", out=shape[0], k=k, pad=k // 2, bias=draw(b), groups=1, mode="zeros")
    if kind == "seq":
        choice = draw(st.sampled_from(["linear", "attn"] if shape[0] > 1 else ["linear"]))
        if choice == "attn":
            variant = draw(st.sampled_from(["manual", "sdpa", "packed", "mha"]))
            heads = draw(st.sampled_from([h for h in (1, 2) if shape[1] % h == 0])) if variant == "mha" else 1
            rotary = variant != "mha" and shape[1] % 2 == 0 and draw(b)
            return op("attn", variant=variant, heads=heads, rotary=rotary, q=True, k=True, v=True,
                      out=True if variant == "mha" else draw(st.sampled_from([True, False])),
                      rel=None if variant == "mha" else draw(st.sampled_from(_RELATIVE)))
    return op("linear", out=shape[-1], bias=draw(b))


class _Saved(list):
    """The states saved so far, each ``(kind, shape, stamp)``; ``now`` counts the ops that changed the
    tensor, and a save records it as its stamp. The tensor is combined only with one saved before its
    last change: ``h - h`` is zero (a dead model)."""

    now = 0


def _add_partners(kind: str, shape: tuple, saved: _Saved) -> list[int]:
    return [j for j, (k2, s2, t) in enumerate(saved) if (k2, s2) == (kind, shape) and t < saved.now]


def _cat_partners(kind: str, shape: tuple, saved: _Saved) -> list[int]:
    out = []
    for j, (k2, s2, t) in enumerate(saved):
        if k2 != kind or t >= saved.now:
            continue
        same = s2[1:] == shape[1:] if kind == "img" else s2[:-1] == shape[:-1]
        if same and (s2[0] + shape[0] if kind == "img" else s2[-1] + shape[-1]) <= MAX_C:
            out.append(j)
    return out


#: How often each op is drawn, relative to the others: layers with biases and what may cancel them most.
_WEIGHT = {"conv": 5, "linear": 5, "conv1d": 2, "convT": 1, "attn": 6, "bn": 3, "ln": 3, "gn": 2, "in": 2, "rms": 1,
           "ln2d": 1, "bnact": 1, "maxpool": 3, "avgpool": 2, "adaptive": 2, "pool1d": 2, "save": 2, "add": 3,
           "sub": 1, "cat": 4, "res": 4}


def _candidates(kind: str, shape: tuple, saved: list, control_flow: str | None) -> list[str]:
    """The op names valid in the state, each repeated by its weight (:data:`_WEIGHT`)."""
    return [n for n in _valid(kind, shape, saved, control_flow) for _ in range(_WEIGHT.get(n, 1))]


def _valid(kind: str, shape: tuple, saved: list, control_flow: str | None) -> list[str]:
    common = ["act", "scale", "save", "dropout", "res"]
    if _add_partners(kind, shape, saved):
        common += ["add", "sub"]
    if _cat_partners(kind, shape, saved):
        common.append("cat")
    if control_flow:
        common.append("branch")
    if kind == "img":
        c, h, w = shape
        names = ["conv", "bn", "maxpool", "avgpool", "adaptive", "gmean", "bnact", "perm", "expand_as", "to_vec"]
        names += [n for n in ("view_as", "reshape_as") if audit_supports(n)]
        names += [n for n, ok in (("gn", _gn_groups(kind, shape)), ("ln", _ln_axes(shape)),
                                  ("rms", _ln_axes(shape, 2)), ("ln2d", c >= LEAST), ("in", h * w >= LEAST)) if ok]
        if h < MAX_C and w < MAX_C:
            names.append("convT")
        if 2 <= h * w <= 16:
            names.append("to_seq")
        return names + common
    if kind == "seq":
        l, d = shape
        names = ["linear", "bn", "conv1d", "pool1d", "expand_as", "to_vec"]
        names += [n for n, ok in (("ln", _ln_axes(shape)), ("rms", _ln_axes(shape, 2)), ("softmax", l * d > l + d - 1),
                                  ("gn", _gn_groups(kind, shape)), ("in", l >= LEAST), ("attn", l > 1)) if ok]
        if l <= MAX_C:
            names.append("perm")
        return names + common
    (d,) = shape
    names = ["linear", "bn"] + (["rms", "softmax"] if d >= 2 else []) + (["ln"] if d >= LEAST else [])
    if any(1 < r and d // r >= 2 for r in _divisors(d)):
        names.append("to_seq")
    return names + common


@st.composite
def programs(draw, max_ops: int = 8, control_flow: str | None = "activations") -> Program:
    """A random :class:`Program` of 2 to ``max_ops`` ops; ``control_flow``: None (no branches),
    ``"activations"`` (branches between two activations, :func:`_branch`) or ``"any"``."""
    kind = draw(st.sampled_from(["img", "seq", "img", "vec"]))
    if kind == "img":
        shape = (draw(st.integers(2, 4)), draw(st.integers(2, MAX_C)), draw(st.integers(2, MAX_C)))
    elif kind == "seq":
        shape = (draw(st.integers(2, 6)), draw(st.integers(2, MAX_C)))
    else:
        shape = (draw(st.integers(2, MAX_C)),)
    state = (kind, shape)
    saved = _Saved()
    ops = []
    for _ in range(draw(st.integers(2, max_ops))):
        step = draw(_step(*state, saved, control_flow))
        # a residual block is written out as its three ops: save, the layer, add
        for o in ([op("save"), step["inner"], op("add", j=len(saved))] if step.name == "res" else [step]):
            if o.name == "save":
                saved.append((*state, saved.now))
            else:
                saved.now += 1
            ops.append(o)
            state = out_state(*state, o)
    return Program(kind, shape, tuple(ops), draw(st.integers(0, 2**16)))


# --------------------------------------------------------------------------------------------- modules

class BatchNormAct2d(nn.BatchNorm2d):
    """timm-style: BatchNorm and a ReLU in one module, computed with F.batch_norm."""

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training or not self.track_running_stats, self.momentum or 0.0, self.eps)
        return F.relu(x)


class FunctionalLayerNorm(nn.LayerNorm):
    """A LayerNorm subclass calling ``F.layer_norm`` (traced into, as timm's are)."""

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class LayerNorm2d(nn.LayerNorm):
    """ConvNeXt-style: LayerNorm over the channels of an NCHW map."""

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class Rotary(nn.Module):
    """Rotary position embedding with fixed tables: ``x·cos + rotate_half(x)·sin``."""

    def __init__(self, length: int, dim: int):
        super().__init__()
        pos = torch.arange(length, dtype=torch.float64)[:, None]
        freq = 1.0 / (10.0 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        angles = torch.cat([pos * freq, pos * freq], dim=-1)
        self.register_buffer("cos", angles.cos())
        self.register_buffer("sin", angles.sin())

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=-1)
        return x * self.cos + torch.cat([-x2, x1], dim=-1) * self.sin


#: The additive score biases an attention op may draw (None: none): a relative-position table indexed by
#: the query-key distance (Swin, T5; it differs between keys, so it is active) or one bias per query
#: (the same for every key: the softmax over keys cancels it).
_RELATIVE = (None, None, "table", "query")


class Attention(nn.Module):
    """Single-head softmax attention over a (N, L, D) sequence: separate, packed or SDPA; ``rel`` adds a
    learned bias to the scores (SDPA: as its ``attn_mask``)."""

    def __init__(self, o: Op, length: int, dim: int):
        super().__init__()
        self.variant, self.dim, self.rel = o["variant"], dim, o.get("rel")
        if self.rel == "table":
            self.rel_bias_table = nn.Parameter(torch.zeros(2 * length - 1))
            pos = torch.arange(length)
            self.register_buffer("rel_index", pos[:, None] - pos[None, :] + length - 1)
        elif self.rel == "query":
            self.query_bias = nn.Parameter(torch.zeros(length, 1))
        if self.variant == "packed":
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.q, self.k, self.v = (nn.Linear(dim, dim, bias=o[n]) for n in "qkv")
        self.rotary = Rotary(length, dim) if o["rotary"] else None
        self.proj = nn.Linear(dim, dim, bias=o["out"]) if o["out"] is not None else None

    def forward(self, x):
        if self.variant == "packed":
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        rel = None
        if self.rel == "table":
            rel = self.rel_bias_table[self.rel_index]
        elif self.rel == "query":
            rel = self.query_bias.expand(-1, x.shape[1])
        if self.variant == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=rel)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.dim)
            y = torch.softmax(scores if rel is None else scores + rel, dim=-1) @ v
        return self.proj(y) if self.proj is not None else y


class MHA(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm, nn.RMSNorm)
_ACT = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _module(kind: str, shape: tuple, o: Op) -> nn.Module | None:
    """The module ``o`` needs in the state ``(kind, shape)`` (None for a purely functional op)."""
    n = o.name
    chans = shape[0] if kind == "img" else shape[-1]
    if n == "conv":
        return nn.Conv2d(shape[0], o["out"], o["k"], padding=o["pad"], bias=o["bias"], groups=o["groups"],
                         padding_mode=o["mode"])
    if n == "convT":
        return nn.ConvTranspose2d(shape[0], o["out"], o["k"], bias=o["bias"])
    if n == "conv1d":
        return nn.Conv1d(shape[1], o["out"], o["k"], padding=o["pad"], bias=o["bias"])
    if n == "linear":
        return nn.Linear(shape[-1], o["out"], bias=o["bias"])
    if n in ("maxpool", "avgpool") and not o["functional"]:
        if n == "maxpool":
            return nn.MaxPool2d(o["k"], o["s"], o["pad"])
        return nn.AvgPool2d(o["k"], o["s"], o["pad"], count_include_pad=o["count_include_pad"])
    if n == "adaptive":
        return (nn.AdaptiveAvgPool2d if o["how"] == "avg" else nn.AdaptiveMaxPool2d)(o["size"])
    if n == "bn":
        cls = {"img": nn.BatchNorm2d, "seq": nn.BatchNorm1d, "vec": nn.BatchNorm1d}[kind]
        return cls(chans, affine=o["affine"], track_running_stats=o["track"])
    if n == "bnact":
        return BatchNormAct2d(chans)
    if n == "in":
        cls = nn.InstanceNorm2d if kind == "img" else nn.InstanceNorm1d
        return cls(chans, affine=o["affine"], track_running_stats=o["track"])
    if n == "gn":
        return nn.GroupNorm(o["groups"], chans)
    if n == "ln":
        cls = FunctionalLayerNorm if o["functional"] else nn.LayerNorm
        return cls(shape[-o["axes"]:])
    if n == "ln2d":
        return LayerNorm2d(shape[0])
    if n == "rms":
        return nn.RMSNorm(shape[-o["axes"]:])
    if n == "act":
        return _ACT[o["fn"]]()
    if n == "dropout":
        return nn.Dropout(o["p"])
    if n == "attn":
        return MHA(shape[1], o["heads"]) if o["variant"] == "mha" else Attention(o, *shape)
    return None


class ProgramNet(nn.Module):
    """The model a :class:`Program` describes: module ``m{i}`` for op ``i`` (``m{i}t{j}`` / ``m{i}e{j}`` for
    the arms of a branch); float64, biases and affine parameters random, running statistics random."""

    def __init__(self, program: Program):
        super().__init__()
        self.program = program
        self.plan = []
        kind, shape = program.kind, program.shape
        torch.manual_seed(program.seed)
        for i, o in enumerate(program.ops):
            self._add(f"m{i}", kind, shape, o)
            if o.name == "branch":
                for tag, arm in (("t", o["then"]), ("e", o["else_"])):
                    for j, a in enumerate(arm):
                        self._add(f"m{i}{tag}{j}", kind, shape, a)
            self.plan.append((f"m{i}", kind, o))
            kind, shape = out_state(kind, shape, o)
        self.double()
        with torch.no_grad():
            for name, p in self.named_parameters():
                if is_bias_parameter(name):
                    p.uniform_(-1.0, 1.0)
            for m in self.modules():
                if isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
                    m.weight.uniform_(0.5, 1.5)
            for m in self.modules():  # peaked attention: near-uniform weights average the tokens into one
                if isinstance(m, Attention):
                    for w in ([m.qkv.weight[:2 * m.dim]] if m.variant == "packed" else [m.q.weight, m.k.weight]):
                        w.mul_(ATTENTION_GAIN)
                elif isinstance(m, nn.MultiheadAttention):
                    m.in_proj_weight[:2 * m.embed_dim].mul_(ATTENTION_GAIN)
            for name, t in self.named_buffers():
                if name.endswith("running_mean"):
                    t.normal_()
                elif name.endswith("running_var"):
                    t.uniform_(0.5, 2.0)

    def _add(self, name: str, kind: str, shape: tuple, o: Op) -> None:
        m = _module(kind, shape, o)
        if m is not None:
            self.add_module(name, m)

    def __repr__(self) -> str:
        return f"ProgramNet<{self.program!r}>"

    def forward(self, x):
        h, saved = x, []
        for name, kind, o in self.plan:
            if o.name == "save":
                saved.append(h)
            elif o.name == "branch":
                arm, tag = (o["then"], "t") if x.mean() > 0 else (o["else_"], "e")
                for j, a in enumerate(arm):
                    h = self._op(f"{name}{tag}{j}", kind, a, h, saved)
            else:
                h = self._op(name, kind, o, h, saved)
        return h

    def _op(self, name: str, kind: str, o: Op, h, saved):
        n, m = o.name, getattr(self, name, None)
        if n in ("conv", "convT", "linear", "adaptive", "bnact", "ln2d", "act", "dropout", "attn") or (
                n in ("ln", "rms") or (n in ("bn", "in", "gn") and kind in ("img", "vec"))):
            return m(h)
        if n in ("bn", "in", "gn", "conv1d"):  # over a sequence's features: (N, D, L)
            return m(h.transpose(1, 2)).transpose(1, 2)
        if n == "maxpool":
            return m(h) if m is not None else F.max_pool2d(h, o["k"], o["s"], o["pad"])
        if n == "avgpool":
            return m(h) if m is not None else F.avg_pool2d(h, o["k"], o["s"], o["pad"],
                                                           count_include_pad=o["count_include_pad"])
        if n == "pool1d":
            fn = F.max_pool1d if o["how"] == "max" else F.avg_pool1d
            return fn(h.transpose(1, 2), o["k"], o["s"], o["pad"]).transpose(1, 2)
        if n == "gmean":
            return h.mean((2, 3), keepdim=True)
        if n == "scale":
            return h * o["c"]
        if n == "perm":
            return h.transpose(-2, -1)
        if n == "view_as":
            return h.flatten(1).view_as(h)
        if n == "reshape_as":
            return h.transpose(2, 3).reshape_as(h)
        if n == "expand_as":
            return h + h.mean(o["dims"], keepdim=True).expand_as(h)
        if n == "add":
            return h + saved[o["j"]]
        if n == "sub":
            return h - saved[o["j"]]
        if n == "cat":
            return torch.cat([h, saved[o["j"]]], dim=1 if kind == "img" else -1)
        if n == "softmax":
            return torch.softmax(h, dim=o["dim"])
        if n == "to_seq":
            return h.flatten(2).transpose(1, 2) if kind == "img" else h.unflatten(1, (o["rows"], -1))
        if n == "to_vec":
            if o["how"] == "flatten":
                return h.flatten(1)
            return h.mean((2, 3)) if kind == "img" else h.mean(1)
        raise AssertionError(n)


# --------------------------------------------------------------------------------------------- ground truth

@dataclass(frozen=True)
class Unit:
    """A bias, or a part (query / key / value third) of a packed one."""

    param: str
    part: str | None = None
    span: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        return f"{self.param}[{self.part}]" if self.part else self.param


def double_with_random_biases(factory) -> nn.Module:
    """``factory()`` (seeded) in float64, every parameter named like a bias drawn from U(-1, 1): non-trivial
    biases, so nothing cancels by accident in a hand-written rule case."""
    torch.manual_seed(0)
    model = factory().double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name:
                p.uniform_(-1.0, 1.0)
    return model


def units(model: nn.Module) -> list[Unit]:
    """Every bias; a packed attention bias as its three parts."""
    out = []
    for name, p in model.named_parameters():
        if not is_bias_parameter(name):
            continue
        if PACKED.search(name) and p.dim() == 1 and p.numel() % 3 == 0:
            n = p.numel() // 3
            out += [Unit(name, part, (i * n, (i + 1) * n)) for i, part in enumerate(("query", "key", "value"))]
        else:
            out.append(Unit(name))
    return out


def fresh_inputs(program: Program, n: int, seed: int) -> list[torch.Tensor]:
    """``n`` batches of standard-normal inputs, shifted by ±1 in turn (so a branch on the input's
    mean takes both arms)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn((BATCH, *program.shape), generator=g, dtype=torch.float64) + (1.0 if i % 2 else -1.0)
            for i in range(n)]


def _forward(net: nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return net(x)


@dataclass
class Truth:
    """Per unit: does perturbing it move the output in training mode / in eval mode?"""

    moved_train: dict[Unit, float]
    moved_eval: dict[Unit, float]
    constant: bool = False  # the output does not depend on the input (a dead model: every bias is dead)

    def effect(self, u: Unit) -> float:
        return max(self.moved_train[u], self.moved_eval[u])


def ground_truth(model: nn.Module, program: Program, n_inputs: int = 4, seed: int = 1) -> Truth:
    """Perturb each unit (a random vector plus a random constant) in a float64 copy and compare with the
    unperturbed copy on the same ``n_inputs`` fresh batches (same dropout masks), in training mode and
    then in eval mode with running statistics re-estimated from those training batches: ``momentum=1``
    (the statistics of the last batch; InstanceNorm ignores ``momentum=None``), so neither copy keeps
    anything of its initial statistics."""
    net = copy.deepcopy(model).double()
    for m in net.modules():
        if isinstance(m, (_BatchNorm, _InstanceNorm)) and m.track_running_stats:
            m.momentum = 1.0  # the running statistics become those of the last training batch
    state = {k: v.clone() for k, v in net.state_dict().items()}
    train_in = fresh_inputs(program, n_inputs, seed)
    eval_in = fresh_inputs(program, n_inputs, seed + 1000)

    def run() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        net.train()
        train = [_forward(net, x, seed + i) for i, x in enumerate(train_in)]
        net.eval()
        return train, [_forward(net, x, 0) for x in eval_in]

    g = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        base_train, base_eval = run()
        scale = max(1.0, *(float(t.abs().max()) for t in base_train + base_eval))
        constant = all(float((t - base[0]).abs().max()) <= ZERO_TOL * scale
                       for base in (base_train, base_eval) for t in base[1:])
        moved_train, moved_eval = {}, {}
        params = dict(net.named_parameters())
        for u in units(net):
            net.load_state_dict(state)
            p = params[u.param]
            target = p.view(-1)[slice(*u.span)] if u.span else p
            target.add_(torch.randn(target.shape, generator=g, dtype=torch.float64)
                        + torch.randn((), generator=g, dtype=torch.float64))
            train, ev = run()
            moved_train[u] = max(float((a - b).abs().max()) for a, b in zip(train, base_train)) / scale
            moved_eval[u] = max(float((a - b).abs().max()) for a, b in zip(ev, base_eval)) / scale
        net.load_state_dict(state)
    return Truth(moved_train, moved_eval, constant)


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _fold_bn(net: nn.Module, layer_name: str, bn_name: str) -> None:
    """Fold the BatchNorm ``bn_name`` (eval mode, running statistics) into the conv / linear layer before it:
    ``W' = W·s``, ``b' = (b − μ)·s + β``, ``s = γ / √(σ² + ε)``; the BatchNorm becomes its activation
    (timm's BatchNormAct2d) or an identity."""
    layer, bn = net.get_submodule(layer_name), net.get_submodule(bn_name)
    s = (bn.running_var + bn.eps).rsqrt() * (bn.weight if bn.weight is not None else 1.0)
    axis = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    shape = [1] * layer.weight.dim()
    shape[axis] = -1
    b = layer.bias if layer.bias is not None else torch.zeros_like(s)
    with torch.no_grad():
        layer.weight = nn.Parameter(layer.weight * s.reshape(shape))
        layer.bias = nn.Parameter((b - bn.running_mean) * s + (bn.bias if bn.bias is not None else 0.0))
    _set_submodule(net, bn_name, nn.ReLU() if isinstance(bn, BatchNormAct2d) else nn.Identity())


def check_folds(model: nn.Module, program: Program, findings: list, n_inputs: int = 4,
                seed: int = 2) -> dict[str, float]:
    """Each ``foldable`` finding folded alone into a copy of ``model`` (eval mode); the relative eval-mode
    output difference on ``n_inputs`` fresh batches, per finding label."""
    inputs = fresh_inputs(program, n_inputs, seed)
    base_net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        base = [base_net(x) for x in inputs]
    scale = max(1.0, *(float(t.abs().max()) for t in base))
    out = {}
    for f in findings:
        if f.status != "foldable":
            continue
        net = copy.deepcopy(base_net)
        try:
            with torch.no_grad():
                if f.fold_value is not None:
                    _fold_affine(net, f)
                else:
                    _fold_bn(net, f.consumer, f.module)
                diff = max(float((net(x) - b).abs().max()) for x, b in zip(inputs, base)) / scale
        except Exception as exc:  # noqa: BLE001 - a fold that cannot even be applied is wrong
            diff = math.inf
            warnings.warn(f"fold of {f.label} failed: {exc}", stacklevel=2)
        out[f.label] = diff
    return out


def check_removal(model: nn.Module, program: Program, findings: list, n_inputs: int = 4, seed: int = 3) -> str:
    """Remove every ``redundant`` bias as the audit does (``drop_biases``: ``bias = None`` or zeroed, running
    means corrected) and compare with the original on fresh batches, in training mode (same dropout
    masks) and in eval mode; "" when equivalent, else what differs (or the error removal raised)."""
    inputs = fresh_inputs(program, n_inputs, seed)
    base = copy.deepcopy(model).double()
    try:
        fixed = drop_biases(copy.deepcopy(base), [f for f in findings if f.status == "redundant"])
        with torch.no_grad():
            for mode in ("train", "eval"):
                pairs = []
                for i, x in enumerate(inputs):
                    a = _forward(getattr(base, mode)(), x, seed + i)
                    b = _forward(getattr(fixed, mode)(), x, seed + i)
                    pairs.append((a, b))
                scale = max(1.0, *(float(a.abs().max()) for a, _ in pairs))
                diff = max(float((a - b).abs().max()) for a, b in pairs) / scale
                if diff > REMOVE_TOL:
                    return f"in {mode} mode the outputs differ by {diff:.1e} after removal"
    except Exception as exc:  # noqa: BLE001 - a removal that crashes is a finding
        return f"removal raised {type(exc).__name__}: {exc}"
    return ""


# --------------------------------------------------------------------------------------------- comparison

@dataclass
class Report:
    """What the audit got wrong or missed on one program."""

    program: Program
    statuses: dict[str, str] = field(default_factory=dict)       # unit label → audit status
    reasons: dict[str, str] = field(default_factory=dict)
    truly_redundant: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)               # truly redundant and called redundant
    false_redundant: list[str] = field(default_factory=list)
    false_foldable: list[str] = field(default_factory=list)
    not_analysed: list[str] = field(default_factory=list)
    tiny: list[str] = field(default_factory=list)                # effect between ZERO_TOL and MOVE_TOL
    constant: bool = False                                        # a dead model: not counted for recall
    removal_error: str = ""                                       # removal changed the function, or crashed
    effects: dict[str, float] = field(default_factory=dict)      # unit label → relative output change
    source: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.false_redundant or self.false_foldable or self.removal_error)

    @property
    def missed(self) -> list[str]:
        return [u for u in self.truly_redundant if u not in self.found]

    def explain(self) -> str:
        rows = [repr(self.program), f"graph: {self.source}"]
        rows += [f"false redundant: {', '.join(self.false_redundant)}"] if self.false_redundant else []
        rows += [f"false foldable: {', '.join(self.false_foldable)}"] if self.false_foldable else []
        rows += [f"removal failed: {self.removal_error}"] if self.removal_error else []
        rows += [f"  {u}: {s} — {self.reasons[u]}" for u, s in self.statuses.items()]
        return "\n".join(rows)


def audit_example(program: Program) -> torch.Tensor:
    """The audit's example input (never one of the ground truth's)."""
    return torch.randn((BATCH, *program.shape), generator=torch.Generator().manual_seed(12345),
                       dtype=torch.float64)


def evaluate(program: Program) -> Report:
    """Audit the program's model, and compare every status with the ground truth."""
    from biaslab.experiments.audit.graph import analyse

    model = ProgramNet(program)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        findings, source = analyse(model, audit_example(program))
    report = Report(program, source=source)
    truth = ground_truth(model, program)
    folds = check_folds(model, program, findings)
    by_unit: dict[Unit, object] = {}
    for u in units(model):
        f = next(f for f in findings if f.param == u.param and (f.part is None or f.part == u.part))
        by_unit[u] = f
        report.statuses[u.label] = f.status
        report.reasons[u.label] = f.reason
        if f.reason.startswith("not analysed"):
            report.not_analysed.append(u.label)
        effect = report.effects[u.label] = truth.effect(u)
        if truth.constant:
            report.constant = True
        elif effect <= ZERO_TOL:
            report.truly_redundant.append(u.label)
            if f.status == "redundant":
                report.found.append(u.label)
        elif effect <= MOVE_TOL:
            report.tiny.append(u.label)
        if effect > MOVE_TOL and f.status == "redundant":
            report.false_redundant.append(
                f"{u.label} (train {truth.moved_train[u]:.1e}, eval {truth.moved_eval[u]:.1e})")
    for label, diff in folds.items():
        if diff > FOLD_TOL:
            report.false_foldable.append(f"{label} (eval {diff:.1e})")
    if any(f.status == "redundant" for f in findings) and not truth.constant:
        # (a dead model's outputs are rounding noise around a constant: no relative check applies)
        report.removal_error = check_removal(model, program, findings)
    return report


@dataclass
class Tally:
    """Totals over many reports, overall and per op (an op counts for every model that holds it)."""

    models: int = 0
    units: int = 0
    truly_redundant: int = 0
    found: int = 0
    false_redundant: int = 0
    false_foldable: int = 0
    removal_errors: int = 0
    not_analysed: int = 0
    tiny: int = 0
    constant_models: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    per_op: dict[str, list[int]] = field(default_factory=dict)   # op → [models, truly redundant, found, wrong]
    failures: list[Report] = field(default_factory=list)
    misses: list[tuple[str, str, Program]] = field(default_factory=list)

    def add(self, r: Report) -> None:
        self.models += 1
        self.units += len(r.statuses)
        self.truly_redundant += len(r.truly_redundant)
        self.found += len(r.found)
        self.false_redundant += len(r.false_redundant)
        self.false_foldable += len(r.false_foldable)
        self.removal_errors += bool(r.removal_error)
        self.not_analysed += len(r.not_analysed)
        self.tiny += len(r.tiny)
        self.constant_models += r.constant
        for s in r.statuses.values():
            self.statuses[s] = self.statuses.get(s, 0) + 1
        self.sources[r.source] = self.sources.get(r.source, 0) + 1
        wrong = len(r.false_redundant) + len(r.false_foldable) + bool(r.removal_error)
        for name in r.program.names():
            row = self.per_op.setdefault(name, [0, 0, 0, 0])
            row[0] += 1
            row[1] += len(r.truly_redundant)
            row[2] += len(r.found)
            row[3] += wrong
        if r.failed:
            self.failures.append(r)
        self.misses += [(u, r.reasons[u], r.program) for u in r.missed]

    @property
    def recall(self) -> float:
        return self.found / self.truly_redundant if self.truly_redundant else 1.0

    def summary(self) -> str:
        return (f"{self.models} models, {self.units} biases/parts ({self.statuses}); graphs {self.sources}; "
                f"false redundant {self.false_redundant}, false foldable {self.false_foldable}, removal errors "
                f"{self.removal_errors}; truly redundant {self.truly_redundant}, found {self.found} "
                f"(recall {self.recall:.2%}); not analysed {self.not_analysed}; tiny effects {self.tiny}; "
                f"dead models {self.constant_models}")
