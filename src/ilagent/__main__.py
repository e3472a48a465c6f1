"""``python -m ilagent`` and the ``ilagent`` script: the command, quiet on Ctrl+C from the start.

While ilagent loads (about a third of a second) Ctrl+C simply ends the process, as it ends any
program that has not set up signal handling (a shell shows exit 130): a KeyboardInterrupt
raised there could print a traceback, or be swallowed by Python's import machinery and let the
command run on. :func:`ilagent.cli.main` restores Python's handler once the command is loaded,
and turns a later Ctrl+C into exit 130 without a traceback.
"""

import signal
import sys


def run() -> None:
    """Run ``ilagent`` with the process's arguments and exit with its code."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from ilagent.cli import main

    sys.exit(main())


if __name__ == "__main__":
    run()
