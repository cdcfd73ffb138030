"""Job queue: the workflows' procrastinate job id, and (on PostgreSQL) procrastinate's schema.

The queue executor defers a run's job in the same transaction that inserts its row, and keeps
the job id on the row so a cancel can reach the job. procrastinate leaves schema management to
the application's own migration tool; its schema is applied here once, and a later procrastinate
upgrade brings its migration scripts in as further revisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("job_id", sa.BigInteger))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        exists = bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar()
        if not exists:
            # The driver sees placeholders in any "%": escape them, as procrastinate itself does.
            bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("job_id")
