"""Escalation-policy sync from Kafka and MQTT into the sandbox: levels follow the shift plan.

The sandbox is seeded per test with its own users, policy (routing key) and API key.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from helpers import (
    FAST,
    Sandbox,
    committed,
    create_topic,
    http,
    metric,
    produce,
    publish,
    secret,
    subscribed,
    unique,
    wait_until,
)

ROUTING = ["--policy_routing_keys", "location,slot"]


def seeded(sandbox: Sandbox) -> tuple[str, str, dict[str, str]]:
    """A policy with two levels (ann on 0 with timeout 5, bob on 1), its routing key, the API
    key, and the e-mails by name."""
    tag = unique("p")
    emails = {name: f"{name}.{tag}@example.com" for name in ("ann", "bob", "cid")}
    location, api_key = f"plant{tag}", secret("apikey")
    sandbox.seed(apiKeys=[api_key],
                 users=[{"email": e, "firstName": n} for n, e in emails.items()],
                 policies=[{"name": tag, "routingKey": f"{location}50", "escalationRules": [
                     {"escalationTimeout": 5, "users": [{"email": emails["ann"]}]},
                     {"escalationTimeout": 10, "users": [{"email": emails["bob"]}]}]}])
    return location, api_key, emails


def shift(email: str, location: str, number: int | str = 0, slot: str = "50") -> dict[str, Any]:
    return {"data": {"email": email, "shift": number}, "location": location, "slot": slot}


def kafka_args(bootstrap: str, topic: str, *extra: str) -> list[str]:
    return ["daemon", "-vv", "--kafka_brokers", bootstrap, "--kafka_group_id", unique("g"),
            "--kafka_offset_reset", "earliest", "--policy_topic", topic, *ROUTING, *FAST, *extra]


def dead_reasons(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT reason FROM dead_letters")]


def puts(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r["method"] == "PUT"]


def test_kafka_policy_message_moves_the_level(kafka_bootstrap: str, sandbox: Sandbox,
                                              run_ilagent: Any) -> None:
    """A shift message puts the named user on the level; its escalationTimeout stays."""
    location, api_key, emails = seeded(sandbox)
    topic = create_topic(kafka_bootstrap, unique("shifts"))
    produce(kafka_bootstrap, topic, [shift(emails["cid"], location, "1")])
    run_ilagent(*kafka_args(kafka_bootstrap, topic), env={"ILERT_API_KEY": f"Bearer {api_key}"})
    routing_key = f"{location}50"
    wait_until(lambda: sandbox.level_emails(routing_key, 1) == [emails["cid"]], timeout=60,
               what="level 1 on cid")
    [policy] = sandbox.policies(routing_key)
    assert policy["escalationRules"][1]["escalationTimeout"] == 10
    assert sandbox.level_emails(routing_key, 0) == [emails["ann"]]


def test_unknown_user_and_routing_key_are_dead_lettered_and_committed(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """No such e-mail, no such routing key: each dead-lettered with the reason naming what was
    not found, and the offsets move on; a good update after them lands."""
    location, api_key, emails = seeded(sandbox)
    topic = create_topic(kafka_bootstrap, unique("shifts"))
    group = unique("g")
    produce(kafka_bootstrap, topic, [shift("nobody@example.com", location),
                                     shift(emails["bob"], "atlantis"),
                                     shift(emails["cid"], location)])
    daemon = run_ilagent(*kafka_args(kafka_bootstrap, topic, "--kafka_group_id", group),
                         env={"ILERT_API_KEY": api_key})
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [3], timeout=60,
               what="all three offsets committed")
    assert sandbox.level_emails(f"{location}50", 0) == [emails["cid"]]
    output = daemon.output()
    assert "user_not_found" in output and "no ilert user with e-mail nobody@example.com" in output
    assert "policy_not_found" in output and "atlantis50" in output
    assert api_key not in output


def test_level_update_failing_for_20_s_is_retried_and_lands_once(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """The level update answers 503 for 20 s (the lookups work): retried in process, applied
    exactly once afterwards, the daemon never exits."""
    location, api_key, emails = seeded(sandbox)
    topic = create_topic(kafka_bootstrap, unique("shifts"))
    sandbox.fault(status=503, method="PUT", path="/api/escalation-policies/*/levels/*",
                  duration_s=20)
    daemon = run_ilagent(*kafka_args(kafka_bootstrap, topic), env={"ILERT_API_KEY": api_key})
    produce(kafka_bootstrap, topic, [shift(emails["bob"], location, 0)])
    wait_until(lambda: any(r["status"] == 503 for r in puts(sandbox)), timeout=60,
               what="a refused level update")
    wait_until(lambda: sandbox.level_emails(f"{location}50", 0) == [emails["bob"]],
               timeout=60, what="the update after the outage")
    assert daemon.alive()
    assert [r["status"] for r in puts(sandbox)].count(200) == 1
    assert len(puts(sandbox)) >= 3


def test_two_updates_of_one_level_in_a_batch_land_in_offset_order(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """Two shift messages for the same routing key and level: bob, then cid — cid stays on."""
    location, api_key, emails = seeded(sandbox)
    topic = create_topic(kafka_bootstrap, unique("shifts"))
    produce(kafka_bootstrap, topic, [shift(emails["bob"], location), shift(emails["cid"],
                                                                            location)])
    run_ilagent(*kafka_args(kafka_bootstrap, topic), env={"ILERT_API_KEY": api_key})
    wait_until(lambda: len([r for r in puts(sandbox) if r["status"] == 200]) == 2, timeout=60,
               what="two level updates")
    ids = {u["email"]: u["id"] for u in http("GET", f"{sandbox.url}/sandbox/users")[1]}
    assert [r["body"]["users"][0]["id"] for r in puts(sandbox)] == [ids[emails["bob"]],
                                                                   ids[emails["cid"]]]
    assert sandbox.level_emails(f"{location}50", 0) == [emails["cid"]]


def test_two_routing_keys_of_one_policy_level_land_in_offset_order(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """Two shift messages whose routing keys differ but resolve to the same policy (the second
    names it as the fallback of a comma-separated list) land in offset order: bob, then cid,
    even when the first one's user lookup is slow."""
    location, api_key, emails = seeded(sandbox)
    topic = create_topic(kafka_bootstrap, unique("shifts"))
    # a first update on level 1 lifts the gate's single flight of a key that never succeeded
    produce(kafka_bootstrap, topic, [shift(emails["ann"], location, 1)])
    run_ilagent(*kafka_args(kafka_bootstrap, topic), env={"ILERT_API_KEY": api_key})
    wait_until(lambda: sandbox.level_emails(f"{location}50", 1) == [emails["ann"]], timeout=60,
               what="the first update")
    sandbox.fault(latency_ms=1500, method="POST", path="/api/users/search-email", count=1)
    produce(kafka_bootstrap, topic, [shift(emails["bob"], location),
                                     shift(emails["cid"], f"nowhere,{location}")])
    wait_until(lambda: len([r for r in puts(sandbox) if r["status"] == 200]) == 3, timeout=60,
               what="two more level updates")
    ids = {u["email"]: u["id"] for u in http("GET", f"{sandbox.url}/sandbox/users")[1]}
    assert [r["body"]["users"][0]["id"] for r in puts(sandbox)][1:] == [ids[emails["bob"]],
                                                                       ids[emails["cid"]]]
    assert sandbox.level_emails(f"{location}50", 0) == [emails["cid"]]


