"""A batch's runs of one partition's messages: telling them, what one batch did, and a
filtered run's end.

Under the flags' filter most messages of an event topic cannot match. One search of the run's
joined bytes (:func:`~ilagent.mapping.messages.raw_survivors`) finds the few that might; every
stretch between them ends at once, filtered, with one tracker call and one count — no parse, no
per-message call of ours. A fire drill's message (an ``ilagent.drill`` header) is always read on
its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

from ilagent.config import MappingRules
from ilagent.kafka.partitions import PartitionState, TPKey, offset_of, origin
from ilagent.logs import Sampled
from ilagent.mapping.messages import raw_filter_reason, raw_survivors


def one_partition(messages: list[Message]) -> TPKey | None:
    """The partition of a batch that is one partition's messages and holds no error — nearly
    every batch — told by passes in C over the batch instead of a loop of ours; else None."""
    count = len(messages)
    if not count:
        return None
    partitions = list(map(Message.partition, messages))
    if partitions.count(partitions[0]) != count:
        return None
    topics = list(map(Message.topic, messages))
    if topics.count(topics[0]) != count or any(map(Message.error, messages)):
        return None  # (a KafkaError is always true; compared with None it would raise)
    return str(topics[0]), int(partitions[0] or 0)


class Tally:
    """What one batch did, counted and noted as it goes (metrics and commits once per batch)."""

    __slots__ = ("consumed", "done", "filtered", "now", "skipped", "started")

    def __init__(self, now: float) -> None:
        self.now = now
        self.consumed = self.filtered = self.skipped = 0
        self.done: dict[TPKey, PartitionState] = {}  # partitions with messages finished here
        self.started: dict[TPKey, list[Any]] = {}  # messages gone on to delivery, per partition


def filter_run(rules: MappingRules, state: PartitionState, run: list[Message], tally: Tally,
               *, read_one: Callable[[Message], None], log: Sampled) -> None:
    """End every message of ``run`` that cannot pass the filter, a stretch at a time (its
    last offset skipped, a sampled line for its first), and hand each other one to
    ``read_one``, in offset order."""
    payloads = list(map(Message.value, run))
    survivors = raw_survivors(rules, payloads)
    if survivors is None:  # the raw bytes tell nothing for this filter
        survivors = list(range(len(run)))
    headers = list(map(Message.headers, run))
    if headers.count(None) != len(headers):  # a drill's header: read on its own
        survivors = sorted({*survivors, *(index for index, found in enumerate(headers)
                                          if found is not None)})
    begin = 0
    for index in [*survivors, len(run)]:
        if index > begin:  # run[begin:index] cannot match: filtered
            state.tracker.skip(offset_of(run[index - 1]))
            tally.filtered += index - begin
            tally.done[state.key] = state
            if log.wanted():
                log.write(origin(run[begin]), raw_filter_reason(rules, payloads[begin]))
            log.count(index - begin - 1)
        if index < len(run):
            read_one(run[index])
        begin = index + 1
