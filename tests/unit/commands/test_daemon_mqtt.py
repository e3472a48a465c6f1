"""The MQTT options: settings built from them, and what is refused."""

from __future__ import annotations

import pytest

from ilagent.cli import build_parser
from ilagent.commands.daemon import daemon_config, default_client_id
from ilagent.errors import ConfigError


def config(*argv: str):  # type: ignore[no-untyped-def]
    return daemon_config(build_parser().parse_args(["daemon", *argv]))


def test_ilagent_command_line_gives_the_same_settings() -> None:
    """ilagent 0.9's MQTT flags keep their names and defaults."""
    settings = config("-m", "broker", "-e", "ilert/events", "-r", "ilert/beat",
                      "--mqtt_qos", "1", "--mqtt_shared_group", "g").mqtt
    assert settings is not None
    assert (settings.host, settings.port, settings.qos) == ("broker", 1883, 1)
    assert settings.event_topics == ("ilert/events",)
    assert settings.heartbeat_topics == ("ilert/beat",)
    assert settings.shared_group == "g" and settings.version == "5"
    assert not settings.buffer and not settings.tls


def test_client_id_is_stable_per_installation_and_differs_between_them() -> None:
    """The default id follows the spool path: the same after a restart, another elsewhere."""
    assert default_client_id("./ilagent.db3") == default_client_id("./ilagent.db3")
    assert default_client_id("/a/ilagent.db3") != default_client_id("/b/ilagent.db3")
    assert config("-m", "h", "-e", "t", "--mqtt_qos", "1", "-n", "mine").mqtt.client_id == "mine"


def test_password_is_not_in_the_repr() -> None:
    """The MQTT password never shows in a repr or a debug dump of the configuration."""
    settings = config("-m", "h", "-e", "t", "--mqtt_qos", "1", "--mqtt_username", "u",
                      "--mqtt_password", "s3cret-pw")
    assert "s3cret-pw" not in repr(settings)
    assert settings.mqtt.secrets() == ["s3cret-pw"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--mqtt_password", "p"], "--mqtt_password needs --mqtt_username"),
    (["--mqtt_client_cert", "c.pem", "--mqtt_tls"],
     "--mqtt_client_cert and --mqtt_client_key go together"),
    (["--mqtt_shared_group", "a/b"], "--mqtt_shared_group must not contain /, + or #"),
    (["-e", "^regex.*"], "topic '^regex.*' cannot be used: it is a Kafka regex; MQTT filters "
                         "use + and #"),
])
def test_refused(argv: list[str], message: str) -> None:
    """Combinations that cannot work are refused with the flag's name."""
    with pytest.raises(ConfigError, match="^" + message.replace("+", r"\+").replace(
            ".", r"\.").replace("*", r"\*").replace("^", r"\^")):
        config("-m", "h", "-e", "t", "--mqtt_qos", "1", *argv)


def test_buffer_allows_qos_0() -> None:
    """QoS 0 works with --mqtt_buffer (ilagent 0.9's rule)."""
    assert config("-m", "h", "-e", "t", "--mqtt_buffer").mqtt.qos == 0
