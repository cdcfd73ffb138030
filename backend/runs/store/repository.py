"""WorkflowStore: every read and write of workflow records, keyword-only and transaction-scoped.

Statements are SQLAlchemy Core (no ORM unit of work on the hot paths: submit, poll, progress),
except on PostgreSQL for the statements every run makes (a record read, start, finish, event and
progress batches): those are hand-written single statements in ``backend.runs.store.fastpath``,
run on a small psycopg pool when the runtime opened one, because through the async engine each
cost several times the CPU of the SQL itself. Progress of running runs is written for every run
at once, every 0.1 s (``backend.runs.store.progress``).
Finished records never change again, so the store keeps the most recent ones in a small LRU
cache; polling a finished run costs no database round trip, in any worker.

Inserts are group-committed: submits that arrive while a commit is in flight are written
together in the next transaction, so under load a burst of submits costs one round trip to
the database instead of one each, and an idle server still commits a lone submit at once.
Every caller still returns only after its own row is committed. With a job queue, each batch's
jobs are deferred in the same transaction as its rows: a row is never committed without its job.

A run with a webhook gets its delivery (``backend.runs.store.outbox``) in the same transaction
that makes it final: ``finish``, a queued run cancelled by ``request_cancel``, or a record
created already final (a cache hit).

On PostgreSQL every write that changes what a client can see also sends ``NOTIFY agentflow_runs``
with the workflow id, in the same transaction, so waiters in every process wake on commit. When
the write knows the status it leaves, the payload says so (``<id>=<status>``): a ``?wait`` for a
run to settle then sleeps through the progress of a running one (``backend.runs.signals``).
Appending to a run's event log (``run_events``, see ``backend.runs.events``) notifies
``<workflow id>:events`` instead (several keys per notification, comma-separated), so event
streams wake without waking every record waiter.

The result cache lives here too (``result_cache``: key → the completed run that answers it), and
single flight is a partial unique index: at most one queued or running record per
``flight_key``, so two processes that submit the same request at once cannot both run it. A
record completed with another run's result (a cache hit, a coalesced follower) stores a
reference (``cached_from``), not a copy; reads fill the result in from the source run.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agents.errors import InvalidInput
from backend.runs.group_commit import GroupCommit
from backend.runs.records import TERMINAL_STATUSES, CacheOutcome, Usage, WorkflowRecord, WorkflowStatus
from backend.runs.signals import status_key
from backend.runs.store.database import dumps_json
from backend.runs.store.fastpath import (
    FINISH,
    INSERT_EVENTS,
    KEYS_PER_NOTIFY,
    START_RUN,
    UPDATE_PROGRESS,
    FastPath,
    notify_payloads,
    select_record,
)
from backend.runs.store.outbox import delivery_values, enqueue, new_delivery_id
from backend.runs.store.progress import ProgressBatch
from backend.runs.store.sqlite_writes import SqliteWrites
from backend.runs.store.tables import LIVE, NOT_TERMINAL, result_cache, run_events, workflows
from backend.runs.store.threads import settle_thread

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = [
    "CHANGES_CHANNEL",
    "EventRow",
    "FlightTaken",
    "IdempotencyConflict",
    "JobDeferrer",
    "Page",
    "RunFacts",
    "WorkflowStore",
    "utcnow",
]

#: The PostgreSQL NOTIFY channel that carries the id of every workflow whose record changed.
CHANGES_CHANNEL = "agentflow_runs"
#: Defers one job per workflow id on the given connection (inside the insert's transaction) and
#: returns the job ids, in order.
JobDeferrer = Callable[[AsyncConnection, list[str]], Awaitable[list[int]]]


def _upsert(connection: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ``ON CONFLICT`` clauses, in the connection's dialect."""
    # Imported here: the PostgreSQL dialect's modules are ~20 ms of a SQLite server's start-up,
    # and the connection's own dialect is loaded already.
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


