"""Operational tables (SQLAlchemy 2). Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
