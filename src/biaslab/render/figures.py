"""Figure plumbing shared by the renderers: every figure is a function of a result (Agg backend)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..infra.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure", "capture_figures", "COLORS"]

#: Colours used for the two sides of every comparison, everywhere in biaslab.
COLORS = {"with_bias": "tab:green", "without_bias": "tab:orange", "data": "tab:blue"}


def new_figure(*args, **kwargs) -> tuple["Figure", object]:
    """``plt.subplots`` on a backend-free Figure (Agg), safe in threads and servers."""
    from matplotlib.figure import Figure

    fig = Figure(**{k: kwargs.pop(k) for k in ("figsize", "dpi", "layout") if k in kwargs})
    axes = fig.subplots(*args, **kwargs)
    return fig, axes


#: While :func:`capture_figures` is active: the dict that :func:`save_figure` records each Figure in.
_captured: contextvars.ContextVar[dict[str, "Figure"] | None] = contextvars.ContextVar("captured", default=None)


@contextmanager
def capture_figures() -> Iterator[dict[str, "Figure"]]:
    """Yield a dict that fills with ``{name: Figure}`` for every figure saved inside the block.

    The notebook layer (:mod:`biaslab.render.notebook`) uses it to hand a learner the
    matplotlib Figure a renderer drew, the same object that was written to disk.
    """
    figures: dict[str, "Figure"] = {}
    token = _captured.set(figures)
    try:
        yield figures
    finally:
        _captured.reset(token)


def save_figure(fig: "Figure", out_dir: Path, name: str, fmt: str = "png", dpi: int = 110) -> Path:
    """Save ``fig`` as ``out_dir/name.fmt`` atomically and return the path (``name`` is a plain file name)."""
    if Path(name).name != name or name.startswith("."):
        raise ValueError(f"figure name {name!r} is not a plain file name")
    captured = _captured.get()
    if captured is not None:
        captured[name] = fig
    path = Path(out_dir) / f"{name}.{fmt}"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path
