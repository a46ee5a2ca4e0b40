"""Operational tables (SQLAlchemy 2). Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Base(DeclarativeBase):
    """Declarative base for every churnops table."""


class RegistryEvent(Base):
    """One promotion decision or rollback: who, when, from which version to which, why."""

    __tablename__ = "registry_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    model_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    action: Mapped[str] = mapped_column(sa.String(20))  # promoted | kept | rollback | initial
    from_version: Mapped[str | None] = mapped_column(sa.String(20))
    to_version: Mapped[str | None] = mapped_column(sa.String(20))
    metric: Mapped[str | None] = mapped_column(sa.String(40))
    from_score: Mapped[float | None] = mapped_column(sa.Float)
    to_score: Mapped[float | None] = mapped_column(sa.Float)
    reason: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(sa.String(200))


class ApiKey(Base):
    """An API key of the scoring service: only its SHA-256 is stored, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))  # scorer | admin
    prefix: Mapped[str] = mapped_column(sa.String(20))  # shown in listings to tell keys apart
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class AuditLog(Base):
    """One API call: who (key name), what (route, customers, payload digest), with which model."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    key_name: Mapped[str | None] = mapped_column(sa.String(200))
    route: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[int] = mapped_column(sa.Integer)
    latency_ms: Mapped[float] = mapped_column(sa.Float)
    customer_ids: Mapped[str | None] = mapped_column(sa.Text)  # JSON list
    n_customers: Mapped[int] = mapped_column(sa.Integer, default=0)
    payload_digest: Mapped[str | None] = mapped_column(sa.String(64))
    model_version: Mapped[str | None] = mapped_column(sa.String(20))
    variant: Mapped[str | None] = mapped_column(sa.String(20))
    probabilities: Mapped[str | None] = mapped_column(sa.Text)  # JSON list, same order as ids


class PredictionLog(Base):
    """A sampled prediction (features + score) for monitoring; shadow scores are logged too."""

    __tablename__ = "prediction_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    model_name: Mapped[str] = mapped_column(sa.String(200))
    model_version: Mapped[str] = mapped_column(sa.String(20), index=True)
    variant: Mapped[str] = mapped_column(sa.String(20))  # champion | challenger | shadow
    customer_id: Mapped[str | None] = mapped_column(sa.String(200))
    features: Mapped[str] = mapped_column(sa.Text)  # JSON object as received
    probability: Mapped[float] = mapped_column(sa.Float)
    churn: Mapped[bool] = mapped_column(sa.Boolean)


class AuditQuarantine(Base):
    """An audit or prediction-log row the store refused, kept as ASCII JSON with the error.

    The audit writer isolates a refused row (one value the store cannot hold must not cost
    the other rows of a flush) and stores it here unaltered, in a form every store accepts.
    """

    __tablename__ = "audit_quarantine"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # audit | prediction
    row: Mapped[str] = mapped_column(sa.Text)  # JSON object of the row's fields, ASCII only
    error: Mapped[str] = mapped_column(sa.Text)


class MonitoringRun(Base):
    """One ``churnops monitor`` run: what was compared, the verdict and the retrain decision."""

    __tablename__ = "monitoring_runs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    model_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    model_version: Mapped[str] = mapped_column(sa.String(20))
    reference: Mapped[str] = mapped_column(sa.Text)
    current: Mapped[str] = mapped_column(sa.Text)
    reference_rows: Mapped[int] = mapped_column(sa.Integer)
    current_rows: Mapped[int] = mapped_column(sa.Integer)
    current_digest: Mapped[str | None] = mapped_column(sa.String(64))
    drift_share: Mapped[float] = mapped_column(sa.Float)
    drifted_features: Mapped[str] = mapped_column(sa.Text)  # JSON list
    prediction_psi: Mapped[float] = mapped_column(sa.Float)
    high_risk_share: Mapped[float] = mapped_column(sa.Float)
    estimated_f1: Mapped[float | None] = mapped_column(sa.Float)
    realised_f1: Mapped[float | None] = mapped_column(sa.Float)
    baseline_f1: Mapped[float | None] = mapped_column(sa.Float)
    retrain: Mapped[bool] = mapped_column(sa.Boolean)
    reasons: Mapped[str] = mapped_column(sa.Text)  # JSON list
    report_path: Mapped[str | None] = mapped_column(sa.Text)
    mlflow_run_id: Mapped[str | None] = mapped_column(sa.String(64))
    seconds: Mapped[float] = mapped_column(sa.Float)
    f1_floor: Mapped[float | None] = mapped_column(sa.Float)
    derived: Mapped[str | None] = mapped_column(sa.Text)  # JSON: what the run derived
    warnings: Mapped[str | None] = mapped_column(sa.Text)  # JSON list
    estimate: Mapped[str | None] = mapped_column(sa.Text)  # JSON: bands, assumption, check
    estimate_disagrees: Mapped[bool | None] = mapped_column(sa.Boolean)


class FeatureDriftRow(Base):
    """One feature's drift in one monitoring run."""

    __tablename__ = "feature_drift"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"), index=True
    )
    feature: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    test: Mapped[str] = mapped_column(sa.String(10))
    statistic: Mapped[float] = mapped_column(sa.Float)
    p_value: Mapped[float] = mapped_column(sa.Float)
    psi: Mapped[float] = mapped_column(sa.Float)
    js: Mapped[float] = mapped_column(sa.Float)
    drifted: Mapped[bool] = mapped_column(sa.Boolean)
    severity: Mapped[str] = mapped_column(sa.String(10))
    missing_reference: Mapped[float] = mapped_column(sa.Float)
    missing_current: Mapped[float] = mapped_column(sa.Float)
    new_categories: Mapped[str] = mapped_column(sa.Text)  # JSON list


