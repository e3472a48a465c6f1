"""Fire drills end to end on real components: Kafka (a broker of the test's own where it is
stopped, so no other test is disturbed), the suite's Mosquitto and the sandbox.

Drills every 12 s pass and ping the drill heartbeat, and what reaches the sandbox are RESOLVEs of
the drill alert keys only, one per route that takes the sample; then (a) the stopped broker,
(b) a mapping broken in the config (SIGHUP reloads the routes) and (c) a sandbox fault on the
integration key each stop the pings within two intervals, with ``ilagent_drill_failed_stage``
naming sent, mapped and delivered. Three daemons, one per case, run the cases at the same time:
each case needs passing drills before its break, so one daemon would take them one after
another. ``ilagent drill`` runs one drill end to end, passing and failing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    FAST,
    Sandbox,
    create_topic,
    http,
    metric,
    status_or_none,
    unique,
    wait_until,
)

INTERVAL = 12.0
SAMPLE = {"type": "ALARM", "mCode": "M1", "state": "SET", "comment": "door open"}


def routes_toml(kafka_topic: str, mqtt_topic: str, keys: tuple[str, str], *,
                wanted: str = "ALARM") -> str:
    """Two routes of the drill topics, one integration key each; both take the sample while
    their match wants what the sample's ``type`` is."""
    tables = [f'''
[[route]]
name = "{name}"
kafka_topics = ["{kafka_topic}"]
mqtt_topics = ["{mqtt_topic}"]
integration_key = "{key}"
match = [{{ path = "type", equals = "{wanted}" }}]
event_type = {{ path = "state", alert = "SET", resolve = "CLR" }}
alert_key = "{{{{ payload.mCode }}}}"
summary = "{{{{ payload.comment }}}}"
''' for name, key in (("line", keys[0]), ("hall", keys[1]))]
    return "event_topic = []\n" + "".join(tables)


def pings(sandbox: Sandbox, key: str) -> int:
    _status, found = http("GET", f"{sandbox.url}/sandbox/heartbeats?key={key}")
    return sum(row["count"] for row in found) if isinstance(found, list) else 0


def posted(sandbox: Sandbox, *keys: str) -> list[dict[str, Any]]:
    """The bodies of every event posted to the sandbox for these integration keys."""
    return [r["body"] for r in sandbox.requests()
            if isinstance(r["body"], dict) and r["body"].get("integrationKey") in keys]


def stage_failed(port: int, source: str, stage: str) -> bool:
    return metric(port, f'ilagent_drill_failed_stage{{source="{source}",stage="{stage}"}}') == 1


def drills(port: int, source: str, result: str) -> float:
    return metric(port, f'ilagent_drills_total{{result="{result}",source="{source}"}}')


@dataclass
class Case:
    """One daemon whose drills pass until ``breaks`` breaks them at ``source``/``stage``."""

    what: str
    daemon: Any
    port: int
    beat: str
    keys: tuple[str, ...]
    sources: tuple[str, ...]
    breaks: Callable[[], None]
    source: str
    stage: str
    failed: float = 0.0
    pinged: int = 0
    routes: int = 1  # drill events per Kafka or MQTT drill: one per route that takes it

    def ready(self) -> bool:
        status = status_or_none("GET", f"http://127.0.0.1:{self.port}/ready")
        assert self.daemon.alive(), self.daemon.output()[-3000:]
        return status == 204

    def success(self, source: str) -> float:
        return metric(self.port, f'ilagent_drill_success{{source="{source}"}}')


def routes_config(path: Path, kafka_topic: str, mqtt_topic: str, keys: tuple[str, str], *,
                  wanted: str = "ALARM") -> None:
    path.write_text(routes_toml(kafka_topic, mqtt_topic, keys, wanted=wanted))


