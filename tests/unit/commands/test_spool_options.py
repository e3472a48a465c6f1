"""--spool kafka:TOPIC | sqlite:PATH and --spool_produce_timeout: read once into the config,
refused with one line (exit 2) when they cannot work."""

from __future__ import annotations

import pytest

from ilagent.cli import build_parser, main, resolve_options
from ilagent.commands.daemon import daemon_config
from ilagent.config import DEFAULT_DB_FILE, DEFAULT_SPOOL_PRODUCE_TIMEOUT, DaemonConfig
from ilagent.errors import EXIT_USAGE, ConfigError

BROKERS = ("--kafka_brokers", "localhost:9092")


def config_of(*argv: str) -> DaemonConfig:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    sources = resolve_options(parser, args, list(argv), environ={})
    return daemon_config(args, sources)


def test_without_spool_the_sqlite_file_is_the_spool() -> None:
    """The default stays as it was: the SQLite file -f (or ./ilagent.db3), no spool topic."""
    config = config_of("daemon", "-p", "1")
    assert config.db_file == DEFAULT_DB_FILE and config.kafka is None
    assert config.spool_produce_timeout == DEFAULT_SPOOL_PRODUCE_TIMEOUT


def test_spool_sqlite_path_is_the_same_as_f() -> None:
    """--spool sqlite:PATH names the spool file exactly as -f PATH does."""
    assert (config_of("daemon", "-p", "1", "--spool", "sqlite:/tmp/q.db3").db_file
            == config_of("daemon", "-p", "1", "-f", "/tmp/q.db3").db_file == "/tmp/q.db3")


def test_spool_kafka_needs_brokers_but_no_event_topic() -> None:
    """kafka:TOPIC is consumed by the group as the spool topic; -e is not needed."""
    config = config_of("daemon", "-p", "1", *BROKERS, "--spool", "kafka:intake-spool",
                       "--spool_produce_timeout", "2.5")
    assert config.kafka is not None and config.kafka.event_topics == ()
    assert config.kafka.spool_topic == "intake-spool"
    assert config.kafka.topics == ("intake-spool",)
    assert config.spool_produce_timeout == 2.5
    assert config.journal is None  # no spool file to keep it beside


@pytest.mark.parametrize(("argv", "says"), [
    (("-p", "1", "--spool", "sqlite:a.db3", "-f", "b.db3"), "--spool and -f both name"),
    (("-p", "1", "--spool", "kafka:t"), "needs --kafka_brokers"),
    (("-p", "1", "--spool", "redis:t"), "give kafka:TOPIC or sqlite:PATH"),
    (("-p", "1", "--spool", "kafka:"), "give kafka:TOPIC or sqlite:PATH"),
    (("--intake", "off", "-p", "1", *BROKERS, "--spool", "kafka:t"), "needs what it spools"),
])
def test_a_spool_that_cannot_work_is_a_config_error(argv: tuple[str, ...], says: str) -> None:
    """Each refusal names what is wrong; ConfigError is exit 2."""
    with pytest.raises(ConfigError) as refused:
        config_of("daemon", *argv)
    assert refused.value.exit_code == EXIT_USAGE
    assert says in str(refused.value)


def test_spool_with_f_on_the_command_line_is_one_line_and_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The real command: one line on stderr, exit 2."""
    assert main(["daemon", "-p", "1", "-f", "x.db3", "--spool", "sqlite:x.db3"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--spool and -f" in err, err


def test_a_bad_produce_timeout_is_refused_by_the_parser(
        capsys: pytest.CaptureFixture[str]) -> None:
    """0 or a negative number of seconds has no meaning: argparse's one line, exit 2."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["daemon", "-p", "1", "--spool_produce_timeout", "0"])
    assert exited.value.code == EXIT_USAGE
    assert "--spool_produce_timeout" in capsys.readouterr().err


def test_spool_kafka_keeps_the_mqtt_buffer_without_an_intake() -> None:
    """--mqtt_buffer on a Kafka spool: MQTT's buffered messages go to the topic; no file."""
    config = config_of("daemon", "-m", "h", "-e", "t", "--mqtt_buffer", *BROKERS,
                       "--spool", "kafka:mqtt-spool")
    assert config.mqtt is not None and config.mqtt.buffer
    assert config.kafka is not None and config.kafka.spool_topic == "mqtt-spool"
    assert config.http is None and config.journal is None
