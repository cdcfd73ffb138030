"""aiosqlite's connection with its calls run inline on the event loop, for the SQLite store.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a thread of its own and
hands the result back to the loop: two thread wake-ups per call, four to five calls per
statement. Measured under SQLAlchemy (issue 16), one short write transaction cost ~360 µs of
CPU that way and ~46 µs on the same connection used synchronously: most of the store's share
of a run's CPU was thread hand-offs, not SQLite.

``InlineConnection`` keeps aiosqlite's interface (SQLAlchemy's ``aiosqlite`` dialect drives it
unchanged, through ``async_creator_fn``) but runs each call on the spot. This is safe for the
store because:

- with WAL and ``synchronous=NORMAL`` a commit writes to the WAL without an fsync, so a call
  takes microseconds, like any other CPU work the loop does;
- no write transaction of the store spans an ``await`` that yields to the loop (every
  ``engine.begin()`` block only talks to its own connection, and inline calls do not yield),
  so two connections of one process never wait on each other's locks;
- another process writing the same file (``--workers`` > 1, the ``agentflow keys`` command)
  can make a call wait, within ``busy_timeout``, for the length of that process's transaction.

The checkpointer keeps its own thread (``backend.runs.sqlite_checkpoints``), and PostgreSQL is
untouched. Written here because no maintained SQLite driver offers asyncio's interface without
a thread; it relies on aiosqlite routing every call through ``Connection._execute``
(aiosqlite 0.22, pinned in ``uv.lock``; ``tests/unit/test_inline_sqlite.py`` guards it).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite

__all__ = ["InlineConnection", "connect"]


class _InlineQueue:
    """Stands in for aiosqlite's queue to its thread: runs what is put on it at once.

    SQLAlchemy's adapter puts its isolation-level change on that queue directly.
    """

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An ``aiosqlite.Connection`` without its thread (see the module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int = 64) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _InlineQueue()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        """Close the SQLite connection (there is no thread to stop)."""
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def connect(database: str, *, iter_chunk_size: int = 64, **kwargs: Any) -> InlineConnection:
    """``aiosqlite.connect``'s signature, for SQLAlchemy's ``async_creator_fn`` connect argument."""
    # The pool may close a connection from another thread (garbage collection of a lost checkout).
    kwargs["check_same_thread"] = False
    return InlineConnection(functools.partial(sqlite3.connect, database, **kwargs), iter_chunk_size)
