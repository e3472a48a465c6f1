"""The command line as a tired person meets it: each mistake gets its exit code and one clear
first line, never a traceback (the real command, in a subprocess)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import Sandbox, http, status_or_none, unique, wait_until

ILAGENT = [sys.executable, "-m", "ilagent"]


def run(*args: str, stdin: str = "", cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ILAGENT, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False, cwd=cwd,
                          env={**os.environ, **env} if env is not None else None)


def busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


CASES = [
    # (id, argv, stdin, exit code, first line of stderr, or of stdout when it starts with >)
    ("filter_val alone", ["daemon", "--kafka_brokers", "k:1", "-e", "t", "--filter_val", "ALARM"],
     "", 2,
     "ilagent daemon: error: --filter_val needs --filter_key (the key whose value it compares)"),
    # 4: the mapping flags work on consumed messages only; the intake takes events as they are
    ("event_key with the intake alone", ["daemon", "-p", "1", "--event_key", "il1api123"], "", 2,
     "ilagent daemon: error: --event_key needs --kafka_brokers or --mqtt_host (mapping and "
     "filtering apply to consumed messages; the HTTP intake takes ilert events as they are)"),
    ("filter with the intake alone", ["daemon", "-p", "1", "--filter_key", "type",
                                      "--filter_val", "ALARM"], "", 2,
     "ilagent daemon: error: --filter_key needs --kafka_brokers or --mqtt_host (mapping and "
     "filtering apply to consumed messages; the HTTP intake takes ilert events as they are)"),
    ("map flag with a heartbeat alone", ["daemon", "-b", "il1hbt123", "--map_key_etype", "s"],
     "", 2,
     "ilagent daemon: error: --map_key_etype needs --kafka_brokers or --mqtt_host (mapping and "
     "filtering apply to consumed messages; the HTTP intake takes ilert events as they are)"),
    # 7: SASL without a mechanism, a mechanism without SASL
    ("sasl without mechanism", ["daemon", "--kafka_brokers", "k:1", "-e", "t",
                                "--kafka_security_protocol", "sasl_ssl"], "", 2,
     "ilagent daemon: error: --kafka_security_protocol SASL_SSL needs --kafka_sasl_mechanism "
     "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER; librdkafka would try GSSAPI)"),
    ("mechanism without sasl", ["daemon", "--kafka_brokers", "k:1", "-e", "t",
                                "--kafka_sasl_mechanism", "PLAIN"], "", 2,
     "ilagent daemon: error: --kafka_sasl_mechanism PLAIN needs --kafka_security_protocol "
     "SASL_SSL or SASL_PLAINTEXT (the protocol is PLAINTEXT, which never authenticates)"),
    # 9: the default QoS is not something the user typed
    ("mqtt default qos unbuffered", ["daemon", "-m", "localhost", "-e", "a/b"], "", 2,
     "ilagent daemon: error: MQTT's default QoS 0 needs --mqtt_buffer: a QoS 0 message is never "
     "acknowledged, so nothing could hold it back while ilert fails; give --mqtt_qos 1 (at "
     "least once), or --mqtt_buffer to queue it"),
    ("mqtt connect timeout without host", ["daemon", "-p", "1", "--mqtt_connect_timeout", "5"],
     "", 2,
     "ilagent daemon: error: --mqtt_connect_timeout needs --mqtt_host (without it nothing is "
     "received from MQTT)"),
    # 15
    ("retry delays upside down", ["daemon", "-p", "1", "--retry_initial_delay", "100",
                                  "--retry_max_delay", "1"], "", 2,
     "ilagent daemon: error: --retry_max_delay 1 is less than --retry_initial_delay 100: the "
     "largest retry delay cannot be below the first"),
    ("queue -f before the action", ["queue", "-f", "/nonexistent/x.db3", "list"], "", 1,
     "ilagent queue list: error: there is no queue file /nonexistent/x.db3 (the daemon's -f "
     "file; default ./ilagent.db3)"),
    # found on the new-user path
    ("event alert without summary", ["event", "-k", "il1api123", "-t", "alert"], "", 2,
     "ilagent event: error: an ALERT needs a summary: give -s/--summary"),
    ("map --check on nothing", ["map", "--event_key", "il1api123", "--check"], "\n", 1,
     "ilagent map: error: no message to check: the input (stdin) holds none"),
    ("unknown option names the command", ["daemon", "-p", "1", "--kafka_broker", "k:1"], "", 2,
     "ilagent daemon: error: unrecognized arguments: --kafka_broker k:1 (did you mean "
     "--kafka_brokers?) (see --help)"),
    ("unknown option of an action", ["queue", "list", "--dead"], "", 2,
     "ilagent queue list: error: unrecognized arguments: --dead (see --help)"),
    ("option of an action before it", ["queue", "--json", "list"], "", 2,
     "ilagent queue list: error: unrecognized arguments: --json (it goes after the action: "
     "ilagent queue list --json) (see --help)"),
    ("option where the action goes", ["config", "--config", "ilagent.toml"], "", 2,
     "ilagent config: error: argument ACTION: invalid choice: 'ilagent.toml' (choose from "
     "'show'); the action comes first, then its options: ilagent config ACTION [options] "
     "(see --help)"),
    ("a wrong action has no such hint", ["-v", "config", "print"], "", 2,
     "ilagent config: error: argument ACTION: invalid choice: 'print' (choose from 'show') "
     "(see --help)"),
    ("option before the command", ["--kafka_brokers", "k:1", "daemon"], "", 2,
     "ilagent: error: argument COMMAND: invalid choice: 'k:1' (choose from 'daemon', 'event', "
     "'heartbeat', 'queue', 'map', 'sandbox', 'config', 'drill', 'replay', 'trace'); the "
     "command comes first, then its options: ilagent COMMAND [options] (see --help)"),
    ("a wrong command has no such hint", ["-v", "dameon"], "", 2,
     "ilagent: error: argument COMMAND: invalid choice: 'dameon' (choose from 'daemon', "
     "'event', 'heartbeat', 'queue', 'map', 'sandbox', 'config', 'drill', 'replay', 'trace') "
     "(see --help)"),
    # 17: ilert's guide says -m for a broker container; in ilagent -m is MQTT
    ("kafka with -m and no MQTT intent", ["daemon", "--kafka_brokers", "localhost:9092", "-e",
                                          "t", "-m", "kafka"], "", 2,
     "ilagent daemon: error: -m/--mqtt_host is the MQTT broker, and nothing else here asks for "
     "MQTT: to reach a Kafka broker in another container put its name into --kafka_brokers "
     "(--kafka_brokers kafka:9092); to consume MQTT as well, add --mqtt_qos 1"),
    # 18: kcat's short flags
    ("-b with a broker address", ["daemon", "-b", "kafka:9092", "-e", "t"], "", 2,
     "ilagent daemon: error: -b/--heartbeat is the daemon's own ilert heartbeat key, and its "
     "value looks like a Kafka broker (host:port): give it as --kafka_brokers"),
    ("-g group", ["daemon", "--kafka_brokers", "k:1", "-e", "t", "-g", "grp"], "", 2,
     "ilagent daemon: error: unrecognized arguments: -g grp (did you mean --kafka_group_id?) "
     "(see --help)"),
    ("-t topic", ["daemon", "--kafka_brokers", "k:1", "-t", "alarms"], "", 2,
     "ilagent daemon: error: unrecognized arguments: -t alarms (did you mean -e/--event_topic?) "
     "(see --help)"),
    ("topic without brokers", ["daemon", "-e", "topic"], "", 2,
     "ilagent daemon: error: --event_topic needs --kafka_brokers or --mqtt_host (without them no "
     "topic is read)"),
    ("mqtt option without host", ["daemon", "-p", "1", "--mqtt_qos", "1"], "", 2,
     "ilagent daemon: error: --mqtt_qos needs --mqtt_host (without it nothing is received from "
     "MQTT)"),
    ("mqtt qos 0 unbuffered", ["daemon", "-m", "localhost", "-e", "a/b", "--mqtt_qos", "0"], "",
     2,
     "ilagent daemon: error: --mqtt_qos 0 needs --mqtt_buffer: a QoS 0 message is never "
     "acknowledged, so nothing could hold it back while ilert fails; use --mqtt_qos 1 (at least "
     "once), or --mqtt_buffer to queue it"),
    ("mqtt without topic", ["daemon", "-m", "localhost", "--mqtt_qos", "1"], "", 2,
     "ilagent daemon: error: --mqtt_host needs at least one topic: --event_topic, "
     "--heartbeat_topic or --policy_topic"),
    ("mqtt bad wildcard", ["daemon", "-m", "h", "--mqtt_qos", "1", "-e", "a/b#"], "", 2,
     "ilagent daemon: error: topic 'a/b#' cannot be used: '#' must be a whole level and the "
     "last one"),
    ("mqtt and kafka topic", ["daemon", "-m", "h", "--mqtt_qos", "1", "--kafka_brokers", "k:1",
                              "-e", "ilert/events"], "", 2,
     "ilagent daemon: error: topic 'ilert/events' cannot be used: topics apply to Kafka and MQTT "
     "alike, and Kafka topic names are letters, digits, '.', '_' and '-'"),
    ("mqtt user without password", ["daemon", "-m", "h", "--mqtt_qos", "1", "-e", "t",
                                    "--mqtt_username", "u"], "", 2,
     "ilagent daemon: error: --mqtt_username needs --mqtt_password"),
    ("mqtt ca without tls", ["daemon", "-m", "h", "--mqtt_qos", "1", "-e", "t", "--mqtt_ca",
                             "ca.pem"], "", 2,
     "ilagent daemon: error: --mqtt_ca needs --mqtt_tls"),
    ("policy without api key", ["daemon", "--kafka_brokers", "k:1", "--policy_topic", "shifts",
                                "--policy_routing_keys", "site"], "", 2,
     "ilagent daemon: error: --policy_topic needs ILERT_API_KEY: an ilert user API key that may "
     "edit escalation policies (or --ilert_api_key)"),
    ("policy without routing keys", ["daemon", "--kafka_brokers", "k:1", "--policy_topic",
                                     "shifts"], "", 2,
     "ilagent daemon: error: --policy_topic needs --policy_routing_keys: the payload fields that "
     "name the escalation policy (ilagent 0.9 drops every message without them)"),
    ("policy option without topic", ["daemon", "--kafka_brokers", "k:1", "-e", "t",
                                     "--shift_offset", "-1"], "", 2,
     "ilagent daemon: error: --shift_offset needs --policy_topic (without it no policy message "
     "is read)"),
    ("mqtt host with port", ["daemon", "-m", "broker:8883", "--mqtt_qos", "1", "-e", "t"], "", 2,
     "ilagent daemon: error: --mqtt_host takes a host name: give -m broker -q 8883"),
    ("mqtt qos 3", ["daemon", "-m", "h", "--mqtt_qos", "3", "-e", "t"], "", 2,
     "ilagent daemon: error: argument --mqtt_qos/--mqtt-qos: invalid choice: 3 (choose from 0, "
     "1, 2) (see --help)"),
    ("kafka_config without brokers", ["daemon", "-p", "1", "--kafka_config", "a=b"], "", 2,
     "ilagent daemon: error: --kafka_config needs --kafka_brokers (without it nothing is "
     "consumed from Kafka)"),
    ("event URL without scheme", ["event", "-k", "il1api123", "-t", "alert", "-s", "x",
                                  "--ilert_api_url", "127.0.0.1:19010/api"], "", 2,
     "ilagent event: error: --ilert_api_url must be an http:// or https:// URL, got "
     "'127.0.0.1:19010/api'"),
    ("timeout 0", ["event", "-k", "k", "-t", "ALERT", "-s", "x", "--ilert_timeout", "0"], "", 2,
     "ilagent event: error: argument --ilert_timeout/--ilert-timeout: '0' must be more than 0 "
     "(see --help)"),
    ("max body 0", ["daemon", "-p", "1", "--http_max_body", "0"], "", 2,
     "ilagent daemon: error: argument --http_max_body/--http-max-body: '0' must be at least 1 "
     "(see --help)"),
    ("allow list not an address", ["daemon", "-p", "1", "--http_allow", "10.0.0.300/8"], "", 2,
     "ilagent daemon: error: argument --http_allow/--http-allow: '10.0.0.300/8' is not an "
     "address or a CIDR network (e.g. 192.0.2.7, 10.0.0.0/8, ::1) (see --help)"),
    ("allow list with host bits", ["daemon", "-p", "1", "--http_allow", "10.0.0.0/8",
                                         "--http_allow", "fe80::/10,10.1.2.3/16"], "", 2,
     "ilagent daemon: error: argument --http_allow/--http-allow: '10.1.2.3/16' has host bits "
     "set: did you mean 10.1.0.0/16? (see --help)"),
    ("token file missing", ["daemon", "-p", "1", "--http_token_file", "/no/such/tokens"], "", 2,
     "ilagent daemon: error: --http_token_file /no/such/tokens: No such file or directory"),
    ("in flight 0", ["daemon", "-p", "1", "--max_in_flight", "0"], "", 2,
     "ilagent daemon: error: argument --max_in_flight/--max-in-flight: '0' must be at least 1 "
     "(see --help)"),
    ("sandbox -p", ["sandbox", "-p", "none"], "", 2,
     "ilagent sandbox: error: argument -p/--port: 'none' is not a whole number (see --help)"),
    ("map typo in a path", ["map", "--event_key", "il1api123", "--map_key_etype", "State",
                            "--check"], '{"state": "CLR", "summary": "x"}\n', 1,
     '>{"line": 1, "result": "event", "url": "https://api.ilert.com/api/v1/events/kafka/'
     'il1api123", "event": {"integrationKey": "il1api123", "eventType": "ALERT", "summary": '
     '"x", "customDetails": {"messageKey": "", "topic": "test-topic"}}, "warnings": '
     '["--map_key_etype \'State\' is not in the message"]}'),
    ("bare ilagent", [], "", 2, "usage: ilagent [-h] [-V] [-v] [-f FILE] [--config FILE] "
                                "COMMAND ..."),
]


@pytest.mark.parametrize(("argv", "stdin", "code", "first"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_mistake_gets_its_exit_code_and_one_clear_line(argv: list[str], stdin: str, code: int,
                                                         first: str) -> None:
    """Exit code and the exact first line; never a traceback."""
    done = run(*argv, stdin=stdin)
    stream = done.stdout if first.startswith(">") else done.stderr
    assert done.returncode == code, done.stderr
    assert stream.splitlines()[0] == first.removeprefix(">")
    assert "Traceback" not in done.stderr + done.stdout


def test_map_reads_its_messages_from_a_file_argument(tmp_path: Path) -> None:
    """map FILE (and --file FILE) read the file; -f is the spool file, as everywhere."""
    messages = tmp_path / "msgs.jsonl"
    messages.write_text('{"eventType": "ALERT", "summary": "s", "integrationKey": "il1apiX1"}\n')
    for argv in (["map", str(messages)], ["map", "--file", str(messages)],
                 ["map", "-f", str(tmp_path / "spool.db3"), str(messages)]):
        done = run(*argv)
        assert done.returncode == 0 and json.loads(done.stdout)["result"] == "event", argv


@pytest.mark.parametrize("db", ["/proc/ilagent/x.db", "notdb.txt"])
def test_a_sandbox_database_that_cannot_be_used_is_one_line(tmp_path: Path, db: str) -> None:
    """A --db in an unwritable place, or a file that is not SQLite: exit 1, one line."""
    (tmp_path / "notdb.txt").write_text("just text, not a database\n" * 50)
    sock, port = busy_port()
    sock.close()
    done = run("sandbox", "-p", str(port), "--db", db, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ilagent sandbox: error: cannot use --db {db}: ")


def test_a_port_in_use_is_one_line_without_asyncio_noise(tmp_path: Path) -> None:
    """The daemon's HTTP port taken: exit 2 (as the sandbox's), one line, no "Unclosed client
    session"."""
    sock, port = busy_port()
    with sock:
        done = run("daemon", "-p", str(port), "--http_host", "127.0.0.1", "-f",
                   str(tmp_path / "q.db3"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ilagent daemon: error: cannot listen on 127.0.0.1:{port}")


def spool_with_dead_letters(path: Path) -> None:
    from ilagent.spool.db import QueueDB

    db = QueueDB(str(path))
    with db.transaction():
        db.insert(integration_key="il1apiCTRL", path="/events", received_at=1.0,
                  event=json.dumps({"summary": "\u001b[31mred\u001b[0m", "eventType": "ALERT"}))
        row = db.insert(integration_key="k", path="/events", event="{}", received_at=1.5)
    for n in range(30):
        with db.transaction():
            db.insert(integration_key="k", path="/events", event="{}", received_at=2.0 + n)
    with db.transaction():
        db.dead_letter(row, reason="rejected", status=400, detail="\u0007bell", attempts=1,
                       now=3.0)
    db.close()


def test_queue_list_escapes_control_characters_and_survives_a_closed_pipe(tmp_path: Path) -> None:
    """A summary with terminal escapes prints escaped; `| head -3` ends without a traceback;
    purge takes dead-letters with a dash."""
    spool = tmp_path / "q.db3"
    spool_with_dead_letters(spool)
    listing = run("queue", "list", "-f", str(spool))
    assert "\x1b" not in listing.stdout and "\x07" not in listing.stdout
    assert "\\x1b[31mred" in listing.stdout and "\\x07bell" in listing.stdout
    piped = subprocess.run(f"{sys.executable} -m ilagent queue list --json -f {spool} | head -3",
                           shell=True, capture_output=True, text=True, timeout=60, check=False)
    assert len(piped.stdout.splitlines()) == 3 and "Traceback" not in piped.stderr
    purged = run("queue", "purge", "dead-letters", "--yes", "-f", str(spool))
    assert purged.returncode == 0 and purged.stdout.startswith("deleted 1 row(s) of dead_letters")


def test_event_without_an_alert_key_prints_the_one_it_made(sandbox: Sandbox) -> None:
    """ALERT without -i: a key is made, sent and printed, so the alert can be resolved."""
    key = unique("il1api")
    done = run("event", "-k", key, "-t", "alert", "-s", "door open", "-o", "high",
               "--ilert_api_url", sandbox.api_url)
    assert done.returncode == 0, done.stderr
    made = re.search(r"alert key (ilagent-[0-9a-f]+)", done.stdout)
    assert made is not None, done.stdout
    assert sandbox.bodies(key)[0]["alertKey"] == made.group(1)
    resolved = run("event", "-k", key, "-t", "resolve", "-i", made.group(1),
                   "--ilert_api_url", sandbox.api_url)
    assert resolved.returncode == 0 and [a["status"] for a in sandbox.alerts()] == ["RESOLVED"]


def test_an_unreachable_ilert_names_the_timeout_and_the_attempts() -> None:
    """Nothing listening: the reason says ilert was not reached, within how long, how often."""
    sock, port = busy_port()
    sock.close()
    done = run("heartbeat", "-k", "il1hbtX1234", "--retries", "1", "--ilert_api_url",
               f"http://127.0.0.1:{port}/api", "--ilert_timeout", "2")
    assert done.returncode == 1
    assert done.stderr.startswith("ilagent heartbeat: error: heartbeat ping not delivered after "
                                  "2 attempts, ilert could not be reached (no answer within 2 s")


def test_unknown_routes_and_bad_tokens_answer_json(run_ilagent: Any, tmp_path: Path,
                                                   sandbox: Sandbox) -> None:
    """An unknown path is a JSON 404; an Authorization header that is not UTF-8 is a 401."""
    import broker

    token, port = unique("tok"), broker.free_port()
    run_ilagent("daemon", "-p", str(port), "--http_host", "127.0.0.1", "-f",
                str(tmp_path / "q.db3"), "--http_token", token)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: status_or_none("GET", f"{base}/health") == 204, timeout=30,
               what="the daemon to serve HTTP")
    status, body = http("GET", f"{base}/no/such/route",
                        headers={"Authorization": f"Bearer {token}"})
    assert status == 404 and body["status"] == 404 and body["code"]
    for source in ("%2e%2e", "Upper", "a" * 65):
        status, body = http("POST", f"{base}/api/v1/events/{source}/il1apiX1",
                            {"eventType": "ALERT", "summary": "s"},
                            headers={"Authorization": f"Bearer {token}"})
        assert status == 400 and body["code"] == "INVALID_FIELD", (source, body)
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
                     b"Connection: close\r\n\r\n")
        answer = conn.recv(200).decode("latin-1")
    assert answer.startswith("HTTP/1.1 401"), answer


