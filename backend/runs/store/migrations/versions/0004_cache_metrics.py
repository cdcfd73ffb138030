"""Result cache, single flight, cost/timeline columns.

- ``result_cache``: one row per cache key, naming the completed run whose result answers every
  identical request until ``expires_at``.
- ``workflows.cache_key`` / ``cache_outcome`` / ``cached_from``: what the cache did for a record,
  and the run whose result it carries (or follows while in flight).
- ``workflows.flight_key`` with a partial unique index over queued and running rows: at most one
  run in flight per cache key, across every process sharing the database (single flight).
- ``workflows.traceparent``: the submit's trace context, so a run's spans join its request's trace.
- ``workflows.timeline``: the run's nodes and upstream calls, kept with the run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_LIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("cache_key", sa.String(64)))
        batch.add_column(sa.Column("flight_key", sa.String(64)))
        batch.add_column(sa.Column("cached_from", sa.String(36)))
        batch.add_column(sa.Column("cache_outcome", sa.String(16)))
        batch.add_column(sa.Column("traceparent", sa.String(64)))
        batch.add_column(sa.Column("timeline", sa.JSON))
    op.create_index(
        "ux_workflows_flight", "workflows", ["flight_key"], unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE
    )
    op.create_table(
        "result_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("workflow_type", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_result_cache_expires", "result_cache", ["expires_at"])


def downgrade() -> None:
    op.drop_table("result_cache")
    op.drop_index("ux_workflows_flight", table_name="workflows")
    with op.batch_alter_table("workflows") as batch:
        for column in ("timeline", "traceparent", "cache_outcome", "cached_from", "flight_key", "cache_key"):
            batch.drop_column(column)
