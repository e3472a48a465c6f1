"""Benchmark of MQTT mode (issue 13): messages/s from a real Mosquitto to the sandbox.

A Mosquitto (Debian's, started by ``tools/mqtt/mosquitto.py``) and a sandbox process stand in
for the broker and ilert; per scenario one daemon subscribes at QoS 1, ``--messages`` events
over ``--alerts`` alert keys are published at QoS 1, and the run ends when the sandbox has them
all. Pacing is off (the figures are about the bridge, not ilert's 700/min):

* ``direct``          — acknowledged after delivery, ilert answering at once;
* ``direct, 20 ms``   — the same with 20 ms per ilert answer (as in the Kafka comparison);
* ``buffered, 20 ms`` — ``--mqtt_buffer``: each message committed to the SQLite spool and
  acknowledged, then delivered by the spool worker; "acked/s" is how fast the broker is
  relieved, "delivered/s" how fast ilert gets them.

Each figure is the best of ``--repeat`` runs. Records the table, the machine and the date in
the "MQTT mode (issue 13)" section of bench/RESULTS.md.

    .venv/bin/python bench/bench_mqtt.py [--messages 10000] [--alerts 200] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_FILE,
    ROOT,
    DaemonProcess,
    SandboxProcess,
    machine,
    replace_block,
    utc_date,
    wait_until,
)

HEADING = "## MQTT mode (issue 13)"
BEGIN = "<!-- bench_mqtt:begin (written by bench/bench_mqtt.py; edits in here are lost) -->"
END = "<!-- bench_mqtt:end -->"
FAST = ["--rate_limit_per_key", "0", "--rate_limit_total", "0", "--retry_initial_delay", "0.2"]


@dataclass
class Result:
    scenario: str
    acked_per_s: float
    delivered_per_s: float
    peak_rss_mb: float


def publish(port: int, topic: str, count: int, alerts: int) -> None:
    """Publish ``count`` QoS 1 events, interleaved over ``alerts`` alert keys, and wait for
    the broker's acknowledgements."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, json.dumps({
            "integrationKey": "il1apibenchmqtt", "alertKey": f"a{n % alerts}",
            "summary": f"m{n}"}), qos=1) for n in range(count)]
        for info in infos:
            info.wait_for_publish(120)
    finally:
        client.disconnect()
        client.loop_stop()


def run_once(*, scenario: str, extra: list[str], latency_ms: int, messages: int, alerts: int,
             broker_port: int, sandbox: SandboxProcess, workdir: Path) -> Result:
    sandbox.reset()
    if latency_ms:
        sandbox.fault(latency_ms=latency_ms)
    topic = f"bench/{time.monotonic_ns()}"
    daemon = DaemonProcess(
        ["-m", "127.0.0.1", "-q", str(broker_port), "--mqtt_qos", "1", "-e", topic,
         "-n", f"bench-{time.monotonic_ns()}", "-f", str(workdir / f"{topic[6:]}.db3"),
         *FAST, *extra], sandbox=sandbox, log=workdir / "daemon.log")
    daemon.start()
    try:
        wait_until(daemon.ready, timeout=60, what="the daemon to be ready")
        started = time.monotonic()
        publish(broker_port, topic, messages, alerts)
        wait_until(lambda: daemon.metrics().get("ilagent_mqtt_acks_total", 0) >= messages,
                   timeout=600, what="every acknowledgement")
        acked = time.monotonic() - started
        wait_until(lambda: sandbox.accepted() >= messages, timeout=600,
                   what="every event at the sandbox")
        delivered = time.monotonic() - started
        return Result(scenario, messages / acked, messages / delivered, daemon.peak_rss_mb())
    finally:
        daemon.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tools" / "mqtt"))
    import mosquitto

    scenarios = [("direct", [], 0), ("direct, 20 ms", [], 20),
                 ("buffered, 20 ms", ["--mqtt_buffer"], 20)]
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        workdir = Path(tmp)
        broker = mosquitto.start(workdir / "mosquitto")
        sandbox = SandboxProcess(workdir=workdir).start()
        try:
            best: dict[str, Result] = {}
            for name, extra, latency in scenarios:
                for _ in range(args.repeat):
                    result = run_once(scenario=name, extra=extra, latency_ms=latency,
                                      messages=args.messages, alerts=args.alerts,
                                      broker_port=broker.ports["plain"], sandbox=sandbox,
                                      workdir=workdir)
                    print(f"{name}: acked {result.acked_per_s:,.0f}/s, delivered "
                          f"{result.delivered_per_s:,.0f}/s, peak RSS "
                          f"{result.peak_rss_mb:.0f} MiB", flush=True)
                    if name not in best or result.delivered_per_s > best[name].delivered_per_s:
                        best[name] = result
        finally:
            sandbox.stop()
            broker.stop()
    lines = ["| scenario | acknowledged/s | delivered/s | daemon peak RSS |", "|---|---|---|---|"]
    lines += [f"| {r.scenario} | {r.acked_per_s:,.0f} | {r.delivered_per_s:,.0f} | "
              f"{r.peak_rss_mb:.0f} MiB |" for r in best.values()]
    facts = machine()
    facts["Mosquitto"] = "Debian's mosquitto 2.0 (127.0.0.1, max_inflight_messages 1000)"
    block = "\n".join([
        f"Measured {utc_date()}: {args.messages:,} QoS 1 messages over {args.alerts} alert keys "
        f"per run, pacing off, best of {args.repeat}.", "", *lines, "",
        *(f"- {k}: {v}" for k, v in facts.items())])
    print(block)
    replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block=block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
