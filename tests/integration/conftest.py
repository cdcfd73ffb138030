"""Fixtures shared by the integration tests that run over both storage backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.config import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: SQLite (in-process executor) and PostgreSQL (queue executor)."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of the current ``backend``."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/agentflow-{backend}.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def start(
    database_url: str, make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> Callable[..., Any]:
    """Start an app (lifespan included) on ``database_url`` with settings overrides."""

    async def start_app(**overrides: Any) -> httpx.AsyncClient:
        client: httpx.AsyncClient = await app_factory(make_settings(database_url=database_url, **overrides))
        return client

    return start_app


#: Module-scoped fixtures that start a server process (test_langgraph_sdk, test_cli_client,
#: test_http_edge). The tests using one run on one xdist worker, so the server starts once rather
#: than once per worker that happens to get one of them.
SHARED_SERVERS = frozenset({"served", "server", "edge_server"})


# tryfirst: xdist reads the groups in its own hook of the same name, which must come after.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if item.path.resolve().parent != here or not isinstance(item, pytest.Function):
            continue
        for name in sorted(SHARED_SERVERS.intersection(item.fixturenames)):
            item.add_marker(pytest.mark.xdist_group(f"{item.path.stem}.{name}"))
