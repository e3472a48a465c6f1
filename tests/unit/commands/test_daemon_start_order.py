"""What the daemon starts, in which order: nothing hands over a message before the ilert client
can send it (a partition assigned at once used to meet an unstarted client, and its messages
were dead-lettered as internal errors)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from ilagent.cli import build_parser
from ilagent.commands.daemon import daemon_config
from ilagent.daemon import Daemon


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_source_starts_after_the_ilert_client(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka, the queue worker, MQTT and the HTTP intake all start once the client is open."""
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args([
        "daemon", "--kafka_brokers", f"127.0.0.1:{free_port()}", "--kafka_group_id", "g",
        "-e", "events", "--policy_topic", "shifts", "--policy_routing_keys", "location",
        "-m", "127.0.0.1", "-q", str(free_port()),
        "--mqtt_qos", "1", "-p", str(free_port()), "--http_host", "127.0.0.1",
        "--shutdown_timeout", "5", "--ilert_api_key", "an-api-key-of-some-length"])
    daemon = Daemon(daemon_config(args))
    started: list[str] = []
    open_client = daemon.client.start

    async def client_start() -> None:
        await open_client()
        started.append("client")

    def recorded(name: str, start: object) -> object:
        def wrapped(*args: object, **kwargs: object) -> object:
            started.append(name)
            return start(*args, **kwargs)  # type: ignore[operator]
        return wrapped

    monkeypatch.setattr(daemon.client, "start", client_start)
    for name in ("bridge", "worker", "mqtt"):
        part = getattr(daemon, name)
        assert part is not None, f"{name} is not configured: the test would prove nothing"
        monkeypatch.setattr(part, "start", recorded(name, part.start))
    monkeypatch.setattr(daemon, "_start_http", recorded("http", daemon._start_http))
    daemon.request_stop()  # run() starts everything, then shuts down at once
    asyncio.run(daemon.run())
    assert started[0] == "client" and sorted(started[1:]) == ["bridge", "http", "mqtt",
                                                                "worker"], started
