"""biaslab: see, compute and measure what the bias term does.

``output = activation(Σ(input * kernel) + bias)`` — this package studies the
last term of that formula. Submodules are imported lazily so that the NumPy-only
parts (``regression``, ``activations``, ``conv``) start without PyTorch.

The library functions are reachable from the top level under stable names
(``biaslab.run_regression``, ``biaslab.run_conv``, ``biaslab.load_results`` …); each is
imported on first use, so ``import biaslab`` stays light.
"""

import importlib

__version__ = "0.1.0"

#: Top-level name -> "module:attribute" it stands for, imported on first access.
_LAZY = {
    "run_regression": "biaslab.experiments.regression.run:run_regression",
    "run_relu": "biaslab.math.activations:run_relu",
    "run_conv": "biaslab.experiments.conv.run:run_conv",
    "run_ablate": "biaslab.experiments.ablate.run:run_ablate",
    "run_denoise": "biaslab.experiments.denoise.run:run_denoise",
    "run_audit": "biaslab.experiments.audit.run:run_audit",
    "find_biases": "biaslab.experiments.audit.graph:find_biases",
    "load_results": "biaslab.results:load_results",
    "BiaslabError": "biaslab.infra.io:BiaslabError",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    spec = _LAZY.get(name)
    if spec is None:
        raise AttributeError(f"module 'biaslab' has no attribute {name!r}")
    module, attr = spec.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # next time without __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
