"""Progress that suits where the output goes.

On a terminal: a rich progress bar on stderr. In a Jupyter kernel: a live rich bar in the
cell's output (rich renders it through ipywidgets), left in place when done. Otherwise (a
pipe, a file, CI): one line per stage on stderr, so a long run piped to a file still says
what it is doing. ``enabled=False``
(the CLI's ``--quiet``) silences both; progress never goes to stdout, so ``--json`` is unaffected.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar", "in_jupyter"]

_live_bar = False  # rich allows one live display at a time; nested bars print lines instead


def in_jupyter() -> bool:
    """Whether this code runs in a Jupyter kernel (IPython's ZMQ shell), where stderr is no terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old or half-imported: not a notebook we can draw in
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


@contextmanager
def _lines(total: int, description: str) -> Iterator[Callable[..., None]]:
    state = {"done": 0, "stage": description}
    start = time.perf_counter()
    print(f"biaslab: {description} (0/{total})", file=sys.stderr, flush=True)

    def advance(n: int = 1, description: str | None = None) -> None:
        state["done"] += n
        if description and description != state["stage"]:
            state["stage"] = description
            print(f"biaslab: {description} ({state['done']}/{total})", file=sys.stderr, flush=True)

    yield advance
    print(f"biaslab: {description} done ({state['done']}/{total}, {time.perf_counter() - start:.1f} s)",
          file=sys.stderr, flush=True)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool | None) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, description=None)``: a rich bar on a terminal, stage lines otherwise.

    ``enabled=None`` (the library functions' default): a live bar in a Jupyter kernel, nothing elsewhere.
    """
    global _live_bar
    if enabled is None:
        enabled = in_jupyter()
    if not enabled:
        yield lambda n=1, description=None: None
        return
    notebook = in_jupyter()
    if _live_bar or not (notebook or sys.stdout.isatty()):
        with _lines(total, description) as advance:
            yield advance
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    _live_bar = True
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            # in a notebook: the cell's own output, where rich draws a live widget, and the
            # finished bar stays as a record of the run; on a terminal: stderr, cleared when done
            console=Console(force_jupyter=True) if notebook else Console(stderr=True),
            transient=not notebook,
        ) as bar:
            task = bar.add_task(description, total=total)

            def advance(n: int = 1, description: str | None = None) -> None:
                bar.update(task, advance=n, **({"description": description} if description else {}))

            yield advance
    finally:
        _live_bar = False
