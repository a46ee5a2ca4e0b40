"""Monitoring: runs, feature drift, performance windows, segment metrics, pipeline steps.

Revision ID: 0003_monitoring
Revises: 0002_serving
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_monitoring"
down_revision = "0002_serving"
branch_labels = None
depends_on = None

METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall")


def _run_fk() -> sa.Column:
    return sa.Column(
        "run_id",
        sa.Integer,
        sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


def upgrade() -> None:
    op.create_table(
        "monitoring_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("model_name", sa.String(200), nullable=False, index=True),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("current", sa.Text, nullable=False),
        sa.Column("reference_rows", sa.Integer, nullable=False),
        sa.Column("current_rows", sa.Integer, nullable=False),
        sa.Column("current_digest", sa.String(64)),
        sa.Column("drift_share", sa.Float, nullable=False),
        sa.Column("drifted_features", sa.Text, nullable=False),
        sa.Column("prediction_psi", sa.Float, nullable=False),
        sa.Column("high_risk_share", sa.Float, nullable=False),
        sa.Column("estimated_f1", sa.Float),
        sa.Column("realised_f1", sa.Float),
        sa.Column("baseline_f1", sa.Float),
        sa.Column("retrain", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("report_path", sa.Text),
        sa.Column("mlflow_run_id", sa.String(64)),
        sa.Column("seconds", sa.Float, nullable=False),
    )
    op.create_table(
        "feature_drift",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("test", sa.String(10), nullable=False),
        sa.Column("statistic", sa.Float, nullable=False),
        sa.Column("p_value", sa.Float, nullable=False),
        sa.Column("psi", sa.Float, nullable=False),
        sa.Column("js", sa.Float, nullable=False),
        sa.Column("drifted", sa.Boolean, nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("missing_reference", sa.Float, nullable=False),
        sa.Column("missing_current", sa.Float, nullable=False),
        sa.Column("new_categories", sa.Text, nullable=False),
    )
    op.create_table(
        "performance_windows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("window_start", sa.String(10)),
        sa.Column("window_end", sa.String(10)),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("positive_rate", sa.Float),
        *[sa.Column(m, sa.Float) for m in METRICS],
    )
    op.create_table(
        "segment_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("column", sa.String(200), nullable=False),
        sa.Column("level", sa.String(200), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("positive_rate", sa.Float),
        *[sa.Column(m, sa.Float) for m in METRICS],
    )
    op.create_table(
        "pipeline_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline_run", sa.String(40), nullable=False, index=True),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_digest", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "pipeline_steps",
        "segment_metrics",
        "performance_windows",
        "feature_drift",
        "monitoring_runs",
    ):
        op.drop_table(table)
