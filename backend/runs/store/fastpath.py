"""PostgreSQL: the statements every run makes, hand-written, and a small psycopg pool to run them.

Every store call through SQLAlchemy's async engine pays for a pool checkout with its pre-ping
(a ``SELECT 1`` round trip), greenlet hops, the statement's cache key, an execution context and,
for a record, result set-up over 32 columns: ~0.5 ms of CPU for a read and ~0.9 ms for a small
write, measured on this machine, against ~0.1 ms for the same statement on psycopg directly. In
queue mode each run is read by the API's long poll (twice) and by the worker that starts it, is
started, and is logged in batches of events and progress, and B2q runs hundreds of them per
second. Those statements are here; everything else (and every SQLite path) stays SQLAlchemy Core
in ``backend.runs.store.repository``.

- Each is one statement (a ``NOTIFY`` rides along as ``pg_notify`` over a data-modifying ``WITH``,
  so it is sent only for rows actually written, on commit), so on an autocommit connection it is
  one round trip and its own transaction, with no BEGIN/COMMIT.
- Parameters are psycopg's (``%(name)s``); JSON goes in as one text parameter cast to ``json``
  (``json_to_recordset``: one parameter for any number of rows). The store runs them on
  ``FastPath`` when the runtime opened one, else on its engine (``exec_driver_sql``), so tests
  that build a store on an engine alone run the same SQL.
- The pool's connections read JSON columns with the store's orjson codec, as the engine does.
- A statement that meets a broken connection (the server restarted) runs once more on a fresh
  one, which each of them allows (``FastPath.fetch``). A finish that committed just before its
  connection broke then reports the run final already, as if another process had ended it.

psycopg is imported when a ``FastPath`` is built, not with this module: the store imports the
statements on SQLite too, where psycopg would only add ~20 ms to every start-up.

Written by hand because the point is to skip the layers a library adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from backend.runs.store.database import dumps_json, loads_json

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

__all__ = ["FINISH", "INSERT_EVENTS", "START_RUN", "UPDATE_PROGRESS", "FastPath", "notify_payloads", "select_record"]

#: Keys per NOTIFY: ~45 bytes each, well under PostgreSQL's 8000-byte payload limit.
KEYS_PER_NOTIFY = 120


def notify_payloads(keys: Sequence[str]) -> list[str]:
    """``keys`` as comma-separated NOTIFY payloads (``backend.runs.signals`` splits them again)."""
    return [",".join(keys[start : start + KEYS_PER_NOTIFY]) for start in range(0, len(keys), KEYS_PER_NOTIFY)]


def select_record(columns: Sequence[str]) -> str:
    """A record's ``columns`` by id (parameter ``id``)."""
    return f"SELECT {', '.join(columns)} FROM workflows WHERE id = %(id)s"  # noqa: S608 - our column names


#: ``WorkflowStore.start_run``: a live record starts (its next attempt), notified as running;
#: returns a row only if it was live. Parameters: id, started_at, attempts, lease_owner, channel.
START_RUN = """
    WITH started AS (
        UPDATE workflows
        SET status = 'running', started_at = %(started_at)s, attempts = %(attempts)s,
            lease_owner = COALESCE(%(lease_owner)s, lease_owner)
        WHERE id = %(id)s AND status IN ('queued', 'running')
        RETURNING id
    )
    SELECT pg_notify(%(channel)s, id || '=running') FROM started
"""

#: ``WorkflowStore.append_events``: every row (``workflow_id``, ``seq``, ``kind``, ``data``,
#: ``created_at``) as one JSON array; a (workflow_id, seq) already stored is kept. Then one NOTIFY
#: per payload. Parameters: rows (JSON text), channel, payloads (text[]).
INSERT_EVENTS = """
    WITH inserted AS (
        INSERT INTO run_events (workflow_id, seq, kind, data, created_at)
        SELECT workflow_id, seq, kind, data, created_at
        FROM json_to_recordset(%(rows)s::json)
            AS e(workflow_id text, seq integer, kind text, data json, created_at timestamptz)
        ON CONFLICT DO NOTHING
    )
    SELECT pg_notify(%(channel)s, payload) FROM unnest(%(payloads)s::text[]) AS payload
"""

