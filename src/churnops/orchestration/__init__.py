"""Orchestration: the closed loop as plain steps, ``churnops pipeline run`` and Dagster.

``churnops.orchestration.definitions`` imports Dagster; nothing else here does.
"""

from churnops.orchestration.pipeline import list_steps, run_pipeline

__all__ = ["list_steps", "run_pipeline"]
