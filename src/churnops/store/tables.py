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


class ChurnScore(Base):
    """A customer's churn score for one date; a date holds exactly one run's scores."""

    __tablename__ = "churn_scores"
    __table_args__ = (
        sa.UniqueConstraint("scoring_date", "customer_id", name="uq_churn_scores_date_customer"),
        sa.Index("ix_churn_scores_date_rank", "scoring_date", "risk_rank"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(sa.String(200))
    scoring_date: Mapped[date] = mapped_column(sa.Date)
    score: Mapped[float] = mapped_column(sa.Float(precision=53))
    high_risk: Mapped[bool] = mapped_column(sa.Boolean)
    risk_rank: Mapped[int] = mapped_column(sa.BigInteger)
    model_name: Mapped[str] = mapped_column(sa.String(200))
    model_version: Mapped[str] = mapped_column(sa.String(20))
    threshold: Mapped[float] = mapped_column(sa.Float(precision=53))
    reasons: Mapped[str | None] = mapped_column(sa.Text)  # JSON list of {feature, contribution}
    run_id: Mapped[int] = mapped_column(sa.BigInteger)  # no index: it would slow the swap


class RejectedRow(Base):
    """A source row a scoring run refused, with every reason validation gave."""

    __tablename__ = "rejected_rows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    row_number: Mapped[int] = mapped_column(sa.BigInteger)  # 0-based position in the source
    customer_id: Mapped[str | None] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.Text)
