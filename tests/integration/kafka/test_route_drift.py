"""Mapping drift on a real broker (issue 23): a producer renames the field a route's alert key
is made of. The daemon counts each message without it, logs one WARNING per 30 s, and the
alert rule ``IlagentAlertKeyMissing`` of ``deploy/prometheus/alerts.yml`` fires on what the
daemon exports — evaluated here over real scrapes by a minimal evaluator of the rule's shape,
parsed from the file, so changing the rule changes the test.
"""

from __future__ import annotations

import math
import operator
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from helpers import FAST, Sandbox, create_topic, http, produce, unique, wait_until, write_routes

ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
RULE = "IlagentAlertKeyMissing"

Labels = tuple[tuple[str, str], ...]
Scrape = dict[tuple[str, Labels], float]  # (sample name, sorted labels) → value

# sum by (…) (rate(name{matchers}[window])) / sum by (…) (rate(name{matchers}[window])) > 0.5
_SUM_OF_RATE = (r"sum\s+by\s*\((?P<{0}by>[^)]*)\)\s*\(\s*rate\s*\(\s*(?P<{0}name>[a-zA-Z_:]\w*)"
                r"\s*(?:\{{(?P<{0}matchers>[^}}]*)\}})?\s*\[(?P<{0}window>\w+)\]\s*\)\s*\)")
RATIO = re.compile(rf"\s*{_SUM_OF_RATE.format('num_')}\s*/\s*{_SUM_OF_RATE.format('den_')}"
                   r"\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>[0-9.eE+-]+)\s*")
MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne}


def seconds(duration: str) -> float:
    """A PromQL duration (``10m``, ``1h30m``) in seconds."""
    parts = DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * SECONDS[unit] for n, unit in parts)


@dataclass(frozen=True)
class SumOfRate:
    """``sum by (labels) (rate(name{matchers}[window]))`` over two scrapes of one target."""

    by: tuple[str, ...]
    name: str
    matchers: tuple[tuple[str, str, str], ...]
    window: float

    @classmethod
    def parse(cls, found: Mapping[str, str], side: str) -> SumOfRate:
        text, matchers, at = found[f"{side}matchers"] or "", [], 0
        while at < len(text):
            matcher = MATCHER.match(text, at)
            assert matcher, f"a matcher this evaluator does not read: {text[at:]}"
            matchers.append((matcher[1], matcher[2], matcher[3]))
            at = matcher.end()
        return cls(tuple(label.strip() for label in found[f"{side}by"].split(",")),
                   found[f"{side}name"], tuple(matchers), seconds(found[f"{side}window"]))

    def selects(self, labels: Mapping[str, str]) -> bool:
        for label, op, wanted in self.matchers:
            value = labels.get(label, "")
            holds = {"=": value == wanted, "!=": value != wanted,
                     "=~": re.fullmatch(wanted, value) is not None,
                     "!~": re.fullmatch(wanted, value) is None}[op]
            if not holds:
                return False
        return True

    def values(self, before: Scrape, after: Scrape, elapsed: float) -> dict[Labels, float]:
        """Per group: the summed per-second increase of the selected series between the two
        scrapes (a series the first lacks counts from 0: it was created by its increment; a
        lower value is a counter reset)."""
        assert 0 < elapsed <= self.window, "both scrapes must fall inside the rate window"
        sums: dict[Labels, float] = defaultdict(float)
        for (name, labels), value in after.items():
            if name != self.name or not self.selects(dict(labels)):
                continue
            old = before.get((name, labels), 0.0)
            increase = value - old if value >= old else value
            group = tuple((label, dict(labels).get(label, "")) for label in self.by)
            sums[group] += increase / elapsed
        return dict(sums)


@dataclass(frozen=True)
class RatioRule:
    """An alert expression of the shape ``SumOfRate / SumOfRate <op> threshold``."""

    numerator: SumOfRate
    denominator: SumOfRate
    compare: Callable[[float, float], bool]
    threshold: float

    @classmethod
    def parse(cls, expr: str) -> RatioRule:
        found = RATIO.fullmatch(expr)
        assert found, f"not of the shape this evaluator reads: {expr}"
        numerator = SumOfRate.parse(found.groupdict(), "num_")
        denominator = SumOfRate.parse(found.groupdict(), "den_")
        assert numerator.by == denominator.by, "one-to-one matching needs the same groups"
        return cls(numerator, denominator, COMPARE[found["op"]], float(found["threshold"]))

    def firing(self, before: Scrape, after: Scrape, elapsed: float) -> dict[Labels, float]:
        """The groups whose ratio passes the comparison, with their ratio (PromQL's filter
        comparison; groups on one side only have no result)."""
        top = self.numerator.values(before, after, elapsed)
        bottom = self.denominator.values(before, after, elapsed)
        result = {}
        for group in top.keys() & bottom.keys():
            if bottom[group]:
                ratio = top[group] / bottom[group]
            else:
                ratio = math.inf if top[group] > 0 else math.nan
            if self.compare(ratio, self.threshold):  # NaN compares false, as in PromQL
                result[group] = ratio
        return result


