"""``biaslab`` and ``python -m biaslab``: the console entry point.

Only the standard library is imported before the Ctrl-C guard is in place, so an interrupt
while the command line loads (Typer, NumPy) still ends with one line and exit code 130.
"""

import sys


def main() -> int:
    """Load the command line and run it; see :func:`biaslab.cli.main`."""
    try:
        from .cli import main as run
        from .infra.errors import exit_on_late_interrupt

        exit_on_late_interrupt()  # a Ctrl-C after the command, while the interpreter shuts down
        return run()
    except KeyboardInterrupt:
        print("biaslab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
