"""Persistence of workflow records (SQLAlchemy 2 async; SQLite by default, PostgreSQL when configured)."""

from backend.runs.store.database import create_engine, is_postgres, libpq_url, run_migrations
from backend.runs.store.repository import (
    CHANGES_CHANNEL,
    FlightTaken,
    IdempotencyConflict,
    Page,
    RunFacts,
    WorkflowStore,
    utcnow,
)

__all__ = [
    "CHANGES_CHANNEL",
    "FlightTaken",
    "IdempotencyConflict",
    "Page",
    "RunFacts",
    "WorkflowStore",
    "create_engine",
    "is_postgres",
    "libpq_url",
    "run_migrations",
    "utcnow",
]
