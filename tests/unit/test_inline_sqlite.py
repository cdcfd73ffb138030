"""The SQLite store's inline aiosqlite connection: SQLAlchemy drives it unchanged, with no thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from backend.runs.store import create_engine
from backend.runs.store.inline_sqlite import InlineConnection, connect


async def test_statements_run_on_the_loop_thread_without_a_connection_thread(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/inline.db")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES ('a', 1), ('b', 2)"))
            raw = await connection.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT k, v FROM t ORDER BY k"))).all()
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        assert [tuple(row) for row in rows] == [("a", 1), ("b", 2)]
        assert mode == "wal"
        assert threading.active_count() == threads_before  # aiosqlite would start one per connection
    finally:
        await engine.dispose()


async def test_a_failed_transaction_rolls_back_and_raises_sqlalchemys_error(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/inline.db")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
            await connection.execute(text("INSERT INTO t VALUES ('a')"))

        async def insert_b_then_a_again() -> None:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES ('b')"))
                await connection.execute(text("INSERT INTO t VALUES ('a')"))  # duplicate key

        with pytest.raises(IntegrityError):
            await insert_b_then_a_again()
        async with engine.connect() as connection:
            keys = (await connection.execute(text("SELECT k FROM t"))).scalars().all()
        assert keys == ["a"]  # 'b' went with the rolled-back transaction
    finally:
        await engine.dispose()


async def test_isolation_level_changes_and_closing_work_without_a_thread(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/inline.db")
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("CREATE TABLE t (k TEXT)"))
            await autocommit.execute(text("INSERT INTO t VALUES ('x')"))
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 1
    finally:
        await engine.dispose()
    closed = connect(str(tmp_path / "other.db"))
    await closed
    await closed.close()
    with pytest.raises(ValueError, match="connection"):
        await closed.execute("SELECT 1")
