"""A heartbeat key deleted at ilert never freezes its topic: it is dead-lettered once ilert's beat
host has shown it answers, and the partition's commit position moves on."""

from __future__ import annotations

import time
from typing import Any

from helpers import FAST, Sandbox, committed, create_topic, http, produce, unique, wait_until


def pings(sandbox: Sandbox, status: int) -> int:
    return sum(1 for r in sandbox.requests() if "/pings/" in r["path"] and r["status"] == status)


def test_a_deleted_heartbeat_key_is_dead_lettered_and_the_topic_moves_on(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """A heartbeat topic with a deleted key followed by a live one: the live ping arrives, the
    topic's committed offset reaches its end within 60 s, and at most 5 requests are made for
    the deleted key."""
    live, deleted = unique("ih2:900:acme:live"), unique("ih2:900:acme:gone")
    sandbox.seed(heartbeatKeys=[live])
    topic, group = create_topic(kafka_bootstrap, unique("beats")), unique("g")
    produce(kafka_bootstrap, topic, [{"integrationKey": deleted}, {"integrationKey": live}])
    started = time.monotonic()
    daemon = run_ilagent("daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", group, "--kafka_offset_reset", "earliest",
                         "-r", topic, *FAST)
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [2], timeout=60,
               what="the committed offset at the end of the heartbeat topic")
    elapsed = time.monotonic() - started
    [beat] = http("GET", f"{sandbox.url}/sandbox/heartbeats?key={live}")[1]
    assert beat["count"] == 1
    refused = pings(sandbox, 404)
    print(f"\n[report] deleted heartbeat key: {refused} request(s), topic committed to its end "
          f"after {elapsed:.1f} s")
    assert 1 <= refused <= 5
    output = daemon.output()
    assert "heartbeat_not_found" in output and deleted not in output
    assert daemon.stop() == 0
