"""Human-in-the-loop: the ``waiting`` status and what a paused run asks and was answered.

- ``workflows.pending``: while a run is ``waiting``, the question it asks (``{"kind", ...}``).
- ``workflows.resume_value``: the answer recorded by ``POST /workflows/{id}/resume``, read by
  the run when it continues from its checkpoint.
- ``workflows.waiting_since``: when it started waiting (``AGENTFLOW_WAITING_TTL`` counts from here),
  indexed with the status for the expiry sweep.
- ``workflows.resumed_at``: when it last resumed (its deadline counts from here).

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("pending", sa.JSON))
        batch.add_column(sa.Column("resume_value", sa.JSON))
        batch.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("resumed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_workflows_status_waiting", "workflows", ["status", "waiting_since"])


def downgrade() -> None:
    op.drop_index("ix_workflows_status_waiting", table_name="workflows")
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("resumed_at")
        batch.drop_column("waiting_since")
        batch.drop_column("resume_value")
        batch.drop_column("pending")
