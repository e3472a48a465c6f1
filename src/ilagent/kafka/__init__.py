"""The Kafka source: consumer thread, mapping and settlement, dead letters, statistics.

Imports librdkafka (``confluent_kafka``); only the daemon loads this package, and only when
``--kafka_brokers`` is given.
"""
