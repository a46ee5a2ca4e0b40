"""A heartbeat per scoring run, so a run killed on another host is closed too.

``pid`` and ``host`` let a run close the dead runs of its own host; a run killed on another
machine (another container of a scheduled job: every pod has its own host name) stayed
``running`` forever. A run now refreshes ``heartbeat_at`` while it works, and the sweep
closes any run whose heartbeat is older than ``CHURNOPS_BATCH_STALE_MINUTES``.

Revision ID: 0006_run_heartbeat
Revises: 0005_score_pointer
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_run_heartbeat"
down_revision = "0005_score_pointer"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: SQLite (3.35+) adds and drops a column in place, while
# a batch "move and copy" would rename a table the churn_scores view reads.


def upgrade() -> None:
    """Add ``scoring_runs.heartbeat_at``."""
    op.add_column("scoring_runs", sa.Column("heartbeat_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Drop ``scoring_runs.heartbeat_at``."""
    op.drop_column("scoring_runs", "heartbeat_at")
