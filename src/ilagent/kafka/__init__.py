"""The Kafka source: consumer thread, commits and the finished-offset map, mapping and
settlement, dead letters, statistics.

May import the delivery engine, the mapping, the core and the foundation — never ``mqtt``,
``spool`` or ``web``. Only this package loads librdkafka (``confluent_kafka``); the daemon
imports it only when ``--kafka_brokers`` is given. What is not Kafka's own (which kind a topic
carries, reading a message) is the mapping's, shared with MQTT.
"""