def test_every_option_has_help_and_no_placeholder_is_left() -> None:
    """ilagent --help and each command's: help text for every option, no unformatted {…}."""
    from ilagent.cli import build_parser

    parser = build_parser()
    commands = parser.commands  # type: ignore[attr-defined]
    for name, command in [("", parser), *commands.items()]:
        for action in command._actions:
            if action.dest in ("command", "action"):  # the choice of subcommand
                continue
            assert action.help, f"ilagent {name}: {action.option_strings or action.dest}"
        text = run(*([name] if name else []), "--help").stdout
        assert not re.search(r"\{[A-Z_]+\}|%\(", text), f"ilagent {name} --help"
        if name:
            assert "example:" in text, f"ilagent {name} --help has no example"


@pytest.mark.parametrize("words", [["queue", "list"], ["queue", "retry"], ["queue", "purge"],
                                   ["config", "show"]])
def test_every_action_has_an_example(words: list[str]) -> None:
    """`queue list|retry|purge --help` and `config show --help` end with an example too."""
    text = run(*words, "--help").stdout
    assert "example: ilagent " + " ".join(words) in text


def test_help_keeps_one_ilert_section_and_one_example_per_line() -> None:
    """`daemon --help` has one "ilert:" group; example footers keep their line breaks, so two
    commands never run together on one line."""
    daemon = run("daemon", "--help").stdout
    assert daemon.count("\nilert:\n") == 1 and "--ilert_api_key" in daemon.split("\nilert:\n")[1]
    event = run("event", "--help").stdout.splitlines()
    examples = [line.strip() for line in event if "ilagent event -k" in line]
    assert len(examples) == 2 and all(line.count("ilagent event") == 1 for line in examples)
    assert examples[0].startswith("example: ilagent event -k il1api… -t ALERT -s 'Door 7 open'")