def test_mqtt_policy_message_moves_the_level(mosquitto: Any, sandbox: Sandbox,
                                             run_ilagent: Any, tmp_path: Any) -> None:
    """The same over MQTT, with a wildcard policy topic, unbuffered and buffered."""
    location, api_key, emails = seeded(sandbox)
    base = unique("site")
    for n, extra in enumerate(([], ["--mqtt_buffer", "-f", str(tmp_path / "spool.db3")])):
        daemon = run_ilagent("daemon", "-vv", "-m", "127.0.0.1", "-q",
                             str(mosquitto.ports["plain"]), "--mqtt_qos", "1",
                             "-n", unique("ilagent"), "--policy_topic", f"{base}/+/shifts",
                             *ROUTING, *FAST, *extra, env={"ILERT_API_KEY": api_key})
        wait_until(lambda d=daemon: subscribed(d), timeout=20, what="the subscription")
        who = emails["bob"] if n == 0 else emails["cid"]
        publish(mosquitto.ports["plain"], f"{base}/hall{n}/shifts",
                [json.loads(json.dumps(shift(who, location)))])
        wait_until(lambda w=who: sandbox.level_emails(f"{location}50", 0) == [w], timeout=30,
                   what=f"level 0 on {who}")
        if extra:  # buffered: a policy dead letter is kept in the queue file with its reason
            publish(mosquitto.ports["plain"], f"{base}/hall{n}/shifts",
                    [shift("nobody@example.com", location)])
            wait_until(lambda: dead_reasons(tmp_path / "spool.db3") == ["user_not_found"],
                       timeout=30, what="the dead letter")
        assert daemon.stop() == 0


