"""``biaslab census``: which biases in today's architectures do nothing?

Every model type the installed ``transformers`` builds from its configuration class is built
offline at a tiny size with random weights, audited (:func:`biaslab.experiments.audit.find_biases`),
each status checked by perturbation (:mod:`biaslab.experiments.audit.verify`), and each bias counted
at the configuration's default size (built on the meta device, which allocates nothing).

Library API::

    from biaslab.experiments.census import run_census

    res = run_census(only=["bert", "gpt2", "vit"])
    res.claim("softmax_cancels_key_bias").text

Modules: :mod:`.build` (tiny configurations, example inputs, default sizes), :mod:`.audit_type`
(one type's record), :mod:`.engines` (child processes with a time limit, or Ray), :mod:`.claims`,
:mod:`.run` (the command's library function).
"""

from .claims import TARGET_AUDITED
from .run import model_types, run_census

__all__ = ["TARGET_AUDITED", "model_types", "run_census"]
