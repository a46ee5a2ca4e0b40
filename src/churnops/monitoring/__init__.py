"""Monitoring: data and prediction drift, performance (labelled and label-free), triggers.

Importing this package is cheap; Evidently is imported only when a report is written.
"""

from churnops.monitoring.drift import DataDrift, DriftThresholds, FeatureDrift, data_drift
from churnops.monitoring.performance import estimated_metrics, realised_metrics
from churnops.monitoring.result import MonitoringResult
from churnops.monitoring.run import monitor
from churnops.monitoring.triggers import Evidence, RetrainDecision, decide

__all__ = [
    "DataDrift",
    "DriftThresholds",
    "Evidence",
    "FeatureDrift",
    "MonitoringResult",
    "RetrainDecision",
    "data_drift",
    "decide",
    "estimated_metrics",
    "monitor",
    "realised_metrics",
]
