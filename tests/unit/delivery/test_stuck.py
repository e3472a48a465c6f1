"""The stuck watch: gauges of every source's oldest unfinished message, and summarised warnings."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest

from ilagent.delivery.engine import Job
from ilagent.delivery.stuck import Head, StuckWatch, describe
from ilagent.ilert import Outcome, Result
from ilagent.metrics import Metrics


class Owner:
    def cancelled(self, job: Job) -> bool:
        return False


def held_job() -> Job:
    job = Job(owner=Owner(), source="kafka", lane=("alert", "il1apiSECRETKEY0001", "door-3"),  # type: ignore[arg-type]
              integration_key="il1apiSECRETKEY0001", origin="t[0]@5")
    job.last_result = Result(Outcome.RATE_LIMITED, 429, '{"message": "slow down"}')
    return job


def test_describe_names_the_alert_the_masked_key_and_the_last_answer() -> None:
    """A stuck report says which alert, whose key (masked) and what ilert answered last."""
    info = describe(held_job())
    assert info["alert_key"] == "door-3"
    assert "SECRETKEY" not in info["key"] and info["key"].endswith("0001")
    assert info["last_answer"].startswith("429")
    assert describe(None) == {"alert_key": "", "key": "", "last_answer": "none yet"}


def test_a_head_past_the_threshold_is_reported_once_then_again_when_its_wait_doubled(
        caplog: pytest.LogCaptureFixture) -> None:
    """One WARNING when a head gets stuck, none while it stays stuck, another once its wait has
    doubled; the gauge shows its age and /health's list names it."""
    now = [1000.0]
    heads = [Head("kafka", "t", "0", "t[0]@5", 500.0, held_job()), Head("kafka", "t", "1")]
    metrics = Metrics()
    watch = StuckWatch(metrics=metrics, sources=[lambda: heads], stuck_after=300,
                       clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="ilagent.delivery.stuck")
    assert watch.check()[0]["where"] == "t[0]@5"
    assert len(caplog.records) == 1
    assert "alert key 'door-3'" in caplog.text and "last answer: 429" in caplog.text
    assert "SECRETKEY" not in caplog.text
    now[0] = 1300.0  # 800 s: still stuck, not yet twice the first report's 500 s
    watch.check()
    assert len(caplog.records) == 1
    now[0] = 1600.0  # 1,100 s: more than doubled
    watch.check()
    assert len(caplog.records) == 2
    text = generate_latest(metrics.registry).decode()
    assert 'ilagent_oldest_unfinished_seconds{partition="0",source="kafka",topic="t"} 1100.0' in text
    assert 'ilagent_oldest_unfinished_seconds{partition="1",source="kafka",topic="t"} 0.0' in text


def test_a_head_under_the_threshold_is_gauged_not_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    """A message waiting less than stuck_after shows in the gauge only."""
    watch = StuckWatch(metrics=Metrics(), sources=[lambda: [Head("mqtt", since=10.0)]],
                       stuck_after=300, clock=lambda: 100.0)
    caplog.set_level(logging.WARNING, logger="ilagent.delivery.stuck")
    assert watch.check() == []
    assert caplog.records == []


def test_the_series_of_a_partition_that_went_away_is_removed() -> None:
    """A revoked partition's gauge disappears instead of freezing at its last value."""
    heads = [Head("kafka", "t", "0", since=1.0), Head("kafka", "t", "1", since=1.0)]
    metrics = Metrics()
    watch = StuckWatch(metrics=metrics, sources=[lambda: list(heads)], clock=lambda: 2.0)
    watch.check()
    heads.pop()
    watch.check()
    text = generate_latest(metrics.registry).decode()
    assert 'partition="1"' not in text and 'partition="0"' in text


def test_many_stuck_heads_make_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """Fifty stuck partitions are one WARNING naming three of them and counting the rest."""
    heads = [Head("kafka", "t", str(p), f"t[{p}]@0", since=0.0) for p in range(50)]
    watch = StuckWatch(metrics=Metrics(), sources=[lambda: heads], stuck_after=1,
                       clock=lambda: 10.0)
    caplog.set_level(logging.WARNING, logger="ilagent.delivery.stuck")
    watch.check()
    assert len(caplog.records) == 1 and "and 47 more" in caplog.text
