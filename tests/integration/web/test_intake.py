"""The daemon's HTTP intake and heartbeat proxy as a real process against the sandbox (issue 4)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path
from typing import Any

from http_daemon import FAST, event, metrics, start_daemon

from helpers import Sandbox, secret, status_or_none, unique, wait_until
from helpers import http as request

METRIC_NAMES = [
    "ilagent_delivery_latency_seconds",
    "ilagent_delivery_retries_total",
    "ilagent_drill_duration_seconds",
    "ilagent_drill_failed_stage",
    "ilagent_drill_failures_total",
    "ilagent_drill_last_timestamp_seconds",
    "ilagent_drill_success",
    "ilagent_drill_unknown_messages_total",
    "ilagent_drills_total",
    "ilagent_events_delivered_total",
    "ilagent_events_in_flight",
    "ilagent_fallback_alarms_total",
    "ilagent_fallback_failures_total",
    "ilagent_fallback_raised",
    "ilagent_gate_waits_total",
    "ilagent_heartbeats_coalesced_total",
    "ilagent_heartbeats_sent_total",
    "ilagent_http_intake_total",
    "ilagent_ilert_circuit_open",
    "ilagent_ilert_circuit_transitions_total",
    "ilagent_ilert_reachable",
    "ilagent_ilert_responses_total",
    "ilagent_journal_events_total",
    "ilagent_kafka_commit_failures_total",
    "ilagent_kafka_consumer_lag",
    "ilagent_kafka_errors_total",
    "ilagent_kafka_finished_skipped_total",
    "ilagent_kafka_partition_held_back",
    "ilagent_kafka_paused_partitions",
    "ilagent_kafka_rebalances_total",
    "ilagent_key_blocked_seconds",
    "ilagent_mapping_missing_total",
    "ilagent_messages_consumed_total",
    "ilagent_messages_dead_lettered_total",
    "ilagent_messages_filtered_total",
    "ilagent_mqtt_acks_total",
    "ilagent_mqtt_connected",
    "ilagent_mqtt_reconnects_total",
    "ilagent_mqtt_unacknowledged",
    "ilagent_oldest_unfinished_seconds",
    "ilagent_policy_api_key_refused",
    "ilagent_policy_updates_total",
    "ilagent_queue_dead_letters",
    "ilagent_queue_depth",
    "ilagent_queue_oldest_age_seconds",
    "ilagent_rate_limit_waits_total",
    "ilagent_ready",
    "ilagent_route_matched_total",
    "ilagent_spool_produce_seconds",
    "ilagent_spool_produced_total",
    "ilagent_template_errors_total",
]


def raw_post(url: str, data: bytes, content_type: str | None) -> tuple[int, Any]:
    """POST raw bytes with the given Content-Type (None: no header at all)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    headers = {"Content-Type": content_type} if content_type is not None else {}
    try:
        connection.request("POST", parts.path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_events_on_all_three_paths_are_queued_then_delivered(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """Each intake path answers 202 with a queue id, and the event reaches ilert on that path."""
    daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", "-vvv", *FAST)
    key = secret("plain-secret")  # not shaped like an ilert key: masking must still work
    answers = [
        request(
            "POST",
            f"{base}/api/events",
            event(key, "one", labels={"env": "prod"}, routingKey="team-a", severity=2),
        ),
        request(
            "POST",
            f"{base}/api/v1/events",
            {"apiKey": key, "eventType": "ALERT", "summary": "two", "alertKey": None},
        ),
        request(
            "POST",
            f"{base}/api/v1/events/prometheus/{key}",
            {"eventType": "ALERT", "summary": "three"},
        ),
    ]
    assert [status for status, _ in answers] == [202, 202, 202]
    ids = [int(body["id"]) for _, body in answers]
    assert ids == sorted(ids) and all(body["status"] == "queued" for _, body in answers)
    events = wait_until(
        lambda: len(sandbox.events(key)) == 3 and sandbox.events(key),
        what="three events at the sandbox",
    )
    assert [e["body"] for e in events] == [
        {
            "integrationKey": key,
            "eventType": "ALERT",
            "summary": "one",
            "labels": {"env": "prod"},
            "routingKey": "team-a",
            "severity": 2,
        },
        {"integrationKey": key, "eventType": "ALERT", "summary": "two"},
        {"integrationKey": key, "eventType": "ALERT", "summary": "three"},
    ]
    paths = [r["path"] for r in sandbox.requests() if r["method"] == "POST"]
    assert paths[:2] == ["/api/events", "/api/v1/events"]
    assert paths[2].startswith("/api/v1/events/prometheus/")
    assert key not in daemon.output(), "the integration key leaked into the log"
    assert key[-4:] in daemon.output()
    assert daemon.stop() == 0


def test_refusals_are_json_in_ilerts_shape(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """Bad bodies get 400 naming the field, a non-JSON type 415 and a too large body 413."""
    daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", "--http_max_body", "4096")
    url = f"{base}/api/events"
    ok = {"integrationKey": "k", "eventType": "ALERT", "summary": "s"}
    nested: Any = "leaf"
    for _ in range(150):
        nested = {"n": nested}
    table: list[tuple[bytes, str | None, int, str, str]] = [
        (
            json.dumps({**ok, "eventType": "alert"}).encode(),
            "application/json",
            400,
            "INVALID_FIELD",
            "eventType",
        ),
        (
            json.dumps({**ok, "integrationKey": None}).encode(),
            "application/json",
            400,
            "MISSING_FIELD",
            "integrationKey",
        ),
        (
            json.dumps({**ok, "images": [{"href": "x"}]}).encode(),
            "application/json",
            400,
            "INVALID_FIELD",
            "images[0].src",
        ),
        (
            json.dumps({**ok, "customDetails": nested}).encode(),
            "application/json",
            400,
            "INVALID_FIELD",
            "customDetails",
        ),
        (
            b'{"integrationKey": "k", "eventType": "ALERT", "customDetails": {"x": NaN}}',
            "application/json",
            400,
            "INVALID_JSON",
            "not valid JSON",
        ),
        (
            b'{"integrationKey": "k", "eventType": "ALERT", "summary": "s", "customDetails": {"x": 1e999}}',
            "application/json",
            400,
            "INVALID_JSON",
            "out of range",
        ),
        (b'{"integrationKey": "k", ', "application/json", 400, "INVALID_JSON", "JSON"),
        (b"[" * 2000 + b"]" * 2000, "application/json", 400, "INVALID_JSON", "JSON"),
        (b"[1, 2]", "application/json", 400, "INVALID_BODY", "object"),
        (json.dumps(ok).encode(), "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type"),
        (
            b"integrationKey=k",
            "application/x-www-form-urlencoded",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "application/json",
        ),
        (
            json.dumps({**ok, "details": "x" * 5000}).encode(),
            "application/json",
            413,
            "PAYLOAD_TOO_LARGE",
            "4096",
        ),
    ]
    for data, content_type, status, code, named in table:
        got, body = raw_post(url, data, content_type)
        assert (got, body["status"], body["code"]) == (status, status, code), (data[:60], body)
        assert named in body["message"], body
    assert raw_post(url, json.dumps(ok).encode(), None)[0] == 202, "no Content-Type: read as JSON"
    assert raw_post(url, json.dumps(ok).encode(), "application/vnd.x+json; charset=utf-8")[0] == 202
    # a POST to a wrong URL is an event lost too; a GET of one (a browser, a scanner) is not
    wrong = raw_post(f"{base}/api/event", json.dumps(ok).encode(), "application/json")
    assert wrong[0] == 404 and "this daemon takes POST /api/events, " in wrong[1]["message"], wrong
    assert status_or_none("GET", f"{base}/favicon.ico") == 404
    kinds = {f"{status} {code}" for _, _, status, code, _ in table} | {"404 NOT_FOUND"}
    # each kind at once, at the default level; its repeats held back for the summary
    wait_until(lambda: all(f"refused POST /api/events from 127.0.0.1: {kind}: " in
                           daemon.output() for kind in kinds - {"404 NOT_FOUND"}),
               what="a line for each kind of refusal")
    wait_until(lambda: "refused POST /api/event from 127.0.0.1: 404 NOT_FOUND: " in
               daemon.output(), what="a line for the POST to a wrong URL")
    lines = [line for line in daemon.output().splitlines() if "refused " in line]
    assert len(lines) == len(kinds), lines
    assert all(" WARNING " in line for line in lines), lines
    assert "favicon" not in daemon.output()


def test_token_guards_every_route_but_health_and_ready(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """With ILAGENT_HTTP_TOKEN set, the API and /metrics need the bearer token; probes do not."""
    token = secret("tok")
    daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", env={"ILAGENT_HTTP_TOKEN": token})
    bearer = {"Authorization": f"Bearer {token}"}
    key = unique("il1api")
    for method, path, body in [
        ("POST", "/api/events", event(key, "x")),
        ("GET", "/metrics", None),
        ("GET", f"/api/heartbeats/{key}", None),
        ("GET", "/", None),
    ]:
        status, answer = request(method, f"{base}{path}", body)
        assert status == 401 and answer["code"] == "UNAUTHORIZED", (path, answer)
        wrong = request(method, f"{base}{path}", body, headers={"Authorization": "Bearer nope"})
        assert wrong[0] == 401
        assert request(method, f"{base}{path}", body, headers=bearer)[0] in (200, 202)
    assert request("GET", f"{base}/health")[0] == 204
    wait_until(lambda: request("GET", f"{base}/ready")[0] == 204, what="/ready without a token")
    # the first refusal is said, its path's key masked; the token and the key are never shown
    wait_until(lambda: "refused POST /api/events from 127.0.0.1: 401 UNAUTHORIZED: missing or "
               "wrong bearer token" in daemon.output(), what="the refusal's line")
    assert token not in daemon.output() and key not in daemon.output()


def test_http_host_binds_only_that_address(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """`--http_host 127.0.0.2` serves there and not on 127.0.0.1."""
    import broker

    port = broker.free_port()
    run_ilagent(
        "daemon", "-p", str(port), "--http_host", "127.0.0.2", "-f", str(tmp_path / "q.db3")
    )
    wait_until(
        lambda: status_or_none("GET", f"http://127.0.0.2:{port}/health") == 204,
        what="the daemon on 127.0.0.2",
    )
    assert status_or_none("GET", f"http://127.0.0.1:{port}/health") is None


def test_heartbeat_proxy_answers_202_or_502(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """GET, HEAD and POST /api/heartbeats/KEY ping ilert: 202 when it took it, else 502 + reason."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3")
    for method in ("GET", "HEAD", "POST"):  # a key each: a second ping within 12 s is not sent
        status, body = request(method, f"{base}/api/heartbeats/{unique('il1hbt')}")
        assert status == 202, (method, body)
    pings = [r for r in sandbox.requests() if "/heartbeats/" in r["path"]]
    assert len(pings) == 3
    key = unique("il1hbt")
    sandbox.fault(status=500, integration_key=key)
    status, body = request("GET", f"{base}/api/heartbeats/{key}")
    assert status == 502 and body["code"] == "HEARTBEAT_NOT_DELIVERED"
    assert "500" in body["message"] and "SANDBOX_FAULT" in body["message"]
    samples = metrics(base)
    assert samples['ilagent_heartbeats_sent_total{source="http"}'] == 3
    assert samples['ilagent_ilert_responses_total{status="500"}'] == 1


def test_metrics_names_are_pinned(sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """A running daemon exposes exactly the agreed metric names, all prefixed ilagent_."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3")
    status, text = request("GET", f"{base}/metrics")
    assert status == 200
    names = sorted(line.split()[2] for line in str(text).splitlines() if line.startswith("# TYPE"))
    assert names == METRIC_NAMES


def test_a_queue_file_that_cannot_be_opened_is_one_line_and_exit_1(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """`daemon -p … -f /no/such/dir/q.db3` exits 1 naming the file, without a traceback."""
    import broker

    daemon = run_ilagent("daemon", "-p", str(broker.free_port()), "-f", "/no/such/dir/q.db3")
    assert daemon.proc.wait(30) == 1
    out = daemon.output()
    assert "cannot open the queue file /no/such/dir/q.db3" in out and "Traceback" not in out
