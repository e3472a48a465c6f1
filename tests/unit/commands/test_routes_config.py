"""[[route]] in the config file: what the daemon consumes, what it refuses, what SIGHUP reloads."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from ilagent.cli import build_parser
from ilagent.commands.common import routes_of
from ilagent.commands.daemon import daemon_config
from ilagent.commands.sources import Sources, resolve, settable
from ilagent.errors import ConfigError
from ilagent.mapping.routes import Route
from ilagent.reload import reload_routes

ROUTES = """
[[route]]
name = "line3"
kafka_topics = ["plant.line3"]
integration_key = "il1apiline3key000000001"
summary = "Line 3: {{ payload.text }}"

[[route]]
name = "press"
mqtt_topics = ["factory/press/#"]
integration_key = "il1apipresskey00000001"
"""


def parse(argv: list[str]) -> tuple[object, Sources]:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = parser.commands  # type: ignore[attr-defined]
    known = {n for p in (parser, *commands.values()) for n in settable(p)} | {"kafka_config"}
    sources = resolve(args, [(parser, None), (commands[args.command], None)], argv,
                      known=known, environ={})
    return args, sources


def config_file(tmp_path: Path, text: str = ROUTES) -> Path:
    path = tmp_path / "ilagent.toml"
    path.write_text(text)
    return path


def test_the_routes_topics_are_consumed_besides_the_flags(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    args, sources = parse(["--config", str(path), "daemon", "--kafka_brokers", "k:9092", "-e", "other",
                           "-m", "mq", "--mqtt_qos", "1"])
    routes = routes_of(args, sources)
    config = daemon_config(args, sources, routes)
    assert [r.name for r in routes] == ["line3", "press"]
    assert config.kafka is not None and config.kafka.event_topics == ("other", "plant.line3")
    assert config.mqtt is not None and config.mqtt.event_topics == ("other", "factory/press/#")
    assert config.config_file == str(path)


@pytest.mark.parametrize("flag", [["--map_key_alert_key", "id"], ["--filter_key", "type"],
                                  ["--forward_message_payload"]])
def test_routes_and_mapping_flags_together_are_a_usage_error(tmp_path: Path,
                                                             flag: list[str]) -> None:
    args, sources = parse(["--config", str(config_file(tmp_path)), "daemon", "--kafka_brokers", "k:9092",
                           *flag])
    with pytest.raises(ConfigError, match="both say how to map"):
        routes_of(args, sources)


def test_a_route_reading_a_source_that_is_not_configured_is_refused(tmp_path: Path) -> None:
    args, sources = parse(["--config", str(config_file(tmp_path)), "daemon",
                           "--kafka_brokers", "k:9092"])
    with pytest.raises(ConfigError, match=r"reads MQTT topics .* no --mqtt_host"):
        daemon_config(args, sources, routes_of(args, sources))


def test_the_command_line_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = config_file(tmp_path, ROUTES + '\n[[route]]\nname = "x"\nsummary = "{{ oops"\n')
    done = subprocess.run([sys.executable, "-m", "ilagent", "--config", str(path), "daemon",
                           "--kafka_brokers", "127.0.0.1:1", "-m", "127.0.0.1", "--mqtt_qos", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "route 3 (x): summary: template error" in done.stderr
    assert "il1apiline3key000000001" not in done.stderr + done.stdout


class Source:
    """Stands in for a bridge: all SIGHUP needs of one is where its routes are."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes


def test_sighup_swaps_valid_routes_and_keeps_the_running_ones_otherwise(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = config_file(tmp_path)
    args, sources = parse(["--config", str(path), "daemon", "--kafka_brokers", "k:9092"])
    running = routes_of(args, sources)
    bridge = Source(running)
    topics = {"kafka_topics": ("plant.line3",), "mqtt_topics": ("factory/press/#",)}
    caplog.set_level(logging.INFO, logger="ilagent.reload")

    for broken, said in [
        (ROUTES.replace('summary = "Line 3', 'summary = "{{ Line 3'), "template error"),
        (ROUTES + "[[route\n", "not valid TOML"),
        ("kafka_brokers = 'k:9092'\n", "no [[route]] any more"),
        (ROUTES.replace('"plant.line3"', '"plant.line4"'), "'plant.line4', which the daemon"),
        (ROUTES.replace("factory/press/#", "factory/other/#"), "'factory/other/#'"),
    ]:
        caplog.clear()
        path.write_text(broken)
        assert not reload_routes(str(path), [bridge], **topics)
        assert bridge.routes is running
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and said in errors[0].getMessage()
        assert "the running routes stay" in errors[0].getMessage()

    path.write_text(ROUTES.replace("Line 3:", "Line three:")
                    .replace("factory/press/#", "factory/press/+"))
    assert reload_routes(str(path), [bridge], **topics)
    assert bridge.routes is not running
    assert bridge.routes[0].texts["summary"].source == "Line three: {{ payload.text }}"


def test_config_show_lists_the_routes_with_their_keys_masked(tmp_path: Path) -> None:
    path = config_file(tmp_path, 'kafka_brokers = "k:9092"\n' + ROUTES)
    done = subprocess.run([sys.executable, "-m", "ilagent", "--config", str(path), "config",
                           "show"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "line3: plant.line3; every message; to *******************0001" in done.stdout
    assert "press: factory/press/#; every message; to" in done.stdout
    assert "il1apiline3key000000001" not in done.stdout + done.stderr


@pytest.mark.parametrize(("text", "hint"), [
    ('[[routes]]\nname = "x"\n', "unknown setting 'routes' (did you mean [[route]]?)"),
    ('kafka_broker = "x"\n', "unknown setting 'kafka_broker' (did you mean kafka_brokers?)"),
])
def test_a_misspelt_table_or_key_names_the_right_one(tmp_path: Path, text: str,
                                                      hint: str) -> None:
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        parse(["--config", str(path), "daemon", "--kafka_brokers", "k:9092"])
    assert str(caught.value) == f"{path}: {hint}"
