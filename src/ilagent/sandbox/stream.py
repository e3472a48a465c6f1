"""Server-sent events of the sandbox: every answered /api request and alert change, live.

:class:`Hub` fans messages out to one bounded queue per subscriber. A subscriber too slow to keep
up is cut off (its browser reconnects by itself and reloads the snapshot), so a stalled tab can
neither block the API nor grow memory. On server shutdown :meth:`Hub.close` ends every stream so
aiohttp does not have to cancel handlers; a vanished client is noticed at the next write, at the
latest at the next keep-alive comment.

Wire format: each message is one ``data:`` line of JSON with a ``type``:
``request`` (``{request, event, alert, policy, stats}``; ``policy`` is the escalation policy a
level update changed), ``policies`` (``{policies}``, all of them, after a seed) or ``reset``
(``{stats, policies}``). A stream opens with ``event: hello`` so the page knows when to
(re)load its snapshot without missing anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1_000
KEEPALIVE_S = 15.0
_HELLO = b"event: hello\ndata: {}\n\n"
_KEEPALIVE = b": keepalive\n\n"
_OVERFLOW = b"event: overflow\ndata: {}\n\n"


class _Subscriber:
    __slots__ = ("overflowed", "queue")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False


class Hub:
    """Fan-out of JSON messages to the open streams."""

    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()
        self._closed = False

    @property
    def listening(self) -> bool:
        """Whether any stream is open, so callers can skip building messages nobody reads."""
        return bool(self._subscribers)

    def publish(self, message: Mapping[str, Any]) -> None:
        """Queue ``message`` for every open stream."""
        if not self._subscribers:
            return
        frame = b"data: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait(frame)
            except asyncio.QueueFull:
                subscriber.overflowed = True
                self._subscribers.discard(subscriber)
                _wake(subscriber)

    def close(self) -> None:
        """End every stream (server shutdown); later subscribers end at once."""
        self._closed = True
        for subscriber in self._subscribers:
            _wake(subscriber)
        self._subscribers.clear()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Handle ``GET /sandbox/stream`` until the client leaves or the server stops."""
        subscriber = _Subscriber()
        if self._closed:
            _wake(subscriber)
        else:
            # subscribe before saying hello: whatever the page's snapshot misses, it is queued
            self._subscribers.add(subscriber)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(_HELLO)
            await self._pump(subscriber, response)
        except ConnectionResetError:
            logger.debug("sandbox stream client went away")
        finally:
            self._subscribers.discard(subscriber)
        return response

    async def _pump(self, subscriber: _Subscriber, response: web.StreamResponse) -> None:
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    frame = await subscriber.queue.get()
            except TimeoutError:
                await response.write(_KEEPALIVE)
                continue
            if frame is None:
                if subscriber.overflowed:
                    logger.warning("sandbox stream client too slow, disconnecting it")
                    await response.write(_OVERFLOW)
                return
            await response.write(frame)


def _wake(subscriber: _Subscriber) -> None:
    """Make the subscriber's pump return: drop what is queued, then queue the end marker."""
    while not subscriber.queue.empty():
        subscriber.queue.get_nowait()
    subscriber.queue.put_nowait(None)
