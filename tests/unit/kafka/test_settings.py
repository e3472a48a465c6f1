"""The consumer's librdkafka settings: ours, and the user's ``--kafka_config`` over them."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer

from ilagent.config import KafkaSettings
from ilagent.kafka.settings import consumer_config


def librdkafka_takes(config: dict[str, object]) -> None:
    """librdkafka itself checks the settings when a consumer is made (no broker needed)."""
    Consumer({**config, "bootstrap.servers": "127.0.0.1:9", "log_level": 0}).close()


def test_a_backlog_comes_in_large_fetches_of_a_bounded_size() -> None:
    config = consumer_config(KafkaSettings(brokers="b:9092", event_topics=("t",)))
    assert config["max.partition.fetch.bytes"] == 8 * 1024 * 1024
    assert config["fetch.max.bytes"] == 16 * 1024 * 1024
    librdkafka_takes(config)


@pytest.mark.parametrize("extra", [
    (("message.max.bytes", "30000000"),),
    (("receive.message.max.bytes", "20000000"),),
    (("fetch.max.bytes", "2000000"), ("max.partition.fetch.bytes", "1048576")),
], ids=["large messages", "small answers", "own fetch size"])
def test_sizes_of_the_users_own_are_not_contradicted(extra: tuple[tuple[str, str], ...]) -> None:
    """A user who sizes messages or fetches gets librdkafka's fetch bound, or their own: ours
    (16 MiB) would make librdkafka refuse 30 MB messages or a 20 MB answer limit."""
    config = consumer_config(KafkaSettings(brokers="b:9092", event_topics=("t",), extra=extra))
    for key, value in extra:
        assert config[key] == value
    if all(key != "fetch.max.bytes" for key, _ in extra):
        assert "fetch.max.bytes" not in config
    librdkafka_takes(config)
