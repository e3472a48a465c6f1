"""How the agent's HTTP clients reach out: the proxies and the CA certificates of the
environment, read once, as curl reads them, when a client opens its session.

ilert's client reads them with :func:`environment` (for its own pool, :mod:`ilagent.http1`), the
local fallback's webhook with :func:`open_session` (an aiohttp session); each request goes by
the :class:`~ilagent.proxies.Route` its URL takes, so both go through the same proxies and trust
the same CAs. Not aiohttp's ``trust_env``: that reads the environment and
``~/.netrc`` again on every request, in worker threads (0.3 ms more CPU per request to a local
server, measured), and a ``.netrc`` entry for ilert's API host turns the policy calls'
``Authorization`` header into a ValueError.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ilagent.logs import register_secret
from ilagent.proxies import Proxies

if TYPE_CHECKING:
    import aiohttp

__all__ = ["environment", "open_session", "tls_context"]

logger = logging.getLogger(__name__)


async def open_session(
    *, peer: str, timeout: aiohttp.ClientTimeout, headers: Mapping[str, str],
    max_connections: int = 100,
) -> tuple[aiohttp.ClientSession, Proxies]:
    """A session whose TLS trusts the environment's CAs, and the proxies its requests take.

    Reads ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` now (a proxy's password becomes a
    registered secret), and ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` in a thread; ``peer`` names
    whom TLS goes to in the warning about such a path that cannot be read."""
    import aiohttp  # here: ilert's client (and every command line) goes without it

    proxies, tls = await environment(peer=peer)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, ssl=tls),
        timeout=timeout, headers=dict(headers))
    return session, proxies


async def environment(*, peer: str) -> tuple[Proxies, ssl.SSLContext]:
    """The proxies of ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` (a proxy's password
    becomes a registered secret), and the TLS context of :func:`tls_context`, made in a
    thread (it reads the CA files)."""
    proxies = Proxies.from_environ(os.environ)
    for proxy in (proxies.https, proxies.http):
        if proxy is not None:
            register_secret(proxy.password)
    return proxies, await asyncio.to_thread(tls_context, peer=peer)


def tls_context(*, peer: str) -> ssl.SSLContext:
    """The system's CA certificates, or those of ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set
    (OpenSSL reads them now: aiohttp's own context read them when it was imported)."""
    for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        path = os.environ.get(variable)
        if path and not os.access(path, os.R_OK):
            logger.warning("%s=%s cannot be read: TLS to %s trusts no CA from it",
                           variable, path, peer)
    context = ssl.create_default_context()
    context.set_alpn_protocols(("http/1.1",))  # as aiohttp's own context
    return context
