"""The local fallback end to end: a daemon in MQTT mode on the session's Mosquitto, ilert (the
sandbox) answering 503 to everything, a webhook endpoint and a real SMTP server (aiosmtpd, run
as a process). One alarm on each channel, reminders, an all-clear with the backlog once ilert
answers again, and every event of the outage delivered after it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from broker import free_port
from receivers import Subscriber, Webhook, smtp_server, statuses

from helpers import FAST, Sandbox, events_for, metric, publish, subscribed, unique, wait_until


@pytest.mark.timeout(60)
def test_ilert_out_of_reach_raises_the_local_alarm_on_every_channel_then_all_clear(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """--fallback_after 3, --fallback_repeat 4, ilert answering 503: one alarm by MQTT, webhook
    and mail, then reminders; ilert back: an all-clear with the same backlog on each channel,
    and all 30 events of the outage delivered."""
    port, http_port = mosquitto.ports["plain"], free_port()
    topic, key = unique("events"), unique("il1api")
    alarm_topic = f"plant3/{unique('ilagent')}/alarm"
    horn, webhook = Subscriber(port, alarm_topic), Webhook()
    try:
        with smtp_server(tmp_path) as inbox:
            daemon = run_ilagent(
                "daemon", "-v", "-v", "-m", "127.0.0.1", "-q", str(port), "-e", topic,
                "-n", unique("ilagent"), "--mqtt_qos", "1", *FAST,
                "--circuit_probe_interval", "0.5",
                "-p", str(http_port), "--http_host", "127.0.0.1", "--intake", "off",
                "--fallback_after", "3", "--fallback_repeat", "4",
                "--fallback_mqtt_topic", alarm_topic, "--fallback_webhook", webhook.url,
                "--fallback_smtp", f"127.0.0.1:{inbox.port}",
                "--fallback_mail_to", "ops@plant3.example,shift@plant3.example")
            wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
            sandbox.fault(status=503)  # ilert fails for every key
            events = events_for(key, alerts=10, per_alert=3)
            publish(port, topic, events)  # type: ignore[arg-type]
            channels: dict[str, Callable[[], list[dict[str, Any]]]] = {
                "mqtt": horn.received, "webhook": webhook.received, "mail": inbox.received}

            for name, seen in channels.items():
                wait_until(lambda s=seen: "reminder" in statuses(s()), timeout=20,
                           what=f"the alarm and a reminder by {name}")
            for name, seen in channels.items():
                assert statuses(seen())[:2] == ["ilert_unreachable", "reminder"], name
                assert statuses(seen()).count("ilert_unreachable") == 1, name
            assert sandbox.events(key) == []  # nothing got through meanwhile
            alarm = webhook.received()[0]
            assert alarm["backlog"] == len(events) and alarm["openFor"] >= 3
            assert alarm["lastError"].startswith("HTTP 503") and alarm["host"]
            assert horn.received()[0] == alarm
            mail = inbox.received()[0]
            assert mail["subject"].endswith(f"{len(events)} events waiting")
            assert mail["to"] == "ops@plant3.example, shift@plant3.example"

            sandbox.clear_faults()  # ilert answers again
            for name, seen in channels.items():
                wait_until(lambda s=seen: "all_clear" in statuses(s()), timeout=15,
                           what=f"the all-clear by {name}")
            clears = {name: [n for n in seen() if n["status"] == "all_clear"]
                      for name, seen in channels.items()}
            assert [len(found) for found in clears.values()] == [1, 1, 1]
            backlog = clears["webhook"][0]["backlog"]
            assert 0 < backlog <= len(events)
            assert clears["mqtt"][0]["backlog"] == backlog
            assert clears["mail"][0]["backlog"] == str(backlog)
            assert "reachable again after" in clears["mail"][0]["subject"]

            def delivered() -> set[str]:
                return {body["summary"] for body in sandbox.bodies(key)}

            wait_until(lambda: len(delivered()) == len(events), timeout=20,
                       what="every event of the outage delivered")
            assert delivered() == {e["summary"] for e in events}
            for name in channels:
                for kind in ("ilert_unreachable", "reminder", "all_clear"):
                    assert metric(http_port, f'ilagent_fallback_alarms_total{{channel="{name}",'
                                             f'kind="{kind}"}}') >= 1, (name, kind)
            assert metric(http_port, "ilagent_fallback_failures_total") == 0
            assert metric(http_port, "ilagent_fallback_raised") == 0
            assert daemon.stop() == 0
            log = daemon.output()
            assert "raising the local alarm by mqtt, webhook, mail" in log
            assert webhook.path not in log
    finally:
        horn.close()
        webhook.close()
