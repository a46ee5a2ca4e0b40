"""Operational store: SQLAlchemy tables and Alembic migrations (SQLite or PostgreSQL)."""

from churnops.store.database import get_engine, session_scope, upgrade
from churnops.store.tables import (
    ApiKey,
    AuditLog,
    AuditQuarantine,
    Base,
    FeatureDriftRow,
    MonitoringRun,
    PerformanceWindow,
    PipelineStep,
    PredictionLog,
    RegistryEvent,
    RejectedRow,
    RunScore,
    ScoringDate,
    ScoringRun,
    SegmentMetric,
    churn_scores,
)

__all__ = [
    "ApiKey",
    "AuditLog",
    "AuditQuarantine",
    "Base",
    "FeatureDriftRow",
    "MonitoringRun",
    "PerformanceWindow",
    "PipelineStep",
    "PredictionLog",
    "RegistryEvent",
    "RejectedRow",
    "RunScore",
    "ScoringDate",
    "ScoringRun",
    "SegmentMetric",
    "churn_scores",
    "get_engine",
    "session_scope",
    "upgrade",
]
