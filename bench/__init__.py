"""Benchmarks of ilagent; run them all with ``make bench`` (``bench/run.py``)."""
