"""Mapping drift: a producer stops sending the alert-key field; the metric counts every event,
the log says so once per 30 s, with how many it did not repeat."""

from __future__ import annotations

import logging
import tomllib

import orjson
import pytest

from ilagent.delivery.drift import RouteWatch
from ilagent.mapping.reading import Fanout, read_routed
from ilagent.mapping.route_tables import load_routes
from ilagent.metrics import Metrics

ROUTES = load_routes(tomllib.loads("""
[[route]]
name = "press"
integration_key = "il1apipress00000001"
match = { path = "kind", equals = "alarm" }
alert_key = "{{ payload.machine }}"
summary = "{{ payload.text | default('alarm') }}"
""")["route"], where="test.toml")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def fanout(message: dict[str, object]) -> Fanout:
    reading = read_routed(ROUTES, orjson.dumps(message), topic="t", source="kafka")
    assert isinstance(reading, Fanout)
    return reading


def test_a_missing_alert_key_is_counted_each_time_and_warned_of_once_per_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics, clock = Metrics(), Clock()
    watch = RouteWatch(metrics, "kafka", clock=clock, interval=30.0)
    caplog.set_level(logging.WARNING, logger="ilagent.delivery.drift")
    for _ in range(5):
        watch.fanout(fanout({"kind": "alarm", "machine": "M1"}))
    assert sample(metrics, "ilagent_mapping_missing_total", route="press", field="alertKey") == 0
    assert caplog.records == []
    for _ in range(40):  # the producer renamed 'machine'
        watch.fanout(fanout({"kind": "alarm", "machineId": "M1"}))
        clock.now += 1.0
    assert sample(metrics, "ilagent_mapping_missing_total", route="press",
                  field="alertKey") == 40
    assert sample(metrics, "ilagent_route_matched_total", source="kafka", route="press") == 45
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # at 0 s and at 30 s
    assert "route press: the message has no value for alertKey" in lines[0]
    assert "(and 29 more in the last 30 s)" in lines[1]


def test_what_a_route_passes_over_is_counted_as_its_filtered() -> None:
    metrics = Metrics()
    watch = RouteWatch(metrics, "mqtt")
    watch.fanout(fanout({"kind": "info"}))
    watch.fanout(fanout({"kind": "info"}))
    watch.fanout(Fanout(()))  # a topic no route reads
    assert sample(metrics, "ilagent_messages_filtered_total", source="mqtt", route="press") == 2
    assert sample(metrics, "ilagent_messages_filtered_total", source="mqtt", route="") == 1
    assert sample(metrics, "ilagent_route_matched_total", source="mqtt", route="press") == 0


def test_a_failed_template_is_counted() -> None:
    routes = load_routes(tomllib.loads('[[route]]\nname = "r"\nintegration_key = "k1234567"\n'
                                       'summary = "{{ payload.n + \'x\' }}"')["route"],
                         where="t")
    metrics = Metrics()
    reading = read_routed(routes, b'{"n": 1}', topic="t", source="kafka")
    assert isinstance(reading, Fanout)
    RouteWatch(metrics, "kafka").fanout(reading)
    assert sample(metrics, "ilagent_template_errors_total", route="r", field="summary") == 1
