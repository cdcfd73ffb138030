"""WorkflowStore: every read and write of workflow records, keyword-only and transaction-scoped.

Statements are SQLAlchemy Core (no ORM unit of work on the hot paths: submit, poll, progress).
Finished records never change again, so the store keeps the most recent ones in a small LRU
cache; polling a finished run costs no database round trip, in any worker.

Inserts are group-committed: submits that arrive while a commit is in flight are written
together in the next transaction, so under load a burst of submits costs one round trip to
the database instead of one each, and an idle server still commits a lone submit at once.
Every caller still returns only after its own row is committed. With a job queue, each batch's
jobs are deferred in the same transaction as its rows: a row is never committed without its job.

On PostgreSQL every write that changes what a client can see also sends ``NOTIFY agentflow_runs``
with the workflow id, in the same transaction, so waiters in every process wake on commit.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agents.errors import InvalidInput
from backend.runs.records import TERMINAL_STATUSES, Usage, WorkflowRecord, WorkflowStatus
from backend.runs.store.tables import WorkflowRow

__all__ = ["CHANGES_CHANNEL", "IdempotencyConflict", "JobDeferrer", "Page", "WorkflowStore", "utcnow"]

#: The PostgreSQL NOTIFY channel that carries the id of every workflow whose record changed.
CHANGES_CHANNEL = "agentflow_runs"
#: Defers one job per workflow id on the given connection (inside the insert's transaction) and
#: returns the job ids, in order.
JobDeferrer = Callable[[AsyncConnection, list[str]], Awaitable[list[int]]]

workflows = cast(Table, WorkflowRow.__table__)
_RECORD_COLUMNS = [
    workflows.c[name]
    for name in (
        "id", "workflow_type", "status", "created_at", "started_at", "finished_at", "input", "result", "error_code",
        "error_message", "progress", "usage", "correlation_id", "idempotency_key", "request_hash", "cancel_requested",
        "attempts", "job_id",
    )
]  # fmt: skip
_TERMINAL_VALUES = [status.value for status in TERMINAL_STATUSES]
_NOT_TERMINAL = workflows.c.status.not_in(_TERMINAL_VALUES)


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


class Page:
    def __init__(self, items: list[WorkflowRecord], next_cursor: str | None) -> None:
        self.items = items
        self.next_cursor = next_cursor


def _to_record(row: RowMapping) -> WorkflowRecord:
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
    )


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the caller went away; nothing to tell it
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def encode_cursor(created_at: datetime, workflow_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), workflow_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, workflow_id = json.loads(raw)
        parsed = _aware(datetime.fromisoformat(created))
        assert parsed is not None
        return parsed, str(workflow_id)
    except (ValueError, TypeError, AssertionError) as exc:
        raise InvalidInput("The cursor is not one this server issued.", field="query.cursor") from exc


class WorkflowStore:
    """Reads and writes workflow records. Every method is one short transaction."""

    def __init__(
        self, engine: AsyncEngine, *, defer_jobs: JobDeferrer | None = None, finished_cache_size: int = 10_000
    ) -> None:
        self.engine = engine
        self.defer_jobs = defer_jobs
        self.notifies = engine.dialect.name == "postgresql"
        self._finished: OrderedDict[str, WorkflowRecord] = OrderedDict()
        self._finished_cache_size = finished_cache_size
        self._pending_inserts: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._inserter: asyncio.Task[None] | None = None

    def remember_finished(self, record: WorkflowRecord) -> None:
        """Cache a terminal record (they are immutable, so the cache is never stale)."""
        if not record.status.is_terminal:
            return
        self._finished[record.id] = record
        self._finished.move_to_end(record.id)
        while len(self._finished) > self._finished_cache_size:
            self._finished.popitem(last=False)

    async def create(
        self, *, record: WorkflowRecord, owner: str | None = None, lease_seconds: float = 30.0
    ) -> WorkflowRecord:
        """Insert a queued record, leased to ``owner``; IdempotencyConflict if its key is taken."""
        values = {
            "id": record.id,
            "workflow_type": record.workflow_type,
            "status": record.status.value,
            "created_at": record.created_at,
            "input": record.input,
            "progress": record.progress,
            "usage": record.usage.as_dict(),
            "correlation_id": record.correlation_id,
            "idempotency_key": record.idempotency_key,
            "request_hash": record.request_hash,
            "cancel_requested": False,
            "attempts": 0,
            "lease_owner": owner,
            "lease_expires_at": utcnow() + timedelta(seconds=lease_seconds) if owner else None,
        }
        try:
            await self._insert(values)
        except IntegrityError:
            if record.idempotency_key is None:
                raise
            existing = await self.get_by_idempotency_key(key=record.idempotency_key)
            if existing is None:
                raise
            raise IdempotencyConflict(existing) from None
        record.job_id = cast("int | None", values.get("job_id"))
        return record

    async def _insert(self, values: dict[str, Any]) -> None:
        """Queue one row for the next group commit and wait until it is committed (or refused)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_inserts.append((values, done))
        if self._inserter is None or self._inserter.done():
            self._inserter = asyncio.create_task(self._write_inserts(), name="store-inserts")
        await done

    async def _write_inserts(self) -> None:
        while self._pending_inserts:
            batch, self._pending_inserts = self._pending_inserts, []
            try:
                async with self.engine.begin() as connection:
                    await self._defer([values for values, _ in batch], connection)
                    await connection.execute(insert(workflows), [values for values, _ in batch])
            except IntegrityError:
                # One row of the batch (a reused Idempotency-Key) spoils it: write them one by one
                # so only that caller sees the conflict.
                for values, done in batch:
                    try:
                        async with self.engine.begin() as connection:
                            await self._defer([values], connection)
                            await connection.execute(insert(workflows).values(**values))
                    except Exception as error:  # handed to the caller, who re-raises it
                        _settle(done, error)
                    else:
                        _settle(done, None)
            except Exception as error:
                for _, done in batch:
                    _settle(done, error)
            else:
                for _, done in batch:
                    _settle(done, None)

    async def _defer(self, rows: list[dict[str, Any]], connection: AsyncConnection) -> None:
        if self.defer_jobs is None:
            return
        job_ids = await self.defer_jobs(connection, [row["id"] for row in rows])
        for row, job_id in zip(rows, job_ids, strict=True):
            row["job_id"] = job_id

    async def _notify(self, connection: AsyncConnection, workflow_ids: Sequence[str]) -> None:
        if self.notifies:
            for workflow_id in workflow_ids:
                await connection.execute(select(func.pg_notify(CHANGES_CHANNEL, workflow_id)))

    async def get(self, *, workflow_id: str) -> WorkflowRecord | None:
        cached = self._finished.get(workflow_id)
        if cached is not None:
            return cached
        record = await self._one(workflows.c.id == workflow_id)
        if record is not None:
            self.remember_finished(record)
        return record

    async def get_by_idempotency_key(self, *, key: str) -> WorkflowRecord | None:
        return await self._one(workflows.c.idempotency_key == key)

    async def _one(self, condition: Any) -> WorkflowRecord | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(*_RECORD_COLUMNS).where(condition))).mappings().first()
        return _to_record(row) if row is not None else None

    async def page(
        self,
        *,
        workflow_type: str | None = None,
        status: WorkflowStatus | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """Newest first, keyset-paginated on (created_at, id)."""
        query = select(*_RECORD_COLUMNS)
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
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
        return Page(items, next_cursor)

    async def update(self, *, workflow_id: str, **values: Any) -> None:
        """Set columns on one record (``status`` may be a WorkflowStatus, ``usage`` a Usage)."""
        if isinstance(values.get("status"), WorkflowStatus):
            values["status"] = values["status"].value
        if isinstance(values.get("usage"), Usage):
            values["usage"] = values["usage"].as_dict()
        async with self.engine.begin() as connection:
            await connection.execute(update(workflows).where(workflows.c.id == workflow_id).values(**values))
            await self._notify(connection, [workflow_id])

    async def start_run(self, *, workflow_id: str, started_at: datetime, attempts: int) -> bool:
        """Mark a live record ``running`` for its next attempt; False if it already ended."""
        async with self.engine.begin() as connection:
            outcome = await connection.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id, _NOT_TERMINAL)
                .values(status=WorkflowStatus.RUNNING.value, started_at=started_at, attempts=attempts)
            )
            if outcome.rowcount:
                await self._notify(connection, [workflow_id])
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
    ) -> bool:
        """Move a non-terminal record to a terminal status; False if it was already terminal."""
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": finished_at or utcnow(),
            "result": result,
            "error_code": error_code,
            "error_message": error_message,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if usage is not None:
            values["usage"] = usage.as_dict()
        if progress is not None:
            values["progress"] = progress
        async with self.engine.begin() as connection:
            outcome = await connection.execute(
                update(workflows).where(workflows.c.id == workflow_id, _NOT_TERMINAL).values(**values)
            )
            if outcome.rowcount:
                await self._notify(connection, [workflow_id])
        return bool(outcome.rowcount)

    async def request_cancel(self, *, workflow_id: str) -> WorkflowRecord | None:
        """Flag a run for cancellation; a queued run is cancelled outright. None if unknown."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id, workflows.c.status == WorkflowStatus.QUEUED.value)
                .values(status=WorkflowStatus.CANCELLED.value, finished_at=utcnow(), lease_owner=None)
            )
            await connection.execute(
                update(workflows)
                .where(workflows.c.id == workflow_id, workflows.c.status == WorkflowStatus.RUNNING.value)
                .values(cancel_requested=True)
            )
            row = (
                (await connection.execute(select(*_RECORD_COLUMNS).where(workflows.c.id == workflow_id)))
                .mappings()
                .first()
            )
            if row is not None:
                await self._notify(connection, [workflow_id])
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
                    _NOT_TERMINAL,
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
            row = (
                (await connection.execute(select(*_RECORD_COLUMNS).where(workflows.c.id == workflow_id)))
                .mappings()
                .first()
            )
        return _to_record(row) if row is not None else None

    async def unfinished(self, *, exclude_owner: str) -> list[tuple[str, str | None, datetime | None]]:
        """Ids, lease owners and lease expiries of queued or running records held by anyone but
        ``exclude_owner`` (or by nobody), oldest first: the candidates for a recovery sweep."""
        query = (
            select(workflows.c.id, workflows.c.lease_owner, workflows.c.lease_expires_at)
            .where(
                _NOT_TERMINAL,
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
                update(workflows)
                .where(workflows.c.lease_owner == owner, _NOT_TERMINAL)
                .values(lease_expires_at=expires)
            )
            cancelled = await connection.execute(
                select(workflows.c.id).where(
                    workflows.c.lease_owner == owner, _NOT_TERMINAL, workflows.c.cancel_requested.is_(True)
                )
            )
            return {row[0] for row in cancelled.all()}

    async def release_leases(self, *, owner: str) -> None:
        """Give up every lease ``owner`` holds, so another process can resume those runs at once."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(workflows)
                .where(workflows.c.lease_owner == owner, _NOT_TERMINAL)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def unfinished_since(self, *, before: datetime) -> list[WorkflowRecord]:
        """Queued or running records created before ``before``, oldest first (queue reconciliation)."""
        query = select(*_RECORD_COLUMNS).where(_NOT_TERMINAL, workflows.c.created_at < before)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(workflows.c.created_at))).mappings().all()
        return [_to_record(row) for row in rows]

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(select(1))
