"""The daemon's HTTP side (``-p``): probes and metrics, access rules, the event intake, the
heartbeat proxy. Only :mod:`~ilagent.web.probes` (readiness, the daemon's own heartbeat) runs
in every daemon; it imports no aiohttp, and the rest is imported when ``-p`` serves HTTP.

May import the spool, the delivery engine, the core and the foundation — never ``kafka`` or
``mqtt`` (no librdkafka, no paho).
"""
