"""The daemon's spool wiring: the Kafka bridge reads a spool record as the SQLite worker
reads its row, with the same MQTT converter."""

from __future__ import annotations

from ilagent.delivery.stored import Delivery, Ending
from ilagent.records import RecordKind, StoredRecord, mqtt_path
from ilagent.spool.legacy import Converted
from ilagent.spool_wiring import spool_reader

MQTT_RECORD = StoredRecord(kind=RecordKind.MQTT.value, integration_key="",
                           path=mqtt_path("plant/press1"), event='{"state": "SET"}')


def convert(topic: str, payload: bytes) -> Converted:
    """A stand-in for the MQTT bridge's reading: every message is an event of one key."""
    return Converted(integration_key="il1api0001", path="/v1/events/mqtt/il1api0001",
                     event=payload.decode().replace("}", f', "topic": "{topic}"}}'))


def test_an_mqtt_record_is_read_with_the_mqtt_converter() -> None:
    """With MQTT in the daemon, an mqtt record becomes the event its message maps to."""
    what = spool_reader(convert)(MQTT_RECORD)
    assert isinstance(what, Delivery)
    assert what.integration_key == "il1api0001" and what.path == "/v1/events/mqtt/il1api0001"
    assert b'"topic": "plant/press1"' in what.body


def test_without_mqtt_an_mqtt_record_is_the_dead_letter_no_mqtt() -> None:
    """Without MQTT it ends as no_mqtt, as the SQLite worker ends its row."""
    what = spool_reader(None)(MQTT_RECORD)
    assert isinstance(what, Ending) and what.reason == "no_mqtt"
