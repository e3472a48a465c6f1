"""Ctrl+C in the window where asyncio.run has installed its SIGINT handler but not yet zeroed its
count of interrupts: the command still ends with 130, without a traceback."""

from __future__ import annotations

import functools
import signal
import socket
from typing import Any

import pytest

from ilagent.cli import main
from ilagent.errors import EXIT_INTERRUPTED


def test_ctrl_c_as_asyncio_installs_its_handler_ends_with_130(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ctrl+C lands the moment asyncio.run's handler is in place (CPython 3.11 then lets the
    main task's CancelledError out instead of KeyboardInterrupt): exit 130, as for any Ctrl+C."""
    install = signal.signal
    landed: list[bool] = []

    def signal_then_ctrl_c(signum: int, handler: Any) -> Any:
        previous = install(signum, handler)
        if signum == signal.SIGINT and isinstance(handler, functools.partial) and not landed:
            landed.append(True)
            handler(signal.SIGINT, None)  # asyncio's own handler, as the signal would call it
        return previous

    monkeypatch.setattr(signal, "signal", signal_then_ctrl_c)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["sandbox", "-p", str(port)]) == EXIT_INTERRUPTED
    assert landed, "asyncio.run installed no SIGINT handler: the window was not reached"