@pytest.mark.timeout(200)
def test_drills_pass_and_ping_then_each_break_stops_the_pings_naming_its_stage(
        tmp_path: Path, kafka_bootstrap: str, mosquitto: Any, sandbox: Sandbox,
        run_ilagent: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Drills every 12 s pass and ping each daemon's drill heartbeat; the sandbox sees RESOLVEs
    of the drill alert keys only, one per route; then (a) the stopped broker, (b) a broken
    route and (c) a fault on the key each stop the pings within two intervals, and
    ``ilagent_drill_failed_stage`` names sent, mapped and delivered.

    Each case needs drills passing (and pinging) before its break, so in one daemon the cases
    would follow one another (about two minutes); three daemons, one per case, run them at
    once."""
    import broker

    own = broker.start(tmp_path / "kafka")
    try:
        def mqtt() -> list[str]:
            return ["-m", "127.0.0.1", "-q", str(mosquitto.ports["plain"]), "--mqtt_qos", "1",
                    "-n", unique("ilagent")]

        def start(name: str, *args: str, key: str) -> tuple[Any, int, str]:
            folder = tmp_path / name
            folder.mkdir()
            sample = folder / "sample.json"
            sample.write_text(json.dumps({**SAMPLE, "integrationKey": key}))
            port, beat = broker.free_port(), unique("ih2:drillbeat")
            daemon = run_ilagent(*args, "-v", "-v", "-p", str(port), "-f",
                                 str(folder / "q.db3"), *FAST,
                                 "--drill_interval", str(INTERVAL), "--drill_message",
                                 str(sample), "--drill_heartbeat", beat)
            return daemon, port, beat

        # (a) Kafka on a broker of its own, and the intake; the broker stops
        topic_a, key_a = create_topic(own.bootstrap, unique("drill"), partitions=2), unique(
            "il1apia")
        daemon, port, beat = start(
            "a", "daemon", "--kafka_brokers", own.bootstrap, "--kafka_group_id", unique("g"),
            "-e", topic_a, "--event_key", key_a, "--drill_topic", topic_a, "--drill_intake",
            key=key_a)
        case_a = Case("the broker stopped", daemon, port, beat, (key_a,), ("kafka", "http"),
                      own.stop, "kafka", "sent")
        # (b) Kafka and MQTT through two [[route]]s each; SIGHUP reloads routes that no
        # longer take the sample
        topic_b, mqtt_b = create_topic(kafka_bootstrap, unique("drill")), f"plant/{unique('b')}"
        keys_b = (unique("il1apiline"), unique("il1apihall"))
        config = tmp_path / "ilagent.toml"
        routes_config(config, topic_b, mqtt_b, keys_b)
        daemon, port, beat = start(
            "b", "--config", str(config), "daemon", "--kafka_brokers", kafka_bootstrap,
            "--kafka_group_id", unique("g"), *mqtt(), "--drill_topic", topic_b,
            "--drill_mqtt_topic", mqtt_b, key=keys_b[0])

        def break_routes(daemon: Any = daemon) -> None:
            routes_config(config, topic_b, mqtt_b, keys_b, wanted="FAULT")
            daemon.proc.send_signal(signal.SIGHUP)

        case_b = Case("a broken mapping", daemon, port, beat, keys_b, ("kafka", "mqtt"),
                      break_routes, "mqtt", "mapped", routes=2)
        # (c) MQTT and the intake; ilert refuses their integration key (revoked)
        mqtt_c, key_c = f"plant/{unique('c')}", unique("il1apic")
        daemon, port, beat = start(
            "c", "daemon", *mqtt(), "-e", mqtt_c, "--event_key", key_c, "--filter_key", "type",
            "--filter_val", "ALARM", "--drill_mqtt_topic", mqtt_c, "--drill_intake", key=key_c)
        case_c = Case("a sandbox fault on the key", daemon, port, beat, (key_c,),
                      ("mqtt", "http"), lambda: sandbox.fault(status=404, integration_key=key_c),
                      "http", "delivered")
        cases = (case_a, case_b, case_c)

        wait_until(lambda: all(case.ready() for case in cases), timeout=60,
                   what="the daemons ready")
        # drills every 12 s pass: two pings of each drill heartbeat
        wait_until(lambda: all(pings(sandbox, c.beat) >= 2 for c in cases),
                   timeout=2 * INTERVAL + 10, interval=0.25, what="two drills passed and pinged")
        for case in cases:
            for source in case.sources:
                assert case.success(source) == 1, (case.what, source)
                assert metric(case.port, f'ilagent_drill_duration_seconds{{source="{source}"}}') > 0
            bodies = posted(sandbox, *case.keys)
            assert {b["eventType"] for b in bodies} == {"RESOLVE"}, case.what
            assert {b["alertKey"] for b in bodies} == {f"ilagent-drill-{s}" for s in case.sources}
            assert metric(case.port, "ilagent_messages_dead_lettered_total") == 0
        # one drill event per route: both routes' keys got both sources' drills
        assert {(b["integrationKey"], b["alertKey"]) for b in posted(sandbox, *keys_b)} == {
            (key, f"ilagent-drill-{source}") for key in keys_b for source in ("kafka", "mqtt")}

        broken = time.monotonic()
        for case in cases:
            case.breaks()
        for case in cases:  # within two intervals, a drill fails at the stage that broke
            wait_until(lambda c=case: stage_failed(c.port, c.source, c.stage),
                       timeout=2 * INTERVAL + 4 - (time.monotonic() - broken), interval=0.25,
                       what=f"{case.what}: the {case.source} drill failing at {case.stage}")
            case.pinged, case.failed = pings(sandbox, case.beat), drills(case.port, case.source,
                                                                          "failed")
            with capsys.disabled():
                print(f"\n[report] {case.what}: the {case.source} drill failed at {case.stage} "
                      f"{time.monotonic() - broken:.1f} s after the break")
        for case in cases:  # the next drill fails too, and no ping came in between
            wait_until(lambda c=case: drills(c.port, c.source, "failed") > c.failed,
                       timeout=INTERVAL + 4, interval=0.25, what=f"{case.what}: the next drill")
            assert pings(sandbox, case.beat) == case.pinged, f"{case.what}: pinged"
            assert case.success(case.source) == 0
        assert stage_failed(case_b.port, "kafka", "mapped")
        assert stage_failed(case_c.port, "mqtt", "delivered")
        assert case_a.success("http") == 1  # the intake goes on passing without Kafka
        for case in cases:
            bodies = posted(sandbox, *case.keys)
            assert {b["eventType"] for b in bodies} == {"RESOLVE"}
            assert {b["alertKey"] for b in bodies} <= {f"ilagent-drill-{s}" for s in case.sources}
            assert case.beat.removeprefix("ih2:") not in case.daemon.output()
            case.daemon.kill()
        assert "the kafka fire drill failed at sent" in case_a.daemon.output()
    finally:
        own.destroy()


def run_drill(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ilagent", "drill", *args], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=90, check=False)


def test_ilagent_drill_runs_one_drill_and_prints_each_stage(
        tmp_path: Path, kafka_bootstrap: str, mosquitto: Any, sandbox: Sandbox) -> None:
    """One drill through Kafka, MQTT and the intake: every stage printed with its time, the
    heartbeat pinged, exit 0; with ilert refusing the key: the stage that failed, exit 1."""
    import broker

    key, beat = unique("il1apionce"), unique("ih2:oncebeat")
    topic = create_topic(kafka_bootstrap, unique("drillonce"))
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({**SAMPLE, "integrationKey": key}))
    env = {"ILERT_API_URL": sandbox.api_url, "ILERT_BEAT_URL": sandbox.api_url}
    common = ["-f", str(tmp_path / "q.db3"), "-m", "127.0.0.1", "-q",
              str(mosquitto.ports["plain"]), "--mqtt_qos", "1", "-n", unique("ilagent"),
              "-e", topic, "--event_key", key, "--filter_key", "type", "--filter_val", "ALARM",
              *FAST, "--drill_message", str(sample), "--drill_mqtt_topic", f"once/{topic}",
              "--drill_intake", "--drill_timeout", "10"]
    passed = run_drill("-p", str(broker.free_port()), "--kafka_brokers", kafka_bootstrap,
                       "--kafka_group_id", unique("g"), "--drill_topic", topic,
                       "--drill_heartbeat", beat, *common, env=env, cwd=tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr[-3000:]
    lines = passed.stdout.splitlines()
    for source in ("kafka", "mqtt", "http"):
        for stage in ("sent", "consumed", "mapped", "delivered"):
            assert any(line.split()[:2] == [source, stage] and line.split()[2][0].isdigit()
                       for line in lines), passed.stdout
    assert lines[-2].startswith("passed in ") and "pinged" in lines[-1]
    assert pings(sandbox, beat) == 1
    assert {(b["eventType"], b["alertKey"]) for b in posted(sandbox, key)} == {
        ("RESOLVE", "ilagent-drill-kafka"), ("RESOLVE", "ilagent-drill-mqtt"),
        ("RESOLVE", "ilagent-drill-http")}

    sandbox.fault(status=404, integration_key=key)
    failed = run_drill("-p", str(broker.free_port()), *common, env=env, cwd=tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr[-3000:]
    assert "delivered  FAILED at" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "failed: mqtt at delivered, http at delivered"
