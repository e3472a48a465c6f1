"""The journal: a bounded local SQLite file of what happened to each event sent or dead-lettered.

One row per event that reached the delivery engine and ended there: where its message was
(Kafka topic, partition, offset; MQTT topic and packet id; the spool row, which is the HTTP
intake's request id), its route, the event (integration key masked, alert key, type, summary),
every answer ilert gave (status, outcome, latency) and the verdict. Filtered messages are only
counted, never journaled. Written by :mod:`.writer` in batches off the event loop, read by
``ilagent trace`` and the daemon's ``/trace``. May import the delivery engine's job type, the
core and the foundation — never a source or the spool.
"""
