"""WorkflowStore: every read and write of workflow records, keyword-only and transaction-scoped."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from agents.errors import InvalidInput
from backend.store.records import TERMINAL_STATUSES, WorkflowRecord, WorkflowStatus
from backend.store.tables import WorkflowRow

__all__ = ["IdempotencyConflict", "Page", "WorkflowStore", "utcnow"]


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


def _to_record(row: WorkflowRow) -> WorkflowRecord:
    created = _aware(row.created_at)
    assert created is not None
    return WorkflowRecord(
        id=row.id,
        workflow_type=row.workflow_type,
        status=WorkflowStatus(row.status),
        created_at=created,
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
        input=row.input,
        result=row.result,
        error_code=row.error_code,
        error_message=row.error_message,
        progress=row.progress or {},
        usage=row.usage or {},
        correlation_id=row.correlation_id,
        idempotency_key=row.idempotency_key,
        request_hash=row.request_hash,
        cancel_requested=bool(row.cancel_requested),
        attempts=row.attempts or 0,
    )


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
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInput("The cursor is not one this server issued.", field="query.cursor") from exc


class WorkflowStore:
    """Reads and writes workflow records. Every method is one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create(
        self, *, record: WorkflowRecord, owner: str | None = None, lease_seconds: float = 30.0
    ) -> WorkflowRecord:
        """Insert a queued record, leased to ``owner``; IdempotencyConflict if its key is taken."""
        row = WorkflowRow(
            lease_owner=owner,
            lease_expires_at=utcnow() + timedelta(seconds=lease_seconds) if owner else None,
            id=record.id,
            workflow_type=record.workflow_type,
            status=record.status.value,
            created_at=record.created_at,
            input=record.input,
            progress=record.progress,
            usage=record.usage,
            correlation_id=record.correlation_id,
            idempotency_key=record.idempotency_key,
            request_hash=record.request_hash,
            cancel_requested=False,
            attempts=0,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            if record.idempotency_key is None:
                raise
            existing = await self.get_by_idempotency_key(key=record.idempotency_key)
            if existing is None:
                raise
            raise IdempotencyConflict(existing) from None
        return record

    async def get(self, *, workflow_id: str) -> WorkflowRecord | None:
        async with self._sessions() as session:
            row = await session.get(WorkflowRow, workflow_id)
            return _to_record(row) if row is not None else None

    async def get_by_idempotency_key(self, *, key: str) -> WorkflowRecord | None:
        async with self._sessions() as session:
            row = (await session.execute(select(WorkflowRow).where(WorkflowRow.idempotency_key == key))).scalar()
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
        query = select(WorkflowRow)
        if workflow_type is not None:
            query = query.where(WorkflowRow.workflow_type == workflow_type)
        if status is not None:
            query = query.where(WorkflowRow.status == status.value)
        if cursor is not None:
            created_at, workflow_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    WorkflowRow.created_at < created_at,
                    and_(WorkflowRow.created_at == created_at, WorkflowRow.id < workflow_id),
                )
            )
        query = query.order_by(WorkflowRow.created_at.desc(), WorkflowRow.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(query)).scalars())
        items = [_to_record(row) for row in rows[:limit]]
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
        return Page(items, next_cursor)

    async def update(self, *, workflow_id: str, **values: Any) -> None:
        """Set columns on one record (``status`` may be a WorkflowStatus)."""
        if isinstance(values.get("status"), WorkflowStatus):
            values["status"] = values["status"].value
        async with self._sessions.begin() as session:
            await session.execute(update(WorkflowRow).where(WorkflowRow.id == workflow_id).values(**values))

    async def finish(
        self,
        *,
        workflow_id: str,
        status: WorkflowStatus,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        usage: dict[str, Any] | None = None,
        progress: dict[str, Any] | None = None,
    ) -> bool:
        """Move a non-terminal record to a terminal status; False if it was already terminal."""
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": utcnow(),
            "result": result,
            "error_code": error_code,
            "error_message": error_message,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if usage is not None:
            values["usage"] = usage
        if progress is not None:
            values["progress"] = progress
        async with self._sessions.begin() as session:
            outcome = await session.execute(
                update(WorkflowRow)
                .where(WorkflowRow.id == workflow_id, WorkflowRow.status.not_in(_terminal_values()))
                .values(**values)
            )
        return bool(outcome.rowcount)  # type: ignore[attr-defined]

    async def request_cancel(self, *, workflow_id: str) -> WorkflowRecord | None:
        """Flag a run for cancellation; a queued run is cancelled outright. None if unknown."""
        async with self._sessions.begin() as session:
            row = await session.get(WorkflowRow, workflow_id, with_for_update=True)
            if row is None:
                return None
            if row.status == WorkflowStatus.QUEUED.value:
                row.status = WorkflowStatus.CANCELLED.value
                row.finished_at = utcnow()
                row.lease_owner = None
            elif row.status == WorkflowStatus.RUNNING.value:
                row.cancel_requested = True
            return _to_record(row)

    async def claim(
        self, *, workflow_id: str, owner: str, lease_seconds: float, previous_owner: str | None = None
    ) -> WorkflowRecord | None:
        """Take the lease on a non-terminal record whose holder is gone; None if someone else won.

        ``previous_owner`` is the holder the caller saw and judged dead; the update only succeeds
        if that is still the holder (or the lease is free or expired), so two claimers never both win.
        """
        now = utcnow()
        async with self._sessions.begin() as session:
            outcome = await session.execute(
                update(WorkflowRow)
                .where(
                    WorkflowRow.id == workflow_id,
                    WorkflowRow.status.not_in(_terminal_values()),
                    or_(
                        WorkflowRow.lease_owner.is_(None),
                        WorkflowRow.lease_owner == owner,
                        WorkflowRow.lease_owner == (previous_owner or owner),
                        WorkflowRow.lease_expires_at < now,
                    ),
                )
                .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
            if not outcome.rowcount:  # type: ignore[attr-defined]
                return None
            row = await session.get(WorkflowRow, workflow_id)
            return _to_record(row) if row is not None else None

    async def unfinished(self) -> list[tuple[str, str | None, datetime | None]]:
        """Ids, lease owners and lease expiries of every queued or running record, oldest first."""
        query = (
            select(WorkflowRow.id, WorkflowRow.lease_owner, WorkflowRow.lease_expires_at)
            .where(WorkflowRow.status.not_in(_terminal_values()))
            .order_by(WorkflowRow.created_at)
        )
        async with self._sessions() as session:
            return [(row[0], row[1], _aware(row[2])) for row in (await session.execute(query)).all()]

    async def renew_leases(self, *, owner: str, workflow_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend our leases; returns the ids among them whose cancellation was requested."""
        if not workflow_ids:
            return set()
        expires = utcnow() + timedelta(seconds=lease_seconds)
        async with self._sessions.begin() as session:
            await session.execute(
                update(WorkflowRow)
                .where(WorkflowRow.id.in_(list(workflow_ids)), WorkflowRow.lease_owner == owner)
                .values(lease_expires_at=expires)
            )
            cancelled = await session.execute(
                select(WorkflowRow.id).where(
                    WorkflowRow.id.in_(list(workflow_ids)), WorkflowRow.cancel_requested.is_(True)
                )
            )
            return {row[0] for row in cancelled.all()}

    async def release_leases(self, *, owner: str) -> None:
        """Give up every lease ``owner`` holds, so another process can resume those runs at once."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(WorkflowRow)
                .where(WorkflowRow.lease_owner == owner, WorkflowRow.status.not_in(_terminal_values()))
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def ping(self) -> None:
        async with self._sessions() as session:
            await session.execute(select(1))


def _terminal_values() -> list[str]:
    return [status.value for status in TERMINAL_STATUSES]
