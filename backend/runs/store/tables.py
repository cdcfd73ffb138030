"""The SQLAlchemy table definitions (the Alembic migrations are the source of truth for DDL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["LIVE_STATUS_SQL", "ApiKeyRow", "Base", "ResultCacheRow", "WorkflowRow"]

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
