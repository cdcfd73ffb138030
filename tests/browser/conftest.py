"""A real browser for page tests: Playwright driving Debian's ``chromium`` (never Playwright's own build).

When no Chromium is installed, the session tries ``apt-get install chromium`` once (as root, where
apt exists). A machine without one skips the browser tests with the reason, except in CI
(``AGENTFLOW_REQUIRE_SERVICES=1``), where they are required and fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.integration.servers import ServerProcess
from tests.standins import StandinServer

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
INSTALL_TIMEOUT = 900
#: Set to 1 (``make screenshots``) to refresh the README's images under docs/img/ (not AGENTFLOW_*:
#: tests/conftest.py drops those).
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


def _find_chromium() -> str | None:
    found = next((path for path in CHROMIUM_CANDIDATES if os.access(path, os.X_OK)), None)
    return found or shutil.which("chromium")


def _install_chromium() -> str:
    """Try apt-get; return what happened, for the skip or failure message."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root or no apt-get, so it cannot be installed here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` took over {INSTALL_TIMEOUT} s"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            return f"`{' '.join(command)}` failed: {tail[0]}"
    return "apt-get installed no chromium binary"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _find_chromium()
    if path is None:
        reason = _install_chromium()
        path = _find_chromium()
        if path is None:
            message = f"no Chromium for the browser tests ({reason}); apt-get install chromium"
            if REQUIRE_SERVICES:
                pytest.fail(message + " (required in CI)")
            pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    # while it is open, and every asyncio test collected after the browser tests would fail.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            # No first-run, update or background traffic: the tests stay on loopback.
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        yield launched
        launched.close()


def save_screenshot(png: bytes, name: str, tmp_path: Path) -> Path:
    """Write into the test's folder, and into docs/img/ when refreshing the README's images."""
    target = tmp_path / name
    target.write_bytes(png)
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(png)
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, standins: StandinServer) -> Iterator[ServerProcess]:
    """A real ``agentflow serve`` on the session's stand-ins (each test's ``standin`` resets them)."""
    database = tmp_path_factory.mktemp("browser") / "browser.db"
    process = ServerProcess(
        {
            **standins.env(),
            "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "AGENTFLOW_ARXIV_MIN_INTERVAL": "0",
            "AGENTFLOW_LOG_LEVEL": "WARNING",
        }
    ).start()
    yield process
    process.terminate()


# tryfirst: xdist reads the groups in its own hook of the same name, which must come after.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep every browser test on one xdist worker: one Chromium install check, one browser at a time."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in item.path.resolve().parents:
            item.add_marker(pytest.mark.xdist_group("browser"))
