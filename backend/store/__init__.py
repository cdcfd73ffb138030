"""Persistence of workflow records (SQLAlchemy 2 async; SQLite by default, Postgres when configured)."""

from backend.store.database import create_engine, run_migrations
from backend.store.records import Usage, WorkflowRecord, WorkflowStatus
from backend.store.repository import WorkflowStore

__all__ = ["Usage", "WorkflowRecord", "WorkflowStatus", "WorkflowStore", "create_engine", "run_migrations"]
