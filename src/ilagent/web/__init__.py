"""The daemon's HTTP side (``-p``): probes and metrics, the event intake, the heartbeat proxy."""
