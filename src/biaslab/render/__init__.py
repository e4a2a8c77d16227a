"""The rendering layer: results in, figures and reports out.

``render/<command>.py`` reads one command's result and provides

- ``summary(result) -> str``: the text printed on the terminal;
- ``figures(result, out_dir, fmt) -> list[Path]``: the figures, written into ``out_dir``;
- ``sections(result, figures) -> list[Section]``: the report sections.

Renderers import result types and never experiment code: nothing here recomputes a metric.
Every concluding sentence is a :class:`biaslab.results.Claim`'s text.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from ..results import Result

__all__ = ["renderer", "summary", "render_figures", "render_sections"]


def renderer(command: str) -> ModuleType:
    """The render module of ``command`` (``denoise-apply`` → ``render/denoise_apply.py``)."""
    return importlib.import_module(f"{__name__}.{command.replace('-', '_')}")


def summary(result: Result) -> str:
    """The short text a command prints for ``result``."""
    return renderer(result.command).summary(result)


def render_figures(result: Result, out_dir: Path, fmt: str = "png") -> list[Path]:
    """Write ``result``'s figures into ``out_dir``; return their paths.

    Text in figures is drawn as typed: ``$...$`` is not TeX (names, sources and labels come from
    results.json, which may be anyone's; ``$\\frac{$`` would otherwise fail to draw).
    """
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        return renderer(result.command).figures(result, Path(out_dir), fmt)


def render_sections(result: Result, figures: list[Path]):
    """``result`` as report sections."""
    return renderer(result.command).sections(result, figures)
