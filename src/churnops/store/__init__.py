"""Operational store: SQLAlchemy tables and Alembic migrations (SQLite or PostgreSQL)."""

from churnops.store.database import get_engine, session_scope, upgrade
from churnops.store.tables import (
    ApiKey,
    AuditLog,
    Base,
    ChurnScore,
    FeatureDriftRow,
    MonitoringRun,
    PerformanceWindow,
    PipelineStep,
    PredictionLog,
    RegistryEvent,
    RejectedRow,
    ScoringRun,
    SegmentMetric,
)

__all__ = [
    "ApiKey",
    "AuditLog",
    "Base",
    "ChurnScore",
    "FeatureDriftRow",
    "MonitoringRun",
    "PerformanceWindow",
    "PipelineStep",
    "PredictionLog",
    "RegistryEvent",
    "RejectedRow",
    "ScoringRun",
    "SegmentMetric",
    "get_engine",
    "session_scope",
    "upgrade",
]
