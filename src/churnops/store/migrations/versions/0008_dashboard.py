"""What the retention dashboard filters and sorts on, stored with each score.

``run_scores`` gains ``segment`` (one mixed-radix integer per customer over the run's
segment columns, see :mod:`churnops.features.segments`) and ``value`` (the customer's
value from ``customer_value_column``); ``scoring_runs`` gains ``segments`` (how the run's
codes read, as JSON) and ``value_column``. All nullable: runs scored before keep NULLs and
still display. ``churn_scores`` is rebuilt to show the two new columns.

``customer_keys`` holds each run's customer-id hash index as sorted blocks (see
:mod:`churnops.batch.keys`), so a customer's history is a few lookups, not a scan of
every run; it is filled here for the runs the dates show.

Revision ID: 0008_dashboard
Revises: 0007_audit_quarantine
"""

import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0008_dashboard"
down_revision = "0007_audit_quarantine"
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
       s.run_id AS run_id{extra}
FROM scoring_dates d
JOIN scoring_runs r ON r.id = d.run_id
JOIN run_scores s ON s.run_id = d.run_id
"""
NEW_COLUMNS = """,
       s.segment AS segment,
       s.value AS value"""


# Plain ALTER TABLE, not batch mode (as 0006): SQLite adds and drops columns in place, also
# on the WITHOUT ROWID run_scores; a batch "move and copy" would rename a table the view reads.


def upgrade() -> None:
    """Add the columns, show them through ``churn_scores``, index the shown runs' ids."""
    op.execute("DROP VIEW churn_scores")
    op.add_column("run_scores", sa.Column("segment", sa.BigInteger))
    op.add_column("run_scores", sa.Column("value", sa.Float(precision=53)))
    op.add_column("scoring_runs", sa.Column("segments", sa.Text))
    op.add_column("scoring_runs", sa.Column("value_column", sa.String(200)))
    op.execute(VIEW.format(extra=NEW_COLUMNS))
    keys = op.create_table(
        "customer_keys",
        sa.Column("run_id", sa.BigInteger, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("block", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    _index_shown_runs(keys)


def _index_shown_runs(keys: sa.Table, rows: int = 100_000) -> None:
    """Write the customer-key blocks of every run a date shows (``rows`` ids at a time)."""
    import pyarrow as pa

    from churnops.batch.keys import KeyIndex

    conn = op.get_bind()
    shown = conn.execute(sa.text("SELECT DISTINCT run_id FROM scoring_dates")).scalars().all()
    for run_id in shown:
        with tempfile.TemporaryDirectory(prefix="churnops-0008-") as folder:
            index = KeyIndex(Path(folder))
            result = conn.execute(
                sa.text("SELECT customer_id, risk_rank FROM run_scores WHERE run_id = :r"),
                {"r": run_id},
            )
            while part := result.fetchmany(rows):
                ids, ranks = zip(*part, strict=True)
                index.add(pa.array(ids, pa.string()), pa.array(ranks, pa.int64()).to_numpy())
            index.finish()
            blocks = [{"run_id": run_id, "bucket": b, "block": k} for b, k in index.blocks()]
            if blocks:
                conn.execute(keys.insert(), blocks)


def downgrade() -> None:
    """Drop the index and the columns; restore 0005's ``churn_scores``."""
    op.drop_table("customer_keys")
    op.execute("DROP VIEW churn_scores")
    op.drop_column("scoring_runs", "value_column")
    op.drop_column("scoring_runs", "segments")
    op.drop_column("run_scores", "value")
    op.drop_column("run_scores", "segment")
    op.execute(VIEW.format(extra=""))
