"""Per-run event log for resumable event streams.

- ``run_events``: every event of a run (``values``, ``updates``, ``messages``, ``custom``,
  ``status``, ``end``) under a per-run sequence number, primary key (workflow_id, seq).
- ``ix_workflows_finished``: the retention sweep finds the runs that ended long enough ago.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_events",
        sa.Column("workflow_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_workflows_finished", "workflows", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_workflows_finished", table_name="workflows")
    op.drop_table("run_events")
