"""The webhook outbox: deliveries written with a run's final transaction, claimed and settled by the dispatcher.

A row is added by the store in the very transaction that makes a run final (``enqueue``), so a
crash between "the run ended" and "the webhook was sent" can never lose the delivery. The
dispatcher of any process claims due rows: the claim pushes ``next_attempt_at`` one lease
ahead and counts the attempt, so if that process dies mid-attempt the row simply falls due
again once the lease runs out (at least once, never lost). PostgreSQL claims with
``FOR UPDATE SKIP LOCKED`` (many processes, no two on one row); SQLite serialises writers, so
the same single ``UPDATE … RETURNING`` is atomic there as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.runs.records import DeliveryStatus, WebhookState
from backend.runs.store.tables import webhook_deliveries as deliveries

__all__ = ["ClaimedDelivery", "WebhookOutbox", "deliveries", "delivery_values", "enqueue", "new_delivery_id"]

_ERROR_CHARS = 500  # last_error is for people; the receiver's body is not kept


def new_delivery_id() -> str:
    """The id of a new delivery: the ``webhook-id`` of every attempt."""
    return f"msg_{uuid.uuid4().hex}"


def delivery_values(*, workflow_id: str, url: str, now: datetime) -> dict[str, Any]:
    """A new pending delivery, due at once; its id is the ``webhook-id`` of every attempt."""
    return {
        "id": new_delivery_id(),
        "workflow_id": workflow_id,
        "url": url,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def enqueue(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Write deliveries on ``connection``, inside the caller's transaction (the one that ends the runs)."""
    if rows:
        await connection.execute(insert(deliveries), list(rows))


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this process now owns for one attempt (``attempt`` counts from 1)."""

    id: str
    workflow_id: str
    url: str
    attempt: int


class WebhookOutbox:
    """Claims due deliveries and records how each attempt ended."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(self, *, now: datetime, limit: int, lease_seconds: float) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due deliveries for one attempt each (none: an empty list)."""
        due = (deliveries.c.status == DeliveryStatus.PENDING.value, deliveries.c.next_attempt_at <= now)
        # A read first: an idle poll costs no write transaction (SQLite has one writer at a time).
        async with self.engine.connect() as connection:
            if (await connection.execute(select(deliveries.c.id).where(*due).limit(1))).first() is None:
                return []
        candidates = (
            select(deliveries.c.id)
            .where(*due)
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's one writer makes it moot
        )
        statement = (
            update(deliveries)
            .where(deliveries.c.id.in_(candidates.scalar_subquery()), *due)
            .values(
                attempts=deliveries.c.attempts + 1,
                next_attempt_at=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .returning(deliveries.c.id, deliveries.c.workflow_id, deliveries.c.url, deliveries.c.attempts)
        )
        async with self.engine.begin() as connection:
            rows = (await connection.execute(statement)).all()
        return [ClaimedDelivery(id=row[0], workflow_id=row[1], url=row[2], attempt=row[3]) for row in rows]

    async def settle(
        self,
        *,
        delivery: ClaimedDelivery,
        now: datetime,
        status: DeliveryStatus,
        error: str | None = None,
        status_code: int | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Record an attempt's outcome: delivered, failed for good, or pending until ``retry_at``.

        Only the claimer of this attempt may settle it (a claim whose lease ran out and was taken
        again is stale): False then, and nothing changes.
        """
        values: dict[str, Any] = {
            "status": status.value,
            "last_error": error[:_ERROR_CHARS] if error else None,
            "last_status_code": status_code,
            "updated_at": now,
        }
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        statement = (
            update(deliveries)
            .where(
                deliveries.c.id == delivery.id,
                deliveries.c.attempts == delivery.attempt,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .values(**values)
        )
        async with self.engine.begin() as connection:
            outcome = await connection.execute(statement)
        return bool(outcome.rowcount)

    async def states(self, *, workflow_ids: Sequence[str]) -> dict[str, WebhookState]:
        """The delivery state of each of these runs that has a delivery."""
        if not workflow_ids:
            return {}
        query = select(deliveries.c.workflow_id, deliveries.c.status, deliveries.c.attempts).where(
            deliveries.c.workflow_id.in_(list(dict.fromkeys(workflow_ids)))
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row[0]: WebhookState(status=DeliveryStatus(row[1]), attempts=int(row[2])) for row in rows}

    async def rows(self, *, workflow_id: str | None = None) -> list[dict[str, Any]]:
        """Every delivery (of one run), oldest first: for operators and tests."""
        query = select(deliveries).order_by(deliveries.c.created_at)
        if workflow_id is not None:
            query = query.where(deliveries.c.workflow_id == workflow_id)
        async with self.engine.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings().all()]
