"""A filtered run ends in stretches: the same messages end, in the same order, as if each were
checked on its own — the tracker, the counts and the sampled log line included. A batch of one
partition is told as such only when it is."""

from __future__ import annotations

import json
import logging

import pytest
from confluent_kafka import KafkaError, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from ilagent.config import MappingRules
from ilagent.kafka.partitions import PartitionState
from ilagent.kafka.runs import Tally, filter_run, one_partition
from ilagent.logs import Sampled
from ilagent.mapping.messages import raw_filter_reason

RULES = MappingRules(event_key="il1api123", filter_key="type", filter_val="ALARM")
DRILL = [("ilagent.drill", b"1")]
PAYLOADS = st.sampled_from([
    json.dumps({"type": "ALARM", "m": 1}).encode(), json.dumps({"type": "INFO"}).encode(),
    b'{"type": "\\u0041LARM"}', b"not json", b'"ALARM"', None, b"", b'{"t": "ALARM"}'])


def messages(spec: list[tuple[bytes | None, bool]], first: int, gaps: list[int]) -> list[Message]:
    offsets, offset = [], first
    for index in range(len(spec)):
        offsets.append(offset)
        offset += 1 + gaps[index % len(gaps)]
    return [Message(topic="t", partition=0, offset=at, value=value,
                    headers=DRILL if drill else None)
            for at, (value, drill) in zip(offsets, spec, strict=True)]


@settings(max_examples=300, deadline=None)
@given(spec=st.lists(st.tuples(PAYLOADS, st.booleans() | st.just(False)), min_size=1,
                     max_size=40),
       first=st.integers(0, 10**12), gaps=st.lists(st.integers(0, 3), min_size=1, max_size=4))
def test_a_run_ends_as_message_by_message_would(spec: list[tuple[bytes | None, bool]],
                                                first: int, gaps: list[int]) -> None:
    """Property: every message the raw check cannot drop, and every drill's, is read one by one,
    in offset order (besides a few the raw check drops on their own: a needle without its key);
    every other one is counted filtered and finished, never hiding an offset that was read and
    is still in progress."""
    run = messages(spec, first, gaps)
    state, tally, read = PartitionState("t", 0), Tally(0.0), []

    def read_one(message: Message) -> None:
        read.append(message.offset())
        state.tracker.add(message.offset())  # in progress, as a delivery would be

    filter_run(RULES, state, run, tally, read_one=read_one,
               log=Sampled(logging.getLogger("test"), "filtered %s: %s"))
    one_by_one = {m.offset() for m in run
                  if m.headers() is not None or raw_filter_reason(RULES, m.value()) is None}
    assert read == sorted(set(read)) and one_by_one <= set(read)
    assert all(raw_filter_reason(RULES, m.value()) is not None for m in run
               if m.offset() in set(read) - one_by_one)
    assert tally.filtered == len(run) - len(read)
    assert (state.key in tally.done) == (tally.filtered > 0)
    last = run[-1].offset()
    assert state.tracker.watermark() == (read[0] if read else last + 1)
    finished = {o for start, end in state.tracker.finished_above() for o in range(start, end)}
    for message in run:
        offset = message.offset()
        assert (offset in finished) == (offset not in read and bool(read) and offset > read[0])


def test_a_filtered_stretch_is_one_line_and_counted_in_the_next(
        caplog: pytest.LogCaptureFixture) -> None:
    """The first message of a stretch gets the sampled line with its reason; the rest of the
    stretch is in the count of the next line."""
    now = [0.0]
    log = Sampled(logging.getLogger("test.runs"), "filtered %s: %s", interval=10,
                  clock=lambda: now[0])
    info = json.dumps({"type": "INFO"}).encode()
    state = PartitionState("t", 0)
    caplog.set_level(logging.INFO, "test.runs")
    filter_run(RULES, state, messages([(info, False)] * 5, 0, [0]), Tally(0.0),
               read_one=lambda message: None, log=log)
    now[0] = 11.0
    filter_run(RULES, state, messages([(b"{}", False)], 5, [0]), Tally(0.0),
               read_one=lambda message: None, log=log)
    assert [r.getMessage() for r in caplog.records] == [
        "filtered t[0]@0: 'type' is not 'ALARM'",
        "filtered t[0]@5: no 'type' key (and 4 more in the last 10 s)"]


ERRORS = st.sampled_from([None, None, None, KafkaError(KafkaError._PARTITION_EOF),
                          KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)])


@settings(max_examples=300, deadline=None)
@given(spec=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 1), ERRORS),
                     max_size=30),
       same=st.booleans())
def test_one_partition_is_told_only_of_a_batch_of_one_partition_without_errors(
        spec: list[tuple[str, int, KafkaError | None]], same: bool) -> None:
    """The poll thread's shortcut for the common batch: taken exactly when every message is of
    one partition and none is an error (else the batch is read message by message)."""
    if same:  # hypothesis rarely draws a whole batch of one partition without errors by itself
        spec = [("a", 1, None)] * len(spec)
    batch = [Message(topic=topic, partition=partition, offset=at, value=b"{}", error=error)
             for at, (topic, partition, error) in enumerate(spec)]
    plain = bool(spec) and len({(t, p) for t, p, _ in spec}) == 1 and all(
        error is None for _t, _p, error in spec)
    assert one_partition(batch) == ((spec[0][0], spec[0][1]) if plain else None)
