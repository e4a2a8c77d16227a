"""biaslab: see, compute and measure what the bias term does.

``output = activation(Σ(input * kernel) + bias)`` — this package studies the
last term of that formula. The package follows the data flow: ``math`` (NumPy only) →
``nets`` (PyTorch) → ``experiments`` (one package per command) → ``results`` (pure data) →
``render`` and ``explore``; ``infra`` underneath, ``cli`` on top. Submodules are imported
lazily, so the NumPy-only parts start without PyTorch.

The library functions are reachable from the top level under stable names
(``biaslab.run_regression``, ``biaslab.run_conv``, ``biaslab.load_results`` …); each is
imported on first use, so ``import biaslab`` stays light.
"""

import importlib

__version__ = "0.1.0"

#: Top-level name -> "module:attribute" it stands for, imported on first access.
_LAZY = {
    "run_regression": "biaslab.experiments.regression.run:run_regression",
    "run_relu": "biaslab.experiments.relu.run:run_relu",
    "run_conv": "biaslab.experiments.conv.run:run_conv",
    "run_ablate": "biaslab.experiments.ablate.run:run_ablate",
    "run_denoise": "biaslab.experiments.denoise.run:run_denoise",
    "run_audit": "biaslab.experiments.audit.run:run_audit",
    "run_demo": "biaslab.experiments.demo:run_demo",
    "find_biases": "biaslab.experiments.audit.graph:find_biases",
    "remove_redundant_biases": "biaslab.experiments.audit.fix:remove_redundant_biases",
    "fold_batchnorm": "biaslab.experiments.audit.fix:fold_batchnorm",
    "make_bias_free": "biaslab.nets.bias_free:make_bias_free",
    "conv2d": "biaslab.math.conv:conv2d",
    "fit_linear": "biaslab.math.least_squares:fit_linear",
    "load_results": "biaslab.results:load_results",
    "BiaslabError": "biaslab.infra.errors:BiaslabError",
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
