"""The lean HTTP/1.1 client against a scripted server: keep-alive and its races, framing of
answers, timeouts, the connection limit, and what it refuses to send.

The server is a real socket on 127.0.0.1 whose answer to each request is a script step, so
the edges (a connection closed just as it is reused, an answer that never comes) are steps
of their own, not timing."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from ilagent import http1
from ilagent.http1 import HttpFailure, Pool

OK = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"



@dataclass
class Server:
    """Counts connections and requests; ``script`` answers each request in turn."""

    # per request: an answer; an answer and then a close (a tuple); None to close without
    # answering; ... to never answer
    script: list[bytes | tuple[bytes] | type[Ellipsis] | None] = field(default_factory=list)
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0
    closed_by_client: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                step = self.script.pop(0) if self.script else OK
                if step is None:
                    return
                if step is ...:  # no answer: wait until the client gives up
                    await reader.read()
                    self.closed_by_client += 1
                    return
                answer = step[0] if isinstance(step, tuple) else step
                assert isinstance(answer, bytes)
                writer.write(answer)
                await writer.drain()
                if isinstance(step, tuple) or b"connection: close" in answer.lower():
                    return
        finally:
            self.open_now -= 1
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listening = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield state
        listening.close()


def pool(*, timeout: float = 5, limit: int = 100) -> Pool:
    return Pool(tls=ssl.create_default_context(), timeout=timeout, limit=limit,
                headers={"User-Agent": "test"})


def url(server: Server, path: str = "/api/events") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_requests_share_one_kept_alive_connection(server: Server) -> None:
    client = pool()
    for _ in range(3):
        answer = await client.request("POST", url(server), body=b'{"a":1}',
                                      headers={"Content-Type": "application/json"})
        assert (answer.status, answer.body, answer.reason) == (202, b"{}", "Accepted")
    await client.close()
    assert server.connections == 1 and len(server.requests) == 3
    first = server.requests[0]
    assert first.startswith(b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"User-Agent: test\r\n" in first and b"Content-Length: 7\r\n" in first
    assert first.endswith(b'\r\n\r\n{"a":1}')


async def test_a_connection_the_server_closed_as_it_was_reused_is_replaced_once(
        server: Server) -> None:
    """Keep-alive's race: the server drops the idle connection just as the next request
    goes out on it. Nothing of an answer came: the request goes once more, on a new
    connection, and succeeds."""
    client = pool()
    server.script = [OK, None]  # the second request's connection closes without an answer
    assert (await client.request("POST", url(server), body=b"1")).status == 202
    assert (await client.request("POST", url(server), body=b"2")).status == 202
    await client.close()
    assert server.connections == 2
    assert [r.rsplit(b"\r\n", 1)[1] for r in server.requests] == [b"1", b"2", b"2"]


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
        server: Server) -> None:
    client = pool()
    server.script = [(OK,)]  # answered, then closed by the server
    assert (await client.request("POST", url(server), body=b"1")).status == 202
    await _until(lambda: all(c.closed for idle in client._idle.values() for c in idle))
    assert (await client.request("POST", url(server), body=b"2")).status == 202
    await client.close()
    assert server.connections == 2 and len(server.requests) == 2


async def test_a_new_connection_closed_without_an_answer_is_a_failure(server: Server) -> None:
    """Only a reused connection is tried again: on a new one, a close is the server's
    answer, and the caller decides (ilert's client retries it later)."""
    client = pool()
    server.script = [None]
    with pytest.raises(HttpFailure, match="closed the connection before answering"):
        await client.request("POST", url(server), body=b"1")
    await client.close()
    assert len(server.requests) == 1


async def test_a_reused_connection_closed_twice_is_a_failure(server: Server) -> None:
    client = pool()
    server.script = [OK, None, None]
    await client.request("GET", url(server))
    with pytest.raises(HttpFailure):
        await client.request("GET", url(server))
    await client.close()
    assert len(server.requests) == 3


async def test_connection_close_is_honoured(server: Server) -> None:
    client = pool()
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    server.script = [closing, closing]
    for _ in range(2):
        assert (await client.request("GET", url(server))).status == 200
    await client.close()
    assert server.connections == 2


async def test_chunked_and_until_close_bodies_are_read_whole(server: Server) -> None:
    client = pool()
    server.script = [
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
        b"Retry-After: 7\r\n\r\n4\r\nbusy\r\n7\r\n, later\r\n0\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nno such page",
    ]
    chunked = await client.request("POST", url(server), body=b"{}")
    assert (chunked.status, chunked.body, chunked.headers["retry-after"]) == (
        503, b"busy, later", "7")
    until_close = await client.request("GET", url(server))
    assert (until_close.status, until_close.body) == (404, b"no such page")
    await client.close()


async def test_an_interim_answer_is_not_the_answer(server: Server) -> None:
    """A 103 Early Hints (a CDN in front of ilert may send one) comes before the answer: taken
    for the answer, a 1xx would reject the event."""
    client = pool()
    server.script = [b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" + OK]
    answer = await client.request("POST", url(server), body=b"{}")
    assert (answer.status, answer.body) == (202, b"{}")
    assert (await client.request("POST", url(server), body=b"{}")).status == 202
    await client.close()
    assert server.connections == 1


async def test_a_head_answer_ends_with_its_headers(server: Server) -> None:
    """A HEAD answer announces a body it does not send; waiting for it would hang until the
    timeout."""
    client = pool(timeout=2)
    server.script = [b"HTTP/1.1 404 Not Found\r\nContent-Length: 120\r\n\r\n"]
    answer = await client.request("HEAD", url(server, "/pings/il1hbt1"))
    assert (answer.status, answer.body) == (404, b"")
    await client.close()
    assert server.requests[0].startswith(b"HEAD /pings/il1hbt1 HTTP/1.1\r\n")
    assert b"Content-Length" not in server.requests[0]


async def test_an_answer_that_never_comes_times_out_and_its_connection_closes(
        server: Server) -> None:
    client = pool(timeout=0.3)
    server.script = [...]
    with pytest.raises(TimeoutError):
        await client.request("POST", url(server), body=b"{}")
    await _until(lambda: server.closed_by_client == 1)
    assert (await client.request("POST", url(server), body=b"{}")).status == 202
    await client.close()
    assert server.connections == 2


async def test_no_more_requests_at_once_than_the_limit(server: Server) -> None:
    client = pool(limit=2)
    answers = await asyncio.gather(*(client.request("POST", url(server), body=b"{}")
                                     for _ in range(10)))
    await client.close()
    assert [a.status for a in answers] == [202] * 10
    assert server.most_open <= 2 and len(server.requests) == 10


async def test_a_malformed_answer_is_a_failure_and_its_connection_is_not_reused(
        server: Server) -> None:
    client = pool()
    server.script = [b"SMTP ready\r\n\r\n"]
    with pytest.raises(HttpFailure, match="malformed answer"):
        await client.request("GET", url(server))
    assert (await client.request("GET", url(server))).status == 202
    await client.close()
    assert server.connections == 2


async def test_an_upgrade_is_refused_as_a_malformed_answer(server: Server) -> None:
    client = pool()
    server.script = [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n"]
    with pytest.raises(HttpFailure, match="malformed answer"):
        await client.request("GET", url(server))
    await client.close()


async def test_a_big_answer_is_cut_and_the_connection_stays_usable(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "MAX_ANSWER", 10)
    client = pool()
    server.script = [b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n" + b"x" * 100]
    answer = await client.request("GET", url(server))
    assert (answer.status, answer.body) == (500, b"x" * 10)
    assert (await client.request("GET", url(server))).status == 202
    await client.close()
    assert server.connections == 1


async def test_idle_connections_are_closed_after_the_idle_time(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "IDLE_SECONDS", 0.0)  # every idle connection is too old
    client = pool()
    for _ in range(3):
        await client.request("GET", url(server))
    await client.close()
    assert server.connections == 3


async def test_what_could_split_a_request_is_refused_before_sending(server: Server) -> None:
    client = pool()
    with pytest.raises(ValueError, match="line break"):
        await client.request("POST", url(server), body=b"{}",
                             headers={"X-Ilagent-Route": "a\r\nX-Evil: 1"})
    with pytest.raises(ValueError, match="space or control character"):
        await client.request("GET", url(server, "/api/a b"))
    await client.close()
    assert server.requests == []


async def test_cannot_connect_says_where_and_why(server: Server) -> None:
    client = pool()
    with pytest.raises(HttpFailure, match=r"cannot connect to 127\.0\.0\.1:9: "
                                          "Connection refused"):
        await client.request("GET", "http://127.0.0.1:9/api/events")
    await client.close()


async def test_a_closed_pool_refuses_requests(server: Server) -> None:
    client = pool()
    await client.request("GET", url(server))
    await client.close()
    await _until(lambda: server.open_now == 0)
    with pytest.raises(RuntimeError, match="closed"):
        await client.request("GET", url(server))


async def _until(condition: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
