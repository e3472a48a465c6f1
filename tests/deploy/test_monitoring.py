"""The Grafana dashboard and the Prometheus alert rules use only metric names and labels that a
running daemon exports: one daemon (Kafka and the HTTP intake, against the sandbox) is driven
through deliveries, a retry, a 429, a filtered message and a dead letter, then ``/metrics`` is
scraped. A family without samples still names itself in its ``# TYPE`` line, so every name is
checked; labels are checked where the scrape has samples of the family."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from helpers import (
    DAEMON_LOGS,
    DaemonProcess,
    Sandbox,
    create_topic,
    http,
    produce,
    status_or_none,
    unique,
    wait_until,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "ilagent.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# labels Prometheus adds to every series of a scrape target, not the daemon's own
TARGET_LABELS = frozenset({"job", "instance"})
METRIC = re.compile(r"\bilagent_[a-zA-Z0-9_]+")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHERS = re.compile(r"\{([^{}]*)\}")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


@dataclass
class Exported:
    """What a scrape of ``/metrics`` shows: every sample name a query may use, and the label
    names seen on the samples of each."""

    names: set[str] = field(default_factory=set)
    labels: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Exported:
        """From Prometheus' text exposition format."""
        exported = cls()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, family, kind = line.split(" ", 3)
                if kind == "counter" and not family.endswith("_total"):
                    family += "_total"
                exported.names |= {family + s for s in SUFFIXES.get(kind, ("",))}
            elif line and not line.startswith("#"):
                name, _, rest = line.partition("{")
                name = name.split(" ")[0]
                exported.names.add(name)
                found = set(re.findall(r'(\w+)="', rest.rpartition("}")[0]))
                exported.labels.setdefault(name, set()).update(found)
        return exported

    def problems(self, query: str) -> list[str]:
        """What in a PromQL expression (or any text) the daemon does not export: metric names,
        and labels used in by/without or matchers that no sample of its metrics has."""
        names = set(METRIC.findall(query))
        wrong = [f"no metric {name}" for name in sorted(names - self.names)]
        sampled = [self.labels[n] for n in names if n in self.labels]
        if not sampled or len(sampled) < len(names & self.names):
            return wrong  # a family without samples: its labels cannot be checked
        known = set().union(*sampled) | TARGET_LABELS
        used = {
            label.strip()
            for group in GROUPING.findall(query)
            for label in group.split(",")
            if label.strip()
        }
        used |= {
            m
            for group in MATCHERS.findall(query)
            for m in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", group)
        }
        wrong += [
            f"no label {label} on {', '.join(sorted(names))}" for label in sorted(used - known)
        ]
        return wrong


