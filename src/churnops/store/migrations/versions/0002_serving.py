"""Serving: API keys (hashed), the audit log and the sampled prediction log.

Revision ID: 0002_serving
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_serving"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, index=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("key_name", sa.String(200)),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("customer_ids", sa.Text),
        sa.Column("n_customers", sa.Integer, nullable=False),
        sa.Column("payload_digest", sa.String(64)),
        sa.Column("model_version", sa.String(20)),
        sa.Column("variant", sa.String(20)),
        sa.Column("probabilities", sa.Text),
    )
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(20), nullable=False, index=True),
        sa.Column("variant", sa.String(20), nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("churn", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("prediction_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
