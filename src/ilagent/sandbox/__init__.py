"""ilagent sandbox: a local stand-in for ilert's event and heartbeat API, with a live web page.

Point a daemon at it with ``ILERT_API_URL=http://127.0.0.1:PORT/api`` and
``ILERT_BEAT_URL=http://127.0.0.1:PORT/api``; inspect what arrived under ``/sandbox/*`` or at ``/``.
"""

from .app import build_app, serve
from .core import SandboxConfig

__all__ = ["SandboxConfig", "build_app", "serve"]
