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
