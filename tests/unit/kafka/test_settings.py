"""The consumer's librdkafka settings: ours, and the user's ``--kafka_config`` over them."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer

from ilagent.config import KafkaSettings
from ilagent.kafka.settings import consumer_config


def librdkafka_takes(config: dict[str, object]) -> None:
    """librdkafka itself checks the settings when a consumer is made (no broker needed)."""
    Consumer({**config, "bootstrap.servers": "127.0.0.1:9", "log_level": 0}).close()


def test_a_backlog_comes_in_large_fetches() -> None:
    """8 MiB per partition and fetch; the answer's bound is librdkafka's own, lowered to the
    16 MiB queue (a fetch.max.bytes of ours would contradict a user's message or answer size)."""
    config = consumer_config(KafkaSettings(brokers="b:9092", event_topics=("t",)))
    assert config["max.partition.fetch.bytes"] == 8 * 1024 * 1024
    assert config["queued.max.messages.kbytes"] == 16 * 1024
    assert "fetch.max.bytes" not in config
    librdkafka_takes(config)


def test_a_full_local_queue_is_fetched_again_soon() -> None:
    """Over the queue's thresholds the next fetch waits 20 ms, not librdkafka's 1 s (which
    capped a backlog at about 190k messages/s); a user's own value is kept."""
    settings = KafkaSettings(brokers="b:9092", event_topics=("t",))
    assert consumer_config(settings)["fetch.queue.backoff.ms"] == 20
    own = KafkaSettings(brokers="b:9092", event_topics=("t",),
                        extra=(("fetch.queue.backoff.ms", "500"),))
    assert consumer_config(own)["fetch.queue.backoff.ms"] == "500"
    librdkafka_takes(consumer_config(own))


@pytest.mark.parametrize("extra", [
    (("message.max.bytes", "30000000"),),
    (("receive.message.max.bytes", "20000000"),),
    (("fetch.max.bytes", "2000000"), ("max.partition.fetch.bytes", "1048576")),
], ids=["large messages", "a smaller answer limit", "own fetch sizes"])
def test_sizes_of_the_users_own_are_taken(extra: tuple[tuple[str, str], ...]) -> None:
    """30 MB messages, a 20 MB answer limit, fetch sizes of one's own: each is kept, and
    librdkafka accepts the whole (it refuses a fetch bound below message.max.bytes, or above
    receive.message.max.bytes)."""
    config = consumer_config(KafkaSettings(brokers="b:9092", event_topics=("t",), extra=extra))
    for key, value in extra:
        assert config[key] == value
    librdkafka_takes(config)
