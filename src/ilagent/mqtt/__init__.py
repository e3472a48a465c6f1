"""The MQTT source: filter checks, the acknowledgement window, TLS, the connection, the bridge,
buffer mode's queue-file writes.

May import the delivery engine, the mapping, the spool's store (buffer mode), the core and the
foundation — never ``kafka`` or ``web``. Only the connection loads the MQTT client library
(paho-mqtt); the daemon imports this package only when given ``--mqtt_host``. What is not
MQTT's own (which kind a topic carries, reading a message) is the mapping's, shared with Kafka.
"""
