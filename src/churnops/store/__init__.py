"""Operational store: SQLAlchemy tables and Alembic migrations (SQLite or PostgreSQL)."""

from churnops.store.database import get_engine, session_scope, upgrade
from churnops.store.tables import Base, RegistryEvent

__all__ = ["Base", "RegistryEvent", "get_engine", "session_scope", "upgrade"]
