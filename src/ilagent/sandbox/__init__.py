"""ilagent sandbox: a local stand-in for ilert's event, heartbeat and escalation-policy API,
with a live web page.

Point a daemon at it with ``ILERT_API_URL=http://127.0.0.1:PORT/api`` and
``ILERT_BEAT_URL=http://127.0.0.1:PORT/api``; seed users, policies and API keys (:mod:`.seed`);
inspect what arrived under ``/sandbox/*`` or at ``/``.
"""

from .app import build_app, serve
from .core import SandboxConfig
from .seed import Seed, parse_seed

__all__ = ["SandboxConfig", "Seed", "build_app", "parse_seed", "serve"]
