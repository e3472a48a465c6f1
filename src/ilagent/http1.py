"""A lean HTTP/1.1 client: what ilert's client needs, at a fraction of aiohttp's CPU.

ilert's client sends one small request at a time per connection and reads one small answer:
no redirects, cookies, compression or HTTP/2. aiohttp's client, doing far more, was most of an
event's cost (figures in ``bench/RESULTS.md``, issue 27; the README says why this module).
Answers are parsed by ``httptools`` (llhttp, Node's parser); this module frames and pools.

* **Connections** are kept alive per origin (and proxy), reused newest first, closed after
  :data:`IDLE_SECONDS` idle or when the server says ``Connection: close``; at most ``limit``
  requests are open at once across all origins.
* **A request reusing an idle connection** that the server had closed meanwhile (nothing of
  the answer arrived) is sent once more on a new connection, as a browser does: a keep-alive
  race, not a failure. ilert events are at-least-once anyway (an alert key dedupes a repeat).
* **Timeouts** cover the whole request, connecting included; a late answer closes its
  connection. **TLS** uses the given context (:mod:`ilagent.outbound`), host name checked.
* **Proxies** (:class:`~ilagent.proxies.Route`): an https URL goes through a ``CONNECT``
  tunnel, the proxy's credentials on the ``CONNECT`` only; an http URL is sent to the proxy
  whole (absolute form), its credentials on the request.
* **Failures** are :class:`HttpFailure` (an ``OSError``) naming what failed, never a secret.
* A ``HEAD`` answer (and a ``CONNECT``'s) ends with its headers; its connection is not reused.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools

from ilagent.proxies import DIRECT, Route

__all__ = ["IDLE_SECONDS", "Answer", "HttpFailure", "Pool"]

IDLE_SECONDS = 15.0  # an idle connection is closed after this long (as aiohttp's keep-alive)
MAX_ANSWER = 1 << 20  # bytes of an answer's body kept; ilert's answers are a few hundred


class Answer(NamedTuple):
    """A server's answer: status, headers (names in lower case) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    reason: str = ""


class HttpFailure(OSError):
    """A request that got no answer: cannot connect, TLS, disconnected, a malformed answer, a
    proxy refusing the tunnel."""


class _Stale(HttpFailure):
    """A reused connection closed before anything of the answer arrived."""


@dataclass(frozen=True)
class _Origin:
    """Where a connection goes: the server (and the proxy on the way)."""

    scheme: str
    host: str
    port: int
    proxy: str | None

    @property
    def authority(self) -> str:
        return _authority(self.host, None if self.port == _default_port(self.scheme)
                          else self.port)


