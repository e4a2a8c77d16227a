"""``biaslab ablate``: does a network need its biases? The same network trained with and without
(some of) them over seeds, compared with paired statistics, on clean and on shifted test data.

Library API::

    from biaslab.experiments.ablate import run_ablate

    result = run_ablate(models=["cnn"], datasets=["digits"], quick=True)
    result.claim("bias_needed").text

Modules: :mod:`.run` (the driver: inputs, grid, result), :mod:`.variants` (which biases a
variant removes), :mod:`.engines` (who trains: local or Ray), :mod:`.runs` (``runs.jsonl``),
:mod:`.shifts` (shifted test data), :mod:`.claims` (the verdicts as claims).
"""

from .claims import MIN_DROP
from .run import DEFAULT_SEEDS, MAX_SEEDS, MODEL_DEFAULTS, QUICK_SEEDS, AblationInterrupted, run_ablate
from .runs import RUNS_FILE, read_runs

__all__ = ["MODEL_DEFAULTS", "DEFAULT_SEEDS", "QUICK_SEEDS", "MAX_SEEDS", "MIN_DROP", "RUNS_FILE",
           "AblationInterrupted", "read_runs", "run_ablate"]
