"""One module per subcommand: its options (``add_parser``) and how it runs (``run``).

The shell: may import every other part, and loads a source (Kafka, MQTT) only when the command
runs it, so that ``queue``, ``map``, ``event`` and ``heartbeat`` start without librdkafka.
"""
