"""The one boundary for user input: checks that turn bad values into a clear :class:`BiaslabError`.

Every command checks its options and files here *before* any work starts, so a bad input
costs one line on stderr and exit code 2, never a traceback, a hang or a half-written folder.
Each bound is a named constant, listed in the README's "Limits" section.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .io import BiaslabError, first_line, name_max
from .numfmt import number_text

__all__ = [
    "SEED_LIMIT",
    "MAX_ARRAY_BYTES",
    "MAX_IMAGE_PIXELS",
    "param",
    "check_finite",
    "finite_number",
    "bounded_int",
    "check_seed",
    "check_choice",
    "check_allocation",
    "readable_file",
    "writable_file",
    "factory_file",
    "call_user_code",
    "parse_count",
    "parse_shape",
]

T = TypeVar("T")

#: Seeds are 0 <= seed < SEED_LIMIT in every command (NumPy's legacy generator takes 32 bits).
SEED_LIMIT = 2**32
#: Largest array one file (IDX, .npy, .npz member) may decode to, checked against its header first.
MAX_ARRAY_BYTES = 2 * 1024**3
#: Largest image (width × height) read from a file, checked against its header before decoding.
MAX_IMAGE_PIXELS = 50_000_000


def param(name: str) -> str:
    """How a message names a parameter: ```name``` for a library parameter (the CLI turns it into its
    option, ``--name``); an option the caller already spelled (``--seed``) stays as it is."""
    return f"`{name}`" if name.isidentifier() else name


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Raise :class:`BiaslabError` if ``values`` holds NaN or infinity."""
    values = np.asarray(values)
    if values.size and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise BiaslabError(f"{name} contains {bad} NaN or infinite value(s); clean the data first")
    return values


def finite_number(
    name: str, value: float, low: float | None = None, high: float | None = None, *, open_low: bool = False
) -> float:
    """``value`` as a float, refused unless finite and within ``[low, high]`` (``(low, high]`` with ``open_low``).

    Parameters
    ----------
    name : the parameter, e.g. ``"lr"``, for the message (written ```lr```; the CLI names its option).
    value : the user's value.
    low, high : bounds (None: unbounded on that side).
    open_low : exclude ``low`` itself (for "must be > 0").

    Returns
    -------
    float
    """
    v = float(value)
    name = param(name)
    if not math.isfinite(v):
        raise BiaslabError(f"{name} must be a finite number (got {value})")
    too_low = low is not None and (v <= low if open_low else v < low)
    if too_low or (high is not None and v > high):
        lo = "−∞" if low is None else number_text(f"{low:g}")
        hi = "∞" if high is None else number_text(f"{high:g}")
        raise BiaslabError(f"{name} must be in {'(' if open_low else '['}{lo}, {hi}] (got {value})")
    return v


