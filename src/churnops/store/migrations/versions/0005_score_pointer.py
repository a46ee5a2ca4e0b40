"""Scores per run, a pointer per date, and ``churn_scores`` as a view over them.

A run's rows go into ``run_scores`` keyed by (run_id, risk_rank), written in rank order
(an append to one B-tree, no secondary index to maintain); ``scoring_dates`` says which
complete run each date shows. Swapping a date is then one pointer update, and the rows of
the run it replaces are deleted after the swap instead of inside it. ``churn_scores``
keeps its columns and meaning for readers as a view; ``high_risk`` is derived from the
run's threshold, exactly as the run computed it.
``scoring_runs`` gains ``pid`` and ``host`` so a run whose process died can be told from
one still running.

Revision ID: 0005_score_pointer
Revises: 0004_batch
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_score_pointer"
down_revision = "0004_batch"
branch_labels = None
depends_on = None

VIEW = """
CREATE VIEW churn_scores AS
SELECT s.customer_id AS customer_id,
       d.scoring_date AS scoring_date,
       s.score AS score,
       s.score >= r.threshold AS high_risk,
       s.risk_rank AS risk_rank,
       r.model_name AS model_name,
       r.model_version AS model_version,
       r.threshold AS threshold,
       s.reasons AS reasons,
       s.run_id AS run_id
FROM scoring_dates d
JOIN scoring_runs r ON r.id = d.run_id
JOIN run_scores s ON s.run_id = d.run_id
"""


def upgrade() -> None:
    op.create_table(
        "run_scores",
        sa.Column("run_id", sa.BigInteger, primary_key=True),
        sa.Column("risk_rank", sa.BigInteger, primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=False),
        sa.Column("reasons", sa.Text),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "scoring_dates",
        sa.Column("scoring_date", sa.Date, primary_key=True),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("swapped_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("scoring_runs") as batch:
        batch.add_column(sa.Column("pid", sa.Integer))
        batch.add_column(sa.Column("host", sa.String(255)))
    op.execute(
        "INSERT INTO run_scores (run_id, risk_rank, customer_id, score, reasons) "
        "SELECT run_id, risk_rank, customer_id, score, reasons FROM churn_scores"
    )
    op.execute(
        "INSERT INTO scoring_dates (scoring_date, run_id, swapped_at) "
        "SELECT c.scoring_date, c.run_id, COALESCE(MAX(r.finished_at), MAX(r.started_at)) "
        "FROM churn_scores c JOIN scoring_runs r ON r.id = c.run_id "
        "GROUP BY c.scoring_date, c.run_id"
    )
    op.drop_index("ix_churn_scores_date_rank", table_name="churn_scores")
    op.drop_table("churn_scores")
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW churn_scores")
    op.create_table(
        "churn_scores",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
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
    op.execute(
        "INSERT INTO churn_scores (customer_id, scoring_date, score, high_risk, risk_rank, "
        "model_name, model_version, threshold, reasons, run_id) "
        "SELECT s.customer_id, d.scoring_date, s.score, s.score >= r.threshold, s.risk_rank, "
        "r.model_name, r.model_version, r.threshold, s.reasons, s.run_id "
        "FROM scoring_dates d JOIN scoring_runs r ON r.id = d.run_id "
        "JOIN run_scores s ON s.run_id = d.run_id"
    )
    with op.batch_alter_table("scoring_runs") as batch:
        batch.drop_column("host")
        batch.drop_column("pid")
    op.drop_table("scoring_dates")
    op.drop_table("run_scores")