@pytest.fixture(scope="module")
def exported(
    kafka_bootstrap: str, sandbox_process: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Exported]:
    """The metrics of a daemon that delivered from Kafka and the intake, retried after a 503,
    waited out a 429, filtered one message, dead-lettered another and ran a fire drill."""
    import broker

    sandbox, folder = sandbox_process, tmp_path_factory.mktemp("monitoring")
    sandbox.reset()  # no fault another test scripted may still be live
    kafka_key, http_key = unique("il1apiobs"), unique("il1apiobsh")
    sandbox.fault(status=503, integration_key=kafka_key, count=1)
    sandbox.fault(status=429, integration_key=http_key, count=1, retry_after="1")
    topic, port = create_topic(kafka_bootstrap, unique("monitoring")), broker.free_port()
    drill_sample = folder / "drill.json"
    drill_sample.write_text(json.dumps({"integrationKey": unique("il1apiobsd")}))
    log = folder / "ilagent.log"
    DAEMON_LOGS.append(log)
    daemon = DaemonProcess(
        [
            "daemon",
            "-p",
            str(port),
            "--http_host",
            "127.0.0.1",
            "-f",
            str(folder / "q.db3"),
            "--kafka_brokers",
            kafka_bootstrap,
            "--kafka_group_id",
            unique("g"),
            "-e",
            topic,
            "--kafka_offset_reset",
            "earliest",
            "--drill_interval",  # one fire drill through the intake, on a key of its own
            "12",
            "--drill_intake",
            "--drill_message",
            str(drill_sample),
            "--event_key",
            kafka_key,
            "--filter_key",
            "type",
            "--retry_initial_delay",
            "0.1",
            "--retry_max_delay",
            "0.5",
        ],
        log=log,
        env={"ILERT_API_URL": sandbox.api_url, "ILERT_BEAT_URL": sandbox.api_url},
    ).start()
    base = f"http://127.0.0.1:{port}"

    def sample(name: str) -> float:
        text = str(http("GET", f"{base}/metrics")[1])
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + " ", name + "{"))
        )

    try:
        wait_until(
            lambda: status_or_none("GET", f"{base}/ready") == 204 or not daemon.alive(),
            timeout=60,
            what="the daemon to be ready",
        )
        assert daemon.alive(), daemon.output()
        produce(
            kafka_bootstrap,
            topic,
            [
                {"type": "alarm", "summary": "obs", "eventType": "ALERT"},
                {"summary": "no type: filtered"},
                b'{"type": not json',  # passes the filter (holds "type"), no JSON
            ],
        )
        status, _ = http(
            "POST",
            f"{base}/api/events",
            {"integrationKey": http_key, "eventType": "ALERT", "summary": "obs"},
        )
        assert status == 202
        for name, least in (
            ("ilagent_events_delivered_total", 2),
            ("ilagent_messages_dead_lettered_total", 1),
            ("ilagent_messages_filtered_total", 1),
            ("ilagent_delivery_retries_total", 1),
            ("ilagent_drills_total", 1),
        ):
            wait_until(lambda n=name, k=least: sample(n) >= k, timeout=60, what=name)
        status, text = http("GET", f"{base}/metrics")
        assert status == 200
        yield Exported.parse(str(text))
    finally:
        daemon.proc.terminate()  # type: ignore[union-attr]
        daemon.proc.wait(15)  # type: ignore[union-attr]


def dashboard_texts(node: Any) -> Iterator[str]:
    """Every string in the dashboard: queries, template variables, titles, descriptions."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from dashboard_texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from dashboard_texts(value)


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def test_the_scrape_names_families_without_samples_and_labels_of_those_with() -> None:
    """The checker knows a histogram's series, a counter's _total and each sample's labels,
    and reports a stale name, an unknown label and nothing for a good query."""
    exported = Exported.parse(
        '# TYPE ilagent_x_total counter\nilagent_x_total{source="kafka"} 1.0\n'
        "# TYPE ilagent_h histogram\n# TYPE ilagent_g gauge\n"
    )
    assert exported.names == {
        "ilagent_x_total",
        "ilagent_h_bucket",
        "ilagent_h_sum",
        "ilagent_h_count",
        "ilagent_g",
    }
    assert exported.problems("sum by (source, job) (rate(ilagent_x_total[5m]))") == []
    assert exported.problems("rate(ilagent_gone_total[5m])") == ["no metric ilagent_gone_total"]
    assert exported.problems('sum by (reason) (ilagent_x_total{topic="t"})') == [
        "no label reason on ilagent_x_total",
        "no label topic on ilagent_x_total",
    ]


def test_the_dashboard_uses_only_exported_metrics_and_labels(exported: Exported) -> None:
    """Every ilagent_* name anywhere in the dashboard exists, with the labels it groups by."""
    dashboard = json.loads(DASHBOARD.read_text())
    problems = {
        text: found for text in dashboard_texts(dashboard) if (found := exported.problems(text))
    }
    assert problems == {}


def test_the_dashboard_shows_what_an_operator_needs() -> None:
    """Delivered/s, retries, dead letters by reason, lag per partition, in flight, pacing
    waits, queue depth and age, latency quantiles; panels with unique ids, a place on the grid
    and the data source variable."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = " ".join(t["expr"] for p in panels(dashboard) for t in p.get("targets", []))
    for needed in (
        "rate(ilagent_events_delivered_total",
        "ilagent_delivery_retries_total",
        "by (source, reason) (increase(ilagent_messages_dead_lettered_total",
        "by (topic, partition) (ilagent_kafka_consumer_lag",
        "ilagent_events_in_flight",
        "ilagent_rate_limit_waits_total",
        "ilagent_queue_depth",
        "ilagent_queue_oldest_age_seconds",
        "histogram_quantile(0.99, sum by (le) (rate(ilagent_delivery_latency_seconds_bucket",
    ):
        assert needed in queries, needed
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"] and panel["description"], panel["title"]
        for target in panel.get("targets", []):
            assert set(re.findall(r"\$(\w+)", target["expr"])) <= variables | {"__rate_interval"}, (
                target["expr"]
            )


