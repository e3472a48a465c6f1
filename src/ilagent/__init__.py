"""ilagent: bridge Apache Kafka (and HTTP) to ilert alerts, delivering every event at least once."""

__version__ = "1.0.0"
USER_AGENT = f"ilagent-py/{__version__}"