def test_a_refused_api_key_holds_the_update_and_keeps_the_offset(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """401 is a configuration failure, not a bad message: the update waits (not dead-lettered),
    an ERROR says why, the metric is 1 and the offset stays; with the right key it lands."""
    location, api_key, emails = seeded(sandbox)
    topic = create_topic(kafka_bootstrap, unique("shifts"))
    group = unique("g")
    port = __import__("broker").free_port()
    args = [*kafka_args(kafka_bootstrap, topic, "--kafka_group_id", group), "-p", str(port),
            "--http_host", "127.0.0.1", "--intake", "off"]
    produce(kafka_bootstrap, topic, [shift(emails["bob"], location)])
    daemon = run_ilagent(*args, env={"ILERT_API_KEY": secret("wrong-key")})
    wait_until(lambda: sum(r["status"] == 401 for r in sandbox.requests()) >= 3, timeout=60,
               what="three refused calls")
    assert metric(port, "ilagent_policy_api_key_refused") == 1
    assert "refuses the API key" in daemon.output()
    assert "dead letter" not in daemon.output()
    assert committed(kafka_bootstrap, group, topic) != [1]
    assert daemon.stop() == 0
    run_ilagent(*args, env={"ILERT_API_KEY": api_key})
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [1], timeout=60,
               what="the offset committed with the right key")
    assert sandbox.level_emails(f"{location}50", 0) == [emails["bob"]]


def test_a_wrong_api_url_holds_the_update_and_only_a_real_not_found_is_dead_lettered(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """An --ilert_api_url the sandbox answers with a plain-text 404 (a wrong URL, not ilert
    saying "no such user") keeps the update: retried, not dead-lettered, its offset not
    committed; with the right URL it lands, and an unknown e-mail after it is dead-lettered."""
    location, api_key, emails = seeded(sandbox)
    topic, group = create_topic(kafka_bootstrap, unique("shifts")), unique("g")
    args = kafka_args(kafka_bootstrap, topic, "--kafka_group_id", group)
    produce(kafka_bootstrap, topic, [shift(emails["bob"], location)])
    wrong = f"{sandbox.url}/api/v2"
    daemon = run_ilagent(*args, "--ilert_api_url", wrong, env={"ILERT_API_KEY": api_key})
    wait_until(lambda: sum(r["path"].startswith("/api/v2/") and r["status"] == 404
                           for r in sandbox.requests()) >= 3, timeout=60,
               what="three calls to the wrong URL")
    assert "dead letter" not in daemon.output() and "user_not_found" not in daemon.output()
    assert "without ilert's error body" in daemon.output()
    assert committed(kafka_bootstrap, group, topic) != [1]
    assert daemon.stop() == 0
    produce(kafka_bootstrap, topic, [shift("nobody@example.com", location)])
    again = run_ilagent(*args, env={"ILERT_API_KEY": api_key})
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [2], timeout=60,
               what="both offsets committed with the right URL")
    assert sandbox.level_emails(f"{location}50", 0) == [emails["bob"]]
    assert again.output().count("user_not_found") >= 1
    assert daemon.output().count("user_not_found") == 0
