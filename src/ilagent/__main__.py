"""``python -m ilagent`` and the ``ilagent`` script: the command, quiet on Ctrl+C from the start.

Only :mod:`sys` is loaded before the guard: a Ctrl+C while the rest loads (about a third of a
second) exits 130 without a traceback, as it does later (:func:`ilagent.cli.main`).
"""

import sys


def run() -> None:
    """Run ``ilagent`` with the process's arguments and exit with its code."""
    try:
        from ilagent.cli import main
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(main())


if __name__ == "__main__":
    run()
