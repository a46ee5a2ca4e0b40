"""Batch scoring: every customer of a table scored into ``churn_scores`` for a date."""

from churnops.batch.job import get_run, list_runs, score
from churnops.batch.report import high_risk

__all__ = ["get_run", "high_risk", "list_runs", "score"]
