"""Shared fixtures: offline stand-ins, settings pointing at them, an app with its lifespan.

Nothing here may reach the internet: provider keys from the developer's shell are dropped,
base URLs point at loopback stand-ins, and a socket guard refuses any non-loopback connect.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.api.app import create_app
from backend.config import Settings
from tests.standins import StandinServer, serve_standins

for _name in (
    "OPENAI_API_KEY",
    "TAVILY_API_KEY",
    "OPENAI_BASE_URL",
    "TAVILY_BASE_URL",
    "ARXIV_API_URL",
):
    os.environ.pop(_name, None)
REQUIRE_SERVICES = os.environ.get("AGENTFLOW_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("AGENTFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AGENTFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Read above, then dropped: a developer's AGENTFLOW_* settings must not leak into test servers.
for _name in [n for n in os.environ if n.startswith("AGENTFLOW_") and n != "AGENTFLOW_REQUIRE_SERVICES"]:
    os.environ.pop(_name, None)

# A shell starts background jobs with SIGINT ignored, and every process a test starts would inherit
# that: CLI tests that press Ctrl-C (SIGINT) would then see nothing happen. Restore the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = host == "localhost"
        if not allowed:
            raise OSError(f"test tried to reach {host!r}: tests stay on loopback")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only  # type: ignore[method-assign]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` group again under pytest 9.2.

    pytest-xdist 3.8 puts a test marked ``xdist_group`` in its group by suffixing ``item._nodeid``
    ("...@group"), in its own hook of this name (this one runs after it); pytest 9.2 reads a node
    id from ``item._id`` instead, so the group never reached the scheduler and grouped tests (the
    browser tests, a module's shared server) ran on any process.
    """
    from _pytest.nodeid import NodeId

    for item in items:
        grouped = getattr(item, "_nodeid", None)
        if isinstance(grouped, str) and "@" in grouped and item.nodeid != grouped:
            item._id = NodeId.parse(grouped)


def service_available(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI, AGENTFLOW_REQUIRE_SERVICES=1) when a service is absent."""
    if service_available(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    require_service("PostgreSQL", url.host or "127.0.0.1", url.port or 5432)
    import psycopg

    name = f"agentflow_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def standins() -> Iterator[StandinServer]:
    """One stand-in server (OpenAI, Tavily, arXiv) for the whole session."""
    with serve_standins() as server:
        yield server


@pytest.fixture
def standin(standins: StandinServer) -> Iterator[StandinServer]:
    """The shared stand-in, reset to default behaviour before and after the test."""
    standins.configure(openai={}, tavily={}, arxiv={})
    standins.reset()
    yield standins
    standins.configure(openai={}, tavily={}, arxiv={})
    standins.reset()


@pytest.fixture
def make_settings(tmp_path: Path, standin: StandinServer) -> Callable[..., Settings]:
    """Settings for a test app: a fresh SQLite file, stand-in providers, generous limits."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/agentflow.db",
            "openai_api_key": "sk-test-key",
            "openai_base_url": standin.openai_base_url,
            "tavily_api_key": "tvly-test-key",
            "tavily_base_url": standin.tavily_base_url,
            "arxiv_api_url": standin.arxiv_query_url,
            "arxiv_min_interval": 0.0,
            "rate_limit_submit": "1000/minute",
            "rate_limit_default": "10000/minute",
            "llm_max_retries": 2,
            "shutdown_grace_seconds": 1.0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
async def app_factory() -> AsyncIterator[Callable[[Settings], Any]]:
    """Start apps (lifespan included) and stop them after the test."""
    stacks: list[Any] = []

    async def start(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        stacks.append((lifespan, client))
        client.app = app  # type: ignore[attr-defined]
        return client

    yield start
    for lifespan, client in reversed(stacks):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def client(make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]) -> httpx.AsyncClient:
    """An ASGI client for an app with default test settings."""
    result: httpx.AsyncClient = await app_factory(make_settings())
    return result
