"""``make demo``: the whole pipeline on one machine — Kafka, MQTT, the ilert sandbox, the daemon.

Starts a local Apache Kafka (the test recipe), a local Mosquitto, ``ilagent sandbox`` and
``ilagent daemon`` with the mapping flags of ilert's Kafka guide on both, produces a short story
of machine alarms to Kafka (raised, acknowledged, cleared, plus noise the filter drops) and a
building alarm over MQTT, prints the sandbox URL and keeps running until Ctrl+C; then it stops
everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "kafka"))
sys.path.insert(0, str(ROOT / "tools" / "mqtt"))

import broker  # noqa: E402
import mosquitto  # noqa: E402

TOPIC = "test-topic"
SHIFT_TOPIC = "shifts"
DEMO_KEY = "il1api-demo-0000"
DEMO_API_KEY = "demo-user-api-key"  # the sandbox's: policy sync authenticates with it
# an escalation policy whose first level changes hands when the shift plan says so
SEED = {
    "apiKeys": [DEMO_API_KEY],
    "users": [{"email": "ann@example.com", "firstName": "Ann", "lastName": "Early"},
              {"email": "bob@example.com", "firstName": "Bob", "lastName": "Late"}],
    "policies": [{"name": "Plant 3 maintenance", "routingKey": "plant3", "escalationRules": [
        {"escalationTimeout": 5, "users": [{"email": "ann@example.com"}]},
        {"escalationTimeout": 15, "users": [{"email": "bob@example.com"}]}]}],
}
# --filter_key/--filter_val apply to policy messages too (as in ilagent 0.9): hence "type"
SHIFT_CHANGE = {"type": "ALARM", "site": "plant3",
                "data": {"email": "bob@example.com", "shift": 1}}
GUIDE_FLAGS = [
    "--map_key_alert_key", "mCode", "--map_key_summary", "comment", "--map_key_etype", "state",
    "--map_val_etype_alert", "SET", "--map_val_etype_accept", "ACK",
    "--map_val_etype_resolve", "CLR", "--filter_key", "type", "--filter_val", "ALARM",
]

# (seconds to wait before, message): three machines end PENDING, ACCEPTED and RESOLVED
STORY: list[tuple[float, dict[str, str]]] = [
    (0.0, {"type": "ALARM", "mCode": "PRESS-01", "comment": "Hydraulic pressure low on press 1",
           "state": "SET"}),
    (1.0, {"type": "INFO", "mCode": "PRESS-01", "comment": "Shift change", "state": "SET"}),
    (1.0, {"type": "ALARM", "mCode": "OVEN-03", "comment": "Oven 3 over temperature (312 °C)",
           "state": "SET"}),
    (1.5, {"type": "ALARM", "mCode": "CONV-07", "comment": "Conveyor 7 jammed at station B",
           "state": "SET"}),
    (1.0, {"type": "HEARTBEAT", "mCode": "PLC-2", "comment": "PLC 2 alive", "state": "OK"}),
    (2.0, {"type": "ALARM", "mCode": "OVEN-03", "comment": "Maintenance on the way",
           "state": "ACK"}),
    (2.0, {"type": "ALARM", "mCode": "CONV-07", "comment": "Jam cleared, conveyor running",
           "state": "CLR"}),
    (1.0, {"type": "INFO", "mCode": "CONV-07", "comment": "Throughput back to normal",
           "state": "CLR"}),
]


def port_or_free(preferred: int) -> int:
    """``preferred`` if nothing listens there, else a free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return broker.free_port()


