"""How a command ends: every exception becomes one line on stderr and a documented exit code.

=====  ==================================================================================
 code  meaning
=====  ==================================================================================
 0     done
 1     a bug in biaslab: the traceback, then one line saying how to report it
 2     bad input or a problem of the machine (a full disk, a read-only folder, a closed
       pipe, too little memory, an image bomb): one line ``biaslab: error: ...``
 130   interrupted (Ctrl-C): one line; files are complete or untouched, never half-written
=====  ==================================================================================

:func:`one_line_errors` wraps every command (the CLI's group runs each command inside it),
so the Typer test runner and the console script behave the same.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


__all__ = [
    "BiaslabError", "EXIT_BUG", "EXIT_USER", "EXIT_INTERRUPTED", "describe", "one_line_errors", "check_stdout_open", "stdout_errors",
    "ctrl_c_pressed", "exit_on_late_interrupt", "register_user_code", "user_frame", "user_code_line",
]

class BiaslabError(ValueError):
    """A mistake in the user's input. Its message names the bad value and the fix; library messages
    name Python parameters in backquotes (```seeds```), which the CLI turns into its options. The
    boundary below prints it as one line and exits with code 2."""


EXIT_BUG = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130

#: Where the SIGINT handler records a real Ctrl-C (a KeyboardInterrupt raised by user code is not one).
_state = {"installed": False, "pressed": False}

_HINTS = {
    errno.ENOSPC: "free some space or choose another location",
    errno.EDQUOT: "free some space or choose another location",
    errno.EACCES: "choose a location you can write to",
    errno.EPERM: "choose a location you can write to",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder; pass a file",
    errno.ENOENT: "check the path",
}


#: Real paths of the files of user code biaslab runs (model factories): their frames are the user's.
_user_files: set[str] = set()
_BIASLAB_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def register_user_code(path: str | os.PathLike[str]) -> None:
    """Note that the code in ``path`` is the user's (a factory file or module), so that whatever it
    raises, at import, at call or in a forward pass many epochs later, is reported as theirs."""
    _user_files.add(os.path.realpath(path))


def user_frame(exc: BaseException) -> tuple[str, str, int] | None:
    """(file, function, line) of the innermost frame of user code in ``exc``'s traceback, or None.

    None too when biaslab's own code runs below that frame (a hook of ours called from the user's
    forward): the error is then ours, not theirs.
    """
    if not _user_files:
        return None
    found = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.realpath(code.co_filename) if os.path.isabs(code.co_filename) else code.co_filename
        if path in _user_files:
            found = (path, code.co_name, tb.tb_lineno)
        elif found is not None and path.startswith(_BIASLAB_DIR + os.sep):
            found = None
        tb = tb.tb_next
    return found


def user_code_line(exc: BaseException) -> str | None:
    """One line for an exception raised by the user's code: its file and line, function and error; None
    when the traceback holds no frame of user code (see :func:`user_frame`)."""
    from .io import first_line

    where = user_frame(exc)
    if where is None:
        return None
    path, function, line = where
    try:
        shown = os.path.relpath(path)
    except ValueError:
        shown = path
    shown = path if shown.startswith("..") else shown
    what = f"importing {shown} (line {line})" if function == "<module>" else f"{function}() in {shown}:{line}"
    if isinstance(exc, SystemExit):
        error = f"sys.exit({exc.code!r})"
    else:
        message = first_line(exc)[:200] if str(exc).strip() else ""
        error = type(exc).__name__ + (f": {message}" if message and message != type(exc).__name__ else "")
    note = " (no Ctrl-C was pressed)" if isinstance(exc, KeyboardInterrupt) else ""
    return f"your code raised {error}{note}, in {what}; fix it and run again"


def _on_sigint(signum: int, frame: Any) -> None:
    _state["pressed"] = True
    raise KeyboardInterrupt


def ctrl_c_pressed() -> bool | None:
    """True after a Ctrl-C, False if none came while our handler listened, None when it is not listening."""
    return _state["pressed"] if _state["installed"] else None


@contextmanager
def _sigint_noted() -> Iterator[None]:
    """Listen for Ctrl-C (on the main thread) so that a KeyboardInterrupt from user code can be told apart."""
    if threading.current_thread() is not threading.main_thread() or _state["installed"]:
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    _state.update(installed=True, pressed=False)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state["installed"] = False


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush cannot fail again ("Exception ignored")."""
    try:
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real stdout (a test runner, a closed stream)
        pass


def check_stdout_open() -> None:
    """Refuse to start when stdout is closed (``>&-``) and there is output to print."""
    if sys.stdout is None:
        raise BiaslabError("stdout is closed, so the output has nowhere to go; run with stdout open or pass --quiet")


