"""SQLite: the writes every run makes, SQLAlchemy's SQL run on a plain ``sqlite3`` connection.

A run writes three times: its record is inserted, started, and finished (with its last events,
its cache entry and its webhook delivery); a run whose steps take longer than a second also
writes its progress after each of them (B2's runs, four or five times each). Through
SQLAlchemy's async engine each write cost 300–700 µs of CPU (measured on this machine, issue
16): building the statement, its cache key, the execution context, the aiosqlite adapter and its
greenlet hops, result set-up. The same writes on ``sqlite3`` directly cost 30–60 µs; together
~1.2 ms of a run's ~13.

The SQL is still SQLAlchemy's: each statement is the same Core construct, compiled once per
shape (the set of columns it writes) for the engine's dialect, and every parameter goes through
its column's own bind processor (the store's JSON codec, SQLite's datetime format), so the rows
are byte for byte what the engine writes. Only the per-call layers are skipped. Errors are
SQLAlchemy's (``IntegrityError`` and the rest, by ``DBAPIError.instance``), as callers expect.

Why it is safe on the event loop: the store's SQLite connections already run inline (see
``backend.runs.store.inline_sqlite``), WAL with ``synchronous=NORMAL`` makes a commit a write
without an fsync, and a transaction here never awaits, so it never interleaves with another.
The connection closes with its engine (``engine_disposed``). Written by hand because it is the
layers of the library that cost, not its SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, event, insert, true, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BindParameter

from backend.runs.store.database import SQLITE_BUSY_TIMEOUT
from backend.runs.store.tables import LIVE, NOT_TERMINAL, result_cache, run_events, webhook_deliveries, workflows

__all__ = ["Prepared", "SqliteWrites"]


class Prepared:
    """A Core statement compiled once: its SQL, and how to turn named values into its parameters.

    Parameters are taken by bind name from the values given, else the statement's own constants
    (an ``IN`` list's items), each through its type's bind processor for ``dialect``.
    """

    def __init__(self, statement: UpdateBase, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys or ()), compile_kwargs={"render_postcompile": True}
        )
        self.sql = compiled.string
        constants = compiled.params
        processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
        }
        self._slots = [(name, constants.get(name), processors.get(name)) for name in compiled.positiontup or ()]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The statement's parameters, in order, from ``values`` by name (processed as the engine does)."""
        return tuple(
            value if process is None else process(value)
            for name, constant, process in self._slots
            for value in (values.get(name, constant),)
        )


class SqliteWrites:
    """The per-run writes of ``WorkflowStore`` on SQLite (see the module docstring)."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._connection: sqlite3.Connection | None = None
        self._prepared: dict[Hashable, Prepared] = {}

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> SqliteWrites | None:
        """The writer for a file-backed SQLite engine (closed when it is disposed), else None."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        writes = cls(url.database, engine.dialect)
        event.listen(engine.sync_engine, "engine_disposed", lambda _engine: writes.close())
        return writes

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # --- the writes -------------------------------------------------------------------------

    def insert_workflows(self, rows: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]]) -> None:
        """Insert records (all with the same columns, as ``WorkflowStore.create`` builds them) and
        the webhook deliveries already due for them, in one transaction."""
        with self._transaction() as connection:
            self._insert(connection, workflows, rows)
            self._insert(connection, webhook_deliveries, deliveries)

    def start_run(self, workflow_id: str, values: dict[str, Any]) -> bool:
        """Set ``values`` on the record if it is still in flight (``LIVE``); whether it did."""
        statement = self._update(("start", *values), values, LIVE)
        with self._transaction() as connection:
            return connection.execute(statement.sql, statement.parameters({**values, "_id": workflow_id})).rowcount > 0

    def write_progress(self, workflow_id: str, values: dict[str, Any]) -> None:
        """Set a running run's ``values`` (its progress, usage and timeline)."""
        statement = self._update(("progress", *values), values, true())
        with self._transaction() as connection:
            connection.execute(statement.sql, statement.parameters({**values, "_id": workflow_id}))

    def finish(
        self,
        workflow_id: str,
        values: dict[str, Any],
        *,
        events: Sequence[dict[str, Any]],
        cache: dict[str, Any] | None,
        delivery: Callable[[str], dict[str, Any]],
    ) -> tuple[bool, str | None]:
        """End a record that has not ended (``NOT_TERMINAL``), in one transaction with its ``events``,
        its ``cache`` entry (result_cache values; older expired entries swept) and, when it has a
        webhook, the ``delivery(url)`` row. Whether it ended, and its webhook URL."""
        statement = self._update(("finish", *values), values, NOT_TERMINAL, returning=True)
        with self._transaction() as connection:
            rows = connection.execute(statement.sql, statement.parameters({**values, "_id": workflow_id})).fetchall()
            if not rows:
                return False, None
            if cache is not None:
                self._put_cache(connection, cache)
            if events:
                self._insert_events(connection, events)
            url: str | None = rows[0][0]
            if url is not None:
                self._insert(connection, webhook_deliveries, [delivery(url)])
            return True, url

    def append_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert event rows; a (workflow_id, seq) already stored is kept."""
        with self._transaction() as connection:
            self._insert_events(connection, rows)

    # --- parts ------------------------------------------------------------------------------

    def _insert(self, connection: sqlite3.Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """``INSERT INTO table`` of ``rows`` (all with the first one's columns)."""
        if rows:
            statement = self._statement((table.name, *rows[0]), lambda: insert(table), list(rows[0]))
            connection.executemany(statement.sql, [statement.parameters(row) for row in rows])

    def _insert_events(self, connection: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
        statement = self._statement(
            ("events", *rows[0]), lambda: sqlite.insert(run_events).on_conflict_do_nothing(), list(rows[0])
        )
        connection.executemany(statement.sql, [statement.parameters(row) for row in rows])

    def _put_cache(self, connection: sqlite3.Connection, values: dict[str, Any]) -> None:
        def upsert() -> UpdateBase:
            statement = sqlite.insert(result_cache)
            changed = {name: statement.excluded[name] for name in values if name != "key"}
            return statement.on_conflict_do_update(index_elements=[result_cache.c.key], set_=changed)

        statement = self._statement(("cache", *values), upsert, list(values))
        connection.execute(statement.sql, statement.parameters(values))
        sweep = self._statement(
            "sweep",
            lambda: result_cache.delete().where(result_cache.c.expires_at <= _param("_now", result_cache.c.expires_at)),
        )
        connection.execute(sweep.sql, sweep.parameters({"_now": values["created_at"]}))

    def _update(
        self,
        shape: tuple[Any, ...],
        values: Mapping[str, Any],
        where: ColumnElement[bool],
        *,
        returning: bool = False,
    ) -> Prepared:
        """``UPDATE workflows SET <values> WHERE id = :_id AND <where>`` (``RETURNING webhook_url``)."""

        def build() -> UpdateBase:
            statement = (
                update(workflows)
                .where(workflows.c.id == _param("_id", workflows.c.id), where)
                .values({name: _param(name, workflows.c[name]) for name in values})
            )
            return statement.returning(workflows.c.webhook_url) if returning else statement

        return self._statement(shape, build)

    def _statement(
        self, shape: Hashable, build: Callable[[], UpdateBase], column_keys: Sequence[str] | None = None
    ) -> Prepared:
        prepared = self._prepared.get(shape)
        if prepared is None:
            prepared = self._prepared[shape] = Prepared(build(), self._dialect, column_keys)
        return prepared

    def _transaction(self) -> _Transaction:
        if self._connection is None:
            self._connection = _connect(self._path)
        return _Transaction(self._connection)


class _Transaction:
    """``with``: the connection in a transaction, committed on success, rolled back on error;
    a ``sqlite3`` error comes out as SQLAlchemy's exception for it."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        return self._connection

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _traceback: object) -> None:
        if kind is None:
            self._connection.commit()
            return
        self._connection.rollback()
        if isinstance(error, sqlite3.Error):
            raise DBAPIError.instance(None, None, error, sqlite3.Error) from error


def _param(name: str, column: ColumnElement[Any]) -> BindParameter[Any]:
    """A parameter named ``name`` of ``column``'s type (its value given at each execution)."""
    return bindparam(name, None, type_=column.type)


def _connect(path: str) -> sqlite3.Connection:
    """A connection as the engine opens them: the busy timeout, WAL, ``synchronous=NORMAL``."""
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection
