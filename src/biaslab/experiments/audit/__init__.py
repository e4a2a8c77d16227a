"""``biaslab audit``: every bias in a PyTorch model, which are redundant, what the rest contribute,
and a fixed model checked to compute the same function.

Library API::

    from biaslab.experiments.audit import find_biases, remove_redundant_biases, fold_batchnorm, load_fixed

    findings = find_biases(model, example_input)          # list[Finding], one per bias parameter
    slim = remove_redundant_biases(model, example_input)  # new module, same function (train and eval)
    fast = fold_batchnorm(model.eval(), example_input)    # new module, BatchNorm folded (eval only)
    folded, what, checks = fold_biases(model.eval(), example_input)  # every foldable bias folded

Both transformations compare their result with the original on sample inputs and raise
instead of returning a different function. A redundant part of a packed bias (or a parameter its
layer cannot run without) is zeroed and held at zero (:class:`.fix.HeldAtZero`), never its
active parts.

Modules: :mod:`.graph` (following each bias through the model's graph), :mod:`.offsets` (the
offset algebra, an op → rule table), :mod:`.norms` (recognising normalisations), :mod:`.record`
(graphs recorded from forward passes where torch.fx fails), :mod:`.hooks` (the order-based
fallback), :mod:`.verdicts` (what a verdict holds), :mod:`.fix` (removal, folding),
:mod:`.check` (numerical equivalence checks), :mod:`.verify` (the perturbation ground truth),
:mod:`.contrib` (what each bias contributes on data), :mod:`.target` and :mod:`.hf` (what to
audit), :mod:`.run` (the command's library function).
"""

from ...results.audit import STATUSES, AuditResult, Check, Contribution, Finding
from .check import compare_outputs
from .contrib import bias_contributions
from .fix import (
    drop_biases,
    fold_batchnorm,
    fold_bn_weights,
    fold_biases,
    load_fixed,
    remove_biases,
    remove_redundant_biases,
)
from .graph import find_biases
from .run import run_audit

__all__ = [
    "STATUSES",
    "Finding",
    "find_biases",
    "remove_redundant_biases",
    "drop_biases",
    "fold_batchnorm",
    "fold_bn_weights",
    "fold_biases",
    "remove_biases",
    "Check",
    "load_fixed",
    "compare_outputs",
    "Contribution",
    "bias_contributions",
    "AuditResult",
    "run_audit",
]
