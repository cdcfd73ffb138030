"""Engine creation (SQLite WAL pragmas, Postgres pool) and Alembic migrations at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["create_engine", "ensure_sqlite_directory", "is_postgres", "libpq_url", "run_migrations", "store_url"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x6167_666C  # "agfl": the advisory lock that serialises schema upgrades


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory of a file-backed SQLite URL so a fresh clone just works."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def store_url(url: str) -> str:
    """The URL the store connects with: any PostgreSQL URL runs on psycopg 3.

    One driver for the store, the checkpointer and the job queue means a submit can insert its
    row and defer its job on one connection, in one transaction.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def libpq_url(url: str) -> str:
    """A plain ``postgresql://`` URL for libpq clients (checkpointer, job queue, LISTEN)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, NORMAL sync and a busy timeout on every connection."""
    ensure_sqlite_directory(url)
    url = store_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_async_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=False)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def run_migrations(engine: AsyncEngine) -> None:
    """Upgrade the schema to head (idempotent; a no-op when already current)."""

    def upgrade(connection: Connection) -> None:
        config = _alembic_config(str(engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting together (API servers, workers) take turns; the later ones
            # then find the schema current. The lock ends with the transaction.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await connection.run_sync(upgrade)
