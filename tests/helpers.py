"""Test helpers: bounded waits, the sandbox's JSON API, Kafka topics and daemon processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from paho.mqtt.enums import CallbackAPIVersion

T = TypeVar("T")


# every daemon's output and every secret the suite handed to one, for the final check that no
# secret ever reached a log line (tests/test_no_secrets_leaked.py runs last); the processes
# themselves, whose arguments and environment name secrets the helpers never saw
DAEMON_LOGS: list[Path] = []
SECRETS: set[str] = set()
RUNS: list[DaemonProcess] = []

# ilagent 0.9's tables after its five migrations (as its db.rs leaves them)
LEGACY_SCHEMA = """
CREATE TABLE ilagent (key TEXT PRIMARY KEY, val TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE event_items (id TEXT PRIMARY KEY, integration_key TEXT NOT NULL,
    event_type TEXT NOT NULL, alert_key TEXT NULL, summary TEXT NOT NULL, created_at TEXT NOT NULL,
    priority TEXT NULL, images TEXT NULL, links TEXT NULL, custom_details TEXT NULL,
    details TEXT NULL, inserted_at DATETIME DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    event_api_path TEXT NULL);
CREATE TABLE mqtt_queue (id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL,
    inserted_at DATETIME DEFAULT(STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')));
"""



def secret(prefix: str) -> str:
    """A fresh secret value for a test (a token, a password), remembered for the final check."""
    value = f"{prefix}-{uuid.uuid4().hex}"
    SECRETS.add(value)
    return value


def wait_until(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.1,
               what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 5.0,
                     what: str = "condition") -> Any:
    """Await ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)
    return value


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def http(method: str, url: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One HTTP request; returns (status, parsed JSON body or text or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, ctype = response.status, response.read(), response.headers.get(
                "Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    if not raw:
        return status, None
    return status, json.loads(raw) if "json" in ctype else raw.decode()


def status_or_none(method: str, url: str) -> int | None:
    """The status of a request, or None while nothing listens there yet."""
    try:
        return http(method, url)[0]
    except OSError:
        return None


class Sandbox:
    """The JSON API of a running ``ilagent sandbox``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.api_url = f"{self.url}/api"

    def reset(self) -> None:
        http("DELETE", f"{self.url}/sandbox/faults")
        http("DELETE", f"{self.url}/sandbox")

    def events(self, integration_key: str | None = None) -> list[dict[str, Any]]:
        query = f"?integration_key={integration_key}" if integration_key else ""
        status, body = http("GET", f"{self.url}/sandbox/events{query}")
        assert status == 200, body
        return list(body["events"] if isinstance(body, dict) else body)

    def bodies(self, integration_key: str | None = None) -> list[dict[str, Any]]:
        return [e["body"] for e in self.events(integration_key)]

    def requests(self) -> list[dict[str, Any]]:
        status, body = http("GET", f"{self.url}/sandbox/requests")
        assert status == 200, body
        return list(body["requests"] if isinstance(body, dict) else body)

    def heartbeats(self) -> Any:
        return http("GET", f"{self.url}/sandbox/heartbeats")[1]

    def alerts(self) -> list[dict[str, Any]]:
        body = http("GET", f"{self.url}/sandbox/alerts")[1]
        return list(body["alerts"] if isinstance(body, dict) else body)

    def fault(self, **spec: Any) -> None:
        status, body = http("POST", f"{self.url}/sandbox/faults", spec)
        assert status in (200, 201), body

    def clear_faults(self) -> None:
        http("DELETE", f"{self.url}/sandbox/faults")

    def seed(self, **seed: Any) -> dict[str, Any]:
        """POST /sandbox/seed (``apiKeys``, ``users``, ``policies``); what was added, ids set."""
        for key in seed.get("apiKeys", ()):
            SECRETS.add(key)  # a daemon given this key must never log it
        status, body = http("POST", f"{self.url}/sandbox/seed", seed)
        assert status == 201, body
        return dict(body)

    def policies(self, routing_key: str | None = None) -> list[dict[str, Any]]:
        """Escalation policies as ilert shows them, plus ``rev`` and ``updatedAt``."""
        query = f"?routing_key={urllib.parse.quote(routing_key)}" if routing_key else ""
        status, body = http("GET", f"{self.url}/sandbox/policies{query}")
        assert status == 200, body
        return list(body)

    def level_emails(self, routing_key: str, level: int) -> list[str]:
        """The e-mails of the users on one level of the policy with this routing key."""
        [policy] = self.policies(routing_key)
        return [user["email"] for user in policy["escalationRules"][level]["users"]]


def start_sandbox(port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start ``ilagent sandbox`` as a process and wait until it answers."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ilagent", "sandbox", "--port", str(port), *extra],
            stdout=out, stderr=subprocess.STDOUT)
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/sandbox/stats") or proc.poll(),
               timeout=30, what="the sandbox to listen")
    assert proc.poll() is None, log.read_text()
    return proc


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


class DaemonProcess:
    """``ilagent daemon`` (or any subcommand) as a real process with its output in a file."""

    def __init__(self, args: Iterable[str], *, log: Path, env: dict[str, str],
                 preexec_fn: Callable[[], object] | None = None) -> None:
        self.args = list(args)
        self.log = log
        self.env = {**os.environ, **env}
        self.preexec_fn = preexec_fn  # run in the child before ilagent starts (limits, signals)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        with open(self.log, "ab") as out:
            out.write(f"\n=== start ilagent {self.args[0] if self.args else ''}\n".encode())
            # in the test's own directory, so the default ./ilagent.db3 is never shared
            self.proc = subprocess.Popen([sys.executable, "-m", "ilagent", *self.args],
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=self.log.parent, preexec_fn=self.preexec_fn)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown sequence, no final commit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not stop within {timeout}s\n{self.output()[-3000:]}") from None


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions,
                                            replication_factor=1)])
    futures[name].result(30)
    wait_until(lambda: name in admin.list_topics(timeout=5).topics, timeout=30,
               what=f"topic {name}")
    return name


def produce(bootstrap: str, topic: str, messages: Iterable[bytes | str | dict[str, Any]], *,
            key: bytes | str | None = None,
            keys: Iterable[bytes | str | None] | None = None,
            partition: int | None = None) -> int:
    """Produce messages (dicts as JSON) and wait until the broker has them all."""
    # idempotent: a retried first batch (a topic just created) never lands behind later ones
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                         "enable.idempotence": True})
    failures: list[str] = []
    count = 0
    key_list = list(keys) if keys is not None else None
    for index, message in enumerate(messages):
        value = json.dumps(message).encode() if isinstance(message, dict) else message
        this_key = key_list[index] if key_list is not None else key
        extra = {"partition": partition} if partition is not None else {}
        while True:
            try:
                producer.produce(topic, value=value, key=this_key,
                                 on_delivery=lambda err, _m: err and failures.append(str(err)),
                                 **extra)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
    assert producer.flush(60) == 0, "messages not acknowledged by the broker"
    assert not failures, failures
    return count


def produce_slowly(bootstrap: str, topic: str, events: list[dict[str, Any]], *,
                   per_second: int, failures: list[str], key_field: str = "alertKey") -> None:
    """Produce ``events`` keyed by their ``key_field`` at about ``per_second`` (run in a
    thread); what the broker refused goes into ``failures``."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                         "enable.idempotence": True})
    start = time.monotonic()
    for index, event in enumerate(events):
        producer.produce(topic, json.dumps(event).encode(), key=event[key_field],
                         on_delivery=lambda err, _m: err and failures.append(str(err)))
        producer.poll(0)
        ahead = start + index / per_second - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)  # pacing a producer, not waiting for a condition
    if producer.flush(60):
        failures.append("not all produced")


COORDINATOR_MOVING = frozenset({
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT, KafkaError._TRANSPORT})


def committed(bootstrap: str, group: str, topic: str, partitions: int = 1) -> list[int]:
    """The committed offsets of ``group`` on ``topic`` (-1001 when none)."""
    return [offset for offset, _metadata in committed_maps(bootstrap, group, topic, partitions)]


def committed_maps(bootstrap: str, group: str, topic: str, partitions: int = 1
                   ) -> list[tuple[int, str]]:
    """The committed offsets of ``group`` on ``topic`` with their metadata strings; asked
    again while the coordinator moves or loads (NOT_COORDINATOR right after a group's first
    commit), for up to 20 s."""
    deadline = time.monotonic() + 20
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        while True:
            try:
                result = consumer.committed(
                    [TopicPartition(topic, p) for p in range(partitions)], timeout=10)
                return [(tp.offset, tp.metadata or "") for tp in result]
            except KafkaException as exc:
                if exc.args[0].code() not in COORDINATOR_MOVING or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # a poll: the coordinator answers again within moments
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, *, expect: int,
             timeout: float = 30.0) -> list[Any]:
    """Read ``expect`` messages of a topic from the beginning (with a throwaway group)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expect and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


def publish(port: int, topic: str, messages: list[dict[str, Any] | bytes], *, qos: int = 1,
            **connect: Any) -> None:
    """Publish messages (dicts as JSON) and wait until the broker acknowledged each."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    if connect.get("tls_context") is not None:
        client.tls_set_context(connect["tls_context"])
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, m if isinstance(m, bytes) else json.dumps(m), qos=qos)
                 for m in messages]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def write_routes(path: Path, *routes: dict[str, Any]) -> Path:
    """A config file holding these ``[[route]]`` tables (values: strings, numbers, booleans,
    lists and tables of them)."""
    def toml(value: Any) -> str:
        if isinstance(value, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
        if isinstance(value, list):
            return "[" + ", ".join(map(toml, value)) + "]"
        return json.dumps(value)  # JSON spells strings, numbers and booleans as TOML does

    path.write_text("".join("[[route]]\n" + "".join(f"{name} = {toml(value)}\n"
                                                     for name, value in route.items())
                            for route in routes))
    return path


def subscribed(daemon: Any) -> bool:
    return "MQTT subscribed" in daemon.output()


def metric(port: int, name: str) -> float:
    """The sum of the daemon's samples whose line starts with ``name`` (labels included)."""
    _status, text = http("GET", f"http://127.0.0.1:{port}/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in str(text).splitlines()
               if line.startswith(name))


# retries quick and pacing off: fault tests are about the engine, not about ilert's limits
FAST = ["--retry_initial_delay", "0.2", "--retry_max_delay", "1", "--rate_limit_delay", "1",
        "--rate_limit_per_key", "0", "--rate_limit_total", "0"]


def events_for(key: str, alerts: int, per_alert: int) -> list[dict[str, Any]]:
    """per_alert events for each of `alerts` alert keys, interleaved, numbered per alert."""
    return [{"integrationKey": key, "eventType": "ALERT", "alertKey": f"a{a}",
             "summary": f"a{a}#{n}"} for n in range(per_alert) for a in range(alerts)]


def received_by_alert(sandbox: Sandbox, key: str) -> dict[str, list[int]]:
    """The numbers ilert received for each alert of ``events_for``, in arrival order."""
    by_alert: dict[str, list[int]] = defaultdict(list)
    for body in sandbox.bodies(key):
        alert, n = body["summary"].split("#")
        by_alert[alert].append(int(n))
    return by_alert


ANN = {"id": 7, "email": "ann@example.com", "firstName": "Ann", "lastName": "Smith"}
BOB = {"id": 8, "email": "bob@example.com", "firstName": "Bob", "lastName": "Jones"}


def plant_three(*api_keys: str) -> dict[str, Any]:
    """A sandbox seed: Ann and Bob, and policy 3 "Plant three" (routing key powerplantthree50)
    whose two levels both have Ann, with escalation timeouts 5 and 10; with these API keys."""
    return {
        **({"apiKeys": list(api_keys)} if api_keys else {}),
        "users": [dict(ANN), dict(BOB)],
        "policies": [{
            "id": 3, "name": "Plant three", "routingKey": "powerplantthree50",
            "escalationRules": [{"escalationTimeout": 5, "users": [{"id": 7}]},
                                {"escalationTimeout": 10, "users": [{"id": 7}]}],
        }],
    }
