"""The package layout holds: commands that need no Kafka never load librdkafka; modules stay small.

The import layers themselves are pinned by import-linter (``[tool.importlinter]`` in
pyproject.toml, run by ``make test``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ilagent"
MAX_LINES = 400

# runs the command in-process, then reports at exit whether librdkafka was loaded
PROBE = """
import atexit, sys
atexit.register(lambda: print("KAFKA LOADED" if "confluent_kafka" in sys.modules
                              else "KAFKA NOT LOADED", file=sys.stderr))
from ilagent.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_probe(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_importing_config_and_cli_leaves_librdkafka_and_paho_out() -> None:
    """`import ilagent.config, ilagent.cli` imports neither confluent_kafka nor paho."""
    code = ("import sys, ilagent.config, ilagent.cli; "
            "print('confluent_kafka' in sys.modules, 'paho' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "False False"


@pytest.mark.parametrize("args", [
    ("queue", "list"),
    ("map", "--event_key", "il1api123", "--check"),
    ("event", "-k", "il1api123", "-t", "ALERT", "-s", "x", "--retries", "0",
     "--ilert_api_url", "http://127.0.0.1:9/api", "--ilert_timeout", "2"),
    ("heartbeat", "-k", "il1hbt123", "--retries", "0",
     "--ilert_api_url", "http://127.0.0.1:9/api", "--ilert_timeout", "2"),
])
def test_commands_without_kafka_never_load_librdkafka(args: tuple[str, ...],
                                                      tmp_path: Path) -> None:
    """queue, map, event and heartbeat run (whatever their verdict) without confluent_kafka."""
    spool = tmp_path / "spool.db3"
    if args[0] == "queue":
        args = (*args, "-f", str(spool))
        from ilagent.spool.db import QueueDB

        QueueDB(str(spool)).close()
    result = run_probe(*args, stdin='{"summary": "x", "eventType": "ALERT"}\n')
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith("KAFKA NOT LOADED"), result.stderr


def test_the_daemon_command_loads_librdkafka_only_for_kafka() -> None:
    """The probe itself can tell: building a Kafka bridge does load confluent_kafka."""
    code = ("import sys; import ilagent.kafka.bridge; "
            "print('confluent_kafka' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "True"


def test_no_module_over_400_lines() -> None:
    """Every module of the package (the sandbox's static web files aside) is ≤ 400 lines."""
    sizes = {str(path.relative_to(SRC)): len(path.read_text(encoding="utf-8").splitlines())
             for path in SRC.rglob("*.py")}
    assert sizes, "no modules found"
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def imports_of_the_package() -> dict[str, set[str]]:
    """Module → the package's modules it imports (type-only imports included)."""
    modules: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                          for alias in node.names}
        # a package that imports its own submodules is not in a circle with them
        graph[name] = {m for m in found if m in modules and m != name
                       and not (path.name == "__init__.py" and m.startswith(name + "."))}
    return graph


def test_no_import_circle_in_the_package() -> None:
    """No module of ilagent imports, directly or through others, a module that imports it."""
    graph = imports_of_the_package()
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" -> ".join([*trail, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert circles == []
