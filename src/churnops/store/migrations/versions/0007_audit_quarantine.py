"""Audit quarantine: audit and prediction-log rows the store refused, kept with the error.

One value the store cannot hold (a NUL character on PostgreSQL, an over-long client
request id) used to fail the audit writer's whole flush, so every row of it was lost. The
writer now isolates such rows and stores each here as ASCII JSON — a form every store
accepts — with the error text, and still writes every other row.

Revision ID: 0007_audit_quarantine
Revises: 0006_run_heartbeat
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_audit_quarantine"
down_revision = "0006_run_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``audit_quarantine``."""
    op.create_table(
        "audit_quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop ``audit_quarantine``."""
    op.drop_table("audit_quarantine")
