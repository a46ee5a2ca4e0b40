"""Operational store: SQLAlchemy tables and Alembic migrations (SQLite or PostgreSQL)."""

from churnops.store.database import get_engine, session_scope, upgrade
from churnops.store.tables import Base, ChurnScore, RegistryEvent, RejectedRow, ScoringRun

__all__ = [
    "Base",
    "ChurnScore",
    "RegistryEvent",
    "RejectedRow",
    "ScoringRun",
    "get_engine",
    "session_scope",
    "upgrade",
]
