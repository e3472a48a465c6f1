"""SIGHUP on a running daemon: new templates take effect for the next messages; a config that
does not load keeps the running routes and says so in one ERROR line."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from helpers import FAST, Sandbox, create_topic, produce, unique, wait_until

ROUTE = """
[[route]]
name = "press"
kafka_topics = ["{topic}"]
integration_key = "{key}"
alert_key = "{{{{ payload.id }}}}"
summary = "{version}: press {{{{ payload.id }}}}"
"""


def summaries(sandbox: Sandbox, key: str) -> dict[str, str]:
    return {body["alertKey"]: body["summary"] for body in sandbox.bodies(key)}


def test_sighup_reloads_templates_and_keeps_them_when_the_file_is_broken(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    topic, key = create_topic(kafka_bootstrap, unique("reload")), unique("il1apireload")
    config = tmp_path / "ilagent.toml"
    config.write_text(ROUTE.format(topic=topic, key=key, version="v1"))
    daemon = run_ilagent("--config", str(config), "daemon", "-v", "-v", "--kafka_brokers",
                         kafka_bootstrap, "--kafka_group_id", unique("g"),
                         "--kafka_offset_reset", "earliest", *FAST)
    wait_until(lambda: "assigned " in daemon.output(), timeout=60, what="assignment")
    produce(kafka_bootstrap, topic, [{"id": "a1"}])
    wait_until(lambda: summaries(sandbox, key).get("a1") == "v1: press a1", what="v1 event")

    # a new template: the next message is rendered with it
    config.write_text(ROUTE.format(topic=topic, key=key, version="v2"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "1 route(s) loaded" in daemon.output(), what="the reload")
    produce(kafka_bootstrap, topic, [{"id": "a2"}])
    wait_until(lambda: summaries(sandbox, key).get("a2") == "v2: press a2", what="v2 event")

    # a broken file: one ERROR line, the v2 routes stay
    config.write_text(ROUTE.format(topic=topic, key=key, version="{{ v3"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "the running routes stay" in daemon.output(), what="the refusal")
    produce(kafka_bootstrap, topic, [{"id": "a3"}])
    wait_until(lambda: summaries(sandbox, key).get("a3") == "v2: press a3", what="v2 event")
    refusals = [line for line in daemon.output().splitlines()
                if "the running routes stay" in line]
    assert len(refusals) == 1 and "ERROR" in refusals[0], refusals
    assert "template error" in refusals[0]
    assert daemon.alive()