RULE_FILE_SCHEMA: dict[str, Any] = {  # Prometheus' rule file format, as far as alerts go
    "type": "object",
    "required": ["groups"],
    "additionalProperties": False,
    "properties": {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "rules"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"},
                    "limit": {"type": "integer", "minimum": 0},
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["alert", "expr", "labels", "annotations"],
                            "additionalProperties": False,
                            "properties": {
                                "alert": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                                "expr": {"type": "string", "minLength": 1},
                                "for": {
                                    "type": "string",
                                    "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$",
                                },
                                "keep_firing_for": {"type": "string"},
                                "labels": {
                                    "type": "object",
                                    "required": ["severity"],
                                    "properties": {
                                        "severity": {"enum": ["critical", "warning", "info"]}
                                    },
                                    "additionalProperties": {"type": "string"},
                                },
                                "annotations": {
                                    "type": "object",
                                    "required": ["summary", "description"],
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def test_the_alert_rules_are_a_valid_rule_file() -> None:
    """The file matches the rule file schema, alert names are unique, brackets balance."""
    jsonschema.validate(yaml.safe_load(ALERTS.read_text()), RULE_FILE_SCHEMA)
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        depth = 0
        for char in rule["expr"]:
            depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(char, 0)
            assert depth >= 0, rule["alert"]
        assert depth == 0, rule["alert"]


def test_the_schema_check_can_fail() -> None:
    """A rule without annotations or with a malformed `for` is refused."""
    for bad in (
        {"alert": "X", "expr": "up", "labels": {"severity": "warning"}},
        {
            "alert": "X",
            "expr": "up",
            "for": "5 minutes",
            "labels": {"severity": "info"},
            "annotations": {"summary": "s", "description": "d"},
        },
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"groups": [{"name": "g", "rules": [bad]}]}, RULE_FILE_SCHEMA)


def test_the_alerts_use_only_exported_metrics_and_labels(exported: Exported) -> None:
    """Each rule's expression, and the labels its annotations print, exist on the daemon."""
    problems = {}
    for rule in rules():
        found = exported.problems(rule["expr"])
        grouped = {
            label.strip() for group in GROUPING.findall(rule["expr"]) for label in group.split(",")
        }
        printed = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule["annotations"])))
        found += [f"annotation label {label} is grouped away" for label in printed - grouped]
        if found:
            problems[rule["alert"]] = found
    assert problems == {}


def test_the_alerts_cover_lag_dead_letters_ilert_and_readiness() -> None:
    """The four conditions of the issue each have a rule on the metric that shows them."""
    by_metric = {name: rule["alert"] for rule in rules() for name in METRIC.findall(rule["expr"])}
    for metric in (
        "ilagent_kafka_consumer_lag",
        "ilagent_messages_dead_lettered_total",
        "ilagent_ilert_reachable",
        "ilagent_ready",
    ):
        assert metric in by_metric, metric
    assert "deriv(ilagent_kafka_consumer_lag" in next(
        r["expr"] for r in rules() if r["alert"] == by_metric["ilagent_kafka_consumer_lag"]
    )


def test_the_operations_page_lists_every_alert() -> None:
    """Each rule of alerts.yml has its row in docs/operations.md's table of alerts, and the
    table names no rule the file does not have."""
    page = (DEPLOY.parent / "docs" / "operations.md").read_text()
    section = page.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(Ilagent\w+)` \|", section, flags=re.MULTILINE)
    assert sorted(listed) == sorted(rule["alert"] for rule in rules())
