"""The spool: the durable local SQLite queue of events accepted before ilert took them.

Filled by the HTTP intake and MQTT's buffer mode; drained by the worker through the delivery
engine; inspected and managed by ``ilagent queue``. May import the delivery engine, the
mapping, the core and the foundation — never a source (``kafka``, ``mqtt``, ``web``).
"""