class _Connection(asyncio.Protocol):
    """One connection: sends a request, parses its answer (httptools calls ``on_*``)."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._reason = ""
        self._started = False  # bytes of the current answer arrived
        self._no_body = False  # HEAD and CONNECT: the answer ends with its headers
        self._keep = True
        self._headers_done = False
        self._framed = False  # a Content-Length or Transfer-Encoding says where the body ends

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():  # a server talking out of turn
            self.close()
            return
        self._started = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(HttpFailure(f"malformed answer from {self.origin.authority}: {exc}"))

    def eof_received(self) -> bool:
        self.closed = True  # not to be reused: the transport closes once this returns
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed:  # a body that ends with the connection
            self._complete()
            return
        if not self._started and self.reused:
            self._fail(_Stale(f"{self.origin.authority} closed an idle connection"))
            return
        why = f": {exc}" if exc else ""
        self._fail(HttpFailure(f"{self.origin.authority} closed the connection before "
                               f"answering{why}"))

    def on_message_begin(self) -> None:
        self._headers, self._body, self._size, self._reason = {}, [], 0, ""
        self._headers_done = self._framed = False

    def on_status(self, reason: bytes) -> None:
        self._reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key in ("content-length", "transfer-encoding"):
            self._framed = True
        self._headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._no_body and not self._interim:
            self._keep = False
            self._complete()

    def on_body(self, body: bytes) -> None:
        if self._size < MAX_ANSWER:
            self._body.append(body[:MAX_ANSWER - self._size])
            self._size += len(body)

    def on_message_complete(self) -> None:
        if self._interim:  # 100 Continue, 103 Early Hints: the answer follows
            return
        if self._waiter is not None and not self._waiter.done():
            self._keep = self._keep and self._parser.should_keep_alive()
            self._complete()

    async def exchange(self, data: bytes, *, no_body: bool = False,
                       deadline: float | None = None) -> Answer:
        """Send one request; its answer. Past ``deadline`` (the loop's clock) it fails with
        TimeoutError and the connection closes (one timer, not a cancellation scope: this
        runs for every event)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._started, self._no_body, self._keep = False, no_body, True
        self._headers_done = self._framed = False
        timer = None if deadline is None else loop.call_at(deadline, self._expire)
        self.transport.write(data)
        try:
            return await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _expire(self) -> None:
        self._fail(TimeoutError(f"no answer from {self.origin.authority} in time"))

    def restart_parser(self, transport: asyncio.Transport) -> None:
        """After a tunnel's TLS started: a new transport, and a parser for its answers."""
        self.transport, self._parser = transport, httptools.HttpResponseParser(self)

    @property
    def _interim(self) -> bool:
        return 100 <= self._parser.get_status_code() < 200

    @property
    def reusable(self) -> bool:
        return self._keep and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _complete(self) -> None:
        assert self._waiter is not None
        status = self._parser.get_status_code()
        self._waiter.set_result(Answer(status, self._headers, b"".join(self._body), self._reason))

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()


class Pool:
    """Keep-alive connections to any number of origins, at most ``limit`` requests at once.

    ``headers`` go with every request (``User-Agent``, ``Accept``); ``timeout`` bounds each
    request in seconds, connecting included; ``tls`` is the context of https connections."""

    def __init__(self, *, tls: ssl.SSLContext, timeout: float, limit: int = 100,
                 headers: Mapping[str, str] | None = None) -> None:
        self._tls = tls
        self._timeout = timeout
        self._slots = asyncio.Semaphore(limit)
        self._fixed = _header_lines(headers or {})
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._targets: dict[tuple[str, str, str | None], tuple[_Origin, str]] = {}
        self._open: set[_Connection] = set()
        self._closed = False

    async def request(self, method: str, url: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None, route: Route = DIRECT
                      ) -> Answer:
        """Send one request and return the answer (any status); :class:`HttpFailure` or
        ``TimeoutError`` when there is none."""
        if self._closed:
            raise RuntimeError("the HTTP pool is closed")
        origin, prefix = self._target(method, url, route.proxy)
        extra = _header_lines(headers or {}, route.headers)
        if body is None:
            data = f"{prefix}{extra}\r\n".encode()
        else:
            data = f"{prefix}{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout  # waiting for a slot and connecting included
        if self._slots.locked():
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()  # at once
        try:
            try:
                return await self._send(origin, data, method, route, deadline)
            except _Stale:  # the server had closed it: once more, on a new connection
                return await self._send(origin, data, method, route, deadline, fresh=True)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Close every connection; later requests raise RuntimeError."""
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    async def _send(self, origin: _Origin, data: bytes, method: str, route: Route,
                    deadline: float, *, fresh: bool = False) -> Answer:
        connection = None if fresh else self._take_idle(origin)
        if connection is None:
            async with asyncio.timeout_at(deadline):
                connection = await self._connect(origin, route)
        try:
            answer = await connection.exchange(data, no_body=method == "HEAD",
                                               deadline=deadline)
        except BaseException:
            self._drop(connection)
            raise
        if connection.reusable and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            connection.reused = True
            self._idle.setdefault(origin, []).append(connection)
        else:
            self._drop(connection)
        return answer

    def _take_idle(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest = asyncio.get_running_loop().time() - IDLE_SECONDS
        while idle and (idle[0].closed or idle[0].idle_since <= oldest):
            self._drop(idle.pop(0))
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
            self._drop(connection)
        return None

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def _connect(self, origin: _Origin, route: Route) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(origin)
        if origin.proxy is None:
            host, port, tls = origin.host, origin.port, origin.scheme == "https"
        else:
            proxy = urlsplit(origin.proxy)
            host, port = proxy.hostname or "", proxy.port or _default_port(proxy.scheme)
            tls = proxy.scheme == "https"
        try:
            await loop.create_connection(lambda: connection, host, port,
                                         ssl=self._tls if tls else None,
                                         server_hostname=host if tls else None)
        except (OSError, ssl.SSLError) as exc:
            raise HttpFailure(f"cannot connect to {_authority(host, port)}: "
                              f"{_reason(exc)}") from None
        self._open.add(connection)
        if origin.proxy is not None and origin.scheme == "https":
            try:
                await self._tunnel(connection, origin, route)
            except BaseException:
                self._drop(connection)
                raise
        return connection

    async def _tunnel(self, connection: _Connection, origin: _Origin, route: Route) -> None:
        """``CONNECT`` through the proxy, then TLS to the origin inside the tunnel."""
        target = _authority(origin.host, origin.port)
        credentials = _header_lines(route.proxy_headers or {})
        answer = await connection.exchange(
            f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{credentials}\r\n".encode(),
            no_body=True)
        if not 200 <= answer.status < 300:
            raise HttpFailure(f"the proxy refused a tunnel to {target}: {answer.status} "
                              f"{answer.reason}".rstrip())
        assert connection.transport is not None
        try:
            transport = await asyncio.get_running_loop().start_tls(
                connection.transport, connection, self._tls, server_hostname=origin.host)
        except (OSError, ssl.SSLError) as exc:
            raise HttpFailure(f"TLS to {target} through the proxy failed: "
                              f"{_reason(exc)}") from None
        if transport is None:
            raise HttpFailure(f"TLS to {target} through the proxy failed")
        connection.restart_parser(transport)

    def _target(self, method: str, url: str, proxy: str | None) -> tuple[_Origin, str]:
        """Where a request goes, and its request line, ``Host`` and fixed headers (kept for
        the URLs seen last: an event's URL differs by integration key only)."""
        key = (method, url, proxy)
        known = self._targets.get(key)
        if known is not None:
            return known
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL (scheme {parts.scheme!r})")
        origin = _Origin(parts.scheme, parts.hostname,
                         parts.port or _default_port(parts.scheme), proxy)
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        if proxy is not None and parts.scheme == "http":
            target = f"http://{origin.authority}{target}"  # the absolute form, for the proxy
        if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target):  # (not shown: keys)
            raise ValueError("a request target with a space or control character")
        if len(self._targets) >= 4096:
            self._targets.clear()
        known = self._targets[key] = (
            origin, f"{method} {target} HTTP/1.1\r\nHost: {origin.authority}\r\n{self._fixed}")
        return known


def _header_lines(*headers: Mapping[str, str]) -> str:
    """``Name: value`` lines; a value with CR or LF (it could start another header) is refused."""
    pairs = [pair for mapping in headers for pair in mapping.items()]
    if any("\r" in value or "\n" in value for _, value in pairs):
        raise ValueError("a header value with a line break")
    return "".join(f"{name}: {value}\r\n" for name, value in pairs)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _authority(host: str, port: int | None) -> str:
    """``host:port`` (an IPv6 address in brackets); the host alone without a port."""
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    """An OS or TLS error as a short phrase (``Connection refused``, ``certificate verify
    failed: …``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # not asyncio's "Connect call failed ('…', 9)"
    return str(exc) or type(exc).__name__