@contextmanager
def stdout_errors() -> Iterator[None]:
    """Write to stdout inside the block; a closed or full stdout becomes :class:`BiaslabError`."""
    check_stdout_open()
    try:
        yield
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        raise BiaslabError(f"cannot write to stdout: {exc.strerror or exc}") from None


def _oserror_line(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        text += f": {os.fsdecode(exc.filename)}"
    if getattr(exc, "filename2", None) is not None:
        text += f" -> {os.fsdecode(exc.filename2)}"
    hint = _HINTS.get(exc.errno)
    return f"{text}; {hint}" if hint else text


def describe(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the one line for an exception that is the user's or the machine's; None for a bug."""
    real_ctrl_c = isinstance(exc, KeyboardInterrupt) and ctrl_c_pressed() is not False  # pressed, or no way to tell
    if real_ctrl_c:
        return EXIT_INTERRUPTED, "biaslab: interrupted"
    if not isinstance(exc, BiaslabError):
        line = user_code_line(exc)  # the user's factory or forward raised it (any BaseException)
        if line is not None:
            return EXIT_USER, f"biaslab: error: {line}"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_USER, "biaslab: error: code run by biaslab raised KeyboardInterrupt, though no Ctrl-C was pressed"
    if isinstance(exc, BiaslabError):
        return EXIT_USER, f"biaslab: error: {exc}"
    if isinstance(exc, SystemExit):
        return EXIT_USER, f"biaslab: error: code run by biaslab exited (sys.exit({exc.code!r})) instead of returning"
    if isinstance(exc, MemoryError):
        return EXIT_USER, "biaslab: error: out of memory; use smaller sizes (see the limits in the README)"
    if "PIL.Image" in sys.modules:
        from PIL import Image

        if isinstance(exc, Image.DecompressionBombError):
            return EXIT_USER, f"biaslab: error: image refused as a decompression bomb: {exc}"
        if isinstance(exc, Image.UnidentifiedImageError):
            return EXIT_USER, f"biaslab: error: {exc}; use a PNG, JPEG or TIFF file"
    if isinstance(exc, OSError):
        if exc.errno == errno.EPIPE:
            _silence_stdout()
            return EXIT_USER, "biaslab: error: the output pipe was closed before biaslab finished writing"
        return EXIT_USER, f"biaslab: error: {_oserror_line(exc)}"
    return None


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, AttributeError, ValueError):  # stderr itself is closed: the exit code still tells
        pass


def _usage_errors() -> tuple[type, type | tuple]:
    """click's ``ClickException`` and ``NoArgsIsHelpError`` as Typer uses them (recent Typer vendors click)."""
    import typer

    click = sys.modules[typer.BadParameter.__module__]
    return click.ClickException, getattr(click, "NoArgsIsHelpError", ())


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Run a command: user and machine errors → one stderr line and exit 2, Ctrl-C → 130, bugs → traceback and 1.

    Raises ``typer.Exit`` with the code, as a command's own ``typer.Exit`` would.
    """
    from typer import Abort, Exit

    click_exception, no_args_is_help = _usage_errors()
    with _sigint_noted():
        try:
            yield
        except (Exit, Abort):
            raise
        except no_args_is_help as exc:  # bare `biaslab`: the help, as before
            exc.show()
            raise Exit(exc.exit_code) from None
        except click_exception as exc:  # a bad option value or an unknown option
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f" (see '{ctx.command_path} --help')"
            _say(f"biaslab: error: {exc.format_message()}{hint}")
            raise Exit(exc.exit_code) from None
        except BaseException as exc:  # noqa: BLE001 - this is the boundary
            described = describe(exc)
            if described is None:
                traceback.print_exc()
                from .. import __version__

                _say(f"biaslab: internal error (a bug in biaslab {__version__}); please report it with the "
                     "command line and the traceback above to the biaslab issue tracker")
                raise Exit(EXIT_BUG) from None
            code, line = described
            _say(line)
            raise Exit(code) from None


def exit_on_late_interrupt() -> None:
    """Make a Ctrl-C outside :func:`one_line_errors` (after the command, during interpreter shutdown and
    its atexit handlers) exit 130 at once with one line, no traceback, no "Exception ignored".

    Install it before entering :func:`one_line_errors`, which restores it on the way out, so
    there is no moment without one of the two handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def _late(signum: int, frame: Any) -> None:
        try:
            os.write(2, b"biaslab: interrupted\n")  # no Python I/O: the interpreter may be shutting down
        finally:
            os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, _late)