#: One stored event as the store reads it back: (seq, kind, data).
EventRow = tuple[int, str, Any]
_RECORD_COLUMNS = [
    workflows.c[name]
    for name in (
        "id", "workflow_type", "status", "created_at", "started_at", "finished_at", "input", "result", "error_code",
        "error_message", "progress", "usage", "correlation_id", "idempotency_key", "request_hash", "cancel_requested",
        "attempts", "job_id", "owner", "cache_key", "flight_key", "cached_from", "cache_outcome", "traceparent",
        "thread_id", "run_metadata", "multitask_strategy", "webhook_url",
        "pending", "resume_value", "waiting_since", "resumed_at",
    )
]  # fmt: skip
_RECORD_NAMES = [column.name for column in _RECORD_COLUMNS]
_SELECT_RECORD = select_record(_RECORD_NAMES)
_TERMINAL_VALUES = [status.value for status in TERMINAL_STATUSES]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite drops tzinfo on the way back; every timestamp we write is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused; ``existing`` is the record created with it."""

    def __init__(self, existing: WorkflowRecord) -> None:
        super().__init__(existing.id)
        self.existing = existing


class FlightTaken(Exception):
    """An identical request is already in flight: ``leader`` is its record (None: it just ended)."""

    def __init__(self, leader: WorkflowRecord | None) -> None:
        super().__init__(leader.id if leader else None)
        self.leader = leader


class RunFacts:
    """What ``/metrics/summary`` needs of one record (no input, result or timeline)."""

    __slots__ = (
        "cache_outcome", "cached_from", "created_at", "finished_at", "id", "started_at", "status", "usage",
        "workflow_type",
    )  # fmt: skip

    def __init__(self, row: RowMapping) -> None:
        self.id: str = row["id"]
        self.workflow_type: str = row["workflow_type"]
        self.status = WorkflowStatus(row["status"])
        self.created_at = _aware(row["created_at"])
        self.started_at = _aware(row["started_at"])
        self.finished_at = _aware(row["finished_at"])
        self.usage = Usage.from_dict(row["usage"])
        self.cache_outcome = CacheOutcome(row["cache_outcome"]) if row["cache_outcome"] else None
        self.cached_from: str | None = row["cached_from"]

    @property
    def execution_time(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class Page:
    def __init__(self, items: list[WorkflowRecord], next_cursor: str | None) -> None:
        self.items = items
        self.next_cursor = next_cursor


async def _row_in(connection: AsyncConnection, workflow_id: str) -> RowMapping | None:
    """The record's row as ``connection``'s transaction sees it (after its own writes)."""
    return (await connection.execute(select(*_RECORD_COLUMNS).where(workflows.c.id == workflow_id))).mappings().first()


def _to_record(row: RowMapping | Mapping[str, Any]) -> WorkflowRecord:
    created = _aware(row["created_at"])
    assert created is not None
    return WorkflowRecord(
        id=row["id"],
        workflow_type=row["workflow_type"],
        status=WorkflowStatus(row["status"]),
        created_at=created,
        started_at=_aware(row["started_at"]),
        finished_at=_aware(row["finished_at"]),
        input=row["input"],
        result=row["result"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        progress=row["progress"] or {},
        usage=Usage.from_dict(row["usage"]),
        correlation_id=row["correlation_id"],
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        cancel_requested=bool(row["cancel_requested"]),
        attempts=row["attempts"] or 0,
        job_id=row["job_id"],
        owner=row["owner"] or "",
        cache_key=row["cache_key"],
        flight_key=row["flight_key"],
        cached_from=row["cached_from"],
        cache_outcome=CacheOutcome(row["cache_outcome"]) if row["cache_outcome"] else None,
        traceparent=row["traceparent"],
        thread_id=row["thread_id"],
        metadata=row["run_metadata"],
        multitask_strategy=row["multitask_strategy"],
        webhook_url=row["webhook_url"],
        pending=row["pending"],
        resume_value=row["resume_value"],
        waiting_since=_aware(row["waiting_since"]),
        resumed_at=_aware(row["resumed_at"]),
    )


def _json_or_null(value: Any) -> str | None:
    """A JSON column's value as a hand-written statement's parameter (``fastpath``): None stays SQL NULL."""
    return None if value is None else dumps_json(value)


def _by_reference(record: WorkflowRecord) -> bool:
    """Completed with another run's result: the row keeps ``cached_from``, not a copy."""
    return (
        record.status is WorkflowStatus.COMPLETED
        and record.cached_from is not None
        and record.cache_outcome in (CacheOutcome.HIT, CacheOutcome.COALESCED)
    )