def test_an_mqtt_broker_not_reached_in_time_exits_2_when_asked_to(tmp_path: Path) -> None:
    """--mqtt_connect_timeout 1 with a host that never answers: exit 2 soon, one line naming
    the option (without it the daemon waits, as a pod waits for DNS)."""
    started = time.monotonic()
    done = run("daemon", "-m", "nosuch.invalid", "--mqtt_qos", "1", "-e", "t",
               "--mqtt_connect_timeout", "1", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert lines[-1].startswith("ilagent daemon: error: no MQTT broker could be reached within "
                                "1 s (--mqtt_connect_timeout): cannot connect"), lines
    assert time.monotonic() - started < 30 and "Traceback" not in done.stderr


def test_environment_typos_warn_and_service_links_are_ignored() -> None:
    """ILAGENT_KAFKA_BROKER (a typo) gets a WARNING naming ILAGENT_KAFKA_BROKERS; Kubernetes'
    ILAGENT_PORT=tcp://… of a Service named ilagent is no setting: no exit 2, no warning."""
    links = {"ILAGENT_PORT": "tcp://10.0.0.1:8977", "ILAGENT_SERVICE_HOST": "10.0.0.1",
             "ILAGENT_SERVICE_PORT": "8977", "ILAGENT_PORT_8977_TCP_ADDR": "10.0.0.1"}
    done = run("config", "show", "--json", env={**links, "ILAGENT_KAFKA_BROKER": "b:9092"})
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].endswith(
        "WARNING ilagent.cli: ILAGENT_KAFKA_BROKER is not an ilagent setting (did you mean "
        "ILAGENT_KAFKA_BROKERS?); ignored"), warnings
    port = [s for s in json.loads(done.stdout)["settings"] if s["name"] == "port"]
    assert port == [{"name": "port", "value": None, "source": "default"}]


