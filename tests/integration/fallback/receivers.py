"""What the local fallback's alarms are sent to in the tests: an MQTT subscriber, a webhook
endpoint and an SMTP server (aiosmtpd as a process), each keeping what it received."""

from __future__ import annotations

import json
import mailbox
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from broker import free_port
from paho.mqtt.enums import CallbackAPIVersion

from helpers import secret, wait_until

KINDS = ("ilert_unreachable", "reminder", "all_clear")


class Subscriber:
    """An MQTT subscriber that keeps every JSON payload of one topic (retained ones too)."""

    def __init__(self, port: int, topic: str) -> None:
        self._payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def _message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._payloads.append(json.loads(message.payload))

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._payloads)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Webhook:
    """A webhook endpoint on 127.0.0.1 that keeps the JSON body of every POST to its path, a
    path with a token in it (registered as a secret: it must never reach a log line)."""

    def __init__(self) -> None:
        self.path = f"/alarms/{secret('hook')}"
        self._bodies: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == owner.path:
                    owner._bodies.append(json.loads(body))
                self.send_response(204 if self.path == owner.path else 404)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass  # the test reads the bodies, not an access log

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> list[dict[str, Any]]:
        return list(self._bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    """The Maildir an SMTP server delivers into."""

    def __init__(self, port: int, maildir: Path) -> None:
        self.port = port
        self.maildir = maildir

    def received(self) -> list[dict[str, Any]]:
        """Each mail's fields (the JSON body's, as text lines) and subject, in the order sent."""
        if not (self.maildir / "new").exists():
            return []
        found = []
        for message in mailbox.Maildir(str(self.maildir), create=False):
            text = message.get_payload(decode=True).decode()
            fields = text.split("\n\n")[-1]  # the last paragraph: "name: value" lines
            found.append({**dict(line.split(": ", 1) for line in fields.splitlines()),
                          "subject": message["Subject"], "to": message["To"]})
        return sorted(found, key=lambda m: (m["at"], KINDS.index(m["status"])))


@contextmanager
def smtp_server(directory: Path) -> Iterator[Inbox]:
    """aiosmtpd as a process on a free port, delivering every mail into a Maildir."""
    port, log = free_port(), directory / "smtp.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                                 f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox",
                                 str(directory / "maildir")], stdout=out,
                                stderr=subprocess.STDOUT)

    def listening() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        wait_until(listening, timeout=20, what="the SMTP server")
        yield Inbox(port, directory / "maildir")
    finally:
        proc.terminate()
        proc.wait(10)


def statuses(items: list[dict[str, Any]]) -> list[str]:
    """The ``status`` of each notice, in order."""
    return [item["status"] for item in items]
