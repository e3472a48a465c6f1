"""A small HTTP proxy on 127.0.0.1 for the client's proxy tests, honest about what it did.

It tunnels ``CONNECT host:port`` (HTTPS through the proxy) byte for byte, and forwards plain
requests in absolute form (``POST http://host:port/path``, HTTP through the proxy) one per
connection. It counts both, and with ``credentials`` answers 407 to any request whose
``Proxy-Authorization`` is not that user's Basic credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from urllib.parse import urlsplit

REFUSAL = b"credentials needed"


class HttpProxy:
    """Start with ``async with``; ``url`` is where clients find it."""

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self._expected: str | None = None
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self._expected = f"Basic {token}"
        self.connects = 0  # CONNECT tunnels opened
        self.forwarded = 0  # plain requests passed on
        self.refused = 0  # 407 answers
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()  # both ends of every connection

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> HttpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):  # ends the pipes, so every handler returns
            writer.close()
        await asyncio.gather(*self._handlers)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._open.add(writer)
        try:
            await self._one_request(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away mid-request: nothing to pass on
        finally:
            self._handlers.discard(task)
            self._open.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")  # at most 64 KiB, asyncio's limit
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ")
        headers = [line for line in lines if line]
        fields = {name.strip().lower(): value.strip()
                  for name, _, value in (line.partition(":") for line in headers)}
        if self._expected is not None and fields.get("proxy-authorization") != self._expected:
            self.refused += 1
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b'Proxy-Authenticate: Basic realm="test"\r\n'
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(REFUSAL), REFUSAL))
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            self._open.add(upstream_writer)
            self.connects += 1
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            url = urlsplit(target)
            assert url.hostname is not None and url.port is not None, target
            upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname,
                                                                             url.port)
            self._open.add(upstream_writer)
            self.forwarded += 1
            path = url.path + (f"?{url.query}" if url.query else "")
            kept = [line for line in headers if line.split(":", 1)[0].strip().lower() not in
                    ("proxy-authorization", "proxy-connection", "connection")]
            upstream_writer.write(
                "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
                .encode("latin-1"))
        try:
            # a forwarded request ends when the server closes (Connection: close), a tunnel
            # when either side does
            await asyncio.gather(_pipe(reader, upstream_writer),
                                 _pipe(upstream_reader, writer))
        finally:
            self._open.discard(upstream_writer)
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until ``reader`` ends, then end ``writer``'s side."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    except (ConnectionError, RuntimeError):  # uvloop: a RuntimeError for a closed transport
        writer.close()
