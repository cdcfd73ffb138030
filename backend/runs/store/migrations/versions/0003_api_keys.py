"""API keys and per-key ownership of workflows.

- ``api_keys``: a human-visible prefix, the keyed hash of the secret (never the secret), scopes,
  timestamps and per-key limits.
- ``workflows.owner``: the id of the key that created the run ('' when auth is off), and
  Idempotency-Keys become unique per owner instead of globally.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Names SQLite's unnamed column constraints, so batch mode can drop the old global unique one.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("max_queued", sa.Integer),
        sa.Column("rate_limit", sa.String(64)),
        sa.Column("daily_token_budget", sa.BigInteger),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint("workflows_idempotency_key_key", "workflows", type_="unique")
        op.add_column("workflows", sa.Column("owner", sa.String(32), nullable=False, server_default=""))
    else:
        with op.batch_alter_table("workflows", naming_convention=_NAMING) as batch:
            batch.drop_constraint("uq_workflows_idempotency_key", type_="unique")
            batch.add_column(sa.Column("owner", sa.String(32), nullable=False, server_default=""))
    op.create_index("ux_workflows_owner_idempotency", "workflows", ["owner", "idempotency_key"], unique=True)
    op.create_index("ix_workflows_owner_created", "workflows", ["owner", "created_at", "id"])
    # The max_queued quota counts a key's unfinished runs on every submit: an index lookup, not a
    # scan of everything the key ever ran.
    op.create_index("ix_workflows_owner_status", "workflows", ["owner", "status"])


def downgrade() -> None:
    op.drop_index("ix_workflows_owner_status", "workflows")
    op.drop_index("ix_workflows_owner_created", "workflows")
    op.drop_index("ux_workflows_owner_idempotency", "workflows")
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("owner")
        batch.create_unique_constraint("uq_workflows_idempotency_key", ["idempotency_key"])
    op.drop_table("api_keys")
