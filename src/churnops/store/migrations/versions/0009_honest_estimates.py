"""What a monitoring run derived, and how far its label-free estimate can be trusted.

``monitoring_runs`` gains ``f1_floor`` (the floor the run applied: absolute, or the
champion's holdout F1 less ``f1_max_drop``), ``derived`` (JSON: the key features,
segments and time column the run used, and where each came from), ``warnings`` (JSON
list: configured names the data lacks, rows left out), ``estimate`` (JSON: each
label-free metric's band, the assumption it rests on, and the labels' verdict on it)
and ``estimate_disagrees`` (labels contradicted the estimate). All nullable: earlier
runs keep NULLs and still display.

Revision ID: 0009_honest_estimates
Revises: 0008_dashboard
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_honest_estimates"
down_revision = "0008_dashboard"
branch_labels = None
depends_on = None

COLUMNS = (
    ("f1_floor", sa.Float),
    ("derived", sa.Text),
    ("warnings", sa.Text),
    ("estimate", sa.Text),
    ("estimate_disagrees", sa.Boolean),
)


def upgrade() -> None:
    """Add the columns (plain ALTER TABLE, as in 0006: SQLite adds a column in place)."""
    for name, kind in COLUMNS:
        op.add_column("monitoring_runs", sa.Column(name, kind))


def downgrade() -> None:
    """Drop the columns."""
    for name, _ in reversed(COLUMNS):
        op.drop_column("monitoring_runs", name)
