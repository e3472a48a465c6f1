"""ilagent sandbox: a local stand-in for ilert's event, heartbeat and escalation-policy API,
with a live web page.

Point a daemon at it with ``ILERT_API_URL=http://127.0.0.1:PORT/api`` and
``ILERT_BEAT_URL=http://127.0.0.1:PORT/api``; seed users, policies and API keys (:mod:`.seed`);
inspect what arrived under ``/sandbox/*`` or at ``/``. May import the core (``events``) and
the foundation — never a source or the delivery engine: it answers as ilert, it does not send.
"""

from .app import build_app, serve
from .core import SandboxConfig
from .seed import Seed, parse_seed

__all__ = ["SandboxConfig", "Seed", "build_app", "parse_seed", "serve"]