def bounded_int(name: str, value: int, low: int, high: int) -> int:
    """``value`` refused unless it is an integer with ``low <= value <= high``.

    Returns
    -------
    int
    """
    name = param(name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BiaslabError(f"{name} must be a whole number (got {value!r})")
    if not low <= value <= high:
        raise BiaslabError(f"{name} must be between {low} and {high} (got {value})")
    return int(value)


def check_seed(seed: int, name: str = "seed") -> int:
    """The one seed rule of every command: ``0 <= seed < 2**32``."""
    return bounded_int(name, seed, 0, SEED_LIMIT - 1)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value`` refused unless it is one of ``choices``."""
    if value not in choices:
        raise BiaslabError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def check_allocation(name: str, shape: Sequence[int], itemsize: int, limit: int = MAX_ARRAY_BYTES) -> int:
    """Refuse an array of ``shape`` × ``itemsize`` bytes over ``limit``, before it is allocated.

    Returns
    -------
    int
        The number of bytes.
    """
    if any(int(s) < 0 for s in shape):
        raise BiaslabError(f"{name} claims a negative size {tuple(shape)}; the file is corrupt")
    nbytes = math.prod(int(s) for s in shape) * int(itemsize)
    if nbytes > limit:
        raise BiaslabError(
            f"{name} would need {nbytes / 1024**3:.3g} GiB (shape {tuple(int(s) for s in shape)}); "
            f"the limit is {limit / 1024**3:.3g} GiB: use a smaller file"
        )
    return nbytes


def readable_file(name: str, path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` refused unless it is an existing, non-empty regular file (not a folder, not ``/dev/null``)."""
    p, name = Path(path), param(name)
    if not p.exists():
        raise BiaslabError(f"{name} {p} does not exist; pass the path of a {what}")
    if not p.is_file():
        raise BiaslabError(f"{name} {p} is not a regular file; pass the path of a {what}")
    if p.stat().st_size == 0:
        raise BiaslabError(f"{name} {p} is empty; pass the path of a {what}")
    return p


def writable_file(name: str, path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that ``path`` can be written as a new or replaced regular file.

    Refuses a target that exists and is not a regular file (``/dev/null``, a folder), a name
    longer than the file system allows, and a folder that is missing-and-uncreatable,
    read-only or not a folder.
    """
    import tempfile

    p, name = Path(path), param(name)
    folder = p.parent
    if folder.exists() and not folder.is_dir():
        raise BiaslabError(f"{name} {p}: {folder} is not a folder")
    limit = name_max(folder) if folder.is_dir() else 255
    if len(os.fsencode(p.name)) > limit:
        raise BiaslabError(f"{name}: the file name is longer than {limit} bytes; choose a shorter one")
    if p.is_symlink() or (p.exists() and not p.is_file()):
        raise BiaslabError(f"{name} {p} exists and is not a regular file; choose a new file name")
    try:
        folder.mkdir(parents=True, exist_ok=True)

        fd, probe = tempfile.mkstemp(prefix=".biaslab-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BiaslabError(f"cannot write {name} {p}: {exc.strerror or exc}; choose a writable location") from None
    return p


def factory_file(spec: str) -> Path | None:
    """The file of a ``path/to/file.py:factory`` model (None for ``package.module:factory``);
    :class:`BiaslabError` when that file does not exist."""
    where = spec.rpartition(":")[0]
    if not where.endswith(".py"):
        return None
    path = Path(where)
    if not path.is_file():
        raise BiaslabError(f"factory file {path} does not exist; pass path/to/file.py:factory")
    return path


def call_user_code(fn: Callable[..., T], what: str, *args: Any, _verb: str = "failed:", **kwargs: Any) -> T:
    """Call the user's code (a model factory, a forward pass) and turn its failures into :class:`BiaslabError`.

    Any exception ``fn`` raises, ``BaseException`` subclasses included, becomes one line naming
    ``what``, the error and, for code registered with :func:`biaslab.infra.errors.register_user_code`,
    the user's function, file and line. ``sys.exit(N)`` inside ``fn`` becomes "the {what} exited
    (sys.exit(N))" instead of silently setting biaslab's exit code; a KeyboardInterrupt that ``fn``
    raised itself (no Ctrl-C was pressed) is the user's error too. A real Ctrl-C passes through.

    Parameters
    ----------
    fn : the user's callable.
    what : what it is, for the message, e.g. ``"model factory resnet.py:make"``.
    *args, **kwargs : passed to ``fn``.
    _verb : ``"failed:"`` ("the forward pass failed: ValueError: ...") or ``"raised"``.

    Returns
    -------
    Whatever ``fn`` returns.
    """
    from .errors import ctrl_c_pressed, user_frame

    try:
        return fn(*args, **kwargs)
    except BiaslabError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's code: any exception, BaseException included
        if isinstance(exc, (KeyboardInterrupt, GeneratorExit)) and ctrl_c_pressed() is not False:
            raise  # a real Ctrl-C, or no way to tell
        frame = user_frame(exc)
        where = ""
        if frame is not None:
            name = os.path.basename(frame[0])
            where = (f" (while importing {name}, line {frame[2]})" if frame[1] == "<module>"
                     else f" (in {frame[1]}(), {name}:{frame[2]})")
        if isinstance(exc, SystemExit):
            raise BiaslabError(f"the {what} exited (sys.exit({exc.code!r})) instead of returning{where}") from None
        if isinstance(exc, KeyboardInterrupt):
            raise BiaslabError(f"the {what} raised KeyboardInterrupt, though no Ctrl-C was pressed{where}") from None
        first = first_line(exc)[:200] if str(exc).strip() else ""
        raise BiaslabError(f"the {what} {_verb} {type(exc).__name__}{': ' + first if first else ''}{where}") from None


def parse_count(option: str, text: str | int, low: int, high: int) -> int:
    """``text`` (``"128"``, ``"1e3"``) as a whole number in ``[low, high]``; a clear error otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value != int(value):
        raise BiaslabError(f"{option} must be a whole number (got {text!r})")
    if not low <= value <= high:
        raise BiaslabError(f"{option} must be between {low:,} and {high:,} (got {text})")
    return int(value)


def parse_shape(option: str, text: str, max_elements: int, example: str, min_rank: int = 2) -> tuple[int, ...]:
    """``"2,3,32,32"`` → ``(2, 3, 32, 32)``: positive whole numbers, at least ``min_rank`` of them, and
    at most ``max_elements`` elements in all (so a typo cannot allocate terabytes)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) < min_rank or not all(np.isfinite(v) and v >= 1 and v == int(v) for v in values):
        raise BiaslabError(f"{option} must be at least {min_rank} positive whole numbers separated by commas "
                           f"(got {text!r}), e.g. {example}")
    shape = tuple(int(v) for v in values)
    total = math.prod(shape)
    if total > max_elements:
        raise BiaslabError(f"{option} {text} has {total:.3g} elements, more than the limit of {max_elements:,}; "
                           f"pass a smaller shape, e.g. {example}")
    return shape
