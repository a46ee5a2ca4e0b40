"""Operational store: SQLAlchemy tables and Alembic migrations (SQLite or PostgreSQL)."""

from churnops.store.database import get_engine, session_scope, upgrade
from churnops.store.tables import (
    Base,
    FeatureDriftRow,
    MonitoringRun,
    PerformanceWindow,
    PipelineStep,
    RegistryEvent,
    SegmentMetric,
)

__all__ = [
    "Base",
    "FeatureDriftRow",
    "MonitoringRun",
    "PerformanceWindow",
    "PipelineStep",
    "RegistryEvent",
    "SegmentMetric",
    "get_engine",
    "session_scope",
    "upgrade",
]
