"""Progress bars (rich) that switch themselves off when nobody is watching."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_enabled", "progress_bar"]


def progress_enabled(quiet: bool = False, json_output: bool = False) -> bool:
    """True when a bar is useful: stdout is a terminal and the user did not ask for silence."""
    return not quiet and not json_output and sys.stdout.isatty()


@contextmanager
def progress_bar(total: int, description: str, enabled: bool) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, description=None)``; draws a rich bar on stderr when ``enabled``."""
    if not enabled:
        yield lambda n=1, description=None: None
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