def wait_for(url: str, what: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: {what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status < 300:
                return
        time.sleep(0.2)
    raise SystemExit(f"demo: {what} did not come up within {timeout:.0f}s")


def produce_story(bootstrap: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 3})
    for pause, message in STORY:
        time.sleep(pause)
        producer.produce(TOPIC, key=message["mCode"], value=json.dumps(message).encode())
        producer.flush(10)
        print(f"  produced {message['type']:<9} {message['mCode']:<9} {message['state']:<4} "
              f"{message['comment']}", flush=True)
    time.sleep(1.0)
    producer.produce(SHIFT_TOPIC, value=json.dumps(SHIFT_CHANGE).encode())
    producer.flush(10)
    print("  produced shift change: bob@example.com takes the first level of plant3's "
          "escalation policy (shift 1, --shift_offset -1)", flush=True)


# told over MQTT once the Kafka story is done: a building alarm raised and acknowledged
MQTT_STORY: list[dict[str, str]] = [
    {"type": "ALARM", "mCode": "HVAC-B2", "comment": "Server room B2 at 31 °C (via MQTT)",
     "state": "SET"},
    {"type": "ALARM", "mCode": "HVAC-B2", "comment": "Facility team informed", "state": "ACK"},
]


def publish_story(port: int) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for message in MQTT_STORY:
            time.sleep(1.0)
            client.publish(TOPIC, json.dumps(message), qos=1).wait_for_publish(10)
            print(f"  published {message['type']:<8} {message['mCode']:<9} "
                  f"{message['state']:<4} {message['comment']}", flush=True)
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox-port", type=int, default=8080)
    parser.add_argument("--daemon-port", type=int, default=8977)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = parser.parse_args()
    stop = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    work = args.workdir
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    python = [sys.executable, "-m", "ilagent"]
    print("demo: starting Apache Kafka (first run fetches the jars) and Mosquitto …",
          flush=True)
    kafka = broker.start(work / "kafka")
    mqtt_broker = None
    try:
        mqtt_broker = mosquitto.start(work / "mosquitto")
        mqtt_port = mqtt_broker.ports["plain"]
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        for name, future in admin.create_topics(
                [NewTopic(t, num_partitions=1, replication_factor=1)
                 for t in (TOPIC, SHIFT_TOPIC)]).items():
            future.result(30)
            del name
        del admin  # its connection would log errors when Kafka stops at the end
        sandbox_port = port_or_free(args.sandbox_port)
        daemon_port = port_or_free(args.daemon_port)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        seed = work / "seed.json"
        seed.write_text(json.dumps(SEED))
        # the sandbox page links each alert to this daemon's /trace (its journal)
        with process([*python, "sandbox", "--port", str(sandbox_port), "--seed", str(seed),
                      "--agent_url", f"http://127.0.0.1:{daemon_port}"],
                     work / "sandbox.log") as sandbox:
            wait_for(f"{sandbox_url}/sandbox/stats", "the sandbox", sandbox)
            daemon_args = [*python, "daemon", "-p", str(daemon_port), "--http_host", "127.0.0.1",
                           "-v", "-v", "--kafka_brokers", kafka.bootstrap,
                           "--kafka_group_id", "ilagentsub", "-e", TOPIC,
                           "-m", "127.0.0.1", "-q", str(mqtt_port), "--mqtt_qos", "1",
                           "-f", str(work / "ilagent.db3"),
                           "--policy_topic", SHIFT_TOPIC, "--policy_routing_keys", "site",
                           "--shift_offset", "-1",
                           "--event_key", DEMO_KEY, *GUIDE_FLAGS]
            env = {"ILERT_API_URL": f"{sandbox_url}/api", "ILERT_BEAT_URL": f"{sandbox_url}/api",
                   "ILERT_API_KEY": DEMO_API_KEY}
            with process(daemon_args, work / "daemon.log", env) as daemon:
                wait_for(f"http://127.0.0.1:{daemon_port}/ready", "the daemon", daemon)
                print(f"\n  ilert sandbox:  {sandbox_url}/   ← open this page", flush=True)
                print(f"  daemon:         http://127.0.0.1:{daemon_port}/metrics", flush=True)
                print(f"  logs:           {work}/", flush=True)
                print(f"  an alert's story: ilagent trace --alert_key OVEN-03 -f "
                      f"{work / 'ilagent.db3'}\n", flush=True)
                produce_story(kafka.bootstrap)
                publish_story(mqtt_port)
                print(f"\ndemo: story told; produce to Kafka topic '{TOPIC}' at "
                      f"{kafka.bootstrap} or publish to MQTT topic '{TOPIC}' at "
                      f"127.0.0.1:{mqtt_port}, or press Ctrl+C to stop", flush=True)
                while not stop and daemon.poll() is None and sandbox.poll() is None:
                    time.sleep(0.3)
    finally:
        print("demo: stopping the daemon, the sandbox, Mosquitto and Kafka …", flush=True)
        if mqtt_broker is not None:
            mqtt_broker.stop()
        kafka.destroy()
    print("demo: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