class _Metrics:
    """Performance columns shared by windows and segments (realised or estimated)."""

    rows: Mapped[int] = mapped_column(sa.Integer)
    positive_rate: Mapped[float | None] = mapped_column(sa.Float)
    roc_auc: Mapped[float | None] = mapped_column(sa.Float)
    pr_auc: Mapped[float | None] = mapped_column(sa.Float)
    f1: Mapped[float | None] = mapped_column(sa.Float)
    precision: Mapped[float | None] = mapped_column(sa.Float)
    recall: Mapped[float | None] = mapped_column(sa.Float)


class PerformanceWindow(_Metrics, Base):
    """Realised or estimated performance of one time window in one monitoring run."""

    __tablename__ = "performance_windows"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(10))  # realised | estimated
    window_start: Mapped[str | None] = mapped_column(sa.String(10))
    window_end: Mapped[str | None] = mapped_column(sa.String(10))


class SegmentMetric(_Metrics, Base):
    """Realised or estimated performance of one segment level in one monitoring run."""

    __tablename__ = "segment_metrics"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("monitoring_runs.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(10))
    column: Mapped[str] = mapped_column(sa.String(200))
    level: Mapped[str] = mapped_column(sa.String(200))


class PipelineStep(Base):
    """One step of one ``churnops pipeline run``: status, timing and what it did."""

    __tablename__ = "pipeline_steps"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    pipeline_run: Mapped[str] = mapped_column(sa.String(40), index=True)
    step: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(10))  # ok | skipped | failed
    started: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    finished: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    source_digest: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[str] = mapped_column(sa.Text)  # JSON


class ScoringRun(Base):
    """One batch scoring run, written first as ``running`` so a crash still leaves a trace."""

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    status: Mapped[str] = mapped_column(sa.String(20), index=True)  # running|succeeded|failed
    scoring_date: Mapped[date] = mapped_column(sa.Date, index=True)
    source: Mapped[str] = mapped_column(sa.Text)
    source_digest: Mapped[str | None] = mapped_column(sa.String(64))
    engine: Mapped[str] = mapped_column(sa.String(20))
    model_name: Mapped[str] = mapped_column(sa.String(200))
    model_version: Mapped[str] = mapped_column(sa.String(20))
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    rows_in: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_scored: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    high_risk: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    seconds: Mapped[float | None] = mapped_column(sa.Float)
    error: Mapped[str | None] = mapped_column(sa.Text)
    pid: Mapped[int | None] = mapped_column(sa.Integer)  # the scoring process, to spot dead runs
    host: Mapped[str | None] = mapped_column(sa.String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # How the run's segment codes read (churnops.features.segments.SegmentKey, JSON) and
    # which source column gave run_scores.value; NULL for runs stored before (0008).
    segments: Mapped[str | None] = mapped_column(sa.Text)
    value_column: Mapped[str | None] = mapped_column(sa.String(200))


class RunScore(Base):
    """A customer's score in one scoring run, keyed by the run and the customer's rank.

    Written in rank order, so the primary key is the only B-tree and every insert appends
    to it; readers use the ``churn_scores`` view, which shows the run a date points to.
    """

    __tablename__ = "run_scores"
    __table_args__ = ({"sqlite_with_rowid": False},)

    run_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    risk_rank: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)  # 1 = riskiest
    customer_id: Mapped[str] = mapped_column(sa.String(200))
    score: Mapped[float] = mapped_column(sa.Float(precision=53))
    reasons: Mapped[str | None] = mapped_column(sa.Text)  # JSON [{feature, contribution, value}]
    segment: Mapped[int | None] = mapped_column(sa.BigInteger)  # mixed-radix segment code
    value: Mapped[float | None] = mapped_column(sa.Float(precision=53))  # customer value


class CustomerKeys(Base):
    """One bucket of a run's customer-id hash index: sorted hashes, then their ranks.

    Finds a customer's rank in a run without a B-tree on (run_id, customer_id), whose
    random inserts would slow the rank-ordered writer several times over (see
    ``churnops.batch.keys``); a run writes a few hundred of these rows.
    """

    __tablename__ = "customer_keys"
    __table_args__ = ({"sqlite_with_rowid": False},)

    run_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    block: Mapped[bytes] = mapped_column(sa.LargeBinary)


class ScoringDate(Base):
    """Which complete run a scoring date shows: swapping a date moves this pointer."""

    __tablename__ = "scoring_dates"

    scoring_date: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.BigInteger)
    swapped_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


# The readers' table: a view (migrations 0005, 0008) joining scoring_dates, scoring_runs and
# run_scores, so a date holds exactly one complete run's rows, one per customer. Kept out
# of Base.metadata: it is created by the migration as a view, never as a table.
churn_scores = sa.Table(
    "churn_scores",
    sa.MetaData(),
    sa.Column("customer_id", sa.String(200)),
    sa.Column("scoring_date", sa.Date),
    sa.Column("score", sa.Float(precision=53)),
    sa.Column("high_risk", sa.Boolean),
    sa.Column("risk_rank", sa.BigInteger),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(20)),
    sa.Column("threshold", sa.Float(precision=53)),
    sa.Column("reasons", sa.Text),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("segment", sa.BigInteger),
    sa.Column("value", sa.Float(precision=53)),
)


class RejectedRow(Base):
    """A source row a scoring run refused, with every reason validation gave."""

    __tablename__ = "rejected_rows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    # The row's 0-based position in the source: the first data row is 0, so people's "row 3"
    # is row_number 2 (Spark on a CSV file: Spark's row id instead). Kept 0-based, as both
    # engines write it; text for people says row_number + 1 or names it 0-based.
    row_number: Mapped[int] = mapped_column(sa.BigInteger)
    customer_id: Mapped[str | None] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.Text)
