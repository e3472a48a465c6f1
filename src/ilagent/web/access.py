"""Who may use the daemon's HTTP API: the allow list, bearer tokens, the per-address rate limit.

Every route but the probes (``/health`` without ``?details``, ``/ready``, ``/ready/<part>``,
which answer everyone) is guarded, in this order:

1. **The allow list** (``--http_allow``): a client whose address is not in it gets 403. Not
   given, it is the loopback addresses while no token is required — an intake nobody secured
   answers only its own machine — and every address once one is; given, it applies besides the
   token.
2. **The rate limit** (``--http_rate_limit``, :mod:`ilagent.web.ratelimit`): 429 with
   ``Retry-After``. Before the token, so guessing tokens is slowed down too.
3. **The bearer token**, when one is required: any of ``--http_token`` and the lines of
   ``--http_token_file`` (read again every 10 s, :mod:`ilagent.web.tokens`), each compared in
   constant time; 401 otherwise.

Refusals are JSON in ilert's shape ``{status, message, code}`` and counted in
``ilagent_http_intake_total{status}``. The client is the peer of the connection (an IPv4 client
of a dual-stack socket as its IPv4 address); ``X-Forwarded-For`` is never read: behind a
reverse proxy every client is the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ilagent.config import HttpSettings, Network
from ilagent.errors import ConfigError
from ilagent.logs import register_secret
from ilagent.metrics import Metrics
from ilagent.web.ratelimit import AddressLimiter
from ilagent.web.refusals import refuse, retry_after
from ilagent.web.tokens import POLL_INTERVAL, TokenFile

logger = logging.getLogger(__name__)

LOOPBACK: tuple[Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
EVERYWHERE: tuple[Network, ...] = (ip_network("0.0.0.0/0"), ip_network("::/0"))


class Access:
    """The API's guard, built from the HTTP settings; tokens never appear in its repr."""

    def __init__(self, *, settings: HttpSettings, metrics: Metrics,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self._token_required = settings.token_required
        self._default_allow = settings.allow is None
        self._allow: tuple[Network, ...] | None = (
            settings.allow if settings.allow is not None
            else None if settings.token_required else LOOPBACK)
        self._given = tuple(_digest(token.encode()) for token in settings.tokens)
        self._from_file: tuple[bytes, ...] = ()
        self._file = TokenFile(settings.token_file) if settings.token_file else None
        self._limiter = AddressLimiter(settings.rate_limit) if settings.rate_limit else None
        self._metrics = metrics
        self._poll_interval = poll_interval
        self._unreadable = False
        self._read_before = False  # the token file was read once: later reads are changes

    def __repr__(self) -> str:
        return f"Access({self.describe()!r})"

    def describe(self) -> str:
        """Who may use the API, in words (the INFO line at start)."""
        if self._token_required:
            sources = [f"{len(self._given)} given"] if self._given else []
            if self._file is not None:
                sources.append(f"those of {self._file.path}")
            who = f"a bearer token required ({' and '.join(sources)})"
        else:
            who = "no token"
        if self._allow is None or set(EVERYWHERE) <= set(self._allow):
            where = "from every address"
        else:
            where = f"only from {', '.join(map(str, self._allow))}"
            if self._default_allow:
                where += " (this machine; others get 403: see --http_allow, --http_token)"
        limit = (f"at most {self._limiter.per_minute} requests a minute per address"
                 if self._limiter is not None else "no rate limit")
        return f"{who}, {where}; {limit}"

    def middleware(self) -> Middleware:
        """The aiohttp middleware that applies the rules above."""

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            if _open(request):
                return await handler(request)
            client = _client(request)
            if self._allow is not None and not _within(client, self._allow):
                return self._refuse(request, 403, "FORBIDDEN", self._forbidden(client))
            if self._limiter is not None and client is not None:
                wait = self._limiter.check(client)
                if wait > 0:
                    headers = retry_after(wait)
                    return self._refuse(
                        request, 429, "TOO_MANY_REQUESTS",
                        f"more than {self._limiter.per_minute} requests a minute from "
                        f"{client}: retry after {headers['Retry-After']} s", headers)
            if self._token_required and not self._authorized(
                    request.headers.get("Authorization", "")):
                return self._refuse(request, 401, "UNAUTHORIZED", "missing or wrong bearer token",
                                    {"WWW-Authenticate": "Bearer"})
            return await handler(request)

        return guard

    async def polling(self, _app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: say who may use the API, read the token file before the
        server takes requests, then again every poll interval until it stops."""
        logger.info("HTTP access: %s", self.describe())
        task: asyncio.Task[None] | None = None
        if self._file is not None:
            try:
                await self._reload()
            except OSError as exc:
                raise ConfigError(f"--http_token_file {self._file.path}: "
                                  f"{exc.strerror or exc}") from None
            task = asyncio.get_running_loop().create_task(self._poll())
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _authorized(self, header: str) -> bool:
        """Whether ``Bearer <token>`` names a valid token. Digests of equal length are
        compared, every one of them, each in constant time: the answer's timing tells neither a
        token nor its length."""
        scheme, _, credentials = header.partition(" ")
        # surrogateescape: bytes that are not UTF-8 compare unequal instead of failing
        given = _digest(credentials.strip().encode("utf-8", "surrogateescape"))
        matched = False
        for token in (*self._given, *self._from_file):
            matched |= hmac.compare_digest(given, token)
        return matched and scheme.lower() == "bearer"

    def _forbidden(self, client: IPv4Address | IPv6Address | None) -> str:
        who = str(client) if client is not None else "this client"
        if self._default_allow:
            return (f"{who} may not use this API: without --http_token only this machine may "
                    "(see --http_allow)")
        return f"{who} may not use this API: it is not in --http_allow"

    def _refuse(self, request: web.Request, status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> web.Response:
        self._metrics.intake.labels(str(status)).inc()
        return refuse(request, status, code, message, headers)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self._reload()
            except OSError as exc:
                if not self._unreadable:
                    self._unreadable = True
                    logger.warning("cannot read the token file %s (%s): the tokens read "
                                   "before stay valid", self._file and self._file.path, exc)

    async def reload_now(self) -> None:
        """Read the token file now (SIGHUP), not at the next poll; a file that cannot be read
        keeps the tokens read before, and says so."""
        if self._file is None:
            return
        try:
            await self._reload()
        except OSError as exc:
            logger.error("SIGHUP: the token file %s cannot be read (%s); the tokens read "
                         "before stay valid", self._file.path, exc.strerror or exc)

    async def _reload(self) -> None:
        """Read the token file (in a thread); take its tokens when they changed."""
        assert self._file is not None
        tokens = await asyncio.to_thread(self._file.read)
        if self._unreadable:
            self._unreadable = False
            logger.info("the token file %s can be read again", self._file.path)
        if tokens is None:
            return
        for token in tokens:  # on the event loop: the log formatter reads the set
            register_secret(token)
        changed, self._read_before = self._read_before, True
        self._from_file = tuple(_digest(token.encode()) for token in sorted(tokens))
        if not tokens:
            logger.warning("the token file %s holds no token: every request but the probes "
                           "is refused with 401 until it does", self._file.path)
        elif changed:
            logger.info("the token file %s changed: %d token(s) valid now", self._file.path,
                        len(tokens))


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def _open(request: web.Request) -> bool:
    """The probes answer everyone: ``/health`` (its details do not), ``/ready…``."""
    path = request.path
    if path == "/health":
        return "details" not in request.query
    return path == "/ready" or path.startswith("/ready/")


def _client(request: web.Request) -> IPv4Address | IPv6Address | None:
    """The connection's peer address, an IPv4-mapped one as IPv4; None when it has none."""
    peer = request.remote
    if not peer:
        return None
    try:
        address = ip_address(peer.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(client: IPv4Address | IPv6Address | None, allow: tuple[Network, ...]) -> bool:
    return client is not None and any(client in network for network in allow)
