"""Session fixtures: one real Kafka broker and one sandbox process for the whole run.

``KAFKA_BOOTSTRAP`` set in the environment means: use that broker instead of starting one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # Playwright is needed by the browser tests only, imported when they run
    from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "kafka"))
sys.path.insert(0, str(ROOT / "tools" / "mqtt"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import (  # noqa: E402
    DAEMON_LOGS,
    RUNS,
    SECRETS,
    DaemonProcess,
    Sandbox,
    start_sandbox,
)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[object | None]:
    """The session's broker object (None when KAFKA_BOOTSTRAP points at an external one)."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        yield None
        return
    import broker

    running = broker.start()
    try:
        yield running
    finally:
        running.destroy()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: object | None) -> str:
    """Bootstrap address of the session's Kafka broker."""
    if kafka_broker is None:
        return os.environ["KAFKA_BOOTSTRAP"]
    return str(kafka_broker.bootstrap)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def secured_kafka(kafka_broker: object | None) -> object:
    """The session broker's TLS (client certificates) and SASL_SSL (SCRAM-SHA-512) listeners,
    with the CA and client files; skipped against an external KAFKA_BOOTSTRAP broker."""
    if kafka_broker is None:
        pytest.skip("KAFKA_BOOTSTRAP points at a broker without the suite's TLS listeners")
    SECRETS.add(kafka_broker.scram_password)  # type: ignore[attr-defined]
    return kafka_broker


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The session's Mosquitto: plain, password, TLS and mutual-TLS listeners on 127.0.0.1."""
    import mosquitto as broker

    running = broker.start(tmp_path_factory.mktemp("mosquitto"))
    SECRETS.add(running.password)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    import broker

    port = broker.free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    proc = start_sandbox(port, log)
    try:
        yield Sandbox(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def sandbox(sandbox_process: Sandbox) -> Sandbox:
    """The session's sandbox, reset (no alerts, events or faults) for this test."""
    sandbox_process.reset()
    return sandbox_process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secrets check reads what every other test left behind: it runs last."""
    items.sort(key=lambda item: item.path.name == "test_no_secrets_leaked.py")


@pytest.fixture
def run_ilagent(tmp_path: Path, sandbox: Sandbox) -> Iterator[
        type[DaemonProcess] | object]:
    """Start ``ilagent`` processes pointed at the sandbox; all are stopped after the test."""
    started: list[DaemonProcess] = []
    counter = iter(range(1000))

    def start(*args: str, env: dict[str, str] | None = None,
              preexec_fn: Callable[[], object] | None = None) -> DaemonProcess:
        log = tmp_path / f"ilagent-{next(counter)}.log"
        DAEMON_LOGS.append(log)
        process = DaemonProcess(args, log=log, env={
            "ILERT_API_URL": sandbox.api_url, "ILERT_BEAT_URL": sandbox.api_url,
            **(env or {})}, preexec_fn=preexec_fn)
        RUNS.append(process)
        started.append(process.start())
        return process

    yield start
    for process in started:
        if process.alive():
            process.kill()
        if process.proc is not None:
            process.proc.wait(10)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser_page() -> AsyncIterator[Page]:
    """A fresh page of headless Chromium; fails the test if the page raised a JS error."""
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
        finally:
            await browser.close()
    assert not errors, f"the page raised JavaScript errors: {errors}"
