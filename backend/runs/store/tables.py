"""The SQLAlchemy table definitions (the Alembic migrations are the source of truth for DDL).

Plain ``Table`` objects: the store writes SQLAlchemy Core statements and maps no classes, and
declaring these tables as ORM classes cost ~10 ms of every start-up (mappers, instrumented
attributes) for nothing the store used.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from backend.runs.records import TERMINAL_STATUSES, WorkflowStatus

__all__ = [
    "FLIGHT_INDEX",
    "LIVE",
    "LIVE_STATUSES",
    "LIVE_STATUS_SQL",
    "NOT_TERMINAL",
    "add_flight_index",
    "api_keys",
    "metadata",
    "result_cache",
    "run_events",
    "threads",
    "webhook_deliveries",
    "workflows",
]

#: The statuses of a run still in flight, and the same as SQL (the single-flight index covers only
#: these rows).
#: A ``waiting`` run is not in flight: it holds no executor slot, its result depends on a human's
#: answer, and it gives up its flight key (a run that may pause never joins the cache at all).
LIVE_STATUSES = (WorkflowStatus.QUEUED.value, WorkflowStatus.RUNNING.value)
LIVE_STATUS_SQL = f"status IN ({', '.join(repr(status) for status in LIVE_STATUSES)})"
#: The single-flight index's name (see ``add_flight_index``).
FLIGHT_INDEX = "ux_workflows_flight"

metadata = MetaData()

workflows = Table(
    "workflows",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workflow_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("input", JSON, nullable=False),
    Column("result", JSON),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("progress", JSON, nullable=False),
    Column("usage", JSON, nullable=False),
    Column("correlation_id", String(64)),
    Column("idempotency_key", String(255)),  # unique per owner
    Column("request_hash", String(64)),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("job_id", BigInteger),
    Column("owner", String(32), nullable=False, default=""),
    Column("cache_key", String(64)),
    Column("flight_key", String(64)),
    Column("cached_from", String(36)),
    Column("cache_outcome", String(16)),
    Column("traceparent", String(64)),
    Column("timeline", JSON),
    Column("thread_id", String(36)),
    Column("run_metadata", JSON),
    Column("multitask_strategy", String(16)),
    Column("webhook_url", Text),
    Column("pending", JSON),
    Column("resume_value", JSON),
    Column("waiting_since", DateTime(timezone=True)),
    Column("resumed_at", DateTime(timezone=True)),
    Index("ix_workflows_created", "created_at", "id"),
    Index("ix_workflows_type_created", "workflow_type", "created_at", "id"),
    Index("ux_workflows_owner_idempotency", "owner", "idempotency_key", unique=True),
    Index("ix_workflows_owner_created", "owner", "created_at", "id"),
    Index("ix_workflows_owner_status", "owner", "status"),
    Index("ix_workflows_thread_created", "thread_id", "created_at", "id"),
    Index("ix_workflows_finished", "finished_at"),  # the event-retention sweep
    Index("ix_workflows_status_waiting", "status", "waiting_since"),  # also every lookup by status
)


#: A record still in flight (``LIVE_STATUSES``): what may start, and what holds a flight key.
LIVE = workflows.c.status.in_(LIVE_STATUSES)
#: A record that has not ended: what may still finish, be leased or be cancelled.
NOT_TERMINAL = workflows.c.status.not_in([status.value for status in TERMINAL_STATUSES])


def add_flight_index() -> None:
    """Add the single-flight index to ``workflows`` (once): at most one run in flight per cache
    key, across every process.

    A partial unique index, its predicate named per dialect (``sqlite_where``,
    ``postgresql_where``). Naming a dialect's option loads that dialect's modules, and
    PostgreSQL's are ~20 ms of every SQLite server's start-up for metadata no statement reads;
    so the index is added where the metadata meets a schema: the Alembic environment (migration
    0004 creates it).
    """
    if not any(index.name == FLIGHT_INDEX for index in workflows.indexes):
        live = text(LIVE_STATUS_SQL)
        Index(FLIGHT_INDEX, workflows.c.flight_key, unique=True, sqlite_where=live, postgresql_where=live)


#: An API key: its prefix and keyed hash (never the secret), scopes and limits.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("max_queued", Integer),
    Column("rate_limit", String(64)),
    Column("daily_token_budget", BigInteger),
)

#: One cached result: the completed run that answers every identical request until it expires.
result_cache = Table(
    "result_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("workflow_type", String(64), nullable=False),
    Column("workflow_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_result_cache_expires", "expires_at"),
)

#: A LangGraph-API thread: the runs made on it, and the values (final state) of the last one.
threads = Table(
    "threads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(32), nullable=False, default=""),
    Column("metadata", JSON, nullable=False),
    # idle, busy, interrupted or error (the LangGraph thread statuses).
    Column("status", String(16), nullable=False),
    Column("values", JSON),
    # Made for one stateless run (``on_completion: delete``): hidden from the thread API once it ends.
    Column("temporary", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_threads_owner_updated", "owner", "updated_at", "id"),
)

#: One event of a run's log (``backend.runs.events``): ``seq`` counts from 1 per run.
run_events = Table(
    "run_events",
    metadata,
    Column("workflow_id", String(36), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: The outbox: one webhook delivery per finished run that asked for one, and its attempts.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),  # the ``webhook-id`` header
    Column("workflow_id", String(36), nullable=False),
    Column("url", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("last_status_code", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ux_webhook_deliveries_workflow", "workflow_id", unique=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)
