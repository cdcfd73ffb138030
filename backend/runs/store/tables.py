"""The SQLAlchemy table definitions (the Alembic migrations are the source of truth for DDL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "LIVE_STATUS_SQL",
    "ApiKeyRow",
    "Base",
    "ResultCacheRow",
    "RunEventRow",
    "ThreadRow",
    "WebhookDeliveryRow",
    "WorkflowRow",
]

#: The statuses of a run still in flight, as SQL (the single-flight index covers only these rows).
#: A ``waiting`` run is not in flight: it holds no executor slot, its result depends on a human's
#: answer, and it gives up its flight key (a run that may pause never joins the cache at all).
LIVE_STATUS_SQL = "status IN ('queued', 'running')"


class Base(DeclarativeBase):
    pass


class WorkflowRow(Base):
    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))  # unique per owner
    request_hash: Mapped[str | None] = mapped_column(String(64))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    owner: Mapped[str] = mapped_column(String(32), default="")
    cache_key: Mapped[str | None] = mapped_column(String(64))
    flight_key: Mapped[str | None] = mapped_column(String(64))
    cached_from: Mapped[str | None] = mapped_column(String(36))
    cache_outcome: Mapped[str | None] = mapped_column(String(16))
    traceparent: Mapped[str | None] = mapped_column(String(64))
    timeline: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    thread_id: Mapped[str | None] = mapped_column(String(36))
    run_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    multitask_strategy: Mapped[str | None] = mapped_column(String(16))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resume_value: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_workflows_created", "created_at", "id"),
        Index("ix_workflows_type_created", "workflow_type", "created_at", "id"),
        Index("ix_workflows_status", "status"),
        Index("ux_workflows_owner_idempotency", "owner", "idempotency_key", unique=True),
        Index("ix_workflows_owner_created", "owner", "created_at", "id"),
        Index("ix_workflows_owner_status", "owner", "status"),
        Index("ix_workflows_thread_created", "thread_id", "created_at", "id"),
        Index("ix_workflows_finished", "finished_at"),  # the event-retention sweep
        Index("ix_workflows_status_waiting", "status", "waiting_since"),
        # Single flight: at most one run in flight per cache key, across every process.
        Index(
            "ux_workflows_flight",
            "flight_key",
            unique=True,
            sqlite_where=text(LIVE_STATUS_SQL),
            postgresql_where=text(LIVE_STATUS_SQL),
        ),
    )


class ApiKeyRow(Base):
    """An API key: its prefix and keyed hash (never the secret), scopes and limits."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    max_queued: Mapped[int | None] = mapped_column(Integer)
    rate_limit: Mapped[str | None] = mapped_column(String(64))
    daily_token_budget: Mapped[int | None] = mapped_column(BigInteger)


class ResultCacheRow(Base):
    """One cached result: the completed run that answers every identical request until it expires."""

    __tablename__ = "result_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_type: Mapped[str] = mapped_column(String(64))
    workflow_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_result_cache_expires", "expires_at"),)


class ThreadRow(Base):
    """A LangGraph-API thread: the runs made on it, and the values (final state) of the last one."""

    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    #: idle, busy, interrupted or error (the LangGraph thread statuses).
    status: Mapped[str] = mapped_column(String(16))
    values: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Made for one stateless run (``on_completion: delete``): hidden from the thread API once it ends.
    temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_threads_owner_updated", "owner", "updated_at", "id"),)


class RunEventRow(Base):
    """One event of a run's log (``backend.runs.events``): ``seq`` counts from 1 per run."""

    __tablename__ = "run_events"

    workflow_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDeliveryRow(Base):
    """The outbox: one webhook delivery per finished run that asked for one, and its attempts."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the ``webhook-id`` header
    workflow_id: Mapped[str] = mapped_column(String(36))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ux_webhook_deliveries_workflow", "workflow_id", unique=True),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )
