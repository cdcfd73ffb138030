"""The LangGraph checkpointer for the configured database (SQLite file or Postgres pool)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

if TYPE_CHECKING:  # LangGraph loads with the workflow stack, after start-up (backend.runs.stack)
    from langgraph.checkpoint.base import BaseCheckpointSaver

__all__ = ["NEW_THREAD", "checkpoint_location", "is_new_thread", "open_checkpointer"]

_SETUP_LOCK = 0x6167_636B  # "agck": serialises the checkpointer's schema set-up across processes

#: Set in a run's ``configurable`` by the runner when the run never started: its checkpoint
#: thread (the workflow id) cannot hold a checkpoint yet, so our savers answer LangGraph's opening
#: read of the latest checkpoint with None instead of a query (on PostgreSQL a round trip and a
#: join per run). The ``__`` prefix keeps it out of run metadata, checkpoint metadata and traces:
#: LangGraph and langchain skip such keys.
NEW_THREAD = "__agentflow_new_thread"


def is_new_thread(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` asks for the latest checkpoint of a thread the runner knows is new."""
    configurable = config.get("configurable") or {}
    return bool(configurable.get(NEW_THREAD)) and not configurable.get("checkpoint_id")


def checkpoint_location(database_url: str) -> str:
    """Where checkpoints live: a sibling SQLite file, or the same Postgres database.

    SQLite gets its own file so the checkpointer's single writer connection never contends
    with the store's connections for the database lock.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            return ":memory:"
        path = Path(database)
        return str(path.with_name(path.stem + ".checkpoints" + (path.suffix or ".db")))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def open_checkpointer(database_url: str, *, pool_size: int = 10) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open and set up the checkpointer (PostgreSQL: a pool of at most ``pool_size``); closes it on exit."""
    location = checkpoint_location(database_url)
    if make_url(database_url).get_backend_name() == "sqlite":
        from backend.runs.sqlite_checkpoints import open_sqlite_saver

        async with open_sqlite_saver(location) as saver:
            yield saver
        return

    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from backend.runs.postgres_checkpoints import GroupCommitPostgresSaver

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        location,
        min_size=1,
        max_size=pool_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    await pool.open()
    postgres_saver: GroupCommitPostgresSaver | None = None
    try:
        postgres_saver = GroupCommitPostgresSaver(pool)
        # Processes starting together would race on the checkpointer's own migrations table:
        # they take turns on an advisory lock, and the later ones find its schema current.
        async with pool.connection() as lock:
            # Polled, not waited for: a session blocked in pg_advisory_lock is an open transaction,
            # which the holder's CREATE INDEX CONCURRENTLY would wait for in turn (a deadlock).
            while not await _try_lock(lock):  # noqa: ASYNC110 - the lock lives in PostgreSQL
                await asyncio.sleep(0.1)
            try:
                await postgres_saver.setup()
            finally:
                await lock.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
        yield postgres_saver
    finally:
        if postgres_saver is not None:
            await postgres_saver.aclose()
        await pool.close()


async def _try_lock(connection: Any) -> bool:
    cursor = await connection.execute("SELECT pg_try_advisory_lock(%s) AS locked", (_SETUP_LOCK,))
    row = await cursor.fetchone()
    return bool(row and row["locked"])
