"""Progress that suits where the output goes.

On a terminal: a rich progress bar on stderr. Otherwise (a pipe, a file, CI): one line per
stage on stderr, so a long run piped to a file still says what it is doing. ``enabled=False``
(the CLI's ``--quiet``) silences both; progress never goes to stdout, so ``--json`` is unaffected.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar"]

_live_bar = False  # rich allows one live display at a time; nested bars print lines instead


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
def progress_bar(total: int, description: str, enabled: bool) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, description=None)``: a rich bar on a terminal, stage lines otherwise."""
    global _live_bar
    if not enabled:
        yield lambda n=1, description=None: None
        return
    if _live_bar or not sys.stdout.isatty():
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
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)

            def advance(n: int = 1, description: str | None = None) -> None:
                bar.update(task, advance=n, **({"description": description} if description else {}))

            yield advance
    finally:
        _live_bar = False
