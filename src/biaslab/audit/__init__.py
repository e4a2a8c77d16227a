"""``biaslab audit``: every bias in a PyTorch model, which are redundant, what the rest contribute,
and a proven-equivalent fixed model.

Library API::

    from biaslab.audit import find_biases, remove_redundant_biases, fold_batchnorm, load_fixed

    findings = find_biases(model, example_input)          # list[Finding], one per bias parameter
    slim = remove_redundant_biases(model, example_input)  # new module, same function (train and eval)
    fast = fold_batchnorm(model.eval())                   # new module, BatchNorm folded (eval only)

Modules: :mod:`.graph` (the torch.fx analysis), :mod:`.fix` (removal, folding, proofs),
:mod:`.contrib` (what each bias contributes on data), :mod:`.target` (what to audit),
:mod:`.run` (the command's result).
"""

from .contrib import Contribution, bias_contributions
from .fix import compare_outputs, drop_biases, fold_batchnorm, fold_bn_weights, load_fixed, remove_redundant_biases
from .graph import STATUSES, Finding, find_biases
from .run import AuditResult, run_audit

__all__ = [
    "STATUSES",
    "Finding",
    "find_biases",
    "remove_redundant_biases",
    "drop_biases",
    "fold_batchnorm",
    "fold_bn_weights",
    "load_fixed",
    "compare_outputs",
    "Contribution",
    "bias_contributions",
    "AuditResult",
    "run_audit",
]
