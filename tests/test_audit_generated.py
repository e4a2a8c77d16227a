"""Differential testing of the audit against a generated ground truth (issue 21, item 5).

Random small models (:mod:`audit_models`) are audited, and every status is compared with what perturbing
the bias really does (float64, fresh inputs, training and eval mode) and, for ``foldable``, with what
folding it does. Targets: no false ``redundant``, no false ``foldable``, no removal that fails, and at
least 99 % of the truly redundant biases found. Then each op rule gets a positive and a negative case,
pinned both to the audit's status and to the ground truth. ``benchmarks/fuzz_audit.py`` runs the same
comparison on 10,000 models.
"""

import warnings

import pytest
import torch
from audit_models import (
    MOVE_TOL,
    ZERO_TOL,
    Program,
    ProgramNet,
    Tally,
    audit_example,
    audit_supports,
    evaluate,
    ground_truth,
    op,
    programs,
    units,
)
from hypothesis import HealthCheck, given, settings

from biaslab.experiments.audit import find_biases

#: Generated models the default suite checks (the issue asks for at least 300).
N_MODELS = 320


def _audit_generated(control_flow: str, n: int) -> Tally:
    """Audit ``n`` generated programs (deterministic) against the ground truth; each must have no false
    ``redundant`` or ``foldable`` and no failed removal. Returns the tally of all of them."""
    tally = Tally()

    @settings(max_examples=n, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(programs(control_flow=control_flow))
    def check(program):
        report = evaluate(program)
        tally.add(report)
        assert not report.failed, report.explain()

    check()
    return tally


def test_generated_models_match_the_ground_truth():
    # Branches on the input choose between two activations here, so the recall target is measured on
    # statuses every path agrees on; arms that treat an offset differently are checked for soundness
    # (never a false status) in test_generated_control_flow_is_never_wrong below.
    tally = _audit_generated("activations", N_MODELS)
    print(tally.summary())
    assert tally.models >= 300, tally.summary()
    assert tally.truly_redundant >= 60, tally.summary()  # the recall below is over enough cases to mean something
    assert tally.recall >= 0.99, tally.summary() + "".join(
        f"\nmissed {u}: {reason}\n{program!r}" for u, reason, program in tally.misses[:5])
    assert tally.statuses.get("foldable", 0) >= 20 and tally.sources.get("recorded", 0) >= 10, tally.summary()


def test_generated_control_flow_is_never_wrong():
    """Branches on the input with any arms (a normalisation on one arm only, arms that scale the offset
    differently, a layer one arm holds): the audit records every path the inputs can take and calls a
    bias active where the paths disagree, so no status is wrong. Its recall is lower here (a bias used on
    one path only is called active: measured 88 % on these 150, 92 % on 320, 94 % on 3,000 in
    benchmarks/fuzz_audit.py --control-flow any), the price of soundness."""
    tally = _audit_generated("any", 150)
    assert tally.models >= 150 and tally.sources.get("recorded", 0) >= 10, tally.summary()


def test_programs_build_deterministically():
    """The generator is deterministic: the same program builds the same weights."""
    program = Program("img", (3, 5, 5), (op("conv", out=4, k=3, pad=1, bias=True, groups=1, mode="zeros"),
                                         op("bn", affine=True, track=True)), seed=3)
    a, b = ProgramNet(program), ProgramNet(program)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --------------------------------------------------------------------------------------------- rule cases

def conv(out=4, k=1, pad=0, bias=True, groups=1, mode="zeros"):
    return op("conv", out=out, k=k, pad=pad, bias=bias, groups=groups, mode=mode)


def linear(out=4, bias=True):
    return op("linear", out=out, bias=bias)


BN = op("bn", affine=True, track=True)
IMG, SEQ, VEC = ("img", (3, 6, 6)), ("seq", (5, 4)), ("vec", (6,))


def attn(variant, rotary=False, out=True, q=True, k=True, v=True, rel=None):
    return op("attn", variant=variant, heads=1 if variant != "mha" else 2, rotary=rotary, q=q, k=k, v=v, out=out,
              rel=rel)


#: rule → (input, ops, expected statuses). Each rule of offsets.py / norms.py / graph.py has a case where it
#: lets the bias be cancelled or folded (positive) and one where it must not (negative).
CASES = {
    # linear ops replayed on the offset
    "perm, positive": (IMG, [conv(), op("perm"), BN], {"m0.bias": "redundant"}),
    "perm, negative": (SEQ, [linear(), op("perm"), BN], {"m0.bias": "active"}),
    "flatten, positive": (("img", (2, 3, 3)), [conv(), op("to_vec", how="flatten"), BN], {"m0.bias": "redundant"}),
    "flatten to features, negative": (("img", (2, 3, 3)), [conv(), op("to_vec", how="flatten"),
                                                           op("ln", axes=1, functional=False)], {"m0.bias": "active"}),
    "expand_as, positive": (IMG, [conv(), op("expand_as", dims=(2, 3)), BN], {"m0.bias": "redundant"}),
    "expand_as, negative": (IMG, [conv(), op("expand_as", dims=(1,)), op("ln", axes=3, functional=False)],
                            {"m0.bias": "active"}),
    "view_as, positive": (IMG, [conv(), op("view_as"), BN], {"m0.bias": "redundant"}),
    "reshape_as, positive": (IMG, [conv(), op("reshape_as"), BN], {"m0.bias": "redundant"}),
    "reshape_as, negative": (IMG, [conv(), op("reshape_as"), op("ln", axes=3, functional=False)],
                             {"m0.bias": "active"}),
    # convolutions and linear layers replayed: padding makes a constant offset vary at the borders
    "conv without padding, positive": (IMG, [conv(), conv(k=3, bias=False), op("in", affine=True, track=False)],
                                       {"m0.bias": "redundant"}),
    "conv with zero padding, negative": (IMG, [conv(), conv(k=3, pad=1, bias=False),
                                               op("in", affine=True, track=False)], {"m0.bias": "active"}),
    "transposed conv, positive": (IMG, [op("convT", out=4, k=2, bias=True), BN], {"m0.bias": "redundant"}),
    "transposed conv, negative": (IMG, [conv(), op("convT", out=4, k=2, bias=False),
                                        op("in", affine=True, track=False)], {"m0.bias": "active"}),
    # sums and concatenation
    "residual add, positive": (IMG, [conv(), op("save"), conv(bias=False), op("add", j=0), BN],
                               {"m0.bias": "redundant"}),
    "residual add, negative": (IMG, [conv(), op("save"), BN, op("add", j=0)],
                               {"m0.bias": "active", "m2.bias": "active"}),
    "difference, positive": (IMG, [conv(), op("save"), op("scale", c=2.0), op("sub", j=0), BN],
                             {"m0.bias": "redundant"}),
    "difference after dropout, negative": (IMG, [conv(), op("dropout", p=0.25), op("save"), op("reshape_as"),
                                                 op("sub", j=0)], {"m0.bias": "active"}),
    "concatenation, positive": (IMG, [conv(2), op("save"), conv(3), op("cat", j=0, c=2), BN],
                                {"m0.bias": "redundant", "m2.bias": "redundant"}),
    "concatenation, negative": (IMG, [conv(2), op("save"), conv(3), op("cat", j=0, c=2), op("ln2d")],
                                {"m0.bias": "active", "m2.bias": "active"}),
    # pointwise ops
    "scale, positive": (IMG, [conv(), op("scale", c=-0.5), BN], {"m0.bias": "redundant"}),
    "activation, negative": (IMG, [conv(), op("act", fn="gelu"), BN], {"m0.bias": "active"}),
    "activation after the norm, positive": (IMG, [conv(), BN, op("act", fn="relu")], {"m0.bias": "redundant"}),
    "dropout, negative": (IMG, [conv(), op("dropout", p=0.25), BN], {"m0.bias": "active"}),
    "dropout after the norm, positive": (IMG, [conv(), BN, op("dropout", p=0.25)], {"m0.bias": "redundant"}),
    # pooling
    "max pool with padding, positive": (IMG, [conv(), op("maxpool", k=3, s=2, pad=1, functional=False), BN],
                                        {"m0.bias": "redundant"}),
    "functional max pool, positive": (IMG, [conv(), op("maxpool", k=2, s=2, pad=0, functional=True), BN],
                                      {"m0.bias": "redundant"}),
    "max pool of a varying offset, negative": (
        IMG, [conv(), conv(k=3, pad=1, bias=False), op("maxpool", k=2, s=2, pad=0, functional=False),
              op("gmean"), BN], {"m0.bias": "active"}),
    "functional max pool of a varying offset, negative": (
        IMG, [conv(), conv(k=3, pad=1, bias=False), op("maxpool", k=3, s=1, pad=1, functional=True),
              op("to_vec", how="pool"), BN], {"m0.bias": "active"}),
    "max pool with windows of one position passes a varying offset, positive": (
        IMG, [op("ln", axes=1, functional=False), op("maxpool", k=1, s=1, pad=0, functional=True),
              op("adaptive", how="avg", size=1), BN], {"m0.bias": "redundant"}),
    "adaptive max pool, positive": (IMG, [conv(), op("adaptive", how="max", size=2), BN], {"m0.bias": "redundant"}),
    "adaptive max pool of a varying offset, negative": (
        IMG, [conv(), conv(k=3, pad=1, bias=False), op("adaptive", how="max", size=2), op("gmean"), BN],
        {"m0.bias": "active"}),
    "max pool over a sequence, negative": (
        SEQ, [linear(), op("conv1d", out=4, k=3, pad=1, bias=False), op("pool1d", how="max", k=2, s=2, pad=0),
              op("to_vec", how="mean"), BN], {"m0.bias": "active"}),
    "avg pool, positive": (IMG, [conv(), op("avgpool", k=2, s=2, pad=0, functional=False, count_include_pad=True),
                                 BN], {"m0.bias": "redundant"}),
    "avg pool not counting padding, positive": (
        IMG, [conv(), op("avgpool", k=3, s=1, pad=1, functional=True, count_include_pad=False), BN],
        {"m0.bias": "redundant"}),
    "avg pool counting zero padding, negative": (
        IMG, [conv(), op("avgpool", k=3, s=1, pad=1, functional=False, count_include_pad=True), BN],
        {"m0.bias": "active"}),
    "adaptive avg pool and global mean, positive": (
        IMG, [conv(), op("adaptive", how="avg", size=3), op("gmean"), BN], {"m0.bias": "redundant"}),
    # normalisations
    "BatchNorm, negative (bias varies per position)": (
        IMG, [conv(), conv(k=3, pad=1, bias=False), BN], {"m0.bias": "active", "m2.bias": "foldable"}),
    "BatchNorm without running statistics, positive": (
        IMG, [conv(), op("bn", affine=False, track=False)], {"m0.bias": "redundant"}),
    "timm BatchNormAct2d, positive": (IMG, [conv(), op("bnact")], {"m0.bias": "redundant"}),
    "InstanceNorm with running statistics, positive": (IMG, [conv(), op("in", affine=True, track=True)],
                                                       {"m0.bias": "redundant"}),
    "InstanceNorm with running statistics, negative": (
        IMG, [conv(), conv(k=3, pad=1, bias=False), op("in", affine=True, track=True)], {"m0.bias": "active"}),
    "InstanceNorm over a sequence, negative": (SEQ, [linear(), op("perm"), op("in", affine=True, track=False)],
                                               {"m0.bias": "active"}),
    "GroupNorm, one channel per group, positive": (IMG, [conv(), op("gn", groups=4)], {"m0.bias": "redundant"}),
    "GroupNorm, two channels per group, negative": (IMG, [conv(), op("gn", groups=2)], {"m0.bias": "active"}),
    "GroupNorm over a sequence, positive": (SEQ, [linear(), op("gn", groups=4)], {"m0.bias": "redundant"}),
    "LayerNorm over the last axis, positive": (IMG, [conv(), op("ln", axes=1, functional=False)],
                                               {"m0.bias": "redundant"}),
    "LayerNorm over two axes, positive": (IMG, [conv(), op("ln", axes=2, functional=False)],
                                          {"m0.bias": "redundant"}),
    "LayerNorm over two axes, negative": (SEQ, [linear(), op("perm"), op("ln", axes=2, functional=False)],
                                          {"m0.bias": "active"}),
    "functional LayerNorm over two axes, negative": (SEQ, [linear(), op("perm"), op("ln", axes=2, functional=True)],
                                                     {"m0.bias": "active"}),
    "LayerNorm over three axes, negative": (IMG, [conv(), op("ln", axes=3, functional=False)],
                                            {"m0.bias": "active"}),
    "functional LayerNorm over three axes, negative": (IMG, [conv(), op("ln", axes=3, functional=True)],
                                                       {"m0.bias": "active"}),
    "LayerNorm over features, negative": (SEQ, [linear(), op("ln", axes=1, functional=True)],
                                          {"m0.bias": "active", "m1.bias": "active"}),
    "ConvNeXt LayerNorm2d, negative": (IMG, [conv(), op("ln2d")], {"m0.bias": "active"}),
    "RMSNorm, negative": (IMG, [conv(), op("rms", axes=2)], {"m0.bias": "active"}),
    "RMSNorm after a norm that cancels, positive": (IMG, [conv(), BN, op("rms", axes=2)],
                                                    {"m0.bias": "redundant"}),
    # softmax and attention
    "softmax over positions, positive": (SEQ, [linear(), op("softmax", dim=1)], {"m0.bias": "redundant"}),
    "softmax over features, negative": (SEQ, [linear(), op("softmax", dim=2)], {"m0.bias": "active"}),
    "attention, positive and negative": (
        SEQ, [attn("manual")], {"m0.q.bias": "active", "m0.k.bias": "redundant", "m0.v.bias": "foldable"}),
    "SDPA attention": (SEQ, [attn("sdpa", out=None)],
                       {"m0.q.bias": "active", "m0.k.bias": "redundant", "m0.v.bias": "active"}),
    "packed attention, by parts": (
        SEQ, [attn("packed")],
        {"m0.qkv.bias[query]": "active", "m0.qkv.bias[key]": "redundant", "m0.qkv.bias[value]": "foldable"}),
    "relative-position table in the scores, negative": (SEQ, [attn("manual", rel="table")],
                                                         {"m0.rel_bias_table": "active", "m0.k.bias": "redundant"}),
    "relative-position table as SDPA's mask, negative": (SEQ, [attn("sdpa", rel="table", out=None)],
                                                         {"m0.rel_bias_table": "active", "m0.k.bias": "redundant"}),
    "per-query score bias, positive": (SEQ, [attn("manual", rel="query")], {"m0.query_bias": "redundant"}),
    "per-query bias as SDPA's mask, positive": (SEQ, [attn("sdpa", rel="query", out=None)],
                                                {"m0.query_bias": "redundant"}),
    "rotary key, negative": (SEQ, [attn("manual", rotary=True)], {"m0.k.bias": "active", "m0.v.bias": "foldable"}),
    "rotary packed key, negative": (SEQ, [attn("packed", rotary=True, out=None)],
                                    {"m0.qkv.bias[key]": "active", "m0.qkv.bias[value]": "active"}),
    "MultiheadAttention, by parts": (
        SEQ, [attn("mha"), linear()],
        {"m0.attn.in_proj_bias[key]": "redundant", "m0.attn.in_proj_bias[query]": "active",
         "m0.attn.in_proj_bias[value]": "foldable", "m0.attn.out_proj.bias": "foldable"}),
    # folding
    "BatchNorm after a linear layer folds": (VEC, [linear(), BN], {"m0.bias": "redundant", "m1.bias": "foldable"}),
    "BatchNorm whose input is read twice does not fold": (
        IMG, [conv(), op("save"), BN, op("add", j=0)], {"m2.bias": "active"}),
    "a shift read once folds": (VEC, [op("ln", axes=1, functional=False), linear(), op("act", fn="relu")],
                                {"m0.bias": "foldable"}),
    "a shift read twice does not fold": (
        VEC, [op("ln", axes=1, functional=False), op("save"), linear(out=6), op("add", j=0)],
        {"m0.bias": "active"}),
    "a padded conv does not take a fold": (IMG, [op("ln2d"), conv(k=3, pad=1), op("act", fn="relu")],
                                           {"m0.bias": "active"}),
    "an unpadded conv takes a fold": (IMG, [op("ln2d"), conv(k=3, pad=0), op("act", fn="relu")],
                                      {"m0.bias": "foldable"}),
    # control flow whose arms both stop the offset (the graph is recorded, not traced)
    "branch on the input, positive": (IMG, [conv(), op("branch", then=(op("act", fn="relu"),),
                                                       else_=(op("act", fn="tanh"),)), conv(), BN],
                                      {"m0.bias": "active", "m2.bias": "redundant"}),
    "branch on the input, negative": (IMG, [conv(), op("branch", then=(op("act", fn="relu"),),
                                                       else_=(op("act", fn="tanh"),)), BN], {"m0.bias": "active"}),
}

#: Rules the audit of this branch does not have yet (issue 21 item 4): their positive cases fail until then.
_PENDING = {"view_as, positive": "view_as", "reshape_as, positive": "reshape_as", "reshape_as, negative": "reshape_as"}


def _case_params():
    params = []
    for name in CASES:
        marks = []
        if name in _PENDING:
            marks.append(pytest.mark.xfail(not audit_supports(_PENDING[name]), strict=True,
                                           reason=f"no rule for .{_PENDING[name]}() on this branch"))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("case", _case_params())
def test_each_rule_case_matches_the_audit_and_the_ground_truth(case):
    (kind, shape), ops, expected = CASES[case]
    program = Program(kind, shape, tuple(ops), seed=1)
    report = evaluate(program)
    assert not report.failed, report.explain()
    for unit, status in expected.items():
        assert report.statuses[unit] == status, report.explain()
        effect = report.effects[unit]
        if status == "redundant":
            assert effect <= ZERO_TOL, (unit, effect)
        else:  # the ground truth must see it too: active and foldable biases move the output
            assert effect > MOVE_TOL, (unit, effect)
        assert not report.reasons[unit].startswith("not analysed"), report.reasons[unit]


# --------------------------------------------------------------------------------------------- ground truth

def test_ground_truth_sees_running_statistics_move_with_a_cancelled_bias():
    """conv → BatchNorm: in eval mode the bias moves the output unless the running mean is re-estimated —
    which the ground truth does, so the bias counts as cancelled in both modes; the BatchNorm's own shift
    moves the output in both."""
    program = Program(*IMG, (conv(), BN), seed=2)
    model = ProgramNet(program)
    truth = ground_truth(model, program)
    by = {u.label: u for u in units(model)}
    assert truth.effect(by["m0.bias"]) <= ZERO_TOL
    assert truth.moved_train[by["m1.bias"]] > MOVE_TOL and truth.moved_eval[by["m1.bias"]] > MOVE_TOL


def test_ground_truth_takes_both_arms_of_a_branch_on_the_input():
    """The issue's control-flow model: c1.bias is cancelled on one arm only, so it is not redundant."""
    program = Program(*IMG, (conv(), op("branch", then=(BN,), else_=()), op("act", fn="relu"),
                             op("to_vec", how="pool")), seed=2)
    model = ProgramNet(program)
    truth = ground_truth(model, program)
    assert truth.effect(next(u for u in units(model) if u.label == "m0.bias")) > MOVE_TOL


CONTROL_FLOW = Program(*IMG, (conv(), op("branch", then=(BN,), else_=()), op("act", fn="relu"),
                              op("to_vec", how="pool"), linear()), seed=2)


SCALED_ARMS = Program(*IMG, (conv(), op("branch", then=(op("scale", c=2.0),), else_=(op("scale", c=-0.5),)), BN),
                      seed=1)

def test_control_flow_whose_arms_differ_is_not_redundant():
    """Minimal reproducer from the generator (control_flow="any"): a conv whose output goes through a
    BatchNorm on one arm only. With an example of positive mean the audit records the BatchNorm arm and
    calls the conv's bias redundant; inputs of negative mean take the other arm, where it matters."""
    x = audit_example(CONTROL_FLOW).abs() + 0.5  # the BatchNorm arm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = {f.param: f.status for f in find_biases(ProgramNet(CONTROL_FLOW), x)}["m0.bias"]
    assert status != "redundant"


def test_control_flow_that_scales_an_offset_differently_is_not_redundant():
    """Minimal reproducer: conv → (×2 if the input's mean is positive, else ×−0.5) → BatchNorm. Both arms
    cancel the bias in training mode, but the offset reaching the BatchNorm differs between them, so no
    running-mean correction holds in eval mode (the eval output moves by ~0.5 of its size). Both paths
    have the same status: a check that compares statuses alone still misses it."""
    report = evaluate(SCALED_ARMS)
    assert report.statuses["m0.bias"] != "redundant" and not report.failed, report.explain()


#: Minimal reproducers from control_flow="any": a bias called foldable into a layer that one arm of a branch
#: holds (the other arm has its own copy, or nothing), so the fold is wrong for inputs that take the other arm.
FOLD_ON_ONE_ARM = [
    Program("vec", (7,), (linear(), op("bn", affine=False, track=False),
                          op("branch", then=(linear(bias=False), op("ln", axes=1, functional=False)),
                             else_=(linear(bias=False), op("ln", axes=1, functional=False))),
                          linear(out=5, bias=False)), seed=0),
    Program("vec", (2,), (op("dropout", p=0.25), BN,
                          op("branch", then=(), else_=(linear(2, bias=False), op("dropout", p=0.25))),
                          op("bn", affine=False, track=True), op("rms", axes=1), op("bn", affine=False, track=False),
                          op("branch", then=(), else_=(op("act", fn="relu"),))), seed=183),
]


@pytest.mark.parametrize("program", FOLD_ON_ONE_ARM, ids=["shift into a layer of one arm", "into the only arm"])
def test_control_flow_folds_only_into_layers_every_path_holds(program):
    report = evaluate(program)
    assert not report.false_foldable, report.explain()


@pytest.mark.parametrize(("after", "status"), [(linear(bias=False), "foldable"), (BN, "redundant")])
def test_multihead_attention_out_proj_bias_folds_and_goes_without_breaking_the_attention(after, status):
    """Found by the generator: folding (or removing) nn.MultiheadAttention's out_proj.bias set it to None,
    and the attention's fast path then fails ("argument 'proj_bias' must be Tensor"); it is zeroed now."""
    report = evaluate(Program(*SEQ, (attn("mha"), after), seed=0))
    assert report.statuses["m0.attn.out_proj.bias"] == status
    assert not report.failed, report.explain()
