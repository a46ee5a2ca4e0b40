"""Batch scoring: scoring runs, churn scores per date, rejected rows.

Revision ID: 0004_batch
Revises: 0003_monitoring
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_batch"
down_revision = "0003_monitoring"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "scoring_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("scoring_date", sa.Date, nullable=False, index=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_digest", sa.String(64)),
        sa.Column("engine", sa.String(20), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("threshold", sa.Float),
        sa.Column("rows_in", sa.BigInteger, nullable=False),
        sa.Column("rows_scored", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("high_risk", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Float),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "churn_scores",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("scoring_date", sa.Date, nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=False),
        sa.Column("high_risk", sa.Boolean, nullable=False),
        sa.Column("risk_rank", sa.BigInteger, nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("threshold", sa.Float(precision=53), nullable=False),
        sa.Column("reasons", sa.Text),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("scoring_date", "customer_id", name="uq_churn_scores_date_customer"),
    )
    op.create_index("ix_churn_scores_date_rank", "churn_scores", ["scoring_date", "risk_rank"])
    op.create_table(
        "rejected_rows",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("row_number", sa.BigInteger, nullable=False),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rejected_rows")
    op.drop_index("ix_churn_scores_date_rank", table_name="churn_scores")
    op.drop_table("churn_scores")
    op.drop_table("scoring_runs")
