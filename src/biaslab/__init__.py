"""biaslab: see, compute and measure what the bias term does.

``output = activation(Σ(input * kernel) + bias)`` — this package studies the
last term of that formula. Submodules are imported lazily so that the NumPy-only
parts (``regression``, ``activations``, ``conv``) start without PyTorch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
