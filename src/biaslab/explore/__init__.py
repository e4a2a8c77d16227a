"""``biaslab explore``: an interactive page where a learner moves the bias and watches.

One self-contained HTML file (no network, script and data inlined) with four panels: the
bias as an activation's threshold, a unit in 2-D, regression with and without intercept, and
conv feature maps of a real image; a fifth for a saved denoise or ablate run
(:mod:`biaslab.explore.runs`). The numbers the browser cannot reproduce exactly are
computed by the library and embedded (:mod:`biaslab.explore.data`); the page is assembled by
:mod:`biaslab.explore.page` from the static files in ``static/``.

In a notebook, :func:`widget` shows the same panels inline, from the same script
(:mod:`biaslab.explore.notebook`), and can take the learner's own conv layer.
"""

from __future__ import annotations

from pathlib import Path

from .data import DEFAULT_RANDOM

__all__ = ["EXPLORER_FILE", "write_explorer", "widget"]

#: The page's file name inside the output directory.
EXPLORER_FILE = "explore.html"


def write_explorer(
    out_dir: str | Path,
    builtin: str | None = None,
    image: str | Path | None = None,
    max_size: int = 512,
    random: int = DEFAULT_RANDOM,
    seed: int = 0,
    run: str | Path | None = None,
) -> Path:
    """Write ``out_dir/explore.html`` and return its path.

    Parameters
    ----------
    out_dir : an existing directory to write into (the CLI checks and locks it first,
        :func:`biaslab.outputs.locked_out_dir`).
    builtin, image : the conv panel's picture: a scikit-image name (default ``camera``) or
        an image file, prepared as ``biaslab conv`` prepares it.
    max_size : block-average larger images down to at most this many pixels a side.
    random, seed : number of random He-normal kernels and their seed.
    run : the ``--out`` directory of a ``biaslab denoise`` or ``biaslab ablate`` run, for a
        fifth panel with a σ or shift slider over its stored results.

    Raises
    ------
    BiaslabError : for a bad image or size; nothing is written then.
    """
    from ..experiments.conv.run import MAX_KERNELS
    from ..infra.io import BiaslabError, atomic_write_text
    from .data import EXPLORE_KERNELS, explorer_data
    from .page import render_page

    if not 0 <= random <= MAX_KERNELS - len(EXPLORE_KERNELS):
        raise BiaslabError(f"`random` must be between 0 and {MAX_KERNELS - len(EXPLORE_KERNELS)}, got {random}")
    page = render_page(explorer_data(builtin, image, max_size, random, seed, run))
    return atomic_write_text(Path(out_dir) / EXPLORER_FILE, page)


def widget(layer=None, image=None, **options):
    """The explorer's panels inside a notebook; ``widget(conv_layer, image)`` moves *your* layer's biases.

    See :func:`biaslab.explore.notebook.explorer_widget` for the options; needs the ``notebook``
    extra (anywidget).
    """
    from .notebook import explorer_widget

    return explorer_widget(layer, image, **options)
