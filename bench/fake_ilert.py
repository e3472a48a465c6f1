"""A minimal, fast stand-in for ilert's event API, for benchmarks of the daemon's own cost.

The sandbox is a faithful ilert (alerts, faults, a UI) and costs about as much CPU as the daemon
it serves; on a two-core machine that would measure the sandbox as much as the daemon. This
server only answers: every ``POST`` is 202 with ilert's small JSON answer, on HTTP/1.1
keep-alive connections, and its body is kept in memory. The bench reads back:

* ``GET /fake/count`` — ``{"count": N, "first": t, "last": t, "cpu": s}``: POSTs answered,
  the monotonic times (``time.monotonic()`` of this process, seconds) of the first and the
  last, and the CPU seconds this process used between them (answering the bench's own
  ``/fake/count`` polls included);
* ``GET /fake/bodies`` — every POST body so far, one per line, in arrival order;
* ``DELETE /fake`` — forget them.

    python bench/fake_ilert.py --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import ClassVar

ANSWER = b'{"responseCode":"NEW_INCIDENT_CREATED","incidentUrl":"https://fake.invalid/i/1"}'


class FakeIlert(asyncio.Protocol):
    """One connection: parse requests by Content-Length, answer each at once."""

    bodies: ClassVar[list[bytes]] = []
    first = last = cpu_first = cpu_last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.WriteTransport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            method, path = head.split(b" ", 2)[:2]
            self.answer(method, path, body)

    def answer(self, method: bytes, path: bytes, body: bytes) -> None:
        status, payload = b"202 Accepted", ANSWER
        if path.startswith(b"/fake"):
            status, payload = b"200 OK", self.control(method, path)
        elif method == b"POST":
            now, cpu = time.monotonic(), time.process_time()
            cls = type(self)
            if not cls.bodies:
                cls.first, cls.cpu_first = now, cpu
            cls.last, cls.cpu_last = now, cpu
            cls.bodies.append(body)
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )

    @classmethod
    def control(cls, method: bytes, path: bytes) -> bytes:
        if method == b"DELETE":
            cls.bodies, cls.first, cls.last, cls.cpu_first, cls.cpu_last = [], 0.0, 0.0, 0.0, 0.0
            return b"{}"
        if path.startswith(b"/fake/bodies"):
            return b"\n".join(cls.bodies)
        return json.dumps({"count": len(cls.bodies), "first": cls.first, "last": cls.last,
                           "cpu": cls.cpu_last - cls.cpu_first}).encode()


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(FakeIlert, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