#: ``ProgressBatch``: progress, usage and timeline of every row's run that is still running, each
#: notified as ``<id>=running`` (KEYS_PER_NOTIFY to a NOTIFY). Parameters: rows (JSON text), channel, per_notify.
UPDATE_PROGRESS = """
    WITH written AS (
        UPDATE workflows AS w
        SET progress = p.progress, usage = p.usage, timeline = p.timeline
        FROM json_to_recordset(%(rows)s::json) AS p(id text, progress json, usage json, timeline json)
        WHERE w.id = p.id AND w.status = 'running'
        RETURNING w.id
    ), numbered AS (
        SELECT id, (row_number() OVER ()) / %(per_notify)s AS part FROM written
    )
    SELECT pg_notify(%(channel)s, string_agg(id || '=running', ',')) FROM numbered GROUP BY part
"""


#: ``WorkflowStore.finish`` of a run without a LangGraph-API thread: the record becomes final
#: (``usage``, ``progress``, ``timeline`` kept when NULL), its last events are stored, its webhook
#: delivery queued (when it has a webhook) and its result cached (``cache_key`` not NULL), all in
#: one statement, so in one transaction; nothing happens when it was final already. Returns the
#: record's webhook URL (one row) if it was not. Parameters: id, status, finished_at, result,
#: error_code, error_message, usage, progress, timeline (JSON text or NULL), events (JSON text),
#: delivery_id, now, cache_key, cache_type, cache_expires, channel, payload.
FINISH = """
    WITH finished AS (
        UPDATE workflows
        SET status = %(status)s, finished_at = %(finished_at)s, result = %(result)s::json,
            error_code = %(error_code)s, error_message = %(error_message)s,
            lease_owner = NULL, lease_expires_at = NULL,
            usage = COALESCE(%(usage)s::json, usage),
            progress = COALESCE(%(progress)s::json, progress),
            timeline = COALESCE(%(timeline)s::json, timeline)
        WHERE id = %(id)s AND status NOT IN ('completed', 'failed', 'cancelled')
        RETURNING id, webhook_url
    ), logged AS (
        INSERT INTO run_events (workflow_id, seq, kind, data, created_at)
        SELECT e.workflow_id, e.seq, e.kind, e.data, e.created_at
        FROM finished, json_to_recordset(%(events)s::json)
            AS e(workflow_id text, seq integer, kind text, data json, created_at timestamptz)
        ON CONFLICT DO NOTHING
    ), delivery AS (
        INSERT INTO webhook_deliveries (id, workflow_id, url, status, attempts, next_attempt_at, created_at, updated_at)
        SELECT %(delivery_id)s, id, webhook_url, 'pending', 0, %(now)s, %(now)s, %(now)s
        FROM finished WHERE webhook_url IS NOT NULL
    ), cached AS (
        INSERT INTO result_cache (key, workflow_type, workflow_id, created_at, expires_at)
        SELECT %(cache_key)s::text, %(cache_type)s::text, id, %(finished_at)s, %(cache_expires)s::timestamptz
        FROM finished WHERE %(cache_key)s::text IS NOT NULL
        ON CONFLICT (key) DO UPDATE SET workflow_type = EXCLUDED.workflow_type, workflow_id = EXCLUDED.workflow_id,
            created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    ), swept AS (
        DELETE FROM result_cache
        WHERE %(cache_key)s::text IS NOT NULL AND expires_at <= %(finished_at)s AND EXISTS (SELECT FROM finished)
    )
    SELECT webhook_url, pg_notify(%(channel)s, %(payload)s) FROM finished
"""


class FastPath:
    """A small pool of autocommit psycopg connections for the statements above."""

    def __init__(self, conninfo: str, *, max_size: int = 4) -> None:
        import psycopg
        from psycopg.adapt import AdaptersMap
        from psycopg.types.json import set_json_dumps, set_json_loads
        from psycopg_pool import AsyncConnectionPool

        self._broken = psycopg.OperationalError
        adapters = AdaptersMap(psycopg.adapters)  # the global types, with our JSON codec
        set_json_loads(loads_json, adapters)
        set_json_dumps(dumps_json, adapters)
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo, min_size=1, max_size=max_size, open=False, kwargs={"autocommit": True, "context": adapters}
        )

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement (its own transaction; each above returns rows); the rows it returns.

        A pooled connection found broken (the server restarted, or closed it) is dropped and the
        statement runs once more on another: each statement here may run twice (the writes are
        conditional or ``ON CONFLICT DO NOTHING``). The engine's pre-ping does the same job
        for SQLAlchemy, at a round trip per transaction.
        """
        for attempt in (1, 2):
            async with self.pool.connection() as conn:
                try:
                    cursor = await conn.execute(sql, params)
                    return await cursor.fetchall()
                except self._broken:
                    if attempt == 2 or not conn.broken:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover
