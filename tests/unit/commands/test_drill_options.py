"""The fire-drill options: off by default, from flags, ILAGENT_* variables and the TOML file like
every daemon option; what cannot work is one line naming the flag (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilagent.cli import build_parser, main, resolve_options
from ilagent.commands.daemon import daemon_config
from ilagent.config import DaemonConfig
from ilagent.errors import EXIT_USAGE, ConfigError

KAFKA = ("--kafka_brokers", "127.0.0.1:9", "-e", "alarms")
MQTT = ("-m", "127.0.0.1", "--mqtt_qos", "1", "-e", "plant/alarms")


@pytest.fixture
def sample(tmp_path: Path) -> str:
    path = tmp_path / "sample.json"
    path.write_text('{"integrationKey": "il1apiSAMPLEKEY0001", "type": "ALARM", "mCode": "M1"}\n')
    return str(path)


def config_of(*argv: str, environ: dict[str, str] | None = None) -> DaemonConfig:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    sources = resolve_options(parser, args, list(argv), environ=environ or {})
    return daemon_config(args, sources)


def test_drills_are_off_by_default() -> None:
    """Without --drill_interval there are no drills and nothing extra is subscribed to."""
    config = config_of("daemon", *KAFKA)
    assert config.drill is None
    assert config.kafka is not None and config.kafka.event_topics == ("alarms",)


def test_the_drill_settings_and_the_drill_topics_subscribed_as_event_topics(sample: str) -> None:
    """A dedicated drill topic is added to the subscription; the timeout defaults to the
    interval; the sample is read at start."""
    config = config_of("daemon", *KAFKA, "--drill_interval", "12", "--drill_topic", "drills",
                       "--drill_message", sample, "--drill_heartbeat", "ih2:drillbeat-0001")
    drill = config.drill
    assert drill is not None
    assert (drill.interval, drill.timeout, drill.kafka_topic) == (12.0, 12.0, "drills")
    assert drill.message.startswith(b'{"integrationKey"') and drill.sources == ("kafka",)
    assert config.kafka is not None and config.kafka.event_topics == ("alarms", "drills")
    assert "drillbeat-0001" not in repr(config) and "drillbeat" not in repr(drill)


def test_the_drill_options_come_from_the_environment_and_the_file(
        sample: str, tmp_path: Path) -> None:
    """ILAGENT_DRILL_* variables and TOML keys, like every daemon option."""
    config = config_of("daemon", *MQTT, environ={
        "ILAGENT_DRILL_INTERVAL": "30", "ILAGENT_DRILL_MQTT_TOPIC": "plant/drill",
        "ILAGENT_DRILL_MESSAGE": sample, "ILAGENT_DRILL_TIMEOUT": "20"})
    assert config.drill is not None and config.drill.mqtt_topic == "plant/drill"
    assert config.drill.timeout == 20.0
    assert config.mqtt is not None and "plant/drill" in config.mqtt.event_topics
    toml = tmp_path / "ilagent.toml"
    toml.write_text(f'drill_interval = 60\ndrill_intake = true\ndrill_message = "{sample}"\n')
    config = config_of("--config", str(toml), "daemon", "-p", "8977")
    assert config.drill is not None and config.drill.intake and config.drill.interval == 60


@pytest.mark.parametrize(("argv", "says"), [
    (("--drill_interval", "11.9", "--drill_topic", "d"), "--drill_interval 11.9 is too short"),
    (("--drill_interval", "12"), "fire drills need a source to drill"),
    (("--drill_interval", "12", "--drill_topic", "d"), "fire drills need --drill_message"),
    (("--drill_topic", "d"), "--drill_topic needs --drill_interval"),
    (("--drill_interval", "12", "--drill_topic", "^d.*", "--drill_message", "S"),
     "one topic name, not a regex"),
    (("--drill_interval", "12", "--drill_topic", "beats", "-r", "beats", "--drill_message",
      "S"), "--drill_topic beats is a heartbeat topic"),
    (("--drill_interval", "12", "--drill_mqtt_topic", "a/b", "--drill_message", "S"),
     "--drill_mqtt_topic needs --mqtt_host"),
    (("--drill_interval", "12", "--drill_intake", "--drill_message", "S"),
     "--drill_intake needs the HTTP intake"),
    (("--drill_interval", "12", "--drill_topic", "d", "--drill_message", "/no/such/file"),
     "--drill_message /no/such/file: No such file or directory"),
])
def test_what_cannot_work_is_refused_naming_the_flag(argv: tuple[str, ...], says: str,
                                                     sample: str) -> None:
    """Each is one ConfigError (exit 2) whose text names the option."""
    argv = tuple(sample if a == "S" else a for a in argv)
    with pytest.raises(ConfigError) as caught:
        config_of("daemon", *KAFKA, *argv)
    assert says in str(caught.value) and caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(("extra", "says"), [
    (("--mqtt_version", "3.1.1"), "--drill_mqtt_topic needs MQTT 5"),
    (("--mqtt_shared_group", "g"), "cannot work with --mqtt_shared_group"),
    (("-r", "plant/+"), "is a heartbeat topic"),
])
def test_mqtt_drills_need_mqtt_5_and_no_shared_group(extra: tuple[str, ...], says: str,
                                                     sample: str) -> None:
    """MQTT 3.1.1 has no user property to mark the drill; a shared group may hand it to
    another daemon; a heartbeat filter would read it as a ping."""
    with pytest.raises(ConfigError, match=says):
        config_of("daemon", *MQTT, *extra, "--drill_interval", "12", "--drill_mqtt_topic",
                  "plant/drill", "--drill_message", sample)
    with pytest.raises(ConfigError, match="no wildcards"):
        config_of("daemon", *MQTT, "--drill_interval", "12", "--drill_mqtt_topic", "plant/#",
                  "--drill_message", sample)


def test_an_intake_drill_needs_a_sample_with_its_integration_key(tmp_path: Path) -> None:
    """The intake takes ilert events: a raw message as sample is refused for it."""
    raw = tmp_path / "raw.json"
    raw.write_text('{"type": "ALARM"}')
    with pytest.raises(ConfigError, match="has no integrationKey"):
        config_of("daemon", "-p", "8977", "--drill_interval", "12", "--drill_intake",
                  "--drill_message", str(raw))


def test_a_misconfigured_drill_is_one_line_and_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    """From the command line: one line on stderr, exit 2 (for daemon and drill alike)."""
    for command in ("daemon", "drill"):
        assert main([command, *KAFKA, "--drill_interval", "5", "--drill_topic", "d"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--drill_interval 5 is too short" in err
    assert main(["drill", *KAFKA]) == 2
    assert "fire drills need a source to drill" in capsys.readouterr().err


def test_ilagent_drill_needs_no_interval_and_waits_30_s_by_default(sample: str) -> None:
    """One drill now: --drill_interval is not needed, the deadline is 30 s unless given."""
    argv = ["drill", *KAFKA, "--drill_topic", "alarms", "--drill_message", sample]
    parser = build_parser()
    args = parser.parse_args(argv)
    config = daemon_config(args, resolve_options(parser, args, argv, environ={}))
    assert config.drill is not None and config.drill.once
    assert (config.drill.interval, config.drill.timeout) == (0.0, 30.0)
