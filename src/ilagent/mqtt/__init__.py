"""The MQTT source: topic filters, the acknowledgement window, TLS, the connection, the bridge,
buffer mode's queue-file writes.

Only this package loads the MQTT client library (paho-mqtt); like :mod:`ilagent.kafka` it is
imported only when the daemon is given ``--mqtt_host``.
"""
