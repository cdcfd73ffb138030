"""Engine creation (SQLite WAL pragmas, Postgres pool) and Alembic migrations at start-up.

Alembic is imported only when the schema is behind: importing it (with Mako and every SQL
dialect's DDL module) costs about a second of start-up, and a restart on a current schema needs
none of it. Whether the schema is current is read from ``alembic_version`` and compared with the
heads of the migration files; that check is a few lines of text matching (the ``revision`` and
``down_revision`` assignments alembic itself requires), so any doubt falls back to alembic.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "SQLITE_BUSY_TIMEOUT",
    "create_engine",
    "ensure_sqlite_directory",
    "is_postgres",
    "libpq_url",
    "run_migrations",
    "store_url",
]

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


#: Seconds a SQLite write waits for another process's write to end before failing with
#: "database is locked" (SQLite has one writer at a time). Within a process writes never wait on
#: each other (``inline_sqlite``); another process (``--workers`` > 1, ``agentflow keys``) holds
#: the lock for one short transaction at a time.
SQLITE_BUSY_TIMEOUT = 10.0


def dumps_json(value: Any) -> str:
    """JSON columns' encoder: orjson (several times faster than ``json.dumps`` on run events and
    records), with ``json.dumps`` for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def loads_json(text: str | bytes) -> Any:
    """JSON columns' decoder: orjson, with ``json.loads`` for what an older row may hold (NaN)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets WAL, NORMAL sync and a busy timeout on every connection.

    ``pool_size`` (PostgreSQL): connections kept open, and as many more opened on bursts.
    """
    ensure_sqlite_directory(url)
    url = store_url(url)
    codec: dict[str, Any] = {"json_serializer": dumps_json, "json_deserializer": loads_json}
    if make_url(url).get_backend_name() == "sqlite":
        from backend.runs.store import inline_sqlite

        engine = create_async_engine(
            url,
            pool_size=4,
            max_overflow=4,
            pool_pre_ping=False,
            # aiosqlite's interface without its thread: see backend.runs.store.inline_sqlite. The
            # busy timeout is set when the connection opens (sqlite3's own ``timeout``), so it
            # covers the first statements too, the pragmas below included.
            connect_args={"async_creator_fn": inline_sqlite.connect, "timeout": SQLITE_BUSY_TIMEOUT},
            **codec,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **codec)


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)
_NAME = re.compile(r"[\"']([^\"']+)[\"']")


@cache
def head_revisions() -> frozenset[str] | None:
    """The revisions no migration file builds on; None when a file cannot be read plainly."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text()))
        names = _NAME.findall(found.get("revision", ""))
        if len(names) != 1 or "down_revision" not in found:
            return None
        revisions.add(names[0])
        parents.update(_NAME.findall(found["down_revision"]))
    heads = frozenset(revisions - parents)
    return heads or None


async def schema_is_current(connection: AsyncConnection) -> bool:
    """Whether the database is stamped at exactly the heads of the migration files."""
    heads = head_revisions()
    if heads is None or not await connection.run_sync(lambda c: inspect(c).has_table("alembic_version")):
        return False
    stamped = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    return frozenset(stamped) == heads


async def run_migrations(engine: AsyncEngine) -> None:
    """Upgrade the schema to head (idempotent; without alembic when already current)."""
    async with engine.connect() as connection:
        if await schema_is_current(connection):
            return

    def upgrade(connection: Connection) -> None:
        from alembic import command

        config = _alembic_config(str(engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting together (API servers, workers) take turns; the later ones
            # then find the schema current. The lock ends with the transaction.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await connection.run_sync(upgrade)