def rule_expr(alert: str) -> str:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    [expr] = [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == alert]
    return str(expr)


def parse_scrape(text: str) -> Scrape:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(port: int) -> Scrape:
    status, text = http("GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200, text
    return parse_scrape(str(text))


def value(samples: Scrape, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


MISSING = "ilagent_mapping_missing_total"
MATCHED = "ilagent_route_matched_total"


def exposition(matched: float, missing: dict[str, float]) -> Scrape:
    """A scrape of one route ``r`` that took ``matched`` messages and lacked these fields."""
    text = f'{MATCHED}{{route="r",source="kafka"}} {matched}\n' + "".join(
        f'{MISSING}{{field="{field}",route="r"}} {count}\n' for field, count in missing.items())
    return parse_scrape(text)


@pytest.mark.parametrize(("after", "fires"), [
    (exposition(20, {"alertKey": 4}), False),   # 4 of 10 new messages: 0.4 is not > 0.5
    (exposition(20, {"alertKey": 6}), True),    # 6 of 10
    (exposition(20, {"summary": 9, "alertKey": 1}), False),  # only alertKey is counted
    (exposition(10, {"alertKey": 0}), False),   # no new messages: 0/0 is no alert
])
def test_the_evaluator_reads_the_rule_its_matchers_and_threshold(
        after: Scrape, fires: bool) -> None:
    """The rule's expression, read from the file, fires on the share of new messages whose
    alert key was missing, counting only the field its matcher names."""
    before = exposition(10, {})
    firing = RatioRule.parse(rule_expr(RULE)).firing(before, after, 60.0)
    assert bool(firing) is fires, firing


def test_a_renamed_alert_key_field_is_counted_warned_once_and_fires_the_alert(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Messages with ``machine``, then a producer that renamed it ``machineId``: the missing
    counter counts exactly the renamed ones, one WARNING names the route and field, and the
    alert rule does not fire on the scrapes before the rename but does on those around it."""
    import broker

    topic, key, port = create_topic(kafka_bootstrap, unique("drift")), unique("il1api"), \
        broker.free_port()
    config = write_routes(tmp_path / "routes.toml", {
        "name": "line3", "kafka_topics": [topic], "integration_key": key,
        "summary": "{{ payload.text }}", "alert_key": "{{ payload.machine }}"})
    daemon = run_ilagent("--config", str(config), "daemon", "-v", "--kafka_brokers",
                         kafka_bootstrap, "--kafka_group_id", unique("g"),
                         "--kafka_offset_reset", "earliest", "-p", str(port), "--http_host",
                         "127.0.0.1", *FAST)
    rule = RatioRule.parse(rule_expr(RULE))

    def taken(count: int) -> Scrape | None:
        """A scrape once route line3 took ``count`` messages (None before)."""
        try:
            samples = scrape(port)
        except OSError:  # the HTTP server is not up yet
            return None
        return samples if value(samples, MATCHED, route="line3", source="kafka") == count \
            else None

    good = [{"machine": f"M{n}", "text": f"good {n}"} for n in range(8)]
    produce(kafka_bootstrap, topic, good[:4])
    first = wait_until(lambda: taken(4), timeout=60, what="four messages taken")
    first_at = time.monotonic()
    produce(kafka_bootstrap, topic, good[4:])
    before = wait_until(lambda: taken(8), what="eight messages taken")
    before_at = time.monotonic()
    assert rule.firing(first, before, before_at - first_at) == {}, "fired without drift"

    renamed_at = time.monotonic()
    renamed = [{"machineId": f"M{n}", "text": f"renamed {n}"} if n % 4 else
               {"machine": f"M{n}", "text": f"still named {n}"} for n in range(8)]  # 6 of 8
    produce(kafka_bootstrap, topic, renamed)
    after = wait_until(lambda: taken(16), what="sixteen messages taken")
    after_at = time.monotonic()

    assert value(before, MISSING, field="alertKey", route="line3") == 0
    assert value(after, MISSING, field="alertKey", route="line3") == 6
    assert sum(v for (name, labels), v in after.items()
               if name == MISSING and ("route", "line3") in labels) == 6, "other fields missing"
    by = rule.numerator.by
    expected_group = tuple((label, "line3" if label == "route" else "") for label in by)
    assert rule.firing(before, after, after_at - before_at) == {expected_group: pytest.approx(0.75)}

    wait_until(lambda: len(sandbox.events(key)) == 16, what="all sixteen events sent")
    assert sum("alertKey" not in body for body in sandbox.bodies(key)) == 6
    warnings = [line for line in daemon.output().splitlines()
                if " WARNING " in line and "route line3: the message has no value for alertKey"
                in line]
    # the run since the first renamed message lasts under the 30 s the warning is summarised
    # over, so one line is all it may log
    assert time.monotonic() - renamed_at < 30
    assert len(warnings) == 1, warnings
    assert daemon.stop() == 0
