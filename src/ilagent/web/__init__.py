"""The daemon's HTTP side (``-p``): probes and metrics, access rules, the event intake, the
heartbeat proxy.

May import the spool, the delivery engine, the core and the foundation — never ``kafka`` or
``mqtt`` (no librdkafka, no paho).
"""
