"""Registry events: every promotion decision and rollback.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False, index=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_version", sa.String(20)),
        sa.Column("to_version", sa.String(20)),
        sa.Column("metric", sa.String(40)),
        sa.Column("from_score", sa.Float),
        sa.Column("to_score", sa.Float),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_events")