def _final_deliveries(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The deliveries due for inserted rows that are already final and have a webhook (cache hits)."""
    return [
        delivery_values(workflow_id=row["id"], url=row["webhook_url"], now=utcnow())
        for row in rows
        if row.get("webhook_url") and row["status"] in _TERMINAL_VALUES
    ]


def encode_cursor(created_at: datetime, workflow_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), workflow_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, workflow_id = json.loads(raw)
        parsed = _aware(datetime.fromisoformat(created))
        assert parsed is not None
        if not isinstance(workflow_id, str) or "\x00" in workflow_id or len(workflow_id) > 64:
            raise ValueError("not an id this server issued")  # PostgreSQL cannot even compare NUL
        return parsed, workflow_id
    except (ValueError, TypeError, AssertionError) as exc:
        raise InvalidInput("The cursor is not one this server issued.", field="query.cursor") from exc


class WorkflowStore:
    """Reads and writes workflow records. Every method is one short transaction."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        defer_jobs: JobDeferrer | None = None,
        finished_cache_size: int = 10_000,
        fast: FastPath | None = None,
    ) -> None:
        """``fast`` (PostgreSQL): where the per-run statements run (``backend.runs.store.fastpath``);
        without it they run on ``engine``."""
        self.engine = engine
        self.defer_jobs = defer_jobs
        self.notifies = engine.dialect.name == "postgresql"
        self.fast = fast
        #: SQLite: where the per-run writes run (``backend.runs.store.sqlite_writes``).
        self._sqlite = None if self.notifies else SqliteWrites.for_engine(engine)
        #: PostgreSQL: progress of running runs, batched (``write_progress``).
        self._progress = ProgressBatch(self._write_progress_rows) if self.notifies else None
        self._finished: OrderedDict[str, WorkflowRecord] = OrderedDict()
        self._finished_cache_size = finished_cache_size
        # A reused Idempotency-Key (or a taken flight key) spoils its batch: the rows are then
        # written one by one, so only that caller sees the conflict.
        self._inserts: GroupCommit[dict[str, Any]] = GroupCommit(
            self._write_inserts, name="store-inserts", retry_alone_on=(IntegrityError,)
        )
        #: Called after a commit that wrote webhook deliveries (the dispatcher looks at once).
        self.on_webhook_due: Callable[[], None] | None = None

    def _webhook_due(self) -> None:
        if self.on_webhook_due is not None:
            self.on_webhook_due()

    async def _pg(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one hand-written PostgreSQL statement (``fastpath``) in its own transaction; its rows."""
        if self.fast is not None:
            return await self.fast.fetch(sql, params)
        async with self.engine.begin() as connection:
            result = await connection.exec_driver_sql(sql, params)
            return [tuple(row) for row in result.all()] if result.returns_rows else []

    def remember_finished(self, record: WorkflowRecord) -> None:
        """Cache a terminal record (they are immutable, so the cache is never stale)."""
        if not record.status.is_terminal:
            return
        self._finished[record.id] = record
        self._finished.move_to_end(record.id)
        while len(self._finished) > self._finished_cache_size:
            self._finished.popitem(last=False)

    async def create(
        self, *, record: WorkflowRecord, lease_owner: str | None = None, lease_seconds: float = 30.0
    ) -> WorkflowRecord:
        """Insert a record, leased to ``lease_owner`` (local executor): a queued one (with its job, with a queue), or an
        already final one (a cache hit: no job, no lease).

        Raises IdempotencyConflict if its Idempotency-Key is taken, FlightTaken if its
        ``flight_key`` belongs to a run still in flight.
        """
        values = {
            "id": record.id,
            "workflow_type": record.workflow_type,
            "status": record.status.value,
            "created_at": record.created_at,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "input": record.input,
            "result": None if _by_reference(record) else record.result,
            "progress": record.progress,
            "usage": record.usage.as_dict(),
            "correlation_id": record.correlation_id,
            "idempotency_key": record.idempotency_key,
            "request_hash": record.request_hash,
            "owner": record.owner,
            "cancel_requested": False,
            "attempts": 0,
            "lease_owner": lease_owner,
            "lease_expires_at": utcnow() + timedelta(seconds=lease_seconds) if lease_owner else None,
            "cache_key": record.cache_key,
            "flight_key": record.flight_key,
            "cached_from": record.cached_from,
            "cache_outcome": record.cache_outcome.value if record.cache_outcome else None,
            "traceparent": record.traceparent,
            "thread_id": record.thread_id,
            "run_metadata": record.metadata,
            "multitask_strategy": record.multitask_strategy,
            "webhook_url": record.webhook_url,
        }
        try:
            await self._insert(values)
        except IntegrityError:
            if record.idempotency_key is not None:
                existing = await self.get_by_idempotency_key(key=record.idempotency_key, owner=record.owner)
                if existing is not None:
                    raise IdempotencyConflict(existing) from None
            if record.flight_key is None:
                raise
            raise FlightTaken(await self.flight_leader(key=record.flight_key)) from None
        record.job_id = cast("int | None", values.get("job_id"))
        return record

    async def _insert(self, values: dict[str, Any]) -> None:
        """Queue one row for the next group commit and wait until it is committed (or refused)."""
        await self._inserts(values)

    async def _write_inserts(self, rows: Sequence[dict[str, Any]]) -> None:
        due = _final_deliveries(rows)
        if self._sqlite is not None and self.defer_jobs is None:
            self._sqlite.insert_workflows(rows, due)
        else:
            async with self.engine.begin() as connection:
                await self._defer(list(rows), connection)
                await connection.execute(insert(workflows), list(rows))
                await enqueue(connection, due)
        if due:
            self._webhook_due()

    async def _defer(self, rows: list[dict[str, Any]], connection: AsyncConnection) -> None:
        queued = [row for row in rows if row["status"] == WorkflowStatus.QUEUED.value]  # a cache hit needs no job
        if self.defer_jobs is None or not queued:
            return
        job_ids = await self.defer_jobs(connection, [row["id"] for row in queued])
        for row, job_id in zip(queued, job_ids, strict=True):
            row["job_id"] = job_id

    async def _notify(
        self, connection: AsyncConnection, workflow_ids: Sequence[str], status: WorkflowStatus | str | None = None
    ) -> None:
        """NOTIFY a change of each record; ``status``: what they hold after this write, when known
        (a waiter for a settled run then skips the changes of a running one, see ``ChangeHub``)."""
        if self.notifies:
            for workflow_id in workflow_ids:
                key = workflow_id if status is None else status_key(workflow_id, str(status))
                await connection.execute(select(func.pg_notify(CHANGES_CHANNEL, key)))

    async def announce_watch(self, *, key: str) -> None:
        """Tell every process (NOTIFY) that a run is watched here; nothing to tell on SQLite."""
        if self.notifies:
            async with self.engine.begin() as connection:
                await connection.execute(select(func.pg_notify(CHANGES_CHANNEL, key)))

    # --- run events ---------------------------------------------------------------------------

    async def append_events(self, *, rows: Sequence[dict[str, Any]]) -> None:
        """Insert event rows (``workflow_id``, ``seq``, ``kind``, ``data``, ``created_at``) in one
        multi-row statement; a (workflow_id, seq) already stored is kept, never overwritten."""
        if not rows:
            return
        if self.notifies:
            await self._pg(INSERT_EVENTS, self._events_params(rows))
            return
        if self._sqlite is not None:
            self._sqlite.append_events(rows)
            return
        async with self.engine.begin() as connection:
            await self._insert_events(connection, rows)

    async def _insert_events(self, connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql(INSERT_EVENTS, self._events_params(rows))
            return
        await connection.execute(_upsert(connection, run_events).on_conflict_do_nothing(), list(rows))

    @staticmethod
    def _events_params(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        keys = list(dict.fromkeys(f"{row['workflow_id']}:events" for row in rows))
        return {"rows": dumps_json(list(rows)), "channel": CHANGES_CHANNEL, "payloads": notify_payloads(keys)}

    async def events(self, *, workflow_id: str, after: int = 0, limit: int = 1000) -> list[EventRow]:
        """Stored events of one run with ``seq`` > ``after``, in order, at most ``limit``."""
        query = (
            select(run_events.c.seq, run_events.c.kind, run_events.c.data)
            .where(run_events.c.workflow_id == workflow_id, run_events.c.seq > after)
            .order_by(run_events.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            return [(int(row[0]), str(row[1]), row[2]) for row in (await connection.execute(query)).all()]

    async def last_event_seq(self, *, workflow_id: str) -> int:
        """The highest stored ``seq`` of a run's events (0: none)."""
        query = select(func.max(run_events.c.seq)).where(run_events.c.workflow_id == workflow_id)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one() or 0)

    async def delete_events(self, *, finished_before: datetime, finished_since: datetime | None = None) -> int:
        """Delete the events of runs that ended before ``finished_before`` (and, when given, at
        or after ``finished_since``, so a periodic sweep does not rescan all history); returns
        how many rows went."""
        ended = select(workflows.c.id).where(workflows.c.finished_at < finished_before)
        if finished_since is not None:
            ended = ended.where(workflows.c.finished_at >= finished_since)
        async with self.engine.begin() as connection:
            outcome = await connection.execute(delete(run_events).where(run_events.c.workflow_id.in_(ended)))
        return int(outcome.rowcount or 0)

    async def get(self, *, workflow_id: str) -> WorkflowRecord | None:
        cached = self._finished.get(workflow_id)
        if cached is not None:
            return cached
        if self.notifies:  # the hottest read of queue mode (long polls, workers): see ``fastpath``
            found = await self._pg(_SELECT_RECORD, {"id": workflow_id})
            record = _to_record(dict(zip(_RECORD_NAMES, found[0], strict=True))) if found else None
            if record is not None:
                await self._hydrate([record])
        else:
            record = await self._one(workflows.c.id == workflow_id)
        if record is not None:
            self.remember_finished(record)
        return record

    async def get_by_idempotency_key(self, *, key: str, owner: str = "") -> WorkflowRecord | None:
        """The record created with this Idempotency-Key by this owner (keys are scoped per owner)."""
        return await self._one(and_(workflows.c.idempotency_key == key, workflows.c.owner == owner))

    async def count_unfinished(self, *, owner: str) -> int:
        """Queued and running records of one owner (the ``max_queued`` quota counts these).

        Waiting runs do not count: they hold no executor slot, and ``AGENTFLOW_WAITING_TTL`` ends
        the forgotten ones."""
        query = select(func.count()).select_from(workflows).where(workflows.c.owner == owner, LIVE)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def _one(self, condition: Any) -> WorkflowRecord | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(*_RECORD_COLUMNS).where(condition))).mappings().first()
        if row is None:
            return None
        record = _to_record(row)
        await self._hydrate([record])
        return record

    async def _hydrate(self, records: Sequence[WorkflowRecord]) -> None:
        """Fill in the result of records that carry another run's result by reference."""
        wanted = [r for r in records if r.result is None and _by_reference(r)]
        if not wanted:
            return
        results: dict[str, dict[str, Any] | None] = {}
        missing: set[str] = set()
        for record in wanted:
            assert record.cached_from is not None
            source = self._finished.get(record.cached_from)
            if source is not None:
                results[record.cached_from] = source.result
            else:
                missing.add(record.cached_from)
        if missing:
            query = select(workflows.c.id, workflows.c.result).where(workflows.c.id.in_(missing))
            async with self.engine.connect() as connection:
                results.update({row[0]: row[1] for row in (await connection.execute(query)).all()})
        for record in wanted:
            record.result = results.get(record.cached_from or "")

    async def page(
        self,
        *,
        workflow_type: str | None = None,
        status: WorkflowStatus | None = None,
        owner: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """Newest first, keyset-paginated on (created_at, id); ``owner`` None: everyone's."""
        query = select(*_RECORD_COLUMNS)
        if owner is not None:
            query = query.where(workflows.c.owner == owner)
        if workflow_type is not None:
            query = query.where(workflows.c.workflow_type == workflow_type)
        if status is not None:
            query = query.where(workflows.c.status == status.value)
        if cursor is not None:
            created_at, workflow_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    workflows.c.created_at < created_at,
                    and_(workflows.c.created_at == created_at, workflows.c.id < workflow_id),
                )
            )
        query = query.order_by(workflows.c.created_at.desc(), workflows.c.id.desc()).limit(limit + 1)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        items = [_to_record(row) for row in rows[:limit]]
        await self._hydrate(items)
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
        return Page(items, next_cursor)

    async def thread_runs(
        self, *, thread_id: str, limit: int = 10, offset: int = 0, status: WorkflowStatus | None = None
    ) -> list[WorkflowRecord]:
        """The runs of one LangGraph-API thread, newest first."""
        query = select(*_RECORD_COLUMNS).where(workflows.c.thread_id == thread_id)
        if status is not None:
            query = query.where(workflows.c.status == status.value)
        query = query.order_by(workflows.c.created_at.desc(), workflows.c.id.desc()).limit(limit).offset(offset)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        items = [_to_record(row) for row in rows]
        await self._hydrate(items)
        return items

    async def update(self, *, workflow_id: str, **values: Any) -> None:
        """Set columns on one record (``status`` may be a WorkflowStatus, ``usage`` a Usage)."""
        if isinstance(values.get("status"), WorkflowStatus):
            values["status"] = values["status"].value
        if isinstance(values.get("usage"), Usage):
            values["usage"] = values["usage"].as_dict()
        if isinstance(values.get("cache_outcome"), CacheOutcome):
            values["cache_outcome"] = values["cache_outcome"].value
        async with self.engine.begin() as connection:
            await connection.execute(update(workflows).where(workflows.c.id == workflow_id).values(**values))
            await self._notify(connection, [workflow_id], values.get("status"))

    async def write_progress(
        self, *, workflow_id: str, progress: dict[str, Any], usage: Usage, timeline: list[dict[str, Any]]
    ) -> None:
        """Store a running run's progress, usage and timeline.

        On PostgreSQL it is written with every other run's within 0.1 s (``ProgressBatch``), and
        this returns at once; elsewhere it is written now.
        """
        values = {"progress": progress, "usage": usage.as_dict(), "timeline": timeline}
        if self._sqlite is not None:
            self._sqlite.write_progress(workflow_id, values)
        elif self._progress is None:
            await self.update(workflow_id=workflow_id, **values)
        else:
            self._progress.put(workflow_id, values)

    async def _write_progress_rows(self, rows: list[dict[str, Any]]) -> None:
        params = {"rows": dumps_json(rows), "channel": CHANGES_CHANNEL, "per_notify": KEYS_PER_NOTIFY}
        await self._pg(UPDATE_PROGRESS, params)

    async def flush_progress(self) -> None:
        """Write the progress not yet written (before the engine is disposed)."""
        if self._progress is not None:
            await self._progress.flush()

    def _take_progress(self, workflow_id: str, values: dict[str, Any]) -> None:
        """A write that ends or parks a run takes its pending progress: what it does not set itself."""
        pending = self._progress.take(workflow_id) if self._progress is not None else None
        for name, value in (pending or {}).items():
            values.setdefault(name, value)

    async def start_run(
        self, *, workflow_id: str, started_at: datetime, attempts: int, lease_owner: str | None = None
    ) -> bool:
        """Mark a live record ``running`` for its next attempt (by ``lease_owner``, when given);
        False if it already ended."""
        if self.notifies:
            params = {
                "id": workflow_id,
                "started_at": started_at,
                "attempts": attempts,
                "lease_owner": lease_owner,
                "channel": CHANGES_CHANNEL,
            }
            return bool(await self._pg(START_RUN, params))
        values: dict[str, Any] = {
            "status": WorkflowStatus.RUNNING.value,
            "started_at": started_at,
            "attempts": attempts,
        }
        if lease_owner is not None:
            values["lease_owner"] = lease_owner
        if self._sqlite is not None:
            return self._sqlite.start_run(workflow_id, values)
        async with self.engine.begin() as connection:
            # Only a queued or running record starts: a waiting one needs its answer first.
            outcome = await connection.execute(
                update(workflows).where(workflows.c.id == workflow_id, LIVE).values(**values)
            )
            if outcome.rowcount:
                await self._notify(connection, [workflow_id], WorkflowStatus.RUNNING)
        return bool(outcome.rowcount)

    async def finish(
        self,
        *,
        workflow_id: str,
        status: WorkflowStatus,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        usage: Usage | None = None,
        progress: dict[str, Any] | None = None,
        finished_at: datetime | None = None,
        timeline: list[dict[str, Any]] | None = None,
        cache_entry: tuple[str, str, datetime] | None = None,
        result_by_reference: bool = False,
        thread_id: str | None = None,
        thread_values: dict[str, Any] | None = None,
        events: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """Move a non-terminal record to a terminal status; False if it was already terminal.

        ``cache_entry`` (key, workflow type, expiry) makes this run the cached result for its
        key, in the same transaction. ``result_by_reference``: the result is another run's (the
        record's ``cached_from``) and is not stored again. ``thread_id``: the run's thread takes
        ``thread_values`` (when given) and its next status, in the same transaction. ``events`` (rows
        as for ``append_events``, the run's ``end`` event last) are written in the same
        transaction, so a terminal record always has its last events stored.
        """
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": finished_at or utcnow(),
            "result": None if result_by_reference else result,
            "error_code": error_code,
            "error_message": error_message,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if usage is not None:
            values["usage"] = usage.as_dict()
        if progress is not None:
            values["progress"] = progress
        if timeline is not None:
            values["timeline"] = timeline
        self._take_progress(workflow_id, values)
        if self.notifies and thread_id is None:  # one statement: see ``fastpath.FINISH``
            return await self._finish_fast(workflow_id, status, values, cache_entry, events)
        if self._sqlite is not None and thread_id is None:
            return self._finish_sqlite(workflow_id, values, cache_entry, events)
        async with self.engine.begin() as connection:
            finished = (
                await connection.execute(
                    update(workflows)
                    .where(workflows.c.id == workflow_id, NOT_TERMINAL)
                    .values(**values)
                    .returning(workflows.c.webhook_url)
                )
            ).first()
            if finished is not None:
                if cache_entry is not None:
                    key, workflow_type, expires_at = cache_entry
                    await self._put_cache(
                        connection, key, workflow_type, workflow_id, values["finished_at"], expires_at
                    )
                if thread_id is not None:
                    await settle_thread(
                        connection, thread_id=thread_id, run_id=workflow_id, run_status=status, values=thread_values
                    )
                if events:
                    await self._insert_events(connection, events)
                if finished[0] is not None:  # its webhook is due: in this transaction, or never lost
                    await enqueue(connection, [delivery_values(workflow_id=workflow_id, url=finished[0], now=utcnow())])
                await self._notify(connection, [workflow_id], status)
        if finished is not None and finished[0] is not None:
            self._webhook_due()
        return finished is not None

    def _finish_sqlite(
        self,
        workflow_id: str,
        values: dict[str, Any],
        cache_entry: tuple[str, str, datetime] | None,
        events: Sequence[dict[str, Any]],
    ) -> bool:
        """``finish`` on SQLite for a run without a thread: what the engine path writes, in one transaction."""
        assert self._sqlite is not None
        cache = None
        if cache_entry is not None:
            key, workflow_type, expires_at = cache_entry
            cache = {
                "key": key,
                "workflow_type": workflow_type,
                "workflow_id": workflow_id,
                "created_at": values["finished_at"],
                "expires_at": expires_at,
            }
        finished, webhook_url = self._sqlite.finish(
            workflow_id,
            values,
            events=events,
            cache=cache,
            delivery=lambda url: delivery_values(workflow_id=workflow_id, url=url, now=utcnow()),
        )
        if webhook_url is not None:
            self._webhook_due()
        return finished

    async def _finish_fast(
        self,
        workflow_id: str,
        status: WorkflowStatus,
        values: dict[str, Any],
        cache_entry: tuple[str, str, datetime] | None,
        events: Sequence[dict[str, Any]],
    ) -> bool:
        """``finish`` on PostgreSQL for a run without a thread (``values`` as the engine path builds them)."""
        key, workflow_type, expires_at = cache_entry if cache_entry is not None else (None, None, None)
        now = utcnow()
        payload = status_key(workflow_id, status.value) + (f",{workflow_id}:events" if events else "")
        params = {
            "id": workflow_id,
            "status": values["status"],
            "finished_at": values["finished_at"],
            "result": _json_or_null(values["result"]),
            "error_code": values["error_code"],
            "error_message": values["error_message"],
            "usage": _json_or_null(values.get("usage")),
            "progress": _json_or_null(values.get("progress")),
            "timeline": _json_or_null(values.get("timeline")),
            "events": dumps_json(list(events)),
            "delivery_id": new_delivery_id(),
            "now": now,
            "cache_key": key,
            "cache_type": workflow_type,
            "cache_expires": expires_at,
            "channel": CHANGES_CHANNEL,
            "payload": payload,
        }
        finished = await self._pg(FINISH, params)
        if finished and finished[0][0] is not None:
            self._webhook_due()
        return bool(finished)

    async def request_cancel(self, *, workflow_id: str) -> WorkflowRecord | None:
        """Flag a run for cancellation; a queued run is cancelled outright. None if unknown."""
        async with self.engine.begin() as connection:
            cancelled = (
                await connection.execute(
                    update(workflows)
                    .where(workflows.c.id == workflow_id, workflows.c.status == WorkflowStatus.QUEUED.value)
                    .values(status=WorkflowStatus.CANCELLED.value, finished_at=utcnow(), lease_owner=None)
                    .returning(workflows.c.webhook_url, workflows.c.thread_id)
                )
            ).first()
            if cancelled is not None and cancelled[1] is not None:  # never ran: its thread keeps its values
                await settle_thread(
                    connection,
                    thread_id=cancelled[1],
                    run_id=workflow_id,
                    run_status=WorkflowStatus.CANCELLED,
                    values=None,
                )
            if cancelled is not None and cancelled[0] is not None:
                await enqueue(connection, [delivery_values(workflow_id=workflow_id, url=cancelled[0], now=utcnow())])
            await connection.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id, workflows.c.status == WorkflowStatus.RUNNING.value)
                .values(cancel_requested=True)
            )
            row = await _row_in(connection, workflow_id)
            if row is not None:
                await self._notify(connection, [workflow_id], row["status"])
        if cancelled is not None and cancelled[0] is not None:
            self._webhook_due()
        return _to_record(row) if row is not None else None

    async def claim(
        self, *, workflow_id: str, owner: str, lease_seconds: float, previous_owner: str | None = None
    ) -> WorkflowRecord | None:
        """Take the lease on a non-terminal record whose holder is gone; None if someone else won.

        ``previous_owner`` is the holder the caller saw and judged dead; the update only succeeds
        if that is still the holder (or the lease is free or expired), so two claimers never both win.
        """
        now = utcnow()
        async with self.engine.begin() as connection:
            outcome = await connection.execute(
                update(workflows)
                .where(
                    workflows.c.id == workflow_id,
                    NOT_TERMINAL,
                    or_(
                        workflows.c.lease_owner.is_(None),
                        workflows.c.lease_owner == owner,
                        workflows.c.lease_owner == (previous_owner or owner),
                        workflows.c.lease_expires_at < now,
                    ),
                )
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
            if not outcome.rowcount:
                return None
            row = await _row_in(connection, workflow_id)
        return _to_record(row) if row is not None else None

    async def unfinished(self, *, exclude_owner: str) -> list[tuple[str, str | None, datetime | None]]:
        """Ids, lease owners and lease expiries of queued or running records held by anyone but
        ``exclude_owner`` (or by nobody), oldest first: the candidates for a recovery sweep.
        Waiting runs are not among them: nothing runs them until they are answered."""
        query = (
            select(workflows.c.id, workflows.c.lease_owner, workflows.c.lease_expires_at)
            .where(
                LIVE,
                or_(workflows.c.lease_owner.is_(None), workflows.c.lease_owner != exclude_owner),
            )
            .order_by(workflows.c.created_at)
        )
        async with self.engine.connect() as connection:
            return [(row[0], row[1], _aware(row[2])) for row in (await connection.execute(query)).all()]

    async def renew_leases(self, *, owner: str, workflow_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend our leases; returns the ids among them whose cancellation was requested."""
        if not workflow_ids:
            return set()
        expires = utcnow() + timedelta(seconds=lease_seconds)
        async with self.engine.begin() as connection:
            await connection.execute(
                update(workflows).where(workflows.c.lease_owner == owner, NOT_TERMINAL).values(lease_expires_at=expires)
            )
            cancelled = await connection.execute(
                select(workflows.c.id).where(
                    workflows.c.lease_owner == owner, NOT_TERMINAL, workflows.c.cancel_requested.is_(True)
                )
            )
            return {row[0] for row in cancelled.all()}

    async def release_leases(self, *, owner: str) -> None:
        """Give up every lease ``owner`` holds, so another process can resume those runs at once."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(workflows)
                .where(workflows.c.lease_owner == owner, NOT_TERMINAL)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def unfinished_since(self, *, before: datetime) -> list[WorkflowRecord]:
        """Queued or running records created before ``before``, oldest first (queue reconciliation)."""
        query = select(*_RECORD_COLUMNS).where(LIVE, workflows.c.created_at < before)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(workflows.c.created_at))).mappings().all()
        return [_to_record(row) for row in rows]

    # --- waiting for a human ------------------------------------------------------------------

    async def start_waiting(
        self,
        *,
        workflow_id: str,
        pending: dict[str, Any],
        since: datetime,
        progress: dict[str, Any] | None = None,
        usage: Usage | None = None,
        timeline: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Park a running record as ``waiting`` on ``pending``: its lease and flight are given up
        and its last answer cleared. False if it is no longer running."""
        values: dict[str, Any] = {
            "status": WorkflowStatus.WAITING.value,
            "pending": pending,
            "resume_value": None,
            "waiting_since": since,
            "lease_owner": None,
            "lease_expires_at": None,
            "flight_key": None,
        }
        if progress is not None:
            values["progress"] = progress
        if usage is not None:
            values["usage"] = usage.as_dict()
        if timeline is not None:
            values["timeline"] = timeline
        self._take_progress(workflow_id, values)
        async with self.engine.begin() as connection:
            outcome = await connection.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id, workflows.c.status == WorkflowStatus.RUNNING.value)
                .values(**values)
            )
            if outcome.rowcount:
                thread_id = (
                    await connection.execute(select(workflows.c.thread_id).where(workflows.c.id == workflow_id))
                ).scalar()
                if thread_id is not None:  # its thread shows it interrupted, as LangGraph Server does
                    await settle_thread(
                        connection,
                        thread_id=thread_id,
                        run_id=workflow_id,
                        run_status=WorkflowStatus.WAITING,
                        values=None,
                    )
                await self._notify(connection, [workflow_id], WorkflowStatus.WAITING)
        return bool(outcome.rowcount)

    async def resume(
        self,
        *,
        workflow_id: str,
        value: dict[str, Any],
        now: datetime,
        lease_owner: str | None = None,
        lease_seconds: float = 30.0,
    ) -> WorkflowRecord | None:
        """Record the answer to a waiting record and queue it again (with a new job, with a queue),
        in one transaction; None if it is not waiting (answered, cancelled or expired meanwhile)."""
        values: dict[str, Any] = {
            "status": WorkflowStatus.QUEUED.value,
            "resume_value": value,
            "pending": None,
            "waiting_since": None,
            "resumed_at": now,
            "lease_owner": lease_owner,
            "lease_expires_at": now + timedelta(seconds=lease_seconds) if lease_owner else None,
        }
        async with self.engine.begin() as connection:
            outcome = await connection.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id, workflows.c.status == WorkflowStatus.WAITING.value)
                .values(**values)
            )
            if not outcome.rowcount:
                return None
            if self.defer_jobs is not None:
                (job_id,) = await self.defer_jobs(connection, [workflow_id])
                await connection.execute(update(workflows).where(workflows.c.id == workflow_id).values(job_id=job_id))
            row = await _row_in(connection, workflow_id)
            await self._notify(connection, [workflow_id], WorkflowStatus.QUEUED)
        return _to_record(row) if row is not None else None

    async def end_waiting(
        self, *, workflow_id: str, status: WorkflowStatus, error_code: str | None, error_message: str | None
    ) -> WorkflowRecord | None:
        """End a waiting record with a final ``status``; None if it is not waiting."""
        async with self.engine.begin() as connection:
            outcome = await connection.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id, workflows.c.status == WorkflowStatus.WAITING.value)
                .values(
                    status=status.value,
                    finished_at=utcnow(),
                    error_code=error_code,
                    error_message=error_message,
                    pending=None,
                )
            )
            if not outcome.rowcount:
                return None
            row = await _row_in(connection, workflow_id)
            if row is not None and row["thread_id"] is not None:  # its thread keeps the values it had
                await settle_thread(
                    connection, thread_id=row["thread_id"], run_id=workflow_id, run_status=status, values=None
                )
            if row is not None and row["webhook_url"] is not None:  # as in ``finish``: due in this transaction
                await enqueue(
                    connection, [delivery_values(workflow_id=workflow_id, url=row["webhook_url"], now=utcnow())]
                )
            await self._notify(connection, [workflow_id], status)
        if row is None:
            return None
        if row["webhook_url"] is not None:
            self._webhook_due()
        record = _to_record(row)
        self.remember_finished(record)
        return record

    async def waiting_before(self, *, before: datetime, limit: int = 500) -> list[str]:
        """Ids of records waiting since before ``before``, oldest first (the waiting-TTL sweep)."""
        query = (
            select(workflows.c.id)
            .where(workflows.c.status == WorkflowStatus.WAITING.value, workflows.c.waiting_since < before)
            .order_by(workflows.c.waiting_since)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            return [row[0] for row in (await connection.execute(query)).all()]

    # --- result cache and single flight -----------------------------------------------------------

    async def cached_result(self, *, key: str, now: datetime) -> WorkflowRecord | None:
        """The completed run cached under ``key``, unless the entry expired (one round trip)."""
        entry = await self.cached_entry(key=key, now=now)
        return entry[0] if entry is not None else None

    async def cached_entry(self, *, key: str, now: datetime) -> tuple[WorkflowRecord, datetime] | None:
        """The completed run cached under ``key`` and when its entry expires, unless it expired."""
        query = (
            select(*_RECORD_COLUMNS, result_cache.c.expires_at.label("cache_expires_at"))
            .select_from(result_cache.join(workflows, workflows.c.id == result_cache.c.workflow_id))
            .where(
                result_cache.c.key == key,
                result_cache.c.expires_at > now,
                workflows.c.status == WorkflowStatus.COMPLETED.value,
            )
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            return None
        expires_at = _aware(row["cache_expires_at"])
        assert expires_at is not None
        return _to_record(row), expires_at

    async def _put_cache(
        self,
        connection: AsyncConnection,
        key: str,
        workflow_type: str,
        workflow_id: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        values = {"workflow_type": workflow_type, "workflow_id": workflow_id, "created_at": created_at}
        statement = _upsert(connection, result_cache).values(key=key, expires_at=expires_at, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[result_cache.c.key], set_={**values, "expires_at": expires_at}
        )
        await connection.execute(statement)
        await connection.execute(delete(result_cache).where(result_cache.c.expires_at <= created_at))

    async def clear_cache(self, *, workflow_type: str | None = None) -> int:
        """Drop cached results (of one workflow type, or all); returns how many."""
        statement = delete(result_cache)
        if workflow_type is not None:
            statement = statement.where(result_cache.c.workflow_type == workflow_type)
        async with self.engine.begin() as connection:
            outcome = await connection.execute(statement)
        return int(outcome.rowcount or 0)

    async def flight_leader(self, *, key: str) -> WorkflowRecord | None:
        """The run in flight for ``key`` (queued or running), if any."""
        return await self._one(and_(workflows.c.flight_key == key, LIVE))

    async def take_flight(self, *, workflow_id: str, key: str) -> bool:
        """Make a follower the run in flight for ``key`` (its leader was cancelled); False if
        another record holds the flight already (or this one ended)."""
        try:
            async with self.engine.begin() as connection:
                outcome = await connection.execute(
                    update(workflows)
                    .where(workflows.c.id == workflow_id, LIVE)
                    .values(flight_key=key, cached_from=None, cache_outcome=CacheOutcome.MISS.value)
                )
                if outcome.rowcount:
                    await self._notify(connection, [workflow_id])
        except IntegrityError:
            return False
        return bool(outcome.rowcount)

    # --- observability ------------------------------------------------------------------------

    async def timeline(self, *, workflow_id: str) -> list[dict[str, Any]] | None:
        """The stored timeline of a run (None: no such run; [] when nothing was recorded yet)."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(workflows.c.timeline).where(workflows.c.id == workflow_id))).first()
        if row is None:
            return None
        return list(row[0] or [])

    async def live_counts(self) -> dict[str, int]:
        """How many records are queued, running and waiting right now, across every process."""
        wanted = (WorkflowStatus.QUEUED, WorkflowStatus.RUNNING, WorkflowStatus.WAITING)
        query = select(workflows.c.status, func.count()).where(NOT_TERMINAL).group_by(workflows.c.status)
        async with self.engine.connect() as connection:
            counts = {status: int(n) for status, n in (await connection.execute(query)).all()}
        return {status.value: counts.get(status.value, 0) for status in wanted}

    async def run_facts(self, *, since: datetime | None = None) -> list[RunFacts]:
        """Status, timing, usage and cache facts of every record created at or after ``since``."""
        columns = [
            workflows.c[name]
            for name in (
                "id", "workflow_type", "status", "created_at", "started_at", "finished_at", "usage", "cache_outcome",
                "cached_from",
            )
        ]  # fmt: skip
        query = select(*columns)
        if since is not None:
            query = query.where(workflows.c.created_at >= since)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [RunFacts(row) for row in rows]

    async def usage_of(self, *, workflow_ids: Sequence[str]) -> dict[str, Usage]:
        """The usage of each of ``workflow_ids`` (those that exist)."""
        found: dict[str, Usage] = {}
        ids = list(dict.fromkeys(workflow_ids))
        async with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                query = select(workflows.c.id, workflows.c.usage).where(workflows.c.id.in_(ids[start : start + 500]))
                found.update({row[0]: Usage.from_dict(row[1]) for row in (await connection.execute(query)).all()})
        return found

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(select(1))