def test_map_reads_a_file_that_is_not_utf8_as_stdin_does(tmp_path: Path) -> None:
    """A Windows-1252 line ("Tür offen") is invalid_json from a FILE as from stdin: no
    UnicodeDecodeError traceback; --check exits 1."""
    raw = b'{"summary": "T\xfcr offen", "integrationKey": "il1apiX1"}\n'
    messages = tmp_path / "samples.jsonl"
    messages.write_bytes(raw)
    from_file = run("map", str(messages), "--check")
    from_stdin = subprocess.run([*ILAGENT, "map", "--check"], input=raw, capture_output=True,
                                timeout=60, check=False)
    assert from_file.returncode == from_stdin.returncode == 1, from_file.stderr
    assert json.loads(from_file.stdout)["reason"] == "invalid_json"
    assert from_file.stdout == from_stdin.stdout.decode()
    assert "Traceback" not in from_file.stderr


def test_map_refuses_a_message_file_given_as_its_spool(tmp_path: Path) -> None:
    """`map … -f samples.jsonl --check` read stdin and passed: -f is the spool everywhere, so a
    file that is not SQLite is refused with a hint to give it as FILE."""
    messages = tmp_path / "samples.jsonl"
    messages.write_text('{"summary": "s", "integrationKey": "il1apiX1"}\n')
    done = run("map", "--event_key", "il1apiX1", "-f", str(messages), "--check")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"ilagent map: error: -f is the daemon's spool file, and {messages} is not SQLite: give "
        f"the messages as FILE (ilagent map … {messages})"]


def test_map_file_option_is_deprecated(tmp_path: Path) -> None:
    """map --file still reads the file, with a warning to give it as FILE."""
    messages = tmp_path / "samples.jsonl"
    messages.write_text('{"summary": "s", "integrationKey": "il1apiX1"}\n')
    done = run("map", "--file", str(messages))
    assert done.returncode == 0 and json.loads(done.stdout)["result"] == "event"
    assert "map --file is deprecated: give the messages as FILE (ilagent map … " in done.stderr


def test_map_on_a_terminal_says_it_waits_for_input() -> None:
    """With no FILE and a terminal on stdin, map says it reads the terminal; Ctrl+D ends it."""
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen([*ILAGENT, "map"], stdin=secondary, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    os.close(secondary)
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert line.startswith("ilagent map: reading messages from the terminal"), line
        os.write(primary, b"\x04")
        out, _err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and out == ""
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("argv", [["map"], ["sandbox", "-p", "{port}"],
                                  ["event", "-k", "k", "-t", "alert", "-s", "x",
                                   "--ilert_api_url", "http://127.0.0.1:9/api"],
                                  ["daemon", "-p", "{port}", "--http_host", "127.0.0.1"]],
                         ids=["map", "sandbox", "event", "daemon"])
def test_ctrl_c_in_the_first_moments_ends_quietly(argv: list[str], tmp_path: Path) -> None:
    """SIGINT at any moment of the first 0.3 s (while Python loads ilagent, too): exit 130 (the
    daemon, once it runs, stops gracefully with 0), never a KeyboardInterrupt traceback; the
    `ilagent` script as `python -m ilagent`. Before Python has set up its own handler, SIGINT
    simply ends the process (-2, which a shell shows as 130): quiet too."""
    import signal

    import broker

    script = Path(sys.executable).parent / "ilagent"
    quiet = (130, -signal.SIGINT, 0) if argv[0] == "daemon" else (130, -signal.SIGINT)
    for n, delay in enumerate((0.03, 0.06, 0.1, 0.15, 0.2, 0.3)):
        command = [str(script)] if n % 2 and script.exists() else ILAGENT
        args = [a.format(port=broker.free_port()) for a in argv]
        proc = subprocess.Popen([*command, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        assert proc.returncode in quiet, (delay, proc.returncode, err)


def test_a_one_shot_event_to_a_wrong_url_promises_no_retry_it_will_not_make(
        sandbox: Sandbox) -> None:
    """`event` at a URL that answers a bare 404: the ERROR asks about the URL and says what this
    command does (tries --retries more times, then gives up), never "kept and retried"."""
    done = run("event", "-k", "il1apiX1234", "-t", "ALERT", "-s", "x", "-i", "a", "--retries",
               "0", "--ilert_api_url", f"{sandbox.url}/nope/api")
    assert done.returncode == 1
    assert "is the API URL right" in done.stderr and "kept and retried" not in done.stderr
    assert "It is not retried (--retries 0)" in done.stderr


def test_a_mapping_value_that_is_not_utf8_is_refused() -> None:
    """`--event_key $'\\xe4'` (a Latin-1 byte from the shell): one line, exit 2, instead of a
    UnicodeEncodeError for every message (found by the property test)."""
    done = subprocess.run([*ILAGENT, "map", "--event_key", "\udce4"], input="{}\n",
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "ilagent map: error: --event_key '\\udce4' is not valid UTF-8 text"]
