"""LangGraph-API threads, and the thread, metadata and multitask strategy of a run.

- ``threads``: one row per thread (owner, metadata, status, the values of its last run).
- ``workflows.thread_id`` / ``run_metadata`` / ``multitask_strategy``: a LangGraph run is a
  workflow record; these say which thread it belongs to and how it was admitted.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("thread_id", sa.String(36)))
        batch.add_column(sa.Column("run_metadata", sa.JSON))
        batch.add_column(sa.Column("multitask_strategy", sa.String(16)))
    op.create_index("ix_workflows_thread_created", "workflows", ["thread_id", "created_at", "id"])
    op.create_table(
        "threads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(32), nullable=False, server_default=""),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("values", sa.JSON),
        sa.Column("temporary", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_threads_owner_updated", "threads", ["owner", "updated_at", "id"])


def downgrade() -> None:
    op.drop_table("threads")
    op.drop_index("ix_workflows_thread_created", table_name="workflows")
    with op.batch_alter_table("workflows") as batch:
        for column in ("multitask_strategy", "run_metadata", "thread_id"):
            batch.drop_column(column)
