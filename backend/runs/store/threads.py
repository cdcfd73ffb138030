"""ThreadStore: the LangGraph-API threads, keyword-only and transaction-scoped like ``WorkflowStore``.

A thread row holds its owner, metadata, status and the values (final graph state) of its last
finished run. Its runs are ordinary workflow records carrying ``thread_id``. ``settle_thread`` is
called by ``WorkflowStore.finish`` inside the transaction that ends a run, so a thread's values
and status never disagree with its runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.runs.records import WorkflowStatus
from backend.runs.store.tables import LIVE, threads, workflows

__all__ = ["THREAD_STATUS_AFTER", "ThreadExists", "ThreadRecord", "ThreadStore", "settle_thread"]


#: The thread's status once its last live run ends, by how that run ended (LangGraph's thread
#: statuses: idle, busy, interrupted, error). A cancelled run leaves the thread ready for the next.
THREAD_STATUS_AFTER: Mapping[WorkflowStatus, str] = {
    WorkflowStatus.COMPLETED: "idle",
    WorkflowStatus.FAILED: "error",
    WorkflowStatus.CANCELLED: "idle",
    WorkflowStatus.WAITING: "interrupted",  # paused at an interrupt until someone answers it
}


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class ThreadExists(Exception):
    """A thread with this id exists already."""


@dataclass(slots=True)
class ThreadRecord:
    """One thread as the run engine sees it."""

    id: str
    owner: str
    metadata: dict[str, Any]
    status: str
    values: dict[str, Any] | None
    temporary: bool
    created_at: datetime
    updated_at: datetime


def _to_thread(row: RowMapping) -> ThreadRecord:
    return ThreadRecord(
        id=row["id"],
        owner=row["owner"] or "",
        metadata=row["metadata"] or {},
        status=row["status"],
        values=row["values"],
        temporary=bool(row["temporary"]),
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
    )


def _live_run_on(thread_id: str, *, other_than: str | None = None) -> Any:
    condition = and_(workflows.c.thread_id == thread_id, LIVE)
    if other_than is not None:
        condition = and_(condition, workflows.c.id != other_than)
    return exists().where(condition)


async def settle_thread(
    connection: AsyncConnection,
    *,
    thread_id: str,
    run_id: str,
    run_status: WorkflowStatus | None,
    values: dict[str, Any] | None,
) -> None:
    """Update a thread as one of its runs ends: its values (when given) and its status.

    The thread stays ``busy`` while another run of it is queued or running (an enqueued one).
    """
    busy = (await connection.execute(select(_live_run_on(thread_id, other_than=run_id)))).scalar()
    status = "busy" if busy else THREAD_STATUS_AFTER.get(run_status or WorkflowStatus.COMPLETED, "idle")
    changes: dict[str, Any] = {"status": status, "updated_at": _now()}
    if values is not None:
        changes["values"] = values
    await connection.execute(update(threads).where(threads.c.id == thread_id).values(**changes))


class ThreadStore:
    """Reads and writes threads. Every method is one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self, *, thread_id: str, owner: str, metadata: dict[str, Any], temporary: bool = False
    ) -> ThreadRecord:
        """Insert an idle thread; ThreadExists if the id is taken."""
        now = _now()
        values = {
            "id": thread_id,
            "owner": owner,
            "metadata": metadata,
            "status": "idle",
            "values": None,
            "temporary": temporary,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(threads).values(**values))
        except IntegrityError:
            raise ThreadExists(thread_id) from None
        return ThreadRecord(
            id=thread_id,
            owner=owner,
            metadata=metadata,
            status="idle",
            values=None,
            temporary=temporary,
            created_at=now,
            updated_at=now,
        )

    async def get(self, *, thread_id: str) -> ThreadRecord | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(threads).where(threads.c.id == thread_id))).mappings().first()
        return _to_thread(row) if row is not None else None

    async def search(
        self,
        *,
        owner: str | None,
        metadata: Mapping[str, Any] | None = None,
        status: str | None = None,
        ids: list[str] | None = None,
        limit: int = 10,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[ThreadRecord]:
        """Visible (not temporary) threads, by ``updated_at``; metadata matches key by key.

        The metadata filter is applied here rather than in SQL: JSON containment is spelled
        differently by every database, and a page of threads is small.
        """
        query = select(threads).where(threads.c.temporary.is_(False))
        if owner is not None:
            query = query.where(threads.c.owner == owner)
        if status is not None:
            query = query.where(threads.c.status == status)
        if ids:
            query = query.where(threads.c.id.in_(ids))
        order = (
            (threads.c.updated_at.desc(), threads.c.id.desc()) if newest_first else (threads.c.updated_at, threads.c.id)
        )
        query = query.order_by(*order)
        if not metadata:  # the common case pages in SQL; a metadata filter reads the owner's threads
            query = query.offset(offset).limit(limit)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        found = [_to_thread(row) for row in rows]
        if not metadata:
            return found
        found = [t for t in found if all(t.metadata.get(k) == v for k, v in metadata.items())]
        return found[offset : offset + limit]

    async def count(self, *, owner: str | None) -> int:
        query = select(func.count()).select_from(threads).where(threads.c.temporary.is_(False))
        if owner is not None:
            query = query.where(threads.c.owner == owner)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def merge_metadata(self, *, thread_id: str, metadata: Mapping[str, Any]) -> None:
        """Merge keys into a thread's metadata (read and write in one transaction)."""
        async with self.engine.begin() as connection:
            query = select(threads.c.metadata).where(threads.c.id == thread_id)
            if connection.dialect.name == "postgresql":
                query = query.with_for_update()
            current = (await connection.execute(query)).scalar()
            merged = {**(current or {}), **metadata}
            await connection.execute(
                update(threads).where(threads.c.id == thread_id).values(metadata=merged, updated_at=_now())
            )

    async def delete(self, *, thread_id: str) -> bool:
        """Drop a thread (its runs stay, as workflows); False if there was none."""
        async with self.engine.begin() as connection:
            outcome = await connection.execute(delete(threads).where(threads.c.id == thread_id))
        return bool(outcome.rowcount)

    async def occupy(self, *, thread_id: str, reject_if_busy: bool) -> bool:
        """Mark a thread ``busy`` for a new run; False when ``reject_if_busy`` and it is busy.

        The conditional update is the guard two concurrent ``reject`` submits race on: only one
        turns the thread busy. A thread left ``busy`` with no live run (a crash between this and
        the run's insert) is taken over rather than refusing every later run.
        """
        async with self.engine.begin() as connection:
            statement = update(threads).where(threads.c.id == thread_id)
            if reject_if_busy:
                statement = statement.where(threads.c.status != "busy")
            outcome = await connection.execute(statement.values(status="busy", updated_at=_now()))
            if outcome.rowcount:
                return True
            if (await connection.execute(select(_live_run_on(thread_id)))).scalar():
                return False
            await connection.execute(
                update(threads).where(threads.c.id == thread_id).values(status="busy", updated_at=_now())
            )
            return True

    async def release(self, *, thread_id: str, run_id: str) -> None:
        """Settle a thread whose run never got stored (its submit failed) or ended without a runner."""
        async with self.engine.begin() as connection:
            await settle_thread(connection, thread_id=thread_id, run_id=run_id, run_status=None, values=None)

    async def set_values(self, *, thread_id: str, values: dict[str, Any], run_id: str) -> None:
        """Store a run's final values on its thread (a run answered from the result cache)."""
        async with self.engine.begin() as connection:
            await settle_thread(
                connection, thread_id=thread_id, run_id=run_id, run_status=WorkflowStatus.COMPLETED, values=values
            )

    async def runs_ahead(self, *, thread_id: str, run_id: str, created_at: datetime) -> str | None:
        """The oldest live run of the thread submitted before ``run_id`` (an enqueued run waits on it)."""
        query = (
            select(workflows.c.id)
            .where(
                workflows.c.thread_id == thread_id,
                LIVE,
                # Same instant: the id breaks the tie the same way in every process.
                or_(
                    workflows.c.created_at < created_at,
                    and_(workflows.c.created_at == created_at, workflows.c.id < run_id),
                ),
            )
            .order_by(workflows.c.created_at, workflows.c.id)
            .limit(1)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return str(row[0]) if row is not None else None
