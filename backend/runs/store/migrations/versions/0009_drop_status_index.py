"""Drop ``ix_workflows_status``: ``ix_workflows_status_waiting`` (status, waiting_since) starts
with the same column, so it serves every lookup by status, and one index fewer is one page fewer
written per submit and per status change (issue 16).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_workflows_status", table_name="workflows")


def downgrade() -> None:
    op.create_index("ix_workflows_status", "workflows", ["status"])
