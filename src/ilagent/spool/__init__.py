"""The spool: the durable local SQLite queue of events accepted before ilert took them.

Filled by the HTTP intake (and, later, MQTT's buffer mode); drained by the worker through the
delivery engine; inspected and managed by ``ilagent queue``.
"""
